// Path -> (dev, ino) resolution for the kernel maps. The kernel identifies inodes by the
// superblock's internal dev_t, which is not glibc's st_dev encoding.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <sys/types.h>

#include <tl/expected.hpp>

#include "custguard/policy/compile.hpp"

namespace custguard::daemon::bpf_lsm {

// The kernel's dev_t for a st_dev: MKDEV(major, minor) = major << 20 | minor.
std::uint64_t kernel_dev(dev_t st_dev);

struct InodeId {
    std::uint64_t dev = 0;  // kernel encoding
    std::uint64_t ino = 0;
    bool operator==(const InodeId&) const = default;
};

// The mounts of a mountinfo text: id -> the superblock's dev_t, and the mount points.
struct MountTable {
    std::unordered_map<int, std::uint64_t> dev_by_id;  // kernel encoding
    std::vector<std::string> points;                   // unescaped
};
MountTable parse_mountinfo(std::string_view mountinfo);

// Follows symlinks: a zone path or program that is a symlink means its target. The dev
// is the superblock's (what the kernel sees in inode->i_sb), taken from the mount table
// by statx's mount id: stat's st_dev differs from it on btrfs subvolumes.
// `directory`, when given, receives whether the inode is a directory.
tl::expected<InodeId, std::string> inode_of(const std::string& path,
                                            const MountTable* mounts = nullptr,
                                            bool* directory = nullptr);

struct ResolvedRoot {
    InodeId inode;
    std::uint32_t zone_id = 0;
    bool directory = true;  // false: a file zone (the kernel then checks opened files too)
};

// Every zone root as (dev, ino), plus the root of every filesystem mounted below a zone
// directory (the kernel walks dentry parents, which stop at a filesystem's root).
// `mountinfo` is the text of /proc/self/mountinfo.
tl::expected<std::vector<ResolvedRoot>, std::string> resolve_roots(
    const std::vector<policy::ZoneRoot>& roots, std::string_view mountinfo);

// Adds the files protected by inode ([watch] protect) as file roots (the kernel then
// checks opened files themselves), their st_dev turned into the kernel's encoding. An
// inode that is a zone root already keeps that zone.
void append_inode_roots(std::vector<ResolvedRoot>& roots, const std::vector<policy::InodeRoot>& files);

}  // namespace custguard::daemon::bpf_lsm
