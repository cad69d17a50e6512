// The fanotify enforcer and its tables decide allow_clients as policy::Evaluator does: every
// address a Samba process serves must be in a client row of the zone, none known is
// refused, local reads are untouched, and the user rule speaks first.
#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <vector>

#include "daemon/fanotify/fanotify_enforcer.hpp"
#include "daemon/fanotify/zone_tables.hpp"
#include "sandbox.hpp"

using namespace custguard;
using custguard::daemon::fan::Subject;
using custguard::daemon::fan::ZoneTables;

TEST_CASE("fanotify tables: allow_clients needs every served address listed", "[fanotify][clients]") {
    const auto root = std::filesystem::temp_directory_path();
    policy::Compiled c;
    c.zones.push_back({1, "clients", policy::Sensitivity::personal, policy::Violation::deny, true, false, true, true});
    c.zones.push_back({2, "open", policy::Sensitivity::personal, policy::Violation::deny, true, false, true, false});
    c.zones.push_back({3, "audited", policy::Sensitivity::personal, policy::Violation::audit, true, false, true, true});
    c.roots = {{root.string(), 1}};
    for (std::uint32_t z : {1u, 2u, 3u}) c.subjects.push_back({z, policy::SubjectKind::uid, 1001});
    c.clients.push_back({1, 4, 24, {192, 0, 2, 0}});
    c.clients.push_back({1, 6, 128, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7}});
    c.clients.push_back({3, 4, 32, {192, 0, 2, 10}});
    std::vector<std::string> warnings;
    auto t = ZoneTables::build(c, warnings);
    REQUIRE(t);
    CHECK(t->zone_requires_clients(1));
    CHECK_FALSE(t->zone_requires_clients(2));
    auto a = [](const char* text) { return *policy::parse_client_address(text); };
    struct Case {
        const char* label;
        std::uint32_t zone, uid;
        bool remote;
        std::vector<policy::ClientAddress> clients;
        cg_decision decision;
        std::uint32_t rule;
    };
    const Case cases[] = {
        {"in the network", 1, 1001, true, {a("192.0.2.77")}, CG_DECISION_ALLOW, CG_RULE_USER},
        {"IPv6 host row", 1, 1001, true, {a("2001:db8::7")}, CG_DECISION_ALLOW, CG_RULE_USER},
        {"not listed", 1, 1001, true, {a("198.51.100.2")}, CG_DECISION_DENY, CG_RULE_CLIENT_NOT_ALLOWED},
        {"one smbd, an allowed and a not-allowed address", 1, 1001, true, {a("192.0.2.2"), a("198.51.100.2")},
         CG_DECISION_DENY, CG_RULE_CLIENT_NOT_ALLOWED},
        {"client unknown", 1, 1001, true, {}, CG_DECISION_DENY, CG_RULE_CLIENT_NOT_ALLOWED},
        {"local read", 1, 1001, false, {}, CG_DECISION_ALLOW, CG_RULE_USER},
        {"user not allowed says so first", 1, 1002, true, {a("198.51.100.2")}, CG_DECISION_DENY, CG_RULE_NOT_ALLOWED},
        {"zone without allow_clients", 2, 1001, true, {a("198.51.100.2")}, CG_DECISION_ALLOW, CG_RULE_USER},
        {"audit zone lets it through", 3, 1001, true, {a("192.0.2.11")}, CG_DECISION_AUDIT, CG_RULE_CLIENT_NOT_ALLOWED},
    };
    for (const auto& k : cases) {
        DYNAMIC_SECTION(k.label) {
            Subject s;
            s.uid = k.uid;
            s.remote = k.remote;
            s.clients = k.clients;
            auto v = t->decide(k.zone, s);
            CHECK(v.decision == k.decision);
            CHECK(v.rule == k.rule);
            CHECK(v.record);
        }
    }
}

// Client grants reach the tables as rows with an expiry: a row counts while now < expires_at
// (0: always), at the same instant the BPF LSM stops counting it.
TEST_CASE("fanotify tables: a client grant row counts until its expiry", "[fanotify][clients]") {
    policy::Compiled c;
    c.zones.push_back({1, "clients", policy::Sensitivity::personal, policy::Violation::deny, true, false, true, true});
    c.subjects.push_back({1, policy::SubjectKind::uid, 1001});
    c.clients.push_back({1, 4, 24, {192, 0, 2, 0}});
    policy::ClientRow granted{1, 4, 32, {198, 51, 100, 7}};
    granted.expires_at = 2000;
    c.clients.push_back(granted);
    std::vector<std::string> warnings;
    auto t = ZoneTables::build(c, warnings);
    REQUIRE(t);
    auto a = [](const char* text) { return *policy::parse_client_address(text); };
    struct Case {
        const char* label;
        std::uint64_t now;
        policy::ClientAddress client;
        cg_decision decision;
    };
    const Case cases[] = {
        {"granted, in force", 1999, a("198.51.100.7"), CG_DECISION_ALLOW},
        {"granted, at its expiry", 2000, a("198.51.100.7"), CG_DECISION_DENY},
        {"granted, after", 5000, a("198.51.100.7"), CG_DECISION_DENY},
        {"listed: permanent", 5000, a("192.0.2.9"), CG_DECISION_ALLOW},
    };
    for (const auto& k : cases) {
        DYNAMIC_SECTION(k.label) {
            Subject s;
            s.uid = 1001;
            s.now = k.now;
            s.remote = true;
            const policy::ClientAddress served[] = {k.client};
            s.clients = served;
            CHECK(t->decide(1, s).decision == k.decision);
            CHECK(t->client_allowed(1, k.client, k.now) == (k.decision == CG_DECISION_ALLOW));
        }
    }
}

// A client machine in its bulk-read cool-down (client deny row): refused as revoked in
// that zone while a Samba process serves it, in zones with or without allow_clients; the
// same user from another machine, local reads and other zones are untouched.
TEST_CASE("fanotify tables: a client deny refuses the client until it expires", "[fanotify][clients]") {
    const auto root = std::filesystem::temp_directory_path();
    policy::Compiled c;
    c.zones.push_back({1, "clients", policy::Sensitivity::personal, policy::Violation::deny, true, false, true, true});
    c.zones.push_back({2, "open", policy::Sensitivity::personal, policy::Violation::deny, true, false, true, false});
    c.zones.push_back({3, "audited", policy::Sensitivity::personal, policy::Violation::audit, true, false, true, false});
    c.roots = {{root.string(), 1}};
    for (std::uint32_t z : {1u, 2u, 3u}) c.subjects.push_back({z, policy::SubjectKind::uid, 1001});
    c.clients.push_back({1, 4, 24, {192, 0, 2, 0}});
    c.client_denies.push_back({1, 4, {192, 0, 2, 10}, 1500});
    c.client_denies.push_back({2, 4, {192, 0, 2, 10}, 1500});
    c.client_denies.push_back({3, 6, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7}, 1500});
    std::vector<std::string> warnings;
    auto t = ZoneTables::build(c, warnings);
    REQUIRE(t);
    CHECK(t->zone_checks_clients(1));
    CHECK(t->zone_checks_clients(2));
    CHECK_FALSE(t->zone_requires_clients(2));
    auto a = [](const char* text) { return *policy::parse_client_address(text); };
    struct Case {
        const char* label;
        std::uint32_t zone;
        bool remote;
        std::vector<policy::ClientAddress> clients;
        std::uint64_t now;
        cg_decision decision;
        std::uint32_t rule;
    };
    const Case cases[] = {
        {"revoked client in a listed network", 1, true, {a("192.0.2.10")}, 1000, CG_DECISION_DENY, CG_RULE_REVOKED},
        {"a second before expiry", 1, true, {a("192.0.2.10")}, 1499, CG_DECISION_DENY, CG_RULE_REVOKED},
        {"at expiry", 1, true, {a("192.0.2.10")}, 1500, CG_DECISION_ALLOW, CG_RULE_USER},
        {"another listed machine, same user", 1, true, {a("192.0.2.11")}, 1000, CG_DECISION_ALLOW, CG_RULE_USER},
        {"one smbd serves both machines", 1, true, {a("192.0.2.11"), a("192.0.2.10")}, 1000, CG_DECISION_DENY,
         CG_RULE_REVOKED},
        {"local read", 1, false, {}, 1000, CG_DECISION_ALLOW, CG_RULE_USER},
        {"zone without allow_clients", 2, true, {a("192.0.2.10")}, 1000, CG_DECISION_DENY, CG_RULE_REVOKED},
        {"audit zone, IPv6 client", 3, true, {a("2001:db8::7")}, 1000, CG_DECISION_AUDIT, CG_RULE_REVOKED},
        {"a zone the deny does not name", 3, true, {a("192.0.2.10")}, 1000, CG_DECISION_ALLOW, CG_RULE_USER},
    };
    for (const auto& k : cases) {
        DYNAMIC_SECTION(k.label) {
            Subject s;
            s.uid = 1001;
            s.now = k.now;
            s.remote = k.remote;
            s.clients = k.clients;
            auto v = t->decide(k.zone, s);
            CHECK(v.decision == k.decision);
            CHECK(v.rule == k.rule);
        }
    }
}

// The enforcer asks whom a Samba process serves only for opens that everything else
// allows in a zone with allow_clients, answers from that, and names the client in the
// event: a refused address, else the first one served; none when it is unknown.
TEST_CASE("fanotify enforcer: allow_clients decided while the opener waits", "[fanotify][host][clients]") {
    REQUIRE_ROOT();
    cgtest::Tmpfs fs;
    REQUIRE(fs.ok());
    fs.mkdir("zone");
    fs.mkdir("open");
    fs.write("zone/a.txt");
    fs.write("open/b.txt");
    auto a = [](const char* text) { return *policy::parse_client_address(text); };
    // What the callback answers for the next open (the opens are made one at a time).
    std::mutex mutex;
    std::optional<daemon::RemoteClients> answer;
    std::atomic<int> asked{0};
    daemon::FanotifyOptions o;
    o.use_fd_store = false;
    o.remote_clients = [&](std::uint32_t, std::string_view) {
        ++asked;
        std::lock_guard lk(mutex);
        return answer;
    };
    auto e = daemon::FanotifyEnforcer::create(std::move(o));
    REQUIRE(e);
    auto enforcer = std::move(*e);
    cgtest::Collector events;
    REQUIRE(enforcer->start(events.handler()));
    policy::Compiled c;
    c.zones = {cgtest::zone(1, "clients", policy::Violation::deny, true),
               cgtest::zone(2, "open", policy::Violation::deny, true)};
    c.zones[0].clients_required = true;
    c.roots = {{fs.path("open"), 2}, {fs.path("zone"), 1}};
    c.subjects = {{1, policy::SubjectKind::uid, 60001}, {2, policy::SubjectKind::uid, 60001}};
    c.clients = {{1, 4, 24, {192, 0, 2, 0}}};
    REQUIRE(enforcer->apply(c));
    const cgtest::Cred alice{60001, 60001, {}}, bob{60002, 60002, {}};

    struct Case {
        const char* label;
        cgtest::Cred cred;
        const char* path;
        std::optional<daemon::RemoteClients> answer;
        int expect_errno;
        std::uint32_t rule;
        const char* client;
        bool asks;
    };
    using RC = daemon::RemoteClients;
    const Case cases[] = {
        {"local read", alice, "zone/a.txt", std::nullopt, 0, CG_RULE_USER, "", true},
        {"listed client", alice, "zone/a.txt", RC{{a("192.0.2.9")}}, 0, CG_RULE_USER, "192.0.2.9", true},
        {"an allowed and a not-allowed address", alice, "zone/a.txt", RC{{a("192.0.2.9"), a("198.51.100.2")}}, EPERM,
         CG_RULE_CLIENT_NOT_ALLOWED, "198.51.100.2", true},
        {"client unknown", alice, "zone/a.txt", RC{}, EPERM, CG_RULE_CLIENT_NOT_ALLOWED, "", true},
        {"user not allowed: not asked", bob, "zone/a.txt", RC{{a("198.51.100.2")}}, EPERM, CG_RULE_NOT_ALLOWED, "", false},
        {"zone without allow_clients: not asked", alice, "open/b.txt", RC{{a("198.51.100.2")}}, 0, CG_RULE_USER, "",
         false},
    };
    for (const auto& k : cases) {
        DYNAMIC_SECTION(k.label) {
            {
                std::lock_guard lk(mutex);
                answer = k.answer;
            }
            const int before = asked.load();
            pid_t pid = -1;
            CHECK(cgtest::open_as(k.cred, fs.path(k.path), cgtest::Via::open, &pid) == k.expect_errno);
            auto ev = events.for_process(pid);
            REQUIRE(ev);
            CHECK(ev->raw.rule == k.rule);
            CHECK(ev->raw.decision == (k.expect_errno ? CG_DECISION_DENY : CG_DECISION_ALLOW));
            CHECK(ev->client == k.client);
            CHECK((asked.load() > before) == k.asks);
        }
    }
    enforcer->stop(true);
}
