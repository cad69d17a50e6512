// `custguardctl edm build --schema FILE [--key FILE] [--output FILE] [--encoding E] CRM.csv`:
// turns a CRM export into an exact customer matching index (edm/include/custguard/edm).
// Runs locally as root; it does not talk to the daemon. See custguardctl(8), EDM.
#pragma once

#include <iosfwd>
#include <string>

namespace custguard::cli {

inline constexpr const char* k_edm_dir = "/var/lib/custguard/edm";

struct EdmBuildOptions {
    std::string schema;
    std::string csv;
    std::string key;       // empty: <directory of output>/key
    std::string output;    // empty: /var/lib/custguard/edm/<schema file name without .toml>.edm
    std::string encoding;  // empty: the schema's (utf-8 unless it says cp932)
};

// Prints a summary (rows read, indexed, skipped, with the first skipped rows' line numbers
// and reasons, never their values) to `out`. 0: index written; 1: written, but rows were
// skipped; 2: nothing written (bad schema, unreadable CSV, key or output problem, or not a
// single row indexed).
int run_edm_build(const EdmBuildOptions& options, std::ostream& out, std::ostream& err);

}  // namespace custguard::cli
