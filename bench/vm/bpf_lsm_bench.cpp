// Open-path overhead of the BPF-LSM enforcer: open+read+close of files outside zones and
// of zone files, with no enforcer, with a 1-zone and with a 10,000-zone policy, measured
// in one run and printed as a table of ratios; then the same cases with the shipped
// custguardd in its default configuration (the policy's enforcer = "bpf-lsm", default
// flags: audit as shipped, allowed reads recorded to a scratch journald, control plane on a
// private dbus-daemon with the shipped org.custguard1.conf: bench/common/shipped_daemon.hpp)
// with 1, 100 and 10,000 zones: composed figures (no enforcer + the fixed cost of a BPF LSM
// program + custguardd's file_open run time + custguardd's and journald's CPU per operation,
// each measured on its own) beside raw ones against no enforcer measured right after it.
// Runs as root inside the VM (cg-vm-run); `--baseline-only` measures only the no-enforcer
// column (for the VM factor, on the host), whose "outside zones, same fs as zones" figure
// `--host-ns` takes in the VM run to print native-equivalent figures.
//
//   custguard_bench_bpf_lsm [--quick] [--rounds N] [--epochs N] [--zones 1,100,10000]
//                           [--no-custguardd] [--host-ns NS]
//   custguard_bench_bpf_lsm --baseline-only
// The class is also measured with every allowed read recorded (read_interval 0), as before
// allowed reads were recorded once per process, file and interval (struct cg_read).
// Figures and which targets are met: bench/README.md, "vm".
#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf_lsm_enforcer.hpp"
#include "cg_null.skel.h"
#include "common/bpf_fixed_cost.hpp"
#include "common/bpf_stats.hpp"
#include "common/stats.hpp"
#include "common/open_loop.hpp"
#include "common/shipped_daemon.hpp"
#include "vm_support.hpp"

using namespace custguard;
using custguard::daemon::bpf_lsm::BpfLsmEnforcer;

namespace {

struct Case {
    const char* name;
    std::string path;
};

using bench::median;
using bench::ns_per_op;

// Run time of the attached file_open program itself (kernel BPF stats: run_time_ns and
// run_cnt), reached through the pinned link: isolates the program from the open path,
// whose TCG noise (±5%) is larger than the differences between conditions.
using bench::prog_stats;

// The fastest batch: other load on the machine (TCG on shared cores) only adds time, so
// the minimum over many short interleaved batches is the stable estimate.
double best(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }

// The best of each round's `batches` consecutive batches.
std::vector<double> round_bests(const std::vector<double>& v, int batches)
{
    std::vector<double> out;
    for (std::size_t i = 0; i + static_cast<std::size_t>(batches) <= v.size(); i += batches)
        out.push_back(*std::min_element(v.begin() + static_cast<std::ptrdiff_t>(i),
                                        v.begin() + static_cast<std::ptrdiff_t>(i) + batches));
    return out;
}

// a[r] / b[r] for every round r: conditions measured seconds apart, so slow drift in the
// host's speed cancels out of each ratio.
std::vector<double> paired_ratios(const std::vector<double>& a, const std::vector<double>& b)
{
    std::vector<double> out;
    for (std::size_t r = 0; r < std::min(a.size(), b.size()); ++r)
        out.push_back(a[r] / b[r]);
    return out;
}

// "median (p25-p75)" of v.
std::string spread(const std::vector<double>& v)
{
    if (v.empty())
        return "-";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3f (%.3f-%.3f)", bench::quantile(v, 0.5), bench::quantile(v, 0.25),
                  bench::quantile(v, 0.75));
    return buf;
}

policy::Compiled zones_policy(const std::string& base, int n, bool record)
{
    std::vector<vmtest::ZoneSpec> specs;
    for (int i = 1; i <= n; ++i) {
        vmtest::ZoneSpec z;
        char name[32];
        std::snprintf(name, sizeof name, "/z%05d", i);
        z.roots = {base + "/zones" + name};
        z.uids = {0, 1001};
        z.gids = {2000};
        z.record_allowed = record;
        specs.push_back(std::move(z));
    }
    return vmtest::make_policy(specs);
}


std::string loadavg()
{
    std::ifstream in("/proc/loadavg");
    std::string a, b, c;
    in >> a >> b >> c;
    return a + " " + b + " " + c;
}

// Someone in no allow list (no such user needed: the uid is enough).
const vmtest::Creds k_outsider{60009, 60009, {}};

// The shipped custguardd's figures for one zone count: per epoch, the best batch of each
// case with custguardd and with no enforcer measured right after it (raw, drifting), and the
// terms of the composed figure (see composed() below).
struct Shipped {
    int zones = 0;
    std::string policy;
    std::vector<std::vector<double>> wall, cpu, none_wall, none_cpu;  // [case][epoch]
    // [case][epoch]: run time per run of custguardd's own file_open program (kernel BPF
    // stats), and CPU custguardd and journald spent per operation of the case's batches.
    std::vector<std::vector<double>> prog_ns, daemon_ns;
    // [case][epoch]: runs of that program per batch beyond the batch's own opens (others'
    // opens in the batch, custguardd's and journald's among them), median over batches.
    std::vector<std::vector<double>> other_runs;
    // Per epoch: start time; custguardd + journald CPU while nothing was opened, % of one CPU.
    std::vector<double> start_s, idle_pct;
};

struct ShippedOptions {
    std::vector<int> zone_counts = {1, 100, 10000};
    int epochs = 3;
    int batches = 10;
    int iterations = 200;
    // Per case, with BPF stats on; batches as long as the class part's: batches of 100
    // opens let their cold starts under TCG weigh in (2.5-4x the class's figure).
    int stat_batches = 20, stat_iterations = 2000;
    int cpu_pairs = 6;  // per case, windows of opens between windows without, for custguardd's CPU
};

// Run time per run of the program behind the pinned link `link_pin` while `path` is opened:
// the median over `batches` batches of `n` opens (BPF stats on only meanwhile: they add two
// clock reads per run), after one open that fills the directory cache. The median, because
// the guest's clock runs on while the host deschedules the VM: a batch that straddles that
// takes milliseconds more. -1 when the program did not run. `other_runs` gets the median
// number of runs per batch beyond its `n` opens: other processes' opens, which the figure
// includes.
double prog_ns_per_run(const std::string& link_pin, const std::string& path, int batches, int n, double& other_runs)
{
    const bench::StatsOn stats;
    (void)ns_per_op(path, 1);
    std::vector<double> per_run, others;
    const auto read = [&] { return prog_stats(link_pin); };
    for (int i = 0; i < batches; ++i) {
        if (const auto s = bench::batch_stats(read, path, n); s.runs) {
            per_run.push_back(s.ns_per_run());
            others.push_back(static_cast<double>(s.runs) - n);
        }
    }
    other_runs = others.empty() ? -1 : median(others);
    return per_run.empty() ? -1 : median(per_run);
}

// The shipped custguardd with each zone count of `opt`, epochs interleaved (order rotating);
// throws when a configuration did not run or did not enforce.
std::vector<Shipped> run_shipped(const std::string& base, const std::vector<Case>& cases, const ShippedOptions& opt)
{
    std::vector<Shipped> out;
    for (int n : opt.zone_counts) {
        Shipped sh;
        sh.zones = n;
        std::string text = "[daemon]\nenforcer = \"bpf-lsm\"\n\n[[zone]]\nname = \"customers\"\npaths = [\"" + base +
                           "/zones/z00001\"]\nsensitivity = \"personal\"\non_violation = \"deny\"\nallow_users = [\"root\"]\n";
        for (int i = 2; i <= n; ++i) {
            char path[64];
            std::snprintf(path, sizeof path, "/zones/z%05d", i);
            text += "\n[[zone]]\nname = \"z" + std::to_string(i) + "\"\npaths = [\"" + base + path +
                    "\"]\nallow_users = [\"root\"]\n";
        }
        sh.policy = base + "/policy-" + std::to_string(n) + ".toml";
        cgtest::spit(sh.policy, text);
        for (auto* v : {&sh.wall, &sh.cpu, &sh.none_wall, &sh.none_cpu, &sh.prog_ns, &sh.daemon_ns, &sh.other_runs})
            v->assign(cases.size(), {});
        out.push_back(std::move(sh));
    }
    const std::string zone_file = cases[2].path;
    const std::string file_open_link = "/sys/fs/bpf/custguard/link_file_open";
    bench::ShippedDaemon daemon(base + "/custguardd", true);
    const auto daemon_cpu_ns = [&] { return daemon.cpu_ms() * 1e6; };
    std::uint64_t zone_opens = 0;  // opens of the zone's files while custguardd ran: the journal must count them
    const auto zone_path = [](const std::string& p) { return p.find("/zones/") != std::string::npos; };
    // custguardd's and journald's CPU per open of `path`: 1 s windows without opens and with
    // opens alternate (`cpu_pairs` of the latter, each between two of the former); per
    // window of opens, their CPU less the mean rate of the two windows beside it over its
    // duration, per open; the median. Paired this way, their periodic work (the read
    // sweep every second, more with more zones) and drift in the VM's speed cancel out.
    const auto daemon_ns_per_open = [&](const std::string& path) {
        const auto window = [&](bool opens, std::uint64_t& ops) {
            const double c0 = daemon_cpu_ns();
            const auto t0 = std::chrono::steady_clock::now();
            double elapsed = 0;
            do {
                if (opens) {
                    (void)ns_per_op(path, opt.iterations);
                    ops += static_cast<std::uint64_t>(opt.iterations);
                } else {
                    std::this_thread::sleep_for(std::chrono::milliseconds(50));
                }
                elapsed = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
            } while (elapsed < 1e9);
            return std::pair{daemon_cpu_ns() - c0, elapsed};
        };
        std::vector<double> per_open;
        std::uint64_t none = 0;
        auto before = window(false, none);
        for (int i = 0; i < opt.cpu_pairs; ++i) {
            std::uint64_t ops = 0;
            const auto busy = window(true, ops);
            const auto after = window(false, none);
            const double idle_rate = (before.first / before.second + after.first / after.second) / 2;
            per_open.push_back((busy.first - idle_rate * busy.second) / static_cast<double>(ops));
            if (zone_path(path))
                zone_opens += ops;
            before = after;
        }
        return median(per_open);
    };
    auto measure = [&](std::vector<std::vector<double>>& wall, std::vector<std::vector<double>>& cpu, Shipped* sh) {
        for (std::size_t k = 0; k < cases.size(); ++k) {
            const bool zone = zone_path(cases[k].path);
            double w = 1e18, c = 1e18;
            for (int b = 0; b < opt.batches; ++b) {
                double cpu_ns = 0;
                w = std::min(w, ns_per_op(cases[k].path, opt.iterations, &cpu_ns));
                c = std::min(c, cpu_ns);
            }
            wall[k].push_back(w);
            cpu[k].push_back(c);
            daemon.settle(std::chrono::seconds(120));
            if (!sh)
                continue;
            zone_opens += zone ? static_cast<std::uint64_t>(opt.batches * opt.iterations) : 0;
            sh->daemon_ns[k].push_back(daemon_ns_per_open(cases[k].path));
            daemon.settle(std::chrono::seconds(120));
            double others = 0;
            sh->prog_ns[k].push_back(
                prog_ns_per_run(file_open_link, cases[k].path, opt.stat_batches, opt.stat_iterations, others));
            sh->other_runs[k].push_back(others);
            zone_opens += zone ? static_cast<std::uint64_t>(1 + opt.stat_batches * opt.stat_iterations) : 0;
            daemon.settle(std::chrono::seconds(120));
        }
    };
    for (int epoch = 0; epoch < opt.epochs; ++epoch) {
        for (std::size_t k = 0; k < out.size(); ++k) {
            Shipped& sh = out[(k + static_cast<std::size_t>(epoch)) % out.size()];
            sh.start_s.push_back(daemon.start(sh.policy, std::chrono::seconds(900)) / 1000);
            // In the path: someone not in the zone is refused, the allowed root reads.
            if (vmtest::try_read(k_outsider, zone_file) != EPERM || vmtest::read_here(zone_file) != 0)
                throw std::runtime_error("custguardd with " + std::to_string(sh.zones) +
                                         " zones does not enforce the zone:\n" + cgtest::slurp(daemon.log()));
            ++zone_opens;
            daemon.settle(std::chrono::seconds(120));
            // Their periodic work while nothing is opened (and custguardd done starting).
            const double idle_rate = daemon.idle_rate();
            sh.idle_pct.push_back(100 * idle_rate);
            measure(sh.wall, sh.cpu, &sh);
            if (!daemon.running())
                throw std::runtime_error("custguardd exited while measured:\n" + cgtest::slurp(daemon.log()));
            daemon.stop();  // and its pinned programs removed
            if (vmtest::try_read(k_outsider, zone_file) != 0)
                throw std::runtime_error("a zone file stays refused after custguardd stopped");
            daemon.settle(std::chrono::seconds(120));  // journald done with its records
            measure(sh.none_wall, sh.none_cpu, nullptr);
            std::fprintf(stderr, "custguardd %d zones, epoch %d/%d: started in %.1f s\n", sh.zones, epoch + 1,
                         opt.epochs, sh.start_s.back());
        }
    }
    // Each record stands for 1 + CUSTGUARD_REPEATS reads (custguard.journal(7)): together
    // they must count every open the benchmark made of the zone's files as root.
    std::size_t allowed = 0;
    std::uint64_t reads = 0;
    for (const auto& e : daemon.journald().read("CUSTGUARD_ZONE=customers"))
        if (auto it = e.find("CUSTGUARD_DECISION"); it != e.end() && it->second == "allow") {
            ++allowed;
            auto r = e.find("CUSTGUARD_REPEATS");
            reads += 1 + (r == e.end() ? 0 : std::strtoull(r->second.c_str(), nullptr, 10));
        }
    if (allowed == 0)
        throw std::runtime_error("no allowed-read record of the zone reached the journal");
    std::printf("\nshipped custguardd: %s --policy %s/policy-<zones>.toml --state-dir ... --journal-namespace %s\n"
                "(control plane on a private dbus-daemon with the shipped org.custguard1.conf; %zu allowed-read "
                "records in the scratch journal, counting %llu reads; the zone's files were opened %llu times)\n",
                CG_CUSTGUARDD, base.c_str(), daemon.journald().name_space().c_str(), allowed,
                static_cast<unsigned long long>(reads), static_cast<unsigned long long>(zone_opens));
    if (reads != zone_opens)
        throw std::runtime_error("the journal's records do not count every read of the zone");
    return out;
}

// Median over epochs of (custguardd / none measured right after it).
double epoch_ratio(const std::vector<double>& cfg, const std::vector<double>& none)
{
    std::vector<double> r;
    for (std::size_t i = 0; i < cfg.size() && i < none.size(); ++i)
        r.push_back(cfg[i] / none[i]);
    return median(r);
}

const char* met(bool ok) { return ok ? "met" : "NOT met"; }

// The benchmark; exits 1 with a message when an open it times fails (ns_per_op throws).
int run(int argc, char** argv)
{
    bool baseline_only = false, with_custguardd = true;
    int rounds = 12;
    int batches = 20;  // short batches per condition and round; the best one counts
    double host_ns = 0;  // --host-ns: the host's native figure of the same loop
    ShippedOptions shipped_opt;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const bool has_value = i + 1 < argc;
        if (a == "--baseline-only") {
            baseline_only = true;
        } else if (a == "--quick") {
            rounds = 4;
            batches = 10;
            shipped_opt.epochs = 1;  // the composed figures need no second epoch; the raw ones are drift anyway
            shipped_opt.batches = 6;
        } else if (a == "--no-custguardd") {
            with_custguardd = false;
        } else if (has_value && a == "--rounds" && std::atoi(argv[i + 1]) > 0) {
            rounds = std::atoi(argv[++i]);
        } else if (has_value && a == "--epochs" && std::atoi(argv[i + 1]) > 0) {
            shipped_opt.epochs = std::atoi(argv[++i]);
        } else if (has_value && a == "--host-ns" && std::atof(argv[i + 1]) > 0) {
            host_ns = std::atof(argv[++i]);
        } else if (has_value && a == "--zones") {
            shipped_opt.zone_counts.clear();
            for (std::string list = argv[++i]; !list.empty();) {
                const auto comma = list.find(',');
                const int n = std::atoi(list.substr(0, comma).c_str());
                if (n < 1 || n > 10000) {
                    std::fprintf(stderr, "custguard_bench_bpf_lsm: --zones takes counts from 1 to 10000\n");
                    return 2;
                }
                shipped_opt.zone_counts.push_back(n);
                list = comma == std::string::npos ? "" : list.substr(comma + 1);
            }
        } else {
            std::fprintf(stderr,
                         "usage: custguard_bench_bpf_lsm [--quick] [--rounds N] [--epochs N] [--zones 1,100,10000]\n"
                         "                               [--no-custguardd] [--host-ns NS]\n"
                         "       custguard_bench_bpf_lsm --baseline-only   (on the host: the VM factor)\n"
                         "  --quick     --rounds 4, 10 batches; 1 epoch of 6 batches for custguardd\n"
                         "  --rounds N  interleaved rounds of the enforcer class (default 12)\n"
                         "  --epochs N  epochs of the shipped custguardd, every zone count in each (default 3)\n"
                         "  --zones L   the shipped custguardd's zone counts (default 1,100,10000)\n"
                         "  --host-ns NS  the host's \"outside zones, same fs as zones\" of --baseline-only:\n"
                         "              prints native-equivalent figures (VM figure / VM factor)\n"
                         "Root, in the VM: tests/vm/cg-vm-run --cpu qemu64 --smp 1 --icount 1 -- custguard_bench_bpf_lsm.\n"
                         "See bench/README.md.\n");
            return 2;
        }
    }
    if (baseline_only)
        rounds = 400;
    const int iterations = baseline_only ? 500 : 200;
    const int many = 10000;
    const double t_start = static_cast<double>(std::time(nullptr));
    if (!baseline_only) {
        std::printf("load average at start %s (the guest's own; note the host's too)\n", loadavg().c_str());
        // What a guest nanosecond is decides what the figures mean (bench/README.md, "vm").
        const char* icount = std::getenv("CUSTGUARD_VM_ICOUNT");
        if (icount && *icount)
            std::printf("guest clock: instructions (cg-vm-run --icount %s: 2^%s ns per guest instruction)\n", icount,
                        icount);
        else
            std::printf("guest clock: host time (TCG speed, host load and translation stalls included)\n");
    }

    // Zone files and the "outside" file on one tmpfs; another tmpfs for the fast exit.
    const std::string base = baseline_only ? "/tmp/cgbench-host" : "/tmp/cgbench";
    std::string other_fs = "/dev/shm/cgbench";
    ::mkdir(base.c_str(), 0755);
    ::mkdir((base + "/zones").c_str(), 0755);
    ::mkdir((base + "/outside").c_str(), 0755);
    ::mkdir(other_fs.c_str(), 0755);
    for (int i = 1; i <= many; ++i) {
        char name[32];
        std::snprintf(name, sizeof name, "/z%05d", i);
        ::mkdir((base + "/zones" + name).c_str(), 0755);
    }
    std::string deep = base + "/zones/z00001";
    for (const char* d : {"/a", "/b", "/c", "/d", "/e"}) {
        deep += d;
        ::mkdir(deep.c_str(), 0755);
    }
    const std::string payload(128, 'x');
    vmtest::write_file(base + "/outside/f", payload);
    vmtest::write_file(other_fs + "/f", payload);
    vmtest::write_file(base + "/zones/z00001/f", payload);
    vmtest::write_file(deep + "/f", payload);

    std::vector<Case> cases = {
        {"outside zones, fs without zones", other_fs + "/f"},
        {"outside zones, same fs as zones", base + "/outside/f"},
        {"zone file (allowed, not recorded)", base + "/zones/z00001/f"},
        {"zone file 5 dirs below the root", deep + "/f"},
    };
    if (!baseline_only) {
        // Read through read-only overlays: every open also opens the real file (a backing
        // file, decided from the real inode's names).
        const std::string ov_out = base + "/ov-outside", ov_zone = base + "/ov-zone";
        ::mkdir(ov_out.c_str(), 0755);
        ::mkdir(ov_zone.c_str(), 0755);
        ::mkdir((base + "/empty").c_str(), 0755);
        const std::string lo_out = "lowerdir=" + base + "/empty:" + base + "/outside";
        const std::string lo_zone = "lowerdir=" + base + "/empty:" + deep;
        if (::mount("cgbench", ov_out.c_str(), "overlay", 0, lo_out.c_str()) != 0 ||
            ::mount("cgbench", ov_zone.c_str(), "overlay", 0, lo_zone.c_str()) != 0) {
            std::fprintf(stderr, "overlay mount: %s\n", std::strerror(errno));
            return 1;
        }
        cases.push_back({"outside zones, through an overlay", ov_out + "/f"});
        cases.push_back({"zone file 5 dirs deep, through an overlay", ov_zone + "/f"});
    }

    std::vector<std::vector<double>> none(cases.size()), empty(cases.size()), one(cases.size()),
        lots(cases.size()), recorded(cases.size()), every(cases.size());
    if (baseline_only) {
        for (int r = 0; r < rounds; ++r)
            for (std::size_t c = 0; c < cases.size(); ++c)
                none[c].push_back(ns_per_op(cases[c].path, iterations));
        std::printf("| case | no enforcer (host, native) ns/op |\n|---|---:|\n");
        for (std::size_t c = 0; c < cases.size(); ++c)
            std::printf("| %s | %.0f |\n", cases[c].name, best(none[c]));
        return 0;
    }

    const auto p1 = zones_policy(base, 1, false);
    const auto pmany = zones_policy(base, many, false);
    const auto p1rec = zones_policy(base, 1, true);
    std::uint64_t events = 0;
    std::vector<double> apply_one_ms, apply_many_ms;
    // Conditions are interleaved and their order rotates every round, so drift in the
    // machine's load (TCG on shared cores) hits every column alike.
    enum Cond { k_none, k_empty, k_one, k_many, k_recorded, k_every, k_conds };
    std::vector<std::vector<double>>* columns[k_conds] = {&none, &empty, &one, &lots, &recorded, &every};
    const policy::Compiled* policies[k_conds] = {nullptr, nullptr, &p1, &pmany, &p1rec, &p1rec};
    daemon::bpf_lsm::Options every_read;
    every_read.read_interval = std::chrono::nanoseconds(0);
    for (int r = 0; r < rounds; ++r) {
        for (int k = 0; k < k_conds; ++k) {
            const int cond = (k + r) % k_conds;
            BpfLsmEnforcer enf(cond == k_every ? every_read : daemon::bpf_lsm::Options{});
            cg_null* null_prog = nullptr;
            if (cond == k_empty) {
                null_prog = cg_null__open_and_load();
                if (!null_prog || cg_null__attach(null_prog) != 0) {
                    std::fprintf(stderr, "cannot load the empty reference program\n");
                    return 1;
                }
            }
            if (policies[cond]) {
                if (auto s = enf.start([&](daemon::AccessEvent&&) { ++events; }); !s) {
                    std::fprintf(stderr, "start: %s\n", s.error().c_str());
                    return 1;
                }
                const auto t0 = std::chrono::steady_clock::now();
                if (auto a = enf.apply(*policies[cond]); !a) {
                    std::fprintf(stderr, "apply: %s\n", a.error().c_str());
                    return 1;
                }
                const double ms = std::chrono::duration<double, std::milli>(
                                      std::chrono::steady_clock::now() - t0)
                                      .count();
                if (cond == k_many)
                    apply_many_ms.push_back(ms);
                else if (cond == k_one)
                    apply_one_ms.push_back(ms);
            }
            for (int b = 0; b < batches; ++b)
                for (std::size_t c = 0; c < cases.size(); ++c)
                    (*columns[cond])[c].push_back(ns_per_op(cases[c].path, iterations));
            enf.stop(true);
            cg_null__destroy(null_prog);
        }
    }

    std::printf("BPF-LSM open+read(128 B)+close, ns/op, best batch of %d rounds x %d batches x %d ops, "
                "conditions interleaved (qemu TCG, Debian 6.1)\n\n",
                rounds, batches, iterations);
    std::printf("| case | no enforcer | empty BPF-LSM prog | custguard 1 zone | "
                "custguard 10,000 zones | 1 zone, events on | 1 zone, every read recorded | 1 zone / none | "
                "1 zone / empty prog | 10k / 1 zone | added vs none | added vs empty prog |\n");
    std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (std::size_t c = 0; c < cases.size(); ++c) {
        const double n = best(none[c]), e = best(empty[c]), o = best(one[c]),
                     l = best(lots[c]), rec = best(recorded[c]), ev = best(every[c]);
        std::printf("| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.3f | %.3f | %.3f | %+.0f ns | "
                    "%+.0f ns |\n",
                    cases[c].name, n, e, o, l, rec, ev, o / n, o / e, l / o, o - n, o - e);
    }
    // The same runs as ratios paired by round, with their spread: how much of a
    // difference between columns is the machine rather than the program.
    std::printf("\nSame runs, ratios paired by round (each round's best batch per condition), "
                "median and interquartile range over %d rounds\n\n",
                rounds);
    std::printf("| case | 1 zone / none | 1 zone / empty prog | empty prog / none | 10k / 1 zone |\n");
    std::printf("|---|---:|---:|---:|---:|\n");
    for (std::size_t c = 0; c < cases.size(); ++c) {
        const auto n = round_bests(none[c], batches), e = round_bests(empty[c], batches),
                   o = round_bests(one[c], batches), l = round_bests(lots[c], batches);
        std::printf("| %s | %s | %s | %s | %s |\n", cases[c].name,
                    spread(paired_ratios(o, n)).c_str(), spread(paired_ratios(o, e)).c_str(),
                    spread(paired_ratios(e, n)).c_str(), spread(paired_ratios(l, o)).c_str());
    }
    // Program run time per open, from the kernel's BPF stats (enabled only for this part:
    // they add two clock reads per run). Median of interleaved batches.
    std::printf("\nfile_open program run time, ns/run (kernel BPF stats, median of %d batches x %d opens)\n\n",
                rounds * 4, iterations * 10);
    std::printf("| case | custguard 1 zone | custguard 10,000 zones | 1 zone, allowed reads recorded | "
                "1 zone, every read recorded |\n|---|---:|---:|---:|---:|\n");
    {
        int stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
        if (stats_fd < 0) {
            std::fprintf(stderr, "cannot enable BPF stats: %s\n", std::strerror(errno));
            return 1;
        }
        constexpr int k_prog_conds = 4;
        std::vector<std::vector<double>> run_ns[k_prog_conds];
        for (auto& v : run_ns)
            v.resize(cases.size());
        const policy::Compiled* prog_policies[k_prog_conds] = {&p1, &pmany, &p1rec, &p1rec};
        for (int r = 0; r < rounds * 4; ++r) {
            for (int k = 0; k < k_prog_conds; ++k) {
                const int which = (k + r) % k_prog_conds;
                BpfLsmEnforcer enf(which == 3 ? every_read : daemon::bpf_lsm::Options{});
                if (!enf.start([](daemon::AccessEvent&&) {}) || !enf.apply(*prog_policies[which])) {
                    std::fprintf(stderr, "cannot start the enforcer for the stats run\n");
                    return 1;
                }
                const auto read = [] { return prog_stats("/sys/fs/bpf/custguard/link_file_open"); };
                for (std::size_t c = 0; c < cases.size(); ++c) {
                    (void)ns_per_op(cases[c].path, 1);  // fill the directory cache
                    if (const auto s = bench::batch_stats(read, cases[c].path, iterations * 10); s.runs)
                        run_ns[which][c].push_back(s.ns_per_run());
                }
                enf.stop(true);
            }
        }
        ::close(stats_fd);
        for (std::size_t c = 0; c < cases.size(); ++c)
            std::printf("| %s | %.0f | %.0f | %.0f | %.0f |\n", cases[c].name, median(run_ns[0][c]),
                        median(run_ns[1][c]), median(run_ns[2][c]), median(run_ns[3][c]));
    }

    std::printf("\nevents delivered with recording on: %llu\n",
                static_cast<unsigned long long>(events));
    std::printf("apply() incl. start: 1 zone %.1f ms, 10,000 zones %.1f ms (best)\n",
                best(apply_one_ms), best(apply_many_ms));

    // The VM factor: the same loop natively on the host (--baseline-only there).
    const double vm_none = best(none[1]);
    const double factor = host_ns > 0 ? vm_none / host_ns : 0;
    if (factor > 0)
        std::printf("VM factor: %.0f ns here / %.0f ns on the host (outside zones, same fs as zones, no enforcer) = %.2f\n",
                    vm_none, host_ns, factor);
    else
        std::printf("VM factor: not given (run --baseline-only on the host and pass its \"outside zones, same fs as "
                    "zones\" figure as --host-ns)\n");
    if (!with_custguardd) {
        std::printf("run time %.0f s; load average at end %s\n", static_cast<double>(std::time(nullptr)) - t_start,
                    loadavg().c_str());
        return 0;
    }

    // The shipped custguardd: the first four cases (the overlays are the class's concern).
    const std::vector<Case> shipped_cases = {
        {"outside zones, fs without zones", cases[0].path},
        {"outside zones, same fs as zones", cases[1].path},
        {"zone file (allowed, recorded)", cases[2].path},
        {"zone file 5 dirs deep (recorded)", cases[3].path},
    };
    // The kernel's fixed cost of a BPF LSM program run, before custguardd attaches its own.
    const bench::FixedCost fixed = bench::bpf_fixed_cost(cases[1].path);  // throws: main() reports it
    std::vector<Shipped> shipped;
    try {
        shipped = run_shipped(base, shipped_cases, shipped_opt);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "custguard_bench_bpf_lsm: the shipped custguardd did not run: %s\n", e.what());
        return 1;
    }
    // The composed figure, per case and zone count: the no-enforcer time of the first part
    // (interleaved with the class, so measured in the same state of the VM), plus what the
    // shipped custguardd adds, each term measured on its own: the kernel's fixed cost of any
    // BPF LSM program on file_open (bench::bpf_fixed_cost: the empty program against none in
    // short alternating batches),
    // the run time of custguardd's own file_open program (BPF stats, while it ran with that
    // zone count) and the CPU custguardd and journald spent per operation (all of it on the
    // reader's CPU, as on the VM's one CPU). The raw wall ratio (custguardd / none right after
    // it, epochs apart) is printed beside it: under TCG the open loop drifts between epochs
    // by more than custguardd adds, so the targets are judged on the composed figure.
    struct Composed {
        double none, fixed, stats, prog, daemon, total;
    };
    // The first part's estimate, printed beside for comparison: the median over every round
    // and case of (empty program - none), round-best batches (rounds seconds apart).
    std::vector<double> fixed_pairs;
    for (std::size_t c = 0; c < shipped_cases.size(); ++c) {
        const auto n = round_bests(none[c], batches), e = round_bests(empty[c], batches);
        for (std::size_t r = 0; r < std::min(n.size(), e.size()); ++r)
            fixed_pairs.push_back(e[r] - n[r]);
    }
    const double fixed_ns = std::max(0.0, fixed.ns);
    const auto composed = [&](const Shipped& sh, std::size_t c) {
        Composed f{};
        f.none = best(none[c]);
        f.fixed = fixed_ns;
        // The stats' run time less what they count for the empty program (whose own run is
        // in the fixed term): the body's cost; the clock reads of the stats are not.
        f.stats = median(sh.prog_ns[c]);
        f.prog = std::max(0.0, f.stats - fixed.stats_floor_ns);
        f.daemon = median(sh.daemon_ns[c]);
        f.total = f.none + f.fixed + f.prog + std::max(0.0, f.daemon);
        return f;
    };
    std::printf("\nThe shipped custguardd (bpf-lsm, default flags), open+read(128 B)+close as root (allowed in the zone), "
                "%d epoch%s, zone counts interleaved.\nComposed ns/op = none (first part, best batch) + fixed cost of a BPF "
                "LSM program run (the empty program - none, median of %d pairs of adjacent sides, each the best of %d batches of %d opens, "
                "attached and detached in turn: %.0f ns, IQR %.0f-%.0f, %.0f ms an attach or detach; the first part's rounds gave "
                "%.0f) + custguardd's file_open "
                "run time (BPF stats, median of %d batches x %d opens) less the stats' floor (the empty program's run time "
                "under the stats, median of %d batches x %d opens: %.0f ns; what the stats count beyond a body, the clock "
                "reads among it) + custguardd's and journald's CPU per open (median "
                "of %d 1 s windows of opens, each less the rate of the windows without opens beside it; negative: within "
                "the noise, counted as 0); medians over epochs.\nRaw: median over epochs of (best of %d batches x %d ops with custguardd / the same with no "
                "enforcer right after it); it drifts, see bench/README.md \"vm\".\n\n",
                shipped_opt.epochs, shipped_opt.epochs == 1 ? "" : "s", fixed.pairs, fixed.batches, fixed.ops,
                fixed.ns, fixed.p25, fixed.p75, fixed.switch_ms, median(fixed_pairs), shipped_opt.stat_batches,
                shipped_opt.stat_iterations, fixed.floor_batches, fixed.floor_ops, fixed.stats_floor_ns,
                shipped_opt.cpu_pairs, shipped_opt.batches, shipped_opt.iterations);
    std::printf("| case | zones | start s | none ns | + fixed BPF ns | file_open stats ns | + file_open ns (less floor) | "
                "others' runs / %d | + custguardd & journald CPU ns | composed ns | **composed ratio** | raw custguardd ns | "
                "raw none after ns | raw ratio | raw reader CPU ratio |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
                "---:|---:|---:|---:|---:|\n", shipped_opt.stat_iterations);
    for (std::size_t c = 0; c < shipped_cases.size(); ++c)
        for (const auto& sh : shipped) {
            const Composed f = composed(sh, c);
            std::printf("| %s | %d | %.1f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | **%.3f** | %.0f | %.0f | "
                        "%.3f | %.3f |\n",
                        shipped_cases[c].name, sh.zones, median(sh.start_s), f.none, f.fixed, f.stats, f.prog,
                        median(sh.other_runs[c]), f.daemon, f.total,
                        f.total / f.none, median(sh.wall[c]), median(sh.none_wall[c]),
                        epoch_ratio(sh.wall[c], sh.none_wall[c]), epoch_ratio(sh.cpu[c], sh.none_cpu[c]));
        }
    std::printf("\ncustguardd + journald CPU while nothing was opened (median over epochs, %% of one CPU):");
    for (const auto& sh : shipped)
        std::printf(" %d zone%s %.2f %%%s", sh.zones, sh.zones == 1 ? "" : "s", median(sh.idle_pct),
                    &sh == &shipped.back() ? "\n" : ",");

    // Beside the enforcer class of the first part (same run), as ratios to no enforcer.
    std::printf("\nRatios to no enforcer, same run: the enforcer class (best batches of the first part) and the shipped "
                "custguardd (composed)\n\n| case | class 1 zone | class 10,000 zones | "
                "class 1 zone, events on | class 1 zone, every read recorded |");
    for (const auto& sh : shipped)
        std::printf(" custguardd %d zone%s |", sh.zones, sh.zones == 1 ? "" : "s");
    std::printf("\n|---|---:|---:|---:|---:|");
    for (std::size_t k = 0; k < shipped.size(); ++k)
        std::printf("---:|");
    std::printf("\n");
    for (std::size_t c = 0; c < shipped_cases.size(); ++c) {
        const double n = best(none[c]);
        std::printf("| %s | %.3f | %.3f | %.3f | %.3f |", shipped_cases[c].name, best(one[c]) / n, best(lots[c]) / n,
                    best(recorded[c]) / n, best(every[c]) / n);
        for (const auto& sh : shipped) {
            const Composed f = composed(sh, c);
            std::printf(" %.3f |", f.total / f.none);
        }
        std::printf("\n");
    }

    // The targets (issue 18, "Benchmarks of what we ship"), judged on the composed figures.
    std::printf("\nTargets for the shipped custguardd (composed figures):\n");
    for (const auto& sh : shipped) {
        const Composed f0 = composed(sh, 0), f1 = composed(sh, 1);
        const double r0 = f0.total / f0.none, r1 = f1.total / f1.none;
        std::printf("  outside zones <= 1.05x, %d zone%s: fs without zones %.3f, same fs %.3f: %s (raw ratios %.3f, "
                    "%.3f)\n",
                    sh.zones, sh.zones == 1 ? "" : "s", r0, r1, met(r0 <= 1.05 && r1 <= 1.05),
                    epoch_ratio(sh.wall[0], sh.none_wall[0]), epoch_ratio(sh.wall[1], sh.none_wall[1]));
    }
    const Shipped* one_zone = nullptr;
    for (const auto& sh : shipped)
        if (sh.zones == 1)
            one_zone = &sh;
    for (const auto& sh : shipped) {
        if (!one_zone || sh.zones != many)
            continue;
        double worst = 0;
        std::printf("  %d zones within 1.10x of 1 zone:", sh.zones);
        for (std::size_t c = 0; c < shipped_cases.size(); ++c) {
            const double r = composed(sh, c).total / composed(*one_zone, c).total;
            worst = std::max(worst, r);
            std::printf(" %.3f", r);
        }
        std::printf(" (cases in order): %s\n", met(worst <= 1.10));
    }
    for (const auto& sh : shipped) {
        for (std::size_t c = 2; c < 4; ++c) {
            const Composed f = composed(sh, c);
            const double path = f.fixed + f.prog, all = path + std::max(0.0, f.daemon);
            if (factor > 0)
                std::printf("  zone-file open <= 0.3 us native-equivalent, %d zone%s, %s: in the opener's path (fixed + "
                            "file_open) %.0f ns / %.2f = %.2f us: %s; with custguardd's and journald's CPU %.2f us: %s\n",
                            sh.zones, sh.zones == 1 ? "" : "s", shipped_cases[c].name, path, factor, path / factor / 1000,
                            met(path / factor <= 300), all / factor / 1000, met(all / factor <= 300));
            else
                std::printf("  zone-file open <= 0.3 us native-equivalent, %d zone%s, %s: in the opener's path %.0f ns, "
                            "with custguardd's and journald's CPU %.0f ns here; no VM factor given (--host-ns)\n",
                            sh.zones, sh.zones == 1 ? "" : "s", shipped_cases[c].name, path, all);
        }
    }
    std::printf("run time %.0f s; load average at end %s (the guest's)\n",
                static_cast<double>(std::time(nullptr)) - t_start, loadavg().c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv)
{
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "custguard_bench_bpf_lsm: %s\n", e.what());
        return 1;
    }
}
