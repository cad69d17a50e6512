#include "daemon/audit/rules.hpp"

#include <libaudit.h>
#include <sys/stat.h>

#include <algorithm>

#include "daemon/audit/access.hpp"

namespace custguard::audit {

std::string key_for_zone(const std::string& zone) { return std::string(key_prefix) + zone; }

bool is_our_rule(const ListedRule& rule) { return rule.key.starts_with(key_prefix); }

std::vector<WatchSpec> watch_specs(const policy::Policy& policy, std::vector<std::string>& warnings) {
    std::vector<WatchSpec> out;
    for (const auto& z : policy.zones) {
        for (const auto& p : z.paths) {
            struct stat st {};
            if (::stat(p.path.c_str(), &st) != 0) {
                warnings.push_back("audit: zone " + z.name + ": " + p.path + " does not exist; not watched by audit");
                continue;
            }
            out.push_back({p.path, z.name, S_ISDIR(st.st_mode)});
        }
    }
    return out;
}

tl::expected<ReconcileResult, std::string> reconcile_rules(AuditControl& control, const std::vector<WatchSpec>& desired) {
    auto listed = control.list_rules();
    if (!listed) return tl::unexpected(listed.error());
    ReconcileResult res;
    std::vector<bool> present(desired.size(), false);
    for (const auto& rule : *listed) {
        if (!is_our_rule(rule)) continue;
        bool wanted = false;
        if (rule.list == AUDIT_FILTER_EXIT && rule.perm == AUDIT_PERM_READ) {
            for (std::size_t i = 0; i < desired.size(); ++i) {
                if (!present[i] && desired[i].path == rule.path && desired[i].dir == rule.dir &&
                    key_for_zone(desired[i].zone) == rule.key) {
                    present[i] = wanted = true;
                    break;
                }
            }
        }
        if (wanted) {
            ++res.kept;
            continue;
        }
        if (auto r = control.remove(rule); !r) return tl::unexpected(r.error());
        ++res.removed;
    }
    for (std::size_t i = 0; i < desired.size(); ++i) {
        if (present[i]) continue;
        if (auto r = control.add_read_watch(desired[i].path, key_for_zone(desired[i].zone), desired[i].dir); !r) {
            res.warnings.push_back("audit: zone " + desired[i].zone + ": " + r.error());
            continue;
        }
        ++res.added;
    }
    return res;
}

tl::expected<std::size_t, std::string> remove_our_rules(AuditControl& control) {
    auto listed = control.list_rules();
    if (!listed) return tl::unexpected(listed.error());
    std::size_t n = 0;
    for (const auto& rule : *listed) {
        if (!is_our_rule(rule)) continue;
        if (auto r = control.remove(rule); !r) return tl::unexpected(r.error());
        ++n;
    }
    return n;
}

}  // namespace custguard::audit
