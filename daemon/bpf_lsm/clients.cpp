#include "clients.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <map>

#include <arpa/inet.h>

namespace custguard::daemon::bpf_lsm {

namespace {

constexpr std::array<std::uint8_t, 12> k_v4_mapped = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

}  // namespace

std::vector<ClientDenyEntry> client_deny_entries(const policy::Compiled& compiled)
{
    std::map<std::array<std::uint8_t, sizeof(cg_client_deny_key)>, ClientDenyEntry> by_key;
    for (const auto& row : compiled.client_denies) {
        if (row.family != 4 && row.family != 6)
            continue;
        cg_client_deny_key k{};
        k.zone_id = row.zone_id;
        if (row.family == 4) {
            std::copy(k_v4_mapped.begin(), k_v4_mapped.end(), k.addr);
            std::copy(row.addr, row.addr + 4, k.addr + 12);
        } else {
            std::copy(row.addr, row.addr + 16, k.addr);
        }
        std::array<std::uint8_t, sizeof k> bytes{};
        std::memcpy(bytes.data(), &k, sizeof k);
        auto& e = by_key[bytes];
        e.key = k;
        e.value.expires_at = std::max<std::uint64_t>(e.value.expires_at, row.expires_at);
    }
    std::vector<ClientDenyEntry> out;
    out.reserve(by_key.size());
    for (const auto& [bytes, e] : by_key)
        out.push_back(e);
    return out;
}

std::vector<cg_client_key> client_keys(const policy::Compiled& compiled)
{
    std::vector<cg_client_key> out;
    out.reserve(compiled.clients.size());
    for (const auto& row : compiled.clients) {
        cg_client_key k{};
        k.zone_id = row.zone_id;
        if (row.family == 4) {
            std::copy(k_v4_mapped.begin(), k_v4_mapped.end(), k.addr);
            std::copy(row.addr, row.addr + 4, k.addr + 12);
            k.prefixlen = 32 + 96 + std::min<std::uint32_t>(row.prefix, 32);
        } else {
            std::copy(row.addr, row.addr + 16, k.addr);
            k.prefixlen = 32 + std::min<std::uint32_t>(row.prefix, 128);
        }
        out.push_back(k);
    }
    return out;
}

std::string client_text(const std::uint8_t (&addr)[16])
{
    if (std::all_of(std::begin(addr), std::end(addr), [](std::uint8_t b) { return b == 0; }))
        return {};
    char buf[INET6_ADDRSTRLEN] = {};
    if (std::equal(k_v4_mapped.begin(), k_v4_mapped.end(), addr))
        ::inet_ntop(AF_INET, addr + 12, buf, sizeof buf);
    else
        ::inet_ntop(AF_INET6, addr, buf, sizeof buf);
    return buf;
}

}  // namespace custguard::daemon::bpf_lsm
