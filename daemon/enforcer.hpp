// The interface every enforcer (bpf-lsm, fanotify, none) implements.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include "custguard/policy/compile.hpp"
#include "daemon/event.hpp"

namespace custguard::daemon {

class Enforcer {
public:
    virtual ~Enforcer() = default;

    // "bpf-lsm", "fanotify" or "none".
    virtual std::string_view name() const = 0;

    // Start delivering events to `handler`. Called once, before the first apply().
    virtual tl::expected<void, std::string> start(EventHandler handler) = 0;

    // Install `compiled` as the enforced policy, replacing the previous one atomically:
    // no open is ever decided against a half-applied policy. On error the previous
    // policy stays in force.
    virtual tl::expected<void, std::string> apply(const policy::Compiled& compiled) = 0;

    virtual SensorCounters counters() const = 0;

    // Stop delivering events. `remove` also removes enforcement (pinned objects, the
    // fanotify descriptor); otherwise enforcement is left in place for the next daemon.
    virtual void stop(bool remove) = 0;
};

// Makes the enforcer a daemon runs; an error refuses the start.
using EnforcerFactory = std::function<tl::expected<std::unique_ptr<Enforcer>, std::string>()>;

}  // namespace custguard::daemon
