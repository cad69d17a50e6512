// Resolves user and group names through NSS (files, LDAP, winbind, sssd...).
#pragma once

#include "custguard/policy/resolver.hpp"

namespace custguard::common {

class NssResolver final : public policy::Resolver {
public:
    std::optional<std::uint32_t> user_id(std::string_view name) const override;
    std::optional<std::uint32_t> group_id(std::string_view name) const override;
};

}  // namespace custguard::common
