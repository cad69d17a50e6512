#include "custguard/events/repeat.hpp"

#include <fmt/format.h>

namespace custguard::events {

namespace {

constexpr std::size_t max_details = 16;

// The fields of a key's first record that its `repeated` record repeats.
constexpr std::string_view identifying[] = {field::uid,  field::user,      field::zone,
                                            field::zone_id, field::rule,   field::operation,
                                            field::decision, field::admin_action};

std::string join(const std::set<std::string>& items) {
    std::string out;
    for (const auto& s : items) out += (out.empty() ? "" : ",") + s;
    return out;
}

}  // namespace

RepeatLimiter::Admit RepeatLimiter::admit(const std::string& key, Clock::time_point now, std::int64_t realtime_us,
                                          std::string_view detail) {
    if (limits_.burst == 0) return Admit::written;
    auto it = windows_.find(key);
    if (it != windows_.end() && now >= it->second.end) {
        close(it);
        it = windows_.end();
    }
    if (it == windows_.end()) {
        if (windows_.size() >= limits_.max_keys) {
            // Make room from windows that are over; if every one is still open, this key
            // is not limited (memory stays bounded, nothing is lost).
            for (auto w = windows_.begin(); w != windows_.end();) {
                auto next = std::next(w);
                if (now >= w->second.end) close(w);
                w = next;
            }
            if (windows_.size() >= limits_.max_keys) return Admit::written;
        }
        Window w;
        w.end = now + limits_.window;
        w.count = 1;
        windows_.emplace(key, std::move(w));
        return Admit::first;
    }
    Window& w = it->second;
    ++w.count;
    if (w.count <= limits_.burst) return Admit::written;
    if (w.counted == 0) w.first_us = realtime_us;
    w.last_us = std::max(w.last_us, realtime_us);
    w.first_us = std::min(w.first_us, realtime_us);
    ++w.counted;
    ++counted_total_;
    ++pending_;
    if (!detail.empty() && w.details.size() < max_details) w.details.emplace(detail);
    return Admit::counted;
}

void RepeatLimiter::describe(const std::string& key, const Record& first) {
    auto it = windows_.find(key);
    if (it == windows_.end()) return;
    Record& base = it->second.base;
    base.kind = first.kind;
    for (auto name : identifying)
        if (const std::string* v = first.get(name)) base.set(name, *v);
}

Record RepeatLimiter::summary(const Window& w) const {
    Record r;
    r.kind = Kind::repeated;
    r.set(field::event, info(Kind::repeated).name);
    r.set(field::repeated, to_string(w.base.kind));
    for (const auto& f : w.base.fields) r.set(f.name, f.value);
    if (!w.details.empty()) r.set(field::target, join(w.details));
    r.set(field::count, w.count);
    r.set(field::suppressed, w.counted);
    r.set(field::first_usec, static_cast<std::uint64_t>(w.first_us));
    r.set(field::last_usec, static_cast<std::uint64_t>(w.last_us));
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(limits_.window).count();
    r.set(field::window, static_cast<std::uint64_t>(seconds));
    const std::string* user = r.get(field::user);
    const std::string* uid = r.get(field::uid);
    const std::string* zone = r.get(field::zone);
    const std::string* rule = r.get(field::rule);
    const std::string* op = r.get(field::operation);
    std::string what = w.base.kind == Kind::admin_change
                           ? fmt::format("D-Bus calls {}", w.details.empty() ? "?" : join(w.details))
                           : fmt::format("{}{}{}", op ? *op : "access", zone ? fmt::format(" in zone {}", *zone) : "",
                                         rule ? fmt::format(", rule {}", *rule) : "");
    r.message = fmt::format("{} (uid {}) was refused {} times within {} s ({}); {} written one by one, {} counted here",
                            user ? *user : "?", uid ? *uid : "?", w.count, seconds, what, w.count - w.counted,
                            w.counted);
    return r;
}

void RepeatLimiter::close(std::map<std::string, Window>::iterator it) {
    if (it->second.counted > 0) ready_.emplace_back(summary(it->second), it->second.counted);
    windows_.erase(it);
}

std::vector<Record> RepeatLimiter::take_due(Clock::time_point now, bool all) {
    for (auto it = windows_.begin(); it != windows_.end();) {
        auto next = std::next(it);
        if (all || now >= it->second.end) close(it);
        it = next;
    }
    std::vector<Record> out;
    out.reserve(ready_.size());
    for (auto& [record, counted] : ready_) {
        out.push_back(std::move(record));
        pending_ -= counted;
    }
    ready_.clear();
    return out;
}

std::optional<RepeatLimiter::Clock::time_point> RepeatLimiter::next_due() const {
    std::optional<Clock::time_point> due;
    for (const auto& [key, w] : windows_)
        if (!due || w.end < *due) due = w.end;
    return due;
}

}  // namespace custguard::events
