// open+read+close cost with no enforcer, with custguard's fanotify enforcer (the class) and
// with fapolicyd (equivalent deny rule on the same directory), for (a) files outside zones on
// the zone's filesystem and (b) zone files read by an allowed user; then the same two cases
// with the shipped custguardd in its default configuration (journald records, audit as
// shipped, control plane on a private dbus-daemon) and 1, 100 and 10,000 zones on that
// filesystem, as ratios to no enforcer. Prints tables.
//
// Runs in a private mount namespace on a private tmpfs; fapolicyd gets its config, rules,
// database and run directory bind-mounted there, so the host's fapolicyd setup (and the
// host's mounts) are not touched. Needs root; creates the user cgfan-bench (kept).
//
//   bench_fanotify [--quick] [--ops N] [--files N] [--rounds N] [--epochs N] [--zones 1,100,10000]
//                  [--no-fapolicyd] [--no-custguardd] [--worker-nice N]
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <grp.h>
#include <sys/fanotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/bare_responder.hpp"
#include "common/shipped_daemon.hpp"
#include "common/stats.hpp"
#include "support/support.hpp"
#include "daemon/fanotify/fanotify_enforcer.hpp"
#include "support/exec_plan.hpp"

using namespace custguard;
using custguard::bench::BareResponder;
using Clock = std::chrono::steady_clock;

namespace {

uid_t bench_uid = 60001;  // the allowed user (cgfan-bench, set in main)
gid_t bench_gid = 60001;
constexpr uid_t other_uid = 60009;  // in no allow list
int ops = 10000;
int files = 256;
int rounds = 5;
int epochs = 5;
// The enforcer class's answering threads (FanotifyOptions::worker_nice); the shipped
// custguardd always runs its default.
int worker_nice = daemon::FanotifyOptions{}.worker_nice;

bool sh(const std::string& what, int rc) {
    if (rc != 0) std::fprintf(stderr, "bench_fanotify: %s failed: %s\n", what.c_str(), std::strerror(errno));
    return rc == 0;
}

using cgtest::spit;  // throws when a file cannot be written

// ns per open+read+close of `dir`/f<i>, as `bench_uid` in a child; best of `rounds`.
// The enforcer's threads run in this process: the paths are built before the fork, the
// child makes system calls only (see tests/support/exec_plan.hpp).
double measure(const std::string& dir) {
    std::vector<std::string> paths;
    for (int i = 0; i < files; ++i) paths.push_back(dir + "/f" + std::to_string(i));
    int p[2];
    if (::pipe(p) != 0) return -1;
    pid_t pid = ::fork();
    if (pid == 0) {
        ::close(p[0]);
        if (::setgroups(0, nullptr) || ::setresgid(bench_gid, bench_gid, bench_gid) || ::setresuid(bench_uid, bench_uid, bench_uid)) ::_exit(1);
        char buf[4096];
        auto pass = [&](int n) {
            int failures = 0;
            for (int i = 0; i < n; ++i) {
                int fd = ::open(paths[static_cast<std::size_t>(i % files)].c_str(), O_RDONLY | O_CLOEXEC);
                if (fd < 0) { ++failures; continue; }
                (void)!::read(fd, buf, sizeof buf);
                ::close(fd);
            }
            return failures;
        };
        pass(files * 2);  // warm: caches, ignore marks
        double best = 1e18;
        for (int r = 0; r < rounds; ++r) {
            auto t0 = Clock::now();
            if (pass(ops) != 0) ::_exit(2);
            double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / ops;
            best = std::min(best, ns);
        }
        (void)!::write(p[1], &best, sizeof best);
        ::_exit(0);
    }
    ::close(p[1]);
    double result = -1;
    if (::read(p[0], &result, sizeof result) != sizeof result) result = -1;
    ::close(p[0]);
    int st = 0;
    ::waitpid(pid, &st, 0);
    return result;
}

struct Fapolicyd {
    pid_t pid = -1;
    bool start(const std::string& work, const std::string& zone) {
        std::string etc = work + "/fap-etc", lib = work + "/fap-lib", run = work + "/fap-run";
        for (const auto& d : {etc, etc + "/rules.d", etc + "/trust.d", lib, run, run + "/fapolicyd"}) ::mkdir(d.c_str(), 0755);
        spit(etc + "/fapolicyd.conf",
                   "permissive = 0\nnice_val = 0\nq_size = 640\nuid = root\ngid = root\n"
                   "do_stat_report = 0\ndetailed_report = 0\ndb_max_size = 50\nsubj_cache_size = 1549\n"
                   "obj_cache_size = 8191\nwatch_fs = tmpfs\ntrust = file\nintegrity = none\n"
                   "syslog_format = rule,dec,perm,auid,pid,exe,:,path,ftype,trust\nrpm_sha256_only = 0\n"
                   "allow_filesystem_mark = 0\n");
        // The equivalent of the custguard zone: only bench_uid may open files below `zone`.
        std::string rules = "allow perm=open uid=" + std::to_string(bench_uid) + " : dir=" + zone + "/\n" +
                            "deny perm=open all : dir=" + zone + "/\n" + "allow perm=any all : all\n";
        spit(etc + "/compiled.rules", rules);
        spit(etc + "/fapolicyd.rules", rules);
        spit(etc + "/fapolicyd.trust", "");
        spit(etc + "/trust.d/fapolicyd.trust", "");
        ::chown(lib.c_str(), 102, 105);
        ::chown((run + "/fapolicyd").c_str(), 102, 105);
        if (!sh("bind /etc/fapolicyd", ::mount(etc.c_str(), "/etc/fapolicyd", nullptr, MS_BIND, nullptr)) ||
            !sh("bind /var/lib/fapolicyd", ::mount(lib.c_str(), "/var/lib/fapolicyd", nullptr, MS_BIND, nullptr)) ||
            !sh("bind /run", ::mount(run.c_str(), "/run", nullptr, MS_BIND, nullptr)))
            return false;
        std::string log = work + "/fapolicyd.log";
        const cgtest::ExecPlan plan({"fapolicyd", "--debug-deny"});
        pid = ::fork();
        if (pid == 0) {
            int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            plan.exec();
        }
        // Ready once its fanotify group holds mount marks.
        for (int i = 0; i < 600; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            int st = 0;
            if (::waitpid(pid, &st, WNOHANG) == pid) {
                std::fprintf(stderr, "bench_fanotify: fapolicyd exited; see %s\n", log.c_str());
                pid = -1;
                return false;
            }
            std::string fdinfo_dir = "/proc/" + std::to_string(pid) + "/fdinfo";
            for (int fd = 0; fd < 64; ++fd) {
                std::ifstream in(fdinfo_dir + "/" + std::to_string(fd));
                for (std::string l; std::getline(in, l);)
                    if (l.rfind("fanotify mnt_id:", 0) == 0) return true;
            }
        }
        std::fprintf(stderr, "bench_fanotify: fapolicyd did not mark mounts in 30 s\n");
        return false;
    }
    void stop() {
        if (pid <= 0) return;
        ::kill(pid, SIGTERM);
        ::waitpid(pid, nullptr, 0);
        pid = -1;
    }
};

struct CustguardStats {
    std::uint64_t permission_events = 0, ignore_marks = 0, events = 0;
};

// Runs `body` with custguard's enforcer protecting `zone` (only bench_uid may read).
template <typename F>
bool with_custguard(const std::string& zone, bool record_allowed, CustguardStats& stats, F&& body) {
    policy::Compiled c;
    policy::CompiledZone z;
    z.id = 1;
    z.name = "customers";
    z.record_allowed = record_allowed;
    c.zones.push_back(z);
    c.roots.push_back({zone, 1});
    c.subjects.push_back({1, policy::SubjectKind::uid, bench_uid});
    daemon::FanotifyOptions o;
    o.use_fd_store = false;
    o.worker_nice = worker_nice;
    auto e = daemon::FanotifyEnforcer::create(std::move(o));
    if (!e) {
        std::fprintf(stderr, "bench_fanotify: %s\n", e.error().c_str());
        return false;
    }
    std::atomic<std::uint64_t> events{0};
    auto& enf = *e;
    if (!enf->start([&](daemon::AccessEvent&&) { events.fetch_add(1, std::memory_order_relaxed); }) || !enf->apply(c)) {
        std::fprintf(stderr, "bench_fanotify: cannot start the enforcer\n");
        return false;
    }
    body();
    auto s = enf->stats();
    enf->stop(true);
    stats.permission_events += s.permission_events;
    stats.ignore_marks += s.ignore_marks;
    stats.events += events.load();
    return true;
}

double best(double a, double b) { return a < 0 ? b : (b < 0 ? a : std::min(a, b)); }

struct Row {
    const char* name;
    std::string dir;
    bool record_allowed = true;
    // Per epoch: none, the three floors (BareResponder::Mode order), custguard, fapolicyd
    // (ns per op; -1: not measured).
    std::vector<double> none, floor[BareResponder::k_modes], custguard, fapolicyd;
};

// The median of the measured values: a negative one stands for a configuration not measured
// in that epoch (fapolicyd missing), -1 when none was.
double median(std::vector<double> v) {
    v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return x < 0; }), v.end());
    return bench::median(std::move(v));
}

// Median over epochs of (config - none of the same epoch).
double overhead(const std::vector<double>& cfg, const std::vector<double>& none) {
    std::vector<double> d;
    for (std::size_t i = 0; i < cfg.size() && i < none.size(); ++i)
        if (cfg[i] >= 0 && none[i] >= 0) d.push_back(cfg[i] - none[i]);
    if (d.empty()) return -1e18;
    std::sort(d.begin(), d.end());
    return d.size() % 2 ? d[d.size() / 2] : (d[d.size() / 2 - 1] + d[d.size() / 2]) / 2;
}

std::string cell(double base, double ovh, bool measured) {
    if (!measured) return "n/a";
    char b[64];
    std::snprintf(b, sizeof b, "%+.2f (%+.0f%%)", ovh / 1000.0, ovh / base * 100);
    return b;
}

// Can `uid` open `path`? In a child (the daemon's threads are not in this process, but
// the class's may be).
bool can_open_as(uid_t uid, const std::string& path) {
    pid_t pid = ::fork();
    if (pid == 0) {
        if (::setgroups(0, nullptr) || ::setresgid(uid, uid, uid) || ::setresuid(uid, uid, uid)) ::_exit(3);
        ::_exit(::open(path.c_str(), O_RDONLY | O_CLOEXEC) < 0 ? 1 : 0);
    }
    int st = 0;
    ::waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

// The shipped custguardd (ShippedDaemon: default flags, journald, private bus) with 1, 100
// and 10,000 zones on the measured filesystem: zone "customers" is `zone` (bench user
// allowed), the others zones/g<i % 12>/z<i> (root allowed). Each epoch runs every zone
// count, each followed by its own baseline; prints a table of ratios to no enforcer, beside
// the fanotify floor and fapolicyd of the first part (same run). Throws nothing: returns 1
// when a configuration did not run.
int shipped(const std::string& work, const std::string& fs, const std::string& zone, const std::string& out,
            const std::vector<int>& zone_counts, const Row& outside_row, const Row& zone_row) {
    struct Config {
        int zones;
        std::string policy;
        std::vector<double> out, in, none_out, none_in, start_ms;
    };
    std::vector<Config> configs;
    for (int n : zone_counts) {
        std::string text = "[daemon]\nenforcer = \"fanotify\"\n\n[[zone]]\nname = \"customers\"\npaths = [\"" + zone +
                           "\"]\nsensitivity = \"personal\"\non_violation = \"deny\"\nallow_users = [\"cgfan-bench\"]\n";
        for (int i = 1; i < n; ++i)
            text += "\n[[zone]]\nname = \"z" + std::to_string(i) + "\"\npaths = [\"" + fs + "/zones/g" +
                    std::to_string(i % 12) + "/z" + std::to_string(i) + "\"]\nallow_users = [\"root\"]\n";
        const std::string policy = work + "/policy-" + std::to_string(n) + ".toml";
        spit(policy, text);
        configs.push_back({n, policy, {}, {}, {}, {}, {}});
    }
    std::size_t allowed_records = 0;
    try {
        bench::ShippedDaemon daemon(work + "/custguardd");
        for (int epoch = 0; epoch < epochs; ++epoch) {
            for (auto& c : configs) {
                c.start_ms.push_back(daemon.start(c.policy));
                // It is in the path: a user not in the zone is refused, the allowed one reads.
                if (can_open_as(other_uid, zone + "/f0") || !can_open_as(bench_uid, zone + "/f0"))
                    throw std::runtime_error("custguardd with " + std::to_string(c.zones) +
                                             " zones does not enforce the zone:\n" + cgtest::slurp(daemon.log()));
                daemon.settle();
                c.out.push_back(measure(out));
                daemon.settle();
                c.in.push_back(measure(zone));
                if (!daemon.running())
                    throw std::runtime_error("custguardd exited while measured:\n" + cgtest::slurp(daemon.log()));
                daemon.stop();
                if (!can_open_as(other_uid, zone + "/f0"))
                    throw std::runtime_error("a zone file stays refused after custguardd stopped");
                daemon.settle();  // journald done with the zone reads' records
                c.none_out.push_back(measure(out));
                c.none_in.push_back(measure(zone));
            }
            std::fprintf(stderr, "custguardd epoch %d/%d done\n", epoch + 1, epochs);
        }
        for (const auto& e : daemon.journald().read("CUSTGUARD_ZONE=customers"))
            if (auto it = e.find("CUSTGUARD_DECISION"); it != e.end() && it->second == "allow") ++allowed_records;
        if (allowed_records == 0) throw std::runtime_error("no allowed-read record reached the journal");
        std::printf("\nshipped custguardd: %s --policy %s/policy-<zones>.toml (control plane on a private dbus-daemon, "
                    "scratch journald; %zu allowed-read records in the journal)\n",
                    CG_CUSTGUARDD, work.c_str(), allowed_records);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_fanotify: the shipped custguardd did not run: %s\n", e.what());
        return 1;
    }
    // Ratio per epoch (configuration / its own baseline), median over epochs.
    auto ratio = [](const std::vector<double>& cfg, const std::vector<double>& none) {
        std::vector<double> r;
        for (std::size_t i = 0; i < cfg.size(); ++i)
            if (cfg[i] > 0 && none[i] > 0) r.push_back(cfg[i] / none[i]);
        return median(r);
    };
    const double fs_floor_out = 1 + overhead(outside_row.floor[0], outside_row.none) / median(outside_row.none);
    const double fs_floor_in = 1 + overhead(zone_row.floor[0], zone_row.none) / median(zone_row.none);
    const double fap_in = overhead(zone_row.fapolicyd, zone_row.none);
    const bool fap_measured = median(zone_row.fapolicyd) >= 0 && fap_in > 0;
    char fap_text[32] = "n/a";
    if (fap_measured) std::snprintf(fap_text, sizeof fap_text, "%.2fx", 1 + fap_in / median(zone_row.none));
    std::printf("\nThe shipped custguardd, open+read(4 KiB)+close as the allowed user, %d epochs x best of %d rounds x %d ops;\n"
                "us per operation (median over epochs) and the median over epochs of (custguardd / none measured right after).\n"
                "Targets: outside <= 1.10x; 10,000 zones within 1.10x of 1 zone; zone-file overhead <= 1.0x fapolicyd's.\n"
                "Same run: fanotify floor (fs mark, allows at once) outside %.2fx, zone files %.2fx; fapolicyd zone files %s.\n\n",
                epochs, rounds, ops, fs_floor_out, fs_floor_in, fap_text);
    std::printf("| zones | start ms | none outside | outside | ratio | target <= 1.10 | none zone | zone file | ratio | "
                "overhead / fapolicyd's | target <= 1.0 |\n");
    std::printf("|------:|---------:|-------------:|--------:|------:|:--------------:|----------:|----------:|------:|"
                "-----------------------:|:-------------:|\n");
    for (const auto& c : configs) {
        const double ro = ratio(c.out, c.none_out), ri = ratio(c.in, c.none_in);
        const double ovh = overhead(c.in, c.none_in);
        char vs_fap[32] = "n/a", fap_met[16] = "n/a";
        if (fap_measured) {
            std::snprintf(vs_fap, sizeof vs_fap, "%.2f", std::max(ovh, 0.0) / fap_in);
            std::snprintf(fap_met, sizeof fap_met, "%s", std::max(ovh, 0.0) / fap_in <= 1.0 ? "met" : "NOT met");
        }
        std::printf("| %5d | %8.0f | %12.2f | %7.2f | %5.2f | %-14s | %9.2f | %9.2f | %5.2f | %22s | %-13s |\n", c.zones,
                    median(c.start_ms), median(c.none_out) / 1000, median(c.out) / 1000, ro, ro <= 1.10 ? "met" : "NOT met",
                    median(c.none_in) / 1000, median(c.in) / 1000, ri, vs_fap, fap_met);
    }
    const Config* one = nullptr;
    for (const auto& c : configs)
        if (c.zones == 1) one = &c;
    for (const auto& c : configs) {
        if (!one || c.zones == 1) continue;
        const double o = ratio(c.out, c.none_out) / ratio(one->out, one->none_out);
        const double z = ratio(c.in, c.none_in) / ratio(one->in, one->none_in);
        std::printf("%d zones against 1 zone: outside %.2fx, zone files %.2fx (target within 1.10x: %s)\n", c.zones, o, z,
                    o <= 1.10 && z <= 1.10 ? "met" : "NOT met");
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    bool with_fapolicyd = true, with_custguardd = true;
    std::vector<int> zone_counts = {1, 100, 10000};
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--quick") {
            ops = 2000;
            rounds = 3;
            epochs = 3;
        } else if (a == "--zones" && i + 1 < argc) {
            zone_counts.clear();
            for (std::string list = argv[++i]; !list.empty();) {
                const auto comma = list.find(',');
                zone_counts.push_back(std::max(1, std::atoi(list.substr(0, comma).c_str())));
                list = comma == std::string::npos ? "" : list.substr(comma + 1);
            }
        } else if (a == "--no-custguardd") with_custguardd = false;
        else if (a == "--ops" && i + 1 < argc) ops = std::atoi(argv[++i]);
        else if (a == "--files" && i + 1 < argc) files = std::atoi(argv[++i]);
        else if (a == "--rounds" && i + 1 < argc) rounds = std::atoi(argv[++i]);
        else if (a == "--epochs" && i + 1 < argc) epochs = std::atoi(argv[++i]);
        else if (a == "--no-fapolicyd") with_fapolicyd = false;
        else if (a == "--worker-nice" && i + 1 < argc) worker_nice = std::atoi(argv[++i]);
        else {
            std::fprintf(stderr, "usage: bench_fanotify [--quick] [--ops N] [--files N] [--rounds N] [--epochs N]\n"
                                 "                      [--zones 1,100,10000] [--no-fapolicyd] [--no-custguardd] [--worker-nice N]\n"
                                 "  --quick  --ops 2000 --rounds 3 --epochs 3 (a short run)\n"
                                 "  --worker-nice N  nice of the enforcer class's answering threads (default -10, as custguardd;\n"
                                 "                   0: left alone)\n");
            return 2;
        }
    }
    if (::geteuid() != 0) {
        std::fprintf(stderr, "bench_fanotify: needs root\n");
        return 1;
    }
    // A named user: the shipped daemon's policy lists users by name.
    const cgtest::Cred user = cgtest::ensure_user("cgfan-bench");
    bench_uid = user.uid;
    bench_gid = user.gid;
    if (!sh("unshare", ::unshare(CLONE_NEWNS)) ||
        !sh("make / private", ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr)))
        return 1;
    char tmpl[] = "/tmp/cgfan-bench.XXXXXX";
    std::string work = ::mkdtemp(tmpl);
    ::chmod(work.c_str(), 0755);  // the benchmark user must reach the files
    std::string fs = work + "/fs";
    ::mkdir(fs.c_str(), 0755);
    if (!sh("mount tmpfs", ::mount("tmpfs", fs.c_str(), "tmpfs", 0, "size=256m,mode=0755"))) return 1;
    std::string zone = fs + "/zone", out = fs + "/out";
    ::mkdir(zone.c_str(), 0755);
    ::mkdir(out.c_str(), 0755);
    std::string content(4096, 'x');
    for (int i = 0; i < files; ++i) {
        spit(zone + "/f" + std::to_string(i), content);
        spit(out + "/f" + std::to_string(i), content);
    }
    // The other zones of the shipped daemon's policies, on the same filesystem, all made
    // up front so that every configuration meets the same tree: zones/g<i % 12>/z<i>.
    const int max_zones = with_custguardd ? *std::max_element(zone_counts.begin(), zone_counts.end()) : 1;
    ::mkdir((fs + "/zones").c_str(), 0755);
    for (int g = 0; g < 12; ++g) ::mkdir((fs + "/zones/g" + std::to_string(g)).c_str(), 0755);
    for (int i = 1; i < max_zones; ++i) {
        const std::string z = fs + "/zones/g" + std::to_string(i % 12) + "/z" + std::to_string(i);
        ::mkdir(z.c_str(), 0755);
        spit(z + "/c.txt", "customer");
    }

    Row rows[] = {{"(a) outside zones, same fs", out},
                  {"(b) zone files, allowed user", zone},
                  {"(b') same, record_allowed=false", zone}};
    rows[2].record_allowed = false;
    // Every epoch measures every configuration right after a baseline of its own, so
    // load from other processes on this machine hits them alike; the table shows medians
    // over epochs of (configuration - baseline).
    CustguardStats cg;
    bool fap_ok = with_fapolicyd;
    for (int epoch = 0; epoch < epochs; ++epoch) {
        for (auto& r : rows) {
            r.none.push_back(measure(r.dir));
            double v = -1;
            for (int m = 0; m < BareResponder::k_modes; ++m) {
                v = -1;
                {
                    BareResponder bare;
                    if (bare.start(static_cast<BareResponder::Mode>(m), fs, zone, out, files)) v = measure(r.dir);
                }
                r.floor[m].push_back(v);
            }
            v = -1;
            if (!with_custguard(zone, r.record_allowed, cg, [&] { v = measure(r.dir); })) return 1;
            r.custguard.push_back(v);
            r.none.back() = best(r.none.back(), measure(r.dir));
        }
        if (fap_ok) {
            Fapolicyd fap;
            fap_ok = fap.start(work, zone);
            for (auto& r : rows) r.fapolicyd.push_back(fap_ok ? measure(r.dir) : -1);
            if (fap_ok && epoch == 0) {
                // The rule is in force: someone else is refused.
                const std::string f0 = zone + "/f0";
                pid_t pid = ::fork();
                if (pid == 0) {
                    if (::setresuid(60009, 60009, 60009)) ::_exit(3);
                    ::_exit(::open(f0.c_str(), O_RDONLY) < 0 ? 0 : 1);
                }
                int st = 0;
                ::waitpid(pid, &st, 0);
                std::printf("fapolicyd: deny rule %s\n",
                            WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "enforced" : "NOT enforced");
            }
            fap.stop();
            for (const char* m : {"/run", "/var/lib/fapolicyd", "/etc/fapolicyd"}) ::umount2(m, MNT_DETACH);
        }
        std::fprintf(stderr, "epoch %d/%d done\n", epoch + 1, epochs);
    }
    std::printf("custguard: %llu permission events, %llu ignore marks, %llu events recorded\n",
                static_cast<unsigned long long>(cg.permission_events),
                static_cast<unsigned long long>(cg.ignore_marks), static_cast<unsigned long long>(cg.events));

    std::printf("\nopen+read(4 KiB)+close as an allowed user on one tmpfs (%d files), %d epochs x best of %d rounds x %d ops.\n"
                "none: us per operation; other columns: overhead in us per operation against none measured in the same\n"
                "epoch (median over epochs). Floors, each a group that allows every open at once: fs mark = the\n"
                "filesystem marked, every open asks (the floor of any fanotify enforcer per permission event);\n"
                "fs mark + ignore = the same with an ignore mark on every outside file (the kernel-only floor of (a)\n"
                "with a filesystem mark); dir mark = only the zone directory marked (the (a) floor with inode marks);\n"
                "spinning = fs mark with a listener that never sleeps (burns a core; the lowest per-event cost);\n"
                "cg marks = custguard's marks (fs mark, evictable ignore marks, a rename-watching group), no user-space work.\n"
                "ratio: custguard overhead / fapolicyd overhead (target <= 0.33).\n\n",
                files, epochs, rounds, ops);
    std::printf("| %-32s | %6s | %-16s | %-16s | %-16s | %-16s | %-16s | %-18s | %-16s | %5s |\n", "case", "none",
                "fs mark", "fs mark + ignore", "dir mark", "spinning", "cg marks", "custguard-fanotify", "fapolicyd",
                "ratio");
    std::printf("|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", std::string(34, '-').c_str(), std::string(8, '-').c_str(),
                std::string(18, '-').c_str(), std::string(18, '-').c_str(), std::string(18, '-').c_str(),
                std::string(18, '-').c_str(), std::string(18, '-').c_str(), std::string(20, '-').c_str(),
                std::string(18, '-').c_str(), std::string(7, '-').c_str());
    for (const auto& r : rows) {
        double none = median(r.none);
        double cgo = overhead(r.custguard, r.none);
        // fapolicyd runs in its own phase of each epoch: against that epoch's baseline.
        double fpo = overhead(r.fapolicyd, r.none);
        bool fap_measured = median(r.fapolicyd) >= 0;
        char ratio[32] = "n/a";
        if (fap_measured && fpo > 0) std::snprintf(ratio, sizeof ratio, "%.2f", std::max(cgo, 0.0) / fpo);
        std::string floors[BareResponder::k_modes];
        for (int m = 0; m < BareResponder::k_modes; ++m)
            floors[m] = cell(none, overhead(r.floor[m], r.none), median(r.floor[m]) >= 0);
        std::printf("| %-32s | %6.2f | %-16s | %-16s | %-16s | %-16s | %-16s | %-18s | %-16s | %5s |\n", r.name,
                    none / 1000.0, floors[0].c_str(), floors[1].c_str(), floors[2].c_str(), floors[3].c_str(),
                    floors[4].c_str(), cell(none, cgo, true).c_str(), cell(none, fpo, fap_measured).c_str(), ratio);
    }
    int status = 0;
    if (with_custguardd) status = shipped(work, fs, zone, out, zone_counts, rows[0], rows[1]);
    ::umount2(fs.c_str(), MNT_DETACH);
    return status;
}
