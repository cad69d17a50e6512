#include "custguard/policy/policy.hpp"

#include <arpa/inet.h>

#include <cstring>

#include "custguard/policy/state.hpp"

namespace custguard::policy {

std::optional<ClientAddress> parse_client_address(std::string_view text) {
    if (text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
    char buf[INET6_ADDRSTRLEN] = {};
    std::memcpy(buf, text.data(), text.size());
    ClientAddress a;
    if (inet_pton(AF_INET, buf, a.addr) == 1) {
        a.family = 4;
        return a;
    }
    if (inet_pton(AF_INET6, buf, a.addr) != 1) return std::nullopt;
    static constexpr std::uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(a.addr, v4_mapped, sizeof v4_mapped) == 0) {
        std::memmove(a.addr, a.addr + 12, 4);
        std::memset(a.addr + 4, 0, 12);
        a.family = 4;
    } else {
        a.family = 6;
    }
    return a;
}

std::string to_string(const ClientAddress& a) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (!inet_ntop(a.family == 4 ? AF_INET : AF_INET6, a.addr, buf, sizeof buf)) return {};
    return buf;
}

bool ClientMatch::matches(const ClientAddress& a) const {
    if (hostname) {
        for (const auto& r : resolved)
            if (r == a) return true;
        return false;
    }
    return in_network(family, prefix, addr, a);
}

bool in_network(std::uint8_t family, std::uint8_t prefix, const std::uint8_t* addr, const ClientAddress& a) {
    if (family != a.family || prefix > 128) return false;
    const unsigned bytes = prefix / 8, bits = prefix % 8;
    if (std::memcmp(addr, a.addr, bytes) != 0) return false;
    if (bits == 0) return true;
    const auto mask = static_cast<std::uint8_t>(0xff << (8 - bits));
    return (addr[bytes] & mask) == (a.addr[bytes] & mask);
}

std::string_view to_string(Sensitivity s) {
    return s == Sensitivity::sensitive ? "sensitive" : "personal";
}

std::string_view to_string(Violation v) { return v == Violation::audit ? "audit" : "deny"; }

std::string_view to_string(Action a) {
    switch (a) {
    case Action::allow: return "allow";
    case Action::audit: return "audit";
    case Action::deny: return "deny";
    case Action::hold: return "hold";
    }
    return "?";
}

std::string_view to_string(EnforcerChoice e) {
    switch (e) {
    case EnforcerChoice::automatic: return "auto";
    case EnforcerChoice::bpf_lsm: return "bpf-lsm";
    case EnforcerChoice::fanotify: return "fanotify";
    case EnforcerChoice::none: return "none";
    }
    return "?";
}

std::string_view to_string(BulkAction b) { return b == BulkAction::revoke ? "revoke" : "alert"; }
std::string_view to_string(WatchAction w) {
    switch (w) {
    case WatchAction::record: return "record";
    case WatchAction::notify: return "notify";
    case WatchAction::protect: return "protect";
    }
    return "record";
}

std::optional<Action> parse_action(std::string_view text) {
    if (text == "allow") return Action::allow;
    if (text == "audit") return Action::audit;
    if (text == "deny") return Action::deny;
    if (text == "hold") return Action::hold;
    return std::nullopt;
}

std::optional<EnforcerChoice> parse_enforcer(std::string_view text) {
    if (text == "auto") return EnforcerChoice::automatic;
    if (text == "bpf-lsm") return EnforcerChoice::bpf_lsm;
    if (text == "fanotify") return EnforcerChoice::fanotify;
    if (text == "none") return EnforcerChoice::none;
    return std::nullopt;
}

std::string_view to_string(DeviceKind k) {
    switch (k) {
    case DeviceKind::printer: return "printer";
    case DeviceKind::client: return "client";
    }
    return "?";
}

std::optional<DeviceKind> parse_device_kind(std::string_view text) {
    if (text == "printer") return DeviceKind::printer;
    if (text == "client") return DeviceKind::client;
    return std::nullopt;
}

const Zone* Policy::find_zone(std::string_view name) const {
    for (const auto& z : zones)
        if (z.name == name) return &z;
    return nullptr;
}

const EdmIndex* Policy::find_edm(std::string_view name) const {
    for (const auto& e : edm)
        if (e.name == name) return &e;
    return nullptr;
}

const NotifyTarget* Policy::find_notify(std::string_view name) const {
    for (const auto& t : notify_targets)
        if (t.name == name) return &t;
    return nullptr;
}

}  // namespace custguard::policy
