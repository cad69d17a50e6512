// Cross-check of two sensors: every read of a zone file that audit saw and the policy says
// the enforcer must report (a recorded read, an audit or a denial) must have a matching
// enforcer event: same process (tgid), same inode, close in time. A read audit saw and the
// enforcer did not is evidence of a bypass (a path the enforcer does not cover, a
// detached enforcer) and becomes a finding. Matched pairs also compare the login uid:
// audit's auid confirms the enforcer's loginuid enrichment. Pure: times are parameters.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace custguard::audit {

struct EnforcerSighting {
    std::uint32_t tgid = 0;
    std::uint64_t dev = 0;  // kernel dev_t
    std::uint64_t ino = 0;
    std::int64_t realtime_ns = 0;
    std::uint32_t loginuid = 0xffffffffu;
    std::uint32_t decision = 0;
};

struct AuditSighting {
    std::uint32_t tgid = 0;
    std::uint64_t dev = 0;
    std::uint64_t ino = 0;
    std::int64_t realtime_ns = 0;  // from the audit stamp (ms precision, syscall entry)
    std::uint32_t auid = 0xffffffffu;
    std::string path;
    std::string zone;
    std::string comm;
    std::uint32_t uid = 0xffffffffu;
    std::string event_id;  // "SEC.MSEC:SERIAL", to find the event in auditd's log
};

struct Finding {
    enum class Kind : std::uint8_t { unmatched, auid_mismatch };
    Kind kind = Kind::unmatched;
    AuditSighting audit;
    std::uint32_t enforcer_loginuid = 0xffffffffu;  // auid_mismatch only
};

struct CrossCheckOptions {
    // An audit read waits this long (after it arrived) for its enforcer event; enforcer
    // events are kept this long to meet audit records that arrive later. Sensor clocks
    // may disagree by this much too.
    std::int64_t window_ns = 2'000'000'000;
    std::size_t max_sightings = 65536;  // enforcer events kept (oldest dropped first)
    std::size_t max_waiting = 65536;    // audit reads waiting (overflow: counted, not checked)
};

struct CrossCheckCounters {
    std::uint64_t audit_checked = 0;
    std::uint64_t matched = 0;
    std::uint64_t unmatched = 0;
    std::uint64_t auid_mismatches = 0;
    std::uint64_t overflow = 0;  // audit reads not checked (waiting list full)
    std::uint64_t enforcer_seen = 0;
};

class CrossCheck {
public:
    explicit CrossCheck(CrossCheckOptions options = {}) : options_(options) {}

    // `now_ns`: a monotonic clock of the caller, used for waiting and expiry only.
    void enforcer_seen(const EnforcerSighting& s, std::int64_t now_ns);
    void audit_seen(AuditSighting s, std::int64_t now_ns);
    // Findings that are due: auid mismatches at once, unmatched reads once their window
    // passed without an enforcer event.
    std::vector<Finding> poll(std::int64_t now_ns);

    const CrossCheckCounters& counters() const { return counters_; }
    std::size_t waiting() const { return waiting_.size(); }

private:
    struct Seen {
        EnforcerSighting s;
        std::int64_t at_ns;
        bool used = false;
    };
    struct Waiting {
        AuditSighting a;
        std::int64_t deadline_ns;
    };
    bool match(const AuditSighting& a);  // consumes the enforcer sighting
    void prune(std::int64_t now_ns);

    CrossCheckOptions options_;
    CrossCheckCounters counters_;
    std::deque<Seen> seen_;
    std::deque<Waiting> waiting_;
    std::vector<Finding> due_;
};

}  // namespace custguard::audit
