// Allowed opens of a large zone while a hostile user creates links, FIFOs and device nodes,
// renames and touches files inside the zone and outside it (issue 18, "no rescan storms").
//
// A private tmpfs holds a zone of --files files (200 per directory) and a directory outside
// it; the real fanotify enforcer (the class custguardd runs) protects the zone, readable by
// one user. That user opens, reads and closes random zone files for --seconds, first with
// the zone quiet, then while hostile creators run: a user (links outside and inside the zone,
// links of zone files made outside it, FIFOs, renames, chmod) and root (character device
// nodes, linked). Prints p50/p99 per phase and their ratio to the quiet zone (target 1.5x),
// the enforcer's counters, and how many zone files the hostile user read through a name
// outside the zone (must be 0). The same phases with the floor (a bare fanotify group that
// allows every open at once, bench/common/bare_responder.hpp) show what any fanotify
// enforcer's round trip alone gives on this machine under the same creators.
//
// Needs root; everything lives in a private mount namespace and is gone at exit.
//
// The enforcer hands its records to the event pipeline custguardd runs (journal off), which
// also tells it which denials only its flood bound counts (Pipeline::admit), as in the
// daemon; --no-pipeline counts the records in a plain handler instead, and every denial
// is described.
//
// --split-cpus runs the creators on the last CPU and everything else (the reader, the
// enforcer's threads, the floor) on the others: what is left of the ratio is then what
// the creators' file system activity costs a decision, not their share of the CPUs.
//
//   bench_rescan [--files N] [--seconds S] [--rounds N] [--creators N] [--no-creator-opens]
//                [--worker-nice N] [--notify-nice N] [--no-floor] [--split-cpus] [--creator-rate N]
//                [--hogs N] [--no-pipeline]
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "common/bare_responder.hpp"
#include "common/one_zone.hpp"
#include "custguard/events/pipeline.hpp"
#include "daemon/fanotify/fanotify_enforcer.hpp"

using namespace custguard;
using Clock = std::chrono::steady_clock;

namespace {

constexpr uid_t reader_uid = 60001;   // allowed in the zone
constexpr uid_t hostile_uid = 60009;  // in no allow list
constexpr std::size_t max_samples = 4u << 20;
constexpr int per_dir = 200;

struct Shared {
    std::atomic<std::uint64_t> creator_ops{0};  // system calls of the hostile creators
    std::atomic<std::uint64_t> bypasses{0};     // zone files read through an outside link
    std::atomic<std::uint64_t> denied{0};       // the hostile user's refused opens
    std::atomic<int> stop{0};
    std::uint64_t samples = 0;  // written by the reader before it exits
    std::uint64_t refused = 0;  // allowed opens refused, by the reader
    std::uint32_t ns[max_samples];
};

bool sh(const char* what, int rc) {
    if (rc != 0) std::fprintf(stderr, "bench_rescan: %s failed: %s\n", what, std::strerror(errno));
    return rc == 0;
}

bool become(uid_t uid) {
    return ::setgroups(0, nullptr) == 0 && ::setresgid(uid, uid, uid) == 0 && ::setresuid(uid, uid, uid) == 0;
}

// As reader_uid: open+read+close of random zone files for `seconds`, one sample per open.
// Paths are built before the fork: the enforcer's threads run in the parent.
pid_t start_reader(Shared* sh, const std::vector<std::string>& paths, double seconds) {
    pid_t pid = ::fork();
    if (pid != 0) return pid;
    if (!become(reader_uid)) ::_exit(1);
    char buf[256];
    std::uint64_t x = 0x9e3779b97f4a7c15ull ^ static_cast<std::uint64_t>(::getpid());
    const auto end = Clock::now() + std::chrono::duration<double>(seconds);
    std::uint64_t n = 0;
    while (n < max_samples && Clock::now() < end) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        const char* p = paths[x % paths.size()].c_str();
        const auto t0 = Clock::now();
        int fd = ::open(p, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            (void)!::read(fd, buf, sizeof buf);
            ::close(fd);
        } else {
            ++sh->refused;  // answered without a decision (the enforcer's timeout): EPERM
        }
        sh->ns[n++] = static_cast<std::uint32_t>(
            std::min<std::int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count(),
                                   UINT32_MAX));
    }
    sh->samples = n;
    ::_exit(0);
}

// --split-cpus: the CPU the creators run on (-1: anywhere).
int creator_cpu = -1;

void to_creator_cpu() {
    if (creator_cpu < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(creator_cpu, &set);
    if (::sched_setaffinity(0, sizeof set, &set) != 0) ::_exit(1);
}

// --creator-rate N: each user creator runs at most N rounds a second (0: as fast as it can).
// Creators that run flat out go as fast as the enforcer answers them: a cheaper decision
// brings more of them, and the ratio then compares different loads. At a fixed rate both
// enforcers face the same one.
double creator_rate = 0;

// Sleeps until round `i` of a creator that started at `t0` is due (--creator-rate).
void pace(const Clock::time_point& t0, std::uint64_t i) {
    if (creator_rate <= 0) return;
    std::this_thread::sleep_until(t0 + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(static_cast<double>(i) / creator_rate)));
}

// --no-creator-opens: the creators make and change files but open none, which tells the
// load of their system calls apart from the permission events of their opens.
bool creator_opens = true;

void touch_open(Shared* sh, const char* path, bool zone_file) {
    if (!creator_opens) return;
    int fd = ::open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    sh->creator_ops.fetch_add(1, std::memory_order_relaxed);
    if (fd >= 0) {
        if (zone_file) sh->bypasses.fetch_add(1, std::memory_order_relaxed);
        ::close(fd);
    } else if (errno == EPERM) {
        sh->denied.fetch_add(1, std::memory_order_relaxed);
    }
}

// A new file: opened (O_CREAT) and written, or with --no-creator-opens made by mknod()
// (no open, so no permission event: only the notifications of its name).
void make_file(const char* path, const char* text) {
    if (!creator_opens) {
        (void)::mknod(path, S_IFREG | 0644, 0);
        return;
    }
    int fd = ::open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) return;
    if (text) (void)!::write(fd, text, std::strlen(text));
    ::close(fd);
}

// The hostile user: in a loop, with names made on the stack (no allocation after fork).
pid_t start_user_creator(Shared* sh, const std::string& drop, const std::string& out, int k) {
    pid_t pid = ::fork();
    if (pid != 0) return pid;
    to_creator_cpu();
    if (!become(hostile_uid)) ::_exit(1);
    ::umask(0);
    // Each creator its own subdirectory on both sides.
    char z[256], o[256];
    std::snprintf(z, sizeof z, "%s/u%d", drop.c_str(), k);
    std::snprintf(o, sizeof o, "%s/u%d", out.c_str(), k);
    ::mkdir(z, 0755);
    ::mkdir(o, 0755);
    char a[512], b[512], c[512], d[512];
    auto op = [&](int rc) { (void)rc; sh->creator_ops.fetch_add(1, std::memory_order_relaxed); };
    const auto t0 = Clock::now();
    for (std::uint64_t i = 0; !sh->stop.load(std::memory_order_relaxed); ++i) {
        pace(t0, i);
        // A file outside every zone, linked there: the case that made each open rescan.
        std::snprintf(a, sizeof a, "%s/h%llu", o, static_cast<unsigned long long>(i));
        std::snprintf(b, sizeof b, "%s/h%llu.l", o, static_cast<unsigned long long>(i));
        make_file(a, nullptr);
        op(0);
        op(::link(a, b));
        touch_open(sh, b, false);
        // A zone file of its own, linked inside the zone and outside it, then opened by
        // its outside name: must be refused.
        std::snprintf(c, sizeof c, "%s/z%llu", z, static_cast<unsigned long long>(i));
        std::snprintf(d, sizeof d, "%s/z%llu.l", z, static_cast<unsigned long long>(i));
        make_file(c, "secret\n");
        op(0);
        op(::link(c, d));
        std::snprintf(b, sizeof b, "%s/zl%llu", o, static_cast<unsigned long long>(i));
        op(::link(c, b));
        touch_open(sh, b, true);
        // FIFOs on both sides, renames on both sides, ctime changes on linked files.
        std::snprintf(b, sizeof b, "%s/p%llu", z, static_cast<unsigned long long>(i));
        op(::mkfifo(b, 0666));
        touch_open(sh, b, false);  // holds no data: refused or not, nothing leaks
        std::snprintf(b, sizeof b, "%s/p%llu", o, static_cast<unsigned long long>(i));
        op(::mkfifo(b, 0666));
        std::snprintf(b, sizeof b, "%s/z%llu.m", z, static_cast<unsigned long long>(i));
        op(::rename(d, b));
        std::snprintf(d, sizeof d, "%s/h%llu.m", o, static_cast<unsigned long long>(i));
        std::snprintf(b, sizeof b, "%s/h%llu.l", o, static_cast<unsigned long long>(i));
        op(::rename(b, d));
        op(::chmod(c, 0600));
        op(::chmod(a, 0600));
        touch_open(sh, a, false);
        // Keep the trees from growing without bound: remove what was made 256 rounds ago.
        if (i >= 256) {
            const auto k = static_cast<unsigned long long>(i - 256);
            const char* names[][2] = {{o, "h%llu"}, {o, "h%llu.m"}, {z, "z%llu"}, {z, "z%llu.m"},
                                      {o, "zl%llu"}, {z, "p%llu"}, {o, "p%llu"}};
            for (auto& [dir, fmt] : names) {
                char name[64];
                std::snprintf(name, sizeof name, fmt, k);
                std::snprintf(a, sizeof a, "%s/%s", dir, name);
                op(::unlink(a));
            }
        }
    }
    ::_exit(0);
}

// Root: character device nodes (the null device) in the zone and outside it, linked.
pid_t start_root_creator(Shared* sh, const std::string& drop, const std::string& out) {
    pid_t pid = ::fork();
    if (pid != 0) return pid;
    to_creator_cpu();
    const char* z = drop.c_str();
    const char* o = out.c_str();
    char a[512], b[512];
    auto op = [&](int rc) { (void)rc; sh->creator_ops.fetch_add(1, std::memory_order_relaxed); };
    for (std::uint64_t i = 0; !sh->stop.load(std::memory_order_relaxed); ++i) {
        std::snprintf(a, sizeof a, "%s/n%llu", z, static_cast<unsigned long long>(i % 512));
        std::snprintf(b, sizeof b, "%s/n%llu", o, static_cast<unsigned long long>(i % 512));
        ::unlink(a);
        ::unlink(b);
        op(::mknod(a, S_IFCHR | 0666, makedev(1, 3)));
        op(::link(a, b));
        touch_open(sh, b, false);  // root is in no allow list: refused, but no secret either
        std::snprintf(a, sizeof a, "%s/c%llu", o, static_cast<unsigned long long>(i % 512));
        std::snprintf(b, sizeof b, "%s/c%llu.l", o, static_cast<unsigned long long>(i % 512));
        ::unlink(a);
        ::unlink(b);
        op(::mknod(a, S_IFCHR | 0666, makedev(1, 3)));
        op(::link(a, b));
        touch_open(sh, b, false);
        ::usleep(200);  // root's share: the user's loop is the heavy one
    }
    ::_exit(0);
}

// --hogs N: the hostile user also keeps N programs busy on every CPU (no file system
// activity): opens parked for a heavy user must still be answered (max_park), not left to a
// thread these programs keep off the CPUs.
int hogs = 0;

pid_t start_hog(Shared* sh) {
    pid_t pid = ::fork();
    if (pid != 0) return pid;
    cpu_set_t all;
    CPU_ZERO(&all);
    for (int c = 0; c < CPU_SETSIZE; ++c) CPU_SET(c, &all);
    ::sched_setaffinity(0, sizeof all, &all);
    if (!become(hostile_uid)) ::_exit(1);
    while (!sh->stop.load(std::memory_order_relaxed)) {}
    ::_exit(0);
}

struct Phase {
    std::vector<std::uint32_t> ns;
    double seconds = 0;
    std::uint64_t creator_ops = 0, bypasses = 0, denied = 0, refused = 0;
    daemon::FanotifyStats before{}, after{};
    double enforcer_cpu_s = 0;  // this process's CPU (the enforcer's threads) during the phase
};

double own_cpu_s() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double pct(std::vector<std::uint32_t> v, double p) {
    if (v.empty()) return 0;
    std::size_t k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return v[k] / 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
    int files = 200000;
    double seconds = 8;
    int rounds = 2;
    int user_creators = 4;
    bool floor = true;
    bool split_cpus = false;
    bool with_pipeline = true;
    daemon::FanotifyOptions options;
    options.use_fd_store = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--files" && i + 1 < argc) files = std::max(per_dir, std::atoi(argv[++i]));
        else if (a == "--seconds" && i + 1 < argc) seconds = std::max(1.0, std::atof(argv[++i]));
        else if (a == "--rounds" && i + 1 < argc) rounds = std::max(1, std::atoi(argv[++i]));
        else if (a == "--creators" && i + 1 < argc) user_creators = std::max(1, std::atoi(argv[++i]));
        else if (a == "--no-creator-opens") creator_opens = false;
        else if (a == "--no-pipeline") with_pipeline = false;
        else if (a == "--worker-nice" && i + 1 < argc) options.worker_nice = std::atoi(argv[++i]);
        else if (a == "--notify-nice" && i + 1 < argc) options.notify_nice = std::atoi(argv[++i]);
        else if (a == "--no-floor") floor = false;
        else if (a == "--split-cpus") split_cpus = true;
        else if (a == "--creator-rate" && i + 1 < argc) creator_rate = std::max(0.0, std::atof(argv[++i]));
        else if (a == "--hogs" && i + 1 < argc) hogs = std::max(0, std::atoi(argv[++i]));
        else {
            std::fprintf(stderr,
                         "usage: bench_rescan [--files N] [--seconds S] [--rounds N] [--creators N] [--no-creator-opens]\n"
                         "                    [--worker-nice N] [--notify-nice N] [--no-floor] [--split-cpus] [--creator-rate N]\n"
                         "                    [--hogs N] [--no-pipeline]\n"
                         "  --files N    zone files (default 200000)\n"
                         "  --seconds S  length of each phase (default 8)\n"
                         "  --rounds N   quiet/hostile pairs (default 2)\n"
                         "  --creators N hostile user processes (default 4; one root process besides)\n"
                         "  --no-creator-opens  the creators open nothing (their system calls' load alone)\n"
                         "  --worker-nice N  nice of the enforcer's answering threads (default: the daemon's, -10; 0: left alone)\n"
                         "  --notify-nice N  nice of the notify thread (the work creates, links and renames cause;\n"
                         "               default: the daemon's, -10; 0: left alone)\n"
                         "  --no-floor   leave out the phases with a bare fanotify group answering every open at once\n"
                         "  --split-cpus the creators on the last CPU, the reader and the enforcer on the others\n"
                         "  --creator-rate N  each user creator runs at most N rounds a second (default 0: flat out)\n"
                         "  --hogs N     the hostile user also runs N busy loops on any CPU (default 0)\n"
                         "  --no-pipeline  records go to a counter, not custguardd's event pipeline, and every\n"
                         "               denial is described (no flood bound asked)\n");
            return 2;
        }
    }
    if (::geteuid() != 0) {
        std::fprintf(stderr, "bench_rescan: needs root\n");
        return 1;
    }
    if (split_cpus) {
        // Before any thread starts: the enforcer's threads and the reader inherit it.
        cpu_set_t all, rest;
        CPU_ZERO(&rest);
        if (::sched_getaffinity(0, sizeof all, &all) != 0) return sh("sched_getaffinity", -1), 1;
        for (int c = 0; c < CPU_SETSIZE; ++c)
            if (CPU_ISSET(c, &all)) creator_cpu = c;
        for (int c = 0; c < creator_cpu; ++c)
            if (CPU_ISSET(c, &all)) CPU_SET(c, &rest);
        if (CPU_COUNT(&rest) == 0) {
            std::fprintf(stderr, "bench_rescan: --split-cpus needs at least 2 CPUs\n");
            return 2;
        }
        if (!sh("sched_setaffinity", ::sched_setaffinity(0, sizeof rest, &rest))) return 1;
        std::printf("CPUs: creators on CPU %d, the reader and the enforcer on the other %d\n", creator_cpu,
                    CPU_COUNT(&rest));
    }
    if (!sh("unshare", ::unshare(CLONE_NEWNS)) ||
        !sh("make / private", ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr)))
        return 1;
    char tmpl[] = "/tmp/cgrescan-bench.XXXXXX";
    const std::string work = ::mkdtemp(tmpl);
    ::chmod(work.c_str(), 0755);
    const std::string fs = work + "/fs";
    ::mkdir(fs.c_str(), 0755);
    if (!sh("mount tmpfs", ::mount("tmpfs", fs.c_str(), "tmpfs", 0, "size=2g,nr_inodes=2m,mode=0755"))) return 1;
    const std::string zone = fs + "/zone", drop = zone + "/drop", out = fs + "/out";
    for (const auto& d : {zone, out, drop}) ::mkdir(d.c_str(), 0755);
    ::chmod(drop.c_str(), 01777);  // the zone's shared folder: anyone may add files
    ::chmod(out.c_str(), 01777);

    const auto g0 = Clock::now();
    std::vector<std::string> paths;
    paths.reserve(static_cast<std::size_t>(files));
    static const char content[] = "customer record\n";
    for (int i = 0; i < files; ++i) {
        if (i % per_dir == 0) ::mkdir((zone + "/d" + std::to_string(i / per_dir)).c_str(), 0755);
        paths.push_back(zone + "/d" + std::to_string(i / per_dir) + "/f" + std::to_string(i % per_dir));
        int fd = ::open(paths.back().c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0 || ::write(fd, content, sizeof content - 1) < 0) return sh("create zone files", -1), 1;
        ::close(fd);
    }
    const double gen_s = std::chrono::duration<double>(Clock::now() - g0).count();

    auto* shm = static_cast<Shared*>(
        ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    if (shm == MAP_FAILED) return sh("mmap", -1), 1;
    daemon::FanotifyEnforcer* enforcer = nullptr;
    auto run_phase = [&](bool attack, Phase& ph) {
        new (shm) Shared();
        if (enforcer) ph.before = enforcer->stats();
        const double cpu0 = own_cpu_s();
        const auto t0 = Clock::now();
        std::vector<pid_t> creators;
        if (attack) {
            for (int k = 0; k < user_creators; ++k) creators.push_back(start_user_creator(shm, drop, out, k));
            creators.push_back(start_root_creator(shm, drop, out));
            for (int k = 0; k < hogs; ++k) creators.push_back(start_hog(shm));
            ::usleep(300'000);  // the storm is under way before the first measured open
        }
        pid_t reader = start_reader(shm, paths, seconds);
        int st = 0;
        ::waitpid(reader, &st, 0);
        shm->stop.store(1);
        for (pid_t p : creators) ::waitpid(p, nullptr, 0);
        ph.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
        ph.enforcer_cpu_s = own_cpu_s() - cpu0;
        if (enforcer) ph.after = enforcer->stats();
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            std::fprintf(stderr, "bench_rescan: the allowed reader failed (status %d)\n", st);
            return false;
        }
        ph.refused = shm->refused;
        ph.ns.assign(shm->ns, shm->ns + shm->samples);
        ph.creator_ops = shm->creator_ops.load();
        ph.bypasses = enforcer ? shm->bypasses.load() : 0;  // without one, every read is a "bypass"
        ph.denied = shm->denied.load();
        return true;
    };
    // The same two phases without any enforcer: how much the creators' load alone costs on
    // this machine (they compete with the reader for the CPUs).
    Phase none_quiet, none_hostile;
    if (!run_phase(false, none_quiet) || !run_phase(true, none_hostile)) return 1;

    const int worker_nice = options.worker_nice, notify_nice = options.notify_nice;
    // The floor: a filesystem mark whose listener allows every open at once, its thread at
    // the enforcer's nice (a new thread inherits its creator's; the creators and the reader,
    // forked after, get the main thread's nice back).
    std::vector<Phase> floor_quiet, floor_hostile;
    std::uint64_t floor_answered = 0;
    if (floor) {
        const int own = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
        ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), worker_nice);
        bench::BareResponder bare;
        const bool started = bare.start(bench::BareResponder::Mode::filesystem, fs);
        ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), own);
        if (!started) return std::fprintf(stderr, "bench_rescan: the floor's fanotify group: %s\n", std::strerror(errno)), 1;
        for (int r = 0; r < 2 * rounds; ++r) {
            Phase ph;
            if (!run_phase(r % 2 == 1, ph)) return 1;
            (r % 2 == 1 ? floor_hostile : floor_quiet).push_back(std::move(ph));
        }
        floor_answered = bare.answered.load();
        if (floor_answered == 0) return std::fprintf(stderr, "bench_rescan: the floor answered no open\n"), 1;
    }
    // Made here, after the CPUs are split: its threads run where the enforcer's do.
    std::unique_ptr<events::Pipeline> pipeline;
    std::atomic<std::uint64_t> records{0};
    daemon::EventHandler handler = [&](daemon::AccessEvent&&) { records.fetch_add(1); };
    if (with_pipeline) {
        events::PipelineConfig pc;
        pc.journal = false;
        pc.state_dir = work;
        auto p = events::Pipeline::create(std::move(pc));
        if (!p) return std::fprintf(stderr, "bench_rescan: %s\n", p.error().c_str()), 1;
        pipeline = std::move(*p);
        pipeline->set_zone_names({"customers"});
        handler = pipeline->handler();
        options.admit_denial = pipeline->admitter();
    }
    auto e = daemon::FanotifyEnforcer::create(std::move(options));
    if (!e) return std::fprintf(stderr, "bench_rescan: %s\n", e.error().c_str()), 1;
    auto& enf = **e;
    enforcer = &enf;
    if (auto r = enf.start(std::move(handler)); !r)
        return std::fprintf(stderr, "bench_rescan: %s\n", r.error().c_str()), 1;
    const auto a0 = Clock::now();
    if (auto r = enf.apply(bench::one_zone_policy(zone, reader_uid)); !r)
        return std::fprintf(stderr, "bench_rescan: %s\n", r.error().c_str()), 1;
    const double apply_s = std::chrono::duration<double>(Clock::now() - a0).count();


    {
        char load[64] = {};
        if (FILE* f = std::fopen("/proc/loadavg", "r")) {
            if (!std::fgets(load, sizeof load, f)) load[0] = 0;
            std::fclose(f);
        }
        std::printf("load average: %s", load);
    }
    std::printf("bench_rescan: %d zone files (tmpfs, %d per directory), made in %.1f s; apply() %.2f s; "
                "%.0f s per phase, %d rounds, %d hostile user processes and one root process\n",
                files, per_dir, gen_s, apply_s, seconds, rounds, user_creators);
    std::printf("enforcer threads answering opens: nice %d; notify work: nice %d\n", worker_nice, notify_nice);
    if (creator_rate > 0) std::printf("user creators paced: at most %.0f rounds a second each\n", creator_rate);
    for (const auto& w : enf.warnings()) std::printf("warning: %s\n", w.c_str());
    std::vector<Phase> quiet, hostile;
    for (int r = 0; r < 2 * rounds; ++r) {
        const bool attack = r % 2 == 1;
        Phase ph;
        if (!run_phase(attack, ph)) return 1;
        (attack ? hostile : quiet).push_back(std::move(ph));
    }

    std::vector<std::uint32_t> q_all, h_all;
    for (auto& p : quiet) q_all.insert(q_all.end(), p.ns.begin(), p.ns.end());
    for (auto& p : hostile) h_all.insert(h_all.end(), p.ns.begin(), p.ns.end());
    const double q50 = pct(q_all, 0.5), q99 = pct(q_all, 0.99);
    std::printf("\n| phase | round | opens | opens/s | allowed refused | p50 µs | p99 µs | max µs | hostile ops | walks | directory cache hits | tree scans | entries scanned | perm events | notify events | enforcer CPU s | flushes | overload answers | refused for lag | parked | parked late | kept departed (end) | hostile refused | zone files read outside |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int r = 0; r < rounds; ++r) {
        for (const Phase* p : {&quiet[static_cast<std::size_t>(r)], &hostile[static_cast<std::size_t>(r)]}) {
            std::printf("| %s | %d | %zu | %.0f | %llu | %.1f | %.1f | %.1f | %llu | %llu | %llu | %llu | %llu | %llu | %llu | %.2f | %llu | %llu | %llu | %llu | %llu | %llu | %llu | %llu |\n",
                        p == &quiet[static_cast<std::size_t>(r)] ? "quiet" : "hostile", r + 1, p->ns.size(),
                        static_cast<double>(p->ns.size()) / p->seconds, static_cast<unsigned long long>(p->refused),
                        pct(p->ns, 0.5), pct(p->ns, 0.99),
                        p->ns.empty() ? 0.0 : *std::max_element(p->ns.begin(), p->ns.end()) / 1000.0,
                        static_cast<unsigned long long>(p->creator_ops),
                        static_cast<unsigned long long>(p->after.walks - p->before.walks),
                        static_cast<unsigned long long>(p->after.dir_hits - p->before.dir_hits),
                        static_cast<unsigned long long>(p->after.scans - p->before.scans),
                        static_cast<unsigned long long>(p->after.scanned - p->before.scanned),
                        static_cast<unsigned long long>(p->after.permission_events - p->before.permission_events),
                        static_cast<unsigned long long>(p->after.notify_events - p->before.notify_events),
                        p->enforcer_cpu_s, static_cast<unsigned long long>(p->after.flushes - p->before.flushes),
                        static_cast<unsigned long long>(p->after.timeouts - p->before.timeouts),
                        static_cast<unsigned long long>(p->after.quick_refused - p->before.quick_refused),
                        static_cast<unsigned long long>(p->after.parked - p->before.parked),
                        static_cast<unsigned long long>(p->after.parked_late - p->before.parked_late),
                        static_cast<unsigned long long>(p->after.departed),
                        static_cast<unsigned long long>(p->denied), static_cast<unsigned long long>(p->bypasses));
        }
    }
    const double h50 = pct(h_all, 0.5), h99 = pct(h_all, 0.99);
    std::printf("\nall rounds: quiet p50 %.1f µs p99 %.1f µs; hostile p50 %.1f µs p99 %.1f µs; "
                "ratio p50 %.2fx, p99 %.2fx (target <= 1.5x)\n",
                q50, q99, h50, h99, q50 > 0 ? h50 / q50 : 0, q99 > 0 ? h99 / q99 : 0);
    const double n50 = pct(none_quiet.ns, 0.5), n99 = pct(none_quiet.ns, 0.99), nh50 = pct(none_hostile.ns, 0.5),
                 nh99 = pct(none_hostile.ns, 0.99);
    std::printf("no enforcer: quiet p50 %.1f µs p99 %.1f µs; hostile p50 %.1f µs p99 %.1f µs; ratio p50 %.2fx, p99 %.2fx "
                "(the creators' load alone)\n",
                n50, n99, nh50, nh99, n50 > 0 ? nh50 / n50 : 0, n99 > 0 ? nh99 / n99 : 0);
    std::printf("the enforcer's share under the creators (hostile with / without it) %.2fx p50, %.2fx p99; "
                "in a quiet zone %.2fx p50, %.2fx p99\n",
                nh50 > 0 ? h50 / nh50 : 0, nh99 > 0 ? h99 / nh99 : 0, n50 > 0 ? q50 / n50 : 0, n99 > 0 ? q99 / n99 : 0);
    if (floor) {
        std::vector<std::uint32_t> fq, fh;
        for (auto& p : floor_quiet) fq.insert(fq.end(), p.ns.begin(), p.ns.end());
        for (auto& p : floor_hostile) fh.insert(fh.end(), p.ns.begin(), p.ns.end());
        const double f50 = pct(fq, 0.5), f99 = pct(fq, 0.99), fh50 = pct(fh, 0.5), fh99 = pct(fh, 0.99);
        std::printf("floor (a bare fanotify group allowing every open at once, nice %d; %llu opens answered): "
                    "quiet p50 %.1f µs p99 %.1f µs; hostile p50 %.1f µs p99 %.1f µs; ratio p50 %.2fx, p99 %.2fx\n",
                    worker_nice, static_cast<unsigned long long>(floor_answered), f50, f99, fh50, fh99,
                    f50 > 0 ? fh50 / f50 : 0, f99 > 0 ? fh99 / f99 : 0);
        std::printf("the enforcer over the floor: quiet p50 +%.1f µs, hostile p50 +%.1f µs\n", q50 - f50, h50 - fh50);
    }
    std::uint64_t bypasses = 0;
    for (auto& p : hostile) bypasses += p.bypasses;
    std::printf("zone files the hostile user read through a name outside the zone: %llu (must be 0)\n",
                static_cast<unsigned long long>(bypasses));
    enf.stop(true);
    if (pipeline) {
        pipeline->stop();
        const auto pc = pipeline->counters();
        std::printf("event pipeline: %llu records, of them %llu `repeated`; %llu denials counted, not described; "
                    "%llu lost\n",
                    static_cast<unsigned long long>(pc.seq), static_cast<unsigned long long>(pc.repeat_records),
                    static_cast<unsigned long long>(pc.repeats_counted), static_cast<unsigned long long>(pc.lost));
    } else {
        std::printf("records (no pipeline, every denial described): %llu\n",
                    static_cast<unsigned long long>(records.load()));
    }
    ::umount2(fs.c_str(), MNT_DETACH);
    ::rmdir(fs.c_str());
    ::rmdir(work.c_str());
    return bypasses == 0 ? 0 : 3;
}
