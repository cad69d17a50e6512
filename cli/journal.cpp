#include "journal.hpp"

#include <time.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "custguard/policy/load.hpp"

namespace custguard::cli {

std::optional<std::uint64_t> parse_time_usec(const std::string& text) {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    const auto now_us = static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1000;
    const auto now = static_cast<std::uint64_t>(ts.tv_sec);
    auto midnight = [&](int days_back) {
        time_t t = static_cast<time_t>(now);
        tm local{};
        localtime_r(&t, &local);
        local.tm_hour = local.tm_min = local.tm_sec = 0;
        local.tm_mday -= days_back;
        local.tm_isdst = -1;
        return static_cast<std::uint64_t>(mktime(&local));
    };
    if (text == "now") return now_us;
    if (text == "today") return midnight(0) * 1'000'000;
    if (text == "yesterday") return midnight(1) * 1'000'000;
    std::string rel = text;
    if (!rel.empty() && rel.front() == '-') rel.erase(0, 1);
    else if (rel.size() > 4 && rel.substr(rel.size() - 4) == " ago") rel.resize(rel.size() - 4);
    else rel.clear();
    if (!rel.empty()) {
        auto d = policy::parse_duration(rel);
        if (!d || *d > now) return std::nullopt;
        return now_us - *d * 1'000'000;
    }
    for (const char* fmt : {"%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"}) {
        tm local{};
        const char* end = strptime(text.c_str(), fmt, &local);
        if (end && *end == '\0') {
            local.tm_isdst = -1;
            time_t t = mktime(&local);
            if (t < 0) return std::nullopt;
            return static_cast<std::uint64_t>(t) * 1'000'000;
        }
    }
    return std::nullopt;
}

std::map<std::string, std::string> entry_fields(sd_journal* j) {
    std::map<std::string, std::string> out;
    for_each_field(j, [&](std::string_view key, std::string_view value) {
        if (key.starts_with("CUSTGUARD_") || key == "MESSAGE" || key == "MESSAGE_ID" || key == "PRIORITY")
            out.emplace(std::string(key), std::string(value));
    });
    return out;
}

void entry_cursor(sd_journal* j, std::string& out) {
    char* cursor = nullptr;
    if (sd_journal_get_cursor(j, &cursor) < 0 || !cursor) return out.clear();
    out.assign(cursor);
    std::free(cursor);
}

tl::expected<JournalPtr, std::string> open_journal(const std::string& name_space, const std::string& directory,
                                                   const std::vector<std::string>& files) {
    sd_journal* raw = nullptr;
    int r;
    std::vector<const char*> paths;
    for (const auto& f : files) paths.push_back(f.c_str());
    paths.push_back(nullptr);
    if (!files.empty()) r = sd_journal_open_files(&raw, paths.data(), 0);
    else if (!directory.empty()) r = sd_journal_open_directory(&raw, directory.c_str(), 0);
    else if (!name_space.empty()) r = sd_journal_open_namespace(&raw, name_space.c_str(), SD_JOURNAL_LOCAL_ONLY);
    else r = sd_journal_open(&raw, SD_JOURNAL_LOCAL_ONLY);
    if (r < 0) return tl::unexpected(std::string("cannot open the journal: ") + std::strerror(-r));
    JournalPtr j(raw);
    sd_journal_set_data_threshold(j.get(), 0);
    return j;
}

int add_matches(sd_journal* j, const JournalFilter& f) {
    std::string ident = "SYSLOG_IDENTIFIER=custguardd";
    int r = sd_journal_add_match(j, ident.data(), ident.size());
    auto add = [&](const std::string& field, const std::string& value) {
        if (value.empty() || r < 0) return;
        std::string m = field + "=" + value;
        r = sd_journal_add_match(j, m.data(), m.size());
    };
    if (!f.user.empty()) {
        bool numeric = std::all_of(f.user.begin(), f.user.end(), [](char c) { return c >= '0' && c <= '9'; });
        add(numeric ? "CUSTGUARD_UID" : "CUSTGUARD_USER", f.user);
    }
    add("CUSTGUARD_ZONE", f.zone);
    add("CUSTGUARD_EVENT", f.event);
    return r;
}

}  // namespace custguard::cli
