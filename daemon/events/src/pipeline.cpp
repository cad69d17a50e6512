#include "custguard/events/pipeline.hpp"

#include <pthread.h>
#include <systemd/sd-id128.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include <fmt/format.h>
#include <spdlog/logger.h>

#include "custguard/events/export.hpp"
#include "custguard/events/journal.hpp"

namespace custguard::events {

namespace {

using Clock = std::chrono::steady_clock;

std::int64_t now_realtime_us() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

std::string random_run_id() {
    sd_id128_t id;
    if (sd_id128_randomize(&id) < 0) return fmt::format("{:016x}{:016x}", now_realtime_us(), ::getpid());
    char text[SD_ID128_STRING_MAX];
    return sd_id128_to_string(id, text);
}

struct Queued {
    Record record;
    bool submitted = true;  // counts towards flush(); internal records do not
};

struct LostNote {
    std::uint64_t count = 0;
    std::string reason;
};

// Unconfirmed direct sends kept while journald may still discard them; the kernel's
// datagram queue limit (net.unix.max_dgram_qlen) keeps this short in practice.
constexpr std::size_t max_inflight = 4096;
// While journald has not read all we sent, the writer looks again after 20 ms, then 40, then
// every 64 ms, to forget what it has read (records sent again if journald dies: the fewer
// the better). A fixed 2 ms woke the writer hundreds of times a second while a slow journald
// caught up: under the VM's TCG that was the writer's main cost, more than its records
// (perf during custguard_bench_samba). A first look after 2 ms still woke it once more per
// record whenever records came 2 ms or more apart (an SMB client reading files: about
// 2.5 ms under TCG), since on one CPU journald reads a record only after the writer sleeps;
// records that come within 20 ms of each other now wake it once each, and the next record's
// send does the look (journald read the older ones by then). A flush() may wait one poll
// longer (64 ms at most).
constexpr std::chrono::milliseconds first_inflight_poll{20};
constexpr std::chrono::milliseconds max_inflight_poll{64};
constexpr std::size_t batch_size = 64;
// A lingering enricher (PipelineConfig::linger) stops gathering at this many events. 64
// (a whole batch) cut the fewest wake-ups, but enriching and writing 64 records at once
// doubled the p99 of the opens sharing the CPU (bench/rescan: 240 against 133 µs at 16,
// for the same p50).
constexpr std::size_t linger_batch = 16;
// Every datagram queued at journald occupies at least its length plus an sk_buff.
constexpr std::uint64_t skb_overhead_min = 256;

}  // namespace

struct Pipeline::Impl {
    // First: members below are made from it (the repeat limiters).
    explicit Impl(PipelineConfig c) : config(std::move(c)) {}
    PipelineConfig config;
    std::string run_id = random_run_id();

    // Input: access events waiting for enrichment.
    std::mutex in_mu;
    std::condition_variable in_not_empty, in_not_full;
    // A ring of preallocated slots: queuing an event allocates nothing (a deque node per
    // event, freed on another thread, cost more than the enrichment itself).
    struct Ring {
        std::vector<daemon::AccessEvent> slots;
        std::size_t head = 0;  // oldest
        std::size_t count = 0;
        std::size_t size() const { return count; }
        bool empty() const { return count == 0; }
        void push(daemon::AccessEvent&& ev) {
            slots[(head + count) % slots.size()] = std::move(ev);
            ++count;
        }
        daemon::AccessEvent pop() {
            daemon::AccessEvent ev = std::move(slots[head]);
            head = (head + 1) % slots.size();
            --count;
            return ev;
        }
    } in_q;

    // Records waiting for the writer.
    std::mutex rec_mu;
    std::condition_variable rec_not_empty, rec_not_full;
    std::deque<Queued> rec_q;
    bool enricher_done = false;

    std::mutex zones_mu;
    std::shared_ptr<const std::vector<std::string>> zones = std::make_shared<std::vector<std::string>>();

    std::mutex lost_mu;
    std::map<std::string, LostNote> lost_notes;  // source -> pending count

    std::mutex observers_mu;
    std::vector<Pipeline::Observer> observers;

    std::atomic<bool> stopping{false};
    std::atomic<std::uint64_t> accepted{0};
    std::atomic<std::uint64_t> completed{0};
    std::atomic<std::uint64_t> dropped{0};
    std::atomic<bool> reopen_requested{false};
    std::atomic<std::uint64_t> requests{0};  // report_lost() calls, so flush() waits for them

    // Writer state (writer thread only, after start).
    std::optional<JournalSocket> socket;
    std::optional<Spool> spool;
    std::optional<JsonlWriter> jsonl;
    bool reachable = false;
    Clock::time_point last_probe{};
    Clock::time_point last_sync{};
    bool spool_dirty = false;
    std::deque<std::string> inflight;
    std::chrono::milliseconds inflight_poll = first_inflight_poll;  // next wait while inflight
    std::uint64_t seq = 0;
    std::uint64_t drops_reported = 0;
    std::uint64_t corrupt_reported = 0;
    std::uint64_t replay_cursor = 0;       // next spool frame to send
    std::deque<std::pair<std::uint64_t, std::size_t>> replay_sent;  // (cursor after, length), not yet known read
    Clock::time_point replay_stalled_since{};  // replay made no progress since
    bool spool_stalled = false;  // spool full and journald not reading: stop waiting for room

    // Published for counters() and flush().
    mutable std::mutex counters_mu;
    std::condition_variable counters_cv;
    PipelineCounters counters;
    bool writer_idle = false;
    std::uint64_t requests_seen = 0;  // `requests` as of the last maintenance
    std::uint64_t enrich_exited = 0;

    // Repeated refusals: access events are limited before enrichment (a flood must not
    // cost /proc reads), records with a repeat_key on the writer thread. Denied accesses
    // are admitted by the sensor that asks (admit(), before it describes the access) or
    // else by the enricher, under access_repeats_mu either way.
    mutable std::mutex access_repeats_mu;
    RepeatLimiter access_repeats{config.repeats};
    RepeatLimiter record_repeats{config.repeats};

    // Gathering (PipelineConfig::linger).
    bool enricher_lingering = false;  // in_mu: gathering a batch
    int flushing = 0;                 // in_mu: flush() calls waiting, which end the gathering
    // Events that end the gathering: at most what the input queue holds.
    std::size_t linger_target() const { return std::min(linger_batch, config.input_capacity); }

    std::thread enricher_thread, writer_thread;
    bool stopped = false;

    void note_lost(const std::string& source, std::uint64_t count, std::string_view reason) {
        if (count == 0) return;
        std::lock_guard lock(lost_mu);
        auto& n = lost_notes[source];
        n.count += count;
        if (!reason.empty()) n.reason = std::string(reason);
    }

    bool push_record(Queued&& q, std::chrono::milliseconds wait) {
        std::unique_lock lock(rec_mu);
        if (rec_q.size() >= config.record_capacity) {
            if (wait.count() < 0)
                rec_not_full.wait(lock, [&] { return rec_q.size() < config.record_capacity; });
            else if (!rec_not_full.wait_for(lock, wait, [&] { return rec_q.size() < config.record_capacity; }))
                return false;
        }
        rec_q.push_back(std::move(q));
        // Woken while we still held rec_mu, the writer would block on it at once: a second
        // switch per record.
        lock.unlock();
        rec_not_empty.notify_one();
        return true;
    }

    // A denied access, limited per uid, zone, rule and operation; nullopt for the access
    // history (allowed, audited), which is always written.
    static std::optional<std::string> repeat_key(const daemon::AccessEvent& ev) {
        if (ev.raw.decision != CG_DECISION_DENY) return std::nullopt;
        return fmt::format("{}:{}:{}:{}", ev.raw.uid, ev.raw.zone_id, ev.raw.rule, ev.raw.kind);
    }

    // The flood bound's answer for a denial's key; access_repeats_mu held.
    daemon::Admission admit_locked(const std::string& key, Clock::time_point now, std::int64_t realtime_us) {
        switch (access_repeats.admit(key, now, realtime_us)) {
        case RepeatLimiter::Admit::first: return daemon::Admission::first;
        case RepeatLimiter::Admit::written: return daemon::Admission::written;
        case RepeatLimiter::Admit::counted: break;
        }
        return daemon::Admission::counted;
    }

    daemon::Admission admit(const daemon::AccessEvent& ev) {
        auto key = repeat_key(ev);
        if (!key) return daemon::Admission::written;
        std::lock_guard lock(access_repeats_mu);
        const auto admission = admit_locked(*key, Clock::now(), ev.realtime_ns / 1000);
        if (admission == daemon::Admission::first) {
            // Described from the event at once: the event may yet be dropped on a full
            // queue, and the `repeated` record must still say whose refusals it counts.
            // The enricher's record of it (or of a later written one) adds the names.
            std::shared_ptr<const std::vector<std::string>> names;
            {
                std::lock_guard zones_lock(zones_mu);  // a leaf: nothing is locked under it
                names = zones;
            }
            access_repeats.describe(*key, describe_key(ev, *names));
        }
        return admission;
    }

    void enricher_loop() {
        Enricher enricher(config.enrich);
        std::vector<daemon::AccessEvent> batch;
        Clock::time_point last_batch{};  // when the last batch was taken
        auto emit_repeats = [&](bool all) {
            std::vector<Record> due;
            {
                std::lock_guard lock(access_repeats_mu);
                due = access_repeats.take_due(Clock::now(), all);
            }
            for (auto& r : due) push_record({std::move(r), false}, std::chrono::milliseconds(-1));
        };
        auto next_due = [&] {
            std::lock_guard lock(access_repeats_mu);
            return access_repeats.next_due();
        };
        for (;;) {
            {
                std::unique_lock lock(in_mu);
                auto ready = [&] { return !in_q.empty() || stopping; };
                if (auto due = next_due())
                    in_not_empty.wait_until(lock, *due, ready);
                else
                    in_not_empty.wait(lock, ready);
                if (in_q.empty() && stopping) break;
                // Gather a batch (PipelineConfig::linger; submit() does not wake us meanwhile)
                // when the last one was taken less than that ago: an event after a pause is
                // taken at once, since gathering costs a wake-up of its own when nothing
                // else comes.
                if (!stopping && flushing == 0 && in_q.size() < linger_target() && config.linger.count() > 0 &&
                    Clock::now() - last_batch < config.linger) {
                    enricher_lingering = true;
                    in_not_empty.wait_for(lock, config.linger,
                                          [&] { return in_q.size() >= linger_target() || stopping || flushing > 0; });
                    enricher_lingering = false;
                }
                while (!in_q.empty() && batch.size() < batch_size) batch.push_back(in_q.pop());
                if (!batch.empty()) last_batch = Clock::now();
                in_not_full.notify_all();
            }
            std::shared_ptr<const std::vector<std::string>> names;
            {
                std::lock_guard lock(zones_mu);
                names = zones;
            }
            const auto now = Clock::now();
            for (auto& ev : batch) {
                auto key = repeat_key(ev);
                auto admission = ev.admission;
                if (admission == daemon::Admission::not_asked) {
                    std::lock_guard lock(access_repeats_mu);
                    admission = key ? admit_locked(*key, now, ev.realtime_ns / 1000) : daemon::Admission::written;
                }
                if (admission == daemon::Admission::counted) {
                    completed.fetch_add(1);  // accounted for in the key's `repeated` record
                    continue;
                }
                Record r = enricher.enrich(ev, *names);
                // The written ones too (at most `burst` a window): a sensor's `first` may have
                // been dropped with the queue full, and admit() described the key without
                // the user's name, which one of them brings.
                if ((admission == daemon::Admission::first || admission == daemon::Admission::written) && key) {
                    std::lock_guard lock(access_repeats_mu);
                    access_repeats.describe(*key, r);
                }
                push_record({std::move(r), true}, std::chrono::milliseconds(-1));
            }
            batch.clear();
            emit_repeats(false);
            std::lock_guard lock(counters_mu);
            enrich_exited = enricher.stats().exited;
        }
        emit_repeats(true);  // stopping: every open window says what it counted
        std::lock_guard lock(rec_mu);
        enricher_done = true;
        rec_not_empty.notify_all();
    }

    // --- writer -------------------------------------------------------------------------

    enum class Output : std::uint8_t { delivered, overflow, too_large };

    void set_error(std::string text) {
        std::lock_guard lock(counters_mu);
        counters.last_error = std::move(text);
    }

    // Journald went away: what it may not have read goes to the spool, in order.
    void lost_journald() {
        set_error(fmt::format("journald unreachable ({}): {}", socket->path(), std::strerror(socket->last_errno())));
        reachable = false;
        last_probe = Clock::now();
        std::uint64_t resent = 0, overflow = 0;
        for (auto& d : inflight) {
            auto r = spool->append(d);
            if (r && *r) ++resent;
            else ++overflow;
        }
        inflight.clear();
        spool_dirty = true;
        note_lost("spool", overflow, "spool full while journald was unreachable");
        std::lock_guard lock(counters_mu);
        counters.resent += resent;
        counters.spooled += resent;
        counters.journal_reachable = false;
    }

    void track_inflight(const std::string& datagram) {
        const std::uint64_t unread = socket->unread_bytes();
        if (unread == 0) {
            inflight.clear();
            return;
        }
        inflight.push_back(datagram);
        inflight_poll = first_inflight_poll;
        // journald reads in order, so the unread records are the newest ones, and each
        // occupies at least its length plus an sk_buff of kernel memory. Once the newest
        // records alone would exceed `unread`, everything older has certainly been read.
        std::uint64_t sum = 0;
        std::size_t keep = 0;
        for (auto it = inflight.rbegin(); it != inflight.rend(); ++it) {
            sum += it->size() + skb_overhead_min;
            if (sum > unread) break;
            ++keep;
        }
        while (inflight.size() > keep) inflight.pop_front();
        if (inflight.size() > max_inflight) inflight.pop_front();
    }

    // Is work piling up behind the writer? Then a slow journald must not hold us up.
    bool backlog_high() {
        {
            std::lock_guard lock(rec_mu);
            if (rec_q.size() >= config.record_capacity / 2) return true;
        }
        std::lock_guard lock(in_mu);
        return in_q.size() >= config.input_capacity / 2;
    }

    // Send, waiting for journald as long as nothing piles up behind us and it reads
    // within send_timeout; otherwise report busy and the caller spills to the spool.
    // (A stopped journald is not a dead one: what it has queued it will still read, so
    // nothing is sent twice; only a refused send means it is gone.)
    SendStatus send_direct(const std::string& datagram) {
        const auto deadline = Clock::now() + std::chrono::milliseconds(config.send_timeout_ms);
        for (;;) {
            SendStatus st = socket->send(datagram, 5);
            if (st != SendStatus::busy) return st;
            if (backlog_high() || Clock::now() >= deadline) return SendStatus::busy;
        }
    }

    Output output(const std::string& datagram) {
        if (!config.journal) return Output::delivered;
        bool spill = false;
        if (reachable && spool->empty()) {
            switch (send_direct(datagram)) {
            case SendStatus::sent: {
                track_inflight(datagram);
                std::lock_guard lock(counters_mu);
                ++counters.journal_written;
                return Output::delivered;
            }
            case SendStatus::too_large: return Output::too_large;
            case SendStatus::busy: spill = true; break;
            case SendStatus::unreachable: lost_journald(); break;
            }
        }
        auto appended = spool->append(datagram);
        // Spool full but journald there (just slower than the events): wait for the
        // replay to make room rather than lose the record; sensors feel the backpressure.
        // Not forever: after send_timeout without progress, journald counts as stalled and
        // records overflow (counted) until the replay moves again.
        auto deadline = Clock::now() + std::chrono::milliseconds(config.send_timeout_ms);
        while (appended && !*appended && reachable && !spool_stalled) {
            const std::uint64_t before = spool->begin();
            replay_spool();
            appended = spool->append(datagram);
            if (!appended || *appended) break;
            if (spool->begin() != before) {
                deadline = Clock::now() + std::chrono::milliseconds(config.send_timeout_ms);
            } else if (Clock::now() >= deadline) {
                spool_stalled = true;
            } else {
                std::this_thread::sleep_for(std::chrono::microseconds(200));
            }
        }
        if (!appended) {
            set_error(appended.error());
            return Output::overflow;
        }
        if (!*appended) return Output::overflow;
        spool_dirty = true;
        std::lock_guard lock(counters_mu);
        ++counters.spooled;
        if (spill || reachable) ++counters.spilled;
        return Output::delivered;
    }

    // How many events a record stands for: a `repeated` record for all it counted.
    static std::uint64_t weight(const Record& r) {
        if (r.kind != Kind::repeated) return 1;
        const std::string* n = r.get(field::suppressed);
        return n ? std::max<std::uint64_t>(1, std::stoull(*n)) : 1;
    }

    // A record with a repeat_key (a refused D-Bus call): false when it is only counted.
    bool admit_record(const Record& r) {
        if (r.repeat_key.empty()) return true;
        const std::string* target = r.get(field::target);
        auto admit = record_repeats.admit(r.repeat_key, Clock::now(), r.realtime_us ? r.realtime_us : now_realtime_us(),
                                          target ? std::string_view(*target) : std::string_view{});
        if (admit == RepeatLimiter::Admit::first) record_repeats.describe(r.repeat_key, r);
        return admit != RepeatLimiter::Admit::counted;
    }

    void commit_repeats(bool all) {
        for (auto& r : record_repeats.take_due(Clock::now(), all)) commit(r, true);
    }

    // Number, send and export one record. false: not committed (counted as lost by the caller).
    bool commit(Record& r, bool count_overflow) {
        if (r.realtime_us == 0) r.realtime_us = now_realtime_us();
        r.set(field::time_usec, static_cast<std::uint64_t>(r.realtime_us));
        r.set(field::run, run_id);
        r.set(field::seq, seq + 1);
        const std::string datagram = encode_native(r, config.identifier);
        switch (output(datagram)) {
        case Output::delivered: break;
        case Output::overflow:
            if (count_overflow) note_lost("spool", weight(r), "spool full while journald was unreachable");
            return false;
        case Output::too_large:
            if (count_overflow) note_lost("journal-too-large", weight(r), "record larger than journald accepts");
            return false;
        }
        ++seq;
        std::uint64_t lost = r.kind == Kind::lost ? std::stoull(*r.get(field::lost_count)) : 0;
        bool jsonl_ok = true, jsonl_used = false;
        if (jsonl) {
            jsonl_used = true;
            auto w = jsonl->write(r);
            if (!w) {
                jsonl_ok = false;
                set_error(w.error());
            }
        }
        if (config.console) log_record(*config.console, r);
        {
            std::lock_guard lock(observers_mu);
            for (const auto& o : observers) o(r);
        }
        std::lock_guard lock(counters_mu);
        counters.seq = seq;
        if (r.kind == Kind::repeated) ++counters.repeat_records;
        if (lost) {
            counters.lost += lost;
            ++counters.lost_records;
        }
        if (jsonl_used) (jsonl_ok ? counters.jsonl_written : counters.jsonl_errors) += 1;
        return true;
    }

    // One step of replaying the spool: up to replay_chunk records or ~10 ms, so that new
    // records keep flowing (into the spool, behind the old ones) while it drains. A record
    // leaves the spool only once journald has read it (commit); if journald goes away
    // first, the next replay starts again at the committed offset.
    void replay_spool() {
        constexpr std::size_t replay_chunk = 1024;
        const auto budget_end = Clock::now() + std::chrono::milliseconds(10);
        if (replay_cursor < spool->begin()) replay_cursor = spool->begin();
        std::size_t sent = 0;
        while (reachable && replay_cursor < spool->end() && sent < replay_chunk && Clock::now() < budget_end) {
            auto frame = spool->read_at(replay_cursor);
            if (!frame) {
                set_error(frame.error());
                return;
            }
            if (!*frame) break;  // corrupt tail cut off
            const SendStatus st = socket->send((*frame)->datagram, 5);
            if (st == SendStatus::busy) break;
            if (st == SendStatus::unreachable) {
                set_error(fmt::format("journald unreachable during replay ({}): {}", socket->path(),
                                      std::strerror(socket->last_errno())));
                replay_failed();
                return;
            }
            if (st == SendStatus::too_large) note_lost("journal-too-large", 1, "record larger than journald accepts");
            else {
                ++sent;
                replay_sent.push_back({(*frame)->next, (*frame)->datagram.size()});
            }
            replay_cursor = (*frame)->next;
            replay_confirm();
        }
        replay_confirm();
        // A journald that reads nothing for send_timeout is reported (status), not
        // abandoned: it is still bound, so what it has queued it will read when it resumes.
        if (sent > 0 || spool->empty()) {
            replay_stalled_since = {};
        } else if (replay_stalled_since == Clock::time_point{}) {
            replay_stalled_since = Clock::now();
        } else if (Clock::now() - replay_stalled_since > std::chrono::milliseconds(config.send_timeout_ms)) {
            set_error(fmt::format("journald ({}) has not read for {} ms", socket->path(), config.send_timeout_ms));
        }
    }

    // Commit the spool up to the last record journald has certainly read (see
    // track_inflight for the reasoning on unread bytes).
    void replay_confirm() {
        if (replay_sent.empty()) {
            if (replay_cursor >= spool->end() && !spool->empty()) replay_commit(replay_cursor, 0);
            return;
        }
        const std::uint64_t unread = socket->unread_bytes();
        std::size_t keep = 0;
        if (unread > 0) {
            std::uint64_t sum = 0;
            for (auto it = replay_sent.rbegin(); it != replay_sent.rend(); ++it) {
                sum += it->second + skb_overhead_min;
                if (sum > unread) break;
                ++keep;
            }
        }
        if (keep == replay_sent.size()) return;
        const std::size_t read = replay_sent.size() - keep;
        // Each commit writes the replay offset: batch them unless the spool is done.
        if (read < 64 && keep > 0) return;
        const std::uint64_t cursor = replay_sent[read - 1].first;
        replay_sent.erase(replay_sent.begin(), replay_sent.begin() + static_cast<std::ptrdiff_t>(read));
        replay_commit(cursor, read);
    }

    void replay_commit(std::uint64_t cursor, std::uint64_t records) {
        (void)spool->commit(cursor, records);
        spool_stalled = false;
        add_replayed(records);
        if (spool->empty()) {
            replay_cursor = spool->begin();
            replay_sent.clear();
        }
    }

    void replay_failed() {
        // Direct sends from before the spill that journald never read: keep them too
        // (behind the spool; their CUSTGUARD_SEQ tells the order).
        std::uint64_t requeued = 0;
        for (auto& d : inflight) {
            auto r = spool->append(d);
            if (r && *r) ++requeued;
            else note_lost("spool", 1, "spool full while journald was unreachable");
        }
        inflight.clear();
        {
            std::lock_guard lock(counters_mu);
            counters.resent += replay_sent.size() + requeued;  // will be sent again
            counters.spooled += requeued;
            counters.journal_reachable = false;
        }
        replay_sent.clear();
        replay_cursor = spool->begin();
        replay_stalled_since = {};
        reachable = false;
        last_probe = Clock::now();
    }

    void add_replayed(std::uint64_t n) {
        std::lock_guard lock(counters_mu);
        counters.replayed += n;
    }

    void maintenance() {
        const auto now = Clock::now();
        const std::uint64_t requests_now = requests.load();
        if (reopen_requested.exchange(false) && jsonl) {
            auto r = jsonl->reopen();
            if (!r) set_error(r.error());
        }
        if (config.journal) {
            if (!reachable && now - last_probe >= config.retry_interval) {
                last_probe = now;
                reachable = socket->reachable() && socket->reconnect();
            }
            if (reachable && !spool->empty()) replay_spool();
            if (!inflight.empty() && socket->drained()) inflight.clear();
            if (spool->corrupt_bytes() > corrupt_reported) {
                // We cannot tell how many records the damaged bytes held; at least one.
                note_lost("spool", 1,
                          fmt::format("{} damaged spool bytes discarded", spool->corrupt_bytes() - corrupt_reported));
                corrupt_reported = spool->corrupt_bytes();
            }
            if (spool_dirty && now - last_sync >= config.spool_sync_interval) {
                (void)spool->sync();
                spool_dirty = false;
                last_sync = now;
            }
        }
        // Losses become records of their own, each with its own sequence number.
        if (auto d = dropped.load(); d > drops_reported) {
            note_lost("pipeline-queue", d - drops_reported, "input queue full");
            drops_reported = d;
        }
        std::map<std::string, LostNote> notes;
        {
            std::lock_guard lock(lost_mu);
            notes.swap(lost_notes);
        }
        for (auto& [source, note] : notes) {
            Record r = make_lost_record(source, note.count, note.reason);
            if (!commit(r, false)) note_lost(source, note.count, note.reason);  // try again later
        }
        commit_repeats(false);
        {
            std::lock_guard lock(counters_mu);
            requests_seen = requests_now;
        }
        publish();
    }

    void publish() {
        std::uint64_t pending_lost = 0;
        {
            std::lock_guard lock(lost_mu);
            for (const auto& [s, n] : lost_notes) pending_lost += n.count;
        }
        std::lock_guard lock(counters_mu);
        counters.journal_reachable = config.journal && reachable;
        if (spool) {
            counters.spool_pending = spool->pending_records();
            counters.spool_bytes = spool->size_bytes();
        }
        counters.lost_pending = pending_lost + (dropped.load() - drops_reported);
        // The writer's share; counters() adds the enricher's.
        counters.repeats_counted = record_repeats.counted_total();
        counters.repeats_pending = record_repeats.pending();
        inflight_empty_hint = inflight.empty();
        counters_cv.notify_all();
    }

    void writer_loop() {
        std::vector<Queued> batch;
        for (;;) {
            maintenance();
            {
                std::unique_lock lock(rec_mu);
                const bool replaying = config.journal && reachable && !spool->empty();
                auto wait = replaying ? std::chrono::milliseconds(replay_cursor >= spool->end() ? 1 : 0)
                            : !inflight.empty()            ? inflight_poll
                            : config.journal && !reachable ? config.retry_interval
                                                           : std::chrono::milliseconds(200);
                if (!replaying && !inflight.empty()) inflight_poll = std::min(inflight_poll * 2, max_inflight_poll);
                if (auto due = record_repeats.next_due())
                    wait = std::min(wait, std::max(std::chrono::milliseconds(1),
                                                   std::chrono::duration_cast<std::chrono::milliseconds>(
                                                       *due - Clock::now() + std::chrono::milliseconds(1))));
                if (rec_q.empty() && !(enricher_done && stopping)) {
                    {
                        std::lock_guard c(counters_mu);
                        writer_idle = true;
                        counters_cv.notify_all();
                    }
                    rec_not_empty.wait_for(lock, wait, [&] { return !rec_q.empty() || (enricher_done && stopping); });
                    std::lock_guard c(counters_mu);
                    writer_idle = false;
                }
                if (rec_q.empty() && enricher_done && stopping) break;
                // While the spool is in use, records only get appended to it: cheap, so
                // take more at once.
                const std::size_t limit = config.journal && !spool->empty() ? 1024 : batch_size;
                while (!rec_q.empty() && batch.size() < limit) {
                    batch.push_back(std::move(rec_q.front()));
                    rec_q.pop_front();
                }
                rec_not_full.notify_all();
            }
            for (auto& q : batch) {
                if (admit_record(q.record)) commit(q.record, true);
                if (q.submitted) completed.fetch_add(1);
            }
            batch.clear();
        }
        commit_repeats(true);  // stopping: every open window says what it counted
        maintenance();
        if (config.journal) {
            // Whatever journald has not read by now goes to the spool for the next start.
            const auto deadline = Clock::now() + std::chrono::seconds(1);
            while (!inflight.empty() && !socket->drained() && Clock::now() < deadline)
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            if (!inflight.empty() && !socket->drained()) lost_journald();
            (void)spool->sync();
        }
        publish();
    }

    bool inflight_empty_hint = true;
};

Pipeline::Pipeline(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

tl::expected<std::unique_ptr<Pipeline>, std::string> Pipeline::create(PipelineConfig config) {
    auto impl = std::make_unique<Impl>(std::move(config));
    Impl& i = *impl;
    if (i.config.journal) {
        auto sock = JournalSocket::open(i.config.journal_socket);
        if (!sock) return tl::make_unexpected(sock.error());
        i.socket.emplace(std::move(*sock));
        auto spool = Spool::open(i.config.state_dir / "journal.spool", i.config.spool_max_bytes);
        if (!spool) return tl::make_unexpected(spool.error());
        i.spool.emplace(std::move(*spool));
        i.reachable = i.socket->reachable();
        i.last_probe = Clock::now();
    }
    if (i.config.jsonl_path) {
        auto w = JsonlWriter::open(*i.config.jsonl_path);
        if (!w) return tl::make_unexpected(w.error());
        i.jsonl.emplace(std::move(*w));
    }
    i.in_q.slots.resize(std::max<std::size_t>(i.config.input_capacity, 1));
    i.counters.run_id = i.run_id;
    i.publish();
    // Named so that top -H, ps -L and perf tell them apart.
    i.enricher_thread = std::thread([&i] {
        ::pthread_setname_np(::pthread_self(), "cg-enrich");
        i.enricher_loop();
    });
    i.writer_thread = std::thread([&i] {
        ::pthread_setname_np(::pthread_self(), "cg-writer");
        i.writer_loop();
    });
    return std::unique_ptr<Pipeline>(new Pipeline(std::move(impl)));
}

Pipeline::~Pipeline() { stop(); }

void Pipeline::set_zone_names(std::vector<std::string> names) {
    auto fresh = std::make_shared<const std::vector<std::string>>(std::move(names));
    std::lock_guard lock(impl_->zones_mu);
    impl_->zones = std::move(fresh);
}

bool Pipeline::submit(daemon::AccessEvent&& event) {
    Impl& i = *impl_;
    // Only a denial can be counted away: the access history never is.
    if (event.admission == daemon::Admission::counted && event.raw.decision != CG_DECISION_DENY)
        event.admission = daemon::Admission::not_asked;
    if (event.admission == daemon::Admission::counted) {
        // Already counted into its key's `repeated` record (admit()): nothing to enrich or
        // write, and a flood does not fill the queue (nor is it lost as well when full).
        if (i.stopping) return false;
        i.accepted.fetch_add(1);
        i.completed.fetch_add(1);
        return true;
    }
    std::unique_lock lock(i.in_mu);
    if (i.stopping) return false;
    if (i.in_q.size() >= i.config.input_capacity &&
        !i.in_not_full.wait_for(lock, i.config.submit_wait, [&] { return i.in_q.size() < i.config.input_capacity; })) {
        i.dropped.fetch_add(1);
        return false;
    }
    i.in_q.push(std::move(event));
    i.accepted.fetch_add(1);
    // A lingering enricher is woken only by a full batch (or its timeout, or stop()).
    const bool wake = !i.enricher_lingering || i.in_q.size() >= i.linger_target();
    lock.unlock();  // as in push_record: the enricher need not wait for in_mu once woken
    if (wake) i.in_not_empty.notify_one();
    return true;
}

bool Pipeline::submit(Record&& record) {
    Impl& i = *impl_;
    if (i.stopping) return false;
    if (!i.push_record({std::move(record), true}, i.config.submit_wait)) {
        i.dropped.fetch_add(1);
        return false;
    }
    i.accepted.fetch_add(1);
    return true;
}

daemon::EventHandler Pipeline::handler() {
    return [this](daemon::AccessEvent&& ev) { submit(std::move(ev)); };
}

daemon::Admission Pipeline::admit(const daemon::AccessEvent& event) { return impl_->admit(event); }

daemon::DenialAdmitter Pipeline::admitter() {
    return [this](const daemon::AccessEvent& ev) { return admit(ev); };
}

void Pipeline::report_lost(std::string_view source, std::uint64_t count, std::string_view reason) {
    impl_->note_lost(std::string(source), count, reason);
    impl_->requests.fetch_add(1);
    std::lock_guard lock(impl_->rec_mu);
    impl_->rec_not_empty.notify_all();
}

PipelineCounters Pipeline::counters() const {
    std::lock_guard lock(impl_->counters_mu);
    PipelineCounters c = impl_->counters;
    c.submitted = impl_->accepted.load();
    c.dropped_queue_full = impl_->dropped.load();
    c.processes_exited = impl_->enrich_exited;
    std::lock_guard repeats_lock(impl_->access_repeats_mu);
    c.repeats_counted += impl_->access_repeats.counted_total();
    c.repeats_pending += impl_->access_repeats.pending();
    return c;
}

tl::expected<void, std::string> Pipeline::flush(std::chrono::milliseconds timeout) {
    Impl& i = *impl_;
    // What is waiting is written now, not after the enricher's linger.
    {
        std::lock_guard lock(i.in_mu);
        ++i.flushing;
    }
    i.in_not_empty.notify_all();
    struct Done {
        Impl& i;
        ~Done() {
            std::lock_guard lock(i.in_mu);
            --i.flushing;
        }
    } done{i};
    const auto deadline = Clock::now() + timeout;
    const std::uint64_t target = i.accepted.load();
    const std::uint64_t requests = i.requests.load();
    for (;;) {
        {
            std::lock_guard lock(i.rec_mu);
            i.rec_not_empty.notify_all();
        }
        // If journald is there (even if the writer has not noticed yet), wait for the
        // spool to be replayed into it; if it is not, committed to the spool is enough.
        const bool journald_up = i.config.journal && JournalSocket::probe(i.config.journal_socket);
        std::unique_lock lock(i.counters_mu);
        const auto& c = i.counters;
        bool done = i.writer_idle && i.completed.load() >= target && i.requests_seen >= requests;
        if (done && (!i.config.journal || c.journal_reachable))
            done = c.lost_pending == 0 && c.spool_pending == 0 && i.inflight_empty_hint;
        else if (done)
            done = !journald_up;
        if (done) return {};
        if (Clock::now() >= deadline)
            return tl::make_unexpected(fmt::format("flush timed out: {} of {} records committed, {} spooled",
                                                   i.completed.load(), target, i.counters.spool_pending));
        i.counters_cv.wait_for(lock, std::chrono::milliseconds(5));
    }
}

void Pipeline::add_observer(Observer observer) {
    std::lock_guard lock(impl_->observers_mu);
    impl_->observers.push_back(std::move(observer));
}

tl::expected<void, std::string> Pipeline::reopen_export() {
    if (!impl_->config.jsonl_path) return tl::make_unexpected(std::string("no export configured"));
    impl_->reopen_requested = true;
    std::lock_guard lock(impl_->rec_mu);
    impl_->rec_not_empty.notify_all();
    return {};
}

void Pipeline::stop(std::chrono::milliseconds timeout) {
    Impl& i = *impl_;
    if (i.stopped) return;
    (void)flush(timeout);
    i.stopping = true;
    {
        std::lock_guard lock(i.in_mu);
        i.in_not_empty.notify_all();
    }
    if (i.enricher_thread.joinable()) i.enricher_thread.join();
    {
        std::lock_guard lock(i.rec_mu);
        i.rec_not_empty.notify_all();
    }
    if (i.writer_thread.joinable()) i.writer_thread.join();
    i.stopped = true;
}

}  // namespace custguard::events
