// The kernel's fixed cost per run of any BPF LSM program on file_open (trampoline entry
// and exit), which the BPF stats' run time leaves out: the term the VM benchmarks (bench/vm,
// bench/workload with --enforcer bpf-lsm) add to custguardd's program run time. Needs the
// cg_null skeleton (bpf/cg_null.bpf.c) and root in the VM.
#pragma once

#include <bpf/libbpf.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "cg_null.skel.h"
#include "common/bpf_stats.hpp"
#include "common/open_loop.hpp"
#include "common/stats.hpp"

namespace custguard::bench {

struct FixedCost {
    double ns = 0;            // median over pairs of (empty program - none), ns per open; may be < 0
    double p25 = 0, p75 = 0;  // its interquartile range
    int pairs = 0, batches = 0, ops = 0;
    double switch_ms = 0;  // median time of one attach or detach
    // The empty program's run time per run under BPF stats (median of `floor_batches`
    // batches): what the stats count beyond a program's body (the clock reads and the
    // trampoline between them). The stats run time of a program less this is what its body
    // adds to the fixed cost above, which already holds the empty program's own run.
    double stats_floor_ns = 0;
    int floor_batches = 0, floor_ops = 0;
};

// Many short sides, alternately with the empty program attached and with none: `pairs`
// pairs of adjacent sides, each side the best of `batches` batches of `ops` opens of `path`;
// the median of (empty - none) over the pairs. The program is loaded once and its link
// attached and detached in turn (one switch per pair; order none-empty, then empty-none, so
// linear drift cancels over two pairs), so the two sides of a pair are milliseconds apart:
// under TCG a figure taken from separate rounds (seconds apart) moved by 119-1,254 ns
// between runs, more than it measures. A side is its best short batch because the guest's
// clock runs on while the host deschedules the VM: under host load, single batches of 500
// opens gave pairs differing by -4.8 to +7.1 us (IQR). The first opens after each switch are
// not timed (the new trampoline is translated then). Throws when the program cannot be
// loaded or attached, or an open fails.
inline FixedCost bpf_fixed_cost(const std::string& path, int pairs = 150, int batches = 8, int ops = 100,
                                int floor_batches = 20, int floor_ops = 2000) {
    std::unique_ptr<cg_null, decltype(&cg_null__destroy)> prog(cg_null__open_and_load(), &cg_null__destroy);
    if (!prog) throw std::runtime_error("cannot load the empty BPF LSM program (bpf/cg_null.bpf.c)");
    std::unique_ptr<bpf_link, decltype(&bpf_link__destroy)> link(nullptr, &bpf_link__destroy);
    std::vector<double> switch_ms;
    const auto set = [&](bool attached) {
        const auto t0 = std::chrono::steady_clock::now();
        if (attached) {
            link.reset(bpf_program__attach(prog->progs.cg_null_file_open));
            if (!link) throw std::runtime_error("cannot attach the empty BPF LSM program");
        } else {
            link.reset();
        }
        switch_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        (void)ns_per_op(path, 20);
    };
    const auto side = [&] {
        double best = ns_per_op(path, ops);
        for (int b = 1; b < batches; ++b) best = std::min(best, ns_per_op(path, ops));
        return best;
    };
    (void)ns_per_op(path, ops);
    std::vector<double> added;
    for (int i = 0; i < pairs; ++i) {
        const bool empty_first = i % 2 == 1;  // attached since the last pair
        const double first = side();
        set(!empty_first);
        const double second = side();
        added.push_back(empty_first ? first - second : second - first);
    }
    if (!link) set(true);
    std::vector<double> floor;
    {
        const StatsOn stats;
        const auto read = [fd = bpf_program__fd(prog->progs.cg_null_file_open)] { return prog_fd_stats(fd); };
        for (int b = 0; b < floor_batches; ++b)
            if (const ProgStats s = batch_stats(read, path, floor_ops); s.runs)
                floor.push_back(s.ns_per_run());
    }
    link.reset();
    if (floor.empty()) throw std::runtime_error("the empty BPF LSM program did not run with BPF stats on");
    // Nearest-rank quantiles: the median pair's own difference.
    return {quantile(added, 0.5), quantile(added, 0.25), quantile(added, 0.75), pairs, batches, ops,
            quantile(switch_ms, 0.5), median(floor), floor_batches, floor_ops};
}

}  // namespace custguard::bench
