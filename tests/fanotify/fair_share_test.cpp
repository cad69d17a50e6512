// The fanotify enforcer's fair share between users (fanotify_enforcer.cpp, "fair share"):
// the opens of a user making far more work than another active user are parked and
// answered after the others' by a thread at nice 19. Here mallory floods the enforcer (new
// files created and opened outside the zone, zone files opened) while alice reads zone
// files: mallory's opens must be parked and still decided exactly as before (zone files
// refused, her new files allowed), alice's all allowed; with mallory also keeping every CPU
// busy, her parked opens must still be answered (a worker takes them after max_park); and
// a stop answers every parked open before it returns.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdio>

#include "fair_share_env.hpp"

using namespace std::chrono_literals;
using cgtest::alice;
using cgtest::mallory;

namespace {

constexpr int zone_files = 100;
constexpr int flooders = 3;

// Counters the children write, in memory shared with them.
struct Shared {
    std::atomic<int> stop{0};
    std::atomic<long> alice_opens{0}, alice_refused{0};
    std::atomic<long> outside_opens{0}, outside_refused{0};  // mallory's own new files
    std::atomic<long> zone_opens{0}, zone_through{0};        // mallory's opens of zone files
    std::atomic<long> mallory_max_ns{0};                     // her slowest open
};

using cgtest::fair::note_max;
using cgtest::fair::now_ns;

struct Env : cgtest::fair::Env<Shared> {
    Env() : cgtest::fair::Env<Shared>(zone_files, flooders) {}

    // alice reads zone files in a loop until stopped.
    void start_alice() {
        spawn(alice, [this] {
            for (long i = 0; !sh->stop.load(); ++i) {
                int fd = ::open(zone[static_cast<std::size_t>(i % zone_files)].c_str(), O_RDONLY | O_CLOEXEC);
                sh->alice_opens.fetch_add(1);
                if (fd < 0) {
                    sh->alice_refused.fetch_add(1);
                    continue;
                }
                char b[64];
                (void)!::read(fd, b, sizeof b);
                ::close(fd);
            }
            return 0;
        });
    }

    // mallory, `flooders` processes: each makes a new file outside the zone and opens it
    // (a permission event that walks and waits for the notify group), opens a zone file,
    // and removes the file it made 64 rounds ago.
    void start_mallory() {
        for (int k = 0; k < flooders; ++k) {
            const char* dir = out[static_cast<std::size_t>(k)].c_str();
            spawn(mallory, [this, dir] {
                char path[512];
                for (long i = 0; !sh->stop.load(); ++i) {
                    std::snprintf(path, sizeof path, "%s/n%ld", dir, i);
                    (void)::mknod(path, S_IFREG | 0644, 0);
                    long t0 = now_ns();
                    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
                    note_max(sh->mallory_max_ns, now_ns() - t0);
                    sh->outside_opens.fetch_add(1);
                    if (fd >= 0)
                        ::close(fd);
                    else
                        sh->outside_refused.fetch_add(1);
                    t0 = now_ns();
                    fd = ::open(zone[static_cast<std::size_t>(i % zone_files)].c_str(), O_RDONLY | O_CLOEXEC);
                    note_max(sh->mallory_max_ns, now_ns() - t0);
                    sh->zone_opens.fetch_add(1);
                    if (fd >= 0) {
                        sh->zone_through.fetch_add(1);
                        ::close(fd);
                    }
                    if (i >= 64) {
                        std::snprintf(path, sizeof path, "%s/n%ld", dir, i - 64);
                        ::unlink(path);
                    }
                }
                return 0;
            });
        }
    }

    // Waits (at most `limit`) until the enforcer has parked `n` opens.
    std::uint64_t wait_parked(std::uint64_t n, std::chrono::milliseconds limit) {
        const auto until = std::chrono::steady_clock::now() + limit;
        while (enforcer->stats().parked < n && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(20ms);
        return enforcer->stats().parked;
    }

    // Every open decided as without the fair share: alice's allowed, mallory's zone opens
    // refused, her own new files allowed (but for overload answers refused because the
    // notify thread was behind, counted by the enforcer).
    void check_decisions() {
        const auto s = enforcer ? enforcer->stats() : custguard::daemon::FanotifyStats{};
        INFO("alice " << sh->alice_opens << " opens, " << sh->alice_refused << " refused; mallory "
                      << sh->outside_opens << " outside opens (" << sh->outside_refused << " refused), "
                      << sh->zone_opens << " zone opens (" << sh->zone_through << " through)");
        CHECK(sh->alice_opens > 0);
        CHECK(sh->alice_refused == 0);
        CHECK(sh->outside_opens > 0);
        CHECK(static_cast<std::uint64_t>(sh->outside_refused) <= s.quick_refused);
        CHECK(sh->zone_opens > 0);
        CHECK(sh->zone_through == 0);
        check_children();
    }
};

}  // namespace

TEST_CASE("fair share: a user flooding the enforcer has her opens parked and decided as before, and a user alone none",
          "[fanotify][host]") {
    REQUIRE_ROOT();
    Env env;
    // alice alone: one user, nobody to yield to.
    env.start_alice();
    std::this_thread::sleep_for(400ms);
    CHECK(env.enforcer->stats().parked == 0);
    env.start_mallory();
    const auto parked = env.wait_parked(200, 10s);
    std::this_thread::sleep_for(300ms);
    env.stop_children();
    const auto s = env.enforcer->stats();
    WARN("parked " << s.parked << " (" << s.parked_late << " at max_park), alice " << env.sh->alice_opens
                   << " opens, mallory " << env.sh->outside_opens + env.sh->zone_opens << " opens, her slowest "
                   << env.sh->mallory_max_ns / 1000 << " µs");
    CHECK(parked >= 200);
    env.check_decisions();
}

TEST_CASE("fair share: parked opens are answered while their user keeps every CPU busy", "[fanotify][host]") {
    REQUIRE_ROOT();
    Env env;
    const int cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    env.start_hogs(2 * cpus);
    env.start_alice();
    env.start_mallory();
    const auto parked = env.wait_parked(200, 10s);
    std::this_thread::sleep_for(1s);
    env.stop_children();
    const auto s = env.enforcer->stats();
    WARN("with " << 2 * cpus << " busy programs: parked " << s.parked << " (" << s.parked_late
                 << " at max_park), her slowest open " << env.sh->mallory_max_ns / 1000 << " µs");
    CHECK(parked >= 200);
    // The lane at 19 is slow beside the busy programs: workers took opens after max_park
    // (20 ms), or raised the lane (59-124 of 335-492 here).
    CHECK(s.parked_late > 0);
    // A gross bound: 28-36 ms here, once 724 ms on a loaded host; an open left to the lane
    // alone would still be answered, only late, so a hang is what this catches.
    CHECK(env.sh->mallory_max_ns < 3'000'000'000L);
    env.check_decisions();
}

TEST_CASE("fair share: a stop answers every parked open before it returns", "[fanotify][host]") {
    REQUIRE_ROOT();
    Env env;
    env.start_alice();
    env.start_mallory();
    REQUIRE(env.wait_parked(50, 10s) >= 50);
    env.enforcer->stop(true);
    // Not only by closing the group (the kernel then allows what was left unanswered): a
    // group kept in the fd store for the next daemon would hold such an opener for good.
    CHECK(env.enforcer->stats().parked_now == 0);
    env.enforcer.reset();
    env.stop_children();
    env.check_children();
}
