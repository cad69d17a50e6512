// The client side of org.custguard1, used by custguardctl and the CUPS backend: one bus
// connection, method calls with named errors, and the typed properties.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "custguard/api/bus_ptr.hpp"
#include "custguard/api/types.hpp"

namespace custguard::api {

// A call that failed: the D-Bus error name ("" when none came back, or the reply was
// malformed) and message.
struct CallError {
    std::string name;
    std::string message;
    // Nobody answered: no bus, no custguardd on it, or it did not reply in time.
    bool unreachable() const;
    // Refused for the caller's identity, by custguardd or by the bus policy.
    bool denied() const;
    // The running custguardd does not know the method or property (older than the client).
    bool unknown_member() const;
    // An org.custguard1.Error.* (the daemon's own answer).
    bool from_daemon() const;
};

inline constexpr std::uint64_t default_timeout_usec = 60'000'000;

class Client {
public:
    // The system bus (DBUS_SYSTEM_BUS_ADDRESS is honoured).
    static tl::expected<Client, CallError> connect_system();

    // Calls `member` of org.custguard1 with arguments appended by `append` (sd-bus return
    // conventions); returns the reply, positioned at its first argument.
    tl::expected<MessagePtr, CallError> call(const char* member,
                                             const std::function<int(sd_bus_message*)>& append = {},
                                             std::uint64_t timeout_usec = default_timeout_usec);
    // The common shape: string arguments only.
    tl::expected<MessagePtr, CallError> call_strings(const char* member, const std::vector<std::string>& args);
    // A method that answers one string.
    tl::expected<std::string, CallError> call_for_string(const char* member, const std::vector<std::string>& args);

    // The typed properties (names.hpp, property::).
    tl::expected<std::string, CallError> enforcer();
    tl::expected<std::vector<Zone>, CallError> zones();
    tl::expected<std::vector<HeldJob>, CallError> held_jobs();
    tl::expected<Counters, CallError> counters();

    // ListHeldJobs: the held jobs of owners allowed in `zone` ("" = all, as HeldJobs).
    tl::expected<std::vector<HeldJob>, CallError> held_jobs(const std::string& zone);

    // GetGrants: the grants in force, of one zone ("" = all).
    tl::expected<std::vector<Grant>, CallError> grants(const std::string& zone);

    sd_bus* bus() const { return bus_.get(); }

private:
    explicit Client(BusPtr bus) : bus_(std::move(bus)) {}
    // org.freedesktop.DBus.Properties.Get; sd-bus returns the reply entered into its
    // variant of `type`.
    tl::expected<MessagePtr, CallError> get_property(const char* name, const char* type);

    BusPtr bus_;
};

}  // namespace custguard::api
