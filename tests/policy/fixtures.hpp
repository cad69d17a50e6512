// Shared fixtures for the policy tests: a fixed resolver and a minimal valid policy.
#pragma once

#include "custguard/policy/load.hpp"

namespace custguard::test {

inline policy::TableResolver test_resolver() {
    policy::TableResolver r;
    r.users = {{"alice", 1001}, {"bob", 1002}, {"carol", 1003}, {"backup", 34}, {"root", 0}};
    r.groups = {{"sales", 2001}, {"medical-staff", 2002}, {"print-customers", 2003}};
    return r;
}

inline tl::expected<policy::Loaded, policy::Diagnostics> load_text(
    const std::string& text, std::vector<policy::SourceText> dropins = {},
    std::optional<std::string> state = std::nullopt, std::uint64_t now = 1000) {
    policy::LoadInput in;
    in.main = {"policy.toml", text};
    in.dropins = std::move(dropins);
    if (state) in.state = policy::SourceText{"state.toml", *state};
    in.now = now;
    return policy::load(in, test_resolver());
}

}  // namespace custguard::test
