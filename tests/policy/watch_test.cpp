// [watch]: every value it accepts is used, every wrong one is refused at its position, and
// files protected by inode compile into inode roots.
#include <catch2/catch.hpp>

#include "custguard/policy/compile.hpp"
#include "fixtures.hpp"

using custguard::test::load_text;
namespace policy = custguard::policy;

namespace {

#define ZONES                                                                                      \
    "[[zone]]\nname = \"customers\"\npaths = [\"/srv/share/customers\"]\nallow_users = [\"alice\"]\n" \
    "[mail]\nfrom = \"cg@host.example\"\n[notify.security]\nmail = [\"sec@host.example\"]\n"
// ZONES is 8 lines: [watch] is line 9, its first key line 10.

struct Case {
    const char* name;
    const char* watch;  // the [watch] table's keys
    unsigned line, column;
    const char* message;
};

const Case k_invalid[] = {
    {"unknown key", "path = [\"/srv/share\"]\n", 10, 1, "unknown key 'path' in [watch]"},
    {"bad action", "on_customer_data = \"delete\"\n", 10, 20, "'on_customer_data' = \"delete\" is not a valid value"},
    {"protect_as unknown zone", "on_customer_data = \"protect\"\nprotect_as = \"cutsomers\"\n", 11, 14,
     "protect_as names unknown zone 'cutsomers'"},
    {"protect_as without protect", "on_customer_data = \"notify\"\nprotect_as = \"customers\"\nnotify = [\"security\"]\n", 11, 14,
     "'protect_as' is used only with on_customer_data = \"protect\""},
    {"notify with record", "notify = [\"security\"]\n", 10, 10, "'notify' is not used with on_customer_data = \"record\""},
    {"undefined notify target", "on_customer_data = \"notify\"\nnotify = [\"secruity\"]\n", 11, 11,
     "[watch] notifies undefined target 'secruity'"},
    {"relative path", "paths = [\"srv/share\"]\n", 10, 10, "not a normalised absolute path"},
    {"path inside a zone", "paths = [\"/srv/share/customers/export\"]\n", 10, 10, "lies in zone 'customers'"},
    {"empty paths", "paths = []\n", 10, 9, "[watch] 'paths' is empty"},
    {"unknown detector", "detectors = [\"email\", \"ssn\"]\n", 10, 23, "unknown detector \"ssn\""},
    {"empty detectors", "detectors = []\n", 10, 13, "[watch] 'detectors' is empty"},
    {"threshold zero", "threshold = 0\n", 10, 13, "'threshold' is 0, out of range"},
};

}  // namespace

TEST_CASE("the watch table refuses every wrong value at its position", "[policy][watch]") {
    for (const auto& c : k_invalid) {
        DYNAMIC_SECTION(c.name) {
            auto r = load_text(std::string(ZONES) + "[watch]\n" + c.watch);
            REQUIRE_FALSE(r);
            const auto& d = r.error().front();
            INFO(d.format());
            CHECK(d.pos.line == c.line);
            CHECK(d.pos.column == c.column);
            CHECK_THAT(d.message, Catch::Contains(c.message));
            CHECK_FALSE(d.hint.empty());
        }
    }
}

TEST_CASE("the watch table without zones or paths watches nothing and says so", "[policy][watch]") {
    auto r = load_text("[watch]\non_customer_data = \"record\"\n");
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().front().message, Catch::Contains("nothing is watched"));
}

TEST_CASE("the watch table's values are read as written, unset ones stay unset for the [print] defaults", "[policy][watch]") {
    auto r = load_text(std::string(ZONES) +
                       "[watch]\npaths = [\"/srv/share/public\", \"/home\"]\non_customer_data = \"protect\"\n"
                       "protect_as = \"customers\"\ndetectors = [\"email\", \"jp_phone\"]\nthreshold = 5\n"
                       "notify = [\"security\"]\n");
    REQUIRE(r);
    const auto& w = r->policy.watch;
    CHECK(w.enabled);
    REQUIRE(w.paths.size() == 2);
    CHECK(w.paths[0].path == "/srv/share/public");
    CHECK(w.on_customer_data == policy::WatchAction::protect);
    CHECK(w.protect_as == "customers");
    CHECK(w.detectors == std::vector<std::string>{"email", "jp_phone"});
    CHECK(w.threshold == 5u);
    CHECK(w.notify == std::vector<std::string>{"security"});

    auto d = load_text(std::string(ZONES) + "[watch]\n");
    REQUIRE(d);
    CHECK(d->policy.watch.enabled);
    CHECK(d->policy.watch.paths.empty());
    CHECK(d->policy.watch.on_customer_data == policy::WatchAction::record);
    CHECK_FALSE(d->policy.watch.threshold);

    auto none = load_text(ZONES);
    REQUIRE(none);
    CHECK_FALSE(none->policy.watch.enabled);
}

TEST_CASE("a drop-in's [watch] paths replace the main file's", "[policy][watch]") {
    auto r = load_text(std::string(ZONES) + "[watch]\npaths = [\"/srv/a\"]\n",
                       {{"50-watch.toml", "[watch]\npaths = [\"/srv/b\"]\n"}});
    REQUIRE(r);
    REQUIRE(r->policy.watch.paths.size() == 1);
    CHECK(r->policy.watch.paths[0].path == "/srv/b");
}

TEST_CASE("protected files compile into inode roots of their zone, unknown zones and repeats drop out",
          "[policy][watch][compile]") {
    auto r = load_text(std::string(ZONES) + "[[zone]]\nname = \"medical\"\npaths = [\"/srv/m\"]\nallow_users = [\"bob\"]\n");
    REQUIRE(r);
    auto p = r->policy;
    p.protected_files = {{"medical", 7, 42, "/srv/share/public/b.csv"},
                         {"customers", 7, 41, "/srv/share/public/a.csv"},
                         {"gone", 7, 43, "/srv/share/public/c.csv"},
                         {"customers", 7, 42, "/srv/share/public/b2.csv"}};
    auto c = policy::compile(p);
    REQUIRE(c.inode_roots.size() == 2);
    CHECK(c.inode_roots[0] == policy::InodeRoot{7, 41, 1, "/srv/share/public/a.csv"});
    // The first find of an inode decides its zone.
    CHECK(c.inode_roots[1] == policy::InodeRoot{7, 42, 2, "/srv/share/public/b.csv"});
}
