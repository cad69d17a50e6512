#include "report_command.hpp"

#include <time.h>

#include <cstring>
#include <fstream>
#include <ostream>

#include <CLI/CLI.hpp>

#include "ctl.hpp"
#include "journal.hpp"
#include "custguard/common/text_escape.hpp"
#include "custguard/report/render.hpp"

namespace custguard::cli {

namespace {

// A record replayed from custguardd's spool reaches the journal after the event it
// records; records received up to this long after --until are read so that such events
// in the window are not missed. Windows are selected by event time (CUSTGUARD_TIME_USEC).
constexpr std::uint64_t k_replay_slack_usec = 24ull * 3600 * 1'000'000;

const char* const k_time_forms =
    "write a date (2026-10-01), a date and time (\"2026-10-01 09:00\" or 2026-10-01T09:00:00, local time), today, "
    "yesterday, now or -2h";

std::int64_t local_offset(std::int64_t unix_seconds) {
    time_t t = static_cast<time_t>(unix_seconds);
    tm local{};
    localtime_r(&t, &local);
    return local.tm_gmtoff;
}

// The calendar month before the current one, in local time: the monthly access report's
// default window.
std::pair<std::uint64_t, std::uint64_t> last_month() {
    time_t now = ::time(nullptr);
    tm local{};
    localtime_r(&now, &local);
    tm start{}, end{};
    end.tm_year = local.tm_year;
    end.tm_mon = local.tm_mon;
    end.tm_mday = 1;
    end.tm_isdst = -1;
    start = end;
    start.tm_mon -= 1;
    return {static_cast<std::uint64_t>(mktime(&start)) * 1'000'000, static_cast<std::uint64_t>(mktime(&end)) * 1'000'000};
}

}  // namespace

CLI::App* add_report_commands(CLI::App& app, ReportOptions& o) {
    auto* report = app.add_subcommand("report", "Reports from the journal: the scope of a suspected leak, monthly access");
    report->require_subcommand(1);
    auto options = [&](CLI::App* sub) {
        sub->add_option("-S,--since", o.since, "From this time (event time): 2026-10-01, \"2026-10-01 09:00\", today, -2h");
        sub->add_option("-U,--until", o.until, "Before this time (same forms as --since)");
        sub->add_option("-u,--user", o.user, "Only this user (name, uid, or the login user behind sudo)");
        sub->add_option("--client", o.client, "Only accesses from this client machine (address as recorded)");
        sub->add_option("-z,--zone", o.zone, "Only this zone (and copies out of it)");
        sub->add_option("-p,--path", o.path, "Only this file, or files below this directory");
        sub->add_option("--namespace", o.name_space, "Read the journald namespace NS");
        sub->add_option("-D,--directory", o.directory, "Read the journal files in DIR (e.g. a collector's /var/log/journal/remote)");
        sub->add_option("--file", o.files, "Read this journal file (repeatable)");
        sub->add_option("-f,--format", o.format, "text, json, csv or html")->capture_default_str();
        sub->add_option("-o,--output", o.output, "Write the report to FILE instead of standard output");
    };
    auto* leak = report->add_subcommand(
        "leak-scope", "Which files, persons, kinds of data, users, clients and destinations a suspected leak involves");
    options(leak);
    leak->add_option("--discovered-at", o.discovered_at,
                     "When the leak was discovered (local time, same forms as --since): computes the deadlines");
    auto* access = report->add_subcommand(
        "access", "The monthly access report: who read which customer files how often, denials, prints, copies");
    options(access);
    return report;
}

int run_report(const CLI::App& report, const ReportOptions& o, std::ostream& out, std::ostream& err) {
    const auto* sub = report.get_subcommands().front();
    const bool leak = sub->get_name() == "leak-scope";
    const std::string verb = "custguardctl report " + sub->get_name();
    auto usage = [&](const std::string& message) {
        err << verb << ": " << common::escape_text(message) << '\n';
        return k_exit_usage;
    };
    auto format = report::parse_format(o.format);
    if (!format) return usage("--format '" + o.format + "': write text, json, csv or html");

    report::Filter filter;
    filter.user = o.user;
    filter.client = o.client;
    filter.zone = o.zone;
    filter.path = o.path;
    filter.utc_offset = local_offset;
    if (!filter.path.empty() && filter.path.front() != '/')
        return usage("--path '" + o.path + "': give an absolute path (a file or a directory)");
    while (filter.path.size() > 1 && filter.path.back() == '/') filter.path.pop_back();
    for (auto [name, text, slot] : {std::tuple{"--since", &o.since, &filter.since_usec},
                                    std::tuple{"--until", &o.until, &filter.until_usec},
                                    std::tuple{"--discovered-at", &o.discovered_at, &filter.discovered_at_usec}}) {
        if (text->empty()) continue;
        auto t = parse_time_usec(*text);
        if (!t) return usage(std::string(name) + " '" + *text + "': " + k_time_forms);
        *slot = *t;
    }
    if (filter.since_usec && filter.until_usec && *filter.until_usec <= *filter.since_usec)
        return usage("--until must be later than --since");
    if (!leak && !filter.since_usec && !filter.until_usec) {
        auto [start, end] = last_month();
        filter.since_usec = start;
        filter.until_usec = end;
    }

    auto j = open_journal(o.name_space, o.directory, o.files);
    if (!j) {
        err << verb << ": " << j.error() << " (reading the system journal needs root or the group systemd-journal or adm)\n";
        return k_exit_failed;
    }
    if (int r = add_matches(j->get(), JournalFilter{}); r < 0) {
        err << verb << ": journal match: " << std::strerror(-r) << '\n';
        return k_exit_failed;
    }
    int r = filter.since_usec ? sd_journal_seek_realtime_usec(j->get(), *filter.since_usec) : sd_journal_seek_head(j->get());
    if (r < 0) {
        err << verb << ": journal seek: " << std::strerror(-r) << '\n';
        return k_exit_failed;
    }
    std::vector<report::Record> records;
    while ((r = sd_journal_next(j->get())) > 0) {
        std::uint64_t usec = 0;
        sd_journal_get_realtime_usec(j->get(), &usec);
        if (filter.since_usec && usec < *filter.since_usec) continue;
        if (filter.until_usec && usec >= *filter.until_usec + k_replay_slack_usec) break;
        report::Record rec;
        rec.realtime_usec = usec;
        rec.cursor = entry_cursor(j->get());
        rec.hostname = entry_field(j->get(), "_HOSTNAME");
        // Only the fields the report reads (never MESSAGE): the records of the window stay in
        // memory until the report is built.
        for (auto& [key, value] : entry_fields(j->get()))
            if (report::used_field(key)) rec.fields.emplace(key, std::move(value));
        records.push_back(std::move(rec));
    }
    if (r < 0) {
        err << verb << ": reading the journal: " << std::strerror(-r) << '\n';
        return k_exit_failed;
    }

    auto scope = report::build_scope(std::move(records), filter);
    auto text = report::render(scope, leak ? report::Kind::leak_scope : report::Kind::access, *format, CUSTGUARD_VERSION);
    if (o.output.empty()) {
        out << text;
        return k_exit_ok;
    }
    std::ofstream file(o.output, std::ios::binary | std::ios::trunc);
    file << text;
    file.close();
    if (!file) {
        err << verb << ": cannot write " << common::escape_text(o.output) << ": " << std::strerror(errno) << '\n';
        return k_exit_failed;
    }
    return k_exit_ok;
}

}  // namespace custguard::cli
