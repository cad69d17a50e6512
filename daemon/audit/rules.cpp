#include "daemon/audit/rules.hpp"

#include <libaudit.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <unordered_map>
#include <unordered_set>

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

namespace {

std::size_t depth(std::string_view path) { return static_cast<std::size_t>(std::count(path.begin(), path.end(), '/')); }

bool is_under(std::string_view path, std::string_view root) {
    return path.size() > root.size() && path.starts_with(root) && (root == "/" || path[root.size()] == '/');
}

// Without duplicates and without paths under another one of the set; sorted.
void keep_outermost(std::vector<std::string>& paths) {
    const std::unordered_set<std::string> all(paths.begin(), paths.end());
    std::vector<std::string> out;
    for (const auto& p : all) {
        bool covered = false;
        for (auto cut = p.rfind('/'); cut != std::string::npos && cut > 0 && !covered; cut = p.rfind('/', cut - 1))
            covered = all.contains(p.substr(0, cut));
        if (!covered) out.push_back(p);
    }
    std::sort(out.begin(), out.end());
    paths = std::move(out);
}

}  // namespace

std::vector<WatchSpec> bounded_specs(std::vector<WatchSpec> exact, std::size_t max_rules) {
    if (exact.size() <= max_rules) return exact;
    std::vector<std::string> roots;
    roots.reserve(exact.size());
    for (const auto& s : exact) roots.push_back(s.path);
    keep_outermost(roots);
    // Lift the deepest roots to their parents until the bound holds; a root directly
    // under "/" stays (a rule on "/" would report every open of the machine).
    while (roots.size() > max_rules) {
        std::size_t deepest = 0;
        for (const auto& r : roots) deepest = std::max(deepest, depth(r));
        if (deepest <= 1) break;
        for (auto& r : roots)
            if (depth(r) == deepest) r = std::filesystem::path(r).parent_path().string();
        keep_outermost(roots);
    }
    std::vector<WatchSpec> out;
    out.reserve(roots.size());
    for (const auto& r : roots) {
        // A root that is one zone path with nothing else under it keeps its zone's key.
        const WatchSpec* only = nullptr;
        std::size_t covered = 0;
        for (const auto& s : exact)
            if (s.path == r || is_under(s.path, r)) {
                ++covered;
                if (s.path == r) only = &s;
            }
        if (covered == 1 && only) out.push_back(*only);
        else  // one file in two zones stays a file watch
            out.push_back({r, std::string(shared_root_zone), !only || only->dir});
    }
    return out;
}

std::vector<WatchSpec> watch_specs(const policy::Policy& policy, std::vector<std::string>& warnings,
                                   std::size_t max_rules) {
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
    return bounded_specs(std::move(out), max_rules);
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
