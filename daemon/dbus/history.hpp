// GetHistory: custguardd's own records read back from the journal for the Cockpit page
// (custguard.dbus(7)). Bounded on both sides: a row limit and a time window, so a call
// costs at most k_max_rows entries of an indexed journal walk.
#pragma once

#include <systemd/sd-bus.h>

#include <cstdint>
#include <string>
#include <vector>

#include <tl/expected.hpp>

namespace custguard::dbus::history {

inline constexpr std::uint32_t k_default_rows = 1000;
inline constexpr std::uint32_t k_max_rows = 10000;
inline constexpr std::uint64_t k_max_window_usec = 92ull * 24 * 3600 * 1'000'000;  // a quarter
inline constexpr std::size_t k_field_bytes = 1024;  // longer values are cut (with "…")

// The method's arguments. An empty string filters nothing; since/until 0: until now,
// since until − k_max_window_usec; limit 0: k_default_rows.
struct Filter {
    std::string zone, user, client, event;
    std::uint64_t since_usec = 0, until_usec = 0;
    std::uint32_t limit = 0;
};

inline constexpr const char* row_signature = "(tssssss)";

// One record: time, event (events::to_string of its kind: access_allowed, access_denied,
// bulk_read, print, admin_change, ...), zone, user, client, path, message.
struct Row {
    std::uint64_t time_usec = 0;
    std::string event, zone, user, client, path, message;
};

struct Result {
    std::vector<Row> rows;  // newest first
    bool truncated = false;  // more records matched within the window than the limit
};

// Reads the filter from `m` (signature ssssttu), checks its bounds; the error is the
// message of an InvalidArgument.
tl::expected<Filter, std::string> read_filter(sd_bus_message* m);

// The records of custguardd (its MESSAGE_IDs, SYSLOG_IDENTIFIER=custguardd and the trusted
// _UID=0, so another program cannot pass for it) in journald namespace `name_space` ("" =
// the system journal). The error says why the journal could not be read.
tl::expected<Result, std::string> query(const std::string& name_space, const Filter& filter);

// Appends (a(tssssss) rows, b truncated) to a reply.
int append(sd_bus_message* m, const Result& result);

}  // namespace custguard::dbus::history
