// The held print jobs store and its file (STATE_DIR/print/held-jobs): round trip, corrupt
// and cut-off input, decisions written before they take effect and taken once. The
// end-to-end crash test (SIGKILL, restart, approve) is in held_restart_test.cpp.
#include <catch2/catch.hpp>

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "daemon/core/held_jobs.hpp"

using namespace custguard::daemon;
namespace fs = std::filesystem;

namespace {

std::vector<HeldJob> sample_jobs() {
    HeldJob a;
    a.id = "12";
    a.printer = "secure-3f";
    a.user = "alice";
    a.uid = 1000;
    a.title = "顧客名簿 100% = list,\nwith\ttabs: and spaces";
    a.pages = 3;
    a.client = "10.0.0.5";
    a.detector_hits = {{"email", 4}, {"jp_address", 1}};
    a.held_at = 1'765'000'000;
    HeldJob b = a;
    b.id = "13";
    b.title = "";
    b.user = "";
    b.uid = 0xffffffffu;
    b.detector_hits = {};
    b.scan_failed = true;
    b.decision = JobDecision::approved;
    HeldJob c = a;
    c.id = "4294967295";
    c.printer = "x";
    c.decision = JobDecision::rejected;
    return {a, b, c};
}

bool same(const HeldJob& x, const HeldJob& y) {
    return x.id == y.id && x.printer == y.printer && x.user == y.user && x.uid == y.uid && x.title == y.title &&
           x.pages == y.pages && x.client == y.client && x.detector_hits == y.detector_hits &&
           x.held_at == y.held_at && x.scan_failed == y.scan_failed && x.decision == y.decision;
}

struct TempDir {
    TempDir() {
        char tmpl[] = "/tmp/cgheld.XXXXXX";
        if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    fs::path path;
};

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

TEST_CASE("held jobs file: every field survives a round trip, separators and UTF-8 included", "[print][unit]") {
    const auto jobs = sample_jobs();
    const auto text = serialize_held_jobs(jobs);
    // One job a line: the title's newline and tab are escaped.
    CHECK(std::count(text.begin(), text.end(), '\n') == 2 + 3);
    auto back = parse_held_jobs(text, "held-jobs");
    INFO(text);
    CHECK(back.problems.empty());
    REQUIRE(back.jobs.size() == jobs.size());
    for (std::size_t i = 0; i < jobs.size(); ++i) CHECK(same(back.jobs[i], jobs[i]));
    CHECK(serialize_held_jobs(back.jobs) == text);
}

TEST_CASE("held jobs file: a bad line is reported with file:line and skipped, the others kept", "[print][unit]") {
    const std::string good1 = "id=1 state=held printer=p user=u\n";
    const std::string good2 = "id=3 state=approved printer=q\n";
    struct Case {
        std::string line;
        std::string problem;
    };
    const std::vector<Case> cases = {
        {"id=x state=held printer=p", "no job id (digits)"},
        {"state=held printer=p", "no job id (digits)"},
        {"id=12345678901 state=held printer=p", "no job id (digits)"},
        {"id=2 printer=p", "job 2 has no state"},
        {"id=2 state=maybe printer=p", "unknown state 'maybe'"},
        {"id=2 state=held", "job 2 has no printer"},
        {"id=2 state=held printer=p title=%G1", "field title has a bad %-escape"},
        {"id=2 state=held printer=p title=%4", "field title has a bad %-escape"},
        {"id=2 state=held printer=p colour=red", "unknown field colour"},
        {"id=2 state=held printer=p uid=-1", "uid '-1' is not a number"},
        {"id=2 state=held printer=p pages=4294967296", "pages '4294967296' is not a number"},
        {"id=2 state=held printer=p scan_failed=yes", "scan_failed must be 0 or 1"},
        {"id=2 state=held printer=p hits=email", "detector hits are not name:count"},
        {"id=2 state=held printer=p printer=q", "field printer twice"},
        {"id=2 state=held printer=p junk", "'junk' is not key=value"},
        {"id=1 state=rejected printer=p", "job 1 again (first on line 2)"},
        {"id=2 state=held printer=p title=" + std::string(k_max_held_line, 'a'), "longer than 16384 bytes"},
    };
    for (const auto& c : cases) {
        const auto text = "# comment\n" + good1 + c.line + "\n" + good2;
        auto parsed = parse_held_jobs(text, "/var/lib/custguard/print/held-jobs");
        INFO(c.line.substr(0, 80));
        REQUIRE(parsed.problems.size() == 1);
        CHECK_THAT(parsed.problems[0], Catch::StartsWith("/var/lib/custguard/print/held-jobs:3: "));
        CHECK_THAT(parsed.problems[0], Catch::Contains(c.problem));
        CHECK_THAT(parsed.problems[0], Catch::EndsWith("skipped"));
        REQUIRE(parsed.jobs.size() == 2);
        CHECK(parsed.jobs[0].id == "1");
        CHECK(parsed.jobs[1].id == "3");
        CHECK(parsed.jobs[1].decision == JobDecision::approved);
    }
}

TEST_CASE("held jobs file: cut off at any byte, only whole lines are read and the cut is reported",
          "[print][unit]") {
    const auto jobs = sample_jobs();
    const auto text = serialize_held_jobs(jobs);
    const auto header_end = text.find("\nid=") + 1;
    for (std::size_t cut = 0; cut <= text.size(); ++cut) {
        const std::string_view part(text.data(), cut);
        auto parsed = parse_held_jobs(part, "f");
        INFO("cut at " << cut);
        // Jobs on lines that ended before the cut.
        std::size_t whole = 0;
        for (std::size_t i = header_end; i < cut; ++i) whole += text[i] == '\n';
        REQUIRE(parsed.jobs.size() == whole);
        for (std::size_t i = 0; i < whole; ++i) CHECK(same(parsed.jobs[i], jobs[i]));
        const bool mid_job = cut > header_end && text[cut - 1] != '\n';
        if (mid_job) {
            REQUIRE(parsed.problems.size() == 1);
            CHECK_THAT(parsed.problems[0], Catch::Contains("cut off (no end of line)"));
        } else {
            CHECK(parsed.problems.empty());
        }
    }
}

TEST_CASE("held jobs store: kept across a reload, a decision is written first and taken once", "[print][unit]") {
    TempDir dir;
    const auto file = dir.path / "print" / "held-jobs";
    std::vector<std::string> errors;
    auto on_error = [&](const std::string& e) { errors.push_back(e); };
    std::vector<std::string> told;
    {
        HeldJobs store;
        REQUIRE(store.persist(file, on_error).value().empty());
        store.set_decision_handler([&](const HeldJob& j, JobDecision d, const std::string& by, const std::string&) {
            // The handler (which tells CUPS) runs only once the decision is on disk.
            told.push_back(j.id + (d == JobDecision::approved ? " approved by " : " rejected by ") + by +
                           (slurp(file).find("id=" + j.id + " state=" +
                                             (d == JobDecision::approved ? "approved" : "rejected")) !=
                                    std::string::npos
                                ? " (written)"
                                : " (NOT written)"));
        });
        auto jobs = sample_jobs();
        for (auto& j : jobs) j.decision.reset();
        for (const auto& j : jobs) CHECK(store.hold(j));
        CHECK_FALSE(store.hold(jobs[0]));
        REQUIRE(store.decide("12", JobDecision::approved, "root", "ok"));
        REQUIRE(store.decide("13", JobDecision::rejected, "root", "no"));
        CHECK(store.list().size() == 1);  // 4294967295 waits
        CHECK(store.all().size() == 3);
    }
    CHECK(told == std::vector<std::string>{"12 approved by root (written)", "13 rejected by root (written)"});

    // "Restart": a new store reads the file.
    HeldJobs store;
    REQUIRE(store.persist(file, on_error).value().empty());
    REQUIRE(store.list().size() == 1);
    CHECK(store.list()[0].id == "4294967295");
    CHECK(store.find("12")->decision == JobDecision::approved);
    CHECK(store.find("13")->decision == JobDecision::rejected);
    // Deciding again is refused, whatever the decision.
    auto again = store.decide("12", JobDecision::approved, "root", "");
    REQUIRE_FALSE(again);
    CHECK(again.error().kind == DecideFailure::Kind::already_decided);
    CHECK_FALSE(store.decide("13", JobDecision::approved, "root", ""));
    CHECK_FALSE(store.take_approval("13"));  // rejected, not approved
    CHECK_FALSE(store.take_approval("4294967295"));  // not decided
    CHECK(store.take_approval("12"));
    CHECK_FALSE(store.take_approval("12"));
    store.forget("13");
    HeldJobs reread;
    REQUIRE(reread.persist(file, on_error).value().empty());
    REQUIRE(reread.all().size() == 1);
    CHECK(reread.all()[0].id == "4294967295");
    auto gone = reread.decide("12", JobDecision::approved, "root", "");
    REQUIRE_FALSE(gone);
    CHECK(gone.error().kind == DecideFailure::Kind::not_held);
    CHECK(errors.empty());
}

TEST_CASE("held jobs store: a decision that cannot be written is refused and the job stays held",
          "[print][unit]") {
    TempDir dir;
    const auto file = dir.path / "held-jobs";
    std::vector<std::string> errors;
    HeldJobs store;
    REQUIRE(store.persist(file, [&](const std::string& e) { errors.push_back(e); }));
    bool told = false;
    store.set_decision_handler([&](const HeldJob&, JobDecision, const std::string&, const std::string&) { told = true; });
    REQUIRE(store.hold(sample_jobs()[0]));
    // A directory where the file goes: the rename fails, as on a read-only or full disk.
    fs::remove(file);
    fs::create_directory(file);
    auto r = store.decide("12", JobDecision::approved, "root", "");
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == DecideFailure::Kind::not_saved);
    CHECK_THAT(r.error().message, Catch::Contains("the job stays held"));
    CHECK_FALSE(told);
    REQUIRE(store.list().size() == 1);
    CHECK_FALSE(store.list()[0].decision);
    CHECK(errors.empty());
}

TEST_CASE("held jobs store: bad lines at start are reported and the file as read is kept", "[print][unit]") {
    TempDir dir;
    const auto file = dir.path / "held-jobs";
    const std::string text = "id=1 state=held printer=p\nid=oops\nid=2 state=approved printer=p\nid=3 state=he";
    {
        std::ofstream(file, std::ios::binary) << text;
    }
    HeldJobs store;
    auto problems = store.persist(file, [](const std::string&) {});
    REQUIRE(problems);
    for (const auto& p : *problems) UNSCOPED_INFO(p);
    REQUIRE(problems->size() == 3);
    CHECK_THAT((*problems)[0], Catch::StartsWith(file.string() + ":2: no job id"));
    CHECK_THAT((*problems)[1], Catch::StartsWith(file.string() + ":4: cut off"));
    CHECK_THAT((*problems)[2], Catch::Contains("the file as read is kept in " + file.string() + ".bad-"));
    CHECK(store.all().size() == 2);
    std::vector<fs::path> copies;
    for (const auto& e : fs::directory_iterator(dir.path))
        if (e.path().filename().string().rfind("held-jobs.bad-", 0) == 0) copies.push_back(e.path());
    REQUIRE(copies.size() == 1);
    CHECK(slurp(copies[0]) == text);
    // A clean file: nothing to report, no copy.
    store.forget("1");
    HeldJobs again;
    CHECK(again.persist(file, [](const std::string&) {}).value().empty());
}

TEST_CASE("held jobs store: a file that cannot be read stops the start with what to do", "[print][unit]") {
    TempDir dir;
    const auto file = dir.path / "held-jobs";
    fs::create_directory(file);  // reading a directory fails
    HeldJobs store;
    auto r = store.persist(file, [](const std::string&) {});
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error(), Catch::Contains(file.string()));
}

// Upgrade: custguard before held-jobs kept the jobs whose scan failed in print/held.toml.
TEST_CASE("held jobs: the earlier print/held.toml is read for import, and a broken one is refused with its position",
          "[print][unit]") {
    const std::string legacy = R"(# Print jobs held because their scan failed
[[job]]
id = "31"
printer = "secure-3f"
user = "bob"
uid = 1001
title = "report"
pages = 2
client = "192.0.2.9"
held_at = 1765000000
)";
    auto jobs = parse_legacy_held_toml(legacy);
    REQUIRE(jobs);
    REQUIRE(jobs->size() == 1);
    const auto& j = jobs->front();
    CHECK(j.id == "31");
    CHECK(j.printer == "secure-3f");
    CHECK(j.user == "bob");
    CHECK(j.uid == 1001);
    CHECK(j.pages == 2);
    CHECK(j.client == "192.0.2.9");
    CHECK(j.held_at == 1765000000);
    CHECK(j.scan_failed);
    CHECK(parse_legacy_held_toml("")->empty());
    struct Bad {
        const char* text;
        const char* says;
    };
    for (const Bad& b : {Bad{"[[job]]\nid = \"1\"\ntitle = \"open\n", "line 3"}, Bad{"[[job]]\nprinter = \"p\"\n", "no id"},
                         Bad{"job = [1]\n", "not a table"}}) {
        INFO(b.text);
        auto r = parse_legacy_held_toml(b.text);
        REQUIRE_FALSE(r);
        CHECK(r.error().find(b.says) != std::string::npos);
    }
}
