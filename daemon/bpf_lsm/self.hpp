// custguardd as the BPF programs name it (CG_CTL_SELF_* in bpf/custguard_abi.h): the one
// process whose read-only opens of zone files they let through, for the [watch] watcher's
// comparison of copies with zone files.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

namespace custguard::daemon::bpf_lsm {

struct SelfIdentity {
    std::uint32_t tgid = 0;         // in the initial pid namespace (bpf_get_current_pid_tgid)
    std::uint64_t start_ticks = 0;  // group leader's start_boottime in CG_USER_HZ ticks
    std::uint64_t exe_dev = 0;      // kernel dev_t of the executable
    std::uint64_t exe_ino = 0;
};

// starttime, field 22 of a /proc/PID/stat line; nullopt when the line is malformed. The
// command name (field 2) may hold spaces and parentheses: fields count from its last ')'.
std::optional<std::uint64_t> stat_start_ticks(std::string_view stat);

// This process, read from `proc` (/proc). An error says why the kernel could not name it
// by these values: another pid or time namespace than the initial one (getpid() and
// starttime are not what the kernel's hooks see), a clock tick other than CG_USER_HZ.
// Returns only once a tick has passed since the process started, so that a process given
// its pid later can never have the same start tick.
tl::expected<SelfIdentity, std::string> self_identity(const std::string& proc = "/proc");

}  // namespace custguard::daemon::bpf_lsm
