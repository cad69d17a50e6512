// Reading custguardd's records from the journal, shared by `history`, `events` and
// `report`: the local journal, a journald namespace, a directory (a collector's) or
// journal files, matched by SYSLOG_IDENTIFIER=custguardd.
#pragma once

#include <systemd/sd-journal.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

namespace custguard::cli {

struct JournalCloser {
    void operator()(sd_journal* j) const { sd_journal_close(j); }
};
using JournalPtr = std::unique_ptr<sd_journal, JournalCloser>;

struct JournalFilter {
    std::string user, zone, path, event;
    std::optional<std::uint64_t> since_us, until_us;
};

// "2026-10-01", "2026-10-01 09:30[:00]", "2026-10-01T09:30:00", "today", "yesterday",
// "now", "-2h" / "2h ago", in local time; microseconds since the epoch.
std::optional<std::uint64_t> parse_time_usec(const std::string& text);


// The CUSTGUARD_* fields, MESSAGE, MESSAGE_ID and PRIORITY of the current entry.
std::map<std::string, std::string> entry_fields(sd_journal* j);
// Calls f(name, value) for each field of the current entry, in the entry's order.
template <class F>
void for_each_field(sd_journal* j, F&& f) {
    const void* data = nullptr;
    size_t len = 0;
    SD_JOURNAL_FOREACH_DATA(j, data, len) {
        std::string_view kv(static_cast<const char*>(data), len);
        if (auto eq = kv.find('='); eq != std::string_view::npos) f(kv.substr(0, eq), kv.substr(eq + 1));
    }
}

// The current entry's cursor into `out` ("" when it has none), reusing its buffer.
void entry_cursor(sd_journal* j, std::string& out);

// Reads the current entry's fields whose names `keep` accepts, its _HOSTNAME and its
// cursor in one pass over the entry's data, into storage reused from entry to entry (the
// report reads millions of entries: no lookup per field, no allocation once warm).
// FieldMap: a std::map from field name to value, looked up by std::string_view.
template <class FieldMap>
class EntryReader {
public:
    explicit EntryReader(bool (*keep)(std::string_view key)) : keep_(keep) {}
    // `fields` holds the entry's fields only; hostname and cursor are "" when it has none.
    // The same `fields` must be passed every time (the reader remembers places in it).
    void read(sd_journal* j, FieldMap& fields, std::string& hostname, std::string& cursor) {
        // Entries of one program mostly carry the same fields in the same order: what the
        // field at each position was last time (skipped, _HOSTNAME, or its place in
        // `fields`) is remembered, so a field named as last time needs no lookup. Values are
        // assigned in place (their strings' buffers reused); fields the entry lacks are
        // erased afterwards.
        seen_.clear();
        hostname.clear();
        std::size_t position = 0;
        const void* data = nullptr;
        size_t len = 0;
        SD_JOURNAL_FOREACH_DATA(j, data, len) {
            const std::string_view kv(static_cast<const char*>(data), len);
            if (position == layout_.size()) layout_.emplace_back();
            auto& slot = layout_[position++];
            const auto n = slot.key.size();
            if (!(n > 0 && kv.size() > n && kv[n] == '=' && kv.starts_with(slot.key))) {
                const auto eq = kv.find('=');
                if (eq == std::string_view::npos) {
                    slot.key.clear();
                    continue;
                }
                const auto key = kv.substr(0, eq);
                slot.key.assign(key);
                slot.what = key == "_HOSTNAME" ? Slot::hostname : keep_(key) ? Slot::field : Slot::skip;
                if (slot.what == Slot::field) {
                    slot.it = fields.find(key);
                    if (slot.it == fields.end()) slot.it = fields.emplace(std::string(key), std::string()).first;
                }
            }
            const auto value = kv.substr(slot.key.size() + 1);
            if (slot.what == Slot::hostname) hostname.assign(value);
            if (slot.what != Slot::field) continue;
            if (std::find(seen_.begin(), seen_.end(), slot.it) != seen_.end()) continue;  // repeated: the first counts
            slot.it->second.assign(value);
            seen_.push_back(slot.it);
        }
        if (seen_.size() != fields.size()) {
            for (auto it = fields.begin(); it != fields.end();)
                it = std::find(seen_.begin(), seen_.end(), it) == seen_.end() ? fields.erase(it) : std::next(it);
            layout_.clear();  // some remembered places were erased
        }
        entry_cursor(j, cursor);
    }

private:
    struct Slot {
        enum What { skip, hostname, field } what = skip;
        std::string key;
        typename FieldMap::iterator it{};
    };
    bool (*keep_)(std::string_view key);
    std::vector<Slot> layout_;                        // the last entry's fields, by position
    std::vector<typename FieldMap::iterator> seen_;  // the fields of the current entry
};

// The first of `files`, `directory`, `name_space` that is given, else the local journal.
tl::expected<JournalPtr, std::string> open_journal(const std::string& name_space, const std::string& directory,
                                                   const std::vector<std::string>& files = {});

// SYSLOG_IDENTIFIER=custguardd and the filter's user, zone and event. < 0: -errno.
int add_matches(sd_journal* j, const JournalFilter& f);

}  // namespace custguard::cli
