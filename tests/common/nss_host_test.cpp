// Regression: a group whose /etc/group line is larger than 64 KiB was "no group" to the
// control plane (a fixed 64 KiB buffer, ERANGE taken for "not found"). nss.hpp grows
// the buffer; this runs the lookups against such a group, bound over /etc/group in a
// private mount namespace (support.hpp BigGroup) so the real file is never changed.
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "custguard/common/nss.hpp"
#include "support/support.hpp"

namespace nss = custguard::common::nss;

TEST_CASE("nss: a group whose line exceeds 64 KiB is found with all its members", "[common][host]") {
    REQUIRE(::geteuid() == 0);  // useradd and the bind mount over /etc/group
    const auto member = cgtest::ensure_user("cgnss-member", {"cgnss-big"});
    constexpr std::size_t extra = 6000;
    cgtest::BigGroup big("cgnss-big", extra);
    REQUIRE(big.line_size() > 65536);

    auto by_name = nss::group_by_name("cgnss-big");
    INFO((by_name ? "" : by_name.error()));
    REQUIRE(by_name);
    REQUIRE(*by_name);
    const nss::Group& g = **by_name;
    CHECK(g.members.size() == extra + 1);
    CHECK(std::count(g.members.begin(), g.members.end(), "cgnss-member") == 1);
    CHECK(std::count(g.members.begin(), g.members.end(), "cgbig-05999") == 1);

    auto by_gid = nss::group_by_gid(g.gid);
    REQUIRE(by_gid);
    REQUIRE(*by_gid);
    CHECK((*by_gid)->name == "cgnss-big");
    CHECK((*by_gid)->members.size() == extra + 1);

    // The old fixed buffer: the same lookup fails, and says so instead of "no group".
    auto bounded = nss::group_by_name("cgnss-big", 65536);
    REQUIRE(!bounded);
    CHECK(bounded.error().find("group 'cgnss-big': the entry does not fit in 64 KiB") == 0);

    auto groups = nss::supplementary_groups("cgnss-member", member.gid);
    REQUIRE(groups);
    CHECK(std::find(groups->begin(), groups->end(), g.gid) != groups->end());
}
