// Open-path overhead of the BPF-LSM enforcer: open+read+close of files outside zones and
// of zone files, with no enforcer, with a 1-zone and with a 10,000-zone policy, measured
// in one run and printed as a table of ratios. Runs as root inside the VM (cg-vm-run);
// `--baseline-only` measures only the no-enforcer column (for the VM factor on the host);
// `--rounds N` sets the number of interleaved rounds (default 12).
#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf_lsm_enforcer.hpp"
#include "cg_null.skel.h"
#include "vm_support.hpp"

using namespace custguard;
using custguard::daemon::bpf_lsm::BpfLsmEnforcer;

namespace {

struct Case {
    const char* name;
    std::string path;
};

double ns_per_op(const std::string& path, int iterations)
{
    char buf[256];
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iterations; ++i) {
        int fd = ::open(path.c_str(), O_RDONLY);
        if (fd < 0) {
            std::fprintf(stderr, "open %s: %s\n", path.c_str(), std::strerror(errno));
            std::exit(1);
        }
        if (::read(fd, buf, sizeof buf) < 0)
            std::exit(1);
        ::close(fd);
    }
    const auto t1 = std::chrono::steady_clock::now();
    return std::chrono::duration<double, std::nano>(t1 - t0).count() / iterations;
}

// Run time of the attached file_open program itself (kernel BPF stats: run_time_ns and
// run_cnt), reached through the pinned link: isolates the program from the open path,
// whose TCG noise (±5%) is larger than the differences between conditions.
struct ProgStats {
    std::uint64_t ns = 0;
    std::uint64_t runs = 0;
};

ProgStats prog_stats(const std::string& link_pin)
{
    ProgStats out;
    int link = bpf_obj_get(link_pin.c_str());
    if (link < 0)
        return out;
    bpf_link_info li{};
    std::uint32_t len = sizeof li;
    if (bpf_obj_get_info_by_fd(link, &li, &len) == 0) {
        int prog = bpf_prog_get_fd_by_id(li.prog_id);
        if (prog >= 0) {
            bpf_prog_info pi{};
            std::uint32_t plen = sizeof pi;
            if (bpf_obj_get_info_by_fd(prog, &pi, &plen) == 0) {
                out.ns = pi.run_time_ns;
                out.runs = pi.run_cnt;
            }
            ::close(prog);
        }
    }
    ::close(link);
    return out;
}

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
std::string spread(std::vector<double> v)
{
    if (v.empty())
        return "-";
    std::sort(v.begin(), v.end());
    const auto at = [&](double q) { return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5)]; };
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3f (%.3f-%.3f)", at(0.5), at(0.25), at(0.75));
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

}  // namespace

int main(int argc, char** argv)
{
    const bool baseline_only = argc > 1 && std::string(argv[1]) == "--baseline-only";
    int rounds = baseline_only ? 400 : 12;
    if (argc > 2 && std::string(argv[1]) == "--rounds")
        rounds = std::atoi(argv[2]);
    const int batches = 20;  // short batches per condition and round; the best one counts
    const int iterations = baseline_only ? 500 : 200;
    const int many = 10000;

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
        lots(cases.size()), recorded(cases.size());
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
    enum Cond { k_none, k_empty, k_one, k_many, k_recorded, k_conds };
    std::vector<std::vector<double>>* columns[k_conds] = {&none, &empty, &one, &lots, &recorded};
    const policy::Compiled* policies[k_conds] = {nullptr, nullptr, &p1, &pmany, &p1rec};
    for (int r = 0; r < rounds; ++r) {
        for (int k = 0; k < k_conds; ++k) {
            const int cond = (k + r) % k_conds;
            BpfLsmEnforcer enf;
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
                "custguard 10,000 zones | 1 zone, events on | 1 zone / none | "
                "1 zone / empty prog | 10k / 1 zone | added vs none | added vs empty prog |\n");
    std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (std::size_t c = 0; c < cases.size(); ++c) {
        const double n = best(none[c]), e = best(empty[c]), o = best(one[c]),
                     l = best(lots[c]), rec = best(recorded[c]);
        std::printf("| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.3f | %.3f | %.3f | %+.0f ns | "
                    "%+.0f ns |\n",
                    cases[c].name, n, e, o, l, rec, o / n, o / e, l / o, o - n, o - e);
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
    std::printf("| case | custguard 1 zone | custguard 10,000 zones |\n|---|---:|---:|\n");
    {
        int stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
        if (stats_fd < 0) {
            std::fprintf(stderr, "cannot enable BPF stats: %s\n", std::strerror(errno));
            return 1;
        }
        std::vector<std::vector<double>> run_ns[2] = {std::vector<std::vector<double>>(cases.size()),
                                                      std::vector<std::vector<double>>(cases.size())};
        const policy::Compiled* prog_policies[2] = {&p1, &pmany};
        for (int r = 0; r < rounds * 4; ++r) {
            for (int k = 0; k < 2; ++k) {
                const int which = (k + r) % 2;
                BpfLsmEnforcer enf;
                if (!enf.start([](daemon::AccessEvent&&) {}) || !enf.apply(*prog_policies[which])) {
                    std::fprintf(stderr, "cannot start the enforcer for the stats run\n");
                    return 1;
                }
                for (std::size_t c = 0; c < cases.size(); ++c) {
                    (void)ns_per_op(cases[c].path, 1);  // fill the directory cache
                    const auto a = prog_stats("/sys/fs/bpf/custguard/link_file_open");
                    (void)ns_per_op(cases[c].path, iterations * 10);
                    const auto b = prog_stats("/sys/fs/bpf/custguard/link_file_open");
                    if (b.runs > a.runs)
                        run_ns[which][c].push_back(static_cast<double>(b.ns - a.ns) /
                                                   static_cast<double>(b.runs - a.runs));
                }
                enf.stop(true);
            }
        }
        ::close(stats_fd);
        auto median = [](std::vector<double> v) {
            if (v.empty())
                return 0.0;
            std::sort(v.begin(), v.end());
            return v[v.size() / 2];
        };
        for (std::size_t c = 0; c < cases.size(); ++c)
            std::printf("| %s | %.0f | %.0f |\n", cases[c].name, median(run_ns[0][c]),
                        median(run_ns[1][c]));
    }

    std::printf("\nevents delivered with recording on: %llu\n",
                static_cast<unsigned long long>(events));
    std::printf("apply() incl. start: 1 zone %.1f ms, 10,000 zones %.1f ms (best)\n",
                best(apply_one_ms), best(apply_many_ms));
    return 0;
}
