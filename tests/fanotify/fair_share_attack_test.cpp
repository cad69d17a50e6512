// Attacks on the fanotify enforcer's fair share between users (fanotify_enforcer.cpp,
// "fair share"). "Heavy" is relative: a user with more than twice the events of the least
// busy other active user (>= 8 events in 100 ms), and at least their mean. Without the mean,
// a light user (eve, a few hundred opens a second of new files, each waiting for a drain of
// the notify group) made a busy reader (alice, who only reads the zone files she is
// allowed) the heavy one, while
// mallory, who makes nearly all the work (creating files in a loop, no opens) and keeps
// every CPU busy, is never parked: she opens nothing. alice's opens read while eve's are in
// a worker's hands are then parked behind mallory's busy programs, at nice 19, each for up
// to max_park. The fair share must slow the user making the work, not her victim.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "fair_share_env.hpp"

using namespace std::chrono_literals;
using cgtest::alice;
using cgtest::mallory;

namespace {

// A third user, allowed nowhere, who opens only her own new files, at a modest rate.
const cgtest::Cred eve{60010, 60010, {}};

constexpr int zone_files = 100;
constexpr int creators = 4;

struct Shared {
    std::atomic<int> stop{0};
    std::atomic<int> eve_on{0};
    std::atomic<long> alice_opens{0}, alice_refused{0}, alice_max_ns{0};
    std::atomic<long> eve_opens{0};
    std::atomic<long> mallory_made{0};
};

using cgtest::fair::note_max;
using cgtest::fair::now_ns;

// Folders out/d0 .. out/d<creators-1> for mallory's creators, out/d<creators> for eve.
struct Env : cgtest::fair::Env<Shared> {
    Env() : cgtest::fair::Env<Shared>(zone_files, creators + 1) {}

    // alice reads zone files in a loop, one at a time.
    void start_alice() {
        spawn(alice, [this] {
            for (long i = 0; !sh->stop.load(); ++i) {
                const long t0 = now_ns();
                int fd = ::open(zone[static_cast<std::size_t>(i % zone_files)].c_str(), O_RDONLY | O_CLOEXEC);
                note_max(sh->alice_max_ns, now_ns() - t0);
                sh->alice_opens.fetch_add(1);
                if (fd < 0) {
                    sh->alice_refused.fetch_add(1);
                    continue;
                }
                ::close(fd);
            }
            return 0;
        });
    }

    // mallory creates (mknod, no open) and removes files in a loop: notifications only.
    void start_creators() {
        for (int k = 0; k < creators; ++k) {
            const char* dir = out[static_cast<std::size_t>(k)].c_str();
            spawn(mallory, [this, dir] {
                char path[512];
                for (long i = 0; !sh->stop.load(std::memory_order_relaxed); ++i) {
                    std::snprintf(path, sizeof path, "%s/n%ld", dir, i);
                    if (::mknod(path, S_IFREG | 0644, 0) == 0) sh->mallory_made.fetch_add(1, std::memory_order_relaxed);
                    if (i >= 64) {
                        std::snprintf(path, sizeof path, "%s/n%ld", dir, i - 64);
                        ::unlink(path);
                    }
                }
                return 0;
            });
        }
    }

    // eve, while eve_on: makes a new file and opens it (a walk, then a drain of the notify
    // group mallory keeps full), about 300 times a second: a light user (600 events a
    // second, 60 per 100 ms).
    void start_eve() {
        const char* dir = out[static_cast<std::size_t>(creators)].c_str();
        spawn(eve, [this, dir] {
            char path[512];
            for (long i = 0; !sh->stop.load(); ++i) {
                if (!sh->eve_on.load()) {
                    ::usleep(1000);
                    continue;
                }
                std::snprintf(path, sizeof path, "%s/e%ld", dir, i);
                (void)::mknod(path, S_IFREG | 0644, 0);
                int fd = ::open(path, O_RDONLY | O_CLOEXEC);
                if (fd >= 0) ::close(fd);
                ::unlink(path);
                sh->eve_opens.fetch_add(1);
                ::usleep(1500);
            }
            return 0;
        });
    }
};

}  // namespace

TEST_CASE("fair share attack: a light user and a creator with busy programs cannot get the reader's opens parked",
          "[fanotify][host][attack]") {
    REQUIRE_ROOT();
    Env env;
    const int cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    env.start_hogs(2 * cpus);
    env.start_creators();
    env.start_eve();
    env.start_alice();
    std::this_thread::sleep_for(500ms);

    // Without eve: alice and mallory only; mallory (all the notifications) is the heavy one.
    const long a0 = env.sh->alice_opens.load();
    const auto p0 = env.enforcer->stats().parked;
    std::this_thread::sleep_for(2s);
    const long alone = env.sh->alice_opens.load() - a0;
    const auto p1 = env.enforcer->stats().parked;
    const long max_alone = env.sh->alice_max_ns.exchange(0);

    // With eve, a light user: alice becomes "heavy".
    env.sh->eve_on.store(1);
    std::this_thread::sleep_for(300ms);
    const long a1 = env.sh->alice_opens.load();
    const auto p2 = env.enforcer->stats().parked;
    const long e1 = env.sh->eve_opens.load();
    const long m1 = env.sh->mallory_made.load();
    std::this_thread::sleep_for(2s);
    const long with_eve = env.sh->alice_opens.load() - a1;
    const long made = env.sh->mallory_made.load() - m1;
    const long eve_opens = env.sh->eve_opens.load() - e1;
    const auto s = env.enforcer->stats();
    const long max_with = env.sh->alice_max_ns.load();
    env.stop_children();

    WARN("alice's opens in 2 s: " << alone << " without eve (parked " << p1 - p0 << ", slowest "
                                   << max_alone / 1000 << " µs), " << with_eve << " with eve (" << eve_opens
                                   << " opens; parked " << s.parked - p2 << ", " << s.parked_late
                                   << " at max_park in all, slowest " << max_with / 1000 << " µs); mallory made "
                                   << made << " files");
    CHECK(env.sh->alice_refused == 0);
    env.check_children();
    // Neither eve (the least busy) nor mallory (no opens) has an open to park: every parked
    // open is alice's, the victim's. Without the mean in "heavy" and with 20 ms windows:
    // 70-367 in 2 s (alice made 7,158-15,225 opens, against 18,755-29,424 with parking
    // turned off; load 11-12); with the mean, 20 ms windows: 15-93; with 50 ms: 9-42.
    // Parking only the busiest user left 0-19 (mallory's creators kept off the CPUs a
    // moment make fewer events than alice), but parked the bench's reader.
    CHECK(s.parked - p2 < 50);
    // What the bound assumes: mallory makes most of the work. A creator making about
    // twice alice's events is at the mean with her, and the rule counts her heavy (two
    // creating processes on a fresh 2-core host: 1.7-1.9x, 17-179 parked; see "Fair share"
    // in daemon/fanotify/README.md). Four made 3-8x.
    CHECK(made > 2 * with_eve);
}

namespace {

// Many openers of one user, each waiting for an open of a new file outside the zone (a
// walk, then the notify group handled up to it): more than max_parked at once.
struct Openers {
    static constexpr int n = 48;
};

}  // namespace

TEST_CASE("fair share attack: a flood of parked opens does not hold another user's opens",
          "[fanotify][host][attack]") {
    REQUIRE_ROOT();
    Env env;
    env.start_creators();
    // alice alone first: her slowest open and how many took over 20 ms.
    std::atomic<long>* slow = nullptr;
    void* m = ::mmap(nullptr, sizeof(std::atomic<long>), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(m != MAP_FAILED);
    slow = new (m) std::atomic<long>(0);
    env.spawn(alice, [&env, slow] {
        for (long i = 0; !env.sh->stop.load(); ++i) {
            const long t0 = now_ns();
            int fd = ::open(env.zone[static_cast<std::size_t>(i % zone_files)].c_str(), O_RDONLY | O_CLOEXEC);
            const long d = now_ns() - t0;
            note_max(env.sh->alice_max_ns, d);
            if (d > 20'000'000) slow->fetch_add(1);
            env.sh->alice_opens.fetch_add(1);
            if (fd < 0) {
                env.sh->alice_refused.fetch_add(1);
                continue;
            }
            ::close(fd);
        }
        return 0;
    });
    std::this_thread::sleep_for(1s);
    const long a0 = env.sh->alice_opens.load(), s0 = slow->load();
    std::this_thread::sleep_for(2s);
    const long alone = env.sh->alice_opens.load() - a0, slow_alone = slow->load() - s0;
    const long max_alone = env.sh->alice_max_ns.exchange(0);

    // mallory's openers (eve's directory is free: eve is not started here).
    const char* dir = env.out[static_cast<std::size_t>(creators)].c_str();
    for (int k = 0; k < Openers::n; ++k)
        env.spawn(mallory, [&env, dir, k] {
            char path[512];
            for (long i = 0; !env.sh->stop.load(); ++i) {
                std::snprintf(path, sizeof path, "%s/o%d.%ld", dir, k, i);
                (void)::mknod(path, S_IFREG | 0644, 0);
                int fd = ::open(path, O_RDONLY | O_CLOEXEC);
                if (fd >= 0) ::close(fd);
                ::unlink(path);
                env.sh->eve_opens.fetch_add(1);
            }
            return 0;
        });
    std::this_thread::sleep_for(500ms);
    const long a1 = env.sh->alice_opens.load(), s1 = slow->load(), m1 = env.sh->eve_opens.load();
    const auto p1 = env.enforcer->stats();
    std::this_thread::sleep_for(2s);
    const long flooded = env.sh->alice_opens.load() - a1, slow_flooded = slow->load() - s1;
    const long mallory_opens = env.sh->eve_opens.load() - m1;
    const auto p2 = env.enforcer->stats();
    const long max_flooded = env.sh->alice_max_ns.load();
    env.stop_children();
    WARN("alice's opens in 2 s: " << alone << " beside the creators (" << slow_alone << " over 20 ms, slowest "
                                   << max_alone / 1000 << " µs), " << flooded << " with " << Openers::n
                                   << " openers of mallory (" << mallory_opens << " opens; " << slow_flooded
                                   << " over 20 ms, slowest " << max_flooded / 1000 << " µs); parked "
                                   << p2.parked - p1.parked << ", at max_park " << p2.parked_late - p1.parked_late
                                   << ", quick waits " << p2.quick_waits - p1.quick_waits << ", refused "
                                   << p2.quick_refused - p1.quick_refused);
    ::munmap(m, sizeof(std::atomic<long>));
    CHECK(env.sh->alice_refused == 0);
    env.check_children();
    // A gross bound (the slowest open varies 40-540 ms on a loaded 2-CPU host, with or
    // without parking): an open of alice's held behind mallory's parked ones for good.
    CHECK(max_flooded < 1'000'000'000L);
}
