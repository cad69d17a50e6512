// A bounded child process: input through a socket (so a dead reader gives EPIPE, never
// SIGPIPE in the caller), output capped, wall-clock timeout, own process group killed on
// every early exit.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

namespace custguard::scan::detail {

struct ProcessLimits {
    std::chrono::milliseconds timeout{30'000};
    std::size_t max_output = std::size_t{256} << 20;
    std::uint64_t memory = 0;  // RLIMIT_AS for the child; 0: unlimited
    int uid = -1;              // >= 0: the child switches to this uid (and gid) first
    int gid = -1;
};

// Exit status of the child when it could not switch user or set up its descriptors.
inline constexpr int kSetupFailed = 126;

struct ProcessResult {
    int exit_status = -1;  // exit code, or 128 + signal
    bool timed_out = false;
    bool output_truncated = false;
    std::string output;
    std::string error_tail;  // last few KiB of stderr
};

// Finds `program` in PATH unless it holds a '/'; empty when not found.
std::string find_program(std::string_view program);

tl::expected<ProcessResult, std::string> run_bounded(const std::vector<std::string>& argv,
                                                     std::string_view input, const ProcessLimits& limits);

}  // namespace custguard::scan::detail
