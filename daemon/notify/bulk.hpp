// Bulk-read detection: a user (or a client machine) that reads more than max_files distinct
// files of one zone, or more than max_bytes, within window_seconds. Sliding windows keyed
// by (zone, uid) and (zone, client), fed with the event times of the records.
//
// Bytes: the enforcers see opens, not reads, so the byte count is the size of each file
// opened (the caller supplies it, e.g. from stat) — an upper bound of what was read. A
// file counts once per window however often it is opened.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace custguard::notify {

struct BulkLimits {
    std::uint32_t max_files = 0;  // 0: off
    std::uint64_t max_bytes = 0;  // 0: off
    std::uint32_t window_seconds = 600;
};

struct BulkRead {
    std::string zone;
    bool by_client = false;  // keyed by client machine rather than by user
    std::uint32_t uid = 0;
    std::string user;
    std::string client;
    std::uint32_t files = 0;
    std::uint64_t bytes = 0;
    std::int64_t first_us = 0, last_us = 0;
};

class BulkDetector {
public:
    // Windows beyond this many keys are not tracked (counted in untracked()).
    static constexpr std::size_t max_keys = 65536;
    // Entries (opens) kept per window.
    static constexpr std::size_t max_items = 100000;

    void set_limits(BulkLimits limits);
    const BulkLimits& limits() const { return limits_; }
    bool enabled() const { return limits_.max_files > 0 || limits_.max_bytes > 0; }

    // One allowed (or audited) read. Returns what crossed a limit with it: at most one per
    // key (uid, client). A key that fired starts a fresh window.
    std::vector<BulkRead> observe(const std::string& zone, std::uint32_t uid, const std::string& user,
                                  const std::string& client, const std::string& path, std::uint64_t bytes,
                                  std::int64_t time_us);
    // Drop windows whose newest entry is older than the window (bounded memory).
    void expire(std::int64_t now_us);
    std::size_t tracked() const { return windows_.size(); }
    std::uint64_t untracked() const { return untracked_; }

private:
    struct Item {
        std::int64_t time_us;
        std::string path;
    };
    struct PathUse {
        std::uint32_t entries = 0;  // in items
        std::uint64_t bytes = 0;    // size when first seen in this window
    };
    struct Window {
        std::deque<Item> items;
        std::unordered_map<std::string, PathUse> paths;
        std::uint64_t bytes = 0;                               // bytes of distinct paths
    };
    struct Key {
        std::string zone;
        bool by_client;
        std::string id;  // uid or client
        auto operator<=>(const Key&) const = default;
    };
    std::optional<BulkRead> add(const Key& key, const std::string& path, std::uint64_t bytes, std::int64_t time_us);

    BulkLimits limits_;
    std::map<Key, Window> windows_;
    std::uint64_t untracked_ = 0;
};

}  // namespace custguard::notify
