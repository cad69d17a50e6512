#include "daemon/core/held_jobs.hpp"

#include <algorithm>

namespace custguard::daemon {

void HeldJobs::set_decision_handler(DecisionHandler handler) {
    std::lock_guard lock(mutex_);
    handler_ = std::move(handler);
}

bool HeldJobs::hold(HeldJob job) {
    std::lock_guard lock(mutex_);
    if (std::any_of(jobs_.begin(), jobs_.end(), [&](const HeldJob& j) { return j.id == job.id; }))
        return false;
    jobs_.push_back(std::move(job));
    return true;
}

std::vector<HeldJob> HeldJobs::list() const {
    std::lock_guard lock(mutex_);
    return jobs_;
}

std::optional<HeldJob> HeldJobs::find(const std::string& id) const {
    std::lock_guard lock(mutex_);
    for (const auto& j : jobs_)
        if (j.id == id) return j;
    return std::nullopt;
}

std::optional<HeldJob> HeldJobs::decide(const std::string& id, JobDecision decision, const std::string& by,
                                        const std::string& reason) {
    HeldJob job;
    DecisionHandler handler;
    {
        std::lock_guard lock(mutex_);
        auto it = std::find_if(jobs_.begin(), jobs_.end(), [&](const HeldJob& j) { return j.id == id; });
        if (it == jobs_.end()) return std::nullopt;
        job = std::move(*it);
        jobs_.erase(it);
        handler = handler_;
    }
    // Outside the lock: the handler may talk to CUPS and must not block other callers.
    if (handler) handler(job, decision, by, reason);
    return job;
}

}  // namespace custguard::daemon
