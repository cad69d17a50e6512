#include "report_command.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <ostream>

#include <CLI/CLI.hpp>

#include "ctl.hpp"
#include "journal.hpp"
#include "custguard/common/errno_text.hpp"
#include "custguard/common/nss.hpp"
#include "custguard/common/policy_files.hpp"
#include "custguard/common/text_escape.hpp"
#include "custguard/common/unique_fd.hpp"
#include "custguard/edm/attach.hpp"
#include "custguard/report/render.hpp"
#include "custguard/scan/sandbox.hpp"

namespace custguard::cli {

namespace {

// A record replayed from custguardd's spool reaches the journal after the event it
// records; records received up to this long after --until are read so that such events
// in the window are not missed. Windows are selected by event time (CUSTGUARD_TIME_USEC).
constexpr std::uint64_t k_replay_slack_usec = 24ull * 3600 * 1'000'000;

// sd-journal maps the journal files in 8 MiB windows and keeps up to 64 of them mapped
// until the journal is closed: their pages count in the report's RSS (hundreds of MB over
// a journal of millions of records). Closing and reopening the journal every this many
// records, and going on after the last record's cursor, unmaps them.
constexpr std::uint64_t k_reopen_every = 50'000, k_reopen_retry = 1'000;

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

// The journal opened again as `o` names it and placed on the entry of `cursor` (the last
// one read), so that its next entry is the one that followed; false, and `j` untouched,
// when it cannot be (the journal changed meanwhile: rotated and vacuumed, or unreadable).
bool reopen_at(JournalPtr& j, const ReportOptions& o, const std::string& cursor) {
    auto fresh = open_journal(o.name_space, o.directory, o.files);
    if (!fresh || add_matches(fresh->get(), JournalFilter{}) < 0 ||
        sd_journal_seek_cursor(fresh->get(), cursor.c_str()) < 0 || sd_journal_next(fresh->get()) <= 0 ||
        sd_journal_test_cursor(fresh->get(), cursor.c_str()) <= 0)
        return false;
    j = std::move(*fresh);
    return true;
}

// Scans of today's files for files whose records hold no scan: only files on this host,
// only in the sandboxed reader (documents are never parsed here, in a root process), with
// the detectors the watcher uses ([watch], else [print]) and the policy's EDM indexes.
class Rescanner {
public:
    static tl::expected<Rescanner, std::string> create(const std::string& policy_path, bool policy_given) {
        Rescanner r;
        std::vector<std::string> detectors, keywords;
        std::uint32_t proximity = 40;
        std::vector<policy::EdmIndex> edm_tables;
        if (policy_given || std::filesystem::exists(policy_path)) {
            auto loaded = common::load_policy(policy_path, std::nullopt, common::now_seconds());
            if (!loaded) {
                std::string message;
                for (const auto& d : loaded.error()) message += d.format() + "\n";
                return tl::unexpected(message + policy_path +
                                      ": policy refused; fix it, name another with --policy, or give --no-rescan");
            }
            const auto& p = loaded->policy;
            detectors = p.watch.detectors.empty() ? p.print.detectors : p.watch.detectors;
            keywords = p.print.keywords;
            proximity = p.print.keyword_proximity;
            edm_tables = p.edm;
            r.sandbox_.timeout = std::chrono::seconds(p.print.scan_timeout_seconds);
            r.sandbox_.memory = std::uint64_t{p.print.scan_memory_mb} << 20;
        }
        auto config = scan::ScannerConfig::from_names(detectors, keywords, proximity);
        if (!config) return tl::unexpected(config.error() + " — fix [watch]/[print] in the policy, or give --no-rescan");
        if (auto attached = edm::attach_edm_matchers(*config, edm_tables, "[watch]/[print]"); !attached)
            return tl::unexpected(attached.error() + "; or give --no-rescan");
        if (auto platform = scan::platform_supported(); !platform)
            return tl::unexpected(platform.error() + "; give --no-rescan, or run the report on another machine");
        r.config_ = std::move(*config);
        // As the daemon does: root reads documents as nobody, never as root.
        if (::geteuid() == 0) r.sandbox_.uid = r.sandbox_.gid = 65534;
        auto me = common::nss::user_by_uid(::geteuid());
        r.user_ = me && *me ? (*me)->name : "uid " + std::to_string(::geteuid());
        char host[256] = "";
        ::gethostname(host, sizeof host - 1);
        r.host_ = host;
        r.reader_ = std::make_unique<scan::SandboxedReader>();
        return r;
    }

    report::TodayScan operator()(const report::File& file) {
        report::TodayScan none;
        if (file.server != host_) {
            none.note = "the file is on " + file.server +
                        ", not on this host: run the report there, or scan the file with custguardctl scan";
            return none;
        }
        const std::string what_to_do =
            "run the report as a user the zone allows and who may read the journal (a member of the group "
            "systemd-journal or adm), or give --no-rescan";
        if (auto refused = refused_zones_.find(file.zone); !file.zone.empty() && refused != refused_zones_.end()) {
            none.note = "not scanned: custguardd refused " + user_ + " " + refused->second + " of zone " + file.zone +
                        " during this report, so no other file of the zone is tried (each refusal is recorded as a "
                        "denial); " + what_to_do;
            return none;
        }
        // Opened here, as the report's user: custguardd decides as for any other reader, and
        // records the access. A zone that does not allow this user refuses it (EPERM).
        common::UniqueFd fd(::open(file.path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
        struct stat st {};
        if (!fd) {
            const int e = errno;
            if (e == EPERM && !file.zone.empty()) {
                refused_zones_.emplace(file.zone, file.path);
                none.note = "not scanned: custguardd refused " + user_ + " today's file (zone " + file.zone +
                            " does not allow " + user_ + "; the refusal is recorded as a denial); " + what_to_do;
                return none;
            }
            none.note = e == ENOENT ? std::string("the file no longer exists on this host")
                                    : "cannot open today's file: " + common::errno_text(e);
            if (e == EPERM || e == EACCES)
                none.note += " (the file's permissions or custguardd's zone policy refuse " + user_ + "; " +
                             what_to_do + ")";
            return none;
        }
        if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
            none.note = "today's file is not a regular file";
            return none;
        }
        auto doc = reader_->scan(config_, fd.get(), {}, sandbox_);
        if (!doc || !doc->readable) {
            none.note = "today's file could not be scanned: " + (doc ? doc->reason : doc.error());
            return none;
        }
        std::string detectors;
        for (auto d : config_.detectors)
            detectors += (detectors.empty() ? "" : ",") + std::string(scan::to_string(d)) + ":" +
                         std::to_string(doc->findings.count(d));
        for (const auto& e : doc->findings.edm)
            detectors += (detectors.empty() ? "" : ",") + std::string(scan::edm_prefix) + e.name + ":" +
                         std::to_string(e.persons);
        std::optional<std::uint64_t> persons;
        if (!config_.edm.empty()) persons = doc->findings.persons;
        char mtime[32];
        tm local{};
        localtime_r(&st.st_mtim.tv_sec, &local);
        std::strftime(mtime, sizeof mtime, "%Y-%m-%dT%H:%M:%S%z", &local);
        return report::today_scan(detectors, persons,
                                  "scanned when this report was made (" + std::to_string(st.st_size) +
                                      " bytes, modified " + mtime + "); the file may have changed since the events");
    }

private:
    Rescanner() = default;
    scan::ScannerConfig config_;
    scan::SandboxOptions sandbox_;
    std::string host_;
    std::string user_;  // who the report runs as, for the notes
    // Zones custguardd refused this user a file of, and that file: one refusal per zone.
    std::map<std::string, std::string> refused_zones_;
    std::unique_ptr<scan::SandboxedReader> reader_;
};

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
        sub->add_option("--evidence", o.evidence,
                        "Write the journal cursor of every record used to FILE, one a line, in the order the evidence "
                        "hashes them");
        auto* no_rescan = sub->add_flag(
            "--no-rescan", o.no_rescan,
            "Do not scan today's files for files whose records hold no scan (categories: not available)");
        sub->add_option("--policy", o.policy, "Detectors, keywords and EDM indexes for scans of today's files")
            ->capture_default_str()
            ->excludes(no_rescan);
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
    // Rescans need the policy: a policy that does not load stops the report before the journal is read.
    std::optional<Rescanner> rescanner;
    if (!o.no_rescan) {
        auto created = Rescanner::create(o.policy, sub->get_option("--policy")->count() > 0);
        if (!created) {
            err << verb << ": " << created.error() << '\n';  // policy diagnostics, one a line
            return k_exit_usage;
        }
        rescanner = std::move(*created);
    }
    std::ofstream evidence;
    report::ScopeBuilder::CursorSink sink;
    if (!o.evidence.empty()) {
        evidence.open(o.evidence, std::ios::binary | std::ios::trunc);
        if (!evidence) {
            err << verb << ": cannot write " << common::escape_text(o.evidence) << ": " << std::strerror(errno) << '\n';
            return k_exit_failed;
        }
        sink = [&evidence](std::string_view cursor) { evidence << cursor << '\n'; };
    }
    // One record at a time: the model keeps aggregates, never the records.
    report::ScopeBuilder builder(filter, sink);
    report::Record rec;
    EntryReader<report::Fields> reader(report::used_field);
    std::uint64_t since_open = 0;
    while ((r = sd_journal_next(j->get())) > 0) {
        std::uint64_t usec = 0;
        sd_journal_get_realtime_usec(j->get(), &usec);
        if (filter.since_usec && usec < *filter.since_usec) continue;
        if (filter.until_usec && usec >= *filter.until_usec + k_replay_slack_usec) break;
        rec.realtime_usec = usec;
        reader.read(j->get(), rec.fields, rec.hostname, rec.cursor);  // never MESSAGE
        builder.add(rec);
        if (++since_open < k_reopen_every || rec.cursor.empty()) continue;
        // When the journal cannot be placed on this record again, the open one goes on
        // (its mapped pages stay) and the next try comes a few records later.
        since_open = reopen_at(*j, o, rec.cursor) ? 0 : k_reopen_every - k_reopen_retry;
    }
    report::ScopeBuilder::Rescan rescan;
    if (rescanner) rescan = std::ref(*rescanner);
    else rescan = [](const report::File&) { return report::TodayScan{false, {}, {}, "--no-rescan: today's files not scanned"}; };
    auto scope = std::move(builder).finish(rescan);
    if (evidence.is_open()) {
        evidence.close();
        if (!evidence) {
            err << verb << ": cannot write " << common::escape_text(o.evidence) << ": " << std::strerror(errno) << '\n';
            return k_exit_failed;
        }
    }
    const auto kind = leak ? report::Kind::leak_scope : report::Kind::access;
    if (o.output.empty()) {
        report::render(scope, kind, *format, CUSTGUARD_VERSION, out);
        return k_exit_ok;
    }
    std::ofstream file(o.output, std::ios::binary | std::ios::trunc);
    report::render(scope, kind, *format, CUSTGUARD_VERSION, file);
    file.close();
    if (!file) {
        err << verb << ": cannot write " << common::escape_text(o.output) << ": " << std::strerror(errno) << '\n';
        return k_exit_failed;
    }
    return k_exit_ok;
}

}  // namespace custguard::cli
