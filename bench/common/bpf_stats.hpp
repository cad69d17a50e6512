// Run time of BPF programs from the kernel's BPF stats (run_time_ns, run_cnt), reached
// through pinned links: custguardd's in the VM benchmarks (bench/vm, bench/workload with
// --enforcer bpf-lsm). The stats count only while someone holds them on (StatsOn).
#pragma once

#include <dirent.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "common/open_loop.hpp"

namespace custguard::bench {

struct ProgStats {
    std::uint64_t ns = 0;
    std::uint64_t runs = 0;
    double ns_per_run() const { return static_cast<double>(ns) / static_cast<double>(runs); }
};

// The stats of the program `prog_fd` (zeros when they cannot be read).
inline ProgStats prog_fd_stats(int prog_fd) {
    ProgStats out;
    bpf_prog_info pi{};
    std::uint32_t plen = sizeof pi;
    if (bpf_obj_get_info_by_fd(prog_fd, &pi, &plen) == 0) {
        out.ns = pi.run_time_ns;
        out.runs = pi.run_cnt;
    }
    return out;
}

// The stats of the program behind the link pinned at `link_pin` (zeros when there is none).
inline ProgStats prog_stats(const std::string& link_pin) {
    ProgStats out;
    int link = bpf_obj_get(link_pin.c_str());
    if (link < 0) return out;
    bpf_link_info li{};
    std::uint32_t len = sizeof li;
    if (bpf_obj_get_info_by_fd(link, &li, &len) == 0) {
        int prog = bpf_prog_get_fd_by_id(li.prog_id);
        if (prog >= 0) {
            out = prog_fd_stats(prog);
            ::close(prog);
        }
    }
    ::close(link);
    return out;
}

// Summed over the programs behind every link pinned in `dir` (names starting "link_").
inline ProgStats pinned_links_stats(const std::string& dir) {
    ProgStats sum;
    DIR* d = ::opendir(dir.c_str());
    if (!d) return sum;
    while (dirent* e = ::readdir(d)) {
        if (std::strncmp(e->d_name, "link_", 5) != 0) continue;
        const ProgStats s = prog_stats(dir + "/" + e->d_name);
        sum.ns += s.ns;
        sum.runs += s.runs;
    }
    ::closedir(d);
    return sum;
}

// What a program ran during `n` opens of `path`: the difference of `read()` (its
// ProgStats) after and before. Zeros when it did not run (or was replaced meanwhile).
template <class Read>
ProgStats batch_stats(const Read& read, const std::string& path, int n) {
    const ProgStats a = read();
    (void)ns_per_op(path, n);
    const ProgStats b = read();
    if (b.runs <= a.runs) return {};
    return {b.ns - a.ns, b.runs - a.runs};
}

// BPF run-time stats on for its lifetime (they add two clock reads per program run).
class StatsOn {
public:
    StatsOn() : fd_(bpf_enable_stats(BPF_STATS_RUN_TIME)) {
        if (fd_ < 0) throw std::runtime_error(std::string("cannot enable BPF stats: ") + std::strerror(errno));
    }
    ~StatsOn() { ::close(fd_); }
    StatsOn(const StatsOn&) = delete;
    StatsOn& operator=(const StatsOn&) = delete;

private:
    int fd_;
};

}  // namespace custguard::bench
