// custguardctl: the administrator's tool. Talks to custguardd only over D-Bus; `policy
// check` and `scan` work offline on the policy library.
#include <CLI/CLI.hpp>

#include <iostream>

#include "custguard/common/policy_check.hpp"

namespace {

// Exit codes, documented in custguardctl(8).
constexpr int k_exit_ok = 0;
constexpr int k_exit_usage = 2;

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"custguardctl - manage the custguard customer-data guard"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("custguardctl ") + CUSTGUARD_VERSION);

    auto* policy = app.add_subcommand("policy", "Check, reload and show the policy");
    policy->require_subcommand(1);
    auto* check = policy->add_subcommand("check", "Validate policy files offline");
    std::vector<std::string> files;
    std::string state_dir;
    check->add_option("FILE", files, "Policy files; drop-ins in policy.d/ beside each are included")
        ->required();
    check->add_option("--state-dir", state_dir, "Also merge DIR/state.toml (CLI-managed state)");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        return rc == 0 ? k_exit_ok : k_exit_usage;
    }

    if (check->parsed()) {
        std::vector<std::filesystem::path> paths(files.begin(), files.end());
        std::optional<std::filesystem::path> dir;
        if (!state_dir.empty()) dir = state_dir;
        return custguard::common::check_policies(paths, dir, std::cout, std::cerr);
    }
    return k_exit_usage;
}
