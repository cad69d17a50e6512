// Print jobs held for an administrator's decision ([print] action = "hold", or a scan that
// failed). The print gate adds jobs, asks what was decided when the backend runs a job
// again, and learns decisions through the handler it registers; the control plane lists
// them and approves or rejects them (custguardctl print held|approve|reject).
//
// Every change is written to a file (one job a line, replaced atomically) before it has any
// effect, so a held job stays held across restarts and is decided once:
//  - a decision is written before CUPS is told. A crash in between leaves the decision in
//    the file, and the next start finishes it (release or cancel), never re-decides it;
//  - an approval is used up (removed and written) when the backend's next run asks, before
//    the answer "allow" goes out. A crash in between: the backend got no answer and holds
//    the job as "daemon unreachable", the approval is gone, and the job is decided again
//    (scanned; held again where the policy says so): at most one print per approval.
// Thread-safe: the print gate calls in from its own threads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

namespace custguard::daemon {

enum class JobDecision : std::uint8_t { approved, rejected };

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
    bool scan_failed = false;   // a document could not be read
    // Set once an administrator decided, until the decision took effect: the backend used
    // the approval, or CUPS cancelled the job.
    std::optional<JobDecision> decision;
};

// The file's format, separate for tests: one job a line, space-separated key=value fields,
// values percent-encoded. parse never throws; every line it cannot use (longer than
// k_max_held_line bytes, cut off, malformed) is named in `problems` as "<name>:<line>: what".
// persist reads at most k_max_held_bytes of the file.
inline constexpr std::size_t k_max_held_line = 16 * 1024;
inline constexpr std::size_t k_max_held_bytes = 16 * 1024 * 1024;
struct HeldFile {
    std::vector<HeldJob> jobs;
    std::vector<std::string> problems;
};
std::string serialize_held_jobs(const std::vector<HeldJob>& jobs);
HeldFile parse_held_jobs(std::string_view text, const std::string& name);

// At most k_max_held_bytes + 1 bytes of `file` (one more tells a file over the bound); the
// error says what to do. For held-jobs and the legacy file alike.
tl::expected<std::string, std::string> read_held_file(const std::filesystem::path& file);

// The file custguard kept before held-jobs (print/held.toml: [[job]] tables, only jobs
// whose scan failed). Read once at start and imported; bounded like held-jobs.
tl::expected<std::vector<HeldJob>, std::string> parse_legacy_held_toml(std::string_view text);

struct DecideFailure {
    enum class Kind : std::uint8_t { not_held, already_decided, not_saved } kind;
    std::string message;
};

class HeldJobs {
public:
    // Called outside the lock once a decision is written; `by` names the admin, `reason`
    // is their comment. The print gate releases or cancels the job there.
    using DecisionHandler = std::function<void(const HeldJob&, JobDecision, const std::string& by,
                                               const std::string& reason)>;

    void set_decision_handler(DecisionHandler handler);
    // Loads the jobs kept in `file` (missing: none) and writes every change there from now
    // on. Returns what was wrong with the file's lines (each skipped; the file as read is
    // then copied to <file>.bad-<seconds> first, so nothing is lost); an error when the file
    // cannot be read at all. Write failures after this go to `on_error` (the daemon logs).
    tl::expected<std::vector<std::string>, std::string> persist(std::filesystem::path file,
                                                                std::function<void(const std::string&)> on_error);
    // Returns false when a job with this id is already in the store (held or decided).
    bool hold(HeldJob job);
    // The jobs waiting for a decision.
    std::vector<HeldJob> list() const;
    // Every job in the store, decided ones included.
    std::vector<HeldJob> all() const;
    std::optional<HeldJob> find(const std::string& id) const;
    // Writes the decision, then tells the handler. Refused when the job is not held, was
    // decided already, or the decision cannot be written (the job then stays held).
    tl::expected<HeldJob, DecideFailure> decide(const std::string& id, JobDecision decision, const std::string& by,
                                                const std::string& reason);
    // The backend runs an approved job: removes it (written first) and returns true once;
    // false when the job is not approved.
    bool take_approval(const std::string& id);
    // Drops a job from the store (CUPS cancelled it or no longer has it).
    void forget(const std::string& id);

private:
    tl::expected<void, std::string> save();  // mutex_ held
    void save_or_report();                    // mutex_ held

    mutable std::mutex mutex_;
    std::vector<HeldJob> jobs_;
    DecisionHandler handler_;
    std::filesystem::path file_;  // empty: nothing persisted
    std::function<void(const std::string&)> on_error_;
};

}  // namespace custguard::daemon
