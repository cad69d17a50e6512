// Reading the policy from disk: policy.toml, its policy.d/*.toml drop-ins and the
// CLI-managed state file, into the pure library's LoadInput.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <tl/expected.hpp>

#include "custguard/policy/load.hpp"

namespace custguard::common {

// Reads one file whole. The error says which file and why.
tl::expected<std::string, std::string> read_file(const std::filesystem::path& path);

// `main` and, if it exists, the directory `<dirname(main)>/policy.d/*.toml` in file-name
// order, plus `<state_dir>/state.toml` when `state_dir` is given and the file exists.
tl::expected<policy::LoadInput, std::string> read_policy_files(
    const std::filesystem::path& main, const std::optional<std::filesystem::path>& state_dir,
    std::uint64_t now);

// read_policy_files + policy::load with the NSS resolver. Diagnostics on failure; the
// string error case (file unreadable) is turned into one diagnostic.
tl::expected<policy::Loaded, policy::Diagnostics> load_policy(
    const std::filesystem::path& main, const std::optional<std::filesystem::path>& state_dir,
    std::uint64_t now);

std::uint64_t now_seconds();

}  // namespace custguard::common
