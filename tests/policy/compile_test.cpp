// The rows the enforcers load: deterministic, sorted, deduplicated.
#include <catch2/catch.hpp>

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
