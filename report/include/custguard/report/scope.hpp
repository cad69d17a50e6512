// The leak-scope model behind `custguardctl report leak-scope` and `report access`: from
// custguardd's journal records (field maps with their journal timestamp, cursor and
// _HOSTNAME), fed one at a time, and a filter, to what a regulator's report needs: which
// files, read by whom from which client and when, the kinds of data and persons in them,
// where the data went next (prints, copies out of zones), the reporting triggers, the
// deadlines and the evidence. No I/O, no clock: the caller reads the journal and names the
// time zone, so the same records give the same model, in whatever order they come.
// Streaming: what the builder keeps grows with the files, users, hours and events other
// than allowed reads of the window, not with the records (10 million reads of 20,000
// files fit in a few tens of MB).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace custguard::report {

// Field names by length first: they share the prefix CUSTGUARD_, which a plain string
// order compares again and again (a record's fields are looked up some twenty times).
struct FieldOrder {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const {
        return a.size() != b.size() ? a.size() < b.size() : a < b;
    }
};
using Fields = std::map<std::string, std::string, FieldOrder>;

// One journal record of custguardd.
struct Record {
    std::uint64_t realtime_usec = 0;  // the journal's timestamp (when journald received it)
    std::string cursor;               // sd_journal_get_cursor
    std::string hostname;             // _HOSTNAME: the server the record came from
    Fields fields;                    // CUSTGUARD_* (others are ignored)
};

struct Filter {
    std::optional<std::uint64_t> since_usec, until_usec;  // [since, until)
    std::string user;    // CUSTGUARD_USER, CUSTGUARD_UID or CUSTGUARD_AUID_USER
    std::string client;  // CUSTGUARD_CLIENT
    std::string zone;    // CUSTGUARD_ZONE, or CUSTGUARD_COPY_OF for copies out of it
    std::string path;    // this file, or files below this directory
    std::optional<std::uint64_t> discovered_at_usec;
    // Seconds east of UTC at a given Unix time (local dates, off-hours); UTC when unset.
    std::function<std::int64_t(std::int64_t)> utc_offset;
    // Off-hours: weekdays before day_start or from day_end (local hours), and weekends.
    int day_start = 7, day_end = 20;
};

// A count of persons: exact when an EDM index decided, else bounds (max absent: unknown).
struct Persons {
    std::uint64_t min = 0;
    std::optional<std::uint64_t> max;
    std::optional<std::uint64_t> exact;
    std::string basis;  // "edm", "detector_hits", "none"
};

struct Reader {
    std::string user, client;
    std::uint64_t first_usec = 0, last_usec = 0, count = 0;
};

// A file read, printed or copied out: one per (server, path).
struct File {
    std::string path, server, zone;
    std::vector<Reader> readers;  // allowed or audited reads, by (user, client)
    std::uint64_t reads = 0, denials = 0;
    std::set<std::string> categories;
    // Where categories and persons come from: "recorded" (a scan recorded with an event of
    // the file), "today" (a scan of the file as it is today: no event recorded one) or
    // "none" (neither; categories_note says why, e.g. the file is on another server).
    std::string categories_basis;
    std::string categories_note;
    Persons persons;
    bool copy_out = false;  // found outside every zone (customer_data_found)
};

// A scan of a file as it is today, for a file no event of which recorded a scan. Not
// available (a file on another server, gone, unreadable, rescans off): note says why.
struct TodayScan {
    bool available = false;
    std::set<std::string> categories;
    Persons persons;
    std::string note;  // available: what was scanned; else why there is no scan
};

// A scan's findings in the journal's terms: CUSTGUARD_DETECTORS ("credit_card:3,email:0,
// edm:crm:12") and, when an edm: detector ran, the distinct persons it found.
TodayScan today_scan(const std::string& detectors, std::optional<std::uint64_t> edm_persons, std::string note);

struct PrintJob {
    std::string server, printer, job, user, client, title;
    std::uint64_t first_usec = 0, last_usec = 0, pages = 0;
    std::string first_decision, final_decision;  // e.g. hold -> allow
    std::string decided_by;                      // who approved or rejected a held job
    std::set<std::string> categories;
    Persons persons;
};

struct Copy {
    std::string server, path, copy_of, user, client, action;
    std::uint64_t time_usec = 0;
    std::set<std::string> categories;
    Persons persons;
};

// One "possibly deliberate" indicator: listed, never judged.
struct Indicator {
    std::string kind;  // bulk_read, off_hours, earlier_denials, copy_out_of_zone, held_print_released
    std::string server, user, detail;
    std::uint64_t time_usec = 0, count = 0;
};

struct Trigger {
    std::string name;    // sensitive, financial_harm, over_1000_persons, possibly_deliberate
    std::string status;  // yes, possible, no, unknown, human_judgement
    std::string basis;
};

struct Date {
    int year = 1970;
    unsigned month = 1, day = 1;
    std::string iso() const;  // YYYY-MM-DD
    friend bool operator==(const Date&, const Date&) = default;
};

// Days since 1970-01-01 and back (proleptic Gregorian).
std::int64_t days_from_civil(const Date& d);
Date civil_from_days(std::int64_t days);
// 0 = Sunday .. 6 = Saturday.
unsigned weekday(std::int64_t days);

struct Deadlines {
    Date discovered;
    Date preliminary, preliminary_latest;  // 速報: day 3 and day 5 (the day of discovery is day 1)
    Date final, final_if_deliberate;       // 確報: day 30, or day 60 when possibly deliberate
    std::string rule;
};

// Computes the deadlines for a leak discovered on `discovered` (a local date).
Deadlines compute_deadlines(const Date& discovered);

struct TimelineEntry {
    std::uint64_t time_usec = 0;
    std::string server, event, decision, user, client, what;
    auto operator<=>(const TimelineEntry&) const = default;
};

// Allowed reads are not in the timeline: they are counted per local hour, server and user.
struct HourlyReads {
    std::uint64_t hour_usec = 0;  // the start of the local hour
    std::string server, user;
    std::uint64_t count = 0;
};

struct UserSummary {
    std::string user;
    std::uint64_t reads = 0, files = 0, denials = 0, prints = 0, copies = 0, off_hours = 0;
};

// The evidence of one journal file (its sequence number id, the "s=" of its cursors): the
// cursors of the records the report used, hashed in the file's order (sequence numbers),
// each followed by a newline: `grep '^s=FILE;' EVIDENCE | sha256sum` over what
// ScopeBuilder's cursor sink wrote gives `sha256`.
struct EvidenceFile {
    std::string file;  // seqnum id
    std::set<std::string> servers;
    std::string first, last;  // cursors with the lowest and the highest sequence number
    std::uint64_t count = 0;
    std::uint64_t late = 0;  // hashed after the others: used only once a later record was read
    std::string sha256;      // hex
};

struct Scope {
    Filter filter;
    std::set<std::string> servers;
    std::uint64_t records = 0, duplicates = 0;  // records: cursors in the evidence (duplicates too)
    std::uint64_t reads = 0, denials = 0, prints = 0, copies = 0;
    std::vector<File> files;          // by (server, path)
    std::vector<PrintJob> print_jobs; // by first time
    std::vector<Copy> copies_out;     // by time
    std::vector<Indicator> indicators;
    std::vector<Trigger> triggers;
    std::set<std::string> categories;
    Persons persons;
    std::string persons_basis;
    std::optional<Deadlines> deadlines;
    std::map<std::string, std::uint64_t> reads_per_day;  // local date -> reads
    std::vector<UserSummary> users;                      // by user
    std::vector<TimelineEntry> timeline;                 // every event but allowed reads, by time
    std::vector<HourlyReads> hourly_reads;               // by hour, server, user
    std::vector<EvidenceFile> evidence;                  // by servers, then file
    std::uint64_t first_usec = 0, last_usec = 0;         // of the records used
};

// True for the CUSTGUARD_* fields the model reads; a reader passes only these.
bool used_field(std::string_view key);

// Builds the model one record at a time. Records may come in any order and from several
// servers and journal files, with one bound: the evidence hashes the cursors of each
// journal file in that file's order, holding back the last k_reorder_window of them, so a
// record that comes further out of its file's order than that is hashed at the end of its
// file's list (counted in EvidenceFile::late). Journal readers yield each file in order.
// A record written twice (same server, CUSTGUARD_RUN and CUSTGUARD_SEQ) counts once; both
// cursors are evidence.
class ScopeBuilder {
public:
    static constexpr std::size_t k_reorder_window = 256;
    // Called with every cursor of the evidence in the order it is hashed (see EvidenceFile).
    using CursorSink = std::function<void(std::string_view cursor)>;
    // For files with no scan recorded: a scan of today's file, or why there is none.
    using Rescan = std::function<TodayScan(const File&)>;

    explicit ScopeBuilder(Filter filter, CursorSink sink = {});
    ScopeBuilder(ScopeBuilder&&) noexcept;
    ScopeBuilder& operator=(ScopeBuilder&&) noexcept;
    ~ScopeBuilder();

    void add(const Record& record);
    // Entries held (files, readers, print jobs, copies, timeline events, hourly counts,
    // duplicate ranges, cursors waiting to be hashed): the model's size, for tests.
    std::size_t retained() const;
    Scope finish(const Rescan& rescan = {}) &&;

private:
    struct State;
    std::unique_ptr<State> state_;
};

// All records at once (tests, small inputs).
Scope build_scope(const std::vector<Record>& records, const Filter& filter);

// The local date of a time, with the filter's offset.
Date local_date(std::uint64_t usec, const Filter& filter);
// "2026-10-01T09:00:00+09:00".
std::string local_time(std::uint64_t usec, const Filter& filter);

}  // namespace custguard::report
