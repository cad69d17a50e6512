// CPU time a process has used, for the benchmarks that report what custguardd and
// journald spent on a workload.
#pragma once

#include <sys/types.h>
#include <time.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace custguard::bench {

// utime + stime of process `pid` in clock ticks (0 when it is gone).
inline long cpu_ticks(pid_t pid) {
    if (pid <= 0) return 0;
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat;
    std::getline(in, stat);
    const auto paren = stat.rfind(')');  // comm may hold blanks and parentheses
    if (paren == std::string::npos) return 0;
    std::istringstream fields(stat.substr(paren + 2));
    std::string skip;
    for (int i = 3; i < 14; ++i) fields >> skip;  // state .. cmajflt
    long utime = 0, stime = 0;
    fields >> utime >> stime;
    return utime + stime;
}

// CPU nanoseconds process `pid` (all its threads) has used: the kernel's process CPU clock,
// for work too short for cpu_ticks' 10 ms ticks. -1 when it is gone.
inline double cpu_ns(pid_t pid) {
    clockid_t clock{};
    timespec ts{};
    if (pid <= 0 || ::clock_getcpuclockid(pid, &clock) != 0 || ::clock_gettime(clock, &ts) != 0) return -1;
    return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// Waits (up to `most`) until the processes `pids` used no CPU for 300 ms (no new clock tick
// in three looks 100 ms apart): what they do for one measurement (records written, journald
// done with them) ends before the next starts, so none pays for another's.
inline void settle(const std::vector<pid_t>& pids, std::chrono::milliseconds most = std::chrono::seconds(10)) {
    auto total = [&] {
        long t = 0;
        for (pid_t p : pids) t += cpu_ticks(p);
        return t;
    };
    const auto deadline = std::chrono::steady_clock::now() + most;
    long last = total();
    for (int quiet = 0; quiet < 3 && std::chrono::steady_clock::now() < deadline;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        const long now = total();
        quiet = now == last ? quiet + 1 : 0;
        last = now;
    }
}

}  // namespace custguard::bench
