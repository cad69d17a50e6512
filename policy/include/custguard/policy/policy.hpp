// custguard policy model: the parsed, validated and merged policy.
// Pure: no syscalls, no logging, no clock or NSS lookups. Names are resolved through the
// Resolver the caller injects; time arrives as a parameter.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "custguard/policy/diagnostic.hpp"

namespace custguard::policy {

enum class Sensitivity : std::uint8_t { personal, sensitive };
enum class Violation : std::uint8_t { deny, audit };
// What a decision does. For file access only allow/audit/deny occur; hold is for print.
enum class Action : std::uint8_t { allow, audit, deny, hold };
enum class EnforcerChoice : std::uint8_t { automatic, bpf_lsm, fanotify, none };
enum class BulkAction : std::uint8_t { alert, revoke };
enum class UnreadableDocuments : std::uint8_t { allow, audit, deny, hold };
enum class WatchAction : std::uint8_t { record, notify, protect };

std::string_view to_string(Sensitivity);
std::string_view to_string(Violation);
std::string_view to_string(Action);
std::string_view to_string(EnforcerChoice);
std::string_view to_string(BulkAction);
std::string_view to_string(WatchAction);
std::optional<Action> parse_action(std::string_view);
std::optional<EnforcerChoice> parse_enforcer(std::string_view);

// Where a value came from: the policy file, a drop-in, or the CLI-managed state.
enum class OriginKind : std::uint8_t { policy, dropin, state };
struct Origin {
    OriginKind kind = OriginKind::policy;
    SourcePos pos;
};

// A user ("alice") or a group ("%sales"), resolved to a numeric id.
struct Principal {
    enum class Kind : std::uint8_t { user, group };
    Kind kind = Kind::user;
    std::string name;  // without the leading '%'
    std::uint32_t id = 0;
    Origin origin;
    std::string spelled() const { return kind == Kind::group ? "%" + name : name; }
};

// One address of a client machine, as the enforcers match it (an IPv4-mapped IPv6
// address is written as IPv4).
struct ClientAddress {
    std::uint8_t family = 0;  // 4 or 6
    std::uint8_t addr[16] = {};
    bool operator==(const ClientAddress&) const = default;
};
std::optional<ClientAddress> parse_client_address(std::string_view text);
std::string to_string(const ClientAddress&);
// Is `a` in the network family/prefix/addr?
bool in_network(std::uint8_t family, std::uint8_t prefix, const std::uint8_t* addr, const ClientAddress& a);

// An IPv4/IPv6 network, or a host name. Host names are resolved forward by the daemon
// (at load, at every reload and every hour; never at access time) into `resolved`;
// policy/ never resolves them.
struct ClientMatch {
    std::string text;  // as written
    std::optional<std::string> hostname;
    std::uint8_t family = 0;  // 4 or 6 when numeric
    std::uint8_t prefix = 0;
    std::uint8_t addr[16] = {};
    std::vector<ClientAddress> resolved;  // host name: its addresses as last resolved
    Origin origin;
    // Does `a` fall in this network, or is it one of the host name's addresses?
    bool matches(const ClientAddress& a) const;
};

// Earlier versions accepted `allow_media` (zone key, state device kind "media") and never
// enforced it. The policy loader, the state file reader and the control plane refuse it,
// all with this reason, so no medium is ever stored and ignored.
inline constexpr std::string_view k_media_not_enforced =
    "removable media are not controlled by custguard in this version";

struct PathEntry {
    std::string path;  // absolute, normalised, no trailing '/'
    Origin origin;
};

struct ProgramEntry {
    std::string path;
    Origin origin;
};

struct Zone {
    std::string name;
    Origin origin;
    std::vector<PathEntry> paths;
    Sensitivity sensitivity = Sensitivity::personal;
    Violation on_violation = Violation::deny;
    bool record_allowed = true;
    std::vector<Principal> allow_users;
    std::vector<ProgramEntry> allow_programs;
    // Refuse a listed program that runs foreign code (loader injection, a tracer).
    bool allow_programs_strict = true;
    std::vector<ClientMatch> allow_clients;
    std::vector<std::string> notify;
};

struct PrintPolicy {
    Action action = Action::hold;
    std::vector<std::string> allow_printers;
    std::vector<Principal> allow_users;
    std::vector<std::string> detectors;
    std::uint32_t threshold = 3;
    std::vector<std::string> keywords;
    std::uint32_t keyword_proximity = 40;  // characters between two keyword hits
    UnreadableDocuments unreadable = UnreadableDocuments::hold;
    std::vector<std::string> notify;
    // Limits of the sandboxed reader of one document; beyond them it is unreadable.
    std::uint32_t scan_timeout_seconds = 30;
    std::uint32_t scan_memory_mb = 1024;
    Origin origin;
};

// [watch]: files written outside every zone are scanned once they settle.
struct WatchPolicy {
    bool enabled = false;              // the policy has a [watch] table
    std::vector<PathEntry> paths;      // empty: the filesystems that hold zones
    WatchAction on_customer_data = WatchAction::record;
    std::string protect_as;            // zone for finds that are no exact copy ("" : recorded only)
    std::vector<std::string> detectors;  // empty: the [print] detectors
    std::optional<std::uint32_t> threshold;  // unset: the [print] threshold
    std::vector<std::string> notify;
    Origin origin;
};

// A file the watcher put under a zone (on_customer_data = "protect"), by inode: renaming or
// linking it keeps it protected. Not written in policy files; the daemon adds them from its
// state directory to the policy it enforces, as it does cool-down denies.
struct ProtectedFile {
    std::string zone;
    std::uint64_t dev = 0;  // st_dev
    std::uint64_t ino = 0;
    std::string path;       // where it was found (for marking its filesystem and for people)
};

struct MailSettings {
    std::string smtp = "smtp://127.0.0.1:25";
    std::string from;
    bool starttls = false;
    std::string username;
    std::string password_file;
    Origin origin;
};

struct NotifyTarget {
    std::string name;
    std::vector<std::string> mail;
    std::string webhook;
    std::uint32_t digest_seconds = 900;
    Origin origin;
};

struct BulkPolicy {
    std::uint32_t max_files = 0;  // 0: off
    std::uint64_t max_bytes = 0;  // 0: off
    std::uint32_t window_seconds = 600;
    BulkAction action = BulkAction::alert;
    std::uint32_t cooldown_seconds = 900;
    std::vector<std::string> notify;
    Origin origin;
};

struct DaemonSettings {
    EnforcerChoice enforcer = EnforcerChoice::automatic;
    std::string state_dir = "/var/lib/custguard";
    Origin origin;
};

// A temporary grant: access to a zone for a user until an absolute time (seconds since
// the Unix epoch, supplied by the caller).
struct Grant {
    std::string zone;
    std::string user;
    std::uint32_t uid = 0;
    std::uint64_t expires_at = 0;
    std::string reason;
    std::string granted_by;
    Origin origin;
};

// A temporary client grant: until expires_at (seconds since the epoch) the client machine
// counts as listed in the zone's allow_clients (users must still be allowed as before).
// Only for zones with allow_clients: without it every client may already reach the zone.
struct ClientGrant {
    std::string zone;
    ClientMatch client;  // as allow_clients parses it; host names resolved by the daemon
    std::uint64_t expires_at = 0;
    std::string reason;
    std::string granted_by;
    Origin origin;
};

// A temporary deny: the user may not read the zone until an absolute time (seconds since
// the Unix epoch), whatever allows it otherwise: allow_users (the user or a %group),
// a grant or allow_programs. Not written in policy files; the daemon adds them (bulk-read
// cool-downs) to the policy it enforces.
struct Deny {
    std::string zone;
    std::uint32_t uid = 0;
    std::uint64_t expires_at = 0;
};

// The same for a client machine: a Samba server process serving `client` may not read the
// zone until expires_at, whoever the user (a client that crossed the bulk-read limit).
struct ClientDeny {
    std::string zone;
    ClientAddress client;
    std::uint64_t expires_at = 0;
};

// [edm.NAME]: the index of exact customer matching detector "edm:NAME" (custguardctl edm
// build). The files are opened by the daemon and custguardctl, not here (no syscalls).
struct EdmIndex {
    std::string name;
    std::string index;  // absolute path
    std::string key;    // absolute path; default: "key" in the index's directory
    Origin origin;
};

struct Policy {
    DaemonSettings daemon;
    std::vector<Zone> zones;
    PrintPolicy print;
    MailSettings mail;
    std::vector<NotifyTarget> notify_targets;
    BulkPolicy bulk;
    std::vector<EdmIndex> edm;
    std::vector<Grant> grants;
    std::vector<ClientGrant> client_grants;
    std::vector<Deny> denies;
    std::vector<ClientDeny> client_denies;
    WatchPolicy watch;
    std::vector<ProtectedFile> protected_files;

    const Zone* find_zone(std::string_view name) const;
    const NotifyTarget* find_notify(std::string_view name) const;
    const EdmIndex* find_edm(std::string_view name) const;
};

}  // namespace custguard::policy
