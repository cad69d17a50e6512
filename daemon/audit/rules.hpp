// Audit watch rules for the zones: `-w <root> -p r -k custguard:<instance>:<zone>` per zone
// root while there are at most max_watch_rules of them; beyond that, fewer and wider roots
// (common parent directories) keyed custguard:<instance>:*, whose events are assigned to a
// zone by their path in user space. Reconciled against the kernel's list. Only this instance's rules (and untagged
// "custguard:<zone>" ones left by versions before instance tags) are ever changed or
// removed; other instances' and everybody else's rules are left alone.
#pragma once

#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "custguard/policy/policy.hpp"
#include "daemon/audit/netlink.hpp"

namespace custguard::audit {

struct WatchSpec {
    std::string path;
    std::string zone;  // shared_root_zone: a root of several zones (or of a nested one)
    bool dir = false;  // a tree watch
    bool operator==(const WatchSpec&) const = default;
};

// The kernel walks its syscall-exit rule list on every system call of every process, so
// the cost of each tree rule is paid machine-wide (custguardd(8) AUDIT has the figures):
// the rule count is bounded whatever the number of zones.
inline constexpr std::size_t max_watch_rules = 16;
// The "zone" of a rule that covers several zones; not a valid zone name (policy names are
// [A-Za-z0-9._-]), so a key never names a zone by accident.
inline constexpr std::string_view shared_root_zone = "*";

// The watches a policy needs: one per zone path while there are at most `max_rules`,
// else the fewest common parent directories (never "/") that bring the count within the
// bound. Zone paths that do not exist are left out, with a warning (the kernel cannot
// watch them; the enforcer covers them once they exist).
std::vector<WatchSpec> watch_specs(const policy::Policy& policy, std::vector<std::string>& warnings,
                                   std::size_t max_rules = max_watch_rules);

// The bounded roots for `exact` (one spec per zone path), as watch_specs() does. Pure.
std::vector<WatchSpec> bounded_specs(std::vector<WatchSpec> exact, std::size_t max_rules);

// This instance's rule (or an untagged one of an older version, which nobody else owns).
bool is_our_rule(const ListedRule& rule, std::string_view instance);

struct ReconcileResult {
    std::size_t added = 0;
    std::size_t removed = 0;
    std::size_t kept = 0;
    std::vector<std::string> warnings;  // watches the kernel refused
};

// Make the kernel's rules of this instance exactly `desired`.
tl::expected<ReconcileResult, std::string> reconcile_rules(AuditControl& control, std::string_view instance,
                                                           const std::vector<WatchSpec>& desired);
// Remove every rule of this instance; returns how many.
tl::expected<std::size_t, std::string> remove_our_rules(AuditControl& control, std::string_view instance);

// The instance tag of a daemon: 8 hex digits of a hash of its state directory, which
// no two instances on one machine share.
std::string instance_tag(std::string_view state_dir);

}  // namespace custguard::audit
