// The CLI-managed state (allow-list additions, devices, grants) and its text form.
// The daemon stores it as TOML in the state directory and writes it atomically.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "custguard/policy/diagnostic.hpp"

namespace custguard::policy {

struct StateUser {
    std::string zone;
    std::string name;  // "alice" or "%group"
    std::string added_by;
    std::uint64_t added_at = 0;
};

enum class DeviceKind : std::uint8_t { printer, client };
std::string_view to_string(DeviceKind);
std::optional<DeviceKind> parse_device_kind(std::string_view);

struct StateDevice {
    DeviceKind kind = DeviceKind::client;
    std::string zone;  // empty for printers (the print section has no zones)
    std::string value; // queue name, IP/CIDR/host name
    std::string added_by;
    std::uint64_t added_at = 0;
};

// A grant to a user, or (client set, user empty) to a client machine: the text form
// writes `user = ` or `client = `, exactly one of them.
struct StateGrant {
    std::string zone;
    std::string user;
    std::uint64_t expires_at = 0;
    std::string reason;
    std::string granted_by;
    std::uint64_t granted_at = 0;
    std::string client;  // IP, CIDR or host name, as allow_clients takes it
};

struct State {
    std::vector<StateUser> users;
    std::vector<StateDevice> devices;
    std::vector<StateGrant> grants;
};

tl::expected<State, Diagnostics> parse_state(const std::string& name, const std::string& text);
std::string serialize_state(const State& state);

}  // namespace custguard::policy
