// The loader's allow_clients rows (no root, no VM): what the LPM trie cg_clients holds,
// and how a recorded client address is written in records.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "clients.hpp"

using namespace custguard;
using namespace custguard::daemon::bpf_lsm;

namespace {

policy::ClientRow row(std::uint32_t zone, std::uint8_t family, std::uint8_t prefix,
                      std::vector<std::uint8_t> bytes)
{
    policy::ClientRow r{zone, family, prefix, {}};
    std::copy(bytes.begin(), bytes.end(), r.addr);
    return r;
}

std::vector<std::uint8_t> key_addr(const cg_client_key& k) { return {k.addr, k.addr + 16}; }

}  // namespace

TEST_CASE("client_keys: IPv4 rows become IPv4-mapped IPv6 prefixes behind the zone id", "[unit]")
{
    struct Case {
        const char* what;
        policy::ClientRow row;
        std::uint32_t prefixlen;
        std::vector<std::uint8_t> addr;
    };
    const std::vector<Case> cases = {
        {"IPv4 host", row(1, 4, 32, {192, 0, 2, 10}), 32 + 128,
         {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 10}},
        {"IPv4 network", row(2, 4, 24, {198, 51, 100, 0}), 32 + 96 + 24,
         {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, 0}},
        {"IPv4 everything", row(3, 4, 0, {}), 32 + 96,
         {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0}},
        {"IPv6 network", row(4, 6, 32, {0x20, 0x01, 0x0d, 0xb8}), 32 + 32,
         {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
        {"IPv6 host", row(5, 6, 128, {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}), 32 + 128,
         {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        policy::Compiled compiled;
        compiled.clients = {c.row};
        const auto keys = client_keys(compiled);
        REQUIRE(keys.size() == 1);
        CHECK(keys[0].zone_id == c.row.zone_id);
        CHECK(keys[0].prefixlen == c.prefixlen);
        CHECK(key_addr(keys[0]) == c.addr);
    }
}

TEST_CASE("client_keys: one key per row, in order; no rows, no keys", "[unit]")
{
    policy::Compiled compiled;
    CHECK(client_keys(compiled).empty());
    compiled.clients = {row(1, 4, 32, {192, 0, 2, 10}), row(1, 4, 32, {192, 0, 2, 11}),
                        row(2, 4, 32, {192, 0, 2, 10})};
    const auto keys = client_keys(compiled);
    REQUIRE(keys.size() == 3);
    CHECK(keys[0].addr[15] == 10);
    CHECK(keys[1].addr[15] == 11);
    CHECK(keys[2].zone_id == 2);
}

TEST_CASE("client_text: IPv4-mapped as dotted quad, IPv6 as written, none as empty", "[unit]")
{
    struct Case {
        std::vector<std::uint8_t> addr;
        std::string text;
    };
    const std::vector<Case> cases = {
        {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 10}, "192.0.2.10"},
        {{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, "2001:db8::1"},
        {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, ""},
    };
    for (const auto& c : cases) {
        std::uint8_t a[16];
        std::memcpy(a, c.addr.data(), 16);
        CHECK(client_text(a) == c.text);
    }
}
