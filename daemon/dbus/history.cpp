#include "daemon/dbus/history.hpp"

#include <systemd/sd-journal.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string_view>

#include <fmt/format.h>

#include "custguard/common/clock.hpp"
#include "custguard/common/text_escape.hpp"
#include "custguard/events/message_ids.hpp"

namespace custguard::dbus::history {

namespace {

struct JournalCloser {
    void operator()(sd_journal* j) const { sd_journal_close(j); }
};
using JournalPtr = std::unique_ptr<sd_journal, JournalCloser>;

std::string field(sd_journal* j, std::string_view name) {
    const void* data = nullptr;
    size_t len = 0;
    if (sd_journal_get_data(j, std::string(name).c_str(), &data, &len) < 0) return {};
    std::string_view kv(static_cast<const char*>(data), len);
    kv.remove_prefix(std::min(kv.size(), name.size() + 1));
    std::string cut;
    if (kv.size() > k_field_bytes) {
        std::size_t n = k_field_bytes;  // on a UTF-8 boundary
        while (n > 0 && (static_cast<unsigned char>(kv[n]) & 0xC0) == 0x80) --n;
        cut = "…";
        kv = kv.substr(0, n);
    }
    // sd-bus refuses a string that is not UTF-8, and the page shows controls as escapes.
    return (common::is_plain_text(kv) ? std::string(kv) : common::escape_text(kv)) + cut;
}

const events::KindInfo* kind_named(std::string_view name) {
    for (const auto& k : events::all_kinds())
        if (events::to_string(k.kind) == name) return &k;
    return nullptr;
}

}  // namespace

tl::expected<Filter, std::string> read_filter(sd_bus_message* m) {
    const char* s[4] = {};
    Filter f;
    int r = sd_bus_message_read(m, "ssssttu", &s[0], &s[1], &s[2], &s[3], &f.since_usec, &f.until_usec, &f.limit);
    if (r < 0) return tl::unexpected(fmt::format("malformed arguments of GetHistory: {}", std::strerror(-r)));
    f.zone = s[0], f.user = s[1], f.client = s[2], f.event = s[3];
    if (!f.event.empty() && !kind_named(f.event))
        return tl::unexpected(fmt::format("unknown event '{}'; use a name of custguard.dbus(7), GetHistory, "
                                          "such as access_denied or bulk_read",
                                          f.event));
    if (f.limit > k_max_rows)
        return tl::unexpected(fmt::format("limit {} is above {} rows; narrow the window instead", f.limit, k_max_rows));
    if (f.limit == 0) f.limit = k_default_rows;
    if (f.until_usec == 0) f.until_usec = static_cast<std::uint64_t>(common::clock_ns(CLOCK_REALTIME) / 1000);
    if (f.since_usec == 0) f.since_usec = f.until_usec > k_max_window_usec ? f.until_usec - k_max_window_usec : 0;
    if (f.since_usec > f.until_usec) return tl::unexpected(std::string("since is after until"));
    if (f.until_usec - f.since_usec > k_max_window_usec)
        return tl::unexpected(fmt::format("the window is longer than {} days; ask for a shorter one",
                                          k_max_window_usec / (24ull * 3600 * 1'000'000)));
    return f;
}

tl::expected<Result, std::string> query(const std::string& name_space, const Filter& f) {
    sd_journal* raw = nullptr;
    int r = name_space.empty() ? sd_journal_open(&raw, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM)
                               : sd_journal_open_namespace(&raw, name_space.c_str(), SD_JOURNAL_LOCAL_ONLY);
    if (r < 0) return tl::unexpected(fmt::format("cannot open the journal: {}", std::strerror(-r)));
    JournalPtr j(raw);
    auto match = [&](std::string_view name, std::string_view value) {
        if (r < 0 || value.empty()) return;
        std::string m = fmt::format("{}={}", name, value);
        r = sd_journal_add_match(j.get(), m.data(), m.size());
    };
    // Matches of one field are alternatives, of different fields all required.
    if (const auto* only = kind_named(f.event)) match("MESSAGE_ID", only->message_id);
    else
        for (const auto& k : events::all_kinds()) match("MESSAGE_ID", k.message_id);
    match("SYSLOG_IDENTIFIER", "custguardd");
    match("_UID", "0");
    match("CUSTGUARD_ZONE", f.zone);
    match("CUSTGUARD_USER", f.user);
    match("CUSTGUARD_CLIENT", f.client);
    if (r < 0) return tl::unexpected(fmt::format("cannot filter the journal: {}", std::strerror(-r)));
    if ((r = sd_journal_seek_realtime_usec(j.get(), f.until_usec)) < 0)
        return tl::unexpected(fmt::format("cannot seek in the journal: {}", std::strerror(-r)));
    Result out;
    while ((r = sd_journal_previous(j.get())) > 0) {
        std::uint64_t t = 0;
        if (sd_journal_get_realtime_usec(j.get(), &t) < 0 || t > f.until_usec) continue;
        if (t < f.since_usec) break;
        if (out.rows.size() == f.limit) {
            out.truncated = true;
            break;
        }
        const auto kind = events::kind_from_message_id(field(j.get(), "MESSAGE_ID"));
        if (!kind) continue;
        out.rows.push_back({t, std::string(events::to_string(*kind)), field(j.get(), "CUSTGUARD_ZONE"),
                            field(j.get(), "CUSTGUARD_USER"), field(j.get(), "CUSTGUARD_CLIENT"),
                            field(j.get(), "CUSTGUARD_PATH"), field(j.get(), "MESSAGE")});
    }
    if (r < 0) return tl::unexpected(fmt::format("cannot read the journal: {}", std::strerror(-r)));
    return out;
}

int append(sd_bus_message* m, const Result& result) {
    int r = sd_bus_message_open_container(m, 'a', row_signature);
    for (const auto& row : result.rows) {
        if (r < 0) break;
        r = sd_bus_message_append(m, row_signature, row.time_usec, row.event.c_str(), row.zone.c_str(),
                                  row.user.c_str(), row.client.c_str(), row.path.c_str(), row.message.c_str());
    }
    if (r >= 0) r = sd_bus_message_close_container(m);
    if (r >= 0) r = sd_bus_message_append(m, "b", static_cast<int>(result.truncated));
    return r;
}

}  // namespace custguard::dbus::history
