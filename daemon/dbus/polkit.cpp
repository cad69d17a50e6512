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

std::string PolkitAuthority::key_of(const std::string& sender, const std::string& action,
                                    const PolkitDetails& details) {
    std::string key = sender + '\n' + action;
    for (const auto& [k, v] : details) key += '\n' + k + '=' + v;
    return key;
}

namespace {

PolkitAnswer answer_of(sd_bus_message* reply) {
    if (const sd_bus_error* e = sd_bus_message_get_error(reply)) {
        if (not_on_bus(*e)) return {PolkitAnswer::Kind::absent, describe(*e, -sd_bus_message_get_errno(reply))};
        return {PolkitAnswer::Kind::failed, "polkit did not answer: " + describe(*e, -sd_bus_message_get_errno(reply))};
    }
    int authorized = 0, challenge = 0;
    int r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
    if (r >= 0) r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
    if (r < 0) return {PolkitAnswer::Kind::failed, fmt::format("polkit's answer is malformed: {}", std::strerror(-r))};
    return {authorized ? PolkitAnswer::Kind::allowed : PolkitAnswer::Kind::denied, challenge ? "challenge" : ""};
}

}  // namespace

void PolkitAuthority::remember(const std::string& key, const PolkitAnswer& answer) {
    // Only polkit's own decisions are kept; "absent" and "failed" are asked again.
    if (answer.kind != PolkitAnswer::Kind::allowed && answer.kind != PolkitAnswer::Kind::denied) return;
    if (cache_.size() >= k_max_cached) cache_.clear();
    cache_[key] = {monotonic_usec(), answer};
}

PolkitAnswer PolkitAuthority::check(sd_bus* bus, const std::string& sender, const std::string& action,
                                    const PolkitDetails& details) {
    const std::string key = key_of(sender, action, details);
    if (auto it = arrived_.find(key); it != arrived_.end()) {
        PolkitAnswer answer = std::move(it->second);
        arrived_.erase(it);
        return answer;
    }
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
    PolkitAnswer answer = answer_of(reply.get());
    remember(key, answer);
    return answer;
}

// A deferred call: what runs it again when polkit's answer arrives.
struct PolkitAuthority::Asked {
    PolkitAuthority* self;
    std::string key;
    api::MessagePtr call;  // the caller's method call
    sd_bus_message_handler_t handler;
    void* userdata;
};

bool PolkitAuthority::defer_call(sd_bus_message* m, const std::string& action, const PolkitDetails& details) {
    const char* sender = sd_bus_message_get_sender(m);
    if (!sender) return false;
    sd_bus_creds* raw_creds = nullptr;
    if (sd_bus_query_sender_creds(m, SD_BUS_CREDS_UID | SD_BUS_CREDS_EUID, &raw_creds) < 0) return false;
    api::CredsPtr creds(raw_creds);
    uid_t uid = 1;
    if (sd_bus_creds_get_euid(raw_creds, &uid) < 0 && sd_bus_creds_get_uid(raw_creds, &uid) < 0) return false;
    if (uid == 0 || rerunning_) return false;  // root is never asked about
    const std::string key = key_of(sender, action, details);
    if (arrived_.count(key)) return false;
    const std::uint64_t now = monotonic_usec();
    if (auto it = cache_.find(key); it != cache_.end() && now - it->second.at < ttl_usec_) return false;

    sd_bus* bus = sd_bus_message_get_bus(m);
    auto asked = std::make_unique<Asked>(Asked{this, key, api::MessagePtr(sd_bus_message_ref(m)),
                                               sd_bus_get_current_handler(bus), sd_bus_get_current_userdata(bus)});
    if (!asked->handler) return false;
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_call(bus, &raw, k_bus_name, k_path, k_interface, "CheckAuthorization");
    api::MessagePtr call(raw);
    if (r >= 0) r = append_request(call.get(), sender, action, details);
    sd_bus_slot* slot = nullptr;
    if (r >= 0) r = sd_bus_call_async(bus, &slot, call.get(), &PolkitAuthority::on_reply, asked.get(), k_timeout_usec);
    if (r < 0) return false;  // check() asks the usual way and says what failed
    // The bus owns the slot; the request goes with it (answered, or the bus closed).
    sd_bus_slot_set_floating(slot, 1);
    sd_bus_slot_set_destroy_callback(slot, [](void* a) { delete static_cast<Asked*>(a); });
    (void)asked.release();
    return true;
}

int PolkitAuthority::on_reply(sd_bus_message* reply, void* asked_v, sd_bus_error*) {
    auto* asked = static_cast<Asked*>(asked_v);
    const PolkitAnswer answer = answer_of(reply);
    asked->self->remember(asked->key, answer);
    asked->self->arrived_[asked->key] = answer;
    sd_bus_message* m = asked->call.get();
    sd_bus_error error = SD_BUS_ERROR_NULL;
    int r = sd_bus_message_rewind(m, 1);
    if (r >= 0) {
        asked->self->rerunning_ = true;
        r = asked->handler(m, asked->userdata, &error);
        asked->self->rerunning_ = false;
    }
    // As sd-bus does after a method handler: an error set or returned is the reply.
    if (sd_bus_error_is_set(&error))
        sd_bus_reply_method_error(m, &error);
    else if (r < 0)
        sd_bus_reply_method_errno(m, r, nullptr);
    sd_bus_error_free(&error);
    asked->self->arrived_.erase(asked->key);  // unused when the handler did not ask
    return 1;
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
