#include "resolve.hpp"

#include "custguard/common/mountinfo.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <sstream>

#include <sys/stat.h>
#include <sys/sysmacros.h>

namespace custguard::daemon::bpf_lsm {

std::uint64_t kernel_dev(dev_t st_dev)
{
    return (static_cast<std::uint64_t>(major(st_dev)) << 20) | minor(st_dev);
}

tl::expected<InodeId, std::string> inode_of(const std::string& path, const MountTable* mounts,
                                            bool* directory)
{
    struct statx stx {};
    if (::statx(AT_FDCWD, path.c_str(), 0, STATX_TYPE | STATX_INO | STATX_MNT_ID, &stx) != 0)
        return tl::make_unexpected(path + ": " + std::strerror(errno));
    // From the same statx as the inode number: a path swapped meanwhile cannot pair one
    // inode with another's type. Unknown counts as not a directory (the safe side).
    if (directory != nullptr)
        *directory = (stx.stx_mask & STATX_TYPE) != 0 && S_ISDIR(stx.stx_mode);
    std::uint64_t dev = kernel_dev(makedev(stx.stx_dev_major, stx.stx_dev_minor));
    if (mounts != nullptr && (stx.stx_mask & STATX_MNT_ID) != 0) {
        auto it = mounts->dev_by_id.find(static_cast<int>(stx.stx_mnt_id));
        if (it != mounts->dev_by_id.end())
            dev = it->second;
    }
    return InodeId{dev, static_cast<std::uint64_t>(stx.stx_ino)};
}

namespace {

std::string canonical(const std::string& path)
{
    char buf[PATH_MAX];
    if (::realpath(path.c_str(), buf) == nullptr)
        return path;
    return buf;
}

}  // namespace

MountTable parse_mountinfo(std::string_view mountinfo)
{
    MountTable t;
    for (auto& m : common::parse_mountinfo(mountinfo)) {
        t.dev_by_id[m.id] = (static_cast<std::uint64_t>(m.major) << 20) | m.minor;
        t.points.push_back(std::move(m.mount_point));
    }
    return t;
}

tl::expected<std::vector<ResolvedRoot>, std::string> resolve_roots(
    const std::vector<policy::ZoneRoot>& roots, std::string_view mountinfo)
{
    std::vector<ResolvedRoot> out;
    const auto mounts = parse_mountinfo(mountinfo);
    for (const auto& r : roots) {
        bool directory = false;
        auto id = inode_of(r.path, &mounts, &directory);
        if (!id)
            return tl::make_unexpected("zone root " + id.error());
        out.push_back({*id, r.zone_id, directory});
        const std::string dir = canonical(r.path);
        const std::string prefix = dir == "/" ? "/" : dir + "/";
        for (const auto& mp : mounts.points) {
            if (mp.size() <= prefix.size() || mp.compare(0, prefix.size(), prefix) != 0)
                continue;
            // A mount that vanished since mountinfo was read is not an error.
            bool sub_dir = false;  // a bind-mounted file is a root that is not a directory
            if (auto sub = inode_of(mp, &mounts, &sub_dir))
                out.push_back({*sub, r.zone_id, sub_dir});
        }
    }
    return out;
}

void append_inode_roots(std::vector<ResolvedRoot>& roots, const std::vector<policy::InodeRoot>& files)
{
    for (const auto& f : files) {
        const InodeId id{kernel_dev(static_cast<dev_t>(f.dev)), f.ino};
        if (std::none_of(roots.begin(), roots.end(), [&](const ResolvedRoot& r) { return r.inode == id; }))
            roots.push_back({id, f.zone_id, false});
    }
}

}  // namespace custguard::daemon::bpf_lsm
