// `custguardctl report leak-scope|access`: read custguardd's records from the journal (the
// local one, a namespace, a collector's directory or journal files), build the report
// (report/…/scope.hpp) and write it as text, JSON, CSV or HTML.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace custguard::cli {

struct ReportOptions {
    std::string since, until, user, client, zone, path, discovered_at;
    std::string name_space, directory, format = "text", output, evidence;
    std::vector<std::string> files;
    // Files without a scan in their records are scanned as they are today (sandboxed,
    // with this policy's detectors) unless no_rescan.
    std::string policy = "/etc/custguard/policy.toml";
    bool no_rescan = false;
};

// Adds `report` with `leak-scope` and `access` to `app`; returns `report`.
CLI::App* add_report_commands(CLI::App& app, ReportOptions& options);

// Runs whichever of the two `report` parsed. 0: written, 1: the journal could not be read
// or the output or evidence written, 2: bad options or policy.
int run_report(const CLI::App& report, const ReportOptions& options, std::ostream& out, std::ostream& err);

}  // namespace custguard::cli
