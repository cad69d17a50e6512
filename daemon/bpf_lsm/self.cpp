#include "self.hpp"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <chrono>
#include <ctime>
#include <fstream>
#include <thread>

#include <sys/stat.h>
#include <unistd.h>

#include "custguard_abi.h"
#include "resolve.hpp"

namespace custguard::daemon::bpf_lsm {

namespace {

// Inode numbers of the initial namespaces (PROC_PID_INIT_INO, PROC_TIME_INIT_INO).
constexpr ino_t k_init_pid_ns = 0xEFFFFFFC;
constexpr ino_t k_init_time_ns = 0xEFFFFFFA;

std::uint64_t boottime_ticks()
{
    timespec ts{};
    ::clock_gettime(CLOCK_BOOTTIME, &ts);
    const auto ns = static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<std::uint64_t>(ts.tv_nsec);
    return ns / (1'000'000'000 / CG_USER_HZ);
}

}  // namespace

std::optional<std::uint64_t> stat_start_ticks(std::string_view stat)
{
    const auto close = stat.rfind(')');
    if (close == std::string_view::npos)
        return std::nullopt;
    // After "pid (comm)" comes field 3 (state); starttime is field 22.
    std::string_view rest = stat.substr(close + 1);
    for (int field = 3;; ++field) {
        const auto start = rest.find_first_not_of(' ');
        if (start == std::string_view::npos)
            return std::nullopt;
        rest.remove_prefix(start);
        const std::string_view token = rest.substr(0, rest.find(' '));
        rest.remove_prefix(token.size());
        if (field < 22)
            continue;
        std::uint64_t v = 0;
        auto [p, ec] = std::from_chars(token.data(), token.data() + token.size(), v);
        if (ec != std::errc() || p != token.data() + token.size())
            return std::nullopt;
        return v;
    }
}

tl::expected<SelfIdentity, std::string> self_identity(const std::string& proc)
{
    using Error = tl::unexpected<std::string>;
    struct stat st {};
    if (::stat((proc + "/self/ns/pid").c_str(), &st) != 0)
        return Error("cannot read " + proc + "/self/ns/pid: " + std::strerror(errno));
    if (st.st_ino != k_init_pid_ns)
        return Error("custguardd runs in a pid namespace of its own; the kernel names it by another pid");
    // Without time namespaces (no /proc/self/ns/time) every clock is the initial one.
    if (::stat((proc + "/self/ns/time").c_str(), &st) == 0 && st.st_ino != k_init_time_ns)
        return Error("custguardd runs in a time namespace of its own; its start time reads shifted");
    if (::sysconf(_SC_CLK_TCK) != CG_USER_HZ)
        return Error("the clock tick is " + std::to_string(::sysconf(_SC_CLK_TCK)) + " Hz, not " +
                     std::to_string(CG_USER_HZ));
    std::ifstream in(proc + "/self/stat");
    std::string line;
    if (!std::getline(in, line))
        return Error("cannot read " + proc + "/self/stat");
    const auto start = stat_start_ticks(line);
    if (!start)
        return Error("cannot parse " + proc + "/self/stat: " + line);
    if (::stat((proc + "/self/exe").c_str(), &st) != 0)
        return Error("cannot stat " + proc + "/self/exe: " + std::strerror(errno));
    SelfIdentity self{static_cast<std::uint32_t>(::getpid()), *start, kernel_dev(st.st_dev),
                      static_cast<std::uint64_t>(st.st_ino)};
    while (boottime_ticks() <= self.start_ticks)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return self;
}

}  // namespace custguard::daemon::bpf_lsm
