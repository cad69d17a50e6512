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
    std::string name_space, directory, format = "text", output;
    std::vector<std::string> files;
};

// Adds `report` with `leak-scope` and `access` to `app`; returns `report`.
CLI::App* add_report_commands(CLI::App& app, ReportOptions& options);

// Runs whichever of the two `report` parsed. 0: written, 1: the journal could not be read
// or the output written, 2: bad options.
int run_report(const CLI::App& report, const ReportOptions& options, std::ostream& out, std::ostream& err);

}  // namespace custguard::cli
