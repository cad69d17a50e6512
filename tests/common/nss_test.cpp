#include <catch2/catch.hpp>

#include <optional>
#include <string>

#include "custguard/common/nss.hpp"

namespace nss = custguard::common::nss;

// root (uid 0, group root gid 0) exists on every system these tests run on.
TEST_CASE("nss lookups: found, not found, and a buffer bound that is reached", "[common][unit]") {
    struct Case {
        const char* name;
        nss::Lookup<std::string> got;  // the entry's name
        std::optional<std::string> want;
    };
    auto user_name = [](const nss::Lookup<nss::User>& u) { return u.map([](const auto& o) { return o ? std::optional(o->name) : std::nullopt; }); };
    auto group_name = [](const nss::Lookup<nss::Group>& g) { return g.map([](const auto& o) { return o ? std::optional(o->name) : std::nullopt; }); };
    const Case cases[] = {
        {"user by name", user_name(nss::user_by_name("root")), "root"},
        {"user by uid", user_name(nss::user_by_uid(0)), "root"},
        {"group by name", group_name(nss::group_by_name("root")), "root"},
        {"group by gid", group_name(nss::group_by_gid(0)), "root"},
        {"no such user", user_name(nss::user_by_name("cg-no-such-user")), std::nullopt},
        {"no such uid", user_name(nss::user_by_uid(4'000'000'001)), std::nullopt},
        {"no such group", group_name(nss::group_by_name("cg-no-such-group")), std::nullopt},
        {"no such gid", group_name(nss::group_by_gid(4'000'000'001)), std::nullopt},
    };
    for (const auto& c : cases) {
        INFO(c.name << (c.got ? "" : ": " + c.got.error()));
        REQUIRE(c.got.has_value());
        CHECK(*c.got == c.want);
    }

    // root's entry needs more than 8 bytes of strings: the lookup fails and says why,
    // rather than reporting "no such user".
    for (const auto& error : {nss::user_by_name("root", 8).error(), nss::group_by_gid(0, 8).error()}) {
        INFO(error);
        CHECK(error.find("does not fit in") != std::string::npos);
    }
    CHECK(nss::user_by_name("root", 8).error().find("user 'root'") == 0);
    CHECK(nss::group_by_gid(0, 8).error().find("gid 0") == 0);
}

TEST_CASE("nss supplementary_groups: the primary group first", "[common][unit]") {
    auto groups = nss::supplementary_groups("root", 0);
    REQUIRE(groups);
    REQUIRE(!groups->empty());
    CHECK(groups->front() == 0);
}
