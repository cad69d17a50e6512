// A real workload on the zones' filesystem, outside every zone: extract a tar of ~10,000 new
// files (tar -xf, a real GNU tar process) into a fresh directory, then read every file back
// (open, read to the end, close, in this process). Configurations, interleaved in rounds
// with the order alternating: none; the shipped custguardd in its default configuration
// (bench/common/shipped_daemon.hpp: journald, audit as shipped, private bus) with one zone
// elsewhere on that filesystem; the bare fanotify floor (bench/common/bare_responder.hpp: a
// filesystem mark, every open allowed at once, what any fanotify enforcer that marks the
// filesystem pays); and a listener that marks only the zone directory (what an enforcer
// built on marks on the zone trees would pay here). Prints medians and ratios to none.
// A benchmark, not a test: no pass/fail for the figures, but it fails when a configuration
// did not run (custguardd does not enforce the zone, a listener answered nothing).
// `--enforcer bpf-lsm` runs the same in the VM of tests/vm/cg-vm-run with BPF LSM: the
// policy chooses bpf-lsm, and there are no fanotify floors.
//
//   custguard_bench_workload [--quick] [--files N] [--rounds N] [--tree DIR] [--no-floor]
//                            [--enforcer fanotify|bpf-lsm]
// Root; its own mount namespace; a tmpfs under /tmp. See bench/README.md.
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/bare_responder.hpp"
#include "common/bpf_fixed_cost.hpp"
#include "common/bpf_stats.hpp"
#include "common/shipped_daemon.hpp"
#include "common/stats.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using custguard::bench::BareResponder;
using custguard::bench::ShippedDaemon;
using custguard::bench::median;

namespace {

struct Options {
    int files = 10000;
    int rounds = 5;
    std::string tree;  // a real tree to tar instead of generated files
    bool floor = true;
    std::string enforcer = "fanotify";
};

[[noreturn]] void usage(int status) {
    std::fprintf(status ? stderr : stdout,
                 "usage: custguard_bench_workload [--quick] [--files N] [--rounds N] [--tree DIR] [--no-floor]\n"
                 "                                [--enforcer fanotify|bpf-lsm]\n"
                 "  --files N   generated files in the tarball (default 10000, 100 directories, 0.5-16 KiB)\n"
                 "  --rounds N  interleaved rounds (default 5)\n"
                 "  --quick     --files 2000 --rounds 3\n"
                 "  --tree DIR  tar DIR (e.g. /usr/include) instead of generated files\n"
                 "  --no-floor  leave out the bare fanotify listeners\n"
                 "  --enforcer MODE  the policy's enforcer: fanotify (default, the host) or bpf-lsm (in the VM:\n"
                 "              tests/vm/cg-vm-run --mem 2048 -- custguard_bench_workload --enforcer bpf-lsm; no floors)\n"
                 "Root. See bench/README.md.\n");
    std::exit(status);
}

std::string loadavg() {
    std::ifstream in("/proc/loadavg");
    std::string a, b, c;
    in >> a >> b >> c;
    return a + " " + b + " " + c;
}

// Reads every regular file below `dir`; returns how many.
std::size_t read_back(const std::string& dir, std::vector<char>& buf) {
    std::size_t n = 0;
    DIR* d = ::opendir(dir.c_str());
    if (!d) throw std::runtime_error("opendir " + dir + ": " + std::strerror(errno));
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2]))) continue;
        const std::string p = dir + "/" + e->d_name;
        if (e->d_type == DT_DIR) {
            n += read_back(p, buf);
        } else if (e->d_type == DT_REG) {
            const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) throw std::runtime_error("open " + p + ": " + std::strerror(errno));
            while (::read(fd, buf.data(), buf.size()) > 0) {
            }
            ::close(fd);
            ++n;
        }
    }
    ::closedir(d);
    return n;
}

bool can_open_as(uid_t uid, const std::string& path) {
    pid_t pid = ::fork();
    if (pid == 0) {
        if (::setresgid(uid, uid, uid) || ::setresuid(uid, uid, uid)) ::_exit(3);
        ::_exit(::open(path.c_str(), O_RDONLY | O_CLOEXEC) < 0 ? 1 : 0);
    }
    int st = 0;
    ::waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h") usage(0);
        if (a == "--quick") {
            opt.files = 2000;
            opt.rounds = 3;
        } else if (a == "--no-floor") {
            opt.floor = false;
        } else if (i + 1 < argc && a == "--enforcer") {
            opt.enforcer = argv[++i];
            if (opt.enforcer != "fanotify" && opt.enforcer != "bpf-lsm") usage(2);
        } else if (i + 1 < argc && a == "--tree") {
            opt.tree = argv[++i];
        } else if (i + 1 < argc && (a == "--files" || a == "--rounds")) {
            const int v = std::atoi(argv[++i]);
            if (v <= 0) usage(2);
            (a == "--files" ? opt.files : opt.rounds) = v;
        } else {
            usage(2);
        }
    }
    if (::geteuid() != 0) {
        std::fprintf(stderr, "custguard_bench_workload: needs root (mounts, fanotify, custguardd)\n");
        return 2;
    }
    if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
        std::perror("custguard_bench_workload: private mount namespace");
        return 2;
    }
    char tmpl[] = "/tmp/cgwork-bench.XXXXXX";
    if (!::mkdtemp(tmpl)) {
        std::perror("mkdtemp");
        return 1;
    }
    const fs::path work = tmpl;
    ::chmod(work.c_str(), 0755);
    const fs::path data = work / "fs";  // the zones' filesystem
    int status = 0;
    bool mounted = false;
    try {
        // The tarball lives on /tmp's filesystem, not the measured one.
        const fs::path src = work / "src", tarball = work / "tree.tar";
        std::string tar_of = opt.tree;
        if (tar_of.empty()) {
            std::mt19937 rng(42);
            std::uniform_int_distribution<int> size(512, 16384);
            std::string content(16384, 'x');
            for (int i = 0; i < opt.files; ++i) {
                const fs::path d = src / ("d" + std::to_string(i % 100));
                if (i < 100) fs::create_directories(d);
                std::ofstream(d / ("f" + std::to_string(i) + ".h")).write(content.data(), size(rng));
            }
            tar_of = src.string();
        }
        auto tar = cgtest::run({"tar", "-C", tar_of, "-cf", tarball.string(), "."}, {}, std::nullopt,
                               std::chrono::seconds(600));
        if (tar.rc != 0) throw std::runtime_error("tar -cf: " + tar.err);
        std::size_t expected = 0;
        for (const auto& e : fs::recursive_directory_iterator(tar_of))
            expected += e.is_regular_file() && !e.is_symlink();
        fs::create_directories(data);
        if (::mount("cgwork-bench", data.c_str(), "tmpfs", 0, "mode=0755,size=2g") != 0)
            throw std::runtime_error(std::string("mount tmpfs: ") + std::strerror(errno));
        mounted = true;
        const fs::path zone = data / "customers";
        fs::create_directories(zone);
        cgtest::spit(zone / "c.txt", "customer\n");
        const fs::path policy = work / "policy.toml";
        cgtest::spit(policy, "[daemon]\nenforcer = \"" + opt.enforcer + "\"\n\n[[zone]]\nname = \"customers\"\npaths = [\"" +
                                 zone.string() +
                                 "\"]\nsensitivity = \"personal\"\non_violation = \"deny\"\nallow_users = [\"root\"]\n");
        const bool bpf_lsm = opt.enforcer == "bpf-lsm";
        ShippedDaemon daemon(work / "custguardd", bpf_lsm);

        enum class Kind { none, custguardd, floor_fs, floor_zone_dir };
        struct Config {
            const char* name;
            Kind kind;
            std::vector<double> extract, read, total, cpu_ms;
            // custguardd with BPF LSM: its programs' run time (BPF stats) and runs, and its and
            // journald's CPU while nothing ran (% of one CPU), per round.
            std::vector<double> bpf_ms, runs, idle_pct;
        };
        std::vector<Config> configs = {{"none", Kind::none, {}, {}, {}}, {"custguardd", Kind::custguardd, {}, {}, {}}};
        if (opt.floor && !bpf_lsm) {  // the floors are fanotify listeners
            configs.push_back({"floor: fs mark", Kind::floor_fs, {}, {}, {}});
            configs.push_back({"floor: zone-dir mark", Kind::floor_zone_dir, {}, {}, {}});
        }
        constexpr uid_t other_uid = 60009;  // in no allow list: refused by an enforcing custguardd
        std::vector<char> buf(1 << 16);
        int turn_no = 0;
        double idle_rate = 0;  // custguardd + journald CPU ms per ms while nothing runs
        const std::string k_pins = "/sys/fs/bpf/custguard";  // custguardd's pinned links (bpf-lsm)
        // BPF LSM: the fixed cost per program run, measured before anything else runs.
        double fixed_ns = 0;
        custguard::bench::FixedCost fixed;
        if (bpf_lsm) {
            cgtest::spit(data / "probe", std::string(128, 'x'));
            fixed = custguard::bench::bpf_fixed_cost((data / "probe").string());
            fixed_ns = std::max(0.0, fixed.ns);
        }
        // One turn: extract into a fresh directory outside the zone, read it all back.
        auto turn = [&](Config* c) {
            const fs::path dest = data / ("x" + std::to_string(++turn_no));
            fs::create_directories(dest);
            std::unique_ptr<BareResponder> floor;
            if (c && c->kind == Kind::custguardd) {
                daemon.start(policy, std::chrono::seconds(600));  // TCG: loading BPF takes long
                if (can_open_as(other_uid, (zone / "c.txt").string()))
                    throw std::runtime_error("custguardd does not enforce the zone:\n" + cgtest::slurp(daemon.log()));
                // Done starting (and recording the refusal) before the workload is timed: on
                // the VM's one CPU its start-up work would otherwise land in the figures.
                daemon.settle();
                if (bpf_lsm) idle_rate = daemon.idle_rate();
            } else if (c && (c->kind == Kind::floor_fs || c->kind == Kind::floor_zone_dir)) {
                floor = std::make_unique<BareResponder>();
                const auto mode = c->kind == Kind::floor_fs ? BareResponder::Mode::filesystem
                                                            : BareResponder::Mode::zone_directory;
                if (!floor->start(mode, data.string(), zone.string()))
                    throw std::runtime_error(std::string("cannot start the bare fanotify listener: ") +
                                             std::strerror(errno));
            }
            const bool cg = c && c->kind == Kind::custguardd;
            std::optional<custguard::bench::StatsOn> stats;
            if (cg && bpf_lsm) stats.emplace();
            const auto bpf0 = custguard::bench::pinned_links_stats(k_pins);
            const double cpu0 = cg ? daemon.cpu_ms() : 0;
            const auto t0 = Clock::now();
            auto x = cgtest::run({"tar", "-C", dest.string(), "-xf", tarball.string()}, {}, std::nullopt,
                                 std::chrono::seconds(600));
            const auto t1 = Clock::now();
            if (x.rc != 0) throw std::runtime_error("tar -xf: " + x.err);
            const std::size_t n = read_back(dest.string(), buf);
            const auto t2 = Clock::now();
            if (n != expected)
                throw std::runtime_error("read back " + std::to_string(n) + " files, expected " + std::to_string(expected));
            const auto bpf1 = custguard::bench::pinned_links_stats(k_pins);
            stats.reset();
            double cpu = 0;
            if (cg) {
                daemon.settle();  // done with the workload: its CPU for it, less its idle rate meanwhile
                const double window_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
                cpu = std::max(0.0, daemon.cpu_ms() - cpu0 - idle_rate * window_ms);
                if (!daemon.running())
                    throw std::runtime_error("custguardd exited during the workload:\n" + cgtest::slurp(daemon.log()));
                daemon.stop();
                if (!can_open_as(other_uid, (zone / "c.txt").string()))
                    throw std::runtime_error("the zone file stays refused after custguardd stopped");
            } else if (floor) {
                // In the path: the fs mark answered every read-back open; the zone-dir mark
                // answers an open in the zone.
                if (c->kind == Kind::floor_zone_dir) can_open_as(0, (zone / "c.txt").string());
                const std::uint64_t need = c->kind == Kind::floor_fs ? expected : 1;
                if (floor->answered.load() < need)
                    throw std::runtime_error(std::string(c->name) + ": the listener answered " +
                                             std::to_string(floor->answered.load()) + " opens, fewer than " +
                                             std::to_string(need) + ": it was not in the path");
            }
            floor.reset();
            fs::remove_all(dest);  // untimed, with nothing in the path
            if (c) {
                c->extract.push_back(std::chrono::duration<double>(t1 - t0).count());
                c->read.push_back(std::chrono::duration<double>(t2 - t1).count());
                c->total.push_back(std::chrono::duration<double>(t2 - t0).count());
                c->cpu_ms.push_back(cpu);
                if (cg && bpf_lsm) {
                    c->bpf_ms.push_back(static_cast<double>(bpf1.ns - bpf0.ns) / 1e6);
                    c->runs.push_back(static_cast<double>(bpf1.runs - bpf0.runs));
                    c->idle_pct.push_back(100 * idle_rate);
                }
                std::printf("| %5d | %-22s | %9.3f | %6.3f | %7.3f | %14.0f |\n", static_cast<int>(c->total.size()),
                            c->name, c->extract.back(), c->read.back(), c->total.back(), cpu);
                std::fflush(stdout);
            }
        };

        std::printf("# custguard workload benchmark: extract %zu new files (tar -xf %s, of %s) into a fresh directory\n"
                    "# outside every zone on the zones' tmpfs, then read every file back; %d rounds, order alternating.\n"
                    "# custguardd (%s): %s --policy %s (one zone, %s, elsewhere on that tmpfs; control plane on a\n"
                    "# private dbus-daemon, scratch journald). Load average at start %s (%ld CPUs, %s).\n\n",
                    expected, tarball.c_str(), tar_of.c_str(), opt.rounds, opt.enforcer.c_str(), CG_CUSTGUARDD,
                    policy.c_str(), zone.c_str(), loadavg().c_str(), ::sysconf(_SC_NPROCESSORS_ONLN),
                    custguard::bench::in_vm() ? "the guest's own, in the qemu VM under TCG" : "shared with other work");
        turn(nullptr);  // warm-up: tar, the page cache of the tarball, tmpfs
        std::printf("| round | config                 | extract s | read s | total s | cg+journald ms |\n"
                    "|------:|------------------------|----------:|-------:|--------:|---------------:|\n");
        for (int round = 0; round < opt.rounds; ++round)
            for (std::size_t k = 0; k < configs.size(); ++k)
                turn(&configs[round % 2 ? configs.size() - 1 - k : k]);

        const Config& none = configs[0];
        std::printf("\nMedians over %d rounds; ratio = median total / median total of none; per round = range of "
                    "(total / none's total of the same round); cg+journald ms: CPU of custguardd and the scratch journald for the\n"
                    "workload (until idle). Target for custguardd: <= 1.10x.\n\n",
                    opt.rounds);
        std::printf("| config                 | extract s | read s | total s | ratio | per round   | target <= 1.10 | cg+journald ms |\n"
                    "|------------------------|----------:|-------:|--------:|------:|-------------|:--------------:|---------------:|\n");
        for (const auto& c : configs) {
            std::vector<double> per;
            for (std::size_t i = 0; i < c.total.size(); ++i) per.push_back(c.total[i] / none.total[i]);
            const double r = median(c.total) / median(none.total);
            std::printf("| %-22s | %9.3f | %6.3f | %7.3f | %5.2f | %.2f..%.2f  | %-14s | %14.0f |\n", c.name,
                        median(c.extract), median(c.read), median(c.total), r, *std::min_element(per.begin(), per.end()),
                        *std::max_element(per.begin(), per.end()),
                        c.kind == Kind::custguardd ? (r <= 1.10 ? "met" : "NOT met") : "", median(c.cpu_ms));
        }
        if (bpf_lsm) {
            // Composed (bench/README.md "vm"): none's total plus what custguardd adds, each
            // term measured on its own in custguardd's rounds: its programs' run time (BPF
            // stats, less the stats' own floor per run: the empty program's run time under
            // them, whose run the fixed cost holds), the fixed cost of each run (empty program
            // against none, above) and its and journald's CPU (on the VM's one CPU all of it
            // lands on the workload's).
            // The raw ratio above drifts by more than custguardd adds under TCG.
            const Config& cg = configs[1];
            std::vector<double> added_s, per, programs_ms;
            for (std::size_t i = 0; i < cg.total.size(); ++i) {
                programs_ms.push_back(std::max(0.0, cg.bpf_ms[i] - cg.runs[i] * fixed.stats_floor_ns / 1e6));
                added_s.push_back((programs_ms.back() + cg.runs[i] * fixed_ns / 1e6 + cg.cpu_ms[i]) / 1e3);
                per.push_back((none.total[i] + added_s.back()) / none.total[i]);
            }
            std::vector<double> runs_fixed_ms;
            for (double r : cg.runs) runs_fixed_ms.push_back(r * fixed_ns / 1e6);
            const double composed = median(none.total) + median(added_s), r = composed / median(none.total);
            std::printf("\nComposed (the figure the target is judged on): none's median total + custguardd's programs' run "
                        "time (BPF stats, less %.0f ns per run: the empty program's run time under them) + their runs x the fixed cost of a BPF LSM program run (%.0f ns: empty\n"
                        "program against none, median of %d pairs of adjacent sides, each the best of %d batches of %d opens, "
                        "attached and detached in turn; IQR %.0f-%.0f) + custguardd and journald CPU; medians over rounds; per "
                        "round = range of the same sum per round / none's total of that round.\n\n",
                        fixed.stats_floor_ns, fixed_ns, fixed.pairs, fixed.batches, fixed.ops, fixed.p25, fixed.p75);
            std::printf("| none s | + programs ms (stats ms) | runs | + fixed ms | + cg+journald CPU ms | composed s | ratio | per round "
                        "| target <= 1.10 | idle CPU %% |\n"
                        "|-------:|-------------------------:|-----:|-----------:|--------------------:|-----------:|------:|-----------|"
                        ":--------------:|-----------:|\n");
            std::printf("| %6.3f | %11.1f (%10.1f) | %4.0f | %10.1f | %19.1f | %10.3f | %5.3f | %.3f..%.3f | %-14s | %10.2f |\n",
                        median(none.total), median(programs_ms), median(cg.bpf_ms), median(cg.runs), median(runs_fixed_ms), median(cg.cpu_ms),
                        composed, r, *std::min_element(per.begin(), per.end()), *std::max_element(per.begin(), per.end()),
                        r <= 1.10 ? "met" : "NOT met", median(cg.idle_pct));
        }
        std::printf("\nload average at end %s\n", loadavg().c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "custguard_bench_workload: %s\n", e.what());
        status = 1;
    }
    if (mounted) ::umount2(data.c_str(), MNT_DETACH);
    std::error_code ec;
    fs::remove_all(work, ec);
    return status;
}
