// Path resolution for the BPF maps (no root, no VM): the dev encoding must be the kernel's.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "resolve.hpp"

using namespace custguard::daemon::bpf_lsm;

TEST_CASE("kernel_dev is MKDEV, not the glibc st_dev encoding", "[unit]")
{
    CHECK(kernel_dev(makedev(8, 1)) == ((8ull << 20) | 1));
    CHECK(kernel_dev(makedev(259, 70000)) == ((259ull << 20) | 70000));
}

TEST_CASE("mountinfo: ids, devs and escaped mount points", "[unit]")
{
    const auto t = parse_mountinfo(
        "22 1 0:21 / /srv/share\\040data rw,relatime shared:1 - tmpfs tmpfs rw\n"
        "23 22 259:3 /sub /srv/share\\040data/customers rw - ext4 /dev/nvme0n1p3 rw\n");
    REQUIRE(t.points.size() == 2);
    CHECK(t.points[0] == "/srv/share data");
    CHECK(t.points[1] == "/srv/share data/customers");
    CHECK(t.dev_by_id.at(22) == 21);
    CHECK(t.dev_by_id.at(23) == ((259ull << 20) | 3));
}

TEST_CASE("inode_of agrees with stat on this machine", "[unit]")
{
    std::ifstream in("/proc/self/mountinfo");
    std::stringstream s;
    s << in.rdbuf();
    const auto mounts = parse_mountinfo(s.str());
    struct stat st {};
    REQUIRE(::stat("/proc/self/exe", &st) == 0);
    auto id = inode_of("/proc/self/exe", &mounts);
    REQUIRE(id);
    CHECK(id->ino == st.st_ino);
    CHECK(!inode_of("/nonexistent/custguard"));
}

TEST_CASE("resolve_roots adds filesystems mounted below a zone", "[unit]")
{
    std::vector<custguard::policy::ZoneRoot> roots{{"/", 7}};
    std::ifstream in("/proc/self/mountinfo");
    std::stringstream s;
    s << in.rdbuf();
    auto r = resolve_roots(roots, s.str());
    REQUIRE(r);
    REQUIRE(r->size() >= 2);  // / and at least /proc
    for (const auto& x : *r)
        CHECK(x.zone_id == 7);
}

TEST_CASE("files protected by [watch] become file roots keyed by the kernel's dev, zone roots keep their zone", "[unit]")
{
    const std::uint64_t st_dev = makedev(259, 3);
    const std::uint64_t kdev = (259ull << 20) | 3;
    std::vector<ResolvedRoot> roots = {{{kdev, 100}, 1, true}, {{kdev, 200}, 2, false}};
    append_inode_roots(roots, {{st_dev, 500, 1, "/srv/share/public/copy.csv"},
                               {st_dev, 200, 1, "/srv/share/public/link.csv"}});
    REQUIRE(roots.size() == 3);
    CHECK(roots[1].inode == InodeId{kdev, 200});
    CHECK(roots[1].zone_id == 2);  // a zone root stays in its zone
    CHECK(roots[2].inode == InodeId{kdev, 500});
    CHECK(roots[2].zone_id == 1);
    CHECK_FALSE(roots[2].directory);  // a file root: the kernel checks opened files themselves
}
