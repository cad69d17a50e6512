// Host-side unit tests of the allowed-read interval in jiffies (CG_CTL_READ_INTERVAL,
// struct cg_read in bpf/custguard_abi.h): the configured interval becomes whole ticks,
// rounded up so that it never shrinks, and the tick is the kernel's.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>

#include "bpf_lsm_enforcer.hpp"

using custguard::daemon::bpf_lsm::kernel_tick_ns;
using custguard::daemon::bpf_lsm::read_interval_ticks;

TEST_CASE("the allowed-read interval is rounded up to whole jiffies; 0 stays every read recorded", "[unit][bpf_lsm]")
{
    using std::chrono::nanoseconds;
    struct Row {
        nanoseconds interval;
        std::uint64_t tick_ns;
        std::uint64_t want;
    };
    const Row rows[] = {
        {nanoseconds(0), 4'000'000, 0},
        {std::chrono::seconds(60), 4'000'000, 15'000},       // HZ=250, the daemon's default
        {std::chrono::seconds(60), 1'000'000, 60'000},       // HZ=1000
        {std::chrono::seconds(60), 3'333'333, 18'001},       // HZ=300: TICK_NSEC is rounded
        {std::chrono::seconds(2), 10'000'000, 200},          // HZ=100
        {nanoseconds(1), 4'000'000, 1},                      // shorter than a tick: one
        {nanoseconds(4'000'000), 4'000'000, 1},
        {nanoseconds(4'000'001), 4'000'000, 2},
    };
    for (const auto& r : rows) {
        INFO("interval " << r.interval.count() << " ns, tick " << r.tick_ns << " ns");
        CHECK(read_interval_ticks(r.interval, r.tick_ns) == r.want);
    }
}

TEST_CASE("the tick is the kernel's jiffy: between HZ=1000 and HZ=100", "[unit][bpf_lsm]")
{
    const std::uint64_t tick = kernel_tick_ns();
    CHECK(tick >= 1'000'000);
    CHECK(tick <= 10'000'000);
}
