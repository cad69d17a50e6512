// The rows the enforcers load: deterministic, sorted, deduplicated.
#include <cstring>
#include <catch2/catch.hpp>

#include <algorithm>

#include "custguard/policy/compile.hpp"
#include "fixtures.hpp"

using namespace custguard::policy;
using custguard::test::load_text;

TEST_CASE("compile produces the rows of the kernel maps", "[policy][compile]") {
    auto loaded = load_text(R"(
[[zone]]
name = "customers"
paths = ["/srv/c", "/srv/b.csv"]
allow_users = ["%sales", "alice"]
record_allowed = false

[[zone]]
name = "medical"
paths = ["/srv/c/med"]
sensitivity = "sensitive"
on_violation = "deny"
allow_users = ["carol"]
allow_programs = ["/usr/sbin/smbd", "/bin/cat"]
)",
                            {}, std::string(R"(
[[grant]]
zone = "medical"
user = "bob"
expires_at = 5000
[[grant]]
zone = "medical"
user = "bob"
expires_at = 7000
[[user]]
zone = "customers"
name = "bob"
)"));
    REQUIRE(loaded);
    auto c = compile(loaded->policy);
    REQUIRE(c.zones.size() == 2);
    CHECK(c.zones[0] == CompiledZone{1, "customers", Sensitivity::personal, Violation::deny, false, false});
    CHECK(c.zones[1] == CompiledZone{2, "medical", Sensitivity::sensitive, Violation::deny, true, true});
    CHECK(c.roots == std::vector<ZoneRoot>{{"/srv/b.csv", 1}, {"/srv/c", 1}, {"/srv/c/med", 2}});
    CHECK(c.subjects == std::vector<SubjectRow>{{1, SubjectKind::uid, 1001},
                                                {1, SubjectKind::uid, 1002},
                                                {1, SubjectKind::gid, 2001},
                                                {2, SubjectKind::uid, 1003}});
    CHECK(c.programs == std::vector<ProgramRow>{{2, "/bin/cat"}, {2, "/usr/sbin/smbd"}});
    // Two grants for the same (zone, uid) collapse to the later expiry.
    CHECK(c.grants == std::vector<GrantRow>{{2, 1002, 7000}});
}

TEST_CASE("compile is deterministic", "[policy][compile]") {
    auto a = load_text("[[zone]]\nname = \"z\"\npaths = [\"/b\", \"/a\"]\nallow_users = [\"bob\", \"alice\"]\n");
    REQUIRE(a);
    auto c1 = compile(a->policy);
    auto c2 = compile(a->policy);
    CHECK(c1.roots == c2.roots);
    CHECK(c1.roots.front().path == "/a");
    CHECK(c1.subjects.front().id == 1001);
}

TEST_CASE("compile turns denies into one sorted row per zone and uid", "[policy][compile]") {
    auto loaded = load_text(R"(
[[zone]]
name = "customers"
paths = ["/srv/c"]
allow_users = ["%sales", "alice"]

[[zone]]
name = "medical"
paths = ["/srv/m"]
allow_users = ["carol"]
)",
                            {}, std::string(R"(
[[grant]]
zone = "medical"
user = "bob"
expires_at = 5000
)"));
    REQUIRE(loaded);
    const auto base = compile(loaded->policy);

    struct Case {
        const char* name;
        std::vector<Deny> denies;
        std::vector<DenyRow> rows;
    };
    const Case cases[] = {
        {"none", {}, {}},
        {"one per zone and uid",
         {{"medical", 1002, 3000}, {"customers", 1003, 2500}, {"customers", 1001, 2000}},
         {{1, 1001, 2000}, {1, 1003, 2500}, {2, 1002, 3000}}},
        {"the later expiry of two for one user",
         {{"customers", 1001, 4000}, {"customers", 1001, 2000}},
         {{1, 1001, 4000}}},
        {"an unknown zone is dropped", {{"gone", 1001, 4000}}, {}},
    };
    for (const auto& c : cases) {
        DYNAMIC_SECTION(c.name) {
            auto policy = loaded->policy;
            policy.denies = c.denies;
            auto compiled = compile(policy);
            CHECK(compiled.denies == c.rows);
            // A deny removes no allow: it overrides them when deciding.
            CHECK(compiled.subjects == base.subjects);
            CHECK(compiled.grants == base.grants);
            CHECK(std::is_sorted(compiled.denies.begin(), compiled.denies.end(), [](const DenyRow& a, const DenyRow& b) {
                return std::tie(a.zone_id, a.uid) < std::tie(b.zone_id, b.uid);
            }));
        }
    }
}

// allow_clients reaches the enforcers as numeric rows only: networks as written, host
// names as the addresses the daemon resolved them to; a name that resolved to nothing
// still marks the zone as requiring clients (fail closed).
TEST_CASE("compile emits numeric client rows and marks zones with allow_clients", "[policy][compile]") {
    auto loaded = load_text(R"(
[[zone]]
name = "clients"
paths = ["/srv/c"]
allow_users = ["alice"]
allow_clients = ["198.51.100.0/24", "pc-12.example", "192.0.2.10"]

[[zone]]
name = "unresolved"
paths = ["/srv/u"]
allow_users = ["alice"]
allow_clients = ["nowhere.example"]

[[zone]]
name = "open"
paths = ["/srv/o"]
allow_users = ["alice"]
)");
    REQUIRE(loaded);
    loaded->policy.zones[0].allow_clients[1].resolved = {*parse_client_address("2001:db8::7"),
                                                         *parse_client_address("192.0.2.10")};
    auto c = compile(loaded->policy);
    CHECK(c.zones[0].clients_required);
    CHECK(c.zones[1].clients_required);
    CHECK_FALSE(c.zones[2].clients_required);
    std::vector<std::string> rows;
    for (const auto& r : c.clients) {
        ClientAddress a{r.family, {}};
        std::copy(std::begin(r.addr), std::end(r.addr), a.addr);
        rows.push_back(std::to_string(r.zone_id) + " " + to_string(a) + "/" + std::to_string(r.prefix));
    }
    // Sorted by zone, family, prefix, address; the duplicate 192.0.2.10 appears once.
    CHECK(rows == std::vector<std::string>{"1 198.51.100.0/24", "1 192.0.2.10/32", "1 2001:db8::7/128"});
}

namespace {

ClientRow row(std::uint32_t zone, const char* net, std::uint64_t expires_at) {
    auto m = parse_client(net);
    REQUIRE(m);
    REQUIRE_FALSE(m->hostname);
    ClientRow r{zone, m->family, m->prefix, {}};
    std::copy(std::begin(m->addr), std::end(m->addr), r.addr);
    r.expires_at = expires_at;
    return r;
}

bool in_force(const ClientRow& r, std::uint64_t now) { return r.expires_at == 0 || now < r.expires_at; }

// What the kernel's LPM trie answers: the longest row of the zone containing the address.
const ClientRow* longest_match(const std::vector<ClientRow>& rows, std::uint32_t zone, const ClientAddress& a) {
    const ClientRow* best = nullptr;
    for (const auto& r : rows)
        if (r.zone_id == zone && in_network(r.family, r.prefix, r.addr, a) && (!best || r.prefix > best->prefix))
            best = &r;
    return best;
}

}  // namespace

// A client grant is a row with an expiry. The BPF LSM's LPM trie returns only the longest
// matching row, so compile gives each row the latest expiry (permanent dominating) of the
// rows of its zone that contain it: the longest match then says what "any containing row
// in force" says (the fanotify tables look at every row).
TEST_CASE("client rows carry the effective expiry of the rows that contain them", "[policy][compile][clients]") {
    struct Case {
        const char* name;
        std::vector<ClientRow> rows;
        std::vector<std::uint64_t> spread;  // expires_at of each row afterwards
    };
    const std::vector<Case> cases = {
        {"/32 grant inside a permanent /24: permanent",
         {row(1, "192.0.2.0/24", 0), row(1, "192.0.2.7", 500)}, {0, 0}},
        {"/32 grant expiring before a covering /16 grant: the later expiry",
         {row(1, "10.1.0.0/16", 900), row(1, "10.1.2.3", 500)}, {900, 900}},
        {"/32 grant expiring after a covering /16 grant keeps its own",
         {row(1, "10.1.0.0/16", 500), row(1, "10.1.2.3", 900)}, {500, 900}},
        {"a /24 grant inside a permanent /16: permanent",
         {row(1, "192.0.2.0/24", 500), row(1, "192.0.0.0/16", 0)}, {0, 0}},
        {"a permanent /32 inside a /24 grant stays permanent, the /24 keeps its expiry",
         {row(1, "192.0.2.0/24", 500), row(1, "192.0.2.7", 0)}, {500, 0}},
        {"three levels: /8 permanent lifts /16 and /32 grants",
         {row(1, "10.0.0.0/8", 0), row(1, "10.1.0.0/16", 300), row(1, "10.1.2.3", 200)}, {0, 0, 0}},
        {"three levels: the latest of two covering grants",
         {row(1, "10.0.0.0/8", 700), row(1, "10.1.0.0/16", 300), row(1, "10.1.2.3", 200)}, {700, 700, 700}},
        {"a row of another zone does not count",
         {row(1, "192.0.2.0/24", 0), row(2, "192.0.2.7", 500)}, {0, 500}},
        {"a network that does not contain the row does not count",
         {row(1, "198.51.100.0/24", 0), row(1, "192.0.2.7", 500)}, {0, 500}},
        {"an IPv6 network does not contain an IPv4 row",
         {row(1, "::/0", 0), row(1, "192.0.2.7", 500)}, {0, 500}},
        {"IPv6: /128 grant inside a /64 grant",
         {row(1, "2001:db8::/64", 900), row(1, "2001:db8::5", 400)}, {900, 900}},
        {"the same network permanent and granted: permanent",
         {row(1, "192.0.2.7", 500), row(1, "192.0.2.7", 0)}, {0, 0}},
        {"the same network granted twice: the later grant",
         {row(1, "192.0.2.7", 500), row(1, "192.0.2.7", 800)}, {800, 800}},
        {"/0 permanent contains every IPv4 row", {row(1, "0.0.0.0/0", 0), row(1, "203.0.113.9", 50)}, {0, 0}},
    };
    const std::vector<ClientAddress> probes = {*parse_client_address("192.0.2.7"),   *parse_client_address("192.0.2.8"),
                                               *parse_client_address("192.0.9.1"),   *parse_client_address("10.1.2.3"),
                                               *parse_client_address("10.1.9.9"),    *parse_client_address("10.9.9.9"),
                                               *parse_client_address("198.51.100.1"), *parse_client_address("203.0.113.9"),
                                               *parse_client_address("2001:db8::5"), *parse_client_address("2001:db8::6")};
    for (const auto& c : cases) {
        DYNAMIC_SECTION(c.name) {
            auto rows = c.rows;
            spread_client_expiry(rows);
            std::vector<std::uint64_t> got;
            for (const auto& r : rows) got.push_back(r.expires_at);
            CHECK(got == c.spread);
            // The longest match answers like "some row containing the address is in force",
            // for every address and at every time around the expiries.
            for (std::uint32_t zone : {1u, 2u})
                for (const auto& a : probes)
                    for (std::uint64_t now : {0ull, 199ull, 250ull, 450ull, 550ull, 750ull, 850ull, 1000ull}) {
                        const bool any = std::any_of(c.rows.begin(), c.rows.end(), [&](const ClientRow& r) {
                            return r.zone_id == zone && in_force(r, now) && in_network(r.family, r.prefix, r.addr, a);
                        });
                        const ClientRow* m = longest_match(rows, zone, a);
                        INFO("zone " << zone << ", " << to_string(a) << " at " << now);
                        CHECK((m && in_force(*m, now)) == any);
                    }
        }
    }
}

TEST_CASE("compile turns client grants into client rows with their expiry", "[policy][compile][clients]") {
    auto loaded = load_text(R"(
[[zone]]
name = "customers"
paths = ["/srv/c"]
allow_users = ["alice"]
allow_clients = ["192.0.2.0/24"]
)");
    REQUIRE(loaded);
    auto& p = loaded->policy;
    auto grant = [&](const char* client, std::uint64_t expires_at) {
        ClientGrant g{"customers", *parse_client(client), expires_at, "ticket", "root", {}};
        return g;
    };
    p.client_grants = {grant("192.0.2.7", 500), grant("198.51.100.9", 600), grant("laptop.example", 700),
                       grant("gone", 800)};
    p.client_grants[2].client.resolved = {*parse_client_address("203.0.113.5")};
    p.client_grants.push_back(ClientGrant{"no-such-zone", *parse_client("203.0.113.6"), 900, "x", "root", {}});
    auto c = compile(p);
    CHECK(c.zones[0].clients_required);
    std::vector<std::string> rows;
    for (const auto& r : c.clients) {
        ClientAddress a{r.family, {}};
        std::copy(std::begin(r.addr), std::end(r.addr), a.addr);
        rows.push_back(to_string(a) + "/" + std::to_string(r.prefix) + " " + std::to_string(r.expires_at));
    }
    // The grant inside the permanent network is permanent there; an unresolved host name
    // gives no row; a grant for a zone that does not exist none either.
    CHECK(rows == std::vector<std::string>{"192.0.2.0/24 0", "192.0.2.7/32 0", "198.51.100.9/32 600",
                                           "203.0.113.5/32 700"});
}

// Client denies (a client machine's bulk-read cool-down) reach the enforcers as numeric
// rows: one per (zone, address) with the later expiry, unknown zones dropped.
TEST_CASE("compile emits one client deny row per zone and address", "[policy][compile]") {
    auto loaded = load_text(R"(
[[zone]]
name = "customers"
paths = ["/srv/c"]
allow_users = ["alice"]

[[zone]]
name = "medical"
paths = ["/srv/m"]
allow_users = ["alice"]
)");
    REQUIRE(loaded);
    auto addr = [](const char* text) { return *parse_client_address(text); };
    auto row = [&](std::uint32_t zone, const char* text, std::uint64_t expiry) {
        auto a = addr(text);
        ClientDenyRow r{zone, a.family, {}, expiry};
        std::memcpy(r.addr, a.addr, sizeof r.addr);
        return r;
    };
    struct Case {
        const char* name;
        std::vector<ClientDeny> denies;
        std::vector<ClientDenyRow> rows;
    };
    const Case cases[] = {
        {"none", {}, {}},
        {"one per zone and address",
         {{"medical", addr("192.0.2.10"), 3000}, {"customers", addr("2001:db8::1"), 2500},
          {"customers", addr("192.0.2.10"), 2000}},
         {row(1, "192.0.2.10", 2000), row(1, "2001:db8::1", 2500), row(2, "192.0.2.10", 3000)}},
        {"the later expiry of two for one address",
         {{"customers", addr("192.0.2.10"), 4000}, {"customers", addr("192.0.2.10"), 2000}},
         {row(1, "192.0.2.10", 4000)}},
        {"an unknown zone is dropped", {{"gone", addr("192.0.2.10"), 4000}}, {}},
    };
    for (const auto& c : cases) {
        DYNAMIC_SECTION(c.name) {
            auto policy = loaded->policy;
            policy.client_denies = c.denies;
            auto compiled = compile(policy);
            CHECK(compiled.client_denies == c.rows);
            CHECK(compiled.denies.empty());
        }
    }
}
