// Repeated refusals become counted records, so that no user can flood the journal.
//
// An unprivileged user can be refused as often as he likes (a loop of opens of a zone
// file, a loop of D-Bus calls): thousands of records a second that would rotate the real
// access history out of the journal. Refusals are grouped by a key (the pipeline uses uid,
// zone, rule and operation for denied accesses, the uid for refused D-Bus calls); of each
// key the first `burst` records of a window are written as they are, the rest of the
// window only counted, and when the window ends one `repeated` record says how many were
// counted, with the key's fields and the time of the first and last of them. Nothing is
// dropped silently, and a flood costs at most burst + 1 records per key and window.
// Allowed accesses never pass through here: they are the access history.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "custguard/events/record.hpp"

namespace custguard::events {

struct RepeatLimits {
    std::uint32_t burst = 10;                  // records of a key written one by one per window; 0: no limit
    std::chrono::milliseconds window{60'000};  // starts with the first record of a key
    std::size_t max_keys = 4096;               // keys tracked at once; beyond, records are written one by one
};

// Not thread-safe: one per thread that decides.
class RepeatLimiter {
public:
    using Clock = std::chrono::steady_clock;
    enum class Admit : std::uint8_t {
        first,    // write it, and describe() the key with its record
        written,  // write it
        counted,  // do not write it: it is counted into the key's `repeated` record
    };

    explicit RepeatLimiter(RepeatLimits limits = {}) : limits_(limits) {}

    // One refusal of `key` at `now` (realtime_us: when it happened, for the summary).
    // `detail` is what may vary within a key (the D-Bus method); the summary lists the
    // distinct details it counted (at most 16).
    Admit admit(const std::string& key, Clock::time_point now, std::int64_t realtime_us,
                std::string_view detail = {});
    // The fields that identify the key, from its first record (kind, uid, user, zone,
    // rule, operation, decision, admin action).
    void describe(const std::string& key, const Record& first);
    // `repeated` records of the windows that ended by `now` and counted something (every
    // open window with `all`, at shutdown). Windows that counted nothing end silently.
    std::vector<Record> take_due(Clock::time_point now, bool all = false);
    // When the earliest open window ends; nullopt when none is open.
    std::optional<Clock::time_point> next_due() const;

    std::uint64_t counted_total() const { return counted_total_; }  // ever counted instead of written
    std::uint64_t pending() const { return pending_; }              // counted, no `repeated` record yet
    const RepeatLimits& limits() const { return limits_; }

private:
    struct Window {
        Clock::time_point end;
        Record base;  // the identifying fields (describe())
        std::uint64_t count = 0;
        std::uint64_t counted = 0;
        std::int64_t first_us = 0;
        std::int64_t last_us = 0;
        std::set<std::string> details;
    };
    Record summary(const Window& w) const;
    void close(std::map<std::string, Window>::iterator it);

    RepeatLimits limits_;
    std::map<std::string, Window> windows_;
    std::vector<std::pair<Record, std::uint64_t>> ready_;  // summaries (and their counts) of closed windows
    std::uint64_t counted_total_ = 0;
    std::uint64_t pending_ = 0;
};

}  // namespace custguard::events
