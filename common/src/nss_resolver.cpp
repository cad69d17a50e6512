#include "custguard/common/nss_resolver.hpp"

#include "custguard/common/nss.hpp"

namespace custguard::common {

// The policy asks yes or no: a failed lookup (nss.hpp says why) counts as unknown, and
// the policy's own diagnostic names the account.
std::optional<std::uint32_t> NssResolver::user_id(std::string_view name) const {
    auto user = nss::user_by_name(name);
    if (!user || !*user) return std::nullopt;
    return (*user)->uid;
}

std::optional<std::uint32_t> NssResolver::group_id(std::string_view name) const {
    auto group = nss::group_by_name(name);
    if (!group || !*group) return std::nullopt;
    return (*group)->gid;
}

}  // namespace custguard::common
