// A denial flood: one user not allowed in a zone opens a zone file in a loop. Every open is
// refused; the pipeline writes the first 10 of a minute and counts the rest into one
// `repeated` record (events/repeat.hpp). Before the flood bound's shortcut the fanotify
// enforcer still described each of them (the opener's flags from /proc/TID/syscall, its
// Samba client, the file's path) before the pipeline threw the description away; now it
// asks the pipeline first (Pipeline::admit, FanotifyOptions::admit_denial). This prints,
// per round, the flooder's opens a second and the CPU time this process (the enforcer and
// the pipeline, as custguardd wires them, journal off) spent per refused open, with the
// shortcut and without it (`describe all`), interleaved.
//
// Needs root; a private tmpfs in a private mount namespace, gone at exit.
//
//   bench_flood [--opens N] [--rounds N]
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/one_zone.hpp"
#include "custguard/events/pipeline.hpp"
#include "daemon/fanotify/fanotify_enforcer.hpp"

using namespace custguard;

namespace {

constexpr uid_t flooder_uid = 60009;  // in no allow list
constexpr uid_t allowed_uid = 60001;

double cpu_seconds() {
    timespec t{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

struct Row {
    bool shortcut = false;
    int opens = 0;
    double seconds = 0, cpu = 0;
    std::uint64_t counted = 0, records = 0;
};

// One round: a fresh pipeline and enforcer, one flooding child; false on a failure (said).
bool run(const std::string& zone, const std::string& file, bool shortcut, int opens, Row& row) {
    events::PipelineConfig pc;
    pc.journal = false;
    pc.state_dir = zone + "/..";
    auto p = events::Pipeline::create(std::move(pc));
    if (!p) return std::fprintf(stderr, "bench_flood: %s\n", p.error().c_str()), false;
    auto& pipeline = **p;
    pipeline.set_zone_names({"customers"});
    daemon::FanotifyOptions options;
    options.use_fd_store = false;
    if (shortcut) options.admit_denial = pipeline.admitter();
    auto e = daemon::FanotifyEnforcer::create(std::move(options));
    if (!e) return std::fprintf(stderr, "bench_flood: %s\n", e.error().c_str()), false;
    auto& enforcer = **e;
    if (auto r = enforcer.start(pipeline.handler()); !r)
        return std::fprintf(stderr, "bench_flood: %s\n", r.error().c_str()), false;
    if (auto r = enforcer.apply(bench::one_zone_policy(zone, allowed_uid)); !r)
        return std::fprintf(stderr, "bench_flood: %s\n", r.error().c_str()), false;

    const double cpu0 = cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    const pid_t child = ::fork();
    if (child == 0) {
        if (::setresgid(flooder_uid, flooder_uid, flooder_uid) != 0 ||
            ::setresuid(flooder_uid, flooder_uid, flooder_uid) != 0)
            ::_exit(120);
        int refused = 0;
        for (int i = 0; i < opens; ++i) {
            const int fd = ::open(file.c_str(), O_RDONLY);
            if (fd >= 0) ::close(fd);
            else if (errno == EPERM) ++refused;
        }
        ::_exit(refused == opens ? 0 : 1);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // The pipeline's share of the last events is paid before the CPU time is read.
    (void)pipeline.flush(std::chrono::seconds(10));
    row.cpu = cpu_seconds() - cpu0;
    enforcer.stop(true);
    pipeline.stop();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return std::fprintf(stderr, "bench_flood: not every open of the flood was refused (status %d)\n", status), false;
    const auto counters = pipeline.counters();
    row.shortcut = shortcut;
    row.opens = opens;
    row.counted = counters.repeats_counted;
    row.records = counters.seq;
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    int opens = 100000;
    int rounds = 3;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--opens" && i + 1 < argc) opens = std::max(100, std::atoi(argv[++i]));
        else if (a == "--rounds" && i + 1 < argc) rounds = std::max(1, std::atoi(argv[++i]));
        else {
            const bool help = a == "--help" || a == "-h";
            std::fprintf(help ? stdout : stderr,
                         "usage: bench_flood [--opens N] [--rounds N]\n"
                         "  --opens N   refused opens per flood (default 100000)\n"
                         "  --rounds N  floods with the shortcut and without it, interleaved (default 3)\n");
            return help ? 0 : 2;
        }
    }
    if (::geteuid() != 0) return std::fprintf(stderr, "bench_flood: needs root (fanotify)\n"), 1;
    if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        return std::perror("bench_flood: private mount namespace"), 1;
    char tmpl[] = "/tmp/cg-flood.XXXXXX";
    if (!::mkdtemp(tmpl)) return std::perror("bench_flood: mkdtemp"), 1;
    const std::string work = tmpl;
    if (::mount("tmpfs", work.c_str(), "tmpfs", 0, "size=16m,mode=0755") != 0)
        return std::perror("bench_flood: tmpfs"), 1;
    const std::string zone = work + "/zone";
    const std::string file = zone + "/a.csv";
    ::mkdir(zone.c_str(), 0755);
    ::close(::open(file.c_str(), O_CREAT | O_WRONLY, 0644));

    std::vector<Row> rows;
    for (int r = 0; r < 2 * rounds; ++r) {
        Row row;
        if (!run(zone, file, r % 2 == 1, opens, row)) return 1;
        rows.push_back(row);
    }
    std::printf("bench_flood: %d refused opens of one zone file per flood by one user, %d rounds\n\n", opens, rounds);
    std::printf("| round | denials | opens/s | CPU µs per refused open | records written | counted |\n");
    std::printf("|---|---|---:|---:|---:|---:|\n");
    std::vector<double> cpu[2];
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const Row& w = rows[i];
        cpu[w.shortcut].push_back(w.cpu * 1e6 / w.opens);
        std::printf("| %zu | %s | %.0f | %.1f | %llu | %llu |\n", i / 2 + 1, w.shortcut ? "counted undescribed" : "describe all",
                    w.opens / w.seconds, w.cpu * 1e6 / w.opens, static_cast<unsigned long long>(w.records),
                    static_cast<unsigned long long>(w.counted));
    }
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    const double all = median(cpu[0]), shortcut = median(cpu[1]);
    std::printf("\nmedian CPU per refused open: describe all %.1f µs, counted undescribed %.1f µs (%.2fx)\n", all,
                shortcut, all > 0 ? shortcut / all : 0);
    ::umount2(work.c_str(), MNT_DETACH);
    ::rmdir(work.c_str());
    return 0;
}
