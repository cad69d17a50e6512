// Who makes the fanotify enforcer work hardest right now: events (permission events and
// notifications) counted per user over short windows, so that the opens of a user making
// far more work than another active user can wait behind everyone else's (issue 18: a user
// creating, linking and renaming files in a loop slowed every other user's opens 5x).
//
// Pure logic, no locking: the enforcer holds a mutex around it.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>

namespace custguard::daemon::fan {

class UserShares {
public:
    // A window is 50 ms (the caller's clock divided by it); a user's load is its events in
    // the current window and the one before, so a burst counts for 50-100 ms. Shorter
    // windows (20 ms) followed a creator's loop kept off the CPUs a moment by busy programs:
    // its load fell below the others' and theirs counted as heavy (fair_share_attack_test).
    static constexpr std::uint64_t window_ns = 50'000'000;
    // A user is compared with others only with at least this many events over the two
    // windows (80 a second): one who opens a file now and then does not make everyone else
    // "heavy".
    static constexpr std::uint32_t min_active = 8;
    // Heavy: more than this many times the events of the least busy other active user.
    static constexpr std::uint32_t ratio = 2;
    static constexpr std::uint32_t no_user = ~0u;

    // Counts one event of `uid` at time `now_ns` (monotonic). Returns whether that user's
    // load is more than `ratio` times the least load of any other active user's, and at
    // least the mean load of the active users. The mean: a user making nearly all the work
    // with notifications alone (it opens nothing, so nothing of its can be parked) must not
    // leave the busiest of the others heavy beside a light one; its load raises the mean
    // above theirs.
    bool charge(std::uint32_t uid, std::uint64_t now_ns) {
        const std::uint64_t w = now_ns / window_ns;
        Slot* me = nullptr;
        Slot* idlest = &slots_[0];
        for (auto& s : slots_) {
            roll(s, w);
            if (s.uid == uid) me = &s;
            if (s.load() < idlest->load()) idlest = &s;
        }
        if (!me) {  // the user with the least load gives up its slot (and its history)
            me = idlest;
            *me = Slot{uid, w, 0, 0};
        }
        ++me->cur;
        const std::uint32_t mine = me->load();
        if (mine < min_active) return false;
        std::uint32_t least = no_user;
        std::uint64_t total = mine, active = 1;
        for (const auto& s : slots_)
            if (&s != me && s.uid != no_user && s.load() >= min_active) {
                least = std::min(least, s.load());
                total += s.load();
                ++active;
            }
        return least != no_user && mine > ratio * least && mine * active >= total;
    }

private:
    struct Slot {
        std::uint32_t uid = no_user;
        std::uint64_t window = 0;
        std::uint32_t cur = 0, prev = 0;
        std::uint32_t load() const { return cur + prev; }
    };
    // Moves a slot to window `w`: its count becomes the previous window's, or nothing when
    // it saw no event in the window right before `w`.
    static void roll(Slot& s, std::uint64_t w) {
        if (s.window == w) return;
        s.prev = s.window + 1 == w ? s.cur : 0;
        s.cur = 0;
        s.window = w;
    }
    std::array<Slot, 32> slots_{};
};

}  // namespace custguard::daemon::fan
