#include "custguard/policy/compile.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <tuple>

namespace custguard::policy {

namespace {
template <typename T>
void sort_unique(std::vector<T>& rows, auto less) {
    std::sort(rows.begin(), rows.end(), less);
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
}
// The numeric rows of one entry: its network, or the addresses its host name resolved to.
std::vector<ClientRow> client_rows(std::uint32_t zone_id, const ClientMatch& c) {
    std::vector<ClientRow> rows;
    if (!c.hostname) {
        ClientRow row{zone_id, c.family, c.prefix, {}};
        std::memcpy(row.addr, c.addr, sizeof row.addr);
        rows.push_back(row);
        return rows;
    }
    for (const auto& a : c.resolved) {
        ClientRow row{zone_id, a.family, static_cast<std::uint8_t>(a.family == 4 ? 32 : 128), {}};
        std::memcpy(row.addr, a.addr, sizeof row.addr);
        rows.push_back(row);
    }
    return rows;
}
}  // namespace

void spread_client_expiry(std::vector<ClientRow>& rows) {
    // 0 (permanent) is later than every time.
    auto later = [](std::uint64_t a, std::uint64_t b) { return a == 0 || b == 0 ? 0 : std::max(a, b); };
    using Net = std::tuple<std::uint32_t, std::uint8_t, std::uint8_t, std::array<std::uint8_t, 16>>;
    auto masked = [](const ClientRow& r, unsigned prefix) {
        std::array<std::uint8_t, 16> a{};
        for (unsigned i = 0; i < 16 && i * 8 < prefix; ++i)
            a[i] = prefix - i * 8 >= 8 ? r.addr[i] : static_cast<std::uint8_t>(r.addr[i] & (0xff << (8 - (prefix - i * 8))));
        return Net{r.zone_id, r.family, static_cast<std::uint8_t>(prefix), a};
    };
    std::map<Net, std::uint64_t> latest;  // per network as written
    for (const auto& r : rows) {
        auto [it, fresh] = latest.emplace(masked(r, r.prefix), r.expires_at);
        if (!fresh) it->second = later(it->second, r.expires_at);
    }
    // Every network containing a row is one of its own prefixes: at most 129 lookups a row.
    for (auto& r : rows) {
        const unsigned bits = r.family == 4 ? 32 : 128;
        for (unsigned p = 0; p <= std::min<unsigned>(r.prefix, bits) && r.expires_at != 0; ++p)
            if (auto it = latest.find(masked(r, p)); it != latest.end()) r.expires_at = later(r.expires_at, it->second);
    }
}

Compiled compile(const Policy& policy) {
    Compiled out;
    std::map<std::string_view, std::uint32_t> zone_ids;
    for (std::uint32_t i = 0; i < policy.zones.size(); ++i) {
        const Zone& z = policy.zones[i];
        std::uint32_t id = i + 1;
        zone_ids.emplace(z.name, id);
        out.zones.push_back({id, z.name, z.sensitivity, z.on_violation, z.record_allowed,
                             !z.allow_programs.empty(), z.allow_programs_strict, !z.allow_clients.empty()});
        for (const auto& p : z.paths) out.roots.push_back({p.path, id});
        for (const auto& u : z.allow_users)
            out.subjects.push_back(
                {id, u.kind == Principal::Kind::user ? SubjectKind::uid : SubjectKind::gid, u.id});
        for (const auto& prog : z.allow_programs) out.programs.push_back({id, prog.path});
        for (const auto& c : z.allow_clients)
            for (const auto& row : client_rows(id, c)) out.clients.push_back(row);
    }
    for (const auto& g : policy.client_grants) {
        auto it = zone_ids.find(g.zone);
        if (it == zone_ids.end()) continue;
        for (auto row : client_rows(it->second, g.client)) {
            row.expires_at = g.expires_at;
            out.clients.push_back(row);
        }
    }
    spread_client_expiry(out.clients);
    for (const auto& f : policy.protected_files) {
        auto it = zone_ids.find(f.zone);
        if (it != zone_ids.end()) out.inode_roots.push_back({f.dev, f.ino, it->second, f.path});
    }
    // The first find of an inode decides its zone.
    std::stable_sort(out.inode_roots.begin(), out.inode_roots.end(),
                     [](const InodeRoot& a, const InodeRoot& b) { return std::tie(a.dev, a.ino) < std::tie(b.dev, b.ino); });
    out.inode_roots.erase(std::unique(out.inode_roots.begin(), out.inode_roots.end(),
                                      [](const InodeRoot& a, const InodeRoot& b) { return a.dev == b.dev && a.ino == b.ino; }),
                          out.inode_roots.end());
    // (zone id, uid) -> latest expiry; the map keeps them sorted.
    auto latest = [&](const auto& entries) {
        std::map<std::pair<std::uint32_t, std::uint32_t>, std::uint64_t> rows;
        for (const auto& e : entries) {
            auto it = zone_ids.find(e.zone);
            if (it == zone_ids.end()) continue;
            auto& expiry = rows[{it->second, e.uid}];
            expiry = std::max(expiry, e.expires_at);
        }
        return rows;
    };
    for (const auto& [key, expiry] : latest(policy.grants)) out.grants.push_back({key.first, key.second, expiry});
    for (const auto& [key, expiry] : latest(policy.denies)) out.denies.push_back({key.first, key.second, expiry});
    {
        // (zone id, family, address) -> latest expiry; the map keeps them sorted.
        std::map<std::tuple<std::uint32_t, std::uint8_t, std::array<std::uint8_t, 16>>, std::uint64_t> rows;
        for (const auto& d : policy.client_denies) {
            auto it = zone_ids.find(d.zone);
            if (it == zone_ids.end() || (d.client.family != 4 && d.client.family != 6)) continue;
            std::array<std::uint8_t, 16> addr{};
            std::memcpy(addr.data(), d.client.addr, addr.size());
            auto& expiry = rows[{it->second, d.client.family, addr}];
            expiry = std::max(expiry, d.expires_at);
        }
        for (const auto& [key, expiry] : rows) {
            ClientDenyRow row{std::get<0>(key), std::get<1>(key), {}, expiry};
            std::memcpy(row.addr, std::get<2>(key).data(), sizeof row.addr);
            out.client_denies.push_back(row);
        }
    }

    sort_unique(out.roots, [](const ZoneRoot& a, const ZoneRoot& b) {
        return std::tie(a.path, a.zone_id) < std::tie(b.path, b.zone_id);
    });
    sort_unique(out.subjects, [](const SubjectRow& a, const SubjectRow& b) {
        return std::tie(a.zone_id, a.kind, a.id) < std::tie(b.zone_id, b.kind, b.id);
    });
    sort_unique(out.clients, [](const ClientRow& a, const ClientRow& b) {
        return std::tie(a.zone_id, a.family, a.prefix) < std::tie(b.zone_id, b.family, b.prefix) ||
               (std::tie(a.zone_id, a.family, a.prefix) == std::tie(b.zone_id, b.family, b.prefix) &&
                std::memcmp(a.addr, b.addr, sizeof a.addr) < 0);
    });
    sort_unique(out.programs, [](const ProgramRow& a, const ProgramRow& b) {
        return std::tie(a.zone_id, a.path) < std::tie(b.zone_id, b.path);
    });
    return out;
}

}  // namespace custguard::policy
