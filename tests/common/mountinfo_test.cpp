// The one mountinfo parser both enforcers use (custguard/common/mountinfo.hpp).
#include <catch2/catch.hpp>

#include <algorithm>

#include "custguard/common/mountinfo.hpp"

using custguard::common::parse_mountinfo;
using custguard::common::unescape_mountinfo;

TEST_CASE("mountinfo escapes are undone for space, tab, newline and backslash, other text is kept", "[unit][common]") {
    struct Row {
        const char* in;
        const char* out;
    };
    const Row rows[] = {
        {"/srv/share", "/srv/share"},
        {"/srv/my\\040share", "/srv/my share"},
        {"/a\\011b\\012c\\134d", "/a\tb\nc\\d"},
        {"/trailing\\04", "/trailing\\04"},  // cut short: kept as written
        {"/not\\999octal", "/not\\999octal"},
        {"/high\\400", "/high\\400"},  // above a byte: kept
        {"", ""},
    };
    for (const auto& r : rows) {
        INFO(r.in);
        CHECK(unescape_mountinfo(r.in) == r.out);
    }
}

TEST_CASE("mountinfo lines give id, parent, device, root and mount point, damaged lines are skipped", "[unit][common]") {
    const auto m = parse_mountinfo(
        "22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw\n"
        "35 22 0:31 /subvol/@home /home rw shared:20 - btrfs /dev/sda1 rw\n"
        "garbage line\n"
        "36 22 x:1 / /bad rw - tmpfs tmpfs rw\n"
        "37 22 0:40 /data /srv/my\\040share rw - xfs /dev/sdb rw\n"
        "38 22 0:41 /");  // cut short
    REQUIRE(m.size() == 3);
    CHECK(m[0].id == 22);
    CHECK(m[0].parent == 1);
    CHECK(m[0].major == 259);
    CHECK(m[0].minor == 2);
    CHECK(m[0].dev() == makedev(259, 2));
    CHECK(m[0].root == "/");
    CHECK(m[1].root == "/subvol/@home");
    CHECK(m[1].mount_point == "/home");
    CHECK(m[2].mount_point == "/srv/my share");
}

TEST_CASE("this process's mountinfo has a root mount", "[unit][common]") {
    const auto m = custguard::common::read_mountinfo();
    REQUIRE_FALSE(m.empty());
    CHECK(std::any_of(m.begin(), m.end(), [](const auto& e) { return e.mount_point == "/"; }));
}
