// The notifier: watches every committed record (Pipeline observer), turns them into
// per-zone digests and immediate alerts for the policy's notify targets, detects bulk
// reads, and delivers mail and webhooks from a durable queue with retry and backoff.
//
//   observe(record) ──▶ [inbox] ──▶ intake thread: alerts (rate-limited per target),
//                                    digests (per target and zone, on schedule),
//                                    bulk reads (→ bulk_read record, revoke request)
//                                         │ push
//                                         ▼
//                       <state_dir>/notify/queue/*.msg ──▶ sender thread ──▶ SMTP / HTTP
//
// Delivery order is kept per (target, channel, address): a message that fails holds back
// the ones behind it until its retry succeeds. Different targets do not wait for each other.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "custguard/events/record.hpp"
#include "custguard/policy/policy.hpp"
#include "daemon/notify/queue.hpp"

namespace custguard::notify {

struct NotifierOptions {
    std::filesystem::path dir = "/var/lib/custguard/notify";  // queue: <dir>/queue
    std::size_t queue_max = 1000;   // messages; beyond: counted and reported as lost
    std::size_t inbox_max = 16384;  // records waiting for the intake thread
    std::chrono::milliseconds retry_initial{2000};
    std::chrono::milliseconds retry_max{std::chrono::minutes(10)};
    std::uint32_t alert_burst = 10;  // alerts per target within alert_period; more are held back
    std::chrono::seconds alert_period{600};
    std::chrono::milliseconds tick{250};  // resolution of the digest schedule
    std::string host;                     // server name in the text; default: gethostname()
    std::string smtp_ca_file;             // tests: a private CA for STARTTLS
    long connect_timeout_ms = 5000;
    long timeout_ms = 30000;
};

// A user's cool-down (client empty), or a client machine's (client set: its address;
// uid and user then name who read last, for the record only).
struct Revocation {
    std::string zone;
    std::uint32_t uid = 0;
    std::string user;
    std::int64_t until = 0;  // seconds since the epoch
    std::string client;
};

struct NotifierHost {
    // Records the notifier makes (bulk_read). Called from the intake thread, never from
    // observe().
    std::function<void(events::Record&&)> submit;
    // Notifications that could not be queued (queue full, inbox full).
    std::function<void(std::string_view source, std::uint64_t count, std::string_view reason)> lost;
    // [bulk] action = "revoke": take the user's (or the client machine's) access to the zone
    // away until `until`.
    std::function<void(const Revocation&)> revoke;
    // Whether the enforcer in use can take a client machine's access away; when it cannot
    // (or this is unset) a client's bulk read is recorded with action "alert".
    std::function<bool()> revokes_clients;
    // Size of a zone file for the byte limit (0 when unknown).
    std::function<std::uint64_t(const std::string& path)> file_size;
    // Replaces the network delivery (unit tests).
    std::function<tl::expected<void, std::string>(const Message&)> deliver;
};

struct NotifyCounters {
    std::uint64_t queued = 0;      // messages in the durable queue now
    std::uint64_t enqueued = 0;    // messages queued since start
    std::uint64_t sent = 0;        // delivered
    std::uint64_t failed = 0;      // failed attempts (each is retried)
    std::uint64_t retries = 0;     // attempts after a failure
    std::uint64_t overflow = 0;    // messages refused because the queue was full (reported lost)
    std::uint64_t inbox_dropped = 0;  // records not examined (inbox full; reported lost)
    std::uint64_t ignored = 0;     // records no notification or [bulk] limit concerns: not queued
    std::uint64_t intake_batches = 0;  // times the intake thread took records from its inbox
    std::uint64_t replayed = 0;    // messages found in the queue at start
    std::uint64_t corrupt = 0;     // unreadable queue files removed at start
    std::uint64_t alerts = 0;      // alerts queued
    std::uint64_t alerts_suppressed = 0;  // held back by the per-target rate limit
    std::uint64_t digests = 0;     // digests queued
    std::uint64_t bulk_reads = 0;  // bulk reads detected
    std::string last_error;
};

class Notifier {
public:
    static tl::expected<std::unique_ptr<Notifier>, std::string> create(NotifierOptions options, NotifierHost host);
    ~Notifier();  // stop()
    Notifier(const Notifier&) = delete;
    Notifier& operator=(const Notifier&) = delete;

    // Targets, mail settings, zones and [bulk] of the policy in force. Thread-safe. Errors
    // (an unreadable password file) are returned as warnings; the rest still applies.
    std::vector<std::string> apply(const policy::Policy& policy);

    // Pipeline observer: never blocks (a full inbox drops and counts). A record that no
    // notify target would hear of and no [bulk] limit counts is not queued (counted in
    // `ignored`); one only a digest needs is queued without waking the intake thread, which
    // takes it at its next tick (the digest schedule's resolution) or when the inbox is
    // half full; alerts and [bulk] counts wake it at once.
    void observe(const events::Record& record);

    NotifyCounters counters() const;

    // Queue every non-empty digest now instead of at its schedule.
    void send_digests_now();

    // A report made outside the daemon (`custguardctl discover --notify`: the weekly
    // survey) for `targets`, or the [print] notify targets when none are named: one mail
    // and/or webhook message per target, through the durable queue like alerts (not
    // rate-limited: the caller is an administrator). Returns the messages queued; errors
    // name unknown targets, or say that no target is configured. Thread-safe.
    tl::expected<std::size_t, std::string> send_report(const std::vector<std::string>& targets,
                                                       const std::string& subject, const std::string& text);
    // Tests and shutdown: wait until the inbox is processed (and, if `delivered`, the
    // queue is empty). false on timeout.
    bool wait_idle(std::chrono::milliseconds timeout, bool delivered = false);
    // Process what the inbox holds, queue the digests collected so far (early, rather than
    // lose them), stop the threads (messages stay queued on disk).
    void stop();

private:
    struct Impl;
    explicit Notifier(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace custguard::notify
