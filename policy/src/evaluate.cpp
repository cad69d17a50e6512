#include "custguard/policy/evaluate.hpp"

#include <algorithm>
#include <bitset>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace custguard::policy {
namespace {

struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
        return std::hash<std::string_view>{}(s);
    }
};

std::uint64_t pair_key(std::uint32_t a, std::uint32_t b) {
    return (static_cast<std::uint64_t>(a) << 32) | b;
}

}  // namespace

// Indexes built once per policy. Lookups are hash lookups keyed by what the request
// carries, so the cost depends on the request (path depth, number of groups), never on
// the number of zones, users or grants.
struct Evaluator::Index {
    const Policy* policy = nullptr;
    std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>> roots;
    // Only prefixes whose length some root has are hashed: with few zones, most
    // components of a path are skipped without hashing.
    std::bitset<4097> root_lengths;
    std::size_t max_root_length = 0;
    std::unordered_set<std::uint64_t> users;   // (zone index, uid)
    std::unordered_set<std::uint64_t> groups;  // (zone index, gid)
    std::unordered_map<std::uint64_t, std::uint64_t> grants;  // (zone index, uid) -> expiry
    std::unordered_map<std::uint64_t, std::uint64_t> denies;  // (zone index, uid) -> expiry
    std::vector<std::unordered_set<std::string, StringHash, std::equal_to<>>> programs;

    std::uint32_t zone_index_of(std::string_view path) const {
        // Deepest root first: walk from the whole path to its shortest ancestor.
        std::size_t len = std::min(path.size(), max_root_length);
        if (len < path.size()) {
            len = path.rfind('/', len);
            if (len == std::string_view::npos) return 0;
        }
        while (len > 0) {
            if (len < root_lengths.size() ? root_lengths.test(len) : true) {
                if (path.size() == len || path[len] == '/') {
                    auto it = roots.find(path.substr(0, len));
                    if (it != roots.end()) return it->second;
                }
            }
            len = path.rfind('/', len - 1);
            if (len == std::string_view::npos) break;
        }
        return 0;
    }
};

Evaluator::Evaluator(const Policy& policy) : index_(std::make_unique<Index>()) {
    auto& ix = *index_;
    ix.policy = &policy;
    ix.programs.resize(policy.zones.size());
    for (std::uint32_t z = 0; z < policy.zones.size(); ++z) {
        const Zone& zone = policy.zones[z];
        for (const auto& p : zone.paths) {
            ix.roots.emplace(p.path, z + 1);
            if (p.path.size() < ix.root_lengths.size()) ix.root_lengths.set(p.path.size());
            ix.max_root_length = std::max(ix.max_root_length, p.path.size());
        }
        for (const auto& u : zone.allow_users)
            (u.kind == Principal::Kind::user ? ix.users : ix.groups).insert(pair_key(z, u.id));
        for (const auto& prog : zone.allow_programs) ix.programs[z].insert(prog.path);
    }
    auto add_latest = [&](std::unordered_map<std::uint64_t, std::uint64_t>& to, const auto& entries) {
        for (const auto& e : entries) {
            for (std::uint32_t z = 0; z < policy.zones.size(); ++z) {
                if (policy.zones[z].name != e.zone) continue;
                auto& expiry = to[pair_key(z, e.uid)];
                expiry = std::max(expiry, e.expires_at);
            }
        }
    };
    add_latest(ix.grants, policy.grants);
    add_latest(ix.denies, policy.denies);
}

Evaluator::~Evaluator() = default;
Evaluator::Evaluator(Evaluator&&) noexcept = default;
Evaluator& Evaluator::operator=(Evaluator&&) noexcept = default;

const Zone* Evaluator::zone_of(std::string_view path) const {
    auto z = index_->zone_index_of(path);
    return z == 0 ? nullptr : &index_->policy->zones[z - 1];
}

Decision Evaluator::evaluate(const AccessRequest& request) const {
    const auto& ix = *index_;
    Decision d;
    auto z = ix.zone_index_of(request.path);
    if (z == 0) return d;  // allow, outside_zones, not recorded
    std::uint32_t zi = z - 1;
    const Zone& zone = ix.policy->zones[zi];
    d.zone = &zone;

    Rule granted = Rule::not_allowed;
    if (auto deny = ix.denies.find(pair_key(zi, request.uid));
        deny != ix.denies.end() && deny->second > request.now) {
        granted = Rule::revoked;
    } else if (ix.users.count(pair_key(zi, request.uid))) {
        granted = Rule::allowed_user;
    } else {
        for (auto gid : request.gids) {
            if (ix.groups.count(pair_key(zi, gid))) {
                granted = Rule::allowed_group;
                break;
            }
        }
        if (granted == Rule::not_allowed && !ix.grants.empty()) {
            auto it = ix.grants.find(pair_key(zi, request.uid));
            if (it != ix.grants.end() && it->second > request.now) granted = Rule::grant;
        }
    }
    const bool refused = granted == Rule::not_allowed || granted == Rule::revoked;
    bool program_refused = false;
    if (!refused && !ix.programs[zi].empty()) {
        if (!ix.programs[zi].count(request.exe))
            granted = Rule::program_not_allowed;
        else if (zone.allow_programs_strict && request.untrusted_program != Rule::outside_zones)
            granted = request.untrusted_program;  // allow_programs vouches for its own code only
        program_refused = granted == Rule::program_not_allowed || granted == Rule::program_tampered ||
                          granted == Rule::program_traced;
    }

    bool client_refused = false;
    if (!refused && !program_refused && request.remote) {
        // A client in its bulk-read cool-down: refused like a revoked user, whatever lists it.
        for (const auto& d : ix.policy->client_denies)
            if (d.zone == zone.name && d.expires_at > request.now &&
                std::find(request.clients.begin(), request.clients.end(), d.client) != request.clients.end())
                client_refused = true;
        if (client_refused) granted = Rule::revoked;
    }
    if (!refused && !program_refused && !client_refused && request.remote && !zone.allow_clients.empty()) {
        // Listed, or granted (custguardctl grant add --client) until the grant expires.
        auto listed = [&](const ClientAddress& a) {
            return std::any_of(zone.allow_clients.begin(), zone.allow_clients.end(),
                               [&](const ClientMatch& m) { return m.matches(a); }) ||
                   std::any_of(ix.policy->client_grants.begin(), ix.policy->client_grants.end(),
                               [&](const ClientGrant& g) {
                                   return g.zone == zone.name && request.now < g.expires_at && g.client.matches(a);
                               });
        };
        client_refused = request.clients.empty() ||
                         !std::all_of(request.clients.begin(), request.clients.end(), listed);
        if (client_refused) granted = Rule::client_not_allowed;
    }

    if (refused || program_refused || client_refused) {
        d.rule = granted;
        d.action = zone.on_violation == Violation::deny ? Action::deny : Action::audit;
        d.record = true;
    } else {
        // Permitted reads stay "allow"; the zone decides whether they enter the history.
        d.rule = granted;
        d.action = Action::allow;
        d.record = zone.record_allowed;
    }
    return d;
}

Decision evaluate(const Policy& policy, const AccessRequest& request) {
    return Evaluator(policy).evaluate(request);
}

std::string_view to_string(Rule rule) {
    switch (rule) {
    case Rule::outside_zones: return "outside_zones";
    case Rule::allowed_user: return "allowed_user";
    case Rule::allowed_group: return "allowed_group";
    case Rule::grant: return "grant";
    case Rule::not_allowed: return "not_allowed";
    case Rule::program_not_allowed: return "program_not_allowed";
    case Rule::revoked: return "revoked";
    case Rule::program_tampered: return "program_tampered";
    case Rule::program_traced: return "program_traced";
    case Rule::client_not_allowed: return "client_not_allowed";
    }
    return "?";
}

std::string Decision::reason() const {
    if (!zone) return "the file is outside every zone";
    std::string z = "zone '" + zone->name + "'";
    switch (rule) {
    case Rule::allowed_user: return "the user is listed in allow_users of " + z;
    case Rule::allowed_group: return "a group of the user is listed in allow_users of " + z;
    case Rule::grant: return "the user holds a temporary grant for " + z;
    case Rule::not_allowed:
        return "the user is not allowed in " + z + " (on_violation = " +
               std::string(to_string(zone->on_violation)) + ")";
    case Rule::program_not_allowed:
        return "the program is not in allow_programs of " + z + " (on_violation = " +
               std::string(to_string(zone->on_violation)) + ")";
    case Rule::program_tampered:
        return "the program is in allow_programs of " + z +
               " but was started with dynamic-loader injection (on_violation = " +
               std::string(to_string(zone->on_violation)) + ")";
    case Rule::program_traced:
        return "the program is in allow_programs of " + z + " but is being traced (on_violation = " +
               std::string(to_string(zone->on_violation)) + ")";
    case Rule::client_not_allowed:
        return "the read is served by Samba for a client machine not in allow_clients of " + z +
               ", or whose address could not be established (on_violation = " +
               std::string(to_string(zone->on_violation)) + ")";
    case Rule::revoked:
        return "the user's or the client machine's access to " + z + " is revoked for a time (on_violation = " +
               std::string(to_string(zone->on_violation)) + ")";
    case Rule::outside_zones: break;
    }
    return "the file is outside every zone";
}

}  // namespace custguard::policy
