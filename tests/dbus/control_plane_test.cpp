// End-to-end tests of the control plane: the real custguardctl against the real custguardd
// on a private dbus-daemon that uses the shipped D-Bus policy, as root and as other users.
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <array>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "custguard/policy/state.hpp"
#include "daemon/core/held_jobs.hpp"
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

// Runs a command expected to fail with a named error and exit code 1, and checks that the
// state file did not change.
void expect_refused(const Fixture& f, const std::vector<std::string>& args, const std::string& error_name,
                    const std::string& message_part = {}) {
    auto before = f.state_text();
    auto all = args;
    all.push_back("--json");
    auto r = f.ctl(all);
    INFO("custguardctl " << [&] { std::string s; for (auto& a : all) s += a + " "; return s; }() << "\n" << describe(r));
    CHECK(r.rc == 1);
    auto j = parse(r.out);
    CHECK(j["error"].as_string() == error_name);
    if (!message_part.empty()) CHECK(contains(j["message"].as_string(), message_part));
    CHECK(f.state_text() == before);
}

constexpr const char* k_err = "org.custguard1.Error.";

std::string exported_text(const Fixture& f) {
    std::string out;
    for (const auto& l : f.exported()) out += l + "\n";
    return out;
}

}  // namespace

TEST_CASE("dbus: every verb end to end as root", "[dbus][host]") {
    REQUIRE_ROOT();
    Fixture f;

    SECTION("status") {
        auto r = f.ctl({"status", "--json"});
        INFO(describe(r));
        REQUIRE(r.rc == 0);
        auto s = parse(r.out);
        CHECK(s["enforcer"].as_string() == "fanotify");
        CHECK(s["zones"].as_array().size() == 2);
        CHECK(s["version"].as_string() == CUSTGUARD_VERSION);
        // Beside an enforcer audit is off by default, and status says how to turn it on.
        CHECK(s["audit"]["mode"].as_string() == "off");
        CHECK(contains(s["audit"]["off_reason"].as_string(), "--audit"));
        // The fanotify enforcer's answers in overload and rescans: none on a quiet daemon,
        // and the text leaves them out until there is one.
        CHECK(s["sensor"]["overload"].as_int(-1) == 0);
        CHECK(s["sensor"]["overload_refused"].as_int(-1) == 0);
        CHECK(s["sensor"]["rescans"].as_int(-1) == 0);
        auto t = f.ctl({"status"});
        CHECK(t.rc == 0);
        CHECK(contains(t.out, "enforcer:"));
        CHECK(!contains(t.out, "in overload"));
        CHECK(contains(t.out, "off: not needed beside the enforcer"));
        CHECK(contains(t.out, "customers, medical"));
        // Per zone: the clients it allows (policy and state) and today's reads per client
        // (none here: reads with a client address come through smbd, see tests/samba).
        REQUIRE(f.ctl({"device", "allow", "client", "medical", "10.7.0.0/16"}).rc == 0);
        auto with = parse(f.ctl({"status", "--json"}).out);
        const auto& zc = with["zone_clients"].as_array();
        REQUIRE(zc.size() == 2);
        CHECK(zc[0]["zone"].as_string() == "customers");
        REQUIRE(zc[0]["allow_clients"].as_array().size() == 1);
        CHECK(zc[0]["allow_clients"].as_array()[0].as_string() == "192.168.10.0/24");
        CHECK(zc[0]["reads_today"].as_array().empty());
        CHECK(zc[1]["zone"].as_string() == "medical");
        REQUIRE(zc[1]["allow_clients"].as_array().size() == 1);
        CHECK(zc[1]["allow_clients"].as_array()[0].as_string() == "10.7.0.0/16");
        CHECK(with["client_reads_since"].as_int() >= with["started_at"].as_int());
        auto wt = f.ctl({"status"});
        CHECK(contains(wt.out, "zone customers:    clients 192.168.10.0/24; reads today: none\n"));
        CHECK(contains(wt.out, "zone medical:      clients 10.7.0.0/16; reads today: none\n"));
    }

    SECTION("policy check, reload, show") {
        auto c = f.ctl({"policy", "check", "--json"});
        INFO(describe(c));
        REQUIRE(c.rc == 0);
        CHECK(parse(c.out)["valid"].as_bool());
        // Offline form still works.
        auto off = f.ctl({"policy", "check", f.policy_file().string()});
        CHECK(off.rc == 0);
        CHECK(contains(off.out, "OK, 2 zones"));

        auto rl = f.ctl({"policy", "reload"});
        INFO(describe(rl));
        CHECK(rl.rc == 0);
        CHECK(contains(rl.out, "policy reloaded"));
        CHECK(f.wait_exported({"\"admin_action\":\"policy.reload\""}));

        auto show = f.ctl({"policy", "show", "--json"});
        REQUIRE(show.rc == 0);
        auto p = parse(show.out);
        const auto& zones = p["zones"].as_array();
        REQUIRE(zones.size() == 2);
        CHECK(zones[0]["name"].as_string() == "customers");
        const auto& user = zones[0]["allow_users"].as_array().at(0);
        CHECK(user["name"].as_string() == "cgdbus-admin");
        CHECK(user["origin"]["kind"].as_string() == "policy");
        CHECK(contains(user["origin"]["source"].as_string(), f.policy_file().string() + ":9:"));
        auto table = f.ctl({"policy", "show"});
        CHECK(table.rc == 0);
        CHECK(contains(table.out, "ORIGIN"));
        CHECK(contains(table.out, f.policy_file().string() + ":"));

        // A broken policy is refused on reload; the running one stays.
        {
            std::ofstream(f.policy_file(), std::ios::app) << "\n[[zone]]\nname = \"broken\"\n";
        }
        auto bad = f.ctl({"policy", "reload", "--json"});
        INFO(describe(bad));
        CHECK(bad.rc == 1);
        CHECK(parse(bad.out)["error"].as_string() == std::string(k_err) + "PolicyRefused");
        CHECK(contains(bad.err, f.policy_file().string()));
        auto badcheck = f.ctl({"policy", "check"});
        CHECK(badcheck.rc == 1);
        CHECK(f.ctl({"zone", "list", "--names"}).out == "customers\nmedical\n");
    }

    SECTION("zone list") {
        auto r = f.ctl({"zone", "list", "--json"});
        REQUIRE(r.rc == 0);
        auto z = parse(r.out);
        REQUIRE(z.as_array().size() == 2);
        CHECK(z.as_array()[1]["name"].as_string() == "medical");
        CHECK(z.as_array()[1]["sensitivity"].as_string() == "sensitive");
        auto t = f.ctl({"zone", "list"});
        CHECK(contains(t.out, "SENSITIVITY"));
        CHECK(contains(t.out, (f.data() / "customers").string()));
    }

    SECTION("user allow, list, revoke") {
        auto a = f.ctl({"user", "allow", "customers", "cgdbus-user", "%custguard-admin"});
        INFO(describe(a));
        REQUIRE(a.rc == 0);
        CHECK(contains(f.state_text(), "name = 'cgdbus-user'"));
        CHECK(contains(f.state_text(), "name = '%custguard-admin'"));
        // A path inside the zone names the innermost zone.
        auto b = f.ctl({"user", "allow", (f.data() / "customers" / "medical" / "m1.txt").string(), "cgdbus-reader"});
        INFO(describe(b));
        REQUIRE(b.rc == 0);
        CHECK(contains(b.out, "zone medical"));

        auto l = f.ctl({"user", "list", "customers", "--json"});
        REQUIRE(l.rc == 0);
        auto users = parse(l.out).as_array();
        REQUIRE(users.size() == 3);
        CHECK(users[0]["origin"].as_string() == "policy");
        CHECK(users[1]["name"].as_string() == "cgdbus-user");
        CHECK(users[1]["origin"].as_string() == "state");
        CHECK(users[1]["added_by"].as_string() == "root");
        CHECK(f.ctl({"user", "list"}).rc == 0);

        CHECK(f.wait_exported({"\"admin_action\":\"user.allow\"", "\"target\":\"customers:cgdbus-user\"",
                               "\"before\":\"cgdbus-admin\"", "\"after\":\"cgdbus-admin, cgdbus-user\""}));

        auto rv = f.ctl({"user", "revoke", "customers", "cgdbus-user"});
        INFO(describe(rv));
        REQUIRE(rv.rc == 0);
        CHECK_FALSE(contains(f.state_text(), "name = 'cgdbus-user'"));
        CHECK(f.wait_exported({"\"admin_action\":\"user.revoke\"", "\"target\":\"customers:cgdbus-user\""}));
        // Allowing again what is already allowed changes nothing.
        auto before = f.state_text();
        auto again = f.ctl({"user", "allow", "customers", "cgdbus-admin"});
        CHECK(again.rc == 0);
        CHECK(contains(again.out, "already allowed"));
        CHECK(f.state_text() == before);
    }

    SECTION("device allow, list, revoke") {
        CHECK(f.ctl({"device", "allow", "printer", "office-2f"}).rc == 0);
        CHECK(f.ctl({"device", "allow", "client", "customers", "10.1.0.0/16"}).rc == 0);
        CHECK(f.ctl({"device", "allow", "client", "customers", "2001:db8::/32"}).rc == 0);
        CHECK(f.ctl({"device", "allow", "client", "medical", "pc-17.example.jp"}).rc == 0);
        auto l = f.ctl({"device", "list", "--json"});
        REQUIRE(l.rc == 0);
        auto devices = parse(l.out).as_array();
        std::vector<std::string> seen;
        for (const auto& d : devices) seen.push_back(d["kind"].as_string() + " " + d["zone"].as_string() + " " + d["value"].as_string() + " " + d["origin"].as_string());
        INFO(l.out);
        CHECK(std::find(seen.begin(), seen.end(), "printer  secure-3f policy") != seen.end());
        CHECK(std::find(seen.begin(), seen.end(), "printer  office-2f state") != seen.end());
        CHECK(std::find(seen.begin(), seen.end(), "client customers 192.168.10.0/24 policy") != seen.end());
        CHECK(std::find(seen.begin(), seen.end(), "client customers 10.1.0.0/16 state") != seen.end());
        CHECK(std::find(seen.begin(), seen.end(), "client customers 2001:db8::/32 state") != seen.end());
        CHECK(std::find(seen.begin(), seen.end(), "client medical pc-17.example.jp state") != seen.end());
        auto only = f.ctl({"device", "list", "printer", "--json"});
        CHECK(parse(only.out).as_array().size() == 2);
        auto table = f.ctl({"device", "list", "client", "--zone", "customers"});
        CHECK(contains(table.out, "10.1.0.0/16"));
        CHECK_FALSE(contains(table.out, "pc-17"));

        CHECK(f.ctl({"device", "revoke", "client", "customers", "10.1.0.0/16"}).rc == 0);
        CHECK(f.ctl({"device", "revoke", "printer", "office-2f"}).rc == 0);
        CHECK_FALSE(contains(f.state_text(), "10.1.0.0/16"));
        CHECK_FALSE(contains(f.state_text(), "office-2f"));
        CHECK(contains(f.state_text(), "2001:db8::/32"));
        CHECK(f.wait_exported({"\"admin_action\":\"device.revoke\"", "office-2f"}));
    }

    SECTION("grant add, list, revoke") {
        // Bounded by the clock before and after the call (regression: a call that took
        // over a second on a loaded machine failed a fixed ±1 s window).
        const auto before = static_cast<std::int64_t>(::time(nullptr));
        auto a = f.ctl({"grant", "add", "customers", "cgdbus-reader", "--duration", "2h", "--reason", "ticket 4711", "--json"});
        const auto after = static_cast<std::int64_t>(::time(nullptr));
        INFO(describe(a));
        REQUIRE(a.rc == 0);
        auto expires = parse(a.out)["expires_at"].as_int();
        CHECK(expires >= before + 7200);
        CHECK(expires <= after + 7200);
        auto l = f.ctl({"grant", "list", "--json"});
        auto grants = parse(l.out).as_array();
        REQUIRE(grants.size() == 1);
        CHECK(grants[0]["user"].as_string() == "cgdbus-reader");
        CHECK(grants[0]["reason"].as_string() == "ticket 4711");
        CHECK(contains(f.ctl({"grant", "list"}).out, "ticket 4711"));
        CHECK(f.wait_exported({"\"admin_action\":\"grant.add\"", "ticket 4711"}));
        auto rv = f.ctl({"grant", "revoke", "customers", "cgdbus-reader"});
        INFO(describe(rv));
        CHECK(rv.rc == 0);
        CHECK(parse(f.ctl({"grant", "list", "--json"}).out).as_array().empty());
        CHECK_FALSE(contains(f.state_text(), "cgdbus-reader"));
    }

    SECTION("print held, approve, reject") {
        auto h = f.ctl({"print", "held", "--json"});
        REQUIRE(h.rc == 0);
        CHECK(parse(h.out).as_array().empty());
        CHECK(contains(f.ctl({"print", "held"}).out, "(none)"));
        // No print gate holds jobs yet in this daemon: both verbs say which job is unknown.
        expect_refused(f, {"print", "approve", "17"}, std::string(k_err) + "NotFound", "'17'");
        expect_refused(f, {"print", "reject", "17", "--reason", "customer list"}, std::string(k_err) + "NotFound");
    }
}

TEST_CASE("dbus: unprivileged callers are refused and recorded, custguard-admin members may manage", "[dbus][host]") {
    REQUIRE_ROOT();
    Fixture f;
    const auto& acc = accounts();
    REQUIRE(f.ctl({"user", "allow", "customers", "cgdbus-reader"}).rc == 0);
    const auto state = f.state_text();

    for (const auto& args : std::vector<std::vector<std::string>>{
             {"status"},
             {"policy", "show"},
             {"zone", "list"},
             {"user", "allow", "customers", "cgdbus-user"},
             {"user", "revoke", "customers", "cgdbus-reader"},
             {"user", "list"},
             {"device", "allow", "client", "customers", "10.9.0.0/16"},
             {"grant", "add", "customers", "cgdbus-user", "--duration", "1h", "--reason", "me"},
             {"grant", "list"},
             {"print", "held"},
             {"policy", "reload"}}) {
        auto r = f.ctl(args, acc.user);
        INFO(args[0] << " " << (args.size() > 1 ? args[1] : "") << "\n" << describe(r));
        CHECK(r.rc == 4);
        CHECK(contains(r.err, "custguard-admin"));
    }
    auto j = f.ctl({"user", "allow", "customers", "cgdbus-user", "--json"}, acc.user);
    CHECK(j.rc == 4);
    CHECK(parse(j.out)["error"].as_string() == std::string(k_err) + "AccessDenied");
    CHECK(f.state_text() == state);
    CHECK(f.wait_exported({"\"admin_action\":\"access_denied\"", "\"name\":\"cgdbus-user\"",
                           "org.custguard1.AllowUser"}));

    // A member of custguard-admin (supplementary group) may manage, and is named in the record.
    auto ok = f.ctl({"user", "allow", "customers", "cgdbus-user"}, acc.admin);
    INFO(describe(ok));
    CHECK(ok.rc == 0);
    CHECK(contains(f.state_text(), "added_by = 'cgdbus-admin'"));
    CHECK(f.wait_exported({"\"admin_action\":\"user.allow\"", "\"name\":\"cgdbus-admin\""}));
    CHECK(f.ctl({"status", "--json"}, acc.admin).rc == 0);
    CHECK(f.ctl({"grant", "add", "medical", "cgdbus-reader", "-d", "10m", "-r", "audit"}, acc.admin).rc == 0);

    // Only root may own the name (the shipped D-Bus policy): another user is refused by
    // dbus-daemon itself. The child runs sd-bus, which allocates: safe only while this
    // process has no other thread (see support/exec_plan.hpp).
    REQUIRE(cgtest::thread_count() == 1);
    pid_t child = ::fork();
    if (child == 0) {
        const auto& c = acc.user;
        if (::setgroups(c.groups.size(), c.groups.data()) != 0 || ::setresgid(c.gid, c.gid, c.gid) != 0 ||
            ::setresuid(c.uid, c.uid, c.uid) != 0)
            ::_exit(120);
        sd_bus* raw = nullptr;
        if (sd_bus_new(&raw) < 0 || sd_bus_set_address(raw, f.bus_address().c_str()) < 0 ||
            sd_bus_set_bus_client(raw, 1) < 0 || sd_bus_start(raw) < 0)
            ::_exit(121);
        int r = sd_bus_request_name(raw, "org.custguard1", SD_BUS_NAME_QUEUE);
        ::_exit(r == -EACCES ? 0 : 122);
    }
    int child_status = 0;
    ::waitpid(child, &child_status, 0);
    CHECK(WIFEXITED(child_status));
    CHECK(WEXITSTATUS(child_status) == 0);

    // Introspection is open to everyone (the D-Bus policy allows it). --xml-interface: the
    // property values plain introspect also shows are custguard-admin's (api_test.cpp).
    int rc = std::system(("DBUS_SYSTEM_BUS_ADDRESS=" + f.bus_address() +
                          " setpriv --reuid=cgdbus-user --regid=cgdbus-user --clear-groups "
                          "busctl --system introspect --xml-interface org.custguard1 /org/custguard1 >/dev/null 2>&1")
                             .c_str());
    CHECK(rc == 0);
}

// Regression: with more than 64 KiB in custguard-admin's /etc/group line the control
// plane's fixed-size lookup failed with ERANGE, took it for "no such group" and refused
// every member. The group is enlarged in this process's private mount namespace only.
TEST_CASE("dbus: members of a custguard-admin group larger than 64 KiB may manage", "[dbus][host]") {
    REQUIRE_ROOT();
    const auto& acc = accounts();  // before the bind: useradd rewrites /etc/group
    cgtest::BigGroup big("custguard-admin", 6000);
    REQUIRE(big.line_size() > 65536);
    Fixture f;
    auto ok = f.ctl({"user", "allow", "customers", "cgdbus-user"}, acc.admin);
    INFO(describe(ok));
    CHECK(ok.rc == 0);
    CHECK(contains(f.state_text(), "added_by = 'cgdbus-admin'"));
    // Still refused: a user who is not a member.
    auto refused = f.ctl({"user", "list"}, acc.user);
    CHECK(refused.rc == 4);
    CHECK(contains(refused.err, "custguard-admin"));
}

TEST_CASE("dbus: bad input gives a named error and changes nothing", "[dbus][host]") {
    REQUIRE_ROOT();
    Fixture f;
    // Start with a non-empty state so "unchanged" is meaningful.
    REQUIRE(f.ctl({"user", "allow", "customers", "cgdbus-reader"}).rc == 0);
    REQUIRE(f.ctl({"device", "allow", "client", "customers", "10.2.0.0/16"}).rc == 0);
    REQUIRE_FALSE(f.state_text().empty());
    const std::string E = k_err;

    expect_refused(f, {"user", "allow", "nosuchzone", "cgdbus-user"}, E + "UnknownZone", "customers, medical");
    expect_refused(f, {"user", "allow", "customers", "no-such-user-xyz"}, E + "UnknownUser", "no-such-user-xyz");
    expect_refused(f, {"user", "allow", "customers", "%no-such-group-xyz"}, E + "UnknownUser");
    expect_refused(f, {"user", "allow", "customers", "bad name"}, E + "InvalidArgument");
    expect_refused(f, {"user", "allow", (f.data() / "other" / "o.txt").string(), "cgdbus-user"}, E + "UnknownZone",
                   "no zone protects");
    expect_refused(f, {"user", "allow", "/tmp/../etc", "cgdbus-user"}, E + "InvalidArgument");
    expect_refused(f, {"user", "revoke", "customers", "cgdbus-admin"}, E + "PolicyRefused",
                   f.policy_file().string() + ":9:");
    expect_refused(f, {"user", "revoke", "medical", "%custguard-admin"}, E + "PolicyRefused", f.policy_file().string());
    expect_refused(f, {"user", "revoke", "customers", "cgdbus-user"}, E + "NotFound");
    expect_refused(f, {"user", "list", "nosuchzone"}, E + "UnknownZone");

    expect_refused(f, {"device", "allow", "client", "customers", "10.0.0.1/8"}, E + "InvalidArgument", "10.0.0.1/8");
    expect_refused(f, {"device", "allow", "client", "customers", "300.1.2.3"}, E + "InvalidArgument");
    expect_refused(f, {"device", "allow", "client", "customers", "10.0.0.0/33"}, E + "InvalidArgument");
    expect_refused(f, {"device", "allow", "client", "customers", "bad host!"}, E + "InvalidArgument");
    expect_refused(f, {"device", "allow", "client", "nosuchzone", "10.3.0.0/16"}, E + "UnknownZone");
    // Regression: media devices were stored and shown but enforced nowhere. Every verb that
    // names them is refused with the reason, whatever the value, and nothing is stored.
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"device", "allow", "media", "medical", "0781:5581:4C530001"},
             {"device", "allow", "media", "medical", "0781:5581"},
             {"device", "allow", "media", "medical", "usb-stick"},
             {"device", "revoke", "media", "medical", "0781:5581"},
             {"device", "list", "media"}})
        expect_refused(f, args, E + "InvalidArgument",
                       "media devices are refused: removable media are not controlled by custguard in this version");
    expect_refused(f, {"device", "list", "scanner"}, E + "InvalidArgument", "use printer or client");
    expect_refused(f, {"device", "allow", "printer", "bad/queue"}, E + "InvalidArgument");
    expect_refused(f, {"device", "revoke", "printer", "secure-3f"}, E + "PolicyRefused", f.policy_file().string());
    expect_refused(f, {"device", "revoke", "client", "customers", "192.168.10.0/24"}, E + "PolicyRefused",
                   f.policy_file().string() + ":10:");
    expect_refused(f, {"device", "revoke", "client", "customers", "10.99.0.0/16"}, E + "NotFound");

    expect_refused(f, {"grant", "add", "customers", "cgdbus-user", "--duration", "0", "--reason", "x"},
                   E + "InvalidArgument", "positive duration");
    expect_refused(f, {"grant", "add", "customers", "cgdbus-user", "--duration", "0m", "--reason", "x"},
                   E + "InvalidArgument");
    expect_refused(f, {"grant", "add", "customers", "cgdbus-user", "--duration=-30m", "--reason", "x"},
                   E + "InvalidArgument", "-1800");
    expect_refused(f, {"grant", "add", "customers", "cgdbus-user", "--duration", "31d", "--reason", "x"},
                   E + "InvalidArgument", "30 days");
    expect_refused(f, {"grant", "add", "customers", "cgdbus-user", "--duration", "1h", "--reason", " "},
                   E + "InvalidArgument", "reason");
    expect_refused(f, {"grant", "add", "customers", "%custguard-admin", "--duration", "1h", "--reason", "x"},
                   E + "InvalidArgument", "not a group");
    expect_refused(f, {"grant", "add", "customers", "no-such-user-xyz", "--duration", "1h", "--reason", "x"},
                   E + "UnknownUser");
    expect_refused(f, {"grant", "add", "nosuchzone", "cgdbus-user", "--duration", "1h", "--reason", "x"},
                   E + "UnknownZone");
    expect_refused(f, {"grant", "add", "/srv/nowhere", "cgdbus-user", "--duration", "1h", "--reason", "x"},
                   E + "UnknownZone");
    expect_refused(f, {"grant", "revoke", "customers", "cgdbus-user"}, E + "NotFound");

    // Malformed durations and missing arguments are usage errors, caught before the bus.
    auto before = f.state_text();
    CHECK(f.ctl({"grant", "add", "customers", "cgdbus-user", "--duration", "soon", "--reason", "x"}).rc == 2);
    CHECK(f.ctl({"grant", "add", "customers", "cgdbus-user"}).rc == 2);
    CHECK(f.ctl({"device", "allow", "client", "customers"}).rc == 2);
    CHECK(f.ctl({"history", "--since", "last tuesday"}).rc == 2);
    CHECK(f.ctl({"nonsense"}).rc == 2);
    CHECK(f.state_text() == before);
}

// Regression: media devices stored by earlier versions were loaded and never enforced. A
// state file that still holds one makes reload and check fail with its position and what
// to do; the running policy stays in force.
TEST_CASE("dbus: a media device left in the state file is refused, not ignored", "[dbus][host]") {
    REQUIRE_ROOT();
    Fixture f;
    REQUIRE(f.ctl({"device", "allow", "client", "customers", "10.2.0.0/16"}).rc == 0);
    {
        std::ofstream(f.state_file(), std::ios::app)
            << "\n[[device]]\nkind = \"media\"\nzone = \"medical\"\nvalue = \"0781:5581:4C530001\"\n";
    }
    const std::string where = f.state_file().string() + ":";
    auto check = f.ctl({"policy", "check"});
    INFO(describe(check));
    CHECK(check.rc == 1);
    CHECK(contains(check.out + check.err, where));
    CHECK(contains(check.out + check.err, "removable-medium entry: removable media are not controlled by custguard"));
    auto reload = f.ctl({"policy", "reload", "--json"});
    INFO(describe(reload));
    CHECK(reload.rc == 1);
    CHECK(parse(reload.out)["error"].as_string() == std::string(k_err) + "PolicyRefused");
    CHECK(contains(reload.err, "delete this [[device]] entry (kind = \"media\")"));
    // The policy in force is the one before: its state client is still there.
    CHECK(contains(f.ctl({"device", "list", "client"}).out, "10.2.0.0/16"));
}

TEST_CASE("dbus: a grant really opens and then closes access (fanotify)", "[dbus][host]") {
    REQUIRE_ROOT();
    Fixture f;
    const auto& acc = accounts();
    const auto file = f.data() / "customers" / "c1.txt";
    const auto medical = f.data() / "customers" / "medical" / "m1.txt";

    CHECK(Fixture::read_as(acc.admin, file) == 0);  // allowed by the policy
    CHECK(Fixture::read_as(acc.reader, file) == EPERM);
    CHECK(Fixture::read_as(acc.reader, f.data() / "other" / "o.txt") == 0);

    // A user allowed through custguardctl can read, and not after the revoke.
    REQUIRE(f.ctl({"user", "allow", "customers", "cgdbus-reader"}).rc == 0);
    CHECK(Fixture::read_as(acc.reader, file) == 0);
    REQUIRE(f.ctl({"user", "revoke", "customers", "cgdbus-reader"}).rc == 0);
    CHECK(Fixture::read_as(acc.reader, file) == EPERM);

    // A grant opens access until it expires, in the enforcer, and is then pruned.
    auto g = f.ctl({"grant", "add", "customers", "cgdbus-reader", "--duration", "3s", "--reason", "ticket 99", "--json"});
    INFO(describe(g));
    REQUIRE(g.rc == 0);
    auto expires = parse(g.out)["expires_at"].as_int();
    CHECK(Fixture::read_as(acc.reader, file) == 0);
    CHECK(Fixture::read_as(acc.reader, medical) == EPERM);  // the grant is for one zone only
    CHECK(contains(f.state_text(), "cgdbus-reader"));
    while (::time(nullptr) <= expires) std::this_thread::sleep_for(100ms);
    CHECK(Fixture::read_as(acc.reader, file) == EPERM);
    // The daemon's timer removes the expired grant from the state and records it.
    CHECK(f.wait_exported({"\"admin_action\":\"grant.expire\"", "customers:cgdbus-reader"}, 5s));
    CHECK_FALSE(contains(f.state_text(), "cgdbus-reader"));
    CHECK(parse(f.ctl({"grant", "list", "--json"}).out).as_array().empty());

    // The denials and the allowed read were recorded with the user and the path.
    INFO("exported:\n" << exported_text(f));
    CHECK(f.wait_exported({"\"event\":\"access\"", "cgdbus-reader", "c1.txt", "\"decision\":\"deny\""}));
    CHECK(f.wait_exported({"\"event\":\"access\"", "cgdbus-reader", "c1.txt", "\"decision\":\"allow\""}));

    // A revoked grant closes access at once.
    REQUIRE(f.ctl({"grant", "add", "customers", "cgdbus-reader", "-d", "1h", "-r", "short"}).rc == 0);
    CHECK(Fixture::read_as(acc.reader, file) == 0);
    REQUIRE(f.ctl({"grant", "revoke", "customers", "cgdbus-reader"}).rc == 0);
    CHECK(Fixture::read_as(acc.reader, file) == EPERM);
}

// Client grants (custguardctl grant add ZONE --client CLIENT): only in zones that list
// their clients, validated like allow_clients, replaced by a new grant for the same client,
// listed, revoked, recorded as admin changes; a refused one changes nothing.
TEST_CASE("dbus: client grants are added, listed, replaced and revoked, and refused where allow_clients is absent",
          "[dbus][host][clients]") {
    REQUIRE_ROOT();
    Fixture f;
    const std::string E = k_err;
    // medical has no allow_clients: every client may already reach it.
    expect_refused(f, {"grant", "add", "medical", "--client", "192.0.2.7", "-d", "1h", "-r", "visit"},
                   E + "InvalidArgument", "zone medical has no allow_clients");
    expect_refused(f, {"grant", "add", "medical", "--client", "192.0.2.7", "-d", "1h", "-r", "visit"},
                   E + "InvalidArgument", "grant add medical USER");
    expect_refused(f, {"grant", "add", "customers", "--client", "10.0.0.1/8", "-d", "1h", "-r", "x"},
                   E + "InvalidArgument", "not a client machine");
    expect_refused(f, {"grant", "add", "customers", "--client", "bad host!", "-d", "1h", "-r", "x"},
                   E + "InvalidArgument");
    expect_refused(f, {"grant", "add", "customers", "--client", "192.0.2.7", "-d", "0", "-r", "x"},
                   E + "InvalidArgument", "positive duration");
    expect_refused(f, {"grant", "add", "customers", "--client", "192.0.2.7", "-d", "31d", "-r", "x"},
                   E + "InvalidArgument", "30 days");
    expect_refused(f, {"grant", "add", "customers", "--client", "192.0.2.7", "-d", "1h", "-r", " "},
                   E + "InvalidArgument", "reason");
    expect_refused(f, {"grant", "add", "nosuchzone", "--client", "192.0.2.7", "-d", "1h", "-r", "x"},
                   E + "UnknownZone");
    expect_refused(f, {"grant", "revoke", "customers", "--client", "192.0.2.7"}, E + "NotFound");
    // Bus arguments are bounded before the method runs.
    expect_refused(f, {"grant", "add", "customers", "--client", std::string(300, 'a'), "-d", "1h", "-r", "x"},
                   E + "InvalidArgument", "argument 'client' of AddClientGrant is 300 bytes long");

    auto a = f.ctl({"grant", "add", "customers", "--client", "192.0.2.7", "-d", "2h", "-r", "audit visit", "--json"});
    INFO(describe(a));
    REQUIRE(a.rc == 0);
    CHECK(parse(a.out)["client"].as_string() == "192.0.2.7");
    CHECK(contains(f.state_text(), "client = '192.0.2.7'"));
    // A user grant and a client grant side by side.
    REQUIRE(f.ctl({"grant", "add", "customers", "cgdbus-reader", "-d", "1h", "-r", "ticket 5"}).rc == 0);
    auto grants = parse(f.ctl({"grant", "list", "--json"}).out).as_array();
    REQUIRE(grants.size() == 2);
    int clients = 0;
    for (const auto& g : grants)
        if (g["client"].as_string() == "192.0.2.7") {
            ++clients;
            CHECK(g["user"].as_string().empty());
            CHECK(g["reason"].as_string() == "audit visit");
            CHECK(g["remaining_seconds"].as_int() > 7000);
        }
    CHECK(clients == 1);
    CHECK(contains(f.ctl({"grant", "list"}).out, "client 192.0.2.7"));
    CHECK(contains(f.ctl({"policy", "show"}).out, "client 192.0.2.7 until"));
    CHECK(f.wait_exported({"\"admin_action\":\"grant.add\"", "customers:client:192.0.2.7", "audit visit"}));

    // A new grant for the same client (written another way) replaces the old one.
    REQUIRE(f.ctl({"grant", "add", "customers", "--client", "192.0.2.7/32", "-d", "10m", "-r", "shorter"}).rc == 0);
    grants = parse(f.ctl({"grant", "list", "customers", "--json"}).out).as_array();
    REQUIRE(grants.size() == 2);
    for (const auto& g : grants)
        if (!g["client"].as_string().empty()) {
            CHECK(g["reason"].as_string() == "shorter");
            CHECK(g["remaining_seconds"].as_int() <= 600);
        }

    auto rv = f.ctl({"grant", "revoke", "customers", "--client", "192.0.2.7"});
    INFO(describe(rv));
    REQUIRE(rv.rc == 0);
    CHECK(contains(rv.out, "grant of client 192.0.2.7 in zone customers revoked"));
    CHECK(f.wait_exported({"\"admin_action\":\"grant.revoke\"", "customers:client:192.0.2.7"}));
    grants = parse(f.ctl({"grant", "list", "--json"}).out).as_array();
    REQUIRE(grants.size() == 1);
    CHECK(grants[0]["user"].as_string() == "cgdbus-reader");
    // Revoking the user's grant leaves no client grant behind either way.
    REQUIRE(f.ctl({"grant", "revoke", "customers", "cgdbus-reader"}).rc == 0);
    CHECK(parse(f.ctl({"grant", "list", "--json"}).out).as_array().empty());
}

// A client grant for a zone that has since lost allow_clients is ignored with a warning
// (listing the machine would shut out every other client), never enforced; it can still
// be revoked.
TEST_CASE("dbus: a client grant left for a zone without allow_clients is not enforced", "[dbus][host][clients]") {
    REQUIRE_ROOT();
    Fixture f;
    REQUIRE(f.ctl({"grant", "add", "customers", "--client", "192.0.2.7", "-d", "1h", "-r", "visit"}).rc == 0);
    CHECK(contains(f.ctl({"policy", "show"}).out, "client 192.0.2.7"));
    auto policy = cgtest::slurp(f.policy_file());
    const std::string line = "allow_clients = [\"192.168.10.0/24\"]\n";
    REQUIRE(contains(policy, line));
    policy.erase(policy.find(line), line.size());
    cgtest::spit(f.policy_file(), policy);
    auto reload = f.ctl({"policy", "reload", "--json"});
    INFO(describe(reload));
    REQUIRE(reload.rc == 0);
    CHECK(contains(reload.out, "client grant for zone 'customers', which has no allow_clients"));
    CHECK(contains(reload.out, "custguardctl grant revoke customers --client 192.0.2.7"));
    CHECK_FALSE(contains(f.ctl({"policy", "show"}).out, "client 192.0.2.7"));
    auto revoke = f.ctl({"grant", "revoke", "customers", "--client", "192.0.2.7"});
    INFO(describe(revoke));
    REQUIRE(revoke.rc == 0);
    CHECK_FALSE(contains(f.state_text(), "192.0.2.7"));
}

TEST_CASE("dbus: history and events read the journal", "[dbus][host]") {
    REQUIRE_ROOT();
    Fixture f;
    const auto& acc = accounts();
    const auto file = f.data() / "customers" / "c1.txt";
    const std::string ns = f.journal_namespace();

    // Follow from the start; it must see what happens next.
    auto follow_out = f.dir() / "follow.out";
    pid_t follower = f.ctl_background({"events", "--follow", "--json", "--lines", "0", "--namespace", ns}, follow_out);
    std::this_thread::sleep_for(500ms);

    CHECK(Fixture::read_as(acc.reader, file) == EPERM);
    REQUIRE(f.ctl({"user", "allow", "customers", "cgdbus-reader"}).rc == 0);
    CHECK(Fixture::read_as(acc.reader, file) == 0);
    CHECK(Fixture::read_as(acc.admin, f.data() / "customers" / "medical" / "m1.txt") == 0);
    REQUIRE(f.wait_exported({"\"decision\":\"allow\"", "m1.txt"}));

    // "Who read the files of this customer?"
    CtlResult h;
    std::vector<Json> rows;
    for (int i = 0; i < 50; ++i) {  // journald writes asynchronously
        h = f.ctl({"history", "--namespace", ns, "--path", file.string(), "--json"});
        rows = parse(h.out).as_array();
        if (rows.size() >= 2) break;
        std::this_thread::sleep_for(100ms);
    }
    INFO(describe(h));
    REQUIRE(h.rc == 0);
    REQUIRE(rows.size() == 2);
    CHECK(rows[0]["user"].as_string() == "cgdbus-reader");
    CHECK(rows[0]["decision"].as_string() == "deny");
    CHECK(rows[1]["decision"].as_string() == "allow");
    CHECK(rows[1]["path"].as_string() == file.string());

    auto by_user = parse(f.ctl({"history", "--namespace", ns, "--user", "cgdbus-admin", "--zone", "medical", "--json"}).out);
    REQUIRE(by_user.as_array().size() == 1);
    CHECK(contains(by_user.as_array()[0]["path"].as_string(), "m1.txt"));
    auto dir = parse(f.ctl({"history", "--namespace", ns, "--path", (f.data() / "customers").string(), "--event", "access", "--json"}).out);
    CHECK(dir.as_array().size() == 3);
    auto admin = parse(f.ctl({"history", "--namespace", ns, "--event", "admin_change", "--json"}).out);
    REQUIRE(admin.as_array().size() >= 1);
    CHECK(admin.as_array()[0]["admin_action"].as_string() == "user.allow");
    CHECK(parse(f.ctl({"history", "--namespace", ns, "--since", "2099-01-01", "--json"}).out).as_array().empty());
    CHECK(parse(f.ctl({"history", "--namespace", ns, "--until", "2000-01-01", "--json"}).out).as_array().empty());
    CHECK(parse(f.ctl({"history", "--namespace", ns, "--since", "-1h", "--until", "now", "--event", "access", "--json"}).out)
              .as_array()
              .size() == 3);
    auto table = f.ctl({"history", "--namespace", ns, "--path", file.string()});
    CHECK(contains(table.out, "TIME"));
    CHECK(contains(table.out, "cgdbus-reader"));
    CHECK(contains(table.out, "deny"));

    auto last = f.ctl({"events", "--namespace", ns, "--lines", "2", "--json"});
    REQUIRE(last.rc == 0);
    std::istringstream lines(last.out);
    int n = 0;
    for (std::string line; std::getline(lines, line);) n += !line.empty();
    CHECK(n == 2);

    bool seen = false;
    std::string followed;
    for (int i = 0; i < 50 && !seen; ++i) {
        std::ifstream in(follow_out);
        std::stringstream ss;
        ss << in.rdbuf();
        followed = ss.str();
        seen = contains(followed, "\"admin_action\":\"user.allow\"") && contains(followed, "m1.txt");
        if (!seen) std::this_thread::sleep_for(100ms);
    }
    INFO("events --follow printed (stdout and stderr):\n" << followed);
    CHECK(seen);
    ::kill(follower, SIGTERM);
    int status = 0;
    ::waitpid(follower, &status, 0);
    CHECK(WIFEXITED(status));
}

TEST_CASE("dbus: without a bus the daemon runs on and custguardctl says it is unreachable", "[dbus][host]") {
    REQUIRE_ROOT();
    Fixture f(Fixture::Options{false, false});
    CHECK(contains(f.daemon_log(), "control plane off"));
    // Still enforcing.
    CHECK(Fixture::read_as(accounts().reader, f.data() / "customers" / "c1.txt") == EPERM);
    auto r = f.ctl({"status"});
    CHECK(r.rc == 3);
    CHECK(contains(r.err, "system bus"));
    CHECK(::kill(f.daemon_pid(), 0) == 0);
}

TEST_CASE("dbus: custguardd --audit cross-checks the enforcer with a watch rule per zone, shown by status",
          "[dbus][host]") {
    REQUIRE_ROOT();
    Fixture::Options o;
    o.daemon_args = {"--audit"};
    Fixture f(o);
    auto r = f.ctl({"status", "--json"});
    INFO(describe(r) << f.daemon_log());
    REQUIRE(r.rc == 0);
    auto s = parse(r.out);
    CHECK(s["audit"]["mode"].as_string() == "cross-check");
    CHECK(s["audit"]["rules"].as_int() >= 2);
    CHECK(contains(f.ctl({"status"}).out, "cross-check, "));
}

TEST_CASE("custguardctl policy check --no-resolve: unknown accounts are warnings, other errors still refuse",
          "[dbus][host]") {
    REQUIRE_ROOT();
    Fixture f(Fixture::Options{false, false});
    const auto file = f.dir() / "buildhost.toml";
    {
        std::ofstream out(file);
        out << "[[zone]]\nname = \"z\"\npaths = [\"/srv/z\"]\nallow_users = [\"%cg-no-such-group\"]\n";
    }
    auto strict = f.ctl({"policy", "check", file.string()});
    CHECK(strict.rc == 1);
    CHECK(contains(strict.err, "unknown group 'cg-no-such-group'"));
    auto offline = f.ctl({"policy", "check", "--no-resolve", file.string()});
    INFO(describe(offline));
    CHECK(offline.rc == 0);
    CHECK(contains(offline.err, file.string() + ":4:16: warning: group 'cg-no-such-group' is not known on this machine"));
    CHECK(contains(offline.out, ": OK, 1 zone, 1 warning"));
    {
        std::ofstream out(file, std::ios::app);
        out << "alow = 1\n";
    }
    CHECK(f.ctl({"policy", "check", "--no-resolve", file.string()}).rc == 1);
    auto no_file = f.ctl({"policy", "check", "--no-resolve"});
    CHECK(no_file.rc == 2);
    CHECK(contains(no_file.err, "name them"));
}

TEST_CASE("dbus: a daemon that is gone is reported as unreachable", "[dbus][host]") {
    REQUIRE_ROOT();
    Fixture f(Fixture::Options{true, false});
    f.stop_daemon();
    auto r = f.ctl({"zone", "list"});
    INFO(describe(r));
    CHECK(r.rc == 3);
    CHECK(contains(r.err, "not reachable"));
}

TEST_CASE("dbus: held print jobs store", "[dbus][host]") {
    custguard::daemon::HeldJobs jobs;
    std::vector<std::string> decided;
    jobs.set_decision_handler([&](const custguard::daemon::HeldJob& j, custguard::daemon::JobDecision d,
                                  const std::string& by, const std::string& reason) {
        decided.push_back(j.id + (d == custguard::daemon::JobDecision::approved ? " approved by " : " rejected by ") +
                          by + ": " + reason);
    });
    CHECK(jobs.hold({"12", "secure-3f", "alice", 1000, "list.pdf", 3, "10.0.0.5", {{"email", 4}}, 1}));
    CHECK_FALSE(jobs.hold({"12", "other", "bob", 1001, "", 1, "", {}, 2}));
    CHECK(jobs.hold({"13", "secure-3f", "bob", 1001, "x", 1, "", {}, 2}));
    CHECK(jobs.list().size() == 2);
    CHECK(jobs.find("13"));
    CHECK_FALSE(jobs.decide("99", custguard::daemon::JobDecision::approved, "root", ""));
    auto j = jobs.decide("12", custguard::daemon::JobDecision::approved, "root", "ok");
    REQUIRE(j);
    CHECK(j->detector_hits.at("email") == 4);
    CHECK(jobs.decide("13", custguard::daemon::JobDecision::rejected, "root", "no"));
    CHECK(jobs.list().empty());
    CHECK(decided == std::vector<std::string>{"12 approved by root: ok", "13 rejected by root: no"});
}

TEST_CASE("dbus: JSON round trip", "[dbus][host]") {
    Json j = Json::object()
                 .set("s", "a\"b\\c\n\x01 顧客")
                 .set("i", -42)
                 .set("b", true)
                 .set("n", nullptr)
                 .set("a", Json::array().push(1).push("x"));
    auto back = Json::parse(j.dump());
    REQUIRE(back);
    CHECK(back->dump() == j.dump());
    CHECK((*back)["s"].as_string() == "a\"b\\c\n\x01 顧客");
    CHECK(Json::parse(j.dump(2))->dump() == j.dump());
    CHECK(Json::parse("{\"u\":\"\\u00e9\\ud83d\\ude00\"}")->operator[]("u").as_string() == "é😀");
    CHECK_FALSE(Json::parse("{\"a\":1,}"));
    CHECK_FALSE(Json::parse("[1 2]"));
    CHECK_FALSE(Json::parse("\"unterminated"));
}

std::array<std::string, 3> cgdbus::check_print_job(const Fixture& f, const std::string& job, const std::string& file,
                                                   const std::string& user) {
    auto bus = f.connect_bus();
    REQUIRE(bus);
    sd_bus* raw = bus.get();
    sd_bus_message* m = nullptr;
    REQUIRE(sd_bus_message_new_method_call(raw, &m, "org.custguard1", "/org/custguard1", "org.custguard1",
                                           "CheckPrintJob") >= 0);
    custguard::api::MessagePtr msg(m);
    REQUIRE(sd_bus_message_open_container(m, 'a', "{ss}") >= 0);
    for (auto [k, v] : std::vector<std::pair<const char*, std::string>>{
             {"job", job}, {"printer", "office-2f"}, {"user", user}, {"title", "customer list " + job},
             {"content_type", "text/plain"}, {"client", "10.0.0.5"}})
        REQUIRE(sd_bus_message_append(m, "{ss}", k, v.c_str()) >= 0);
    REQUIRE(sd_bus_message_close_container(m) >= 0);
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    REQUIRE(sd_bus_message_append(m, "h", fd) >= 0);
    ::close(fd);
    custguard::api::BusError err;
    sd_bus_message* reply = nullptr;
    int r = sd_bus_call(raw, m, 60'000'000, err.get(), &reply);
    INFO(err.name() << ": " << err.message());
    REQUIRE(r >= 0);
    custguard::api::MessagePtr rep(reply);
    const char *action = nullptr, *reason = nullptr, *hold = nullptr;
    REQUIRE(sd_bus_message_read(reply, "sss", &action, &reason, &hold) >= 0);
    return {action, reason, hold};
}

TEST_CASE("dbus: print jobs held by the print gate are listed, approved and rejected", "[dbus][host]") {
    REQUIRE_ROOT();
    Fixture f;
    const std::string doc = CG_SOURCE_DIR "/tests/scan/data/customer_utf8.txt";
    for (const char* job : {"41", "42"}) {
        auto [action, reason, hold] = cgdbus::check_print_job(f, job, doc);
        INFO(reason);
        REQUIRE(action == "hold");
        CHECK_FALSE(hold.empty());
    }
    auto h = f.ctl({"print", "held", "--json"});
    INFO(describe(h));
    REQUIRE(h.rc == 0);
    auto jobs = parse(h.out).as_array();
    REQUIRE(jobs.size() == 2);
    CHECK(jobs[0]["printer"].as_string() == "office-2f");
    CHECK(jobs[0]["user"].as_string() == "cgdbus-user");
    CHECK(jobs[0]["detector_hits"]["email"].as_int() > 0);
    auto table = f.ctl({"print", "held"});
    CHECK(contains(table.out, "office-2f"));
    CHECK(contains(table.out, "email="));
    CHECK(f.ctl({"print", "held"}, accounts().user).rc == 4);
    CHECK(f.ctl({"print", "approve", jobs[0]["job"].as_string()}, accounts().user).rc == 4);

    auto a = f.ctl({"print", "approve", jobs[0]["job"].as_string(), "--comment", "checked with the manager"});
    INFO(describe(a));
    CHECK(a.rc == 0);
    CHECK(contains(a.out, "released"));
    auto r = f.ctl({"print", "reject", jobs[1]["job"].as_string(), "--reason", "customer list"});
    INFO(describe(r));
    CHECK(r.rc == 0);
    CHECK(contains(r.out, "cancelled"));
    CHECK(parse(f.ctl({"print", "held", "--json"}).out).as_array().empty());
    expect_refused(f, {"print", "approve", jobs[0]["job"].as_string()}, std::string(k_err) + "NotFound");
    INFO("exported:\n" << exported_text(f));
    CHECK(f.wait_exported({"\"admin_action\":\"print.approve\"", "checked with the manager"}));
    CHECK(f.wait_exported({"\"admin_action\":\"print.reject\"", "customer list"}));
    CHECK(f.wait_exported({"\"event\":\"print\"", "\"decision\":\"allow\"", "approved by root"}));
    CHECK(f.wait_exported({"\"event\":\"print\"", "\"decision\":\"deny\"", "rejected by root"}));
}

TEST_CASE("dbus: scan takes its defaults from the policy's [print]", "[dbus][host]") {
    const std::string doc = CG_SOURCE_DIR "/tests/scan/data/customer_utf8.txt";
    char tmpl[] = "/tmp/cgscan.XXXXXX";
    REQUIRE(::mkdtemp(tmpl));
    std::string dir = tmpl;
    {
        std::ofstream(dir + "/policy.toml") << "[print]\naction = \"hold\"\nthreshold = 1000\n";
    }
    auto run = [&](const std::string& args) {
        return std::system((std::string(CG_CUSTGUARDCTL " scan ") + args + " >/dev/null 2>&1").c_str()) >> 8;
    };
    CHECK(run("--policy " + dir + "/policy.toml " + doc) == 0);                   // below 1000 hits
    CHECK(run("--policy " + dir + "/policy.toml --threshold 3 " + doc) == 1);     // override
    CHECK(run("--policy " + dir + "/nonexistent.toml " + doc) == 2);
    CHECK(run("--policy " + dir + "/policy.toml " + dir + "/missing.txt") == 2);
    std::filesystem::remove_all(dir);
}

TEST_CASE("dbus: a daemon killed during changes leaves a whole state file", "[dbus][host]") {
    REQUIRE_ROOT();
    Fixture f(Fixture::Options{true, false});
    // A stream of changes from another process; the daemon is killed in the middle of it.
    // The child allocates (it runs custguardctl through cgtest::run): safe only while this
    // process has no other thread.
    REQUIRE(cgtest::thread_count() == 1);
    pid_t writer = ::fork();
    if (writer == 0) {
        // Stops at the first refused call: the daemon is gone.
        for (int i = 0; i < 200; ++i) {
            auto zone = i % 2 ? "customers" : "medical";
            if (f.ctl({"user", "allow", zone, "cgdbus-user"}).rc != 0 ||
                f.ctl({"device", "allow", "client", zone, "10." + std::to_string(i % 250) + ".0.0/16"}).rc != 0 ||
                f.ctl({"user", "revoke", zone, "cgdbus-user"}).rc != 0)
                break;
        }
        ::_exit(0);
    }
    // Kill once a few changes have landed, not after a fixed time (regression: on a loaded
    // machine the stream had made one change after 1.5 s, so no device was ever written).
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
        const auto t = f.state_text();
        std::size_t devices = 0;
        for (auto p = t.find("'10."); p != std::string::npos; p = t.find("'10.", p + 1)) ++devices;
        if (devices >= 3) break;
        std::this_thread::sleep_for(5ms);
    }
    f.kill_daemon();
    int status = 0;
    ::waitpid(writer, &status, 0);
    const auto text = f.state_text();
    REQUIRE_FALSE(text.empty());
    auto parsed = custguard::policy::parse_state(f.state_file().string(), text);
    INFO(text);
    REQUIRE(parsed);
    CHECK_FALSE(parsed->devices.empty());
    // No temporary files are left beside it that a later write could trip over.
    for (const auto& e : std::filesystem::directory_iterator(f.state_file().parent_path())) {
        auto name = e.path().filename().string();
        INFO(name);
        CHECK((name == "state.toml" || name.find("spool") != std::string::npos || e.is_directory() ||
               name.rfind(".state.toml", 0) == 0));
    }
    // The restarted daemon takes the state as it was last written.
    f.restart_daemon();
    auto devices = parse(f.ctl({"device", "list", "client", "--json"}).out).as_array();
    CHECK(devices.size() == parsed->devices.size() + 1);  // plus the policy's 192.168.10.0/24
}
