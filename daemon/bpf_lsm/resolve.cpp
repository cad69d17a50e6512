#include "resolve.hpp"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include <sys/stat.h>
#include <sys/sysmacros.h>

namespace custguard::daemon::bpf_lsm {

std::uint64_t kernel_dev(dev_t st_dev)
{
    return (static_cast<std::uint64_t>(major(st_dev)) << 20) | minor(st_dev);
}

tl::expected<InodeId, std::string> inode_of(const std::string& path)
{
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        return tl::make_unexpected(path + ": " + std::strerror(errno));
    return InodeId{kernel_dev(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
}

namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape(std::string_view s)
{
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size() &&
            s[i + 1] >= '0' && s[i + 1] <= '7') {
            out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
            i += 3;
        } else {
            out += s[i];
        }
    }
    return out;
}

std::string canonical(const std::string& path)
{
    char buf[PATH_MAX];
    if (::realpath(path.c_str(), buf) == nullptr)
        return path;
    return buf;
}

}  // namespace

std::vector<std::string> mount_points(std::string_view mountinfo)
{
    std::vector<std::string> out;
    std::istringstream in{std::string(mountinfo)};
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string id, parent, devno, root, mp;
        if (fields >> id >> parent >> devno >> root >> mp)
            out.push_back(unescape(mp));
    }
    return out;
}

tl::expected<std::vector<ResolvedRoot>, std::string> resolve_roots(
    const std::vector<policy::ZoneRoot>& roots, std::string_view mountinfo)
{
    std::vector<ResolvedRoot> out;
    const auto mps = mount_points(mountinfo);
    for (const auto& r : roots) {
        auto id = inode_of(r.path);
        if (!id)
            return tl::make_unexpected("zone root " + id.error());
        out.push_back({*id, r.zone_id});
        const std::string dir = canonical(r.path);
        const std::string prefix = dir == "/" ? "/" : dir + "/";
        for (const auto& mp : mps) {
            if (mp.size() <= prefix.size() || mp.compare(0, prefix.size(), prefix) != 0)
                continue;
            // A mount that vanished since mountinfo was read is not an error.
            if (auto sub = inode_of(mp))
                out.push_back({*sub, r.zone_id});
        }
    }
    return out;
}

}  // namespace custguard::daemon::bpf_lsm
