// Evaluation matrix: users, groups, grants, denies, programs, nested zones, audit vs deny.
#include <catch2/catch.hpp>

#include "custguard/policy/evaluate.hpp"
#include "fixtures.hpp"

using namespace custguard::policy;
using custguard::test::load_text;

namespace {

const char* k_policy = R"(
[[zone]]
name = "customers"
paths = ["/srv/share/customers", "/srv/other/list.csv"]
allow_users = ["%sales", "backup"]
record_allowed = true

[[zone]]
name = "medical"
paths = ["/srv/share/customers/medical"]
sensitivity = "sensitive"
allow_users = ["%medical-staff"]
allow_programs = ["/usr/sbin/smbd"]

[[zone]]
name = "archive"
paths = ["/srv/archive"]
on_violation = "audit"
record_allowed = false
allow_users = ["alice"]
)";

const char* k_state = R"(
[[grant]]
zone = "archive"
user = "bob"
expires_at = 2000
reason = "audit request"
)";

struct Row {
    const char* name;
    const char* path;
    std::uint32_t uid;
    std::vector<std::uint32_t> gids;
    const char* exe;
    std::uint64_t now;
    Action action;
    const char* zone;  // nullptr: outside zones
    Rule rule;
    bool record;
};

// uids: alice 1001, bob 1002, carol 1003, backup 34; gids: sales 2001, medical-staff 2002
const Row k_rows[] = {
    {"outside every zone", "/srv/share/public/a.txt", 1002, {}, "/bin/cat", 1000, Action::allow, nullptr, Rule::outside_zones, false},
    {"prefix is not a parent", "/srv/share/customers2/a", 1002, {}, "/bin/cat", 1000, Action::allow, nullptr, Rule::outside_zones, false},
    {"group member reads, allowed and recorded", "/srv/share/customers/a.csv", 1001, {2001}, "/bin/cat", 1000, Action::allow, "customers", Rule::allowed_group, true},
    {"listed user reads", "/srv/share/customers/x/y/z.csv", 34, {34}, "/bin/tar", 1000, Action::allow, "customers", Rule::allowed_user, true},
    {"stranger denied", "/srv/share/customers/a.csv", 1002, {1002}, "/bin/cat", 1000, Action::deny, "customers", Rule::not_allowed, true},
    {"zone root itself", "/srv/share/customers", 1002, {}, "/bin/ls", 1000, Action::deny, "customers", Rule::not_allowed, true},
    {"single-file zone", "/srv/other/list.csv", 1002, {}, "/bin/cat", 1000, Action::deny, "customers", Rule::not_allowed, true},
    {"sibling of single file", "/srv/other/list.csv.bak", 1002, {}, "/bin/cat", 1000, Action::allow, nullptr, Rule::outside_zones, false},
    {"nested: sales alone is not enough", "/srv/share/customers/medical/k.pdf", 1001, {2001}, "/usr/sbin/smbd", 1000, Action::deny, "medical", Rule::not_allowed, true},
    {"nested: medical staff via smbd", "/srv/share/customers/medical/k.pdf", 1003, {2001, 2002}, "/usr/sbin/smbd", 1000, Action::allow, "medical", Rule::allowed_group, true},
    {"nested: medical staff via cp", "/srv/share/customers/medical/k.pdf", 1003, {2001, 2002}, "/bin/cp", 1000, Action::deny, "medical", Rule::program_not_allowed, true},
    {"audit zone: allowed, not recorded", "/srv/archive/2020.csv", 1001, {}, "/bin/cat", 1000, Action::allow, "archive", Rule::allowed_user, false},
    {"audit zone: stranger audited", "/srv/archive/2020.csv", 1003, {}, "/bin/cat", 1000, Action::audit, "archive", Rule::not_allowed, true},
    {"grant before expiry", "/srv/archive/2020.csv", 1002, {}, "/bin/cat", 1999, Action::allow, "archive", Rule::grant, false},
    {"grant at expiry", "/srv/archive/2020.csv", 1002, {}, "/bin/cat", 2000, Action::audit, "archive", Rule::not_allowed, true},
    {"grant is per zone", "/srv/share/customers/a", 1002, {}, "/bin/cat", 1500, Action::deny, "customers", Rule::not_allowed, true},
    {"root is not special", "/srv/share/customers/a", 0, {0}, "/bin/cat", 1000, Action::deny, "customers", Rule::not_allowed, true},
};

}  // namespace

// Each row against a prepared Evaluator, and the one-off helper agrees with it.
template <typename Rows>
void check_rows(const Policy& policy, const Rows& rows) {
    Evaluator evaluator(policy);
    for (const auto& row : rows) {
        DYNAMIC_SECTION(row.name) {
            AccessRequest req{row.path, row.uid, row.gids, row.exe, row.now};
            auto d = evaluator.evaluate(req);
            INFO(d.reason());
            CHECK(d.action == row.action);
            CHECK(d.rule == row.rule);
            if (row.zone) {
                REQUIRE(d.zone != nullptr);
                CHECK(d.zone->name == row.zone);
            } else {
                CHECK(d.zone == nullptr);
            }
            CHECK(d.record == row.record);
            CHECK(evaluate(policy, req).action == d.action);
        }
    }
}

TEST_CASE("evaluation matrix", "[policy][evaluate]") {
    auto loaded = load_text(k_policy, {}, std::string(k_state), 1000);
    REQUIRE(loaded);
    check_rows(loaded->policy, k_rows);
}

// allow_programs vouches for a listed program only while it runs its own code: the
// enforcers report loader injection or a tracer, and the program rule then refuses.
TEST_CASE("allow_programs refuses a listed program that runs foreign code", "[policy][evaluate]") {
    auto loaded = load_text(k_policy, {}, std::string(k_state), 1000);
    REQUIRE(loaded);
    Evaluator evaluator(loaded->policy);
    const std::uint32_t medical[] = {2001, 2002};
    struct Case {
        const char* label;
        const char* exe;
        Rule untrusted;
        Rule expected;
        Action action;
    };
    const Case cases[] = {
        {"own code", "/usr/sbin/smbd", Rule::outside_zones, Rule::allowed_group, Action::allow},
        {"loader injection", "/usr/sbin/smbd", Rule::program_tampered, Rule::program_tampered, Action::deny},
        {"traced", "/usr/sbin/smbd", Rule::program_traced, Rule::program_traced, Action::deny},
        {"unlisted program says so first", "/bin/cp", Rule::program_traced, Rule::program_not_allowed, Action::deny},
    };
    for (const auto& c : cases) {
        DYNAMIC_SECTION(c.label) {
            AccessRequest req{"/srv/share/customers/medical/k.pdf", 1003, medical, c.exe, 1000};
            req.untrusted_program = c.untrusted;
            auto d = evaluator.evaluate(req);
            CHECK(d.rule == c.expected);
            CHECK(d.action == c.action);
            CHECK(d.record);
            if (c.untrusted != Rule::outside_zones && c.expected == c.untrusted)
                CHECK(d.reason().find("allow_programs") != std::string::npos);
        }
    }
    // Zones without allow_programs do not care what the program runs.
    AccessRequest plain{"/srv/share/customers/a.csv", 1001, medical, "/bin/cat", 1000};
    plain.untrusted_program = Rule::program_traced;
    CHECK(evaluator.evaluate(plain).rule == Rule::allowed_group);
}

TEST_CASE("allow_programs_strict = false trusts a listed program whatever it runs", "[policy][evaluate]") {
    const std::string lax = std::string(k_policy) + R"(
[[zone]]
name = "lax"
paths = ["/srv/lax"]
allow_users = ["%medical-staff"]
allow_programs = ["/usr/sbin/smbd"]
allow_programs_strict = false
)";
    auto loaded = load_text(lax, {}, std::string(k_state), 1000);
    REQUIRE(loaded);
    const std::uint32_t medical[] = {2002};
    AccessRequest req{"/srv/lax/k.pdf", 1003, medical, "/usr/sbin/smbd", 1000};
    req.untrusted_program = Rule::program_tampered;
    CHECK(evaluate(loaded->policy, req).rule == Rule::allowed_group);
    req.exe = "/bin/cp";
    CHECK(evaluate(loaded->policy, req).rule == Rule::program_not_allowed);  // the list still holds
    req = {"/srv/share/customers/medical/k.pdf", 1003, medical, "/usr/sbin/smbd", 1000};
    req.untrusted_program = Rule::program_tampered;
    CHECK(evaluate(loaded->policy, req).rule == Rule::program_tampered);  // strict by default
    // A wrong type is an error, as for every key.
    auto bad = load_text(std::string(k_policy) + "\n[[zone]]\nname = \"x\"\npaths = [\"/x\"]\nallow_programs_strict = \"no\"\n",
                         {}, std::string(k_state), 1000);
    CHECK_FALSE(bad);
}

// Denies (the daemon's bulk-read cool-downs) on top of the same policy and state: bob's
// grant in archive runs until 2000.
const Deny k_denies[] = {
    {"customers", 1001, 1500},  // alice is in customers only through %sales
    {"customers", 34, 1500},    // backup, a listed user
    {"archive", 1002, 1500},    // bob, a grant holder, in an audit zone
    {"medical", 1003, 1500},    // carol: group and program both allow her
    {"customers", 1003, 900},   // two for one (zone, uid): the later counts
    {"customers", 1003, 1200},
    {"nosuch", 1001, 5000},     // a zone gone since: ignored
};

const Row k_deny_rows[] = {
    {"%group member during the deny", "/srv/share/customers/a.csv", 1001, {2001}, "/bin/cat", 1000, Action::deny, "customers", Rule::revoked, true},
    {"%group member a second before expiry", "/srv/share/customers/a.csv", 1001, {2001}, "/bin/cat", 1499, Action::deny, "customers", Rule::revoked, true},
    {"%group member at the deny's expiry", "/srv/share/customers/a.csv", 1001, {2001}, "/bin/cat", 1500, Action::allow, "customers", Rule::allowed_group, true},
    {"listed user during the deny", "/srv/share/customers/x.csv", 34, {34}, "/bin/tar", 1000, Action::deny, "customers", Rule::revoked, true},
    {"grant holder during the deny, audit zone", "/srv/archive/2020.csv", 1002, {}, "/bin/cat", 1000, Action::audit, "archive", Rule::revoked, true},
    {"grant holder after the deny", "/srv/archive/2020.csv", 1002, {}, "/bin/cat", 1600, Action::allow, "archive", Rule::grant, false},
    {"allowed program does not lift it", "/srv/share/customers/medical/k.pdf", 1003, {2002}, "/usr/sbin/smbd", 1000, Action::deny, "medical", Rule::revoked, true},
    {"unlisted program during the deny", "/srv/share/customers/medical/k.pdf", 1003, {2002}, "/bin/cp", 1000, Action::deny, "medical", Rule::revoked, true},
    {"later of two denies still in force", "/srv/share/customers/a.csv", 1003, {2001}, "/bin/cat", 1100, Action::deny, "customers", Rule::revoked, true},
    {"later of two denies expired", "/srv/share/customers/a.csv", 1003, {2001}, "/bin/cat", 1200, Action::allow, "customers", Rule::allowed_group, true},
    {"another member of the group", "/srv/share/customers/a.csv", 1002, {2001}, "/bin/cat", 1000, Action::allow, "customers", Rule::allowed_group, true},
    {"the same user in another zone", "/srv/archive/2020.csv", 1001, {2001}, "/bin/cat", 1000, Action::allow, "archive", Rule::allowed_user, false},
    {"outside every zone", "/srv/share/public/a.txt", 1001, {2001}, "/bin/cat", 1000, Action::allow, nullptr, Rule::outside_zones, false},
};

TEST_CASE("denies override every allow of the user in the zone until they expire", "[policy][evaluate]") {
    auto loaded = load_text(k_policy, {}, std::string(k_state), 1000);
    REQUIRE(loaded);
    loaded->policy.denies.assign(std::begin(k_denies), std::end(k_denies));
    check_rows(loaded->policy, k_deny_rows);
    std::uint32_t sales[] = {2001};
    auto d = Evaluator(loaded->policy).evaluate({"/srv/share/customers/a", 1001, sales, "", 1000});
    CHECK(d.reason() == "the user's or the client machine's access to zone 'customers' is revoked for a time (on_violation = deny)");
    CHECK(to_string(d.rule) == "revoked");
}

TEST_CASE("expired grants in the state are dropped at load", "[policy][evaluate]") {
    auto loaded = load_text(k_policy, {}, std::string(k_state), 2500);
    REQUIRE(loaded);
    CHECK(loaded->policy.grants.empty());
}

TEST_CASE("decision reasons name the zone and the rule", "[policy][evaluate]") {
    auto loaded = load_text(k_policy);
    REQUIRE(loaded);
    std::uint32_t gids[] = {2001};
    auto d = evaluate(loaded->policy, {"/srv/share/customers/a", 1001, gids, "", 0});
    CHECK(d.reason() == "a group of the user is listed in allow_users of zone 'customers'");
    d = evaluate(loaded->policy, {"/srv/share/customers/a", 1002, {}, "", 0});
    CHECK(d.reason() == "the user is not allowed in zone 'customers' (on_violation = deny)");
}

TEST_CASE("zone lookup with many zones picks the deepest root", "[policy][evaluate]") {
    std::string text;
    for (int i = 0; i < 2000; ++i)
        text += "[[zone]]\nname = \"z" + std::to_string(i) + "\"\npaths = [\"/data/d" +
                std::to_string(i) + "\"]\nallow_users = [\"alice\"]\n";
    text += "[[zone]]\nname = \"deep\"\npaths = [\"/data/d7/inner/most\"]\nallow_users = [\"bob\"]\n";
    auto loaded = load_text(text);
    REQUIRE(loaded);
    Evaluator e(loaded->policy);
    CHECK(e.zone_of("/data/d1999/f")->name == "z1999");
    CHECK(e.zone_of("/data/d7/inner/most/f")->name == "deep");
    CHECK(e.zone_of("/data/d7/inner/f")->name == "z7");
    CHECK(e.zone_of("/data/d2000/f") == nullptr);
    CHECK(e.zone_of("/data") == nullptr);
}

// allow_clients: a read Samba serves for a client machine needs every address that smbd
// process serves in the list (multichannel); local reads are decided as before.
TEST_CASE("allow_clients refuses reads served for client machines it does not list", "[policy][evaluate]") {
    const std::string text = R"(
[[zone]]
name = "clients"
paths = ["/srv/clients"]
allow_users = ["alice"]
allow_clients = ["192.0.2.10", "198.51.100.0/24", "2001:db8::/32", "pc-12.example"]

[[zone]]
name = "clients-audit"
paths = ["/srv/clients-audit"]
on_violation = "audit"
allow_users = ["alice"]
allow_clients = ["192.0.2.10"]
)";
    auto loaded = load_text(text, {}, std::nullopt, 1000);
    REQUIRE(loaded);
    // The daemon resolves host names forward; policy/ only matches what it was given.
    for (auto& c : loaded->policy.zones[0].allow_clients)
        if (c.hostname) c.resolved = {*parse_client_address("203.0.113.7")};
    Evaluator evaluator(loaded->policy);
    auto addr = [](const char* text) { return *parse_client_address(text); };
    struct Case {
        const char* label;
        const char* path;
        std::uint32_t uid;
        bool remote;
        std::vector<ClientAddress> clients;
        Rule rule;
        Action action;
    };
    const std::uint32_t alice = 1001, bob = 1002;
    const Case cases[] = {
        {"listed address", "/srv/clients/a", alice, true, {addr("192.0.2.10")}, Rule::allowed_user, Action::allow},
        {"in a listed network", "/srv/clients/a", alice, true, {addr("198.51.100.77")}, Rule::allowed_user, Action::allow},
        {"IPv6 network", "/srv/clients/a", alice, true, {addr("2001:db8:1::5")}, Rule::allowed_user, Action::allow},
        {"IPv4-mapped IPv6 is the IPv4 address", "/srv/clients/a", alice, true, {addr("::ffff:192.0.2.10")},
         Rule::allowed_user, Action::allow},
        {"resolved host name", "/srv/clients/a", alice, true, {addr("203.0.113.7")}, Rule::allowed_user, Action::allow},
        {"address not listed", "/srv/clients/a", alice, true, {addr("192.0.2.11")}, Rule::client_not_allowed,
         Action::deny},
        {"outside the network", "/srv/clients/a", alice, true, {addr("198.51.101.1")}, Rule::client_not_allowed,
         Action::deny},
        {"one smbd serves an allowed and a not-allowed address", "/srv/clients/a", alice, true,
         {addr("192.0.2.10"), addr("192.0.2.99")}, Rule::client_not_allowed, Action::deny},
        {"client unknown: refused", "/srv/clients/a", alice, true, {}, Rule::client_not_allowed, Action::deny},
        {"user not allowed says so first", "/srv/clients/a", bob, true, {addr("192.0.2.11")}, Rule::not_allowed,
         Action::deny},
        {"local read: users decide", "/srv/clients/a", alice, false, {}, Rule::allowed_user, Action::allow},
        {"audit zone lets it through, recorded", "/srv/clients-audit/a", alice, true, {addr("192.0.2.11")},
         Rule::client_not_allowed, Action::audit},
    };
    for (const auto& c : cases) {
        DYNAMIC_SECTION(c.label) {
            AccessRequest req{c.path, c.uid, {}, "/usr/sbin/smbd", 1000};
            req.remote = c.remote;
            req.clients = c.clients;
            auto d = evaluator.evaluate(req);
            CHECK(d.rule == c.rule);
            CHECK(d.action == c.action);
            if (c.rule == Rule::client_not_allowed) {
                CHECK(d.record);
                CHECK(d.reason().find("allow_clients") != std::string::npos);
            }
        }
    }
}

// A client grant makes the client machine count as listed in allow_clients until it
// expires (now < expires_at); users still decide first.
TEST_CASE("a client grant lets a machine in until it expires", "[policy][evaluate][clients]") {
    auto loaded = load_text(R"(
[[zone]]
name = "clients"
paths = ["/srv/clients"]
allow_users = ["alice"]
allow_clients = ["192.0.2.10"]

[[zone]]
name = "other"
paths = ["/srv/other"]
allow_users = ["alice"]
allow_clients = ["192.0.2.10"]
)", {}, std::nullopt, 1000);
    REQUIRE(loaded);
    auto addr = [](const char* text) { return *parse_client_address(text); };
    loaded->policy.client_grants = {{"clients", *parse_client("198.51.100.7"), 2000, "visit", "root", {}},
                                    {"clients", *parse_client("laptop.example"), 3000, "visit", "root", {}}};
    loaded->policy.client_grants[1].client.resolved = {addr("203.0.113.5")};
    Evaluator evaluator(loaded->policy);
    struct Case {
        const char* label;
        const char* path;
        std::uint32_t uid;
        std::uint64_t now;
        std::vector<ClientAddress> clients;
        Rule rule;
    };
    const std::uint32_t alice = 1001, bob = 1002;
    const Case cases[] = {
        {"granted address, in force", "/srv/clients/a", alice, 1999, {addr("198.51.100.7")}, Rule::allowed_user},
        {"granted address, at its expiry", "/srv/clients/a", alice, 2000, {addr("198.51.100.7")}, Rule::client_not_allowed},
        {"granted host name's address", "/srv/clients/a", alice, 2500, {addr("203.0.113.5")}, Rule::allowed_user},
        {"granted host name, expired", "/srv/clients/a", alice, 3000, {addr("203.0.113.5")}, Rule::client_not_allowed},
        {"granted with a listed address in one smbd", "/srv/clients/a", alice, 1500,
         {addr("192.0.2.10"), addr("198.51.100.7")}, Rule::allowed_user},
        {"the grant is for one zone only", "/srv/other/a", alice, 1500, {addr("198.51.100.7")}, Rule::client_not_allowed},
        {"a granted client does not allow a user", "/srv/clients/a", bob, 1500, {addr("198.51.100.7")}, Rule::not_allowed},
        {"another address", "/srv/clients/a", alice, 1500, {addr("198.51.100.8")}, Rule::client_not_allowed},
    };
    for (const auto& c : cases) {
        DYNAMIC_SECTION(c.label) {
            AccessRequest req{c.path, c.uid, {}, "/usr/sbin/smbd", c.now};
            req.remote = true;
            req.clients = c.clients;
            CHECK(evaluator.evaluate(req).rule == c.rule);
        }
    }
}

// A client machine's bulk-read cool-down (ClientDeny): reads Samba serves while it serves
// that address are refused as revoked in that zone, whatever lists the user or the client;
// the same user from another machine, and local reads, are decided as before.
TEST_CASE("client denies refuse reads served for that client until they expire", "[policy][evaluate]") {
    const std::string text = R"(
[[zone]]
name = "clients"
paths = ["/srv/clients"]
allow_users = ["alice"]
allow_clients = ["192.0.2.0/24"]

[[zone]]
name = "open"
paths = ["/srv/open"]
allow_users = ["alice"]

[[zone]]
name = "open-audit"
paths = ["/srv/open-audit"]
on_violation = "audit"
allow_users = ["alice"]
)";
    auto loaded = load_text(text, {}, std::nullopt, 1000);
    REQUIRE(loaded);
    auto addr = [](const char* text) { return *parse_client_address(text); };
    loaded->policy.client_denies = {{"clients", addr("192.0.2.10"), 1500},
                                    {"open", addr("192.0.2.10"), 1500},
                                    {"open-audit", addr("2001:db8::7"), 1500},
                                    {"nosuch", addr("192.0.2.11"), 5000}};
    Evaluator evaluator(loaded->policy);
    struct Case {
        const char* label;
        const char* path;
        bool remote;
        std::vector<ClientAddress> clients;
        std::uint64_t now;
        Rule rule;
        Action action;
    };
    const Case cases[] = {
        {"revoked client, listed network", "/srv/clients/a", true, {addr("192.0.2.10")}, 1000, Rule::revoked, Action::deny},
        {"a second before expiry", "/srv/clients/a", true, {addr("192.0.2.10")}, 1499, Rule::revoked, Action::deny},
        {"at expiry", "/srv/clients/a", true, {addr("192.0.2.10")}, 1500, Rule::allowed_user, Action::allow},
        {"another listed machine, same user", "/srv/clients/a", true, {addr("192.0.2.11")}, 1000, Rule::allowed_user,
         Action::allow},
        {"one smbd serves the revoked and another machine", "/srv/clients/a", true,
         {addr("192.0.2.11"), addr("192.0.2.10")}, 1000, Rule::revoked, Action::deny},
        {"IPv4-mapped form of the revoked address", "/srv/clients/a", true, {addr("::ffff:192.0.2.10")}, 1000,
         Rule::revoked, Action::deny},
        {"zone without allow_clients", "/srv/open/a", true, {addr("192.0.2.10")}, 1000, Rule::revoked, Action::deny},
        {"audit zone, IPv6 client", "/srv/open-audit/a", true, {addr("2001:db8::7")}, 1000, Rule::revoked,
         Action::audit},
        {"local read is not the client's", "/srv/clients/a", false, {}, 1000, Rule::allowed_user, Action::allow},
        {"a zone the deny does not name", "/srv/open-audit/a", true, {addr("192.0.2.10")}, 1000, Rule::allowed_user,
         Action::allow},
    };
    for (const auto& c : cases) {
        DYNAMIC_SECTION(c.label) {
            AccessRequest req{c.path, 1001, {}, "/usr/sbin/smbd", c.now};
            req.remote = c.remote;
            req.clients = c.clients;
            auto d = evaluator.evaluate(req);
            CHECK(d.rule == c.rule);
            CHECK(d.action == c.action);
            if (c.rule == Rule::revoked) CHECK(d.record);
        }
    }
}
