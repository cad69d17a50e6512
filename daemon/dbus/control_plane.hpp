// custguardd's control plane: the org.custguard1 object on the system bus. Every method
// and property read asks polkit whether the caller may (polkit.hpp; root and group
// custguard-admin when polkitd is not on the bus), every change is validated, persisted
// through Daemon::update_state and recorded as an admin event. Runs on the daemon's
// sd-event loop; the methods and their signatures are listed in control_plane.cpp and
// documented in custguardctl(8).
#pragma once

#include <memory>
#include <string>

#include <tl/expected.hpp>

struct sd_event;

namespace custguard::daemon {
class Daemon;
}

namespace custguard::dbus {

struct ControlPlaneOptions {
    // Bus to connect to; empty: the system bus (DBUS_SYSTEM_BUS_ADDRESS is honoured).
    std::string address;
    // Who may call when polkitd is not on the bus; a test can point this at another group.
    std::string admin_group = "custguard-admin";
};

class ControlPlane {
public:
    ControlPlane(daemon::Daemon& daemon, ControlPlaneOptions options = {});
    ~ControlPlane();
    ControlPlane(const ControlPlane&) = delete;
    ControlPlane& operator=(const ControlPlane&) = delete;

    // Connect, export the object, take the bus name and attach to `event`. The error says
    // why the control plane is off (no bus, name taken, ...); the daemon runs on without.
    tl::expected<void, std::string> start(sd_event* event);
    bool running() const;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace custguard::dbus
