// What the people responsible read: per-zone digests (denials first, then who read which
// files, with counts) and immediate alerts, as bilingual (Japanese / English) UTF-8 mail
// text and as JSON for webhooks. Only what the journal record already holds goes in:
// paths, user and host names, counts, detector names — never document contents.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "custguard/events/record.hpp"

namespace custguard::notify {

// "2026-11-28 02:49:31 +0900" in the daemon's local time zone.
std::string local_time_text(std::int64_t epoch_seconds);

struct Rendered {
    std::string subject;  // UTF-8
    std::string text;     // mail body
    std::string json;     // webhook document
};

// Accumulates the records of one zone for one target between two digests. Memory is
// bounded: beyond the caps lines are only counted (the text says so).
class ZoneDigest {
public:
    static constexpr std::size_t max_denial_lines = 200;
    static constexpr std::size_t max_read_paths = 2000;

    void add(const events::Record& record);
    bool empty() const { return total_ == 0; }
    std::uint64_t total() const { return total_; }
    Rendered render(std::string_view zone, std::string_view target, std::string_view host, std::int64_t from,
                    std::int64_t to) const;

private:
    struct Line {
        std::int64_t time = 0;
        std::string user, uid, path, client, exe, what;
    };
    struct UserReads {
        std::map<std::string, std::uint32_t> paths;  // path -> opens
        std::uint64_t opens = 0;
        std::uint64_t paths_not_listed = 0;
    };
    std::vector<Line> denials_;         // denied and audited reads, zone-integrity, print decisions
    std::uint64_t denials_not_listed_ = 0;
    std::map<std::string, UserReads> reads_;  // "user (uid)" -> reads
    std::size_t read_paths_ = 0;
    std::uint64_t allowed_ = 0, audited_ = 0, denied_ = 0, integrity_ = 0, print_ = 0, other_ = 0;
    std::uint64_t total_ = 0;
};

// One immediate alert for one record (the record's kind tells what happened).
// `suppressed` alerts were held back by the rate limit since the previous one.
Rendered render_alert(const events::Record& record, std::string_view target, std::string_view host,
                      std::uint64_t suppressed);

}  // namespace custguard::notify
