#include "custguard/policy/policy.hpp"

#include "custguard/policy/state.hpp"

namespace custguard::policy {

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

const NotifyTarget* Policy::find_notify(std::string_view name) const {
    for (const auto& t : notify_targets)
        if (t.name == name) return &t;
    return nullptr;
}

}  // namespace custguard::policy
