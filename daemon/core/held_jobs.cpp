#include "daemon/core/held_jobs.hpp"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <fstream>

#include <toml++/toml.h>

#include "custguard/common/atomic_file.hpp"

namespace custguard::daemon {

namespace {

std::string fmt_position(const toml::parse_error& e) {
    return "line " + std::to_string(e.source().begin.line) + ", column " + std::to_string(e.source().begin.column) +
           ": " + std::string(e.description());
}

// The job with this id in `jobs` (const or not), or end().
template <typename Jobs>
auto locate(Jobs& jobs, const std::string& id) {
    return std::find_if(jobs.begin(), jobs.end(), [&](const HeldJob& j) { return j.id == id; });
}

constexpr std::string_view k_header =
    "# Print jobs held for an administrator (custguardd(8), PRINT JOBS). custguardd replaces\n"
    "# this file on every change; decide with custguardctl print approve|reject.\n";

// Titles, user and printer names come from print clients: everything but printable ASCII,
// and the separators of this format, is written as %XX.
std::string encode(std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (c <= 0x20 || c >= 0x7f || c == '%' || c == '=' || c == ',' || c == ':') {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 0xf];
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

std::optional<std::string> decode(std::string_view s) {
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    };
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        if (i + 2 >= s.size()) return std::nullopt;
        int hi = nibble(s[i + 1]), lo = nibble(s[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out += static_cast<char>(hi << 4 | lo);
        i += 2;
    }
    return out;
}

template <typename T>
std::optional<T> number(std::string_view s) {
    T v{};
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
    return v;
}

std::string_view state_name(const HeldJob& j) {
    if (!j.decision) return "held";
    return *j.decision == JobDecision::approved ? "approved" : "rejected";
}

// One line of the file; the error says what is wrong with it.
tl::expected<HeldJob, std::string> parse_line(std::string_view line) {
    HeldJob j;
    std::map<std::string, std::string, std::less<>> fields;
    while (!line.empty()) {
        auto sp = line.find(' ');
        std::string_view token = line.substr(0, sp);
        line = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
        auto eq = token.find('=');
        if (eq == std::string_view::npos || eq == 0)
            return tl::unexpected("'" + std::string(token.substr(0, 40)) + "' is not key=value");
        auto key = std::string(token.substr(0, eq));
        auto value = decode(token.substr(eq + 1));
        if (!value) return tl::unexpected("field " + key + " has a bad %-escape");
        if (!fields.emplace(key, std::move(*value)).second) return tl::unexpected("field " + key + " twice");
    }
    auto take = [&](std::string_view key) -> std::optional<std::string> {
        auto it = fields.find(key);
        if (it == fields.end()) return std::nullopt;
        auto v = std::move(it->second);
        fields.erase(it);
        return v;
    };
    auto id = take("id");
    if (!id || id->empty() || id->size() > 10 || !number<std::uint32_t>(*id)) return tl::unexpected(std::string("no job id (digits)"));
    j.id = *id;
    auto state = take("state");
    if (!state) return tl::unexpected("job " + j.id + " has no state");
    if (*state == "approved") j.decision = JobDecision::approved;
    else if (*state == "rejected") j.decision = JobDecision::rejected;
    else if (*state != "held") return tl::unexpected("job " + j.id + ": unknown state '" + *state + "'");
    auto printer = take("printer");
    if (!printer || printer->empty()) return tl::unexpected("job " + j.id + " has no printer");
    j.printer = *printer;
    j.user = take("user").value_or("");
    j.title = take("title").value_or("");
    j.client = take("client").value_or("");
    if (auto v = take("uid")) {
        auto n = number<std::uint32_t>(*v);
        if (!n) return tl::unexpected("job " + j.id + ": uid '" + *v + "' is not a number");
        j.uid = *n;
    }
    if (auto v = take("pages")) {
        auto n = number<std::uint32_t>(*v);
        if (!n) return tl::unexpected("job " + j.id + ": pages '" + *v + "' is not a number");
        j.pages = *n;
    }
    if (auto v = take("held_at")) {
        auto n = number<std::uint64_t>(*v);
        if (!n) return tl::unexpected("job " + j.id + ": held_at '" + *v + "' is not a number");
        j.held_at = *n;
    }
    if (auto v = take("scan_failed")) {
        if (*v != "0" && *v != "1") return tl::unexpected("job " + j.id + ": scan_failed must be 0 or 1");
        j.scan_failed = *v == "1";
    }
    if (auto v = take("hits"); v && !v->empty()) {
        // name:count,name:count (names were encoded, so the separators are literal)
        std::string_view rest = *v;
        while (!rest.empty()) {
            auto comma = rest.find(',');
            std::string_view item = rest.substr(0, comma);
            rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
            auto colon = item.rfind(':');
            auto n = colon == std::string_view::npos ? std::nullopt : number<std::uint32_t>(item.substr(colon + 1));
            auto detector = n && colon > 0 ? decode(item.substr(0, colon)) : std::nullopt;
            if (!detector) return tl::unexpected("job " + j.id + ": detector hits are not name:count");
            j.detector_hits[*detector] = *n;
        }
    }
    if (!fields.empty()) return tl::unexpected("job " + j.id + ": unknown field " + fields.begin()->first);
    return j;
}

}  // namespace

std::string serialize_held_jobs(const std::vector<HeldJob>& jobs) {
    std::string out(k_header);
    for (const auto& j : jobs) {
        std::string hits;
        for (const auto& [name, n] : j.detector_hits) {
            if (!hits.empty()) hits += ',';
            hits += encode(name) + ':' + std::to_string(n);
        }
        // hits is encoded as a whole once more: its own separators become %2C and %3A.
        out += "id=" + encode(j.id) + " state=" + std::string(state_name(j)) + " printer=" + encode(j.printer) +
               " user=" + encode(j.user) + " uid=" + std::to_string(j.uid) + " pages=" + std::to_string(j.pages) +
               " held_at=" + std::to_string(j.held_at) + " scan_failed=" + (j.scan_failed ? "1" : "0") +
               " client=" + encode(j.client) + " title=" + encode(j.title) + " hits=" + encode(hits) + "\n";
    }
    return out;
}

HeldFile parse_held_jobs(std::string_view text, const std::string& name) {
    HeldFile out;
    std::map<std::string, std::size_t> seen;  // id -> line
    std::size_t number = 0;
    while (!text.empty()) {
        ++number;
        auto nl = text.find('\n');
        const bool cut = nl == std::string_view::npos;
        std::string_view line = text.substr(0, nl);
        text = cut ? std::string_view() : text.substr(nl + 1);
        auto where = name + ":" + std::to_string(number) + ": ";
        if (line.size() > k_max_held_line) {
            out.problems.push_back(where + "longer than " + std::to_string(k_max_held_line) + " bytes; skipped");
            continue;
        }
        if (line.empty() || line.front() == '#') continue;
        // custguardd ends every line; one without an end was cut off (disk full, an editor).
        if (cut) {
            out.problems.push_back(where + "cut off (no end of line); skipped");
            break;
        }
        auto job = parse_line(line);
        if (!job) {
            out.problems.push_back(where + job.error() + "; skipped");
            continue;
        }
        if (auto [it, fresh] = seen.emplace(job->id, number); !fresh) {
            out.problems.push_back(where + "job " + job->id + " again (first on line " + std::to_string(it->second) +
                                   "); skipped");
            continue;
        }
        out.jobs.push_back(std::move(*job));
    }
    return out;
}

tl::expected<std::string, std::string> read_held_file(const std::filesystem::path& file) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec))
        return tl::unexpected(file.string() + " is not a regular file; move it away");
    std::ifstream in(file, std::ios::binary);
    if (!in) return tl::unexpected("cannot read " + file.string() + "; fix its permissions or move it away");
    std::string text(k_max_held_bytes + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    if (in.bad()) return tl::unexpected("cannot read " + file.string() + "; fix or move it away");
    text.resize(static_cast<std::size_t>(in.gcount()));
    return text;
}

tl::expected<std::vector<HeldJob>, std::string> parse_legacy_held_toml(std::string_view text) {
    if (text.size() > k_max_held_bytes) return tl::unexpected(std::string("larger than the bound of held-jobs"));
    toml::table root;
    try {
        root = toml::parse(text);
    } catch (const toml::parse_error& e) {
        return tl::unexpected(fmt_position(e));
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
        j.scan_failed = true;  // the only jobs that file kept
        jobs.push_back(std::move(j));
    }
    return jobs;
}

tl::expected<std::vector<std::string>, std::string> HeldJobs::persist(
    std::filesystem::path file, std::function<void(const std::string&)> on_error) {
    std::vector<std::string> problems;
    std::vector<HeldJob> loaded;
    std::error_code ec;
    if (std::filesystem::exists(file, ec)) {
        auto read = read_held_file(file);
        if (!read) return tl::unexpected(read.error());
        std::string& text = *read;
        if (text.size() > k_max_held_bytes) {
            text.resize(k_max_held_bytes);
            problems.push_back(file.string() + ": larger than " + std::to_string(k_max_held_bytes) +
                               " bytes; the rest is not read");
        }
        auto parsed = parse_held_jobs(text, file.string());
        problems.insert(problems.end(), parsed.problems.begin(), parsed.problems.end());
        loaded = std::move(parsed.jobs);
        if (!problems.empty()) {
            // The next write drops what could not be read: keep the file as it was.
            auto copy = file;
            copy += ".bad-" + std::to_string(::time(nullptr));
            std::error_code cec;
            std::filesystem::copy_file(file, copy, std::filesystem::copy_options::overwrite_existing, cec);
            problems.push_back(cec ? "cannot keep a copy of " + file.string() + " at " + copy.string() + ": " +
                                         cec.message() + "; the lines above are lost at the next change"
                                   : "the file as read is kept in " + copy.string() +
                                         "; the jobs on the lines above are not held by custguardd (custguardctl "
                                         "print held); their CUPS jobs are decided again");
        }
    }
    std::filesystem::create_directories(file.parent_path(), ec);
    if (ec) return tl::unexpected("cannot create " + file.parent_path().string() + ": " + ec.message());
    std::lock_guard lock(mutex_);
    for (auto& j : loaded)
        if (locate(jobs_, j.id) == jobs_.end()) jobs_.push_back(std::move(j));
    file_ = std::move(file);
    on_error_ = std::move(on_error);
    return problems;
}

tl::expected<void, std::string> HeldJobs::save() {
    if (file_.empty()) return {};
    if (auto r = common::write_file_atomically(file_, serialize_held_jobs(jobs_)); !r)
        return tl::unexpected("cannot write the held print jobs to " + file_.string() + ": " + r.error());
    return {};
}

void HeldJobs::save_or_report() {
    if (auto r = save(); !r && on_error_) on_error_(r.error() + " (a restart would lose the latest change)");
}

void HeldJobs::set_decision_handler(DecisionHandler handler) {
    std::lock_guard lock(mutex_);
    handler_ = std::move(handler);
}

bool HeldJobs::hold(HeldJob job) {
    std::lock_guard lock(mutex_);
    if (locate(jobs_, job.id) != jobs_.end()) return false;
    job.decision.reset();
    jobs_.push_back(std::move(job));
    save_or_report();
    return true;
}

std::vector<HeldJob> HeldJobs::list() const {
    std::lock_guard lock(mutex_);
    std::vector<HeldJob> out;
    for (const auto& j : jobs_)
        if (!j.decision) out.push_back(j);
    return out;
}

std::vector<HeldJob> HeldJobs::all() const {
    std::lock_guard lock(mutex_);
    return jobs_;
}

std::optional<HeldJob> HeldJobs::find(const std::string& id) const {
    std::lock_guard lock(mutex_);
    auto it = locate(jobs_, id);
    return it == jobs_.end() ? std::nullopt : std::optional<HeldJob>(*it);
}

tl::expected<HeldJob, DecideFailure> HeldJobs::decide(const std::string& id, JobDecision decision,
                                                      const std::string& by, const std::string& reason) {
    HeldJob job;
    DecisionHandler handler;
    {
        std::lock_guard lock(mutex_);
        auto it = locate(jobs_, id);
        if (it == jobs_.end())
            return tl::unexpected(DecideFailure{DecideFailure::Kind::not_held, "no held print job '" + id + "'"});
        if (it->decision)
            return tl::unexpected(DecideFailure{DecideFailure::Kind::already_decided,
                                                "print job " + id + " was " + std::string(state_name(*it)) +
                                                    " already; it is being " +
                                                    (*it->decision == JobDecision::approved ? "released" : "cancelled")});
        it->decision = decision;
        // Written before CUPS hears of it: see the header.
        if (auto r = save(); !r) {
            it->decision.reset();
            return tl::unexpected(DecideFailure{DecideFailure::Kind::not_saved, r.error() + "; the job stays held"});
        }
        job = *it;
        handler = handler_;
    }
    // Outside the lock: the handler may talk to CUPS and must not block other callers.
    if (handler) handler(job, decision, by, reason);
    return job;
}

bool HeldJobs::take_approval(const std::string& id) {
    std::lock_guard lock(mutex_);
    auto it = locate(jobs_, id);
    if (it == jobs_.end() || it->decision != JobDecision::approved) return false;
    jobs_.erase(it);
    save_or_report();
    return true;
}

void HeldJobs::forget(const std::string& id) {
    std::lock_guard lock(mutex_);
    auto it = locate(jobs_, id);
    if (it == jobs_.end()) return;
    jobs_.erase(it);
    save_or_report();
}

}  // namespace custguard::daemon
