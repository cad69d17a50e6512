// Compile a policy into the rows the enforcers' tables hold. Both enforcers (BPF LSM maps
// and the fanotify decision tables) load exactly these rows; paths are resolved to
// (dev, ino) by the daemon, since that needs syscalls.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "custguard/policy/policy.hpp"

namespace custguard::policy {

// Zone ids are 1-based in policy order; 0 means "no zone".
struct CompiledZone {
    std::uint32_t id = 0;
    std::string name;
    Sensitivity sensitivity = Sensitivity::personal;
    Violation on_violation = Violation::deny;
    bool record_allowed = true;
    bool programs_required = false;  // allow_programs is non-empty
    bool programs_strict = true;     // allow_programs_strict
    // allow_clients is non-empty: reads served by Samba for a remote client need a client
    // row for every address the server process serves (none resolved: none allowed).
    bool clients_required = false;

    bool operator==(const CompiledZone&) const = default;
};

struct ZoneRoot {
    std::string path;      // a file or a directory tree
    std::uint32_t zone_id = 0;
    bool operator==(const ZoneRoot&) const = default;
};

// A single file under a zone by inode ([watch] protect): both enforcers key their root
// tables by inode, so no path is resolved. dev is st_dev (the BPF LSM converts it to the
// kernel's encoding); path is where it was found, used only to reach its filesystem.
struct InodeRoot {
    std::uint64_t dev = 0;
    std::uint64_t ino = 0;
    std::uint32_t zone_id = 0;
    std::string path;
    bool operator==(const InodeRoot&) const = default;
};

enum class SubjectKind : std::uint8_t { uid, gid };
struct SubjectRow {
    std::uint32_t zone_id = 0;
    SubjectKind kind = SubjectKind::uid;
    std::uint32_t id = 0;
    bool operator==(const SubjectRow&) const = default;
};

struct ProgramRow {
    std::uint32_t zone_id = 0;
    std::string path;
    bool operator==(const ProgramRow&) const = default;
};

// A client network of allow_clients or of a client grant, numeric only: host names
// arrive here as the addresses the daemon resolved them to (/32 or /128 rows).
struct ClientRow {
    std::uint32_t zone_id = 0;
    std::uint8_t family = 0;  // 4 or 6
    std::uint8_t prefix = 0;
    std::uint8_t addr[16] = {};
    // In force while now < expires_at (seconds since the epoch); 0: permanent. After
    // compile, the effective expiry (spread_client_expiry).
    std::uint64_t expires_at = 0;
    bool operator==(const ClientRow&) const = default;
};

// Gives every row the latest expiry (permanent, 0, being the latest) among the rows of its
// zone and family whose network contains it, itself included. A longest-prefix lookup
// (the BPF LSM's LPM trie, which returns only the longest match) then answers "is some row
// containing the address in force", as looking at every row (fanotify) does. Rows for the
// same network end up equal.
void spread_client_expiry(std::vector<ClientRow>& rows);

struct GrantRow {
    std::uint32_t zone_id = 0;
    std::uint32_t uid = 0;
    std::uint64_t expires_at = 0;  // seconds since the epoch
    bool operator==(const GrantRow&) const = default;
};

// Overrides every allow (user or group row, grant, program) of `uid` in the zone until
// expires_at; what the read then gets is the zone's on_violation.
struct DenyRow {
    std::uint32_t zone_id = 0;
    std::uint32_t uid = 0;
    std::uint64_t expires_at = 0;  // seconds since the epoch
    bool operator==(const DenyRow&) const = default;
};

// Overrides every allow in the zone for reads a Samba server process makes while it
// serves this address (family 4 or 6), until expires_at.
struct ClientDenyRow {
    std::uint32_t zone_id = 0;
    std::uint8_t family = 0;
    std::uint8_t addr[16] = {};
    std::uint64_t expires_at = 0;  // seconds since the epoch
    bool operator==(const ClientDenyRow&) const = default;
};

struct Compiled {
    std::vector<CompiledZone> zones;
    std::vector<ZoneRoot> roots;       // sorted by path
    std::vector<InodeRoot> inode_roots;  // sorted by (dev, ino), one zone an inode
    std::vector<SubjectRow> subjects;  // sorted, unique
    std::vector<ProgramRow> programs;  // sorted, unique
    std::vector<ClientRow> clients;    // sorted, unique, expiries spread (spread_client_expiry)
    std::vector<GrantRow> grants;      // sorted; one row per (zone, uid): latest expiry
    std::vector<DenyRow> denies;       // sorted; one row per (zone, uid): latest expiry
    std::vector<ClientDenyRow> client_denies;  // sorted; one row per (zone, address): latest expiry
};

Compiled compile(const Policy& policy);

}  // namespace custguard::policy
