#include "daemon/audit/cross_check.hpp"

#include <cstdlib>

namespace custguard::audit {
namespace {

bool same_access(const AuditSighting& a, const EnforcerSighting& e, std::int64_t window_ns) {
    // Same process and inode. The device is not compared: btrfs and overlayfs report a
    // different st_dev (what fanotify sees) than the superblock's (what audit writes).
    return a.tgid == e.tgid && a.ino == e.ino && std::llabs(a.realtime_ns - e.realtime_ns) <= window_ns;
}

}  // namespace

void CrossCheck::prune(std::int64_t now_ns) {
    while (!seen_.empty() && (seen_.front().used || now_ns - seen_.front().at_ns > 2 * options_.window_ns))
        seen_.pop_front();
    while (seen_.size() > options_.max_sightings) seen_.pop_front();
}

void CrossCheck::enforcer_seen(const EnforcerSighting& s, std::int64_t now_ns) {
    ++counters_.enforcer_seen;
    for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
        if (!same_access(it->a, s, options_.window_ns)) continue;
        ++counters_.matched;
        if (s.loginuid != it->a.auid) {
            ++counters_.auid_mismatches;
            due_.push_back({Finding::Kind::auid_mismatch, std::move(it->a), s.loginuid});
        }
        waiting_.erase(it);
        return;
    }
    seen_.push_back({s, now_ns});
    prune(now_ns);
}

bool CrossCheck::match(const AuditSighting& a) {
    // Prefer an exact device match when several events of one process hit the same inode
    // number (possible across filesystems).
    Seen* best = nullptr;
    for (auto& s : seen_) {
        if (s.used || !same_access(a, s.s, options_.window_ns)) continue;
        if (!best || (s.s.dev == a.dev && best->s.dev != a.dev)) best = &s;
        if (best->s.dev == a.dev) break;
    }
    if (!best) return false;
    best->used = true;
    ++counters_.matched;
    if (best->s.loginuid != a.auid) {
        ++counters_.auid_mismatches;
        due_.push_back({Finding::Kind::auid_mismatch, a, best->s.loginuid});
    }
    return true;
}

void CrossCheck::audit_seen(AuditSighting a, std::int64_t now_ns) {
    ++counters_.audit_checked;
    prune(now_ns);
    if (match(a)) return;
    if (waiting_.size() >= options_.max_waiting) {
        ++counters_.overflow;
        return;
    }
    waiting_.push_back({std::move(a), now_ns + options_.window_ns});
}

std::vector<Finding> CrossCheck::poll(std::int64_t now_ns) {
    std::vector<Finding> out = std::move(due_);
    due_.clear();
    while (!waiting_.empty() && waiting_.front().deadline_ns <= now_ns) {
        ++counters_.unmatched;
        out.push_back({Finding::Kind::unmatched, std::move(waiting_.front().a)});
        waiting_.pop_front();
    }
    prune(now_ns);
    return out;
}

}  // namespace custguard::audit
