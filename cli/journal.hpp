// Reading custguardd's records from the journal, shared by `history`, `events` and
// `report`: the local journal, a journald namespace, a directory (a collector's) or
// journal files, matched by SYSLOG_IDENTIFIER=custguardd.
#pragma once

#include <systemd/sd-journal.h>

#include <cstdint>
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

// Field name -> value; looked up by string_view without a copy.
using FieldMap = std::map<std::string, std::string, std::less<>>;

// The CUSTGUARD_* fields, MESSAGE, MESSAGE_ID and PRIORITY of the current entry.
std::map<std::string, std::string> entry_fields(sd_journal* j);
// The fields of the current entry whose names `keep` accepts, into `out` (cleared first).
void entry_fields(sd_journal* j, bool (*keep)(std::string_view key), FieldMap& out);
// One field of the current entry ("" when absent), e.g. _HOSTNAME.
std::string entry_field(sd_journal* j, const char* name);
// The current entry's cursor ("" when it has none).
std::string entry_cursor(sd_journal* j);

// The first of `files`, `directory`, `name_space` that is given, else the local journal.
tl::expected<JournalPtr, std::string> open_journal(const std::string& name_space, const std::string& directory,
                                                   const std::vector<std::string>& files = {});

// SYSLOG_IDENTIFIER=custguardd and the filter's user, zone and event. < 0: -errno.
int add_matches(sd_journal* j, const JournalFilter& f);

}  // namespace custguard::cli
