// Unit tests of the flood bound for repeated refusals (repeat.hpp), the escaping of
// user-controlled text in MESSAGE and console lines (text_escape.hpp), and the pipeline's
// use of both, without journald (export only).
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "custguard/common/text_escape.hpp"
#include "custguard/events/export.hpp"
#include "custguard/events/journal.hpp"
#include "custguard/events/pipeline.hpp"
#include "custguard/events/repeat.hpp"

using namespace custguard::events;
using custguard::common::escape_text;
using namespace std::chrono_literals;
using Admit = RepeatLimiter::Admit;

namespace {

Record denial(std::string_view uid, std::string_view zone) {
    Record r;
    r.kind = Kind::access_denied;
    r.set(field::event, "access").set(field::uid, uid).set(field::user, "mallory").set(field::zone, zone);
    r.set(field::rule, "not_allowed").set(field::operation, "open").set(field::decision, "deny");
    r.set(field::path, "/srv/customers/a.csv").set(field::pid, "4711");
    return r;
}

// An open of /srv/customers/a.csv (zone 1) by `uid` in process `pid`, decided `decision`.
custguard::daemon::AccessEvent access_event(std::uint32_t decision, std::uint32_t uid, pid_t pid = ::getpid()) {
    custguard::daemon::AccessEvent ev;
    ev.raw.abi_version = CG_ABI_VERSION;
    ev.raw.kind = CG_EV_OPEN;
    ev.raw.pid = ev.raw.tgid = static_cast<std::uint32_t>(pid);
    ev.raw.uid = uid;
    ev.raw.loginuid = 0xffffffffu;
    ev.raw.zone_id = 1;
    ev.raw.decision = decision;
    ev.raw.rule = decision == CG_DECISION_DENY ? CG_RULE_NOT_ALLOWED : CG_RULE_USER;
    ev.path = "/srv/customers/a.csv";
    ev.realtime_ns = 1'700'000'000'000'000'000;
    return ev;
}

// A pipeline without journald that exports to events.jsonl in a scratch directory, removed
// at the end; `tune` adjusts its config.
struct ScratchPipeline {
    std::filesystem::path dir;
    std::unique_ptr<Pipeline> p;

    explicit ScratchPipeline(const std::function<void(PipelineConfig&)>& tune) {
        char tmpl[] = "/tmp/cgev-pipeline-XXXXXX";
        REQUIRE(::mkdtemp(tmpl));
        dir = tmpl;
        PipelineConfig c;
        c.journal = false;
        c.state_dir = dir;
        c.jsonl_path = dir / "events.jsonl";
        tune(c);
        auto made = Pipeline::create(std::move(c));
        REQUIRE(made);
        p = std::move(*made);
        p->set_zone_names({"customers"});
    }
    ~ScratchPipeline() {
        p.reset();
        std::filesystem::remove_all(dir);
    }
    Pipeline* operator->() const { return p.get(); }
    // The exported lines by event.action (access_denied, access_allowed, repeated, ...).
    std::map<std::string, std::vector<std::string>> lines() const {
        std::map<std::string, std::vector<std::string>> out;
        std::ifstream in(dir / "events.jsonl");
        for (std::string line; std::getline(in, line);) {
            const auto at = line.find("\"action\":\"");
            if (at == std::string::npos) continue;
            const auto from = at + 10;
            out[line.substr(from, line.find('"', from) - from)].push_back(line);
        }
        return out;
    }
};

}  // namespace

TEST_CASE("repeat limiter: first burst written and the rest counted into one record per window", "[unit]") {
    RepeatLimiter l({.burst = 3, .window = 10s, .max_keys = 16});
    const auto t0 = RepeatLimiter::Clock::time_point{} + 1000s;
    CHECK(l.admit("k", t0, 100) == Admit::first);
    l.describe("k", denial("1001", "customers"));
    CHECK(l.admit("k", t0 + 1s, 200) == Admit::written);
    CHECK(l.admit("k", t0 + 1s, 300) == Admit::written);
    for (int i = 0; i < 1000; ++i) CHECK(l.admit("k", t0 + 2s, 400 + i) == Admit::counted);
    CHECK(l.counted_total() == 1000);
    CHECK(l.pending() == 1000);
    CHECK(l.take_due(t0 + 9s).empty());  // window still open
    REQUIRE(l.next_due() == t0 + 10s);
    auto due = l.take_due(t0 + 10s);
    REQUIRE(due.size() == 1);
    const Record& r = due[0];
    CHECK(r.kind == Kind::repeated);
    CHECK(*r.get(field::event) == "repeated");
    CHECK(*r.get(field::repeated) == "access_denied");
    CHECK(*r.get(field::uid) == "1001");
    CHECK(*r.get(field::user) == "mallory");
    CHECK(*r.get(field::zone) == "customers");
    CHECK(*r.get(field::rule) == "not_allowed");
    CHECK(*r.get(field::operation) == "open");
    CHECK(*r.get(field::decision) == "deny");
    CHECK(*r.get(field::count) == "1003");
    CHECK(*r.get(field::suppressed) == "1000");
    CHECK(*r.get(field::first_usec) == "400");
    CHECK(*r.get(field::last_usec) == "1399");
    CHECK(*r.get(field::window) == "10");
    CHECK(r.get(field::path) == nullptr);  // one path does not stand for the others
    CHECK(r.message.find("1003 times") != std::string::npos);
    CHECK(l.pending() == 0);
    CHECK_FALSE(l.next_due());
    // A new window starts with the next refusal: written again.
    CHECK(l.admit("k", t0 + 11s, 2000) == Admit::first);
}

TEST_CASE("repeat limiter: keys are independent and a window that counted nothing ends silently", "[unit]") {
    RepeatLimiter l({.burst = 2, .window = 5s, .max_keys = 16});
    const auto t0 = RepeatLimiter::Clock::time_point{} + 1000s;
    for (int i = 0; i < 5; ++i) l.admit("a", t0, i);
    CHECK(l.admit("b", t0, 0) == Admit::first);
    CHECK(l.admit("b", t0, 0) == Admit::written);
    auto due = l.take_due(t0 + 5s);
    REQUIRE(due.size() == 1);
    CHECK(*due[0].get(field::suppressed) == "3");
}

TEST_CASE("repeat limiter: a refusal after the window closes the old window first", "[unit]") {
    RepeatLimiter l({.burst = 1, .window = 5s, .max_keys = 16});
    const auto t0 = RepeatLimiter::Clock::time_point{} + 1000s;
    l.admit("a", t0, 1);
    l.admit("a", t0, 2);
    CHECK(l.admit("a", t0 + 6s, 3) == Admit::first);
    auto due = l.take_due(t0 + 6s);
    REQUIRE(due.size() == 1);
    CHECK(*due[0].get(field::suppressed) == "1");
}

TEST_CASE("repeat limiter: details (D-Bus methods) are listed up to a bound", "[unit]") {
    RepeatLimiter l({.burst = 1, .window = 5s, .max_keys = 16});
    const auto t0 = RepeatLimiter::Clock::time_point{} + 1000s;
    Record first = custguard::events::make_admin_change_record("mallory", 1001, "access_denied", "org.custguard1.AddGrant");
    first.set(field::decision, "deny");
    l.admit("bus:1001", t0, 1, "org.custguard1.AddGrant");
    l.describe("bus:1001", first);
    for (int i = 0; i < 100; ++i) l.admit("bus:1001", t0, 2, fmt::format("org.custguard1.M{}", i % 40));
    l.admit("bus:1001", t0, 2, "org.custguard1.AddGrant");
    auto due = l.take_due(t0, true);
    REQUIRE(due.size() == 1);
    CHECK(*due[0].get(field::repeated) == "admin_change");
    CHECK(*due[0].get(field::admin_action) == "access_denied");
    CHECK(*due[0].get(field::suppressed) == "101");
    const std::string targets = *due[0].get(field::target);
    CHECK(std::count(targets.begin(), targets.end(), ',') == 15);  // 16 named at most
}

TEST_CASE("repeat limiter: memory is bounded and beyond max_keys records are written not lost", "[unit]") {
    RepeatLimiter l({.burst = 1, .window = 5s, .max_keys = 4});
    const auto t0 = RepeatLimiter::Clock::time_point{} + 1000s;
    for (int k = 0; k < 4; ++k) CHECK(l.admit(fmt::format("k{}", k), t0, 0) == Admit::first);
    CHECK(l.admit("k9", t0, 0) == Admit::written);
    CHECK(l.admit("k9", t0, 0) == Admit::written);
    // Once windows are over, their slots are reused.
    CHECK(l.admit("k9", t0 + 5s, 0) == Admit::first);
}

TEST_CASE("repeat limiter: burst 0 turns it off", "[unit]") {
    RepeatLimiter l({.burst = 0, .window = 5s, .max_keys = 4});
    for (int i = 0; i < 100; ++i) CHECK(l.admit("k", RepeatLimiter::Clock::now(), 0) == Admit::written);
    CHECK_FALSE(l.next_due());
}

TEST_CASE("text escape: controls, backslash, C1, bidi and bad UTF-8 become visible escapes", "[unit]") {
    struct Case {
        std::string in, out;
    };
    const Case cases[] = {
        {"plain /srv/顧客/a.csv", "plain /srv/顧客/a.csv"},
        {"a\nb", "a\\nb"},
        {"a\rb\tc", "a\\rb\\tc"},
        {"\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"},
        {std::string("nul\0x", 5), "nul\\x00x"},
        {"del\x7f", "del\\x7f"},
        {"back\\slash", "back\\\\slash"},
        {"csi\xc2\x9b" "2J", "csi\\u009b2J"},
        {"rlo\xe2\x80\xae" "txt.exe", "rlo\\u202etxt.exe"},
        {"ls\xe2\x80\xa8x", "ls\\u2028x"},
        {"bad\xff\xc3", "bad\\xff\\xc3"},
    };
    for (const auto& c : cases) {
        INFO(c.out);
        CHECK(escape_text(c.in) == c.out);
        CHECK(escape_text(c.in).find_first_of("\n\r\x1b") == std::string::npos);
    }
    CHECK(custguard::common::is_plain_text("/srv/顧客"));
    CHECK_FALSE(custguard::common::is_plain_text("a\nb"));
}

TEST_CASE("MESSAGE and console lines escape what a file name holds while the path field keeps its bytes", "[unit]") {
    Record r;
    r.kind = Kind::access_denied;
    r.message = "mallory opened /srv/customers/x\nFAKE: alice opened \x1b]0;owned\x07 in zone customers: denied";
    r.set(field::path, "/srv/customers/x\n\x1b]0;owned\x07");
    const std::string d = encode_native(r);
    CHECK(d.find("MESSAGE=mallory opened /srv/customers/x\\nFAKE: alice opened \\x1b]0;owned\\x07 in zone") !=
          std::string::npos);
    // The exact bytes stay in CUSTGUARD_PATH (binary form, because of the newline).
    CHECK(d.find(std::string("CUSTGUARD_PATH\n") + std::string("\x1b\0\0\0\0\0\0\0", 8) +
                 "/srv/customers/x\n\x1b]0;owned\x07\n") != std::string::npos);
    const std::string line = format_line(r);
    CHECK(line.find('\n') == std::string::npos);
    CHECK(line.find('\x1b') == std::string::npos);
    CHECK(line.find("\\x1b]0;owned") != std::string::npos);
}

TEST_CASE("pipeline: a flood of denials is counted while allowed reads are all written", "[unit]") {
    ScratchPipeline p([](PipelineConfig& c) { c.repeats = {.burst = 5, .window = 60s, .max_keys = 64}; });
    for (int i = 0; i < 2000; ++i) {
        REQUIRE(p->submit(access_event(CG_DECISION_DENY, 60001)));
        if (i % 100 == 50) REQUIRE(p->submit(access_event(CG_DECISION_ALLOW, 60002)));
    }
    REQUIRE(p->flush(10s));
    CHECK(p->counters().repeats_counted == 1995);
    CHECK(p->counters().repeats_pending == 1995);
    p->stop();
    CHECK(p->counters().repeats_pending == 0);
    CHECK(p->counters().repeat_records == 1);
    auto lines = p.lines();
    CHECK(lines["access_denied"].size() == 5);
    CHECK(lines["access_allowed"].size() == 20);
    REQUIRE(lines["repeated"].size() == 1);
    CHECK_THAT(lines["repeated"][0], Catch::Contains("1995"));
}

// Regression guard for the sensors' shortcut (Pipeline::admit, FanotifyOptions::admit_denial):
// a sensor asks before it describes a denial, the pipeline keeps that answer (one bound for
// asked and unasked events alike), and a counted event is not enriched, so a flood costs
// no /proc reads in the pipeline either.
TEST_CASE("pipeline: a sensor asking admit() first gets the flood bound's answer, and counted events are not enriched",
          "[unit]") {
    ScratchPipeline p([](PipelineConfig& c) { c.repeats = {.burst = 3, .window = 60s, .max_keys = 64}; });
    // A process already gone: enriching its event counts processes_exited, once per event.
    const pid_t gone = ::fork();
    if (gone == 0) ::_exit(0);
    REQUIRE(::waitpid(gone, nullptr, 0) == gone);
    using custguard::daemon::Admission;
    auto event = [&](std::uint32_t decision) {
        auto ev = access_event(decision, 60001, gone);
        ev.path.clear();  // described by the test where a sensor would describe it
        return ev;
    };
    std::vector<Admission> answers;
    for (int i = 0; i < 10; ++i) {
        auto ev = event(CG_DECISION_DENY);
        ev.admission = p->admit(ev);
        answers.push_back(ev.admission);
        if (ev.admission != Admission::counted) ev.path = "/srv/customers/a.csv";  // described
        // The described ones are lost on their way (a full queue): the `repeated` record
        // still says whose refusals it counts (admit() describes the key).
        if (ev.admission == Admission::counted) REQUIRE(p->submit(std::move(ev)));
    }
    const std::vector<Admission> expected = {Admission::first,   Admission::written, Admission::written,
                                             Admission::counted, Admission::counted, Admission::counted,
                                             Admission::counted, Admission::counted, Admission::counted,
                                             Admission::counted};
    CHECK(answers == expected);
    // Not asked (another sensor): the enricher admits it against the same window.
    auto unasked = event(CG_DECISION_DENY);
    unasked.path = "/srv/customers/a.csv";
    REQUIRE(p->submit(std::move(unasked)));
    // The access history is never counted away, not even when a sensor says so.
    for (int i = 0; i < 4; ++i) {
        auto ev = event(CG_DECISION_ALLOW);
        CHECK(p->admit(ev) == Admission::written);
        ev.admission = i == 3 ? Admission::counted : Admission::written;
        ev.path = "/srv/customers/a.csv";
        REQUIRE(p->submit(std::move(ev)));
    }
    REQUIRE(p->flush(10s));
    const auto counters = p->counters();
    CHECK(counters.repeats_counted == 8);
    CHECK(counters.repeats_pending == 8);
    CHECK(counters.processes_exited == 4);  // the allowed reads only: every denial submitted was counted
    p->stop();
    CHECK(p->counters().repeat_records == 1);
    auto lines = p.lines();
    CHECK(lines["access_denied"].empty());
    CHECK(lines["access_allowed"].size() == 4);
    REQUIRE(lines["repeated"].size() == 1);
    const std::string& summary = lines["repeated"][0];
    INFO(summary);
    CHECK_THAT(summary, Catch::Contains("\"count\":\"11\""));
    CHECK_THAT(summary, Catch::Contains("\"zone\":{\"id\":1,\"name\":\"customers\"}"));
    CHECK_THAT(summary, Catch::Contains("\"rule\":\"not_allowed\""));
}

// The writer's limiter (records with a repeat_key: refused D-Bus calls) has the configured
// bound too, not only the one access events share with the sensors.
TEST_CASE("pipeline: the configured flood bound applies to records with a repeat key", "[unit]") {
    ScratchPipeline p([](PipelineConfig& c) { c.repeats = {.burst = 2, .window = 60s, .max_keys = 64}; });
    for (int i = 0; i < 6; ++i) {
        Record r = denial("60002", "customers");
        r.repeat_key = "bus:60002";
        REQUIRE(p->submit(std::move(r)));
    }
    p->stop();
    auto lines = p.lines();
    CHECK(lines["access_denied"].size() == 2);
    REQUIRE(lines["repeated"].size() == 1);
    CHECK_THAT(lines["repeated"][0], Catch::Contains("\"count\":\"6\""));
}

// PipelineConfig::linger: events that come close together do not wake the enricher (and
// the writer behind it) each; one alone is taken at once, and a batch's worth, flush() and
// stop() end the gathering. A linger of 10 s makes each of these unmistakable.
TEST_CASE("pipeline: the enricher gathers events before it writes them, until a batch's worth, flush() or stop()",
          "[unit]") {
    ScratchPipeline p([](PipelineConfig& c) { c.linger = 10s; });
    auto allowed = [] { return access_event(CG_DECISION_ALLOW, 60001); };
    auto written_after = [&](std::chrono::milliseconds wait) {
        std::this_thread::sleep_for(wait);
        return p->counters().seq;
    };
    // The first event in 10 s: taken at once.
    REQUIRE(p->submit(allowed()));
    CHECK(written_after(300ms) == 1);
    // The next, less than 10 s after the last batch: gathered, not yet written.
    REQUIRE(p->submit(allowed()));
    CHECK(written_after(300ms) == 1);
    // A batch's worth (16) is written without waiting out the 10 s.
    for (int i = 1; i < 16; ++i) REQUIRE(p->submit(allowed()));
    CHECK(written_after(1s) == 17);
    REQUIRE(p->submit(allowed()));
    CHECK(written_after(300ms) == 17);
    CHECK(p->flush(5s));  // flush() ends the gathering
    CHECK(p->counters().seq == 18);
    REQUIRE(p->submit(allowed()));
    const auto t0 = std::chrono::steady_clock::now();
    p->stop();  // so does stop()
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);
    CHECK(p->counters().seq == 19);
    CHECK(p.lines()["access_allowed"].size() == 19);
}
