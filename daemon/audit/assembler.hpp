// Assemble records into events. The kernel writes all records of one syscall event at
// its exit, with one stamp, ending with EOE; but records of events on other CPUs can
// interleave, user-space messages and some kernel records are single records without
// EOE, and records can be lost (socket buffer overrun). So: one pending event per stamp,
// complete on EOE, single-record types complete at once, everything else is flushed after
// a timeout (or when too many are pending) and marked incomplete.
#pragma once

#include <cstdint>
#include <functional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "daemon/audit/record.hpp"

namespace custguard::audit {

struct Event {
    Stamp stamp;
    std::vector<Record> records;  // in arrival order; EOE is not kept
    bool complete = false;        // EOE seen, or a single-record type

    const Record* find(std::uint16_t type) const;
};

struct AssemblerOptions {
    std::int64_t timeout_ms = 1000;   // flush an event without EOE this long after its first record
    std::size_t max_pending = 4096;   // more pending events than this: flush the oldest
    std::size_t max_records = 256;    // records per event kept (PATH items of a huge rename...)
};

struct AssemblerCounters {
    std::uint64_t records = 0;
    std::uint64_t events = 0;        // events emitted
    std::uint64_t incomplete = 0;    // emitted without EOE (timeout, overflow, flush)
    std::uint64_t late = 0;          // records of an event already emitted
    std::uint64_t dropped_records = 0;  // beyond max_records
};

class Assembler {
public:
    using Sink = std::function<void(Event&&)>;
    Assembler(Sink sink, AssemblerOptions options = {});

    // `now_ms`: any monotonic millisecond clock, for the timeout.
    void push(Record&& record, std::int64_t now_ms);
    // Emit events pending longer than the timeout.
    void expire(std::int64_t now_ms);
    // Emit everything pending (shutdown).
    void flush();

    std::size_t pending() const { return pending_.size(); }
    const AssemblerCounters& counters() const { return counters_; }
    // When the next pending event times out (INT64_MAX when none).
    std::int64_t next_deadline() const;

private:
    struct Pending {
        Event event;
        std::int64_t first_ms = 0;
    };
    struct Key {
        std::uint64_t serial;
        std::uint64_t sec;
        bool operator==(const Key&) const = default;
    };
    struct KeyHash {
        std::size_t operator()(const Key& k) const { return k.serial * 0x9e3779b97f4a7c15ull ^ k.sec; }
    };
    void emit(Event&& e);
    void remember_done(const Key& k);
    bool recently_done(const Key& k) const;

    Sink sink_;
    AssemblerOptions options_;
    AssemblerCounters counters_;
    std::unordered_map<Key, Pending, KeyHash> pending_;
    std::vector<Key> done_;  // ring of recently completed stamps, to recognise late records
    std::unordered_set<Key, KeyHash> done_set_;
    std::size_t done_next_ = 0;
};

// Types written as single records (user-space messages, auditd's own): complete at once.
bool is_single_record_type(std::uint16_t type);

}  // namespace custguard::audit
