#include "daemon/core/held_jobs.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <sstream>

#include "custguard/common/atomic_file.hpp"
#include "custguard/common/policy_files.hpp"

namespace custguard::daemon {

namespace {

// [[job]] tables, one per job whose scan failed. Only what the listing shows.
std::string serialize(const std::vector<HeldJob>& jobs) {
    toml::array list;
    for (const auto& j : jobs) {
        if (!j.scan_failed) continue;
        list.push_back(toml::table{{"id", j.id},
                                   {"printer", j.printer},
                                   {"user", j.user},
                                   {"uid", static_cast<std::int64_t>(j.uid)},
                                   {"title", j.title},
                                   {"pages", static_cast<std::int64_t>(j.pages)},
                                   {"client", j.client},
                                   {"held_at", static_cast<std::int64_t>(j.held_at)}});
    }
    std::ostringstream out;
    out << "# Print jobs held because their scan failed; custguardd keeps them held across\n"
           "# restarts until an administrator decides (custguardctl print approve|reject).\n";
    out << toml::table{{"job", std::move(list)}} << "\n";
    return out.str();
}

tl::expected<std::vector<HeldJob>, std::string> parse(const std::string& text) {
    toml::table root;
    try {
        root = toml::parse(text);
    } catch (const toml::parse_error& e) {
        return tl::unexpected(std::string(e.description()));
    }
    std::vector<HeldJob> jobs;
    const auto* list = root["job"].as_array();
    if (!list) return jobs;
    for (const auto& node : *list) {
        const auto* t = node.as_table();
        if (!t) return tl::unexpected(std::string("a [[job]] entry is not a table"));
        HeldJob j;
        j.id = (*t)["id"].value_or(std::string());
        if (j.id.empty()) return tl::unexpected(std::string("a [[job]] entry has no id"));
        j.printer = (*t)["printer"].value_or(std::string());
        j.user = (*t)["user"].value_or(std::string());
        j.uid = static_cast<std::uint32_t>((*t)["uid"].value_or(std::int64_t{0xffffffff}));
        j.title = (*t)["title"].value_or(std::string());
        j.pages = static_cast<std::uint32_t>((*t)["pages"].value_or(std::int64_t{0}));
        j.client = (*t)["client"].value_or(std::string());
        j.held_at = static_cast<std::uint64_t>((*t)["held_at"].value_or(std::int64_t{0}));
        j.scan_failed = true;
        jobs.push_back(std::move(j));
    }
    return jobs;
}

}  // namespace

tl::expected<void, std::string> HeldJobs::persist(std::filesystem::path file,
                                                  std::function<void(const std::string&)> on_error) {
    std::vector<HeldJob> loaded;
    std::error_code ec;
    if (std::filesystem::exists(file, ec)) {
        auto text = common::read_file(file);
        if (!text) return tl::unexpected(text.error());
        auto jobs = parse(*text);
        if (!jobs) return tl::unexpected(file.string() + ": " + jobs.error() + "; fix or remove the file");
        loaded = std::move(*jobs);
    }
    std::filesystem::create_directories(file.parent_path(), ec);
    if (ec) return tl::unexpected("cannot create " + file.parent_path().string() + ": " + ec.message());
    std::lock_guard lock(mutex_);
    for (auto& j : loaded)
        if (std::none_of(jobs_.begin(), jobs_.end(), [&](const HeldJob& h) { return h.id == j.id; }))
            jobs_.push_back(std::move(j));
    file_ = std::move(file);
    on_error_ = std::move(on_error);
    return {};
}

void HeldJobs::save() {
    if (file_.empty()) return;
    if (auto r = common::write_file_atomically(file_, serialize(jobs_)); !r && on_error_)
        on_error_("cannot keep the held print jobs in " + file_.string() + ": " + r.error() +
                  " (they would be decided again after a restart)");
}

void HeldJobs::set_decision_handler(DecisionHandler handler) {
    std::lock_guard lock(mutex_);
    handler_ = std::move(handler);
}

bool HeldJobs::hold(HeldJob job) {
    std::lock_guard lock(mutex_);
    if (std::any_of(jobs_.begin(), jobs_.end(), [&](const HeldJob& j) { return j.id == job.id; }))
        return false;
    const bool keep = job.scan_failed;
    jobs_.push_back(std::move(job));
    if (keep) save();
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
        if (job.scan_failed) save();
        handler = handler_;
    }
    // Outside the lock: the handler may talk to CUPS and must not block other callers.
    if (handler) handler(job, decision, by, reason);
    return job;
}

}  // namespace custguard::daemon
