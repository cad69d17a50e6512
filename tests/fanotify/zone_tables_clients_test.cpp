// The fanotify enforcer's tables decide allow_clients as policy::Evaluator does: every
// address a Samba process serves must be in a client row of the zone, none known is
// refused, local reads are untouched, and the user rule speaks first.
#include <catch2/catch.hpp>

#include <filesystem>
#include <vector>

#include "daemon/fanotify/zone_tables.hpp"

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
