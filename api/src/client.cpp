#include "custguard/api/client.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "custguard/api/names.hpp"

namespace custguard::api {

namespace {

CallError malformed(int r) { return CallError{"", std::string("malformed reply from custguardd: ") + std::strerror(-r)}; }

bool one_of(const std::string& name, std::initializer_list<std::string_view> names) {
    for (auto n : names)
        if (name == n) return true;
    return false;
}

}  // namespace

bool CallError::unreachable() const {
    return one_of(name, {"org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner",
                         "org.freedesktop.DBus.Error.NoReply", "org.freedesktop.DBus.Error.Disconnected",
                         "org.freedesktop.DBus.Error.Timeout", "org.freedesktop.DBus.Error.NoServer"});
}

bool CallError::denied() const {
    return one_of(name, {error::access_denied, "org.freedesktop.DBus.Error.AccessDenied",
                         "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"});
}

bool CallError::unknown_member() const {
    return one_of(name, {"org.freedesktop.DBus.Error.UnknownMethod", "org.freedesktop.DBus.Error.UnknownObject",
                         "org.freedesktop.DBus.Error.UnknownInterface", "org.freedesktop.DBus.Error.UnknownProperty"});
}

bool CallError::from_daemon() const { return name.rfind("org.custguard1.", 0) == 0; }

tl::expected<Client, CallError> Client::connect_system() {
    sd_bus* raw = nullptr;
    int r = sd_bus_open_system(&raw);
    if (r < 0) {
        const char* env = std::getenv("DBUS_SYSTEM_BUS_ADDRESS");
        return tl::unexpected(CallError{"org.freedesktop.DBus.Error.NoServer",
                                        std::string("cannot connect to the system bus (") +
                                            (env ? env : "unix:path=/run/dbus/system_bus_socket") +
                                            "): " + std::strerror(-r) + "; is dbus running?"});
    }
    return Client(BusPtr(raw));
}

tl::expected<MessagePtr, CallError> Client::call(const char* member,
                                                 const std::function<int(sd_bus_message*)>& append,
                                                 std::uint64_t timeout_usec) {
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_call(bus_.get(), &raw, bus_name, object_path, interface_name, member);
    if (r < 0) return tl::unexpected(CallError{error::failed, std::string("cannot build the call: ") + std::strerror(-r)});
    MessagePtr m(raw);
    if (append && (r = append(m.get())) < 0)
        return tl::unexpected(CallError{error::failed, std::string("cannot build the call: ") + std::strerror(-r)});
    BusError err;
    sd_bus_message* reply = nullptr;
    r = sd_bus_call(bus_.get(), m.get(), timeout_usec, err.get(), &reply);
    if (r < 0) {
        std::string name = err.name();
        if (name.empty() && r == -ETIMEDOUT) name = "org.freedesktop.DBus.Error.Timeout";
        return tl::unexpected(CallError{name, err.message().empty() ? std::strerror(-r) : err.message()});
    }
    return MessagePtr(reply);
}

tl::expected<MessagePtr, CallError> Client::call_strings(const char* member, const std::vector<std::string>& args) {
    return call(member, [&](sd_bus_message* m) {
        for (const auto& a : args)
            if (int r = sd_bus_message_append_basic(m, 's', a.c_str()); r < 0) return r;
        return 0;
    });
}

tl::expected<std::string, CallError> Client::call_for_string(const char* member, const std::vector<std::string>& args) {
    auto reply = call_strings(member, args);
    if (!reply) return tl::unexpected(reply.error());
    const char* s = nullptr;
    if (int r = sd_bus_message_read_basic(reply->get(), 's', &s); r <= 0) return tl::unexpected(malformed(r ? r : -EBADMSG));
    return std::string(s ? s : "");
}

tl::expected<MessagePtr, CallError> Client::get_property(const char* name, const char* type) {
    BusError err;
    sd_bus_message* reply = nullptr;
    int r = sd_bus_get_property(bus_.get(), bus_name, object_path, interface_name, name, err.get(), &reply, type);
    if (r < 0) return tl::unexpected(CallError{err.name(), err.message().empty() ? std::strerror(-r) : err.message()});
    return MessagePtr(reply);
}

tl::expected<std::string, CallError> Client::enforcer() {
    auto m = get_property(property::enforcer, "s");
    if (!m) return tl::unexpected(m.error());
    const char* s = nullptr;
    if (int r = sd_bus_message_read_basic(m->get(), 's', &s); r <= 0) return tl::unexpected(malformed(r ? r : -EBADMSG));
    return std::string(s ? s : "");
}

namespace {

template <typename T>
tl::expected<T, CallError> read_value(tl::expected<MessagePtr, CallError> m) {
    if (!m) return tl::unexpected(m.error());
    T value;
    if (int r = read(m->get(), value); r < 0) return tl::unexpected(malformed(r));
    return value;
}

}  // namespace

tl::expected<std::vector<Zone>, CallError> Client::zones() {
    return read_value<std::vector<Zone>>(get_property(property::zones, (std::string("a") + zone_signature).c_str()));
}

tl::expected<std::vector<HeldJob>, CallError> Client::held_jobs() {
    return read_value<std::vector<HeldJob>>(get_property(property::held_jobs, (std::string("a") + held_job_signature).c_str()));
}

tl::expected<std::vector<HeldJob>, CallError> Client::held_jobs(const std::string& zone) {
    return read_value<std::vector<HeldJob>>(call_strings("ListHeldJobs", {zone}));
}

tl::expected<std::vector<Grant>, CallError> Client::grants(const std::string& zone) {
    return read_value<std::vector<Grant>>(call_strings("GetGrants", {zone}));
}

tl::expected<Counters, CallError> Client::counters() { return read_value<Counters>(get_property(property::counters, "a{st}")); }

}  // namespace custguard::api
