// The micro-benchmarks' unit of work: open, read 256 bytes, close, timed (bench/vm and
// bench/workload time it the same way, so their figures compare).
#pragma once

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>

namespace custguard::bench {

// This thread's CPU time, ns.
inline double thread_cpu_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// Wall ns per open+read+close of `path`; `cpu_ns`, when given, gets this thread's CPU ns
// per operation (what the reader itself paid, without a daemon's work on the same CPU).
// Throws when an open or read fails: a figure of failed opens would mean nothing.
inline double ns_per_op(const std::string& path, int iterations, double* cpu_ns = nullptr) {
    char buf[256];
    const double c0 = cpu_ns ? thread_cpu_ns() : 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iterations; ++i) {
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) throw std::runtime_error("open " + path + ": " + std::strerror(errno));
        if (::read(fd, buf, sizeof buf) < 0) {
            const int e = errno;
            ::close(fd);
            throw std::runtime_error("read " + path + ": " + std::strerror(e));
        }
        ::close(fd);
    }
    const auto t1 = std::chrono::steady_clock::now();
    if (cpu_ns) *cpu_ns = (thread_cpu_ns() - c0) / iterations;
    return std::chrono::duration<double, std::nano>(t1 - t0).count() / iterations;
}

}  // namespace custguard::bench
