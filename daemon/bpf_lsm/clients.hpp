// allow_clients in the kernel's form: the rows of the per-generation LPM trie cg_clients,
// the client machines' cool-downs (cg_client_denies), and the text of a client address
// the kernel recorded (struct cg_event.client).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "custguard/policy/compile.hpp"
#include "custguard_abi.h"

namespace custguard::daemon::bpf_lsm {

// One key per numeric row: IPv4 a.b.c.d/n becomes ::ffff:a.b.c.d/(96 + n), so that one
// lookup with the peer's IPv6 form (IPv4 peers and IPv4-mapped peers alike) finds both.
// In the order of compiled.clients (whose expires_at is each key's struct cg_client).
std::vector<cg_client_key> client_keys(const policy::Compiled& compiled);

// One entry of the per-generation hash cg_client_denies.
struct ClientDenyEntry {
    cg_client_deny_key key{};
    cg_deny value{};
};

// One entry per (zone, address) in the peers' form (IPv4 as ::ffff:a.b.c.d), sorted by
// key bytes: an IPv4 row and its IPv4-mapped IPv6 spelling are one key, with the later
// expiry of the two.
std::vector<ClientDenyEntry> client_deny_entries(const policy::Compiled& compiled);

// "192.0.2.7" for an IPv4 (or IPv4-mapped) address, "2001:db8::1" otherwise, "" for all zero.
std::string client_text(const std::uint8_t (&addr)[16]);

}  // namespace custguard::daemon::bpf_lsm
