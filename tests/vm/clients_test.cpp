// The loader's client rows (no root, no VM): what the LPM trie cg_clients (allow_clients)
// and the hash cg_client_denies (client machines' cool-downs) hold, and how a recorded
// client address is written in records.
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

policy::ClientDenyRow deny(std::uint32_t zone, std::uint8_t family, std::vector<std::uint8_t> bytes,
                           std::uint64_t expires_at)
{
    policy::ClientDenyRow r{zone, family, {}, expires_at};
    std::copy(bytes.begin(), bytes.end(), r.addr);
    return r;
}

const std::vector<std::uint8_t> k_mapped_192_0_2_10 = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 10};
const std::vector<std::uint8_t> k_2001_db8_1 = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

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

TEST_CASE("client_keys: one key per row, in order, no rows, no keys", "[unit]")
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

TEST_CASE("client_deny_entries: one (zone, address) key per client in its cool-down, in the peers' form",
          "[unit]")
{
    struct Entry {
        std::uint32_t zone_id;
        std::vector<std::uint8_t> addr;
        std::uint64_t expires_at;
    };
    struct Case {
        const char* what;
        std::vector<policy::ClientDenyRow> rows;
        std::vector<Entry> entries;  // sorted by key bytes: zone id (little endian), then address
    };
    const std::vector<Case> cases = {
        {"no rows, no entries", {}, {}},
        {"IPv4 as IPv4-mapped IPv6", {deny(1, 4, {192, 0, 2, 10}, 100)}, {{1, k_mapped_192_0_2_10, 100}}},
        {"IPv6 as written", {deny(3, 6, k_2001_db8_1, 50)}, {{3, k_2001_db8_1, 50}}},
        // A peer is recorded in one form only: both spellings of one machine are one key.
        {"IPv4 and its IPv4-mapped spelling: one key, the later expiry",
         {deny(1, 4, {192, 0, 2, 10}, 100), deny(1, 6, k_mapped_192_0_2_10, 200)},
         {{1, k_mapped_192_0_2_10, 200}}},
        {"IPv4-mapped spelling first: still the later expiry",
         {deny(1, 6, k_mapped_192_0_2_10, 300), deny(1, 4, {192, 0, 2, 10}, 200)},
         {{1, k_mapped_192_0_2_10, 300}}},
        {"one machine in two zones: two keys",
         {deny(2, 4, {192, 0, 2, 10}, 100), deny(1, 4, {192, 0, 2, 10}, 100)},
         {{1, k_mapped_192_0_2_10, 100}, {2, k_mapped_192_0_2_10, 100}}},
        {"a row of no address family is never a key", {deny(1, 0, {192, 0, 2, 10}, 100)}, {}},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        policy::Compiled compiled;
        compiled.client_denies = c.rows;
        const auto got = client_deny_entries(compiled);
        REQUIRE(got.size() == c.entries.size());
        for (std::size_t i = 0; i < got.size(); ++i) {
            CHECK(got[i].key.zone_id == c.entries[i].zone_id);
            CHECK(std::vector<std::uint8_t>(got[i].key.addr, got[i].key.addr + 16) == c.entries[i].addr);
            CHECK(got[i].value.expires_at == c.entries[i].expires_at);
        }
    }
}
