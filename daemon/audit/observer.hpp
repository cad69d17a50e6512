// The audit observer: custguardd's second sensor, built on the kernel's audit.
//
//   apply(policy)   -> watch rules custguard:<instance>:<zone> (libaudit, exit list, read
//                      permission), at most max_watch_rules (rules.hpp) however many zones
//   reader thread   <- multicast group AUDIT_NLGRP_READLOG -> parse -> assemble -> access
//        observe mode:     every read of a zone file becomes an access record, decided
//                          by the policy (what the enforcer would have done), sensor=audit
//        cross_check mode: reads the enforcer must have reported are matched with the
//                          enforcer's events (observe_enforcer_event); a read without one
//                          becomes a sensor_mismatch record, and so does an auid that
//                          disagrees with the enforcer's loginuid
//   status poll     -> the kernel's lost counter, as `lost` records
//
// Coexists with auditd: never sets the audit pid, never touches rules without our key.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "custguard/events/enrich.hpp"
#include "custguard/events/record.hpp"
#include "custguard/policy/policy.hpp"
#include "daemon/event.hpp"

namespace custguard::audit {

enum class ObserverMode : std::uint8_t { observe, cross_check };

struct ObserverOptions {
    ObserverMode mode = ObserverMode::cross_check;
    std::string enforcer_name = "enforcer";  // for mismatch records: "fanotify", "bpf_lsm"
    // Tags this daemon's rules (instance_tag() of its state directory), so that a stop or
    // a restart removes its own and no other instance's; "" only in tests.
    std::string instance;
    int receive_buffer_bytes = 16 << 20;
    std::int64_t assemble_timeout_ms = 1000;
    std::int64_t cross_check_window_ms = 2000;
    std::int64_t status_interval_ms = 500;  // lost counter, audit still on
    // Turn audit on when it is off (rules are useless otherwise), also when something
    // (auditd exiting, say) turns it off while we run; stop(true) turns it off again if
    // it was off when we came.
    bool keep_enabled = true;
    // The kernel's default backlog (64 records) makes every process that produces a record
    // wait (up to backlog_wait_time, 60 s) while kauditd is behind: with our watch rules
    // a busy smbd stalled past its clients' 20 s timeout on a loaded machine. Raised to
    // at least this (as auditd's default rules do), never lowered; stop(true) puts the
    // old limit back if it is still ours.
    std::uint32_t min_backlog_limit = 8192;
    events::EnrichConfig enrich;
};

struct ObserverCallbacks {
    std::function<void(events::Record&&)> record;  // access records (observe), sensor_mismatch
    std::function<void(std::string_view source, std::uint64_t count, std::string_view reason)> lost;
    std::function<void(const std::string&)> warning;  // for the daemon's log
};

struct ObserverCounters {
    std::uint64_t records = 0;        // audit records received
    std::uint64_t malformed = 0;      // records that did not parse
    std::uint64_t events = 0;         // assembled events
    std::uint64_t incomplete = 0;     // events without EOE
    std::uint64_t accesses = 0;       // opens of zone files seen (our key; a shared root's: in a zone)
    std::uint64_t ignored = 0;        // our key, but not a successful/denied open of a zone file
    std::uint64_t recorded = 0;       // access records written (observe mode)
    std::uint64_t mismatches = 0;     // unmatched reads (cross_check)
    std::uint64_t auid_mismatches = 0;
    std::uint64_t matched = 0;
    std::uint64_t unverifiable = 0;   // decision needs groups of a process already gone
    std::uint64_t overruns = 0;       // multicast socket overruns (records lost, count unknown)
    std::uint64_t kernel_lost = 0;    // increase of the kernel's lost counter since start
    std::uint64_t rules = 0;          // watch rules in place
    std::uint64_t reenabled = 0;      // times audit was found off and turned on again
};

class AuditObserver {
public:
    static tl::expected<std::unique_ptr<AuditObserver>, std::string> create(ObserverOptions options);
    ~AuditObserver();  // stop(true)

    // Reconcile the watch rules with `policy` (also removes stale custguard:* rules of a
    // killed daemon) and decide later events against it. Returns warnings (paths the
    // kernel cannot watch); an error leaves the previous rules and policy in place.
    tl::expected<std::vector<std::string>, std::string> apply(const policy::Policy& policy);

    // Start the reader thread. Call once.
    tl::expected<void, std::string> start(ObserverCallbacks callbacks);

    // Every event the enforcer delivers, for the cross-check. Thread-safe, cheap.
    void observe_enforcer_event(const daemon::AccessEvent& event);

    // Stop the reader; `remove_rules` also removes our watch rules (clean shutdown).
    void stop(bool remove_rules);

    ObserverMode mode() const;
    ObserverCounters counters() const;

    struct Impl;

private:
    explicit AuditObserver(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace custguard::audit
