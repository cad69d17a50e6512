// Opens the EDM indexes a scanner configuration names ("edm:NAME" detectors) from the
// policy's [edm.NAME] tables, for the print gate, the watcher and discover alike. A missing,
// damaged or foreign index is an error that refuses the start or reload: a detector is
// never silently left out.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "custguard/edm/edm.hpp"
#include "custguard/policy/policy.hpp"
#include "custguard/scan/scanner.hpp"

namespace custguard::edm {

// `list` names where the detectors were configured, e.g. "[print]".
inline tl::expected<void, std::string> attach_edm_matchers(scan::ScannerConfig& config,
                                                           const std::vector<policy::EdmIndex>& tables,
                                                           std::string_view list) {
    for (auto& e : config.edm) {
        const auto table = std::find_if(tables.begin(), tables.end(),
                                        [&](const policy::EdmIndex& x) { return x.name == e.name; });
        if (table == tables.end())
            return tl::unexpected(std::string(list) + " detector edm:" + e.name + " has no [edm." + e.name + "] table");
        auto matcher = edm::Matcher::open(table->index, table->key);
        if (!matcher)
            return tl::unexpected("[edm." + e.name + "]: " + matcher.error() +
                                  " (build it with 'custguardctl edm build', or remove edm:" + e.name + " from " +
                                  std::string(list) + " detectors)");
        e.matcher = std::move(*matcher);
    }
    return {};
}

}  // namespace custguard::edm
