// The leak-scope model on synthetic records (unit): window edges, the time basis,
// persons exact vs bounds, totals, triggers, indicators, deadlines across month and year
// ends, duplicates, filters, and that any order of the same records renders identically.
#include <catch2/catch.hpp>

#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <sstream>

#include "custguard/report/render.hpp"
#include "custguard/report/scope.hpp"

using namespace custguard::report;

namespace {

constexpr std::uint64_t k_s = 1'000'000;
// 2026-10-05 (a Monday) 00:00 UTC = 09:00 JST.
constexpr std::uint64_t k_mon = 1791158400ull * k_s;
constexpr std::uint64_t k_hour = 3600 * k_s;

Filter jst() {
    Filter f;
    f.utc_offset = [](std::int64_t) { return std::int64_t{9 * 3600}; };
    return f;
}

int g_seq = 0;

Record rec(std::uint64_t t, std::map<std::string, std::string> fields, std::string host = "fs1") {
    Record r;
    r.realtime_usec = t;
    r.hostname = std::move(host);
    r.cursor = "s=test;i=" + std::to_string(++g_seq);
    fields.emplace("CUSTGUARD_RUN", "run1");
    fields.emplace("CUSTGUARD_SEQ", std::to_string(g_seq));
    r.fields.insert(fields.begin(), fields.end());
    return r;
}

Record read(std::uint64_t t, const std::string& user, const std::string& path, const std::string& client = "192.0.2.7",
            const std::string& decision = "allow") {
    return rec(t, {{"CUSTGUARD_EVENT", "access"}, {"CUSTGUARD_DECISION", decision}, {"CUSTGUARD_USER", user},
                   {"CUSTGUARD_ZONE", "customers"}, {"CUSTGUARD_PATH", path}, {"CUSTGUARD_CLIENT", client}});
}

Record found(std::uint64_t t, const std::string& path, std::map<std::string, std::string> scan) {
    std::map<std::string, std::string> f = {{"CUSTGUARD_EVENT", "customer_data_found"}, {"CUSTGUARD_USER", "bob"},
                                            {"CUSTGUARD_PATH", path}, {"CUSTGUARD_ACTION", "recorded"}};
    f.insert(scan.begin(), scan.end());
    return rec(t, f);
}

// The cursors of the evidence, in the order they are hashed.
std::vector<std::string> evidence_of(const std::vector<Record>& records, const Filter& f) {
    std::vector<std::string> cursors;
    ScopeBuilder b(f, [&](std::string_view c) { cursors.emplace_back(c); });
    for (const auto& r : records) b.add(r);
    std::move(b).finish();
    return cursors;
}

const File* file(const Scope& s, const std::string& path) {
    for (const auto& f : s.files)
        if (f.path == path) return &f;
    return nullptr;
}

const Trigger& trigger(const Scope& s, const std::string& name) {
    for (const auto& t : s.triggers)
        if (t.name == name) return t;
    FAIL("no trigger " << name);
    static Trigger none;
    return none;
}

}  // namespace

TEST_CASE("report: the window includes --since and excludes --until, in event time", "[report][unit]") {
    auto f = jst();
    f.since_usec = k_mon;
    f.until_usec = k_mon + 10 * k_hour;
    std::vector<Record> rs = {
        read(k_mon - 1, "a", "/z/before"),
        read(k_mon, "a", "/z/at_since"),
        read(k_mon + 10 * k_hour - 1, "a", "/z/last_microsecond"),
        read(k_mon + 10 * k_hour, "a", "/z/at_until"),
    };
    // Replayed from the spool: received after until, happened inside.
    auto replayed = read(k_mon + 11 * k_hour, "a", "/z/replayed");
    replayed.fields["CUSTGUARD_TIME_USEC"] = std::to_string(k_mon + 5 * k_hour);
    rs.push_back(replayed);
    // Received inside, happened before since.
    auto early = read(k_mon + k_hour, "a", "/z/early_event");
    early.fields["CUSTGUARD_TIME_USEC"] = std::to_string(k_mon - k_hour);
    rs.push_back(early);

    auto s = build_scope(rs, f);
    CHECK(s.reads == 3);
    CHECK(file(s, "/z/at_since"));
    CHECK(file(s, "/z/last_microsecond"));
    CHECK(file(s, "/z/replayed"));
    CHECK_FALSE(file(s, "/z/before"));
    CHECK_FALSE(file(s, "/z/at_until"));
    CHECK_FALSE(file(s, "/z/early_event"));
    CHECK(local_time(k_mon, f) == "2026-10-05T09:00:00+09:00");
    CHECK(s.records == 3);
}

TEST_CASE("report: persons are exact only from an EDM detector, else bounds with their basis", "[report][unit]") {
    struct Case {
        const char* label;
        std::map<std::string, std::string> scan;
        std::uint64_t min;
        std::optional<std::uint64_t> max, exact;
        const char* basis;
    };
    const std::vector<Case> cases = {
        {"edm decided", {{"CUSTGUARD_DETECTORS", "edm:crm:12,credit_card:3"}, {"CUSTGUARD_PERSONS", "12"}}, 12, 12, 12, "edm"},
        {"edm found none", {{"CUSTGUARD_DETECTORS", "edm:crm:0"}, {"CUSTGUARD_PERSONS", "0"}}, 0, 0, 0, "edm"},
        {"hits only", {{"CUSTGUARD_DETECTORS", "credit_card:3,email:2"}, {"CUSTGUARD_HITS", "5"}}, 1, 5, std::nullopt,
         "detector_hits"},
        {"PERSONS without an edm detector is not exact",
         {{"CUSTGUARD_DETECTORS", "email:4"}, {"CUSTGUARD_PERSONS", "7"}, {"CUSTGUARD_HITS", "4"}}, 1, 4, std::nullopt,
         "detector_hits"},
        {"exact copy without a scan", {{"CUSTGUARD_COPY_OF", "customers"}}, 0, std::nullopt, std::nullopt, "none"},
    };
    for (const auto& c : cases) {
        DYNAMIC_SECTION(c.label) {
            auto s = build_scope({found(k_mon, "/public/x.csv", c.scan)}, jst());
            REQUIRE(s.files.size() == 1);
            const auto& p = s.files[0].persons;
            CHECK(p.min == c.min);
            CHECK(p.max == c.max);
            CHECK(p.exact == c.exact);
            CHECK(p.basis == c.basis);
        }
    }
    SECTION("a read zone file has no scan in its records: unknown upper bound") {
        auto s = build_scope({read(k_mon, "a", "/z/f.csv")}, jst());
        CHECK(s.files[0].persons.basis == "none");
        CHECK_FALSE(s.files[0].persons.max);
        CHECK(s.files[0].categories_basis == "none");
        CHECK_FALSE(s.persons.max);
    }
}

TEST_CASE("report: total persons lie between the largest file and the sum, exact only for one holder", "[report][unit]") {
    auto edm = [](const char* n) {
        return std::map<std::string, std::string>{{"CUSTGUARD_DETECTORS", std::string("edm:crm:") + n},
                                                  {"CUSTGUARD_PERSONS", n}};
    };
    auto two = build_scope({found(k_mon, "/p/a", edm("12")), found(k_mon + 1, "/p/b", edm("30"))}, jst());
    CHECK(two.persons.min == 30);
    CHECK(two.persons.max == 42u);
    CHECK_FALSE(two.persons.exact);
    auto one = build_scope({found(k_mon, "/p/a", edm("12")), found(k_mon + 1, "/p/b", edm("0"))}, jst());
    CHECK(one.persons.exact == 12u);
}

TEST_CASE("report: triggers from categories and persons", "[report][unit]") {
    struct Case {
        const char* label;
        std::vector<Record> records;
        const char* sensitive;
        const char* financial;
        const char* persons;
    };
    std::vector<Case> cases;
    cases.push_back({"sensitive copy", {found(k_mon, "/p/a", {{"CUSTGUARD_CATEGORIES", "sensitive,contact"}, {"CUSTGUARD_DETECTORS", "email:1"}})},
                     "yes", "no", "no"});
    cases.push_back({"card numbers", {found(k_mon, "/p/a", {{"CUSTGUARD_DETECTORS", "credit_card:2"}})}, "no", "yes", "no"});
    cases.push_back({"1500 persons, exact",
                     {found(k_mon, "/p/a", {{"CUSTGUARD_DETECTORS", "edm:crm:1500"}, {"CUSTGUARD_PERSONS", "1500"}})},
                     "no", "no", "yes"});
    cases.push_back({"up to 2000 hits", {found(k_mon, "/p/a", {{"CUSTGUARD_DETECTORS", "email:2000"}})}, "no", "no", "possible"});
    cases.push_back({"reads without scans", {read(k_mon, "a", "/z/f")}, "unknown", "unknown", "unknown"});
    for (const auto& c : cases) {
        DYNAMIC_SECTION(c.label) {
            auto s = build_scope(c.records, jst());
            CHECK(trigger(s, "sensitive").status == c.sensitive);
            CHECK(trigger(s, "financial_harm").status == c.financial);
            CHECK(trigger(s, "over_1000_persons").status == c.persons);
            CHECK(trigger(s, "possibly_deliberate").status == "human_judgement");
        }
    }
}

TEST_CASE("report: indicators of a possibly deliberate leak are listed", "[report][unit]") {
    std::vector<Record> rs = {
        read(k_mon + 1 * k_hour, "bob", "/z/day"),                        // 10:00 JST Monday: office hours
        read(k_mon + 13 * k_hour + 30 * 60 * k_s, "bob", "/z/night"),     // 22:30 JST Monday
        read(k_mon + 5 * 24 * k_hour + k_hour, "carol", "/z/saturday"),   // 10:00 JST Saturday
        read(k_mon + 2 * k_hour, "bob", "/z/secret", "192.0.2.7", "deny"),
        rec(k_mon + 3 * k_hour, {{"CUSTGUARD_EVENT", "repeated"}, {"CUSTGUARD_REPEATED", "access_denied"},
                                 {"CUSTGUARD_USER", "bob"}, {"CUSTGUARD_ZONE", "customers"}, {"CUSTGUARD_COUNT", "30"},
                                 {"CUSTGUARD_SUPPRESSED", "20"}}),
        rec(k_mon + 4 * k_hour, {{"CUSTGUARD_EVENT", "bulk_read"}, {"CUSTGUARD_USER", "bob"}, {"CUSTGUARD_FILES", "250"},
                                 {"CUSTGUARD_WINDOW_SEC", "60"}, {"CUSTGUARD_ACTION", "notify"}}),
        found(k_mon + 5 * k_hour, "/home/bob/copy.csv", {{"CUSTGUARD_COPY_OF", "customers"}}),
        rec(k_mon + 6 * k_hour, {{"CUSTGUARD_EVENT", "print"}, {"CUSTGUARD_DECISION", "hold"}, {"CUSTGUARD_USER", "bob"},
                                 {"CUSTGUARD_PRINTER", "office"}, {"CUSTGUARD_JOB", "42"},
                                 {"CUSTGUARD_DETECTORS", "credit_card:3"}, {"CUSTGUARD_HITS", "3"}}),
        // The approver is another user: found although the filter names bob.
        rec(k_mon + 7 * k_hour, {{"CUSTGUARD_EVENT", "admin_change"}, {"CUSTGUARD_ADMIN_ACTION", "print.approve"},
                                 {"CUSTGUARD_USER", "alice"}, {"CUSTGUARD_TARGET", "office:42"}}),
        rec(k_mon + 7 * k_hour + 1, {{"CUSTGUARD_EVENT", "print"}, {"CUSTGUARD_DECISION", "allow"},
                                     {"CUSTGUARD_USER", "bob"}, {"CUSTGUARD_PRINTER", "office"}, {"CUSTGUARD_JOB", "42"}}),
    };
    auto s = build_scope(rs, jst());
    std::map<std::string, std::vector<const Indicator*>> by_kind;
    for (const auto& i : s.indicators) by_kind[i.kind].push_back(&i);
    REQUIRE(by_kind["off_hours"].size() == 2);  // bob at night, carol on Saturday
    CHECK(by_kind["earlier_denials"].size() == 1);
    CHECK(by_kind["earlier_denials"][0]->count == 21);  // 1 written + 20 counted in a repeated record
    CHECK(s.denials == 21);
    CHECK(by_kind["bulk_read"].size() == 1);
    CHECK(by_kind["bulk_read"][0]->count == 250);
    CHECK(by_kind["copy_out_of_zone"].size() == 1);
    REQUIRE(by_kind["held_print"].size() == 1);
    CHECK(by_kind["held_print"][0]->detail == "job 42 on office held, then allow by alice");
    REQUIRE(s.print_jobs.size() == 1);
    CHECK(s.print_jobs[0].decided_by == "alice");
    CHECK(s.print_jobs[0].categories.count("payment_card"));
    CHECK(trigger(s, "financial_harm").status == "yes");
    CHECK(s.prints == 1);

    auto bob = jst();
    bob.user = "bob";
    auto sb = build_scope(rs, bob);
    REQUIRE(sb.print_jobs.size() == 1);
    CHECK(sb.print_jobs[0].decided_by == "alice");
    CHECK_FALSE(file(sb, "/z/saturday"));
    const auto bob_cursors = evidence_of(rs, bob);
    CHECK(std::find(bob_cursors.begin(), bob_cursors.end(), rs[8].cursor) != bob_cursors.end());

    // An approval of a job outside the scope is no evidence of it.
    auto carol = jst();
    carol.user = "carol";
    auto sc = build_scope(rs, carol);
    CHECK(sc.print_jobs.empty());
    CHECK(evidence_of(rs, carol) == std::vector<std::string>{rs[2].cursor});
}

TEST_CASE("report: deadlines count the day of discovery as day 1, across month and year ends", "[report][unit]") {
    struct Case {
        Date discovered;
        const char *preliminary, *preliminary_latest, *final, *final_if_deliberate;
    };
    // Expected values from Python's datetime; day 30/60 on a weekend or 29 Dec-3 Jan moves on.
    const std::vector<Case> cases = {
        {{2026, 1, 30}, "2026-02-01", "2026-02-03", "2026-03-02", "2026-03-30"},  // day 30 a Saturday
        {{2024, 2, 1}, "2024-02-03", "2024-02-05", "2024-03-01", "2024-04-01"},   // leap year; day 60 a Sunday
        {{2026, 12, 1}, "2026-12-03", "2026-12-05", "2027-01-04", "2027-01-29"},  // day 30 on 30 Dec
        {{2027, 2, 27}, "2027-03-01", "2027-03-03", "2027-03-29", "2027-04-27"},  // February's end
        {{2026, 10, 31}, "2026-11-02", "2026-11-04", "2026-11-30", "2027-01-04"}, // day 60 on 29 Dec
    };
    for (const auto& c : cases) {
        DYNAMIC_SECTION(c.discovered.iso()) {
            auto d = compute_deadlines(c.discovered);
            CHECK(d.preliminary.iso() == c.preliminary);
            CHECK(d.preliminary_latest.iso() == c.preliminary_latest);
            CHECK(d.final.iso() == c.final);
            CHECK(d.final_if_deliberate.iso() == c.final_if_deliberate);
        }
    }
    SECTION("the discovery date is local: 23:30 UTC is the next day in Tokyo") {
        auto f = jst();
        f.discovered_at_usec = k_mon - 30 * 60 * k_s;  // 2026-10-04T23:30Z = 2026-10-05 08:30 JST
        auto s = build_scope({}, f);
        REQUIRE(s.deadlines);
        CHECK(s.deadlines->discovered.iso() == "2026-10-05");
    }
    SECTION("dates round-trip over four centuries") {
        for (std::int64_t d = -200000; d < 200000; d += 7) REQUIRE(days_from_civil(civil_from_days(d)) == d);
        CHECK(weekday(days_from_civil({2026, 10, 5})) == 1);
        CHECK(weekday(days_from_civil({1969, 12, 28})) == 0);
    }
}

TEST_CASE("report: filters, duplicates and servers", "[report][unit]") {
    auto dup = read(k_mon, "bob", "/z/a");
    std::vector<Record> rs = {dup, dup, read(k_mon + 1, "bob", "/z/ab"), read(k_mon + 2, "carol", "/z/a/b", "198.51.100.9"),
                              read(k_mon + 3, "dave", "/z/a", "192.0.2.7", "allow")};
    rs.back().hostname = "fs2";
    rs.back().fields["CUSTGUARD_AUID_USER"] = "bob";  // dave's process, bob logged in (sudo)
    SECTION("a record written twice counts once") {
        auto s = build_scope(rs, jst());
        CHECK(s.reads == 4);
        CHECK(s.duplicates == 1);
        CHECK(s.servers == std::set<std::string>{"fs1", "fs2"});
    }
    SECTION("user matches the login user too") {
        auto f = jst();
        f.user = "bob";
        auto s = build_scope(rs, f);
        CHECK(s.reads == 3);
        REQUIRE(file(s, "/z/a"));
    }
    SECTION("path is a file or a directory, not a name prefix") {
        auto f = jst();
        f.path = "/z/a";
        auto s = build_scope(rs, f);
        CHECK(s.reads == 3);
        CHECK_FALSE(file(s, "/z/ab"));
    }
    SECTION("zone: its files and the copies out of it") {
        auto with_copy = rs;
        with_copy.push_back(found(k_mon + 4, "/home/bob/a.csv", {{"CUSTGUARD_COPY_OF", "customers"}}));
        with_copy.push_back(found(k_mon + 5, "/home/bob/b.csv", {{"CUSTGUARD_COPY_OF", "hr"}}));
        with_copy.push_back(rec(k_mon + 6, {{"CUSTGUARD_EVENT", "access"}, {"CUSTGUARD_DECISION", "allow"},
                                            {"CUSTGUARD_USER", "bob"}, {"CUSTGUARD_ZONE", "hr"}, {"CUSTGUARD_PATH", "/hr/x"}}));
        auto f = jst();
        f.zone = "customers";
        auto s = build_scope(with_copy, f);
        CHECK(s.reads == 4);
        CHECK(s.copies == 1);
        CHECK(file(s, "/home/bob/a.csv"));
        CHECK_FALSE(file(s, "/home/bob/b.csv"));
        CHECK_FALSE(file(s, "/hr/x"));
    }
    SECTION("client") {
        auto f = jst();
        f.client = "198.51.100.9";
        CHECK(build_scope(rs, f).reads == 1);
    }
    SECTION("readers are grouped by user and client, with first, last and count") {
        std::vector<Record> more = {read(k_mon, "bob", "/z/a"), read(k_mon + 5 * k_s, "bob", "/z/a"),
                                    read(k_mon + 9 * k_s, "bob", "/z/a", "198.51.100.9")};
        auto s = build_scope(more, jst());
        REQUIRE(s.files[0].readers.size() == 2);
        CHECK(s.files[0].readers[0].client == "192.0.2.7");
        CHECK(s.files[0].readers[0].count == 2);
        CHECK(s.files[0].readers[0].last_usec == k_mon + 5 * k_s);
    }
    SECTION("a record of the bpf-lsm enforcer counts the reads it stands for (CUSTGUARD_REPEATS)") {
        std::vector<Record> folded = {read(k_mon, "bob", "/z/a"), read(k_mon + 61 * k_s, "bob", "/z/a")};
        folded.back().fields["CUSTGUARD_REPEATS"] = "41";
        CHECK(used_field("CUSTGUARD_REPEATS"));  // the CLI passes it on (it reads only used fields)
        auto s = build_scope(folded, jst());
        CHECK(s.reads == 43);
        REQUIRE(file(s, "/z/a"));
        CHECK(file(s, "/z/a")->reads == 43);
        REQUIRE(s.files[0].readers.size() == 1);
        CHECK(s.files[0].readers[0].count == 43);
        REQUIRE(s.hourly_reads.size() == 1);
        CHECK(s.hourly_reads[0].count == 43);
    }
}

TEST_CASE("report: the same records in any order give byte-identical reports", "[report][unit]") {
    std::vector<Record> rs;
    for (int i = 0; i < 50; ++i)
        rs.push_back(read(k_mon + static_cast<std::uint64_t>(i % 7) * k_hour, i % 2 ? "bob" : "carol",
                          "/z/f" + std::to_string(i % 5), "192.0.2." + std::to_string(i % 3), i % 11 ? "allow" : "deny"));
    rs.push_back(found(k_mon, "/p/a", {{"CUSTGUARD_DETECTORS", "edm:crm:3"}, {"CUSTGUARD_PERSONS", "3"}}));
    rs.push_back(found(k_mon + 2 * k_hour, "/p/a", {{"CUSTGUARD_DETECTORS", "email:9"}}));  // a later scan of it
    rs.push_back(rec(k_mon + k_hour, {{"CUSTGUARD_EVENT", "print"}, {"CUSTGUARD_DECISION", "hold"}, {"CUSTGUARD_USER", "bob"},
                                      {"CUSTGUARD_PRINTER", "office"}, {"CUSTGUARD_JOB", "7"}, {"CUSTGUARD_TITLE", "a"}}));
    rs.push_back(rec(k_mon + 2 * k_hour, {{"CUSTGUARD_EVENT", "admin_change"}, {"CUSTGUARD_ADMIN_ACTION", "print.approve"},
                                          {"CUSTGUARD_USER", "alice"}, {"CUSTGUARD_TARGET", "office:7"}}));
    rs.push_back(rec(k_mon + 2 * k_hour + 1, {{"CUSTGUARD_EVENT", "print"}, {"CUSTGUARD_DECISION", "allow"},
                                              {"CUSTGUARD_USER", "bob"}, {"CUSTGUARD_PRINTER", "office"},
                                              {"CUSTGUARD_JOB", "7"}, {"CUSTGUARD_DETECTORS", "credit_card:2"}}));
    rs.push_back(rec(k_mon + 3 * k_hour, {{"CUSTGUARD_EVENT", "repeated"}, {"CUSTGUARD_REPEATED", "access_denied"},
                                          {"CUSTGUARD_USER", "bob"}, {"CUSTGUARD_SUPPRESSED", "4"}}));
    rs.push_back(rs[4]);  // reached the journal twice: the second copy has another cursor
    rs.back().cursor = "s=test;i=" + std::to_string(++g_seq);
    rs[3].hostname = "fs2";
    auto f = jst();
    f.discovered_at_usec = k_mon;
    const auto s0 = build_scope(rs, f);
    CHECK(s0.duplicates == 1);
    CHECK(s0.records == rs.size());  // every record is evidence, the duplicate's copy too
    std::mt19937 rng(42);
    for (int round = 0; round < 5; ++round) {
        std::shuffle(rs.begin(), rs.end(), rng);
        auto s = build_scope(rs, f);
        for (auto format : {Format::text, Format::json, Format::csv, Format::html})
            for (auto kind : {Kind::leak_scope, Kind::access})
                REQUIRE(render(s, kind, format, "0.1.0") == render(s0, kind, format, "0.1.0"));
    }
}

namespace {

std::string sha256_hex(const std::string& text) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    REQUIRE(EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr) == 1);
    std::string hex;
    for (unsigned i = 0; i < len; ++i) {
        char b[3];
        std::snprintf(b, sizeof b, "%02x", md[i]);
        hex += b;
    }
    return hex;
}

}  // namespace

TEST_CASE("report: journal files interleaved in any way give the same evidence, checkable by its cursors",
          "[report][unit]") {
    // Two journal files of two servers, each far longer than the reorder window, read in
    // their own order but interleaved at random, as a reader of several files yields them.
    std::vector<std::vector<Record>> files(2);
    for (int i = 0; i < 3000; ++i)
        for (int k = 0; k < 2; ++k) {
            auto r = read(k_mon + static_cast<std::uint64_t>(i) * k_s, k ? "bob" : "carol", "/z/f" + std::to_string(i % 9),
                          "192.0.2.1", i % 97 ? "allow" : "deny");
            r.hostname = k ? "fs2" : "fs1";
            char cursor[64];
            std::snprintf(cursor, sizeof cursor, "s=%s;i=%x;b=0", k ? "bbbb" : "aaaa", i + 1);
            r.cursor = cursor;
            files[k].push_back(std::move(r));
        }
    auto f = jst();
    auto interleaved = [&](unsigned seed, std::string& sunk) {
        std::mt19937 rng(seed);
        std::size_t at[2] = {0, 0};
        ScopeBuilder b(f, [&](std::string_view c) { sunk.append(c).append("\n"); });
        while (at[0] < files[0].size() || at[1] < files[1].size()) {
            std::size_t k = at[0] == files[0].size() ? 1 : at[1] == files[1].size() ? 0 : rng() % 2;
            b.add(files[k][at[k]++]);
        }
        return std::move(b).finish();
    };
    std::string sunk0, sunk1;
    const auto s0 = interleaved(1, sunk0);
    const auto s1 = interleaved(2, sunk1);
    CHECK(render_json(s1, Kind::leak_scope, "0.1.0") == render_json(s0, Kind::leak_scope, "0.1.0"));
    REQUIRE(s0.evidence.size() == 2);
    for (const auto& e : s0.evidence) {
        INFO(e.file);
        CHECK(e.count == 3000);
        CHECK(e.late == 0);
        // What the sink wrote for this file, in its order: `grep '^s=FILE;' | sha256sum`.
        std::string lines;
        std::istringstream in(sunk0);
        for (std::string line; std::getline(in, line);)
            if (line.rfind("s=" + e.file + ";", 0) == 0) lines += line + "\n";
        CHECK(sha256_hex(lines) == e.sha256);
        CHECK(lines.substr(0, lines.find('\n')) == e.first);
        CHECK(e.first == "s=" + e.file + ";i=1;b=0");
        CHECK(e.last == "s=" + e.file + ";i=bb8;b=0");
        CHECK(e.servers == std::set<std::string>{e.file == "aaaa" ? "fs1" : "fs2"});
    }
    CHECK(s0.evidence[0].sha256 != s0.evidence[1].sha256);

    SECTION("records out of their file's order by less than the reorder window are hashed in sequence order") {
        // Blocks of 100 records reversed: each one is held among later ones and must be
        // sorted in before them (guards the evidence's ring of held cursors).
        std::string sunk;
        ScopeBuilder b(f, [&](std::string_view c) { sunk.append(c).append("\n"); });
        for (std::size_t block = 0; block < files[0].size(); block += 100)
            for (std::size_t i = std::min(block + 100, files[0].size()); i-- > block;) b.add(files[0][i]);
        auto s = std::move(b).finish();
        REQUIRE(s.evidence.size() == 1);
        CHECK(s.evidence[0].late == 0);
        std::string in_order;
        for (const auto& r : files[0]) in_order += r.cursor + "\n";
        CHECK(sunk == in_order);
        CHECK(sha256_hex(in_order) == s.evidence[0].sha256);
        CHECK(s.evidence[0].first == files[0].front().cursor);
        CHECK(s.evidence[0].last == files[0].back().cursor);
    }

    SECTION("a record read far out of its file's order is hashed last, and counted as late") {
        std::string sunk;
        ScopeBuilder b(f, [&](std::string_view c) { sunk.append(c).append("\n"); });
        for (std::size_t i = 1; i < files[0].size(); ++i) b.add(files[0][i]);
        b.add(files[0][0]);
        auto s = std::move(b).finish();
        REQUIRE(s.evidence.size() == 1);
        CHECK(s.evidence[0].late == 1);
        CHECK(s.evidence[0].first == files[0][0].cursor);
        CHECK(sha256_hex(sunk) == s.evidence[0].sha256);
        CHECK(sunk.substr(sunk.rfind('\n', sunk.size() - 2) + 1) == files[0][0].cursor + "\n");
    }
}

TEST_CASE("report: the model's size does not grow with the records (1 million reads)", "[report][unit]") {
    // One hour of reads of 100 files by 10 users from 3 clients, in journal order: what the
    // builder holds is bounded by files, readers, users, hours and the reorder window.
    auto f = jst();
    ScopeBuilder b(f);
    Record r;
    r.hostname = "fs1";
    r.fields = {{"CUSTGUARD_EVENT", "access"}, {"CUSTGUARD_DECISION", "allow"}, {"CUSTGUARD_ZONE", "customers"},
                {"CUSTGUARD_RUN", "bench"}};
    std::size_t at_100k = 0;
    constexpr std::uint64_t n = 1'000'000;
    for (std::uint64_t i = 0; i < n; ++i) {
        r.realtime_usec = k_mon + i * 3000;  // 3 ms apart: 50 minutes
        char cursor[48];
        std::snprintf(cursor, sizeof cursor, "s=aaaa;i=%llx", static_cast<unsigned long long>(i + 1));
        r.cursor = cursor;
        r.fields["CUSTGUARD_SEQ"] = std::to_string(i + 1);
        r.fields["CUSTGUARD_USER"] = "user" + std::to_string(i % 10);
        r.fields["CUSTGUARD_CLIENT"] = "192.0.2." + std::to_string(i % 3);
        r.fields["CUSTGUARD_PATH"] = "/z/f" + std::to_string(i % 100);
        b.add(r);
        if (i + 1 == 100'000) at_100k = b.retained();
    }
    const auto at_end = b.retained();
    INFO("held after 100,000: " << at_100k << ", after 1,000,000: " << at_end);
    // 100 files, 300 (file, user, client) readers (i % 100 fixes i % 10), 10 users, 10
    // (hour, server, user) counts, 1 sequence range, 256 cursors held back.
    CHECK(at_end <= 100 + 300 + 10 + 20 + 1 + ScopeBuilder::k_reorder_window);
    CHECK(at_end == at_100k);
    auto s = std::move(b).finish();
    CHECK(s.reads == n);
    CHECK(s.records == n);
    CHECK(s.timeline.empty());  // allowed reads are counted, not listed
    std::uint64_t hourly = 0;
    for (const auto& h : s.hourly_reads) hourly += h.count;
    CHECK(hourly == n);
}

TEST_CASE("report: files without a recorded scan take today's scan where there is one, and say which",
          "[report][unit]") {
    std::vector<Record> rs = {read(k_mon, "bob", "/z/here.csv"), read(k_mon + 1, "bob", "/z/gone.csv"),
                              found(k_mon + 2, "/p/copy.csv", {{"CUSTGUARD_DETECTORS", "email:2"}})};
    std::vector<std::string> asked;
    ScopeBuilder b(jst());
    for (const auto& r : rs) b.add(r);
    // A fake of the sandboxed scan: which files are asked, and what their answers become.
    auto s = std::move(b).finish([&](const File& f) {
        asked.push_back(f.path);
        if (f.path == "/z/here.csv") return today_scan("credit_card:3,email:0,edm:crm:12", 12, "scanned today");
        return TodayScan{false, {}, {}, "the file no longer exists on this host"};
    });
    CHECK(asked == std::vector<std::string>{"/z/gone.csv", "/z/here.csv"});  // never the recorded one
    const auto* here = file(s, "/z/here.csv");
    REQUIRE(here);
    CHECK(here->categories_basis == "today");
    CHECK(here->categories == std::set<std::string>{"payment_card"});
    CHECK(here->persons.exact == 12u);
    CHECK(here->categories_note == "scanned today");
    const auto* gone = file(s, "/z/gone.csv");
    REQUIRE(gone);
    CHECK(gone->categories_basis == "none");
    CHECK(gone->categories_note == "the file no longer exists on this host");
    CHECK_FALSE(gone->persons.max);
    CHECK(file(s, "/p/copy.csv")->categories_basis == "recorded");
    CHECK(trigger(s, "financial_harm").status == "yes");
    CHECK(trigger(s, "sensitive").status == "unknown");  // gone.csv may hold some
    auto text = render_text(s, Kind::leak_scope, "0.1.0");
    CHECK(text.find("(scan of today's file: scanned today)") != std::string::npos);
    CHECK(text.find("(not available: the file no longer exists on this host)") != std::string::npos);
    auto json = render_json(s, Kind::leak_scope, "0.1.0");
    CHECK(json.find("\"categories_basis\": \"today\",\n      \"categories_note\": \"scanned today\"") != std::string::npos);
}

TEST_CASE("report: file names cannot break the CSV, HTML or text", "[report][unit]") {
    auto s = build_scope({read(k_mon, "bob", "/z/=HYPERLINK(\"x\"),<script>alert(1)</script>\n2026")}, jst());
    auto csv = render_csv(s, Kind::leak_scope);
    CHECK(csv.find("\"'=HYPERLINK(\"\"x\"\")") == std::string::npos);  // not at the start of a cell: kept
    CHECK(csv.find("\"/z/=HYPERLINK(\"\"x\"\"),<script>alert(1)</script>\n2026\"") != std::string::npos);
    auto html = render_html(s, Kind::leak_scope, "0.1.0");
    CHECK(html.find("<script>") == std::string::npos);
    CHECK(html.find("&lt;script&gt;") != std::string::npos);
    auto text = render_text(s, Kind::leak_scope, "0.1.0");
    CHECK(text.find("</script>\\n2026") != std::string::npos);
    auto formula = build_scope({read(k_mon, "=cmd", "/z/a")}, jst());
    CHECK(render_csv(formula, Kind::access).find(",'=cmd,") != std::string::npos);
}

TEST_CASE("report: JSON keeps the names of issue 19", "[report][unit]") {
    auto f = jst();
    f.discovered_at_usec = k_mon;
    auto s = build_scope({read(k_mon, "bob", "/z/a"),
                          found(k_mon + 1, "/p/a", {{"CUSTGUARD_DETECTORS", "edm:crm:3"}, {"CUSTGUARD_PERSONS", "3"}})},
                         f);
    auto json = render_json(s, Kind::leak_scope, "0.1.0");
    for (const char* key : {"\"window\": {", "\"servers\": [", "\"files\": [", "\"totals\": {", "\"triggers\": {",
                            "\"deadlines\": {", "\"evidence\": {", "\"path\": \"/z/a\"", "\"server\": \"fs1\"",
                            "\"zone\": \"customers\"", "\"readers\": [", "\"user\": \"bob\"", "\"client\": \"192.0.2.7\"",
                            "\"first\": \"2026-10-05T09:00:00+09:00\"", "\"last\": ", "\"count\": 1", "\"categories\": [",
                            "\"persons\": {", "\"min\": 3", "\"max\": 3", "\"exact\": 3", "\"preliminary\": \"2026-10-07\"",
                            "\"final\": \"2026-11-03\"", "\"sha256\": \"", "\"version\": \"0.1.0\""})
        CHECK(json.find(key) != std::string::npos);
}
