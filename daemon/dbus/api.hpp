// The org.custguard1 D-Bus API: names shared by custguardd (server) and custguardctl
// (client). The method table with signatures is in control_plane.cpp and custguardctl(8).
#pragma once

#include <string_view>

namespace custguard::dbus {

inline constexpr const char* bus_name = "org.custguard1";
inline constexpr const char* object_path = "/org/custguard1";
inline constexpr const char* interface_name = "org.custguard1";
// Members of this group (and root) may call every method.
inline constexpr const char* admin_group = "custguard-admin";

namespace error {
inline constexpr const char* access_denied = "org.custguard1.Error.AccessDenied";
inline constexpr const char* invalid_argument = "org.custguard1.Error.InvalidArgument";
inline constexpr const char* unknown_zone = "org.custguard1.Error.UnknownZone";
inline constexpr const char* unknown_user = "org.custguard1.Error.UnknownUser";
inline constexpr const char* not_found = "org.custguard1.Error.NotFound";
inline constexpr const char* policy_refused = "org.custguard1.Error.PolicyRefused";
inline constexpr const char* failed = "org.custguard1.Error.Failed";
}  // namespace error

}  // namespace custguard::dbus
