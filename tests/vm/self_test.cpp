// Host-side unit tests of how custguardd names itself to the BPF programs (CG_CTL_SELF_*):
// the start time parsed from /proc/PID/stat, and the refusals where the kernel would see
// another process than the one described.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "custguard_abi.h"
#include "resolve.hpp"
#include "self.hpp"

using custguard::daemon::bpf_lsm::self_identity;
using custguard::daemon::bpf_lsm::stat_start_ticks;

TEST_CASE("starttime is field 22 of /proc/PID/stat, counted after the command name's last ')'", "[unit][bpf_lsm]")
{
    const std::string tail = " S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 123456 99 100 101";
    struct Row {
        std::string line;
        std::optional<std::uint64_t> want;
    };
    const Row rows[] = {
        {"4242 (custguardd)" + tail, 123456},
        {"4242 (a b) (c)" + tail, 123456},           // spaces and a ')' in the name
        {"4242 ((sd-pam))" + tail, 123456},
        {"4242 ()" + tail, 123456},
        {"4242 (x)  S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18  77", 77},  // runs of spaces
        {"4242 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18", std::nullopt},  // too short
        {"4242 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 12x4 99", std::nullopt},
        {"4242 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 -5 99", std::nullopt},
        {"4242 custguardd S 1", std::nullopt},  // no command name
        {"", std::nullopt},
    };
    for (const auto& r : rows) {
        INFO(r.line);
        CHECK(stat_start_ticks(r.line) == r.want);
    }
}

TEST_CASE("this process named as the kernel sees it: tgid, start tick, executable, returned a tick after its start",
          "[unit][bpf_lsm]")
{
    auto self = self_identity();
    REQUIRE(self);
    CHECK(self->tgid == static_cast<std::uint32_t>(::getpid()));
    std::ifstream in("/proc/self/stat");
    std::string line;
    REQUIRE(std::getline(in, line));
    CHECK(stat_start_ticks(line) == self->start_ticks);
    struct stat st {};
    REQUIRE(::stat("/proc/self/exe", &st) == 0);
    CHECK(self->exe_dev == custguard::daemon::bpf_lsm::kernel_dev(st.st_dev));
    CHECK(self->exe_ino == st.st_ino);
    // A pid recycled after this process exits starts in a later tick than the one named.
    timespec ts{};
    ::clock_gettime(CLOCK_BOOTTIME, &ts);
    const auto now_ticks = (static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec) /
                           (1'000'000'000 / CG_USER_HZ);
    CHECK(now_ticks > self->start_ticks);
}

TEST_CASE("no identity where the kernel would name the process otherwise (another pid or time namespace)",
          "[unit][bpf_lsm]")
{
    namespace fs = std::filesystem;
    const fs::path proc = fs::temp_directory_path() / ("cg-self-test." + std::to_string(::getpid()));
    fs::remove_all(proc);
    fs::create_directories(proc / "self" / "ns");
    struct Row {
        const char* name;
        bool pid_ns;   // a (fake) ns/pid, whose inode is never the initial namespace's
        const char* error;
    };
    const Row rows[] = {
        {"no ns/pid", false, "cannot read"},
        {"ns/pid not the initial pid namespace", true, "pid namespace of its own"},
    };
    for (const auto& r : rows) {
        INFO(r.name);
        fs::remove(proc / "self" / "ns" / "pid");
        if (r.pid_ns)
            std::ofstream(proc / "self" / "ns" / "pid") << "";
        auto self = self_identity(proc.string());
        REQUIRE_FALSE(self);
        CHECK_THAT(self.error(), Catch::Contains(r.error));
    }
    fs::remove_all(proc);
}
