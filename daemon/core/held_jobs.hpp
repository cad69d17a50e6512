// Print jobs held for an administrator's decision ([print] action = "hold"). The print gate
// adds jobs and learns the decision through the callback it registers; the control plane
// lists them and approves or rejects them (custguardctl print held|approve|reject).
// Jobs held because their scan failed (the sandboxed reader crashed, ran out of memory or
// time) are also kept in a file, so they stay held after a restart instead of being
// decided again: a document that breaks the reader must not get another try on its own.
// Other held jobs are decided again after a restart. Thread-safe: the print gate calls in
// from its own threads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <tl/expected.hpp>

namespace custguard::daemon {

struct HeldJob {
    std::string id;       // CUPS job id (unique among held jobs)
    std::string printer;
    std::string user;
    std::uint32_t uid = 0xffffffffu;
    std::string title;
    std::uint32_t pages = 0;
    std::string client;
    std::map<std::string, std::uint32_t> detector_hits;  // names and counts only
    std::uint64_t held_at = 0;  // seconds since the epoch
    bool scan_failed = false;   // a document could not be read: kept across restarts
};

enum class JobDecision : std::uint8_t { approved, rejected };

class HeldJobs {
public:
    // Called outside the lock when an admin decides; `by` names the admin, `reason` is
    // their comment. The print gate releases or cancels the job there.
    using DecisionHandler = std::function<void(const HeldJob&, JobDecision, const std::string& by,
                                               const std::string& reason)>;

    void set_decision_handler(DecisionHandler handler);
    // Loads the jobs kept in `file` (missing: none) and keeps the scan_failed jobs there
    // from now on. Write failures after this go to `on_error` (the daemon logs them).
    tl::expected<void, std::string> persist(std::filesystem::path file,
                                            std::function<void(const std::string&)> on_error);
    // Returns false when a job with this id is already held.
    bool hold(HeldJob job);
    std::vector<HeldJob> list() const;
    std::optional<HeldJob> find(const std::string& id) const;
    // Removes the job and tells the handler; nullopt when no such job is held.
    std::optional<HeldJob> decide(const std::string& id, JobDecision decision, const std::string& by,
                                  const std::string& reason);

private:
    void save();  // mutex_ held

    mutable std::mutex mutex_;
    std::vector<HeldJob> jobs_;
    DecisionHandler handler_;
    std::filesystem::path file_;  // empty: nothing persisted
    std::function<void(const std::string&)> on_error_;
};

}  // namespace custguard::daemon
