// Audit watch rules for the zones: `-w <root> -p r -k custguard:<zone>` per zone root,
// reconciled against the kernel's list. Only rules whose key starts with "custguard:"
// are ever changed or removed; everybody else's rules are left alone.
#pragma once

#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "custguard/policy/policy.hpp"
#include "daemon/audit/netlink.hpp"

namespace custguard::audit {

struct WatchSpec {
    std::string path;
    std::string zone;
    bool dir = false;  // a tree watch
    bool operator==(const WatchSpec&) const = default;
};

// The watches a policy needs. Zone paths that do not exist are left out, with a warning
// (the kernel cannot watch them; the enforcer covers them once they exist).
std::vector<WatchSpec> watch_specs(const policy::Policy& policy, std::vector<std::string>& warnings);

std::string key_for_zone(const std::string& zone);
bool is_our_rule(const ListedRule& rule);

struct ReconcileResult {
    std::size_t added = 0;
    std::size_t removed = 0;
    std::size_t kept = 0;
    std::vector<std::string> warnings;  // watches the kernel refused
};

// Make the kernel's custguard:* rules exactly `desired`.
tl::expected<ReconcileResult, std::string> reconcile_rules(AuditControl& control, const std::vector<WatchSpec>& desired);
// Remove every custguard:* rule; returns how many.
tl::expected<std::size_t, std::string> remove_our_rules(AuditControl& control);

}  // namespace custguard::audit
