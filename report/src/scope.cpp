#include "custguard/report/scope.hpp"

#include <algorithm>
#include <charconv>
#include <deque>
#include <cstdio>
#include <iterator>
#include <stdexcept>
#include <tuple>

#include <openssl/evp.h>

namespace custguard::report {

namespace {


const std::string& get(const Fields& f, const char* key) {
    static const std::string empty;
    auto it = f.find(std::string_view(key));
    return it == f.end() ? empty : it->second;
}

std::optional<std::uint64_t> number(const std::string& s) {
    std::uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size() || s.empty()) return std::nullopt;
    return v;
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= s.size()) {
        auto end = s.find(sep, start);
        if (end == std::string::npos) end = s.size();
        if (end > start) out.push_back(s.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

// When the event happened: the daemon's own time (a record replayed from the spool is
// received later), else when journald received it.
std::uint64_t event_time(const Record& r) {
    if (auto t = number(get(r.fields, "CUSTGUARD_TIME_USEC"))) return *t;
    return r.realtime_usec;
}

bool below(const std::string& path, const std::string& prefix) {
    if (prefix.empty()) return true;
    if (path == prefix) return true;
    return path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0 &&
           (prefix.back() == '/' || path[prefix.size()] == '/');
}

bool user_matches(const Fields& f, const std::string& user) {
    if (user.empty()) return true;
    for (const char* key : {"CUSTGUARD_USER", "CUSTGUARD_UID", "CUSTGUARD_AUID_USER"})
        if (get(f, key) == user) return true;
    return false;
}

bool selected(const Record& r, std::uint64_t t, const Filter& filter) {
    if (filter.since_usec && t < *filter.since_usec) return false;
    if (filter.until_usec && t >= *filter.until_usec) return false;
    const auto& f = r.fields;
    if (!user_matches(f, filter.user)) return false;
    if (!filter.client.empty() && get(f, "CUSTGUARD_CLIENT") != filter.client) return false;
    if (!filter.zone.empty() && get(f, "CUSTGUARD_ZONE") != filter.zone && get(f, "CUSTGUARD_COPY_OF") != filter.zone)
        return false;
    if (!filter.path.empty() && !below(get(f, "CUSTGUARD_PATH"), filter.path)) return false;
    return true;
}

// "bob", "uid 1001", or "bob (login alice)" when the login user is someone else.
std::string user_of(const Fields& f) {
    std::string user = get(f, "CUSTGUARD_USER");
    if (user.empty() && !get(f, "CUSTGUARD_UID").empty()) user = "uid " + get(f, "CUSTGUARD_UID");
    const auto& login = get(f, "CUSTGUARD_AUID_USER");
    if (!login.empty() && login != user) user += " (login " + login + ")";
    return user;
}

// Detector name -> category of CUSTGUARD_CATEGORIES (custguard.journal(7)).
const char* category_of(const std::string& detector) {
    if (detector == "credit_card") return "payment_card";
    if (detector == "my_number") return "my_number";
    if (detector == "email" || detector == "jp_phone" || detector == "jp_address") return "contact";
    if (detector == "sensitive") return "sensitive";
    if (detector == "bank_account") return "bank_account";
    return nullptr;
}

struct Scan {
    bool recorded = false;
    std::set<std::string> categories;
    Persons persons;
};

// What a scan found, from its fields: categories and persons. CUSTGUARD_PERSONS counts
// distinct customers only when an edm: detector ran; detector hits alone bound the
// persons from above (each person found is found through at least one hit).
Scan scan_of(const std::string& detectors, const std::string& cats, const std::string& hits_text,
             std::optional<std::uint64_t> persons) {
    Scan s;
    bool edm = false;
    std::uint64_t hits = 0;
    bool have_hits = false;
    for (const auto& d : split(detectors, ',')) {
        auto colon = d.rfind(':');
        std::string name = colon == std::string::npos ? d : d.substr(0, colon);
        std::uint64_t n = colon == std::string::npos ? 0 : number(d.substr(colon + 1)).value_or(0);
        if (name.rfind("edm:", 0) == 0) {
            edm = true;
            continue;
        }
        have_hits = true;
        hits += n;
        if (n > 0)
            if (const char* c = category_of(name)) s.categories.insert(c);
    }
    for (const auto& c : split(cats, ',')) s.categories.insert(c);
    if (auto h = number(hits_text); h && !edm) {
        hits = *h;
        have_hits = true;
    }
    if (edm && persons) {
        s.persons = Persons{*persons, *persons, *persons, "edm"};
    } else if (have_hits) {
        s.persons = Persons{hits > 0 ? 1u : 0u, hits, std::nullopt, "detector_hits"};
    } else {
        s.persons = Persons{0, std::nullopt, std::nullopt, "none"};
    }
    s.recorded = edm || have_hits || !cats.empty();
    return s;
}

// The scan recorded with an event.
Scan scan_of(const Fields& f) {
    return scan_of(get(f, "CUSTGUARD_DETECTORS"), get(f, "CUSTGUARD_CATEGORIES"), get(f, "CUSTGUARD_HITS"),
                   number(get(f, "CUSTGUARD_PERSONS")));
}

std::string two(unsigned v) {
    char b[8];
    std::snprintf(b, sizeof b, "%02u", v);
    return b;
}

Date add_days(const Date& d, std::int64_t n) { return civil_from_days(days_from_civil(d) + n); }

// 確報: the day falls on a Saturday, Sunday or the year-end closure (29 Dec - 3 Jan): the
// next day that is none of them.
Date next_working_day(Date d) {
    for (;;) {
        unsigned wd = weekday(days_from_civil(d));
        bool closure = (d.month == 12 && d.day >= 29) || (d.month == 1 && d.day <= 3);
        if (wd != 0 && wd != 6 && !closure) return d;
        d = add_days(d, 1);
    }
}

std::int64_t offset_at(const Filter& f, std::uint64_t usec) {
    return f.utc_offset ? f.utc_offset(static_cast<std::int64_t>(usec / 1'000'000)) : 0;
}

bool off_hours(std::uint64_t usec, const Filter& f) {
    std::int64_t local = static_cast<std::int64_t>(usec / 1'000'000) + offset_at(f, usec);
    std::int64_t days = local >= 0 ? local / 86400 : (local - 86399) / 86400;
    int hour = static_cast<int>((local - days * 86400) / 3600);
    unsigned wd = weekday(days);
    return wd == 0 || wd == 6 || hour < f.day_start || hour >= f.day_end;
}

struct PrintKey {
    std::string server, printer, job;
    auto operator<=>(const PrintKey&) const = default;
};

}  // namespace

std::string Date::iso() const {
    char b[16];
    std::snprintf(b, sizeof b, "%04d-%02u-%02u", year, month, day);
    return b;
}

// H. Hinnant's algorithms (public domain), days since 1970-01-01.
std::int64_t days_from_civil(const Date& d) {
    std::int64_t y = d.year - (d.month <= 2 ? 1 : 0);
    std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    auto yoe = static_cast<unsigned>(y - era * 400);
    unsigned doy = (153 * (d.month + (d.month > 2 ? -3 : 9)) + 2) / 5 + d.day - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

Date civil_from_days(std::int64_t z) {
    z += 719468;
    std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    auto doe = static_cast<unsigned>(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    return Date{static_cast<int>(y + (m <= 2 ? 1 : 0)), m, d};
}

unsigned weekday(std::int64_t days) { return static_cast<unsigned>(((days + 4) % 7 + 7) % 7); }  // 1970-01-01: Thursday

Deadlines compute_deadlines(const Date& discovered) {
    Deadlines d;
    d.discovered = discovered;
    d.preliminary = add_days(discovered, 2);
    d.preliminary_latest = add_days(discovered, 4);
    d.final = next_working_day(add_days(discovered, 29));
    d.final_if_deliberate = next_working_day(add_days(discovered, 59));
    d.rule =
        "The day of discovery is day 1; weekends and holidays count. 速報 (preliminary): promptly, about 3-5 days "
        "(PPC guidelines): day 3 is the target, day 5 the latest. 確報 (final): day 30, or day 60 when the leak may "
        "have been deliberate (不正の目的); when that day is a Saturday, Sunday or 29 Dec-3 Jan it moves to the next "
        "day that is none of them. National holidays (祝日) are not known to this tool: if a date is one, the "
        "deadline is the next working day.";
    return d;
}

Date local_date(std::uint64_t usec, const Filter& filter) {
    std::int64_t local = static_cast<std::int64_t>(usec / 1'000'000) + offset_at(filter, usec);
    return civil_from_days(local >= 0 ? local / 86400 : (local - 86399) / 86400);
}

std::string local_time(std::uint64_t usec, const Filter& filter) {
    std::int64_t off = offset_at(filter, usec);
    std::int64_t local = static_cast<std::int64_t>(usec / 1'000'000) + off;
    std::int64_t days = local >= 0 ? local / 86400 : (local - 86399) / 86400;
    auto secs = static_cast<unsigned>(local - days * 86400);
    std::int64_t a = off < 0 ? -off : off;
    return civil_from_days(days).iso() + "T" + two(secs / 3600) + ":" + two(secs / 60 % 60) + ":" + two(secs % 60) +
           (off < 0 ? "-" : "+") + two(static_cast<unsigned>(a / 3600)) + ":" + two(static_cast<unsigned>(a / 60 % 60));
}

bool used_field(std::string_view key) {
    // Called for every field of every record: other fields are turned away on the prefix,
    // and names are compared without it.
    constexpr std::string_view prefix = "CUSTGUARD_";
    static constexpr std::string_view used[] = {
        "ACTION", "ADMIN_ACTION", "AUID_USER", "CATEGORIES", "CLIENT",    "COPY_OF",    "DECISION",
        "DETECTORS", "EVENT",     "FILES",     "HITS",       "JOB",       "PAGES",      "PATH",
        "PERSONS",  "PRINTER",    "REPEATED",  "REPEATS",   "RUN",        "SEQ",       "SUPPRESSED", "TARGET",
        "TIME_USEC", "TITLE",     "UID",       "USER",       "WINDOW_SEC", "ZONE"};
    static_assert(std::is_sorted(std::begin(used), std::end(used)));
    return key.starts_with(prefix) &&
           std::binary_search(std::begin(used), std::end(used), key.substr(prefix.size()));
}

TodayScan today_scan(const std::string& detectors, std::optional<std::uint64_t> edm_persons, std::string note) {
    auto scan = scan_of(detectors, "", "", edm_persons);
    return TodayScan{true, std::move(scan.categories), scan.persons, std::move(note)};
}

namespace {

// Which of two records of the same thing comes first: event time, then server and cursor,
// so that "first" and "last" do not depend on the order the records are read in.
struct At {
    std::uint64_t time = 0;
    std::string server, cursor;
    auto operator<=>(const At&) const = default;
};

// Sequence numbers already seen, as disjoint closed ranges (start -> end): a run's records
// come nearly in sequence, so this stays a handful of ranges however many records pass.
class SeqRanges {
public:
    // False when `v` was seen already.
    bool insert(std::uint64_t v) {
        auto next = ranges_.upper_bound(v);
        if (next != ranges_.begin()) {
            auto prev = std::prev(next);
            if (prev->second >= v) return false;
            if (prev->second + 1 == v) {
                prev->second = v;
                if (next != ranges_.end() && next->first == v + 1) {
                    prev->second = next->second;
                    ranges_.erase(next);
                }
                return true;
            }
        }
        if (next != ranges_.end() && next->first == v + 1) {
            const auto end = next->second;
            ranges_.erase(next);
            ranges_.emplace(v, end);
            return true;
        }
        ranges_.emplace(v, v);
        return true;
    }
    std::size_t size() const { return ranges_.size(); }

private:
    std::map<std::uint64_t, std::uint64_t> ranges_;
};

struct DigestCloser {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

// The cursors of one journal file, hashed in sequence-number order (see EvidenceFile).
class EvidenceHash {
public:
    EvidenceHash() : ctx_(EVP_MD_CTX_new()) {
        if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1)
            throw std::runtime_error("SHA-256 is not available from libcrypto");
    }

    void add(std::uint64_t seq, std::string_view cursor, const ScopeBuilder::CursorSink& sink) {
        if (count_ == 0 || seq < first_.first) first_.first = seq, first_.second.assign(cursor);
        if (count_ == 0 || seq >= last_.first) last_.first = seq, last_.second.assign(cursor);
        ++count_;
        if (hashed_ && seq <= hashed_through_) {
            late_.emplace_back(seq, std::string(cursor));
            return;
        }
        hold(seq, cursor);
        if (held_ > ScopeBuilder::k_reorder_window) hash_first(sink);
    }

    std::size_t held() const { return held_ + late_.size(); }

    EvidenceFile finish(std::string file, std::set<std::string> servers, const ScopeBuilder::CursorSink& sink) {
        while (held_ > 0) hash_first(sink);
        std::sort(late_.begin(), late_.end());
        for (const auto& [seq, cursor] : late_) hash(cursor, sink);
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        EVP_DigestFinal_ex(ctx_.get(), md, &len);
        static const char* digits = "0123456789abcdef";
        std::string hex;
        for (unsigned i = 0; i < len; ++i) hex += digits[md[i] >> 4], hex += digits[md[i] & 15];
        return EvidenceFile{std::move(file), std::move(servers), first_.second, last_.second, count_, late_.size(), hex};
    }

private:
    struct Held {
        std::uint64_t seq = 0;
        std::string cursor;
    };
    Held& slot(std::size_t i) { return ring_[(head_ + i) % ring_.size()]; }

    // The held cursors are a ring sorted by sequence number, equal numbers in arrival
    // order. Records come almost always in order, so a new one goes at the end; its slot's
    // string is reused, so holding a cursor allocates nothing once the ring is full.
    void hold(std::uint64_t seq, std::string_view cursor) {
        if (held_ == ring_.size()) {
            std::vector<Held> bigger(std::max<std::size_t>(8, ring_.size() * 2));
            for (std::size_t i = 0; i < held_; ++i) bigger[i] = std::move(slot(i));
            ring_ = std::move(bigger);
            head_ = 0;
        }
        auto* last = &slot(held_);
        last->seq = seq;
        last->cursor.assign(cursor);
        for (std::size_t i = held_; i > 0 && slot(i - 1).seq > seq; --i) {
            auto& before = slot(i - 1);
            std::swap(before.seq, last->seq);
            before.cursor.swap(last->cursor);
            last = &before;
        }
        ++held_;
    }

    void hash_first(const ScopeBuilder::CursorSink& sink) {
        auto& first = slot(0);
        hashed_ = true;
        hashed_through_ = first.seq;
        hash(first.cursor, sink);
        head_ = (head_ + 1) % ring_.size();
        --held_;
    }
    void hash(const std::string& cursor, const ScopeBuilder::CursorSink& sink) {
        EVP_DigestUpdate(ctx_.get(), cursor.data(), cursor.size());
        EVP_DigestUpdate(ctx_.get(), "\n", 1);
        if (sink) sink(cursor);
    }

    std::unique_ptr<EVP_MD_CTX, DigestCloser> ctx_;
    std::vector<Held> ring_;
    std::size_t head_ = 0, held_ = 0;
    std::vector<std::pair<std::uint64_t, std::string>> late_;
    bool hashed_ = false;
    std::uint64_t hashed_through_ = 0;
    std::uint64_t count_ = 0;
    std::pair<std::uint64_t, std::string> first_, last_;
};

// "s=<seqnum id>;i=<seqnum, hex>;b=...": the journal file and the place in it.
std::pair<std::string_view, std::optional<std::uint64_t>> cursor_place(std::string_view cursor) {
    std::string_view file;
    std::optional<std::uint64_t> seq;
    std::size_t start = 0;
    while (start < cursor.size()) {
        auto end = cursor.find(';', start);
        if (end == std::string_view::npos) end = cursor.size();
        auto part = cursor.substr(start, end - start);
        if (part.starts_with("s=")) file = part.substr(2);
        if (part.starts_with("i=")) {
            std::uint64_t v = 0;
            auto [p, ec] = std::from_chars(part.data() + 2, part.data() + part.size(), v, 16);
            if (ec == std::errc{} && p == part.data() + part.size()) seq = v;
        }
        start = end + 1;
    }
    return {file, seq};
}

struct FileAgg {
    File file;
    At zone_at;  // the zone of the first record
    std::map<std::string, std::map<std::string, Reader, std::less<>>, std::less<>> readers;  // user -> client
    std::optional<At> scan_at;  // the latest record with a scan
};

// The files of one server by path. A report reads millions of records of thousands of
// files in no useful order, so each lookup is a walk through memory the cache does not
// hold: a table of (hash, file) probed in place touches one slot and the file's path,
// where a node-based hash map also walks its bucket's chain. Files are kept in a deque
// (stable addresses), in the order they were first seen; finish() sorts them.
class FilesByPath {
public:
    using Entry = std::pair<const std::string, FileAgg>;

    FileAgg& operator[](const std::string& path) {
        if ((all_.size() + 1) * 2 > slots_.size()) grow();
        const std::size_t h = std::hash<std::string_view>{}(path);
        for (std::size_t i = h & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
            auto& slot = slots_[i];
            if (!slot.entry) {
                slot = {h, &all_.emplace_back(std::piecewise_construct, std::forward_as_tuple(path), std::forward_as_tuple())};
                return slot.entry->second;
            }
            if (slot.hash == h && slot.entry->first == path) return slot.entry->second;
        }
    }
    auto begin() { return all_.begin(); }
    auto end() { return all_.end(); }
    auto begin() const { return all_.begin(); }
    auto end() const { return all_.end(); }

private:
    struct Slot {
        std::size_t hash = 0;
        Entry* entry = nullptr;
    };
    void grow() {
        std::vector<Slot> bigger(std::max<std::size_t>(64, slots_.size() * 2));  // a power of two
        for (const auto& slot : slots_) {
            if (!slot.entry) continue;
            std::size_t i = slot.hash & (bigger.size() - 1);
            while (bigger[i].entry) i = (i + 1) & (bigger.size() - 1);
            bigger[i] = slot;
        }
        slots_ = std::move(bigger);
    }

    std::deque<Entry> all_;
    std::vector<Slot> slots_;
};

struct PrintAgg {
    PrintJob job;
    At first, last;
    std::optional<At> scan_at;
};

struct Approval {
    std::string decided_by;
    At at;
};

struct Bucket {
    std::uint64_t count = 0, first_usec = 0;
};

struct Count {
    std::uint64_t count = 0, first_usec = 0;
    void add(std::uint64_t n, std::uint64_t t) {
        if (count == 0 && n == 0) return;
        first_usec = count == 0 ? t : std::min(first_usec, t);
        count += n;
    }
};

}  // namespace

struct ScopeBuilder::State {
    Filter filter;
    CursorSink sink;
    // Keyed by strings the records already hold, looked up without copying them (a
    // record's path, user and server are copied only when they are new).
    template <class V>
    using By = std::map<std::string, V, std::less<>>;
    By<By<SeqRanges>> seen;  // server -> run
    std::uint64_t duplicates = 0, reads = 0, denials = 0, copies = 0;
    std::set<std::string> servers;
    // server -> path; unordered: paths share long prefixes, which made a tree's comparisons
    // a tenth of the report's time.
    By<FilesByPath> files;
    std::map<PrintKey, PrintAgg> prints;
    std::map<PrintKey, Approval> approvals;  // the latest decision of a held job, any user
    // Approvals of jobs not (yet) in the scope: evidence once their job is.
    std::map<PrintKey, std::vector<std::pair<std::uint64_t, std::string>>> waiting;
    std::vector<std::pair<At, Copy>> copies_out;
    std::vector<Indicator> bulk_reads;
    std::map<std::pair<std::string, std::string>, Count> denials_by_user;
    std::map<std::string, UserSummary> users;
    By<By<std::map<std::uint64_t, Bucket>>> hours;  // server -> user -> local hour
    std::vector<TimelineEntry> timeline;
    By<std::pair<EvidenceHash, std::set<std::string>>> evidence;  // file -> hash, servers
    decltype(evidence)::iterator last_evidence = evidence.end();  // of the last record used
    const std::string* last_server = nullptr;                      // in last_evidence's servers
    std::uint64_t unplaced = 0;  // cursors without a sequence number: hashed in arrival order
    std::uint64_t first_usec = 0, last_usec = 0;
    bool any_used = false;
    // The UTC offset of the last quarter hour asked: time zones change on quarter hours.
    std::int64_t offset_slot = -1, offset = 0;

    std::int64_t offset_of(std::uint64_t usec) {
        auto slot = static_cast<std::int64_t>(usec / (900 * 1'000'000ull));
        if (slot != offset_slot) offset_slot = slot, offset = offset_at(filter, usec);
        return offset;
    }

    void use(std::uint64_t t, const std::string& server, const std::string& cursor) {
        auto [file, seq] = cursor_place(cursor);
        // Consecutive records mostly come from one journal file and server.
        if (last_evidence == evidence.end() || last_evidence->first != file) {
            last_evidence = evidence.find(file);
            if (last_evidence == evidence.end()) last_evidence = evidence.try_emplace(std::string(file)).first;
            last_server = nullptr;
        }
        auto& [hash, file_servers] = last_evidence->second;
        if (!last_server || *last_server != server) last_server = &*file_servers.insert(server).first;
        hash.add(seq ? *seq : unplaced++, cursor, sink);
        first_usec = any_used ? std::min(first_usec, t) : t;
        last_usec = any_used ? std::max(last_usec, t) : t;
        any_used = true;
    }

    UserSummary& user(const std::string& name) {
        auto [it, fresh] = users.try_emplace(name);
        if (fresh) it->second.user = name;
        return it->second;
    }

    FileAgg& file_of(const std::string& server, const std::string& path) {
        return files.try_emplace(server).first->second[path];
    }

    void add(const Record& r);
    Scope finish(const Rescan& rescan);
};

void ScopeBuilder::State::add(const Record& r) {
    const auto& f = r.fields;
    const std::uint64_t t = event_time(r);
    if (filter.since_usec && t < *filter.since_usec) return;
    if (filter.until_usec && t >= *filter.until_usec) return;
    const auto& run = get(f, "CUSTGUARD_RUN");
    const auto seq = number(get(f, "CUSTGUARD_SEQ"));
    const bool duplicate =
        !run.empty() && seq && !seen.try_emplace(r.hostname).first->second.try_emplace(run).first->second.insert(*seq);
    if (duplicate) ++duplicates;
    const auto& event = get(f, "CUSTGUARD_EVENT");

    // Who decided a held job: admin_change print.approve|reject, whoever the filter names
    // (the approver is rarely the user under investigation); evidence only for jobs in
    // the scope.
    const auto& action = get(f, "CUSTGUARD_ADMIN_ACTION");
    if (event == "admin_change" && (action == "print.approve" || action == "print.reject")) {
        const auto& target = get(f, "CUSTGUARD_TARGET");
        auto colon = target.rfind(':');
        if (colon == std::string::npos) return;
        PrintKey key{r.hostname, target.substr(0, colon), target.substr(colon + 1)};
        At at{t, r.hostname, r.cursor};
        auto& a = approvals[key];
        if (a.decided_by.empty() || a.at < at) a = Approval{user_of(f), at};
        if (prints.contains(key)) use(t, r.hostname, r.cursor);
        else waiting[key].emplace_back(t, r.cursor);
        return;
    }
    if (!selected(r, t, filter)) return;
    static const std::set<std::string, std::less<>> scoped = {"access", "zone_integrity", "repeated", "print",
                                                              "customer_data_found", "bulk_read"};
    if (!scoped.contains(event)) return;  // policy reloads, lost records, admin changes
    if (event == "repeated" && get(f, "CUSTGUARD_REPEATED") != "access_denied" &&
        get(f, "CUSTGUARD_REPEATED") != "zone_integrity")
        return;
    if (duplicate) {
        use(t, r.hostname, r.cursor);
        return;
    }

    const auto& decision = get(f, "CUSTGUARD_DECISION");
    const std::string user = user_of(f);
    const auto& client = get(f, "CUSTGUARD_CLIENT");
    const auto& path = get(f, "CUSTGUARD_PATH");
    auto at = [&] { return At{t, r.hostname, r.cursor}; };
    auto earlier = [&](const At& a) { return std::tie(t, r.hostname, r.cursor) < std::tie(a.time, a.server, a.cursor); };
    const char* timeline_event = nullptr;  // else the record's event
    std::optional<std::string> what;       // else the record's path
    bool in_timeline = true;
    servers.insert(r.hostname);

    if (event == "access" || event == "zone_integrity") {
        const bool denied = decision == "deny";
        if (event == "access") timeline_event = denied ? "access_denied" : decision == "audit" ? "access_audited" : "access_allowed";
        auto& agg = file_of(r.hostname, path);
        auto& file = agg.file;
        const auto& zone = get(f, "CUSTGUARD_ZONE");
        if (file.path.empty()) {
            file.path = path;
            file.server = r.hostname;
            agg.zone_at = at();
            file.zone = zone;
        } else if (!zone.empty() && (file.zone.empty() || earlier(agg.zone_at))) {
            agg.zone_at = at();
            file.zone = zone;
        }
        auto& us = this->user(user);
        if (denied) {
            ++denials;
            ++file.denials;
            ++us.denials;
            denials_by_user[{r.hostname, user}].add(1, t);
        } else if (event == "access") {
            // A record of the bpf-lsm enforcer may stand for more reads (custguard.journal(7)).
            const std::uint64_t n = 1 + number(get(f, "CUSTGUARD_REPEATS")).value_or(0);
            reads += n;
            file.reads += n;
            us.reads += n;
            auto& reader = agg.readers.try_emplace(user).first->second.try_emplace(client, Reader{user, client, t, t, 0}).first->second;
            reader.first_usec = std::min(reader.first_usec, t);
            reader.last_usec = std::max(reader.last_usec, t);
            reader.count += n;
            const std::int64_t off = offset_of(t);
            const std::int64_t local = static_cast<std::int64_t>(t / 1'000'000) + off;
            const std::int64_t hour = (local >= 0 ? local / 3600 : (local - 3599) / 3600) * 3600 - off;
            auto& b = hours.try_emplace(r.hostname).first->second.try_emplace(user).first->second[static_cast<std::uint64_t>(hour) * 1'000'000];
            b.first_usec = b.count == 0 ? t : std::min(b.first_usec, t);
            b.count += n;
            in_timeline = decision == "audit";
        }
    } else if (event == "repeated") {
        std::uint64_t n = number(get(f, "CUSTGUARD_SUPPRESSED")).value_or(0);
        denials += n;
        this->user(user).denials += n;
        denials_by_user[{r.hostname, user}].add(n, t);
        what = get(f, "CUSTGUARD_ZONE") + " x" + std::to_string(n);
    } else if (event == "print") {
        PrintKey key{r.hostname, get(f, "CUSTGUARD_PRINTER"), get(f, "CUSTGUARD_JOB")};
        auto [it, fresh] = prints.try_emplace(key);
        auto& agg = it->second;
        auto& p = agg.job;
        if (fresh || earlier(agg.first)) {
            agg.first = at();
            p.server = key.server;
            p.printer = key.printer;
            p.job = key.job;
            p.user = user;
            p.client = client;
            p.title = get(f, "CUSTGUARD_TITLE");
            p.first_usec = t;
            p.first_decision = decision;
        }
        if (fresh || !earlier(agg.last)) {
            agg.last = at();
            p.last_usec = t;
            p.final_decision = decision;
        }
        p.pages = std::max<std::uint64_t>(p.pages, number(get(f, "CUSTGUARD_PAGES")).value_or(0));
        auto scan = scan_of(f);
        if (scan.recorded) {
            p.categories.insert(scan.categories.begin(), scan.categories.end());
            if (!agg.scan_at || !earlier(*agg.scan_at)) {
                agg.scan_at = at();
                p.persons = scan.persons;
            }
        } else if (p.persons.basis.empty()) {
            p.persons = scan.persons;
        }
        if (fresh)
            if (auto w = waiting.find(key); w != waiting.end()) {
                for (const auto& [wt, cursor] : w->second) use(wt, r.hostname, cursor);
                waiting.erase(w);
            }
        what = key.printer + ":" + key.job;
    } else if (event == "customer_data_found") {
        auto scan = scan_of(f);
        copies_out.emplace_back(at(), Copy{r.hostname, path, get(f, "CUSTGUARD_COPY_OF"), user, client,
                                         get(f, "CUSTGUARD_ACTION"), t, scan.categories, scan.persons});
        auto& agg = file_of(r.hostname, path);
        auto& file = agg.file;
        if (file.path.empty()) agg.zone_at = at();
        file.path = path;
        file.server = r.hostname;
        file.copy_out = true;
        if (scan.recorded && (!agg.scan_at || !earlier(*agg.scan_at))) {
            agg.scan_at = at();
            file.categories = scan.categories;
            file.categories_basis = "recorded";
            file.persons = scan.persons;
        }
        ++copies;
        ++this->user(user).copies;
    } else {  // bulk_read
        bulk_reads.push_back(Indicator{"bulk_read", r.hostname, user,
                                       get(f, "CUSTGUARD_FILES") + " files within " + get(f, "CUSTGUARD_WINDOW_SEC") +
                                           " s (action " + get(f, "CUSTGUARD_ACTION") + ")",
                                       t, number(get(f, "CUSTGUARD_FILES")).value_or(0)});
    }
    if (in_timeline)
        timeline.push_back(TimelineEntry{t, r.hostname, timeline_event ? timeline_event : event, decision, user, client,
                                         what ? std::move(*what) : path});
    use(t, r.hostname, r.cursor);
}

Scope ScopeBuilder::State::finish(const Rescan& rescan) {
    Scope s;
    s.filter = filter;
    s.servers = std::move(servers);
    s.duplicates = duplicates;
    s.reads = reads;
    s.denials = denials;
    s.copies = copies;

    // Files: a file whose events recorded no scan is scanned as it is today, when the
    // caller can; otherwise the report says there is none, and why.
    std::vector<FileAgg*> sorted;  // by server, then path
    for (auto& [server, by_path] : files) {
        const auto from = static_cast<std::ptrdiff_t>(sorted.size());
        for (auto& [path, agg] : by_path) sorted.push_back(&agg);
        std::sort(sorted.begin() + from, sorted.end(),
                  [](const FileAgg* a, const FileAgg* b) { return a->file.path < b->file.path; });
    }
    for (auto* each : sorted) {
        auto& agg = *each;
        auto& file = agg.file;
        if (file.categories_basis.empty()) {
            TodayScan today;
            today.note = "no scan recorded with its events";
            if (rescan) today = rescan(file);
            if (today.available) {
                file.categories = std::move(today.categories);
                file.persons = today.persons;
                file.categories_basis = "today";
            } else {
                file.persons = Persons{0, std::nullopt, std::nullopt, "none"};
                file.categories_basis = "none";
            }
            file.categories_note = std::move(today.note);
        }
        for (auto& [name, by_client] : agg.readers)
            for (auto& [client, reader] : by_client) file.readers.push_back(std::move(reader));
        s.categories.insert(file.categories.begin(), file.categories.end());
        s.files.push_back(std::move(file));
    }
    files.clear();  // moved out
    for (auto& [key, agg] : prints) {
        auto& p = agg.job;
        if (auto it = approvals.find(key); it != approvals.end()) p.decided_by = it->second.decided_by;
        ++s.prints;
        ++user(p.user).prints;
        s.categories.insert(p.categories.begin(), p.categories.end());
        if (p.first_decision == "hold")
            s.indicators.push_back(Indicator{"held_print", p.server, p.user,
                                             "job " + p.job + " on " + p.printer + " held, then " + p.final_decision +
                                                 (p.decided_by.empty() ? "" : " by " + p.decided_by),
                                             p.first_usec, 1});
        s.print_jobs.push_back(std::move(p));
    }
    std::sort(s.print_jobs.begin(), s.print_jobs.end(), [](const PrintJob& a, const PrintJob& b) {
        return std::tie(a.first_usec, a.server, a.printer, a.job) < std::tie(b.first_usec, b.server, b.printer, b.job);
    });
    std::sort(copies_out.begin(), copies_out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [at, c] : copies_out) {
        s.indicators.push_back(Indicator{"copy_out_of_zone", c.server, c.user,
                                         c.copy_of.empty() ? "customer data outside every zone: " + c.path
                                                           : "exact copy of a file of zone " + c.copy_of + ": " + c.path,
                                         c.time_usec, 1});
        s.copies_out.push_back(std::move(c));
    }
    s.indicators.insert(s.indicators.end(), bulk_reads.begin(), bulk_reads.end());

    // Allowed reads per hour: the timeline's counts, reads per day, and off-hours reads
    // (a local hour is off hours as a whole).
    std::map<std::pair<std::string, std::string>, Count> off_hours_by_user;
    for (const auto& [server, by_user] : hours)
        for (const auto& [name, by_hour] : by_user)
            for (const auto& [hour, b] : by_hour) {
                s.hourly_reads.push_back(HourlyReads{hour, server, name, b.count});
                s.reads_per_day[local_date(hour, filter).iso()] += b.count;
                if (off_hours(hour, filter)) {
                    user(name).off_hours += b.count;
                    off_hours_by_user[{server, name}].add(b.count, b.first_usec);
                }
            }
    std::sort(s.hourly_reads.begin(), s.hourly_reads.end(), [](const HourlyReads& a, const HourlyReads& b) {
        return std::tie(a.hour_usec, a.server, a.user) < std::tie(b.hour_usec, b.server, b.user);
    });
    for (const auto& [key, c] : off_hours_by_user)
        s.indicators.push_back(Indicator{"off_hours", key.first, key.second,
                                         std::to_string(c.count) + " reads outside " +
                                             two(static_cast<unsigned>(filter.day_start)) + ":00-" +
                                             two(static_cast<unsigned>(filter.day_end)) +
                                             ":00 on weekdays or at weekends",
                                         c.first_usec, c.count});
    for (const auto& [key, c] : denials_by_user)
        s.indicators.push_back(Indicator{"earlier_denials", key.first, key.second,
                                         std::to_string(c.count) + " refused accesses", c.first_usec, c.count});
    std::sort(s.indicators.begin(), s.indicators.end(), [](const Indicator& a, const Indicator& b) {
        return std::tie(a.time_usec, a.kind, a.server, a.user, a.detail) <
               std::tie(b.time_usec, b.kind, b.server, b.user, b.detail);
    });
    // Files per user: the files they read (a user reading one file from two clients counts it once).
    std::map<std::string, std::set<std::size_t>> user_files;
    for (std::size_t i = 0; i < s.files.size(); ++i)
        for (const auto& r : s.files[i].readers) user_files[r.user].insert(i);
    for (auto& [name, u] : users) {
        u.files = user_files[name].size();
        s.users.push_back(u);
    }

    // Totals: the same customer may be in several files, so the distinct persons lie
    // between the largest file and the sum; exact only when one item holds them all.
    std::vector<const Persons*> items;
    for (const auto& f : s.files) items.push_back(&f.persons);
    for (const auto& p : s.print_jobs) items.push_back(&p.persons);
    Persons total{0, std::uint64_t{0}, std::nullopt, ""};
    std::size_t nonzero = 0, unknown = 0, exact_items = 0;
    for (const auto* p : items) {
        total.min = std::max(total.min, p->min);
        if (!p->max) ++unknown;
        else if (total.max) *total.max += *p->max;
        if (p->exact) ++exact_items;
        if (!p->max || *p->max > 0) ++nonzero;
    }
    if (unknown) total.max.reset();
    if (!items.empty() && exact_items == items.size() && nonzero <= 1) total.exact = total.max;
    total.basis = total.exact ? "edm" : unknown ? "none" : exact_items == items.size() ? "edm" : "detector_hits";
    s.persons = total;
    s.persons_basis =
        total.exact ? "exact: an EDM index counted the customers, and one file or job holds them all"
        : unknown   ? std::to_string(unknown) + " of " + std::to_string(items.size()) +
                        " files or jobs have no scan (recorded with their events or of today's file; the upper bound is "
                        "unknown); the lower bound is the largest count found"
                    : "between the largest file or job and the sum over them (the same customer may be in several)";

    std::size_t unscanned = 0;
    for (const auto& f : s.files) unscanned += f.categories_basis == "none";
    auto data_trigger = [&](const char* name, std::initializer_list<const char*> cats, const std::string& what) {
        bool yes = std::any_of(cats.begin(), cats.end(), [&](const char* c) { return s.categories.count(c) > 0; });
        Trigger tr{name, yes ? "yes" : unscanned ? "unknown" : "no", ""};
        tr.basis = yes         ? what + " found in the scope"
                   : unscanned ? std::to_string(unscanned) +
                                     " files without a scan (none recorded with their events, today's file not "
                                     "available); scan them"
                               : "no " + what + " found in any file or job of the scope";
        s.triggers.push_back(tr);
    };
    data_trigger("sensitive", {"sensitive"}, "要配慮個人情報 (sensitive)");
    data_trigger("financial_harm", {"payment_card", "bank_account"}, "payment cards or bank accounts");
    Trigger persons_trigger{"over_1000_persons", "", ""};
    if (total.min > 1000) persons_trigger.status = "yes", persons_trigger.basis = "at least " + std::to_string(total.min) + " persons";
    else if (!total.max) persons_trigger.status = "unknown", persons_trigger.basis = "upper bound unknown";
    else if (*total.max > 1000) persons_trigger.status = "possible", persons_trigger.basis = "between " + std::to_string(total.min) + " and " + std::to_string(*total.max) + " persons";
    else persons_trigger.status = "no", persons_trigger.basis = "at most " + std::to_string(*total.max) + " persons";
    s.triggers.push_back(persons_trigger);
    s.triggers.push_back(Trigger{"possibly_deliberate", "human_judgement",
                                 std::to_string(s.indicators.size()) + " indicators listed"});

    if (filter.discovered_at_usec) s.deadlines = compute_deadlines(local_date(*filter.discovered_at_usec, filter));

    std::sort(timeline.begin(), timeline.end());
    s.timeline = std::move(timeline);
    for (auto& [file, entry] : evidence) {
        auto& [hash, file_servers] = entry;
        s.evidence.push_back(hash.finish(file, std::move(file_servers), sink));
        s.records += s.evidence.back().count;
    }
    // By server first: file ids are random, and a collector's names mean nothing to a reader.
    std::sort(s.evidence.begin(), s.evidence.end(), [](const EvidenceFile& a, const EvidenceFile& b) {
        return std::tie(a.servers, a.file) < std::tie(b.servers, b.file);
    });
    s.first_usec = first_usec;
    s.last_usec = last_usec;
    return s;
}

ScopeBuilder::ScopeBuilder(Filter filter, CursorSink sink) : state_(std::make_unique<State>()) {
    state_->filter = std::move(filter);
    state_->sink = std::move(sink);
}
ScopeBuilder::ScopeBuilder(ScopeBuilder&&) noexcept = default;
ScopeBuilder& ScopeBuilder::operator=(ScopeBuilder&&) noexcept = default;
ScopeBuilder::~ScopeBuilder() = default;

void ScopeBuilder::add(const Record& record) { state_->add(record); }

std::size_t ScopeBuilder::retained() const {
    const auto& s = *state_;
    std::size_t n = s.prints.size() + s.approvals.size() + s.copies_out.size() + s.bulk_reads.size() +
                    s.denials_by_user.size() + s.users.size() + s.timeline.size();
    for (const auto& [server, by_path] : s.files)
        for (const auto& [path, agg] : by_path) {
            ++n;
            for (const auto& [name, by_client] : agg.readers) n += by_client.size();
        }
    for (const auto& [server, by_user] : s.hours)
        for (const auto& [name, by_hour] : by_user) n += by_hour.size();
    for (const auto& [key, w] : s.waiting) n += w.size();
    for (const auto& [server, by_run] : s.seen)
        for (const auto& [run, ranges] : by_run) n += ranges.size();
    for (const auto& [file, entry] : s.evidence) n += entry.first.held();
    return n;
}

Scope ScopeBuilder::finish(const Rescan& rescan) && { return state_->finish(rescan); }

Scope build_scope(const std::vector<Record>& records, const Filter& filter) {
    ScopeBuilder builder(filter);
    for (const auto& r : records) builder.add(r);
    return std::move(builder).finish();
}

}  // namespace custguard::report
