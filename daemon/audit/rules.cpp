#include "daemon/audit/rules.hpp"

#include <libaudit.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <unordered_map>

#include "daemon/audit/access.hpp"

namespace custguard::audit {

bool is_our_rule(const ListedRule& rule, std::string_view instance) {
    if (!rule.key.starts_with(key_prefix)) return false;
    const std::string_view rest = std::string_view(rule.key).substr(key_prefix.size());
    const auto colon = rest.find(':');
    if (colon == std::string_view::npos) return true;  // untagged: an older version's
    return !instance.empty() && rest.substr(0, colon) == instance;
}

std::string instance_tag(std::string_view state_dir) {
    std::uint32_t h = 2166136261u;  // FNV-1a
    for (unsigned char c : state_dir) {
        h ^= c;
        h *= 16777619u;
    }
    char out[9];
    std::snprintf(out, sizeof out, "%08x", h);
    return out;
}

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

tl::expected<ReconcileResult, std::string> reconcile_rules(AuditControl& control, std::string_view instance,
                                                           const std::vector<WatchSpec>& desired) {
    auto listed = control.list_rules();
    if (!listed) return tl::unexpected(listed.error());
    ReconcileResult res;
    // By key, path and kind: linear in the rules however many zones (10,000 and more).
    auto id = [](const std::string& key, const std::string& path, bool dir) {
        return key + '\0' + path + '\0' + (dir ? 'd' : 'f');
    };
    std::unordered_map<std::string, std::size_t> wanted_at;
    wanted_at.reserve(desired.size());
    for (std::size_t i = 0; i < desired.size(); ++i)
        wanted_at.emplace(id(audit_key(instance, desired[i].zone), desired[i].path, desired[i].dir), i);
    std::vector<bool> present(desired.size(), false);
    for (const auto& rule : *listed) {
        if (!is_our_rule(rule, instance)) continue;
        if (rule.list == AUDIT_FILTER_EXIT && rule.perm == AUDIT_PERM_READ) {
            auto it = wanted_at.find(id(rule.key, rule.path, rule.dir));
            if (it != wanted_at.end() && !present[it->second]) {
                present[it->second] = true;
                ++res.kept;
                continue;
            }
        }
        if (auto r = control.remove(rule); !r) return tl::unexpected(r.error());
        ++res.removed;
    }
    for (std::size_t i = 0; i < desired.size(); ++i) {
        if (present[i]) continue;
        if (auto r = control.add_read_watch(desired[i].path, audit_key(instance, desired[i].zone), desired[i].dir); !r) {
            res.warnings.push_back("audit: zone " + desired[i].zone + ": " + r.error());
            continue;
        }
        ++res.added;
    }
    return res;
}

tl::expected<std::size_t, std::string> remove_our_rules(AuditControl& control, std::string_view instance) {
    auto listed = control.list_rules();
    if (!listed) return tl::unexpected(listed.error());
    std::size_t n = 0;
    for (const auto& rule : *listed) {
        if (!is_our_rule(rule, instance)) continue;
        if (auto r = control.remove(rule); !r) return tl::unexpected(r.error());
        ++n;
    }
    return n;
}

}  // namespace custguard::audit
