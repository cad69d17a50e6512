// The fanotify enforcer's decision tables: the compiled policy rows with paths resolved to
// inodes. Immutable once built; apply() swaps a whole new instance in.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <tl/expected.hpp>

#include "custguard/policy/compile.hpp"
#include "custguard_abi.h"

namespace custguard::daemon::fan {

struct InodeKey {
    std::uint64_t dev = 0;  // st_dev (equals the kernel's new_encode_dev for usual majors)
    std::uint64_t ino = 0;
    bool operator==(const InodeKey&) const = default;
};

struct InodeKeyHash {
    std::size_t operator()(const InodeKey& k) const noexcept {
        return std::hash<std::uint64_t>{}(k.ino * 0x9e3779b97f4a7c15ull ^ k.dev);
    }
};

// Who opens: credentials as the kernel's LSM hook sees them.
struct Subject {
    std::uint32_t uid = 0;                  // fsuid
    std::span<const std::uint32_t> gids;    // fsgid and supplementary groups
    InodeKey exe;                           // executable of the process
    std::uint64_t now = 0;                  // CLOCK_REALTIME seconds, for grants and denies
    // CG_RULE_PROGRAM_TAMPERED or CG_RULE_PROGRAM_TRACED when the process may run code its
    // program does not name (TaskReader::program_trust), 0 when it runs its own: only then
    // does allow_programs vouch for it.
    std::uint32_t untrusted = 0;
    // A Samba server process serving remote clients: in zones with allow_clients every
    // address in `clients` must be listed, and none known is refused.
    bool remote = false;
    std::span<const policy::ClientAddress> clients;
};

// As the BPF program reports it: a permitted open is CG_DECISION_ALLOW (recorded when the
// zone has record_allowed); CG_DECISION_AUDIT is a violation let through (on_violation =
// audit) — the same as policy::Evaluator's Action::allow (with Decision::record) and
// Action::audit.
struct Verdict {
    std::uint32_t zone_id = 0;
    cg_decision decision = CG_DECISION_ALLOW;
    std::uint32_t rule = CG_RULE_OUTSIDE;  // enum cg_rule, or enum cg_rule_program
    bool record = false;  // produce an event
};

struct ResolvedRoot {
    std::string path;
    std::uint32_t zone_id = 0;
    InodeKey key;
    bool is_dir = false;
    // A protected file ([watch] protect): `path` is only a directory on its filesystem,
    // not a zone tree.
    bool by_inode = false;
};

class ZoneTables {
public:
    // Resolves roots and programs with stat(2). Paths that do not exist are skipped and
    // reported in `warnings` (a zone directory may be created later; re-apply then).
    static tl::expected<ZoneTables, std::string> build(const policy::Compiled& compiled,
                                                       std::vector<std::string>& warnings);

    // Zone whose root is exactly this inode, or 0.
    std::uint32_t root_zone(const InodeKey& key) const {
        auto it = roots_.find(key);
        return it == roots_.end() ? 0 : it->second;
    }

    Verdict decide(std::uint32_t zone_id, const Subject& subject) const;

    // Filesystems (st_dev) holding at least one zone root, with a root on each.
    const std::vector<ResolvedRoot>& resolved_roots() const { return resolved_; }
    std::vector<std::uint64_t> devices() const;
    std::size_t zone_count() const { return zone_flags_.size(); }
    // The zone's id in these tables, 0 when no zone has that name.
    std::uint32_t zone_id(std::string_view name) const;
    const std::string& zone_name(std::uint32_t zone_id) const;
    // Whether `zone_id` has allow_programs, strict: only then is the program's trust needed.
    bool zone_requires_programs(std::uint32_t zone_id) const {
        return zone_id >= 1 && zone_id <= zone_flags_.size() &&
               (zone_flags_[zone_id - 1] & (CG_ZONE_PROGRAMS | CG_ZONE_PROGRAMS_LAX)) == CG_ZONE_PROGRAMS;
    }
    // Whether `zone_id` has allow_clients: only then are Samba clients looked up.
    bool zone_requires_clients(std::uint32_t zone_id) const {
        return zone_id >= 1 && zone_id <= zone_clients_.size() && zone_clients_[zone_id - 1].required;
    }
    // Whether reads Samba serves in `zone_id` need the clients looked up: allow_clients,
    // or a client in its bulk-read cool-down there.
    bool zone_checks_clients(std::uint32_t zone_id) const {
        return zone_id >= 1 && zone_id <= zone_clients_.size() &&
               (zone_clients_[zone_id - 1].required || !zone_clients_[zone_id - 1].denies.empty());
    }
    // Whether allow_clients of `zone_id` lists `address`, or a client grant in force at
    // `now` (CLOCK_REALTIME seconds) does.
    bool client_allowed(std::uint32_t zone_id, const policy::ClientAddress& address, std::uint64_t now) const;
    // Whether `address` is in a bulk-read cool-down in `zone_id` at `now`.
    bool client_revoked(std::uint32_t zone_id, const policy::ClientAddress& address, std::uint64_t now) const;
    // Whether any %group may read `zone_id`: only then are supplementary groups needed.
    bool zone_has_groups(std::uint32_t zone_id) const {
        return zone_id >= 1 && zone_id <= zone_groups_.size() && zone_groups_[zone_id - 1];
    }

private:
    struct SubjectKey {
        std::uint32_t zone_id, kind, id;
        bool operator==(const SubjectKey&) const = default;
    };
    struct SubjectKeyHash {
        std::size_t operator()(const SubjectKey& k) const noexcept {
            return (std::size_t{k.zone_id} << 33) ^ (std::size_t{k.kind} << 32) ^ k.id;
        }
    };
    struct ProgramKey {
        std::uint32_t zone_id;
        InodeKey exe;
        bool operator==(const ProgramKey&) const = default;
    };
    struct ProgramKeyHash {
        std::size_t operator()(const ProgramKey& k) const noexcept {
            return InodeKeyHash{}(k.exe) ^ (std::size_t{k.zone_id} << 40);
        }
    };

    std::unordered_map<InodeKey, std::uint32_t, InodeKeyHash> roots_;
    std::vector<ResolvedRoot> resolved_;
    std::vector<std::uint32_t> zone_flags_;  // index zone_id - 1, CG_ZONE_* bits
    std::vector<std::string> zone_names_;    // index zone_id - 1
    std::vector<bool> zone_groups_;          // index zone_id - 1: has gid rows
    std::unordered_set<SubjectKey, SubjectKeyHash> subjects_;
    std::unordered_map<std::uint64_t, std::uint64_t> grants_;  // (zone << 32 | uid) -> expiry
    std::unordered_map<std::uint64_t, std::uint64_t> denies_;  // (zone << 32 | uid) -> expiry
    std::unordered_set<ProgramKey, ProgramKeyHash> programs_;
    struct ZoneClients {
        bool required = false;
        std::vector<policy::ClientRow> rows;  // a few networks per zone: scanned in turn
                                              // (each in force until its expires_at, 0: always)
        std::vector<policy::ClientDenyRow> denies;  // cool-downs: a few at most, scanned in turn
    };
    std::vector<ZoneClients> zone_clients_;  // index zone_id - 1
};

}  // namespace custguard::daemon::fan
