#include "custguard/common/nss.hpp"

#include <grp.h>
#include <pwd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

namespace custguard::common::nss {

namespace {

// Runs `call(buffer, size)` (a getXXX_r returning 0 or an errno value and setting its
// result pointer) with a buffer that doubles on ERANGE. `what` names the lookup in errors.
template <typename Entry, typename Call, typename Convert>
auto lookup(const std::string& what, std::size_t max_buffer, Call call, Convert convert)
    -> Lookup<decltype(convert(std::declval<const Entry&>()))> {
    std::vector<char> buffer(std::min<std::size_t>(16384, max_buffer));
    for (;;) {
        Entry entry{};
        Entry* found = nullptr;
        const int rc = call(&entry, buffer.data(), buffer.size(), &found);
        if (rc == 0) {
            if (!found) return std::nullopt;
            return convert(*found);
        }
        // getpwnam_r(3): these also mean "no such entry" for some NSS modules.
        if (rc == ENOENT || rc == ESRCH) return std::nullopt;
        if (rc != ERANGE)
            return tl::unexpected(what + ": " + std::strerror(rc) + "; check the NSS sources in /etc/nsswitch.conf");
        if (buffer.size() >= max_buffer)
            return tl::unexpected(what + ": the entry does not fit in " + std::to_string(max_buffer >> 10) +
                                  " KiB; shorten it (split a huge group) or check the directory for corruption");
        buffer.resize(std::min(buffer.size() * 2, max_buffer));
    }
}

User to_user(const passwd& pw) { return User{pw.pw_name, pw.pw_uid, pw.pw_gid}; }

Group to_group(const group& gr) {
    Group g{gr.gr_name, gr.gr_gid, {}};
    for (char** m = gr.gr_mem; m && *m; ++m) g.members.emplace_back(*m);
    return g;
}

}  // namespace

Lookup<User> user_by_name(std::string_view name, std::size_t max_buffer) {
    const std::string n(name);
    return lookup<passwd>(
        "user '" + n + "'", max_buffer,
        [&](passwd* e, char* b, std::size_t s, passwd** r) { return ::getpwnam_r(n.c_str(), e, b, s, r); }, to_user);
}

Lookup<User> user_by_uid(uid_t uid, std::size_t max_buffer) {
    return lookup<passwd>(
        "uid " + std::to_string(uid), max_buffer,
        [&](passwd* e, char* b, std::size_t s, passwd** r) { return ::getpwuid_r(uid, e, b, s, r); }, to_user);
}

Lookup<Group> group_by_name(std::string_view name, std::size_t max_buffer) {
    const std::string n(name);
    return lookup<group>(
        "group '" + n + "'", max_buffer,
        [&](group* e, char* b, std::size_t s, group** r) { return ::getgrnam_r(n.c_str(), e, b, s, r); }, to_group);
}

Lookup<Group> group_by_gid(gid_t gid, std::size_t max_buffer) {
    return lookup<group>(
        "gid " + std::to_string(gid), max_buffer,
        [&](group* e, char* b, std::size_t s, group** r) { return ::getgrgid_r(gid, e, b, s, r); }, to_group);
}

tl::expected<std::vector<gid_t>, std::string> supplementary_groups(std::string_view user, gid_t primary) {
    const std::string n(user);
    // getgrouplist(3) returns -1 and the count it needs when the array is too small; the
    // count can grow between calls (the directory changed), hence the loop.
    int count = 64;
    std::vector<gid_t> groups;
    for (int attempt = 0; attempt < 8; ++attempt) {
        groups.resize(static_cast<std::size_t>(count));
        int n_groups = count;
        if (::getgrouplist(n.c_str(), primary, groups.data(), &n_groups) >= 0) {
            groups.resize(static_cast<std::size_t>(n_groups));
            return groups;
        }
        if (n_groups <= count) {
            if (count > std::numeric_limits<int>::max() / 2) break;
            count *= 2;
        } else {
            count = n_groups;
        }
    }
    return tl::unexpected("groups of user '" + n + "': getgrouplist did not settle on a count; try again");
}

}  // namespace custguard::common::nss
