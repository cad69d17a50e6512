#include "custguard/common/policy_check.hpp"

#include <ostream>

#include "custguard/common/nss_resolver.hpp"
#include "custguard/common/policy_files.hpp"

namespace custguard::common {

int check_policies(const std::vector<std::filesystem::path>& files,
                   const std::optional<std::filesystem::path>& state_dir, std::ostream& out,
                   std::ostream& err, bool require_names) {
    int status = 0;
    for (const auto& file : files) {
        auto input = common::read_policy_files(file, state_dir, common::now_seconds());
        if (!input) {
            err << input.error() << "\n  hint: check the path and its permissions\n";
            status = 1;
            continue;
        }
        input->require_names = require_names;
        auto loaded = policy::load(*input, common::NssResolver{});
        const auto& diags = loaded ? loaded->warnings : loaded.error();
        for (const auto& d : diags) err << d.format() << '\n';
        std::size_t errors = 0;
        for (const auto& d : diags) errors += d.severity == policy::Severity::error;
        std::string extra;
        if (!input->dropins.empty())
            extra = " (with " + std::to_string(input->dropins.size()) + " drop-in" +
                    (input->dropins.size() == 1 ? "" : "s") + ")";
        if (loaded) {
            out << file.string() << extra << ": OK, " << loaded->policy.zones.size() << " zone"
                << (loaded->policy.zones.size() == 1 ? "" : "s") << ", "
                << loaded->warnings.size() << " warning"
                << (loaded->warnings.size() == 1 ? "" : "s") << '\n';
        } else {
            out << file.string() << extra << ": " << errors << " error" << (errors == 1 ? "" : "s")
                << ", policy refused\n";
            status = 1;
        }
    }
    return status;
}

}  // namespace custguard::common
