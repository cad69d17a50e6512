#include "daemon/audit/assembler.hpp"

#include <algorithm>
#include <limits>

namespace custguard::audit {

namespace {
constexpr std::size_t done_ring = 1024;
}

const Record* Event::find(std::uint16_t t) const {
    for (const auto& r : records)
        if (r.type == t) return &r;
    return nullptr;
}

bool is_single_record_type(std::uint16_t t) {
    // 1100-1299: user-space messages and auditd's DAEMON_*; 2100-2999: more user-space.
    return (t >= 1100 && t <= 1299) || (t >= 2100 && t <= 2999);
}

Assembler::Assembler(Sink sink, AssemblerOptions options) : sink_(std::move(sink)), options_(options) {
    done_.reserve(done_ring);
}

void Assembler::emit(Event&& e) {
    ++counters_.events;
    if (!e.complete) ++counters_.incomplete;
    sink_(std::move(e));
}

void Assembler::remember_done(const Key& k) {
    if (!done_set_.insert(k).second) return;
    if (done_.size() < done_ring) {
        done_.push_back(k);
    } else {
        done_set_.erase(done_[done_next_]);
        done_[done_next_] = k;
        done_next_ = (done_next_ + 1) % done_ring;
    }
}

bool Assembler::recently_done(const Key& k) const {
    return done_set_.contains(k);
}

void Assembler::push(Record&& record, std::int64_t now_ms) {
    ++counters_.records;
    const Key key{record.stamp.serial, record.stamp.sec};
    auto it = pending_.find(key);
    if (it == pending_.end()) {
        if (record.type == type::eoe) {
            // EOE alone: its records were already flushed (or lost). Nothing to emit.
            ++counters_.late;
            return;
        }
        if (recently_done(key)) ++counters_.late;  // still emitted below, as its own event
        if (is_single_record_type(record.type)) {
            Event e;
            e.stamp = record.stamp;
            e.complete = true;
            e.records.push_back(std::move(record));
            emit(std::move(e));
            return;
        }
        if (pending_.size() >= options_.max_pending) {
            auto oldest = std::min_element(pending_.begin(), pending_.end(), [](const auto& a, const auto& b) {
                return a.second.first_ms < b.second.first_ms;
            });
            Event old = std::move(oldest->second.event);
            remember_done(oldest->first);
            pending_.erase(oldest);
            emit(std::move(old));
        }
        Pending p;
        p.first_ms = now_ms;
        p.event.stamp = record.stamp;
        it = pending_.emplace(key, std::move(p)).first;
    }
    if (record.type == type::eoe) {
        Event e = std::move(it->second.event);
        e.complete = true;
        pending_.erase(it);
        remember_done(key);
        emit(std::move(e));
        return;
    }
    auto& recs = it->second.event.records;
    if (recs.size() >= options_.max_records) {
        ++counters_.dropped_records;
        return;
    }
    recs.push_back(std::move(record));
}

void Assembler::expire(std::int64_t now_ms) {
    for (auto it = pending_.begin(); it != pending_.end();) {
        if (now_ms - it->second.first_ms >= options_.timeout_ms) {
            Event e = std::move(it->second.event);
            remember_done(it->first);
            it = pending_.erase(it);
            emit(std::move(e));
        } else {
            ++it;
        }
    }
}

void Assembler::flush() {
    std::vector<Event> all;
    for (auto& [k, p] : pending_) all.push_back(std::move(p.event));
    pending_.clear();
    std::sort(all.begin(), all.end(), [](const Event& a, const Event& b) { return a.stamp.serial < b.stamp.serial; });
    for (auto& e : all) emit(std::move(e));
}

std::int64_t Assembler::next_deadline() const {
    std::int64_t d = std::numeric_limits<std::int64_t>::max();
    for (const auto& [k, p] : pending_) d = std::min(d, p.first_ms + options_.timeout_ms);
    return d;
}

}  // namespace custguard::audit
