#include "custguard/report/scope.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <tuple>

namespace custguard::report {

namespace {

using Fields = std::map<std::string, std::string>;

const std::string& get(const Fields& f, const char* key) {
    static const std::string empty;
    auto it = f.find(key);
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

// What the scan recorded with an event found: categories and persons. CUSTGUARD_PERSONS
// counts distinct customers only when an edm: detector ran; detector hits alone bound the
// persons from above (each person found is found through at least one hit).
Scan scan_of(const Fields& f) {
    Scan s;
    const auto& cats = get(f, "CUSTGUARD_CATEGORIES");
    const auto& detectors = get(f, "CUSTGUARD_DETECTORS");
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
    if (auto h = number(get(f, "CUSTGUARD_HITS")); h && !edm) {
        hits = *h;
        have_hits = true;
    }
    auto persons = number(get(f, "CUSTGUARD_PERSONS"));
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
    static const std::set<std::string_view> used = {
        "CUSTGUARD_EVENT",      "CUSTGUARD_DECISION",   "CUSTGUARD_USER",       "CUSTGUARD_UID",
        "CUSTGUARD_AUID_USER",  "CUSTGUARD_CLIENT",     "CUSTGUARD_ZONE",       "CUSTGUARD_PATH",
        "CUSTGUARD_COPY_OF",    "CUSTGUARD_TIME_USEC",  "CUSTGUARD_RUN",        "CUSTGUARD_SEQ",
        "CUSTGUARD_ADMIN_ACTION", "CUSTGUARD_TARGET",   "CUSTGUARD_REPEATED",   "CUSTGUARD_SUPPRESSED",
        "CUSTGUARD_PRINTER",    "CUSTGUARD_JOB",        "CUSTGUARD_TITLE",      "CUSTGUARD_PAGES",
        "CUSTGUARD_DETECTORS",  "CUSTGUARD_HITS",       "CUSTGUARD_PERSONS",    "CUSTGUARD_CATEGORIES",
        "CUSTGUARD_ACTION",     "CUSTGUARD_FILES",      "CUSTGUARD_WINDOW_SEC"};
    return used.count(key) > 0;
}

Scope build_scope(std::vector<Record> records, const Filter& filter) {
    Scope s;
    s.filter = filter;

    // Journal order across servers is not event order: sort by event time, then server and
    // cursor, so any order of the same records gives the same model.
    std::vector<std::pair<std::uint64_t, Record*>> order;
    order.reserve(records.size());
    for (auto& r : records) order.emplace_back(event_time(r), &r);
    std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
        return std::tie(a.first, a.second->hostname, a.second->cursor) <
               std::tie(b.first, b.second->hostname, b.second->cursor);
    });

    // Who decided a held job: admin_change print.approve|reject, whoever the filter names
    // (the approver is rarely the user under investigation).
    std::map<PrintKey, std::string> decided_by;
    std::map<PrintKey, const Record*> decision_records;  // evidence only for jobs in the scope
    std::set<std::tuple<std::string, std::string, std::string>> seen;  // server, run, seq
    std::map<std::pair<std::string, std::string>, File> files;
    std::map<PrintKey, PrintJob> prints;
    std::map<std::pair<std::string, std::string>, Indicator> off_hours_by_user, denials_by_user;
    std::map<std::string, UserSummary> users;
    std::map<std::string, std::set<std::pair<std::string, std::string>>> user_files;
    std::vector<const Record*> used;

    for (auto& [t, rp] : order) {
        const Record& r = *rp;
        const auto& f = r.fields;
        const auto& event = get(f, "CUSTGUARD_EVENT");
        if (filter.since_usec && t < *filter.since_usec) continue;
        if (filter.until_usec && t >= *filter.until_usec) continue;
        const auto& run = get(f, "CUSTGUARD_RUN");
        const auto& seq = get(f, "CUSTGUARD_SEQ");
        if (!run.empty() && !seq.empty() && !seen.emplace(r.hostname, run, seq).second) {
            ++s.duplicates;
            continue;
        }
        const auto& action = get(f, "CUSTGUARD_ADMIN_ACTION");
        if (event == "admin_change" && (action == "print.approve" || action == "print.reject")) {
            auto target = get(f, "CUSTGUARD_TARGET");
            auto colon = target.rfind(':');
            if (colon != std::string::npos) {
                PrintKey key{r.hostname, target.substr(0, colon), target.substr(colon + 1)};
                decided_by[key] = user_of(f);
                decision_records[key] = &r;
            }
            continue;
        }
        if (!selected(r, t, filter)) continue;
        const auto& decision = get(f, "CUSTGUARD_DECISION");
        const std::string user = user_of(f);
        const auto& client = get(f, "CUSTGUARD_CLIENT");
        const auto& path = get(f, "CUSTGUARD_PATH");
        TimelineEntry te{t, r.hostname, event, decision, user, client, path};

        if (event == "access" || event == "zone_integrity") {
            bool denied = decision == "deny";
            if (event == "zone_integrity" && !denied) {
                te.event = "zone_integrity";
            } else if (event == "access") {
                te.event = denied ? "access_denied" : decision == "audit" ? "access_audited" : "access_allowed";
            }
            auto& file = files[{r.hostname, path}];
            file.path = path;
            file.server = r.hostname;
            if (file.zone.empty()) file.zone = get(f, "CUSTGUARD_ZONE");
            auto& us = users[user];
            us.user = user;
            if (denied) {
                ++s.denials;
                ++file.denials;
                ++us.denials;
                auto& ind = denials_by_user[{r.hostname, user}];
                if (ind.count == 0) ind = Indicator{"earlier_denials", r.hostname, user, "", t, 0};
                ++ind.count;
            } else if (event == "access") {
                ++s.reads;
                ++file.reads;
                ++us.reads;
                user_files[user].insert({r.hostname, path});
                ++s.reads_per_day[local_date(t, filter).iso()];
                auto it = std::find_if(file.readers.begin(), file.readers.end(),
                                       [&](const Reader& x) { return x.user == user && x.client == client; });
                if (it == file.readers.end()) file.readers.push_back(Reader{user, client, t, t, 0}), it = file.readers.end() - 1;
                it->last_usec = t;
                ++it->count;
                if (off_hours(t, filter)) {
                    ++us.off_hours;
                    auto& ind = off_hours_by_user[{r.hostname, user}];
                    if (ind.count == 0) ind = Indicator{"off_hours", r.hostname, user, "", t, 0};
                    ++ind.count;
                }
            }
        } else if (event == "repeated") {
            if (get(f, "CUSTGUARD_REPEATED") != "access_denied" && get(f, "CUSTGUARD_REPEATED") != "zone_integrity")
                continue;
            std::uint64_t n = number(get(f, "CUSTGUARD_SUPPRESSED")).value_or(0);
            s.denials += n;
            auto& us = users[user];
            us.user = user;
            us.denials += n;
            auto& ind = denials_by_user[{r.hostname, user}];
            if (ind.count == 0) ind = Indicator{"earlier_denials", r.hostname, user, "", t, 0};
            ind.count += n;
            te.what = get(f, "CUSTGUARD_ZONE") + " x" + std::to_string(n);
        } else if (event == "print") {
            PrintKey key{r.hostname, get(f, "CUSTGUARD_PRINTER"), get(f, "CUSTGUARD_JOB")};
            auto& p = prints[key];
            if (p.first_decision.empty()) {
                p.server = key.server;
                p.printer = key.printer;
                p.job = key.job;
                p.user = user;
                p.client = client;
                p.title = get(f, "CUSTGUARD_TITLE");
                p.first_usec = t;
                p.first_decision = decision;
                ++s.prints;
                auto& us = users[user];
                us.user = user;
                ++us.prints;
            }
            p.last_usec = t;
            p.final_decision = decision;
            p.pages = std::max<std::uint64_t>(p.pages, number(get(f, "CUSTGUARD_PAGES")).value_or(0));
            auto scan = scan_of(f);
            if (scan.recorded) {
                p.categories.insert(scan.categories.begin(), scan.categories.end());
                p.persons = scan.persons;
            } else if (p.persons.basis.empty()) {
                p.persons = scan.persons;
            }
            te.what = key.printer + ":" + key.job;
        } else if (event == "customer_data_found") {
            auto scan = scan_of(f);
            Copy c{r.hostname, path, get(f, "CUSTGUARD_COPY_OF"), user, client, get(f, "CUSTGUARD_ACTION"), t,
                   scan.categories, scan.persons};
            auto& file = files[{r.hostname, path}];
            file.path = path;
            file.server = r.hostname;
            file.copy_out = true;
            if (scan.recorded) {
                file.categories = scan.categories;
                file.categories_basis = "recorded";
                file.persons = scan.persons;
            }
            ++s.copies;
            auto& us = users[user];
            us.user = user;
            ++us.copies;
            s.indicators.push_back(Indicator{"copy_out_of_zone", r.hostname, user,
                                             c.copy_of.empty() ? "customer data outside every zone: " + path
                                                               : "exact copy of a file of zone " + c.copy_of + ": " + path,
                                             t, 1});
            s.copies_out.push_back(std::move(c));
        } else if (event == "bulk_read") {
            s.indicators.push_back(Indicator{"bulk_read", r.hostname, user,
                                             get(f, "CUSTGUARD_FILES") + " files within " + get(f, "CUSTGUARD_WINDOW_SEC") +
                                                 " s (action " + get(f, "CUSTGUARD_ACTION") + ")",
                                             t, number(get(f, "CUSTGUARD_FILES")).value_or(0)});
        } else {
            continue;  // policy reloads, lost records, admin changes: not part of a scope
        }
        s.servers.insert(r.hostname);
        s.timeline.push_back(std::move(te));
        used.push_back(&r);
    }

    // Files: read files have no scan in their records; say so.
    for (auto& [key, file] : files) {
        if (file.categories_basis.empty()) {
            file.categories_basis = "none";
            file.persons = Persons{0, std::nullopt, std::nullopt, "none"};
        }
        std::sort(file.readers.begin(), file.readers.end(),
                  [](const Reader& a, const Reader& b) { return std::tie(a.user, a.client) < std::tie(b.user, b.client); });
        s.categories.insert(file.categories.begin(), file.categories.end());
        s.files.push_back(std::move(file));
    }
    for (auto& [key, p] : prints) {
        if (auto it = decided_by.find(key); it != decided_by.end()) {
            p.decided_by = it->second;
            used.push_back(decision_records.at(key));
        }
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
    for (auto& [key, ind] : off_hours_by_user) {
        ind.detail = std::to_string(ind.count) + " reads outside " + two(static_cast<unsigned>(filter.day_start)) +
                     ":00-" + two(static_cast<unsigned>(filter.day_end)) + ":00 on weekdays or at weekends";
        s.indicators.push_back(ind);
    }
    for (auto& [key, ind] : denials_by_user) {
        ind.detail = std::to_string(ind.count) + " refused accesses";
        s.indicators.push_back(ind);
    }
    std::sort(s.indicators.begin(), s.indicators.end(), [](const Indicator& a, const Indicator& b) {
        return std::tie(a.time_usec, a.kind, a.server, a.user, a.detail) <
               std::tie(b.time_usec, b.kind, b.server, b.user, b.detail);
    });
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
                        " files or jobs have no scan recorded with their events (the upper bound is unknown); "
                        "the lower bound is the largest count recorded"
                    : "between the largest file or job and the sum over them (the same customer may be in several)";

    auto data_trigger = [&](const char* name, std::initializer_list<const char*> cats, const std::string& what) {
        bool yes = std::any_of(cats.begin(), cats.end(), [&](const char* c) { return s.categories.count(c) > 0; });
        std::size_t none = 0;
        for (const auto& f : s.files) none += f.categories_basis == "none";
        Trigger tr{name, yes ? "yes" : none ? "unknown" : "no", ""};
        tr.basis = yes   ? what + " recorded in the scope"
                   : none ? std::to_string(none) + " files without a scan recorded with their events; scan them"
                          : "no " + what + " recorded in any file or job of the scope";
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

    std::stable_sort(used.begin(), used.end(), [&](const Record* a, const Record* b) {
        return std::tie(a->hostname, a->cursor) < std::tie(b->hostname, b->cursor);
    });
    // Cursors in event order (timeline), then those of approvals; sorted above for ties.
    std::vector<std::pair<std::uint64_t, const Record*>> by_time;
    for (const auto* r : used) by_time.emplace_back(event_time(*r), r);
    std::stable_sort(by_time.begin(), by_time.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [t, r] : by_time) {
        s.cursors.push_back(r->cursor);
        if (s.first_usec == 0 || t < s.first_usec) s.first_usec = t;
        s.last_usec = std::max(s.last_usec, t);
    }
    s.records = used.size();
    return s;
}

}  // namespace custguard::report
