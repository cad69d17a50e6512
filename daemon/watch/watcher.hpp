// The [watch] watcher: finds customer data written outside every zone.
//
// A fanotify NOTIFICATION group (FAN_CLASS_NOTIF, FID reporting) marks whole filesystems
// for FAN_CLOSE_WRITE, FAN_CREATE, FAN_MOVED_TO and FAN_MODIFY (a file filled through a
// descriptor that stays open has no close; its rescans back off, see WatcherOptions), with
// file handles of the directory and of the file (FAN_REPORT_FID: a file written through a
// name outside the watched trees is known by the name it was last seen with inside). It
// is a group of its own beside the enforcer's permission group, so the read path gets no
// event and no extra work from it: writes are reported after the fact and nobody waits
// for the watcher.
//
// Events are coalesced per inode and a file is scanned once it has been quiet for
// `quiet` (capped at `settle_cap` after its first event), in the sandboxed reader
// (a scan::SandboxedReader), never in the daemon. Its writer (uid, user, exe, SMB client)
// is taken when the event is read, while the writer is most likely still there; an smbd
// that has exited by then (a session that ended right after its write) is named by the
// clients a lookup found while it lived, or the exec tracker read in the fork that made
// it (SambaClients::recent), or the record says they are unknown.
//
// Stores into a shared mapping give no event at all. A file its writer still maps (or
// holds open for writing) when it settles is rescanned on a back-off; and a sweep of every
// process's shared mappings (WatcherOptions::sweep_interval) finds files mapped writable
// by processes no event names, and scans them when their bytes change. A file whose bytes equal a zone file's (same size, then SHA-256) is a copy
// of that zone.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "custguard/events/enrich.hpp"
#include "custguard/events/record.hpp"
#include "custguard/policy/policy.hpp"
#include "custguard/scan/sandbox.hpp"

namespace custguard::daemon::watch {

// What the watcher found in one file; the daemon decides the action and records it.
struct Find {
    events::CustomerDataFound found;  // action left empty
    bool customer_data = false;       // above the threshold (a copy may be below)
    std::string unreadable;           // why the content could not be scanned ("" : scanned)
};

struct WatcherHost {
    std::function<void(Find&&)> found;
    // Events the watcher could not follow (queue overflow, too many files pending).
    std::function<void(std::string_view source, std::uint64_t count, std::string_view reason)> lost;
    std::function<void(const std::string&)> warning;
};

// Bounds of one sweep (WatcherOptions::sweep_interval); when one is hit the rest is
// reported lost, and the next sweep starts with the processes this one left out.
struct SweepLimits {
    std::size_t max_processes = 32768;                      // processes whose maps are read
    std::size_t max_maps_bytes = std::size_t{64} << 20;     // of maps text, all processes
    std::size_t max_process_maps_bytes = std::size_t{4} << 20;  // of one process's maps (else read again after 60 s)
    std::size_t max_files = 1024;                           // mapped files followed at a time
    // Bytes hashed to compare mapped files with their last scan; a file not compared for
    // want of it is compared at a later sweep (the longest unchecked first), and a file
    // larger than this is rescanned on the back-off of held files only.
    std::uint64_t max_hash_bytes = std::uint64_t{64} << 20;
};

struct WatcherOptions {
    std::chrono::milliseconds quiet{500};         // a file is scanned after this long without writes
    std::chrono::milliseconds settle_cap{5000};   // ... but at most this long after its first event
    // A file written through a descriptor that stays open (FAN_MODIFY, no close) is
    // rescanned after this long, then twice as long each time, up to the maximum.
    std::chrono::milliseconds reopen_rescan{2000};
    std::chrono::seconds reopen_rescan_max{300};
    // A file that settles while its writer still holds it open for writing or mapped shared
    // (stores into a shared mapping give no fanotify event at all) is rescanned on the same
    // back-off for as long as the writer holds it. At most this many such files at a time;
    // more are reported lost.
    std::size_t max_held = 1024;
    // The sweep: every `sweep_interval` the shared mappings of every process
    // (/proc/PID/maps) are read for regular files on the watched filesystems that the
    // process can store into (mapped writable, or opened for writing so that mprotect can
    // make the mapping writable). Such a file outside zones is scanned when first seen and
    // whenever its bytes (SHA-256) differ from those of its last scan, and once more when no
    // process maps it any longer; so stores by a process no event names (one that opened an
    // existing file, mapped it and closed the descriptor, or got the descriptor from
    // another process) are found within an interval plus `quiet`. 0: no sweep.
    std::chrono::milliseconds sweep_interval{2000};
    SweepLimits sweep;
    std::size_t max_pending = 65536;              // files waiting to settle
    std::size_t max_zone_files = 200000;          // bound of the copy index
    std::chrono::seconds index_ttl{30};           // the copy index is rebuilt when older
    std::uint64_t max_hash_bytes = std::uint64_t{4} << 30;  // larger files are not compared
    scan::SandboxOptions sandbox;
    events::EnrichConfig enrich;  // /proc, exec tracker identities and Samba client lookups
    // The client machines an smbd writer serves (with the enforcer's BPF socket iterator
    // where it has one: a short session's connection may be closing already).
    std::shared_ptr<events::SambaClients> samba;
};

// The sorted, unique categories (scan/categories.hpp) of detector names
// (CUSTGUARD_CATEGORIES), plus "sensitive" (要配慮) for a copy of a sensitive zone's file.
std::vector<std::string> categories(const std::vector<std::string>& detectors, bool sensitive);

// The files a watcher compares against and keeps out of: zone roots with their names,
// and files protected by inode.
struct WatchScope {
    policy::WatchPolicy watch;
    std::vector<std::pair<std::string, std::string>> zone_roots;  // path, zone name
    std::vector<std::pair<std::string, policy::Sensitivity>> zones;  // name, sensitivity
    std::vector<std::pair<std::uint64_t, std::uint64_t>> protected_files;  // st_dev, ino
    scan::ScannerConfig scanner;
    std::vector<std::string> detectors;  // counted towards the threshold
    std::uint32_t threshold = 3;
    std::chrono::milliseconds scan_timeout{30'000};
    std::uint64_t scan_memory = std::uint64_t{1} << 30;
    // Compare finds with zone files. Off where custguardd cannot read zone files itself
    // (the bpf-lsm enforcer could not exempt its reads): finds are then judged by their
    // content alone.
    bool recognise_copies = true;
};

// The shared mappings of files in /proc/PID/maps ("start-end perms offset major:minor
// inode path"). The one reader of maps, for held files and for the sweep.
struct SharedMapping {
    std::uint64_t start = 0, end = 0, dev = 0, ino = 0;
    bool writable = false;  // mapped writable now (perms "rw-s")
};
enum class MapsRead { ok, gone, too_large };
// Appends to `out`; `text` is a buffer kept between calls. Stops with too_large once the
// maps text passes `max_bytes` (`out` then holds nothing of this process).
MapsRead read_shared_mappings(pid_t pid, std::size_t max_bytes, std::string& text, std::vector<SharedMapping>& out);

// The files process `pid` holds so that it can change them without an event: shared
// mappings (/proc/PID/maps; a read-only one can be made writable with mprotect when the
// file was opened for writing) and descriptors open for writing (/proc/PID/fd and fdinfo),
// as (st_dev, st_ino) of regular files; nullopt when the process is gone. Bounded: beyond
// `max_fds` descriptors or `max_maps_bytes` of maps it stops looking and every file counts
// as held (the rescans that causes are bounded by the back-off).
struct HoldLimits {
    std::size_t max_fds = 4096;
    std::size_t max_maps_bytes = std::size_t{4} << 20;
};
struct HeldFiles {
    std::set<std::pair<std::uint64_t, std::uint64_t>> files;
    bool beyond_limits = false;  // stopped looking: every file counts as held
    bool holds(std::uint64_t dev, std::uint64_t ino) const;
};
std::optional<HeldFiles> files_held_for_writing(pid_t pid, const HoldLimits& limits = {});

// Whether `path` is `root` or lies below it.
bool path_within(std::string_view path, std::string_view root);

class Watcher {
public:
    static tl::expected<std::unique_ptr<Watcher>, std::string> create(WatcherOptions options, WatcherHost host);
    ~Watcher();
    Watcher(const Watcher&) = delete;
    Watcher& operator=(const Watcher&) = delete;

    // Marks the filesystems of the watched paths (or of the zone roots) and replaces the
    // scope. Without [watch] every mark is removed. Warnings for paths it cannot watch.
    tl::expected<std::vector<std::string>, std::string> apply(WatchScope scope);
    // A file is now protected: no more finds for it.
    void protected_file(std::uint64_t dev, std::uint64_t ino);
    void stop();

    struct Impl;

private:
    explicit Watcher(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace custguard::daemon::watch
