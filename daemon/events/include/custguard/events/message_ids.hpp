// Event kinds and their journald MESSAGE_IDs. The ids are fixed forever: SIEM rules and
// the journal catalog (systemd/custguard.catalog) refer to them. Add kinds at the end.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace custguard::events {

enum class Kind : std::uint8_t {
    access_allowed,   // a recorded read of a zone file that the policy allows
    access_audited,   // a read by someone not allowed, let through because on_violation = audit
    access_denied,    // a read refused by the enforcer
    zone_integrity,   // link, rename or unlink of a zone file (data leaving a zone)
    print,            // a print job decision (allow, audit, deny, hold)
    admin_change,     // a change made through custguardctl / D-Bus
    policy_reload,    // a policy (re)load, accepted or refused
    lost,             // events that could not be recorded, with their count
    sensor_mismatch,  // two sensors disagree (e.g. audit saw an open the enforcer did not)
    bulk_read,        // a subject read more zone files than [bulk] allows
    repeated,         // how many more refusals of one key a window held than were written
    customer_data_found,  // the watcher found customer data written outside every zone
};

struct KindInfo {
    Kind kind;
    std::string_view name;        // value of CUSTGUARD_EVENT
    std::string_view message_id;  // 32 lowercase hex digits
    int priority;                 // syslog priority (PRIORITY=)
};

inline constexpr KindInfo kind_table[] = {
    {Kind::access_allowed, "access", "c1279713f29f49ef8c42b40cb5b526fd", 6},
    {Kind::access_audited, "access", "e360e7eded344743874401dfe5467246", 5},
    {Kind::access_denied, "access", "af36e5e89027472db73bb8be382ec767", 4},
    {Kind::zone_integrity, "zone_integrity", "91347dcbf1594d0aa28cc26f416f228e", 4},
    {Kind::print, "print", "5e0a76d1ecfd4ce1a512f23ba7aaa183", 5},
    {Kind::admin_change, "admin_change", "39233c640d50494096ba0f3a05114cac", 5},
    {Kind::policy_reload, "policy_reload", "ca4d8ec72f244f39ae5ef1fe3fb7492e", 5},
    {Kind::lost, "lost", "7780bc5933ca48faade91ea6ece8f03c", 3},
    {Kind::sensor_mismatch, "sensor_mismatch", "8a33fca5f2954ef886384fd71fc31498", 3},
    {Kind::bulk_read, "bulk_read", "9766f46171c245b1ab783d1cd3146006", 3},
    {Kind::repeated, "repeated", "23f97535b16248a5840da5dbf48047d5", 4},
    {Kind::customer_data_found, "customer_data_found", "c7c30392d91d45ebb1473e0655df735b", 4},
};

inline constexpr const KindInfo& info(Kind kind) { return kind_table[static_cast<std::size_t>(kind)]; }
inline constexpr std::span<const KindInfo> all_kinds() { return kind_table; }

// Short stable name of a kind for tests and the console ("access_denied", "lost", ...).
std::string_view to_string(Kind kind);
std::optional<Kind> kind_from_message_id(std::string_view message_id);

}  // namespace custguard::events
