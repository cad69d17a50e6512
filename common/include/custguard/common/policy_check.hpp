// `custguardctl policy check` and `custguardd --check`: offline validation.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <optional>
#include <vector>

namespace custguard::common {

// Checks each file as a main policy (with the policy.d/ drop-ins beside it), prints the
// diagnostics to `err` and one summary line per file to `out`. Returns 0 when every file
// is valid, 1 otherwise. `require_names` false: users and groups unknown here are
// warnings (--no-resolve).
int check_policies(const std::vector<std::filesystem::path>& files,
                   const std::optional<std::filesystem::path>& state_dir, std::ostream& out,
                   std::ostream& err, bool require_names = true);

}  // namespace custguard::common
