// The org.custguard1 D-Bus API: names shared by custguardd (server), custguardctl and the
// CUPS backend (clients). The interface itself is api/org.custguard1.xml (installed in
// /usr/share/dbus-1/interfaces), documented in custguard.dbus(7).
#pragma once

namespace custguard::api {

inline constexpr const char* bus_name = "org.custguard1";
inline constexpr const char* object_path = "/org/custguard1";
inline constexpr const char* interface_name = "org.custguard1";
// Members of this group (and root) may call every method: the shipped polkit rule
// (polkit/60-custguard-admin.rules), and custguardd's own check when polkitd is not on the bus.
inline constexpr const char* admin_group = "custguard-admin";

// polkit actions (polkit/org.custguard1.policy); custguard.polkit(7) maps each method and
// property to one of them.
namespace action {
inline constexpr const char* read_status = "org.custguard1.read-status";
inline constexpr const char* read_history = "org.custguard1.read-history";
inline constexpr const char* approve_print = "org.custguard1.approve-print";
inline constexpr const char* manage_zones = "org.custguard1.manage-zones";
inline constexpr const char* manage_policy = "org.custguard1.manage-policy";
inline constexpr const char* check_print = "org.custguard1.check-print";
inline constexpr const char* send_report = "org.custguard1.send-report";
}  // namespace action

namespace error {
inline constexpr const char* access_denied = "org.custguard1.Error.AccessDenied";
inline constexpr const char* invalid_argument = "org.custguard1.Error.InvalidArgument";
inline constexpr const char* unknown_zone = "org.custguard1.Error.UnknownZone";
inline constexpr const char* unknown_user = "org.custguard1.Error.UnknownUser";
inline constexpr const char* not_found = "org.custguard1.Error.NotFound";
inline constexpr const char* policy_refused = "org.custguard1.Error.PolicyRefused";
inline constexpr const char* failed = "org.custguard1.Error.Failed";
}  // namespace error

// Properties of org.custguard1 (types in types.hpp).
namespace property {
inline constexpr const char* version = "Version";    // s, constant
inline constexpr const char* enforcer = "Enforcer";  // s: bpf-lsm | fanotify | none
inline constexpr const char* zones = "Zones";        // a(sasssasas): zones of the policy in force
inline constexpr const char* held_jobs = "HeldJobs";  // a(sssususta{su}): held print jobs
inline constexpr const char* counters = "Counters";   // a{st}: counter name -> value
}  // namespace property

// Signals of org.custguard1.
namespace signals {
inline constexpr const char* job_held = "JobHeld";  // (held job): a print job newly held; to subscribers
// The method that asks for JobHeld (unicast to the caller's connection while it may decide the job).
inline constexpr const char* subscribe = "Subscribe";
inline constexpr const char* alert = "Alert";        // s kind, s zone, s user, s message
}  // namespace signals

// Names of CheckPrintJob's and CheckPrintJobDocuments' a{ss} job argument.
namespace job_key {
inline constexpr const char* job = "job";
inline constexpr const char* printer = "printer";
inline constexpr const char* user = "user";
inline constexpr const char* title = "title";
inline constexpr const char* copies = "copies";
inline constexpr const char* client = "client";
inline constexpr const char* content_type = "content_type";
inline constexpr const char* device_uri = "device_uri";
inline constexpr const char* auth_user = "auth_user";  // AUTH_USERNAME from cupsd, empty when none
}  // namespace job_key

}  // namespace custguard::api
