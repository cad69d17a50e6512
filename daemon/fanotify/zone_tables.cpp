#include "daemon/fanotify/zone_tables.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace custguard::daemon::fan {

namespace {

std::uint32_t zone_flags(const policy::CompiledZone& z) {
    std::uint32_t flags = 0;
    if (z.on_violation == policy::Violation::audit) flags |= CG_ZONE_VIOLATION_AUDIT;
    if (z.record_allowed) flags |= CG_ZONE_RECORD_ALLOWED;
    if (z.sensitivity == policy::Sensitivity::sensitive) flags |= CG_ZONE_SENSITIVE;
    if (z.programs_required) flags |= CG_ZONE_PROGRAMS;
    if (!z.programs_strict) flags |= CG_ZONE_PROGRAMS_LAX;
    return flags;
}

}  // namespace

std::uint32_t ZoneTables::zone_id(std::string_view name) const {
    for (std::size_t i = 0; i < zone_names_.size(); ++i)
        if (zone_names_[i] == name) return static_cast<std::uint32_t>(i + 1);
    return 0;
}

const std::string& ZoneTables::zone_name(std::uint32_t zone_id) const {
    static const std::string none;
    return zone_id >= 1 && zone_id <= zone_names_.size() ? zone_names_[zone_id - 1] : none;
}

tl::expected<ZoneTables, std::string> ZoneTables::build(const policy::Compiled& compiled,
                                                        std::vector<std::string>& warnings) {
    ZoneTables t;
    std::uint32_t max_id = 0;
    for (const auto& z : compiled.zones) {
        if (z.id == 0) return tl::unexpected("zone " + z.name + " has id 0");
        max_id = std::max(max_id, z.id);
    }
    t.zone_flags_.assign(max_id, 0);
    t.zone_groups_.assign(max_id, false);
    t.zone_names_.assign(max_id, {});
    t.zone_clients_.assign(max_id, {});
    std::vector<bool> known(max_id, false);
    for (const auto& z : compiled.zones) {
        t.zone_flags_[z.id - 1] = zone_flags(z);
        t.zone_names_[z.id - 1] = z.name;
        t.zone_clients_[z.id - 1].required = z.clients_required;
        known[z.id - 1] = true;
    }
    auto valid_zone = [&](std::uint32_t id) { return id >= 1 && id <= max_id && known[id - 1]; };

    for (const auto& r : compiled.roots) {
        if (!valid_zone(r.zone_id))
            return tl::unexpected("root " + r.path + " names unknown zone " + std::to_string(r.zone_id));
        struct stat st {};
        if (::stat(r.path.c_str(), &st) != 0) {
            warnings.push_back("zone root " + r.path + " cannot be resolved: " + std::strerror(errno));
            continue;
        }
        InodeKey key{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
        // The same inode listed twice (bind mount, hard link): the later (deeper, as roots
        // are sorted by path) entry wins, as it would for path-based nesting.
        t.roots_[key] = r.zone_id;
        t.resolved_.push_back({r.path, r.zone_id, key, S_ISDIR(st.st_mode)});
    }
    // Single files protected by inode ([watch] protect): no path is resolved for the
    // decision. A path on the same filesystem is kept for marking it (the file's own
    // path, or the nearest existing directory above it, since the file may have moved).
    for (const auto& r : compiled.inode_roots) {
        if (!valid_zone(r.zone_id)) return tl::unexpected("protected file " + r.path + " names unknown zone");
        InodeKey key{r.dev, r.ino};
        t.roots_.emplace(key, r.zone_id);  // a zone root of the policy keeps its own zone
        std::string at = r.path;
        struct stat st {};
        while (!at.empty() && (::stat(at.c_str(), &st) != 0 || static_cast<std::uint64_t>(st.st_dev) != r.dev)) {
            auto slash = at.rfind('/');
            at = slash == 0 || slash == std::string::npos ? std::string() : at.substr(0, slash);
        }
        if (at.empty()) {
            warnings.push_back("protected file " + r.path + ": its filesystem is not reachable from that path; "
                               "it is protected again once the filesystem is marked for a zone");
            continue;
        }
        if (!S_ISDIR(st.st_mode)) at = at.substr(0, std::max<std::size_t>(at.rfind('/'), 1));
        t.resolved_.push_back({at, r.zone_id, key, true, true});
    }
    for (const auto& s : compiled.subjects) {
        if (!valid_zone(s.zone_id)) return tl::unexpected(std::string("subject row names unknown zone"));
        t.subjects_.insert({s.zone_id, s.kind == policy::SubjectKind::uid ? 0u : 1u, s.id});
        if (s.kind == policy::SubjectKind::gid) t.zone_groups_[s.zone_id - 1] = true;
    }
    for (const auto& g : compiled.grants) {
        if (!valid_zone(g.zone_id)) return tl::unexpected(std::string("grant row names unknown zone"));
        auto& exp = t.grants_[(std::uint64_t{g.zone_id} << 32) | g.uid];
        exp = std::max(exp, g.expires_at);
    }
    for (const auto& d : compiled.denies) {
        if (!valid_zone(d.zone_id)) return tl::unexpected(std::string("deny row names unknown zone"));
        auto& exp = t.denies_[(std::uint64_t{d.zone_id} << 32) | d.uid];
        exp = std::max(exp, d.expires_at);
    }
    for (const auto& d : compiled.client_denies) {
        if (!valid_zone(d.zone_id)) return tl::unexpected(std::string("client deny row names unknown zone"));
        t.zone_clients_[d.zone_id - 1].denies.push_back(d);
    }
    for (const auto& c : compiled.clients) {
        if (!valid_zone(c.zone_id)) return tl::unexpected(std::string("client row names unknown zone"));
        t.zone_clients_[c.zone_id - 1].rows.push_back(c);
    }
    for (const auto& p : compiled.programs) {
        if (!valid_zone(p.zone_id)) return tl::unexpected(std::string("program row names unknown zone"));
        struct stat st {};
        if (::stat(p.path.c_str(), &st) != 0) {
            warnings.push_back("program " + p.path + " cannot be resolved: " + std::strerror(errno));
            continue;
        }
        t.programs_.insert({p.zone_id, {static_cast<std::uint64_t>(st.st_dev),
                                        static_cast<std::uint64_t>(st.st_ino)}});
    }
    return t;
}

std::vector<std::uint64_t> ZoneTables::devices() const {
    std::vector<std::uint64_t> devs;
    for (const auto& r : resolved_) devs.push_back(r.key.dev);
    std::sort(devs.begin(), devs.end());
    devs.erase(std::unique(devs.begin(), devs.end()), devs.end());
    return devs;
}

bool ZoneTables::client_allowed(std::uint32_t zone_id, const policy::ClientAddress& a, std::uint64_t now) const {
    if (zone_id == 0 || zone_id > zone_clients_.size()) return false;
    const auto& rows = zone_clients_[zone_id - 1].rows;
    return std::any_of(rows.begin(), rows.end(), [&](const policy::ClientRow& r) {
        return (r.expires_at == 0 || now < r.expires_at) && policy::in_network(r.family, r.prefix, r.addr, a);
    });
}

bool ZoneTables::client_revoked(std::uint32_t zone_id, const policy::ClientAddress& a, std::uint64_t now) const {
    if (zone_id == 0 || zone_id > zone_clients_.size()) return false;
    const auto& rows = zone_clients_[zone_id - 1].denies;
    return std::any_of(rows.begin(), rows.end(), [&](const policy::ClientDenyRow& r) {
        return now < r.expires_at && policy::in_network(r.family, r.family == 4 ? 32 : 128, r.addr, a);
    });
}

Verdict ZoneTables::decide(std::uint32_t zone_id, const Subject& s) const {
    Verdict v;
    v.zone_id = zone_id;
    if (zone_id == 0 || zone_id > zone_flags_.size()) return v;
    const std::uint32_t flags = zone_flags_[zone_id - 1];

    bool allowed = true;
    if (auto it = denies_.find((std::uint64_t{zone_id} << 32) | s.uid); it != denies_.end() && s.now < it->second) {
        // A deny row in force overrides every allow, programs included.
        v.decision = (flags & CG_ZONE_VIOLATION_AUDIT) ? CG_DECISION_AUDIT : CG_DECISION_DENY;
        v.rule = CG_RULE_REVOKED;
        v.record = true;
        return v;
    }
    if (subjects_.contains({zone_id, 0, s.uid})) {
        v.rule = CG_RULE_USER;
    } else if (std::any_of(s.gids.begin(), s.gids.end(),
                           [&](std::uint32_t g) { return subjects_.contains({zone_id, 1, g}); })) {
        v.rule = CG_RULE_GROUP;
    } else if (auto it = grants_.find((std::uint64_t{zone_id} << 32) | s.uid);
               it != grants_.end() && s.now < it->second) {
        v.rule = CG_RULE_GRANT;
    } else {
        allowed = false;
        v.rule = CG_RULE_NOT_ALLOWED;
    }
    if (allowed && (flags & CG_ZONE_PROGRAMS)) {
        if (!programs_.contains({zone_id, s.exe})) {
            allowed = false;
            v.rule = CG_RULE_PROGRAM;
        } else if (s.untrusted && !(flags & CG_ZONE_PROGRAMS_LAX)) {
            allowed = false;
            v.rule = s.untrusted;
        }
    }
    if (allowed && s.remote &&
        std::any_of(s.clients.begin(), s.clients.end(), [&](const auto& a) { return client_revoked(zone_id, a, s.now); })) {
        // A client in its cool-down, among any the server process serves: refused like a
        // revoked user, whatever allow_clients lists.
        allowed = false;
        v.rule = CG_RULE_REVOKED;
    } else if (allowed && s.remote && zone_requires_clients(zone_id)) {
        // Every address the server process serves: the open does not say which of its
        // connections carried the request.
        const bool all_listed = !s.clients.empty() && std::all_of(s.clients.begin(), s.clients.end(), [&](const auto& a) {
            return client_allowed(zone_id, a, s.now);
        });
        if (!all_listed) {
            allowed = false;
            v.rule = CG_RULE_CLIENT_NOT_ALLOWED;
        }
    }
    if (allowed) {
        v.decision = CG_DECISION_ALLOW;
        v.record = (flags & CG_ZONE_RECORD_ALLOWED) != 0;
    } else {
        v.decision = (flags & CG_ZONE_VIOLATION_AUDIT) ? CG_DECISION_AUDIT : CG_DECISION_DENY;
        v.record = true;
    }
    return v;
}

}  // namespace custguard::daemon::fan
