#include "daemon/dbus/polkit.hpp"

#include <time.h>

#include <cstring>
#include <string_view>

#include <fmt/format.h>

#include "custguard/api/bus_ptr.hpp"

namespace custguard::dbus {

namespace {

constexpr const char* k_path = "/org/freedesktop/PolicyKit1/Authority";
constexpr const char* k_interface = "org.freedesktop.PolicyKit1.Authority";

std::uint64_t monotonic_usec() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1000;
}

// The bus says nobody owns (and nothing activates) polkit's name.
bool not_on_bus(const sd_bus_error& e) {
    return sd_bus_error_has_name(&e, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
           sd_bus_error_has_name(&e, SD_BUS_ERROR_NAME_HAS_NO_OWNER);
}

std::string describe(const sd_bus_error& e, int r) {
    if (e.name) return fmt::format("{}: {}", e.name, e.message ? e.message : "");
    return std::strerror(-r);
}

// CheckAuthorization(in (sa{sv}) subject, in s action_id, in a{ss} details, in u flags,
// in s cancellation_id, out (bba{ss}) result); flags 0: no user interaction.
int append_request(sd_bus_message* m, const std::string& sender, const std::string& action,
                   const PolkitDetails& details) {
    int r = sd_bus_message_append(m, "(sa{sv})s", "system-bus-name", 1, "name", "s", sender.c_str(), action.c_str());
    if (r >= 0) r = sd_bus_message_open_container(m, 'a', "{ss}");
    for (const auto& [k, v] : details)
        if (r >= 0) r = sd_bus_message_append(m, "{ss}", k.c_str(), v.c_str());
    if (r >= 0) r = sd_bus_message_close_container(m);
    if (r >= 0) r = sd_bus_message_append(m, "us", 0u, "");
    return r;
}

}  // namespace

PolkitAnswer PolkitAuthority::check(sd_bus* bus, const std::string& sender, const std::string& action,
                                    const PolkitDetails& details) {
    std::string key = sender + '\n' + action;
    for (const auto& [k, v] : details) key += '\n' + k + '=' + v;
    const std::uint64_t now = monotonic_usec();
    std::erase_if(cache_, [&](const auto& e) { return now - e.second.at >= ttl_usec_; });
    if (auto it = cache_.find(key); it != cache_.end()) return it->second.answer;

    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_call(bus, &raw, k_bus_name, k_path, k_interface, "CheckAuthorization");
    api::MessagePtr call(raw);
    if (r >= 0) r = append_request(call.get(), sender, action, details);
    if (r < 0) return {PolkitAnswer::Kind::failed, fmt::format("cannot build the polkit call: {}", std::strerror(-r))};
    api::BusError err;
    sd_bus_message* reply_raw = nullptr;
    r = sd_bus_call(bus, call.get(), k_timeout_usec, err.get(), &reply_raw);
    api::MessagePtr reply(reply_raw);
    if (r < 0) {
        if (not_on_bus(*err.get())) return {PolkitAnswer::Kind::absent, describe(*err.get(), r)};
        return {PolkitAnswer::Kind::failed, "polkit did not answer: " + describe(*err.get(), r)};
    }
    int authorized = 0, challenge = 0;
    r = sd_bus_message_enter_container(reply.get(), 'r', "bba{ss}");
    if (r >= 0) r = sd_bus_message_read(reply.get(), "bb", &authorized, &challenge);
    if (r < 0) return {PolkitAnswer::Kind::failed, fmt::format("polkit's answer is malformed: {}", std::strerror(-r))};
    PolkitAnswer answer{authorized ? PolkitAnswer::Kind::allowed : PolkitAnswer::Kind::denied,
                        challenge ? "challenge" : ""};
    if (cache_.size() >= k_max_cached) cache_.clear();
    cache_[key] = {now, answer};
    return answer;
}

std::string PolkitAuthority::probe(sd_bus* bus) {
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_call(bus, &raw, k_bus_name, k_path, "org.freedesktop.DBus.Peer", "Ping");
    api::MessagePtr call(raw);
    if (r < 0) return std::strerror(-r);
    api::BusError err;
    sd_bus_message* reply = nullptr;
    r = sd_bus_call(bus, call.get(), k_probe_timeout_usec, err.get(), &reply);
    api::MessagePtr owner(reply);
    return r >= 0 ? std::string() : describe(*err.get(), r);
}

}  // namespace custguard::dbus
