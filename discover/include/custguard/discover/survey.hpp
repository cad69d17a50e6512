// The survey behind `custguardctl discover PATH...`: walk trees at idle priority, scan
// what changed since the last run into the SQLite store (db.hpp), and report where
// customer data lies outside the policy's zones, per folder, with a policy snippet that
// would make those folders zones.
//
// Scanning: UTF-8 text (most of what a file share holds: text, CSV, logs) is streamed
// through the scanner in this process, as scan_file() does; every format that needs a
// parser (PDF, PostScript, legacy encodings, and whatever extract() learns) goes to the
// sandboxed reader (scan/…/sandbox.hpp), because the survey usually runs as root.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "custguard/scan/categories.hpp"
#include "custguard/scan/sandbox.hpp"
#include "custguard/scan/scanner.hpp"

namespace custguard::discover {

// Detector hits are grouped by scan::category_of (custguard/scan/categories.hpp), by
// detector NAME, so detectors other parts of custguard add count as soon as they exist.
using scan::category_label;
using scan::category_of;
using scan::k_category_names;

struct ZonePath {
    std::string zone;
    std::string path;  // absolute, normalised
};

struct Progress {
    std::uint64_t files = 0;          // regular files found so far
    std::uint64_t scanned = 0;        // of them scanned (the others were unchanged)
    std::uint64_t bytes = 0;          // bytes of the scanned files
    std::chrono::steady_clock::duration elapsed{};
    bool done = false;
};

struct SurveyOptions {
    std::vector<std::string> roots;   // directories (or files) to survey
    std::string db_path = "/var/lib/custguard/discover.db";
    scan::ScannerConfig scanner;      // detectors and keywords ([print])
    std::uint64_t threshold = 3;      // hits that make a file customer data
    std::vector<ZonePath> zones;      // the policy's zone paths
    std::vector<std::string> zone_names;  // every zone name, so snippet names do not clash
    bool rescan = false;              // scan every file, changed or not
    bool cross_filesystems = false;   // descend into other file systems under a root
    unsigned threads = 2;             // scanning threads, each with its own Scanner
    scan::SandboxOptions sandbox;     // the reader for formats that need a parser
    // Called from the calling thread about five times a second and once at the end.
    std::function<void(const Progress&)> progress;
    // Lower this process to nice 19 and the idle I/O class (a survey must not slow the
    // share down). Tests of the store switch it off only where they measure nothing.
    bool idle_priority = true;
};

// Longest path the walk descends into and deepest tree; beyond, a warning says what was
// left out.
inline constexpr std::size_t k_max_path = 4095;
inline constexpr int k_max_depth = 128;
inline constexpr std::size_t k_max_listed = 100;  // unreadable files and warnings listed

struct Counters {
    std::uint64_t files = 0;       // regular files found
    std::uint64_t scanned = 0;     // scanned this run
    std::uint64_t unchanged = 0;   // same dev, inode, size, mtime, ctime and detectors: kept
    std::uint64_t removed = 0;     // gone since the last run: dropped from the store
    std::uint64_t unreadable = 0;  // no text could be judged (of all files)
    std::uint64_t bytes_scanned = 0;
    std::uint64_t in_process = 0;  // scanned as UTF-8 text in this process
    std::uint64_t sandboxed = 0;   // scanned by the sandboxed reader
    std::uint64_t skipped = 0;     // directories on other file systems, too deep or long
};

struct FolderReport {
    std::string folder;
    std::uint64_t files = 0;  // files with customer data (hits >= threshold)
    std::uint64_t hits = 0;   // detector hits in categories: the persons estimate without EDM
    std::uint64_t persons = 0;  // customers found by exact matching (edm:NAME detectors)
    std::map<std::string, std::uint64_t> categories;  // category -> hits
    std::map<std::string, std::uint64_t> detectors;   // detector name -> hits
    std::uint32_t uid = 0, gid = 0;                    // owner of the folder (for the snippet)
};

struct Unreadable {
    std::string path;
    std::string reason;
};

struct SurveyResult {
    std::vector<std::string> roots;  // as walked (real paths)
    std::string fingerprint;
    std::uint64_t threshold = 0;
    Counters counters;
    bool exact = false;  // edm:NAME detectors ran: FolderReport::persons counts customers
    std::vector<FolderReport> outside;  // largest (persons, hits, then files) first
    std::uint64_t outside_files = 0;
    std::uint64_t inside_files = 0;                   // customer-data files inside zones
    std::map<std::string, std::uint64_t> inside_zones;  // zone -> files
    std::vector<Unreadable> unreadable;               // at most k_max_listed
    std::vector<std::string> warnings;                // at most k_max_listed
    int io_priority_class = -1;  // of a scanning thread, from ioprio_get (3: idle)
    int nice = 0;                // of a scanning thread
    double seconds = 0;
};

// The fingerprint of what the stored findings depend on: scanner version, detectors,
// keywords, keyword proximity. The threshold is not part of it: the store keeps counts
// per detector and the report applies the threshold, so changing it needs no rescan.
std::string detector_fingerprint(const scan::ScannerConfig& config);

// Sets nice 19 and IOPRIO_CLASS_IDLE on the calling thread (Linux keeps both per thread).
tl::expected<void, std::string> lower_priority();
// The calling thread's I/O priority class (ioprio_get); -1 on error.
int io_priority_class();

// Errors: the store cannot be opened or written, no root can be walked, the scanner
// cannot be built. Unreadable files and directories are results, not errors.
tl::expected<SurveyResult, std::string> survey(const SurveyOptions& options);

// The [[zone]] blocks (custguard.policy(5) syntax) that would make the outside folders
// zones: nested folders join the outermost, names do not clash with `existing_zones`.
std::string policy_snippet(const SurveyResult& result, const std::vector<std::string>& existing_zones);

// Human report (folder table, zone summary, unreadable files, snippet) and the stable
// JSON document of `--json` (custguardctl(8), DISCOVER).
std::string format_text(const SurveyResult& result, const std::string& snippet);
std::string format_json(const SurveyResult& result, const std::string& snippet);

}  // namespace custguard::discover
