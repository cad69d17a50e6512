// User and group lookups through NSS (files, LDAP, winbind, sssd...). The reentrant libc
// calls fail with ERANGE when the caller's buffer is too small for the entry; a group
// with thousands of members easily needs more than 64 KiB. These helpers grow the buffer
// until the entry fits, up to `max_buffer`, so a large entry is never taken for a missing
// one. Results: the entry, std::nullopt when NSS has no such entry, or an error that
// names the lookup and says why it failed.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

namespace custguard::common::nss {

// Far above any real entry; keeps a corrupt or hostile directory from exhausting memory.
inline constexpr std::size_t default_max_buffer = std::size_t{16} << 20;

struct User {
    std::string name;
    uid_t uid = 0;
    gid_t gid = 0;  // primary group
};

struct Group {
    std::string name;
    gid_t gid = 0;
    std::vector<std::string> members;  // listed members (not users whose primary group it is)
};

template <typename T>
using Lookup = tl::expected<std::optional<T>, std::string>;

Lookup<User> user_by_name(std::string_view name, std::size_t max_buffer = default_max_buffer);
Lookup<User> user_by_uid(uid_t uid, std::size_t max_buffer = default_max_buffer);
Lookup<Group> group_by_name(std::string_view name, std::size_t max_buffer = default_max_buffer);
Lookup<Group> group_by_gid(gid_t gid, std::size_t max_buffer = default_max_buffer);

// The user's primary group and every group that lists him (getgrouplist), primary first.
tl::expected<std::vector<gid_t>, std::string> supplementary_groups(std::string_view user, gid_t primary);

}  // namespace custguard::common::nss
