#include "custguard/common/nss_resolver.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace custguard::common {

std::optional<std::uint32_t> NssResolver::user_id(std::string_view name) const {
    std::string n(name);
    std::vector<char> buffer(16384);
    passwd pw{};
    passwd* result = nullptr;
    while (getpwnam_r(n.c_str(), &pw, buffer.data(), buffer.size(), &result) == ERANGE)
        buffer.resize(buffer.size() * 2);
    if (!result) return std::nullopt;
    return result->pw_uid;
}

std::optional<std::uint32_t> NssResolver::group_id(std::string_view name) const {
    std::string n(name);
    std::vector<char> buffer(16384);
    group gr{};
    group* result = nullptr;
    while (getgrnam_r(n.c_str(), &gr, buffer.data(), buffer.size(), &result) == ERANGE)
        buffer.resize(buffer.size() * 2);
    if (!result) return std::nullopt;
    return result->gr_gid;
}

}  // namespace custguard::common
