// Drop-in and state precedence, as documented in custguard.policy(5).
#include <catch2/catch.hpp>

#include "custguard/policy/state.hpp"
#include "fixtures.hpp"

using namespace custguard::policy;
using custguard::test::load_text;

namespace {
const char* k_main = R"(
[daemon]
enforcer = "fanotify"
[[zone]]
name = "customers"
paths = ["/srv/c"]
allow_users = ["alice"]
on_violation = "deny"
[print]
action = "hold"
threshold = 3
allow_printers = ["secure-3f"]
)";
}

TEST_CASE("drop-ins override scalars and extend lists in file order", "[policy][merge]") {
    auto loaded = load_text(k_main, {{"10-a.toml", "[daemon]\nenforcer = \"none\"\n[print]\nthreshold = 5\n"},
                                     {"20-b.toml", "[print]\nthreshold = 7\nallow_printers = [\"hr-2f\"]\n"
                                                   "[[zone]]\nname = \"customers\"\nallow_users = [\"bob\"]\n"
                                                   "paths = [\"/srv/c2\"]\n"}});
    REQUIRE(loaded);
    const auto& p = loaded->policy;
    CHECK(p.daemon.enforcer == EnforcerChoice::none);
    CHECK(p.print.threshold == 7);  // the later drop-in wins
    CHECK(p.print.allow_printers == std::vector<std::string>{"secure-3f", "hr-2f"});
    REQUIRE(p.zones.size() == 1);
    const auto& z = p.zones[0];
    REQUIRE(z.allow_users.size() == 2);
    CHECK(z.allow_users[1].name == "bob");
    CHECK(z.allow_users[1].origin.kind == OriginKind::dropin);
    CHECK(z.allow_users[1].origin.pos.file == "20-b.toml");
    CHECK(z.paths.size() == 2);
    CHECK(z.origin.pos.file == "policy.toml");
}

TEST_CASE("a drop-in can tighten a zone", "[policy][merge]") {
    auto loaded = load_text(k_main, {{"50.toml", "[[zone]]\nname = \"customers\"\nsensitivity = \"sensitive\"\n"}});
    REQUIRE(loaded);
    CHECK(loaded->policy.zones[0].sensitivity == Sensitivity::sensitive);
}

TEST_CASE("drop-in diagnostics name the drop-in file", "[policy][merge]") {
    auto loaded = load_text(k_main, {{"30-bad.toml", "[print]\n\nthreshold = \"x\"\n"}});
    REQUIRE_FALSE(loaded);
    CHECK(loaded.error().front().format().rfind("30-bad.toml:3:13: error:", 0) == 0);
}

TEST_CASE("state adds users, devices and grants but never removes", "[policy][merge]") {
    State s;
    s.users.push_back({"customers", "%sales", "root", 1});
    s.users.push_back({"customers", "alice", "root", 1});  // already in the policy
    s.devices.push_back({DeviceKind::client, "customers", "192.0.2.0/24", "root", 1});
    s.devices.push_back({DeviceKind::printer, "", "hr-2f", "root", 1});
    s.grants.push_back({"customers", "bob", 5000, "audit", "root", 1});
    auto loaded = load_text(k_main, {}, serialize_state(s), 1000);
    REQUIRE(loaded);
    const auto& p = loaded->policy;
    const auto& z = p.zones[0];
    REQUIRE(z.allow_users.size() == 2);
    CHECK(z.allow_users[0].origin.kind == OriginKind::policy);
    CHECK(z.allow_users[1].spelled() == "%sales");
    CHECK(z.allow_users[1].origin.kind == OriginKind::state);
    REQUIRE(z.allow_clients.size() == 1);
    CHECK(z.allow_clients[0].prefix == 24);
    CHECK(p.print.allow_printers == std::vector<std::string>{"secure-3f", "hr-2f"});
    REQUIRE(p.grants.size() == 1);
    CHECK(p.grants[0].uid == 1002);
}

TEST_CASE("stale state entries are warnings, not load failures", "[policy][merge]") {
    State s;
    s.users.push_back({"gone-zone", "alice", "root", 1});
    s.users.push_back({"customers", "deleted-user", "root", 1});
    auto loaded = load_text(k_main, {}, serialize_state(s));
    REQUIRE(loaded);
    CHECK(loaded->warnings.size() == 2);
    CHECK_THAT(loaded->warnings[0].message, Catch::Contains("unknown zone 'gone-zone'"));
    CHECK_THAT(loaded->warnings[1].message, Catch::Contains("unknown user 'deleted-user'"));
}

TEST_CASE("state round-trips through its text form", "[policy][state]") {
    State s;
    s.users.push_back({"z", "%g\"quoted\"", "root", 42});
    s.devices.push_back({DeviceKind::printer, "", "q1", "admin", 7});
    s.grants.push_back({"z", "bob", 99, "ticket #12, 顧客照会", "root", 5});
    auto parsed = parse_state("state.toml", serialize_state(s));
    REQUIRE(parsed);
    REQUIRE(parsed->users.size() == 1);
    CHECK(parsed->users[0].name == "%g\"quoted\"");
    CHECK(parsed->devices[0].kind == DeviceKind::printer);
    CHECK(parsed->grants[0].reason == "ticket #12, 顧客照会");
    CHECK(parsed->grants[0].expires_at == 99);
}

TEST_CASE("a corrupt state file is an error with its position", "[policy][state]") {
    auto parsed = parse_state("state.toml", "[[grant]]\nzone = \"z\"\n");
    REQUIRE_FALSE(parsed);
    CHECK_THAT(parsed.error().front().format(), Catch::Contains("missing 'user'"));
}

// Regression: earlier versions stored media devices ("custguardctl device allow media")
// in the state file and never enforced them. Such an entry is an error with its position
// and what to do, in whatever form it was written; it is never loaded and ignored.
TEST_CASE("a media device in the state file is refused with its reason", "[policy][state][regression]") {
    struct Row {
        const char* label;
        const char* text;
        unsigned line;
    };
    const Row rows[] = {
        {"with zone and serial", "version = 1\n\n[[device]]\nkind = \"media\"\nzone = \"customers\"\n"
                                 "value = \"0781:5567:AB12\"\nadded_by = \"root\"\nadded_at = 1\n", 3},
        {"after a client", "[[device]]\nkind = \"client\"\nzone = \"customers\"\nvalue = \"192.0.2.0/24\"\n"
                           "[[device]]\nkind = \"media\"\nzone = \"customers\"\nvalue = \"0781:5567\"\n", 5},
    };
    for (const auto& row : rows) {
        DYNAMIC_SECTION(row.label) {
            auto parsed = parse_state("state.toml", row.text);
            REQUIRE_FALSE(parsed);
            REQUIRE(parsed.error().size() == 1);
            const auto& d = parsed.error().front();
            INFO(d.format());
            CHECK(d.pos.file == "state.toml");
            CHECK(d.pos.line == row.line);
            CHECK(d.message == "removable-medium entry: removable media are not controlled by custguard in this version");
            CHECK_THAT(d.hint, Catch::Contains("delete this [[device]] entry (kind = \"media\")"));
            // The policy load that merges this state is refused with the same diagnostic.
            auto loaded = load_text(k_main, {}, std::string(row.text));
            REQUIRE_FALSE(loaded);
            CHECK(loaded.error().front().format() == d.format());
        }
    }
}

TEST_CASE("durations and paths", "[policy][util]") {
    CHECK(parse_duration("90") == 90u);
    CHECK(parse_duration("15m") == 900u);
    CHECK(parse_duration("2h") == 7200u);
    CHECK(parse_duration("1d") == 86400u);
    CHECK_FALSE(parse_duration("m"));
    CHECK_FALSE(parse_duration("-5m"));
    CHECK_FALSE(parse_duration("5 m"));
    CHECK(is_normalised_absolute("/srv/a"));
    CHECK_FALSE(is_normalised_absolute("/srv/./a"));
    CHECK_FALSE(is_normalised_absolute("srv"));
    CHECK_FALSE(is_normalised_absolute(""));
}
