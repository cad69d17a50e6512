// custguard_bench_audit_rules [--custguardd PATH] [--zones 1,100,2000,10000] [--ops N] [--runs R]
// [--per-zone-max Z]: what the audit rules cost every process of the machine. For each zone
// count, open+read+close (as root, median of R batches of N) of a file outside every zone,
// of a file beside the zones (under their common parent directory, outside every zone) and
// of a zone file, with:
//   none            no custguardd, no audit rules (the baseline)
//   per-zone rules  one audit tree watch per zone, as custguardd added before the bound
//                   (installed here with the same library; up to --per-zone-max zones, as
//                   the kernel takes ~15 ms to delete each)
//   observe         custguardd --enforcer none (audit is the sensor, bounded rules)
//   fanotify        custguardd --enforcer fanotify (audit off by default)
//   fanotify+audit  custguardd --enforcer fanotify --audit (cross-check, bounded rules)
// Everything lives on a tmpfs in a private mount namespace: the fanotify enforcer marks
// the zones' whole filesystem. Root only. Prints a table (µs per open+read+close, ratio).
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon/audit/netlink.hpp"
#include "daemon/audit/rules.hpp"

namespace fs = std::filesystem;
using namespace custguard::audit;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int groups = 12;

struct Layout {
    fs::path root, outside, beside, zone_file, policy;
};

void write_file(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
}

Layout make_layout(const fs::path& base, int zones) {
    Layout l;
    l.root = base / ("n" + std::to_string(zones));
    std::string pol;
    for (int i = 0; i < zones; ++i) {
        const fs::path z = l.root / "zones" / ("g" + std::to_string(i % groups)) / ("z" + std::to_string(i));
        fs::create_directories(z);
        pol += "[[zone]]\nname = \"z" + std::to_string(i) + "\"\npaths = [\"" + z.string() +
               "\"]\nallow_users = [\"root\"]\n";
    }
    l.outside = l.root / "outside/f.txt";
    l.beside = l.root / "zones/g0/plain/f.txt";
    l.zone_file = l.root / "zones/g0/z0/c.txt";
    l.policy = l.root / "policy.toml";
    write_file(l.outside, "outside");
    write_file(l.beside, "beside");
    write_file(l.zone_file, "customer");
    write_file(l.policy, pol);
    return l;
}

struct Cost {
    double wall = 0;  // µs per open+read+close, median
    double cpu = 0;   // of this thread only: the rules' cost in the kernel, without waiting
                      // for a CPU on a loaded machine (a fanotify decision is off-CPU)
};

double thread_cpu_us() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

// Medians over `runs` batches of `ops` open+read+close.
Cost measure(const fs::path& p, int ops, int runs) {
    std::vector<double> wall, cpu;
    char buf[64];
    for (int r = 0; r < runs; ++r) {
        const auto t0 = Clock::now();
        const double c0 = thread_cpu_us();
        for (int i = 0; i < ops; ++i) {
            int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) return {-1, -1};
            (void)!::read(fd, buf, sizeof buf);
            ::close(fd);
        }
        cpu.push_back((thread_cpu_us() - c0) / ops);
        wall.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / ops);
    }
    std::sort(wall.begin(), wall.end());
    std::sort(cpu.begin(), cpu.end());
    return {wall[wall.size() / 2], cpu[cpu.size() / 2]};
}

struct Daemon {
    pid_t pid = -1;
    fs::path log;
    bool start(const std::string& exe, const Layout& l, const std::string& enforcer, bool audit) {
        log = l.root / ("custguardd-" + enforcer + (audit ? "-audit" : "") + ".log");
        fs::remove(log);
        std::vector<std::string> args = {"custguardd", "--policy", l.policy.string(), "--state-dir",
                                         (l.root / "state").string(), "--enforcer", enforcer, "--no-journal",
                                         "--bus-address", "unix:path=/nonexistent"};
        if (audit) args.push_back("--audit");
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        const std::string log_path = log.string();
        pid = ::fork();
        if (pid < 0) return false;
        if (pid == 0) {
            int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            ::execv(exe.c_str(), argv.data());
            ::_exit(127);
        }
        // The last line of a start: "enforcer NAME: ...".
        for (int i = 0; i < 1200; ++i) {
            std::ifstream in(log);
            std::stringstream ss;
            ss << in.rdbuf();
            if (ss.str().find("info: enforcer ") != std::string::npos) return true;
            int st = 0;
            if (::waitpid(pid, &st, WNOHANG) == pid) {
                pid = -1;
                std::fprintf(stderr, "custguardd exited:\n%s\n", ss.str().c_str());
                return false;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        return false;
    }
    void stop() {
        if (pid <= 0) return;
        ::kill(pid, SIGTERM);
        ::waitpid(pid, nullptr, 0);
        pid = -1;
    }
    ~Daemon() { stop(); }
};

std::size_t rules_with_key(AuditControl& c, std::string_view prefix) {
    auto l = c.list_rules();
    if (!l) return 0;
    return static_cast<std::size_t>(
        std::count_if(l->begin(), l->end(), [&](const ListedRule& r) { return r.key.starts_with(prefix); }));
}

std::vector<int> parse_list(const char* s) {
    std::vector<int> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) out.push_back(std::stoi(item));
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    std::string exe = CG_CUSTGUARDD;
    std::vector<int> zone_counts = {1, 100, 2000, 10000};
    int ops = 20000, runs = 5, per_zone_max = 2000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--custguardd")) exe = argv[i + 1];
        else if (!std::strcmp(argv[i], "--zones")) zone_counts = parse_list(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--ops")) ops = std::stoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--runs")) runs = std::stoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--per-zone-max")) per_zone_max = std::stoi(argv[i + 1]);
        else {
            std::fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (::geteuid() != 0) {
        std::fprintf(stderr, "bench_audit_rules: needs root (audit rules, fanotify)\n");
        return 1;
    }
    if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
        std::perror("bench_audit_rules: private mount namespace");
        return 1;
    }
    char tmpl[] = "/tmp/cg-bench-audit-XXXXXX";
    if (!::mkdtemp(tmpl) || ::mount("tmpfs", tmpl, "tmpfs", 0, "size=256m,mode=0755") != 0) {
        std::perror("bench_audit_rules: tmpfs");
        return 1;
    }
    const fs::path base = tmpl;
    auto control = AuditControl::open();
    if (!control) {
        std::fprintf(stderr, "bench_audit_rules: %s\n", control.error().c_str());
        return 1;
    }
    auto st = control->status();
    if (!st) {
        std::fprintf(stderr, "bench_audit_rules: %s\n", st.error().c_str());
        return 1;
    }
    const bool was_enabled = st->enabled != 0;

    std::printf("open+read+close as root, µs: wall / CPU time of the reading thread (medians of %d x %d);\n"
                "ratio of CPU time to none in ()\n",
                runs, ops);
    std::printf("custguardd: %s; audit rules already in the kernel: %zu\n\n", exe.c_str(),
                control->list_rules() ? control->list_rules()->size() : 0);
    std::printf("%6s  %-15s %5s  %23s  %23s  %23s\n", "zones", "setup", "rules", "outside", "beside zones",
                "zone file");
    int failures = 0;
    for (int zones : zone_counts) {
        const Layout l = make_layout(base, zones);
        Cost base[3];
        auto row = [&](const char* setup, std::size_t rules) {
            const Cost c[3] = {measure(l.outside, ops, runs), measure(l.beside, ops, runs),
                               measure(l.zone_file, ops, runs)};
            if (base[0].cpu == 0) std::copy(std::begin(c), std::end(c), std::begin(base));
            std::printf("%6d  %-15s %5zu", zones, setup, rules);
            for (int i = 0; i < 3; ++i)
                std::printf("  %7.2f / %5.2f (%5.2fx)", c[i].wall, c[i].cpu, c[i].cpu / base[i].cpu);
            std::printf("\n");
            std::fflush(stdout);
        };
        row("none", 0);
        if (zones <= per_zone_max) {
            // The rules custguardd added before the bound: one tree watch per zone.
            if (!was_enabled) (void)control->set_enabled(true);
            std::size_t added = 0;
            for (int i = 0; i < zones; ++i) {
                const fs::path z = l.root / "zones" / ("g" + std::to_string(i % groups)) / ("z" + std::to_string(i));
                if (control->add_read_watch(z.string(), "custguard:bench:z" + std::to_string(i), true)) ++added;
            }
            row("per-zone rules", added);
            (void)remove_our_rules(*control, "bench");
            if (!was_enabled) (void)control->set_enabled(false);
        }
        const struct {
            const char* name;
            const char* enforcer;
            bool audit;
        } setups[] = {{"observe", "none", false}, {"fanotify", "fanotify", false}, {"fanotify+audit", "fanotify", true}};
        for (const auto& s : setups) {
            Daemon d;
            if (!d.start(exe, l, s.enforcer, s.audit)) {
                std::printf("%6d  %-15s custguardd did not start (log %s)\n", zones, s.name, d.log.c_str());
                ++failures;
                continue;
            }
            const std::string tag = instance_tag(fs::weakly_canonical(l.root / "state").string());
            row(s.name, rules_with_key(*control, "custguard:" + tag + ":"));
            d.stop();
        }
    }
    ::umount2(tmpl, MNT_DETACH);
    fs::remove_all(base);
    return failures ? 1 : 0;
}
