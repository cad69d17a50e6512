// Typed values of org.custguard1 and their D-Bus conversions, shared by custguardd (which
// appends them to replies and signals) and its clients (which read them). The signatures
// are those of api/org.custguard1.xml.
#pragma once

#include <systemd/sd-bus.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace custguard::api {

// A print job held for a decision (property HeldJobs, signal JobHeld). Names and counts
// of detector hits only, never what was found.
struct HeldJob {
    std::string job;  // the id custguardctl print approve|reject takes
    std::string printer;
    std::string user;
    std::uint32_t uid = 0xffffffffu;  // unknown: (uint32)-1
    std::string title;
    std::uint32_t pages = 0;
    std::string client;
    std::uint64_t held_at = 0;  // seconds since the epoch
    std::map<std::string, std::uint32_t> detector_hits;
    bool operator==(const HeldJob&) const = default;
};
inline constexpr const char* held_job_signature = "(sssususta{su})";
inline constexpr const char* zone_signature = "(sasssasas)";

// A zone of the policy in force (property Zones): the effective lists, policy files and
// custguardctl's state merged.
struct Zone {
    std::string name;
    std::vector<std::string> paths;
    std::string sensitivity;
    std::string on_violation;
    std::vector<std::string> allow_users;  // users, and %groups
    std::vector<std::string> allow_clients;
    bool operator==(const Zone&) const = default;
};

// A temporary grant in force (method GetGrants): of a user, or of a client machine
// (client set, user empty).
struct Grant {
    std::string zone;
    std::string user;
    std::string client;
    std::uint64_t expires_at = 0;  // seconds since the epoch
    std::string reason;
    std::string granted_by;
    std::uint64_t granted_at = 0;
    bool operator==(const Grant&) const = default;
};
inline constexpr const char* grant_signature = "(ssstsst)";

// Counter name -> value (property Counters); the names are listed in custguard.dbus(7).
using Counters = std::map<std::string, std::uint64_t>;

// Append or read one value at the message's position; sd-bus return conventions (negative
// errno on failure). The read functions fill `out` from a well-formed value only.
int append(sd_bus_message* m, const HeldJob& job);
int append(sd_bus_message* m, const std::vector<HeldJob>& jobs);
int append(sd_bus_message* m, const Zone& zone);
int append(sd_bus_message* m, const std::vector<Zone>& zones);
int append(sd_bus_message* m, const Grant& grant);
int append(sd_bus_message* m, const std::vector<Grant>& grants);
int append(sd_bus_message* m, const Counters& counters);
int read(sd_bus_message* m, HeldJob& out);
int read(sd_bus_message* m, std::vector<HeldJob>& out);
int read(sd_bus_message* m, Zone& out);
int read(sd_bus_message* m, std::vector<Zone>& out);
int read(sd_bus_message* m, Grant& out);
int read(sd_bus_message* m, std::vector<Grant>& out);
int read(sd_bus_message* m, Counters& out);

}  // namespace custguard::api
