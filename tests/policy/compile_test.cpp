// The rows the enforcers load: deterministic, sorted, deduplicated.
#include <catch2/catch.hpp>

#include <cstring>

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
