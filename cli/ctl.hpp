// custguardctl's verbs that talk to custguardd (D-Bus) or read the journal. main.cpp
// registers them on the CLI11 app and runs whichever was parsed.
#pragma once

#include <memory>
#include <optional>

namespace CLI {
class App;
}

namespace custguard::cli {

// Exit codes, documented in custguardctl(8).
inline constexpr int k_exit_ok = 0;
inline constexpr int k_exit_failed = 1;       // refused by the daemon, or failed
inline constexpr int k_exit_usage = 2;        // bad command line
inline constexpr int k_exit_unreachable = 3;  // daemon (or the bus) not reachable
inline constexpr int k_exit_denied = 4;       // caller is not root or in custguard-admin

class ControlCommands {
public:
    // Adds status, policy reload|show (and an online `policy check` when no FILE is given),
    // zone, user, device, grant, print, history and events to `app`. `policy` is the
    // existing "policy" subcommand.
    ControlCommands(CLI::App& app, CLI::App& policy);
    ~ControlCommands();
    // The exit code when one of these verbs was parsed, nullopt otherwise.
    std::optional<int> run();

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace custguard::cli
