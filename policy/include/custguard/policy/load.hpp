// Parse, merge and validate policy sources into a Policy.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "custguard/policy/diagnostic.hpp"
#include "custguard/policy/policy.hpp"
#include "custguard/policy/resolver.hpp"

namespace custguard::policy {

// One policy text as read by the caller. `name` is used in diagnostics.
struct SourceText {
    std::string name;
    std::string text;
};

// Precedence (documented in custguard.policy(5)):
//   1. `main` (policy.toml) is read first;
//   2. `dropins` (policy.d/*.toml) follow in the order given (callers sort them by file
//      name); a scalar set in a later file overrides an earlier one, lists are appended,
//      and a [[zone]] whose name already exists extends that zone;
//   3. `state` (the CLI-managed state file) only adds allow-list entries, devices and
//      grants (of users, and of client machines in zones with allow_clients); it can
//      never remove or weaken what the policy files say.
struct LoadInput {
    SourceText main;
    std::vector<SourceText> dropins;
    std::optional<SourceText> state;
    // Grants whose expiry is at or before `now` are dropped (seconds since the epoch).
    std::uint64_t now = 0;
    // false: users and groups the resolver does not know are warnings, not errors (a
    // policy checked on a build host that lacks the servers' accounts; `policy check
    // --no-resolve`). Such a policy is for checking only: their ids are unknown_id.
    bool require_names = true;
};

inline constexpr std::uint32_t unknown_id = 0xfffffffeu;

struct Loaded {
    Policy policy;
    Diagnostics warnings;
};

// Errors carry every diagnostic found (errors and warnings), in the order found.
tl::expected<Loaded, Diagnostics> load(const LoadInput& input, const Resolver& resolver);

// Parse an allow_clients entry: an IPv4/IPv6 address, a network without host bits
// ("192.0.2.0/24") or a host name (left unresolved). nullopt when it is none of them.
std::optional<ClientMatch> parse_client(std::string_view text);

// Parse a duration such as "90s", "15m", "1h", "2d" (or a bare number of seconds).
std::optional<std::uint64_t> parse_duration(std::string_view text);

// True for an absolute path without "//", "/./", "/../", trailing "/" or NUL.
bool is_normalised_absolute(std::string_view path);

}  // namespace custguard::policy
