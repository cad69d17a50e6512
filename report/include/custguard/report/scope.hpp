// The leak-scope model behind `custguardctl report leak-scope` and `report access`: a pure
// function from custguardd's journal records (field maps with their journal timestamp,
// cursor and _HOSTNAME) and a filter to what a regulator's report needs: which files, read
// by whom from which client and when, the kinds of data and persons in them, where the
// data went next (prints, copies out of zones), the reporting triggers, the deadlines and
// the evidence. No I/O, no clock: the caller reads the journal and names the time zone,
// so the same records give the same model.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace custguard::report {

// One journal record of custguardd.
struct Record {
    std::uint64_t realtime_usec = 0;  // the journal's timestamp (when journald received it)
    std::string cursor;               // sd_journal_get_cursor
    std::string hostname;             // _HOSTNAME: the server the record came from
    std::map<std::string, std::string> fields;  // CUSTGUARD_* (others are ignored)
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
    std::string categories_basis;  // "recorded" (a scan recorded with the event) or "none"
    Persons persons;
    bool copy_out = false;  // found outside every zone (customer_data_found)
};

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
};

struct UserSummary {
    std::string user;
    std::uint64_t reads = 0, files = 0, denials = 0, prints = 0, copies = 0, off_hours = 0;
};

struct Scope {
    Filter filter;
    std::set<std::string> servers;
    std::uint64_t records = 0, duplicates = 0;
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
    std::vector<TimelineEntry> timeline;                 // by time
    std::vector<std::string> cursors;                    // every record used, in timeline order
    std::uint64_t first_usec = 0, last_usec = 0;         // of the records used
};

// True for the CUSTGUARD_* fields build_scope reads; a reader may keep only these (a
// report over millions of records holds them all in memory).
bool used_field(std::string_view key);

// Builds the model. Records may come in any order and from several servers; a record
// written twice (same server, CUSTGUARD_RUN and CUSTGUARD_SEQ) counts once.
Scope build_scope(std::vector<Record> records, const Filter& filter);

// The local date of a time, with the filter's offset.
Date local_date(std::uint64_t usec, const Filter& filter);
// "2026-10-01T09:00:00+09:00".
std::string local_time(std::uint64_t usec, const Filter& filter);

}  // namespace custguard::report
