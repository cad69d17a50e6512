// UserShares: which user makes the fanotify enforcer work hardest (pure logic, no root).
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "daemon/fanotify/user_shares.hpp"

using custguard::daemon::fan::UserShares;

namespace {

constexpr std::uint64_t w = UserShares::window_ns;

struct Burst {
    std::uint32_t uid;
    int events;
    std::uint64_t at_ns;
};

// Charges the bursts in order; returns what the last event of the last burst was told.
bool run(const std::vector<Burst>& bursts) {
    UserShares s;
    bool heavy = false;
    for (const auto& b : bursts)
        for (int i = 0; i < b.events; ++i) heavy = s.charge(b.uid, b.at_ns);
    return heavy;
}

}  // namespace

TEST_CASE("user shares: a user is heavy only beside another active user with less than half its events, and at or above the mean", "[unit]") {
    struct Row {
        const char* what;
        std::vector<Burst> bursts;
        bool heavy;
    };
    const std::vector<Row> rows = {
        {"one user alone, however many events", {{1, 100000, 0}}, false},
        {"two users alike", {{2, 50, 0}, {1, 50, 0}}, false},
        {"exactly twice the other's", {{2, 20, 0}, {1, 40, 0}}, false},
        {"more than twice the other's", {{2, 20, 0}, {1, 41, 0}}, true},
        {"the lighter one of the two", {{1, 100, 0}, {2, 20, 0}}, false},
        {"beside a user below min_active (an open now and then)",
         {{2, static_cast<int>(UserShares::min_active) - 1, 0}, {1, 1000, 0}},
         false},
        {"beside a user at min_active", {{2, static_cast<int>(UserShares::min_active), 0}, {1, 1000, 0}}, true},
        {"below min_active itself", {{2, 1, 0}, {1, static_cast<int>(UserShares::min_active) - 1, 0}}, false},
        {"the other's events of the window before count", {{2, 20, 0}, {1, 41, w}}, true},
        {"the other's events two windows back are gone", {{2, 20, 0}, {1, 41, 2 * w}}, false},
        {"its own events of the window before count", {{1, 30, 0}, {2, 20, w}, {1, 11, w}}, true},
        {"a gap of a window forgets its own", {{1, 1000, 0}, {2, 20, 2 * w}, {1, 30, 2 * w}}, false},
        {"compared with the least busy of several", {{2, 100, 0}, {3, 20, 0}, {1, 41, 0}}, false},
        {"more than twice the least, below the mean", {{2, 70, 0}, {3, 20, 0}, {1, 41, 0}}, false},
        {"more than twice the least, at the mean", {{2, 62, 0}, {3, 20, 0}, {1, 41, 0}}, true},
        {"more than twice the least and above the mean", {{2, 40, 0}, {3, 20, 0}, {1, 41, 0}}, true},
        {"beside a user making nearly all the work (notifications) and a light one",
         {{2, 10000, 0}, {3, 20, 0}, {1, 1000, 0}},
         false},
        {"that user itself", {{1, 1000, 0}, {3, 20, 0}, {2, 10000, 0}}, true},
    };
    for (const auto& r : rows) {
        INFO(r.what);
        CHECK(run(r.bursts) == r.heavy);
    }
}

TEST_CASE("user shares: more users than slots evict the least busy, and the busy ones keep their counts", "[unit]") {
    UserShares s;
    for (int i = 0; i < 200; ++i) s.charge(1, 0);  // the heavy one
    for (std::uint32_t uid = 100; uid < 200; ++uid)
        for (int i = 0; i < 10; ++i) s.charge(uid, 0);  // 100 light users, more than the slots
    // User 1 keeps its 200 (not evicted): beside light users of 10 it is heavy at once.
    CHECK(s.charge(1, 0));
    CHECK_FALSE(s.charge(150, 0));
}
