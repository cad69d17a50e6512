// `custguardctl scan FILE...`: the print gate's extraction and detectors, offline (no
// daemon), so admins can tune [print] threshold, detectors and keywords before enforcing.
// Documents are read by the same sandboxed helper as the daemon's (scan/…/sandbox.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace custguard::cli {

// An [edm.NAME] table of the policy: the index and key files of detector "edm:NAME".
struct EdmSource {
    std::string name, index, key;
};

struct ScanOptions {
    std::vector<std::string> files;         // "-" reads standard input
    std::uint32_t threshold = 3;            // [print] threshold
    std::vector<std::string> detectors;     // [print] detectors; empty: all
    std::vector<std::string> keywords;      // [print] keywords; empty: built-in list
    std::uint32_t keyword_proximity = 40;   // [print] keyword_proximity
    std::string unreadable_action = "hold"; // [print] unreadable, only named in messages
    std::string mime_type;                  // optional hint, e.g. "application/pdf"
    bool json = false;
    std::string mode = "print";             // print: as the print gate reads; disk: as the watcher and discover
    std::string ghostscript = "gs";
    std::chrono::milliseconds timeout{30'000};  // [print] scan_timeout
    std::uint64_t memory = std::uint64_t{1} << 30;  // [print] scan_memory_mb
    std::vector<EdmSource> edm;  // the policy's [edm.NAME] tables, for "edm:NAME" detectors
};

// Prints per file each detector with its count and whether the file is customer data.
// Returns 0 when no file is customer data, 1 when at least one is, 2 when a file could not
// be read or its text not extracted (or the options are invalid) — errors win over 1.
// Errors go to `err` and name the file and what to do; with json they are also in `out`.
int run_scan(const ScanOptions& options, std::ostream& out, std::ostream& err);

}  // namespace custguard::cli
