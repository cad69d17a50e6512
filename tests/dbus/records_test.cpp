// Issue 15, records part: nobody can flood the journal (repeated refusals end as counted
// `repeated` records), bus arguments have bounds, and user-controlled text is escaped in
// custguardctl's human output and in MESSAGE. The real custguardd (fanotify enforcer),
// a private dbus-daemon with the shipped policy, a scratch journald and the real
// custguardctl, as in control_plane_test.cpp.
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "custguard/api/bus_ptr.hpp"
#include "daemon/dbus/json.hpp"
#include "checks.hpp"
#include "fixture.hpp"
#include "support/exec_plan.hpp"

using cgdbus::accounts;
using cgdbus::contains;
using cgdbus::describe;
using cgdbus::parse;
using cgdbus::CtlResult;
using cgdbus::Fixture;
using custguard::dbus::Json;
using namespace std::chrono_literals;

namespace {

// Every record of the daemon's journal (custguardctl history --json), waiting until the
// number of records stops growing.
std::vector<Json> journal(const Fixture& f, const std::vector<std::string>& filter = {}) {
    std::vector<std::string> args = {"history", "--namespace", f.journal_namespace(), "--json"};
    args.insert(args.end(), filter.begin(), filter.end());
    std::vector<Json> rows;
    std::size_t stable = 0;
    for (int i = 0; i < 100 && stable < 3; ++i) {
        auto r = f.ctl(args);
        INFO(describe(r));
        REQUIRE(r.rc == 0);
        auto now = parse(r.out).as_array();
        stable = now.size() == rows.size() && !now.empty() ? stable + 1 : 0;
        rows = std::move(now);
        std::this_thread::sleep_for(100ms);
    }
    return rows;
}

std::uint64_t number(const Json& row, const char* key) {
    const std::string s = row[key].as_string();
    return s.empty() ? 0 : std::stoull(s);
}

// CUSTGUARD_SEQ of one run counts 1, 2, 3, ... in journal order.
void check_gap_free(const std::vector<Json>& rows) {
    std::map<std::string, std::uint64_t> last;
    for (const auto& r : rows) {
        const std::string run = r["run"].as_string();
        const std::uint64_t seq = number(r, "seq");
        INFO("run " << run << " seq " << seq);
        CHECK(seq == last[run] + 1);
        last[run] = seq;
    }
}

}  // namespace

// Regression (issue 15): denied opens by one unprivileged user were each a record
// (~1,500/s), enough to rotate the real history out of the journal.
TEST_CASE("dbus records: a denial flood through the fanotify enforcer ends as counted records", "[dbus][host]") {
    REQUIRE_ROOT();
    Fixture f;
    const auto& acc = accounts();
    const auto file = f.data() / "customers" / "c1.txt";
    constexpr int total = 3000;
    int half[2];
    REQUIRE(::pipe(half) == 0);
    const auto started = std::chrono::steady_clock::now();
    pid_t flooder = ::fork();
    if (flooder == 0) {
        const auto& c = acc.user;
        if (::setgroups(c.groups.size(), c.groups.data()) != 0 || ::setresgid(c.gid, c.gid, c.gid) != 0 ||
            ::setresuid(c.uid, c.uid, c.uid) != 0)
            ::_exit(120);
        int refused = 0;
        for (int i = 0; i < total; ++i) {
            int fd = ::open(file.c_str(), O_RDONLY);
            if (fd >= 0) ::close(fd);
            else if (errno == EPERM) ++refused;
            if (i == total / 2) (void)!::write(half[1], "h", 1);
        }
        ::_exit(refused == total ? 0 : 1);
    }
    ::close(half[1]);
    char h = 0;
    REQUIRE(::read(half[0], &h, 1) == 1);
    ::close(half[0]);
    // An allowed read by another user in the middle of the flood: the access history.
    CHECK(Fixture::read_as(acc.admin, file) == 0);
    int status = 0;
    ::waitpid(flooder, &status, 0);
    const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);  // every open was refused
    f.stop_daemon();                    // open windows end: their counts are written

    const auto rows = journal(f);
    check_gap_free(rows);
    std::uint64_t denials = 0, counted = 0, summaries = 0, allowed = 0;
    for (const auto& r : rows) {
        if (r["event"].as_string() == "repeated") {
            ++summaries;
            CHECK(r["repeated"].as_string() == "access_denied");
            CHECK(r["user"].as_string() == "cgdbus-user");
            CHECK(r["zone"].as_string() == "customers");
            CHECK(r["rule"].as_string() == "not_allowed");
            CHECK(number(r, "count") == number(r, "suppressed") + 10);
            CHECK(number(r, "first_usec") > 0);
            CHECK(number(r, "first_usec") <= number(r, "last_usec"));
            counted += number(r, "suppressed");
        } else if (r["event"].as_string() == "access" && r["user"].as_string() == "cgdbus-user") {
            ++denials;
            CHECK(r["decision"].as_string() == "deny");
        } else if (r["event"].as_string() == "access" && r["user"].as_string() == "cgdbus-admin") {
            ++allowed;
            CHECK(r["decision"].as_string() == "allow");
        }
    }
    INFO(rows.size() << " records for " << total << " denied opens in " << seconds << " s");
    CHECK(allowed == 1);
    CHECK(denials + counted == total);  // each one written or counted
    CHECK(summaries >= 1);
    const auto windows = static_cast<std::uint64_t>(seconds / 60) + 1;  // default window: 60 s
    CHECK(denials <= 10 * windows);
    CHECK(rows.size() <= 11 * windows + 10);  // + start-up records
}

// Regression (issue 15): each refused D-Bus call of a non-admin was a record of its own.
TEST_CASE("dbus records: a flood of refused bus calls by a non-admin ends as counted records", "[dbus][host]") {
    REQUIRE_ROOT();
    Fixture f;
    const auto& acc = accounts();
    constexpr int total = 2000;
    const auto started = std::chrono::steady_clock::now();
    const int rc = cgdbus::as_user(acc.user, [&] {
        auto bus = f.connect_bus();
        if (!bus) return 121;
        for (int i = 0; i < total; ++i) {
            const char* member = i % 2 ? "GetStatus" : "ListGrants";
            custguard::api::BusError err;
            sd_bus_message* reply = nullptr;
            int r = i % 2 ? sd_bus_call_method(bus.get(), "org.custguard1", "/org/custguard1", "org.custguard1", member,
                                               err.get(), &reply, "")
                          : sd_bus_call_method(bus.get(), "org.custguard1", "/org/custguard1", "org.custguard1", member,
                                               err.get(), &reply, "s", "");
            if (reply) sd_bus_message_unref(reply);
            if (r >= 0 || err.name() != "org.custguard1.Error.AccessDenied") return 122;
        }
        return 0;
    });
    const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    REQUIRE(rc == 0);
    f.stop_daemon();

    const auto rows = journal(f);
    check_gap_free(rows);
    std::uint64_t refused = 0, counted = 0, summaries = 0;
    for (const auto& r : rows) {
        if (r["event"].as_string() == "repeated") {
            ++summaries;
            CHECK(r["repeated"].as_string() == "admin_change");
            CHECK(r["admin_action"].as_string() == "access_denied");
            CHECK(r["user"].as_string() == "cgdbus-user");
            CHECK(contains(r["target"].as_string(), "org.custguard1.GetStatus"));
            CHECK(contains(r["target"].as_string(), "org.custguard1.ListGrants"));
            CHECK(number(r, "count") == number(r, "suppressed") + 10);
            counted += number(r, "suppressed");
        } else if (r["admin_action"].as_string() == "access_denied") {
            ++refused;
            CHECK(r["user"].as_string() == "cgdbus-user");
        }
    }
    INFO(rows.size() << " records for " << total << " refused calls in " << seconds << " s");
    CHECK(refused + counted == total);
    CHECK(summaries >= 1);
    const auto windows = static_cast<std::uint64_t>(seconds / 60) + 1;
    CHECK(refused <= 10 * windows);
    CHECK(rows.size() <= 11 * windows + 10);
}

// Regression (issue 15): a 16 MB grant reason was accepted, and its admin record was too
// large for journald and became `lost`. Every string and array argument has a bound.
TEST_CASE("dbus records: over-long bus arguments are refused with InvalidArgument naming the bound", "[dbus][host]") {
    REQUIRE_ROOT();
    Fixture f;
    auto bus = f.connect_bus();
    REQUIRE(bus);
    const std::string before = f.state_text();
    const std::string zone = "customers", user = "cgdbus-user";
    auto s = [](std::size_t n) { return std::string(n, 'a'); };
    struct Case {
        std::string member;
        std::string arg;
        std::size_t limit;
        std::function<int(sd_bus_message*)> append;
    };
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(devnull >= 0);
    const std::string big = s(16u << 20);  // the reported attack: 16 MB
    const std::vector<Case> cases = {
        {"AllowUser", "zone", 4096, [&](auto m) { return sd_bus_message_append(m, "ss", s(4097).c_str(), user.c_str()); }},
        {"AllowUser", "user", 256, [&](auto m) { return sd_bus_message_append(m, "ss", zone.c_str(), s(257).c_str()); }},
        {"RevokeUser", "user", 256, [&](auto m) { return sd_bus_message_append(m, "ss", zone.c_str(), s(300).c_str()); }},
        {"ListUsers", "zone", 4096, [&](auto m) { return sd_bus_message_append(m, "s", s(5000).c_str()); }},
        {"AllowDevice", "kind", 16, [&](auto m) { return sd_bus_message_append(m, "sss", s(17).c_str(), zone.c_str(), "10.0.0.0/8"); }},
        {"AllowDevice", "value", 255, [&](auto m) { return sd_bus_message_append(m, "sss", "client", zone.c_str(), s(256).c_str()); }},
        {"RevokeDevice", "zone", 4096, [&](auto m) { return sd_bus_message_append(m, "sss", "client", s(4097).c_str(), "x"); }},
        {"ListDevices", "zone", 4096, [&](auto m) { return sd_bus_message_append(m, "ss", "client", s(4097).c_str()); }},
        {"AddGrant", "reason", 1024, [&](auto m) { return sd_bus_message_append(m, "ssxs", zone.c_str(), user.c_str(), std::int64_t{3600}, s(1025).c_str()); }},
        {"AddGrant", "reason", 1024, [&](auto m) { return sd_bus_message_append(m, "ssxs", zone.c_str(), user.c_str(), std::int64_t{3600}, big.c_str()); }},
        {"AddGrant", "user", 256, [&](auto m) { return sd_bus_message_append(m, "ssxs", zone.c_str(), s(257).c_str(), std::int64_t{3600}, "ticket"); }},
        {"ListGrants", "zone", 4096, [&](auto m) { return sd_bus_message_append(m, "s", s(4097).c_str()); }},
        {"RevokeGrant", "user", 256, [&](auto m) { return sd_bus_message_append(m, "ss", zone.c_str(), s(257).c_str()); }},
        {"AddClientGrant", "client", 255, [&](auto m) { return sd_bus_message_append(m, "ssxs", zone.c_str(), s(256).c_str(), std::int64_t{3600}, "ticket"); }},
        {"AddClientGrant", "reason", 1024, [&](auto m) { return sd_bus_message_append(m, "ssxs", zone.c_str(), "192.0.2.7", std::int64_t{3600}, s(1025).c_str()); }},
        {"AddClientGrant", "zone", 4096, [&](auto m) { return sd_bus_message_append(m, "ssxs", s(4097).c_str(), "192.0.2.7", std::int64_t{3600}, "ticket"); }},
        {"RevokeClientGrant", "client", 255, [&](auto m) { return sd_bus_message_append(m, "ss", zone.c_str(), s(256).c_str()); }},
        {"ApproveJob", "job", 64, [&](auto m) { return sd_bus_message_append(m, "ss", s(65).c_str(), "ok"); }},
        {"ApproveJob", "comment", 1024, [&](auto m) { return sd_bus_message_append(m, "ss", "1", s(1025).c_str()); }},
        {"RejectJob", "reason", 1024, [&](auto m) { return sd_bus_message_append(m, "ss", "1", big.c_str()); }},
        {"CheckPrintJob", "job", 4096, [&](auto m) {
             return sd_bus_message_append(m, "a{ss}h", 2, "job-id", "1", "job-name", s(4097).c_str(), devnull);
         }},
        {"CheckPrintJob", "job", 64, [&](auto m) {
             int r = sd_bus_message_open_container(m, 'a', "{ss}");
             for (int i = 0; r >= 0 && i < 65; ++i) r = sd_bus_message_append(m, "{ss}", ("k" + std::to_string(i)).c_str(), "v");
             if (r >= 0) r = sd_bus_message_close_container(m);
             return r < 0 ? r : sd_bus_message_append(m, "h", devnull);
         }},
    };
    for (const auto& c : cases) {
        INFO(c.member << " " << c.arg);
        sd_bus_message* msg = nullptr;
        REQUIRE(sd_bus_message_new_method_call(bus.get(), &msg, "org.custguard1", "/org/custguard1", "org.custguard1",
                                               c.member.c_str()) >= 0);
        custguard::api::MessagePtr m(msg);
        REQUIRE(c.append(m.get()) >= 0);
        custguard::api::BusError err;
        sd_bus_message* reply = nullptr;
        int r = sd_bus_call(bus.get(), m.get(), 30'000'000, err.get(), &reply);
        if (reply) sd_bus_message_unref(reply);
        INFO(err.name() << ": " << err.message());
        CHECK(r < 0);
        CHECK(err.name() == "org.custguard1.Error.InvalidArgument");
        CHECK(contains(err.message(), "'" + c.arg + "'"));
        CHECK(contains(err.message(), "at most " + std::to_string(c.limit)));
    }
    // More documents than the bound (16): the system bus itself refuses more descriptors
    // per message (dbus-daemon's max_message_unix_fds), so such a call never reaches the
    // daemon; the daemon's own bound is the same for a bus configured higher.
    {
        auto fresh = f.connect_bus();
        REQUIRE(fresh);
        sd_bus_message* msg = nullptr;
        REQUIRE(sd_bus_message_new_method_call(fresh.get(), &msg, "org.custguard1", "/org/custguard1", "org.custguard1",
                                               "CheckPrintJobDocuments") >= 0);
        custguard::api::MessagePtr m(msg);
        int r = sd_bus_message_append(m.get(), "a{ss}", 2, "job-id", "1", "printer", "secure-3f");
        if (r >= 0) r = sd_bus_message_open_container(m.get(), 'a', "h");
        for (int i = 0; r >= 0 && i < 17; ++i) r = sd_bus_message_append(m.get(), "h", devnull);
        if (r >= 0) r = sd_bus_message_close_container(m.get());
        REQUIRE(r >= 0);
        custguard::api::BusError err;
        sd_bus_message* reply = nullptr;
        CHECK(sd_bus_call(fresh.get(), m.get(), 30'000'000, err.get(), &reply) < 0);
        if (reply) sd_bus_message_unref(reply);
        INFO(err.name() << ": " << err.message());
        CHECK(err.name() != "org.custguard1.Error.Failed");
    }
    ::close(devnull);
    CHECK(f.state_text() == before);

    // At the bound it is accepted, and its record arrives whole (no `lost`).
    const std::string reason(1024, 'r');
    auto ok = f.ctl({"grant", "add", "customers", "cgdbus-user", "--duration", "1h", "--reason", reason});
    INFO(describe(ok));
    CHECK(ok.rc == 0);
    // custguardctl shows the daemon's message and exit code 1 for the bound.
    auto too_long = f.ctl({"grant", "add", "customers", "cgdbus-user", "--duration", "1h", "--reason", reason + "r"});
    CHECK(too_long.rc == 1);
    CHECK(contains(too_long.err, "at most 1024 bytes"));
    f.stop_daemon();
    bool grant_recorded = false;
    for (const auto& r : journal(f)) {
        CHECK(r["event"].as_string() != "lost");
        if (r["admin_action"].as_string() == "grant.add") grant_recorded = contains(r["message"].as_string(), reason);
    }
    CHECK(grant_recorded);
}

// Regression (issue 15): a file name with a newline and an escape sequence printed as it
// is, so it could forge history lines and drive the admin's terminal.
TEST_CASE("dbus records: a path with a newline and an ESC shows escaped in custguardctl output", "[dbus][host]") {
    REQUIRE_ROOT();
    Fixture f;
    const auto& acc = accounts();
    const std::string forged = "2026-01-01 00:00:00  access  allow  cgdbus-admin  customers  x.csv";
    const std::string name = "evil\n" + forged + "\x1b[2J\x1b]0;owned\x07.txt";
    const auto file = f.data() / "customers" / name;
    // Written outside the zone and moved in: the enforcer lets nobody but cgdbus-admin
    // open zone files, root included.
    cgtest::spit(f.data() / "other" / name, "x\n");
    REQUIRE(::rename((f.data() / "other" / name).c_str(), file.c_str()) == 0);
    CHECK(Fixture::read_as(acc.user, file) == EPERM);
    const std::string reason = "ticket 1\n" + forged + "\x1b[31m";
    REQUIRE(f.ctl({"grant", "add", "customers", "cgdbus-reader", "--duration", "1h", "--reason", reason}).rc == 0);
    REQUIRE(f.wait_exported({"\"admin_action\":\"grant.add\""}));

    // JSON keeps the exact bytes (valid JSON, with \n and \u001b escapes).
    std::vector<Json> rows;
    for (int i = 0; i < 50 && rows.empty(); ++i) {
        rows = parse(f.ctl({"history", "--namespace", f.journal_namespace(), "--user", "cgdbus-user", "--json"}).out)
                   .as_array();
        if (rows.empty()) std::this_thread::sleep_for(100ms);
    }
    REQUIRE(rows.size() == 1);
    CHECK(rows[0]["path"].as_string() == file.string());
    // MESSAGE (what journalctl prints) is escaped.
    const std::string message = rows[0]["message"].as_string();
    CHECK(message.find('\n') == std::string::npos);
    CHECK(message.find('\x1b') == std::string::npos);
    CHECK(contains(message, "evil\\n2026-01-01"));
    CHECK(contains(message, "\\x1b[2J"));

    auto no_control = [](const std::string& out) {
        return out.find('\x1b') == std::string::npos && out.find('\x07') == std::string::npos;
    };
    auto lines_of = [](const std::string& out) {
        std::vector<std::string> lines;
        std::istringstream in(out);
        for (std::string l; std::getline(in, l);) lines.push_back(l);
        return lines;
    };
    struct View {
        std::vector<std::string> args;
        std::size_t lines;  // header + one row per record
    };
    const std::vector<View> views = {
        {{"history", "--namespace", f.journal_namespace(), "--user", "cgdbus-user"}, 2},
        {{"events", "--namespace", f.journal_namespace(), "--user", "cgdbus-user", "--lines", "5"}, 2},
        {{"grant", "list"}, 2},
    };
    for (const auto& v : views) {
        auto r = f.ctl(v.args);
        INFO(v.args[0] << "\n" << describe(r));
        CHECK(r.rc == 0);
        CHECK(no_control(r.out));
        CHECK(lines_of(r.out).size() == v.lines);  // no forged line
        CHECK(contains(r.out, "\\n2026-01-01 00:00:00"));
        CHECK(contains(r.out, "\\x1b["));
    }
    // scan runs offline on files users named: one line naming the file, then one line
    // per detector (indented); a forged line would start with something else.
    const auto outside = f.data() / "other" / name;
    cgtest::spit(outside, "x\n");
    auto scanned = f.ctl({"scan", outside.string()});
    INFO(describe(scanned));
    CHECK(scanned.rc == 0);
    CHECK(no_control(scanned.out));
    const auto scan_lines = lines_of(scanned.out);
    REQUIRE_FALSE(scan_lines.empty());
    CHECK(contains(scan_lines[0], "evil\\n2026-01-01 00:00:00"));
    for (std::size_t i = 1; i < scan_lines.size(); ++i) CHECK(scan_lines[i].rfind("  ", 0) == 0);
    // A refused argument echoed in an error message is escaped too.
    auto bad = f.ctl({"user", "list", "no\x1b[2Jzone"});
    CHECK(bad.rc == 1);
    CHECK(no_control(bad.err));
    CHECK(contains(bad.err, "no\\x1b[2Jzone"));
    auto bad_json = f.ctl({"user", "list", "no\x1b[2Jzone", "--json"});
    CHECK(parse(bad_json.out)["message"].as_string().find('\x1b') != std::string::npos);  // JSON: exact, escaped as \u001b
    CHECK(no_control(bad_json.out));
}
