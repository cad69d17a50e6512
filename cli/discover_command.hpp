// `custguardctl discover PATH...`: survey trees for customer data outside the policy's
// zones (discover/…/survey.hpp), print the report or JSON, and with --notify hand the
// summary to custguardd (D-Bus SendReport) for its notify targets.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace custguard::cli {

struct DiscoverOptions {
    std::vector<std::string> paths;
    std::string db = "/var/lib/custguard/discover.db";
    std::string policy = "/etc/custguard/policy.toml";
    bool policy_given = false;  // a named policy must load; the default may be missing
    bool json = false;
    bool rescan = false;
    bool cross_filesystems = false;
    bool notify = false;
    std::vector<std::string> notify_targets;  // empty: the daemon's [print] notify targets
    bool progress = true;                     // on a terminal only
};

// 0: surveyed (with or without finds), 1: the survey or the report delivery failed,
// 2: bad options or policy.
int run_discover(const DiscoverOptions& options, std::ostream& out, std::ostream& err);

}  // namespace custguard::cli
