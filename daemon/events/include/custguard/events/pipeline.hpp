// The event pipeline: sensors and components submit; a worker enriches, numbers and writes.
//
//   submit(AccessEvent) ──▶ [input queue] ──▶ enrich thread ──▶ [record queue] ──▶ writer thread
//   submit(Record) ────────────────────────────────────────────▶       │
//                                                   CUSTGUARD_SEQ, then journald or spool,
//                                                   JSONL export, foreground console
//
// Guarantees: CUSTGUARD_SEQ is gap-free within one CUSTGUARD_RUN (a random id per pipeline
// start); whatever cannot be recorded is counted and reported in a `lost` record, never
// silently dropped; while journald is unreachable records go to a bounded spool and are
// replayed in order before anything newer. Delivery is at least once: a record journald
// had queued but not read when it died is sent again (same RUN and SEQ). Refusals a user
// can repeat at will (denied accesses; refused D-Bus calls, Record::repeat_key) are
// written one by one only up to RepeatLimits::burst per key and window; the rest are
// counted into one `repeated` record per key and window (repeat.hpp), written when the
// window ends or the pipeline stops. Allowed and audited accesses are never counted away.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <tl/expected.hpp>

#include "custguard/events/enrich.hpp"
#include "custguard/events/journal.hpp"
#include "custguard/events/record.hpp"
#include "custguard/events/repeat.hpp"
#include "daemon/event.hpp"

namespace spdlog {
class logger;
}

namespace custguard::events {

struct PipelineConfig {
    std::filesystem::path state_dir = "/var/lib/custguard";  // spool: <state_dir>/journal.spool
    std::string journal_socket{default_journal_socket};  // or journal_socket_for_namespace()
    std::string identifier = "custguardd";  // SYSLOG_IDENTIFIER
    std::size_t input_capacity = 16384;     // AccessEvents waiting for enrichment
    std::size_t record_capacity = 2048;     // records waiting for the writer
    // How long submit() may wait for room before it drops (and counts) an event. Sensors
    // must not block for long; a few ms of backpressure under a burst beats a loss.
    std::chrono::milliseconds submit_wait{50};
    // When an event comes less than this after the enricher took its last batch, the
    // enricher gathers for up to this long (unless 16 events, or the whole input queue,
    // arrive sooner) before it enriches them and hands them to the writer. Opens decided one at a time would otherwise wake
    // it, and the writer behind it, once per open: two switches per open on CPUs the
    // openers share. Records reach journald up to this much later; flush() and stop() end
    // the gathering at once. 0: no gathering.
    std::chrono::milliseconds linger{2};
    std::uint64_t spool_max_bytes = 64ull << 20;
    std::chrono::milliseconds retry_interval{500};  // probe for journald while spooling
    // How long the writer waits for a journald that reads nothing before it spills records
    // to the spool (it also spills earlier when work piles up behind a slow journald).
    // Spilled records are replayed in order; sensors are not held up.
    int send_timeout_ms = 2000;
    std::chrono::milliseconds spool_sync_interval{1000};
    bool journal = true;                            // false: no journald at all (tests, export only)
    std::optional<std::filesystem::path> jsonl_path;  // --export jsonl:PATH
    std::shared_ptr<spdlog::logger> console;          // --foreground: readable lines
    EnrichConfig enrich;
    RepeatLimits repeats;  // flood bound for repeated refusals (custguardd(8))
};

// Snapshot for `custguardctl status`.
struct PipelineCounters {
    std::uint64_t submitted = 0;        // access events + records accepted by submit()
    std::uint64_t dropped_queue_full = 0;  // refused by submit() (reported as lost)
    std::uint64_t seq = 0;              // last CUSTGUARD_SEQ assigned (= records committed)
    std::uint64_t journal_written = 0;  // sent to journald directly
    std::uint64_t spooled = 0;          // written to the spool (journald unreachable, or spilled)
    std::uint64_t spilled = 0;          // of those: journald there, but slow or stopped
    std::uint64_t replayed = 0;         // sent to journald from the spool
    std::uint64_t resent = 0;           // unconfirmed records re-spooled after journald died
    std::uint64_t spool_pending = 0;    // records in the spool now
    std::uint64_t spool_bytes = 0;
    std::uint64_t lost = 0;             // events reported lost (sum of CUSTGUARD_LOST)
    std::uint64_t lost_records = 0;     // `lost` records committed
    std::uint64_t lost_pending = 0;     // counted but not yet in a committed `lost` record
    std::uint64_t too_large = 0;        // records journald refused as too large (lost)
    std::uint64_t jsonl_written = 0;
    std::uint64_t jsonl_errors = 0;
    std::uint64_t processes_exited = 0;  // enrichment found the process gone
    std::uint64_t repeats_counted = 0;   // refusals counted into `repeated` records instead of written
    std::uint64_t repeats_pending = 0;   // of those: window still open, its record not written yet
    std::uint64_t repeat_records = 0;    // `repeated` records committed
    bool journal_reachable = false;
    std::string run_id;  // CUSTGUARD_RUN of this pipeline
    std::string last_error;
};

class Pipeline {
public:
    static tl::expected<std::unique_ptr<Pipeline>, std::string> create(PipelineConfig config);
    ~Pipeline();  // stop(): flushes what it can, spools the rest
    Pipeline(const Pipeline&) = delete;
    Pipeline& operator=(const Pipeline&) = delete;

    // Zone names for CUSTGUARD_ZONE; names[i] is zone id i+1 (policy order). Call on every
    // policy (re)load. Thread-safe.
    void set_zone_names(std::vector<std::string> names);

    // From sensor threads; thread-safe. Waits at most submit_wait for room; false when the
    // event was dropped (then counted and reported in a `lost` record).
    bool submit(daemon::AccessEvent&& event);
    bool submit(Record&& record);
    // Adapter for Enforcer/sensor APIs.
    daemon::EventHandler handler();
    // A denied access, before its sensor describes it: whether its record will be written
    // (first/written) or only counted into its key's `repeated` record (counted). The
    // sensor then submits the event with AccessEvent::admission set; a counted one needs
    // no path, flags or client. Anything but a denial: written. Thread-safe.
    daemon::Admission admit(const daemon::AccessEvent& event);
    daemon::DenialAdmitter admitter();

    // Events lost before they reached us (kernel ring buffer drops, ...): written as a
    // `lost` record. Pass the increase since the last call, not the running total.
    void report_lost(std::string_view source, std::uint64_t count, std::string_view reason = {});

    PipelineCounters counters() const;

    // Wait until everything submitted so far is committed (journald or spool) and, when
    // journald is reachable, the spool is replayed and journald has read it all.
    tl::expected<void, std::string> flush(std::chrono::milliseconds timeout);
    // Reopen the JSONL export (log rotation).
    tl::expected<void, std::string> reopen_export();
    // Called on the writer thread with every record once it is committed (journald or
    // spool; CUSTGUARD_SEQ set), in CUSTGUARD_SEQ order. Must be quick and must not call
    // submit() with a wait (hand the record to another thread). Thread-safe to add.
    using Observer = std::function<void(const Record&)>;
    void add_observer(Observer observer);
    // Flush (up to `timeout`), spool whatever journald did not take, stop the threads.
    void stop(std::chrono::milliseconds timeout = std::chrono::seconds(5));

private:
    struct Impl;
    explicit Pipeline(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace custguard::events
