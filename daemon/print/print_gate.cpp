#include "daemon/print/print_gate.hpp"
#include "custguard/common/unique_fd.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <map>
#include <stdexcept>

#include <cups/ipp.h>

#include "custguard/common/nss.hpp"
#include "custguard/edm/attach.hpp"
#include "custguard/scan/document.hpp"
#include "custguard/scan/sandbox.hpp"
#include "custguard/scan/scanner.hpp"
#include "custguard/api/bus_ptr.hpp"
#include "custguard/cups/cups_client.hpp"
#include "custguard/cups/cups_policy.hpp"
#include "daemon/print/print_user.hpp"

namespace custguard::print {

struct PrintGate::Config {
    policy::PrintPolicy print;
    std::shared_ptr<const scan::Scanner> prototype;  // its config goes to the helper; null: see scanner_problem
    std::string scanner_problem;
};

struct PrintGate::Pending {
    api::MessagePtr message;
    Outcome outcome;
    std::string error;  // set: reply with org.custguard1.Error.Failed
};

namespace {

using common::UniqueFd;

// A user NSS does not know (or cannot look up) has no uid: decide() then says he is
// unknown on this server.
Requester resolve(const std::string& user) {
    Requester who;
    if (user.empty()) return who;
    auto pw = common::nss::user_by_name(user);
    if (!pw || !*pw) return who;
    who.uid = (*pw)->uid;
    if (auto groups = common::nss::supplementary_groups(user, (*pw)->gid))
        who.gids.assign(groups->begin(), groups->end());
    else
        who.gids.push_back((*pw)->gid);
    return who;
}

events::PrintDecision to_decision(policy::Action a) {
    switch (a) {
    case policy::Action::allow: return events::PrintDecision::allow;
    case policy::Action::audit: return events::PrintDecision::audit;
    case policy::Action::deny: return events::PrintDecision::deny;
    case policy::Action::hold: return events::PrintDecision::hold;
    }
    return events::PrintDecision::hold;
}

std::uint64_t now_seconds() { return static_cast<std::uint64_t>(::time(nullptr)); }

// All documents of a job are read within this: the backend waits 180 s for the answer,
// and a job it gives up on would be held as "daemon unreachable" and scanned again.
constexpr std::chrono::seconds kJobScanBudget{150};

// An approved job still processing in CUPS (the backend run that held it is ending) is
// released once CUPS holds it: asked again after 20 ms, doubling up to 1 s, for 60 s.
constexpr std::chrono::seconds kReleaseWait{60};
constexpr std::chrono::milliseconds kReleaseRetry{20};
constexpr std::chrono::milliseconds kReleaseRetryMax{1000};

}  // namespace

PrintGate::PrintGate(GateHost host, GateOptions options) : host_(std::move(host)), options_(std::move(options)) {
    cancel_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (cancel_fd_ < 0) throw std::runtime_error(std::string("print gate: eventfd: ") + std::strerror(errno));
    options_.sandbox.cancel_fd = cancel_fd_;
    // Start with an empty policy's defaults so a job before apply() is still decided.
    (void)apply(policy::PrintPolicy{});
    for (unsigned i = 0; i < std::max(1u, options_.workers); ++i) threads_.emplace_back([this] { worker_loop(); });
}

PrintGate::~PrintGate() {
    stop();
    {
        std::lock_guard lock(queue_mutex_);
        stopping_ = true;
    }
    queue_cv_.notify_all();
    for (auto& t : threads_) t.join();
    if (done_source_) sd_event_source_disable_unref(done_source_);
    if (done_fd_ >= 0) ::close(done_fd_);
    ::close(cancel_fd_);
}

void PrintGate::stop() {
    if (stopping_scans_.exchange(true)) return;
    std::uint64_t one = 1;
    (void)!::write(cancel_fd_, &one, sizeof one);  // never read: stays readable for later scans
}

tl::expected<void, std::string> PrintGate::apply(const policy::PrintPolicy& print, const std::vector<policy::EdmIndex>& edm) {
    auto config = scan::ScannerConfig::from_names(print.detectors, print.keywords, print.keyword_proximity);
    if (!config) return tl::unexpected("[print] detectors/keywords: " + config.error());
    if (auto attached = custguard::edm::attach_edm_matchers(*config, edm, "[print]"); !attached) return tl::unexpected(attached.error());
    auto scanner = scan::Scanner::create(std::move(*config));
    auto next = std::make_shared<Config>();
    next->print = print;
    if (scanner) {
        // Serialised now for the readers (scan::prepare_sandboxed), not at the first job.
        if (auto prepared = scan::prepare_sandboxed(*scanner); !prepared)
            return tl::unexpected("cannot prepare the content scanner: " + prepared.error());
        next->prototype = std::make_shared<const scan::Scanner>(std::move(*scanner));
    } else if (auto platform = scan::platform_supported(); !platform) {
        // The CPU cannot scan: enforcing files must not stop for the print gate, so every
        // document counts as unreadable and [print] unreadable decides (fails closed by
        // default).
        next->scanner_problem = "print content scanning unavailable: " + platform.error() +
                                "; every document counts as unreadable ([print] unreadable applies)";
    } else {
        return tl::unexpected("cannot build the content scanner: " + scanner.error());
    }
    std::string problem = next->scanner_problem;
    {
        std::lock_guard lock(mutex_);
        // Said once, not on every reload (the CPU does not change).
        if (config_ && config_->scanner_problem == problem) problem.clear();
        config_ = std::move(next);
    }
    if (!problem.empty() && host_.report) host_.report(true, problem);
    return {};
}

Outcome PrintGate::check(const JobFacts& job, const std::vector<int>& fds) {
    if (auto entry = host_.held ? host_.held->find(job.job) : std::nullopt) {
        // Decided (or to be decided) by an administrator, never again by a scan; the
        // control plane recorded the decision.
        if (!entry->decision)
            return Outcome{policy::Action::hold, "still held for an administrator (not scanned again)", job.job};
        if (*entry->decision == daemon::JobDecision::rejected) {
            host_.held->forget(job.job);  // the backend cancels it now
            return Outcome{policy::Action::deny, "rejected by an administrator", ""};
        }
        // Used up before the answer goes out: one approval, at most one print.
        if (host_.held->take_approval(job.job))
            return Outcome{policy::Action::allow, "approved by an administrator", ""};
    }
    std::shared_ptr<const Config> config;
    {
        std::lock_guard lock(mutex_);
        config = config_;
    }
    scan::SandboxOptions sandbox = options_.sandbox;
    sandbox.memory = std::uint64_t{config->print.scan_memory_mb} << 20;
    const auto per_document = std::chrono::milliseconds(std::chrono::seconds(config->print.scan_timeout_seconds));
    const auto deadline = std::chrono::steady_clock::now() + kJobScanBudget;

    Requester who = resolve(job.user);
    // Asked of cupsd by the daemon itself; without AUTH_USERNAME there is nothing to confirm.
    who.not_authenticated =
        unauthenticated_because(job, job.auth_user.empty() ? CupsIdentity{} : ask_cups_identity(job.job));
    who.authenticated = who.not_authenticated.empty();
    std::vector<tl::expected<scan::DocumentScan, std::string>> scans;
    bool scan_failed = false;
    for (std::size_t i = 0; i < fds.size(); ++i) {
        if (!config->prototype) {
            scan::DocumentScan unscanned;
            unscanned.reason = config->scanner_problem;
            scans.push_back(std::move(unscanned));
            continue;
        }
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left < std::chrono::seconds(1)) {
            scan::DocumentScan late;
            late.scan_failed = true;
            late.reason = "the document could not be read safely: no time left for it (a job's documents get " +
                          std::to_string(kJobScanBudget.count()) + " s together)";
            scans.push_back(std::move(late));
            scan_failed = true;
            continue;
        }
        sandbox.timeout = std::min(per_document, left);
        scans.push_back(scan::scan_sandboxed(config->prototype->config(), fds[i],
                                             i == 0 ? std::string_view(job.content_type) : std::string_view(),
                                             sandbox));
        if (stopping_scans_)
            return Outcome{policy::Action::hold, "custguardd is stopping; the job is decided again when it is back", ""};
        scan_failed |= scans.back() && scans.back()->scan_failed;
    }
    scan::DocumentScan scanned;
    Verdict verdict = decide_job(config->print, job, who, scans, scanned);

    events::PrintJob pj;
    pj.printer = job.printer;
    pj.job = job.job;
    pj.user = job.user;
    if (who.uid && who.authenticated) pj.uid = *who.uid;  // a claimed name gets no uid
    pj.title = job.title;
    pj.client = job.client;
    pj.pages = scanned.pages;
    for (auto d : counted_detectors(config->print))
        if (auto n = scanned.findings.count(d)) pj.detector_hits[std::string(scan::to_string(d))] = static_cast<std::uint32_t>(n);
    for (const auto& e : scanned.findings.edm)
        if (e.persons) pj.detector_hits[std::string(scan::edm_prefix) + e.name] = static_cast<std::uint32_t>(e.persons);
    auto record = events::make_print_record(pj, to_decision(verdict.action), verdict.reason);
    record.set("CUSTGUARD_COPIES", std::to_string(job.copies));
    if (config->prototype && !config->prototype->config().edm.empty()) record.set(events::field::persons, std::to_string(scanned.findings.persons));
    record.set("CUSTGUARD_DOC_TYPE", std::string(scan::to_string(scanned.doc_type)));
    if (fds.size() > 1) record.set("CUSTGUARD_DOCUMENTS", std::to_string(fds.size()));
    record.set("CUSTGUARD_CUSTOMER_DATA", verdict.customer_data ? "yes" : "no");
    record.set("CUSTGUARD_REASON", verdict.reason);
    record.set("CUSTGUARD_AUTHENTICATED", who.authenticated ? "yes" : "no");
    if (host_.submit) host_.submit(std::move(record));

    Outcome out{verdict.action, verdict.reason, ""};
    if (verdict.action == policy::Action::hold) {
        daemon::HeldJob held;
        held.id = job.job;
        held.printer = job.printer;
        held.user = job.user;
        if (who.uid && who.authenticated) held.uid = *who.uid;
        held.title = job.title;
        held.pages = pj.pages;
        held.client = job.client;
        held.detector_hits = pj.detector_hits;
        held.held_at = now_seconds();
        held.scan_failed = scan_failed;
        if (host_.held) host_.held->hold(std::move(held));
        out.hold_id = job.job;
    }
    return out;
}

void PrintGate::post(std::function<void()> task) {
    {
        std::lock_guard lock(queue_mutex_);
        tasks_.push_back(std::move(task));
    }
    queue_cv_.notify_one();
}

void PrintGate::post_after(std::chrono::milliseconds delay, std::function<void()> task) {
    {
        std::lock_guard lock(queue_mutex_);
        delayed_.emplace(std::chrono::steady_clock::now() + delay, std::move(task));
    }
    queue_cv_.notify_one();
}

void PrintGate::worker_loop() {
    for (;;) {
        std::function<void()> task;
        {
            std::unique_lock lock(queue_mutex_);
            for (;;) {
                const auto now = std::chrono::steady_clock::now();
                while (!delayed_.empty() && delayed_.begin()->first <= now) {
                    tasks_.push_back(std::move(delayed_.begin()->second));
                    delayed_.erase(delayed_.begin());
                }
                if (stopping_ || !tasks_.empty()) break;
                if (delayed_.empty()) {
                    queue_cv_.wait(lock);
                } else {
                    const auto due = delayed_.begin()->first;  // a copy: another worker may take the task meanwhile
                    queue_cv_.wait_until(lock, due);
                }
            }
            if (tasks_.empty()) return;  // stopping
            task = std::move(tasks_.front());
            tasks_.pop_front();
            ++busy_;
        }
        try {
            task();
        } catch (const std::exception& e) {
            if (host_.report) host_.report(true, std::string("print gate: ") + e.what());
        }
        {
            std::lock_guard lock(queue_mutex_);
            --busy_;
        }
        idle_cv_.notify_all();
    }
}

void PrintGate::wait_idle() {
    std::unique_lock lock(queue_mutex_);
    idle_cv_.wait(lock, [&] { return tasks_.empty() && delayed_.empty() && busy_ == 0; });
}

void PrintGate::attach(sd_bus_message* m) {
    if (done_source_) return;
    sd_event* event = sd_bus_get_event(sd_bus_message_get_bus(m));
    if (!event) return;
    done_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (done_fd_ < 0) return;
    if (sd_event_add_io(event, &done_source_, done_fd_, EPOLLIN, &PrintGate::on_done, this) < 0) done_source_ = nullptr;
}

int PrintGate::on_done(sd_event_source*, int fd, std::uint32_t, void* self) {
    std::uint64_t n = 0;
    while (::read(fd, &n, sizeof n) > 0) {
    }
    static_cast<PrintGate*>(self)->deliver();
    return 0;
}

// On the loop thread: sd-bus connections are not thread-safe, so replies go out here.
void PrintGate::deliver() {
    std::deque<std::unique_ptr<Pending>> done;
    {
        std::lock_guard lock(mutex_);
        done.swap(done_);
    }
    for (auto& p : done) {
        if (!p->error.empty()) {
            sd_bus_error err = SD_BUS_ERROR_NULL;
            sd_bus_error_set(&err, "org.custguard1.Error.Failed", p->error.c_str());
            sd_bus_reply_method_error(p->message.get(), &err);
            sd_bus_error_free(&err);
            continue;
        }
        sd_bus_reply_method_return(p->message.get(), "sss", std::string(policy::to_string(p->outcome.action)).c_str(),
                                   p->outcome.reason.c_str(), p->outcome.hold_id.c_str());
    }
}

int PrintGate::handle_check_print_job(sd_bus_message* m, sd_bus_error* error) {
    std::map<std::string, std::string> attrs;
    int r = sd_bus_message_enter_container(m, 'a', "{ss}");
    if (r < 0) return sd_bus_error_set_errno(error, r);
    for (;;) {
        const char *k = nullptr, *v = nullptr;
        r = sd_bus_message_read(m, "{ss}", &k, &v);
        if (r < 0) return sd_bus_error_set_errno(error, r);
        if (r == 0) break;
        attrs[k] = v;
    }
    if ((r = sd_bus_message_exit_container(m)) < 0) return sd_bus_error_set_errno(error, r);
    // CheckPrintJob carries one document (h), CheckPrintJobDocuments several (ah).
    std::vector<int> fds;
    const char* member = sd_bus_message_get_member(m);
    if (member && std::string_view(member) == "CheckPrintJobDocuments") {
        if ((r = sd_bus_message_enter_container(m, 'a', "h")) < 0) return sd_bus_error_set_errno(error, r);
        for (int fd = -1; (r = sd_bus_message_read(m, "h", &fd)) > 0;) fds.push_back(fd);
        if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0) return sd_bus_error_set_errno(error, r);
    } else {
        int fd = -1;
        if ((r = sd_bus_message_read(m, "h", &fd)) < 0) return sd_bus_error_set_errno(error, r);
        fds.push_back(fd);
    }

    JobFacts job;
    job.job = attrs[key::job];
    job.printer = attrs[key::printer];
    job.user = attrs[key::user];
    job.title = attrs[key::title];
    job.client = attrs[key::client];
    job.content_type = attrs[key::content_type];
    job.auth_user = attrs[key::auth_user];
    try {
        job.copies = static_cast<std::uint32_t>(std::stoul(attrs[key::copies].empty() ? "1" : attrs[key::copies]));
    } catch (const std::exception&) {
        job.copies = 1;
    }
    if (job.job.empty() || job.printer.empty())
        return sd_bus_error_set(error, "org.custguard1.Error.InvalidArgument",
                                "CheckPrintJob needs at least the job id and the printer");
    if (fds.empty())
        return sd_bus_error_set(error, "org.custguard1.Error.InvalidArgument",
                                "CheckPrintJobDocuments needs at least one document");
    // The message owns the received descriptors: keep copies for the worker.
    auto docs = std::make_shared<std::vector<UniqueFd>>();
    std::vector<int> doc_fds;
    for (int fd : fds) {
        docs->emplace_back(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
        if (docs->back().get() < 0) return sd_bus_error_set_errno(error, -errno);
        doc_fds.push_back(docs->back().get());
    }

    attach(m);
    if (!done_source_) {
        // No event loop to reply from later: decide now.
        auto o = check(job, doc_fds);
        return sd_bus_reply_method_return(m, "sss", std::string(policy::to_string(o.action)).c_str(),
                                          o.reason.c_str(), o.hold_id.c_str());
    }
    auto pending = std::make_shared<Pending>();
    pending->message.reset(sd_bus_message_ref(m));
    post([this, pending, job = std::move(job), docs, doc_fds]() mutable {
        auto p = std::make_unique<Pending>();
        p->message = std::move(pending->message);
        try {
            p->outcome = check(job, doc_fds);
        } catch (const std::exception& e) {
            p->error = std::string("print gate: ") + e.what();
        }
        {
            std::lock_guard lock(mutex_);
            done_.push_back(std::move(p));
        }
        std::uint64_t one = 1;
        (void)!::write(done_fd_, &one, sizeof one);
    });
    return 1;  // answered from deliver()
}

void PrintGate::on_decision(const daemon::HeldJob& job, daemon::JobDecision decision) {
    const bool approve = decision == daemon::JobDecision::approved;
    int id = 0;
    try {
        id = std::stoi(job.id);
    } catch (const std::exception&) {
        return;
    }
    if (approve) {
        post([this, id, printer = job.printer, give_up = std::chrono::steady_clock::now() + kReleaseWait] {
            release_approved(id, printer, give_up, kReleaseRetry);
        });
        return;
    }
    post([this, id, printer = job.printer] {
        auto cups = CupsClient::connect();
        tl::expected<void, std::string> r = cups ? cups->cancel_job(id) : tl::unexpected(cups.error());
        if (r && host_.held) host_.held->forget(std::to_string(id));
        if (!r && host_.report)
            host_.report(true, "print job " + std::to_string(id) + " on " + printer + ": cannot cancel it in CUPS: " +
                                   r.error() + "; tried again at the next start or policy reload");
    });
}

// JobHeld goes out when the hold is decided, before the backend has answered cupsd; an
// administrator (the page shows the job within milliseconds) can approve while that backend
// run is still ending. CUPS then refuses Release-Job (the job is processing, not held) and,
// once the backend exits, holds the job for good: so while the job is processing and its
// approval unused, ask again later. Pending or a used approval: its next backend run
// prints it (or did). On a worker.
void PrintGate::release_approved(int id, const std::string& printer, std::chrono::steady_clock::time_point give_up,
                                 std::chrono::milliseconds retry) {
    auto cups = CupsClient::connect();
    tl::expected<void, std::string> r = cups ? cups->release_job(id) : tl::unexpected(cups.error());
    if (r) return;
    if (cups) {
        const auto entry = host_.held ? host_.held->find(std::to_string(id)) : std::nullopt;
        const bool unused = entry && entry->decision == daemon::JobDecision::approved;
        const auto state = cups->job(id);
        if (!unused || (state && state->state == IPP_JSTATE_PENDING)) return;
        if (state && state->state == IPP_JSTATE_PROCESSING && std::chrono::steady_clock::now() < give_up) {
            post_after(retry, [this, id, printer, give_up, retry] {
                release_approved(id, printer, give_up, std::min(2 * retry, kReleaseRetryMax));
            });
            return;
        }
    }
    if (host_.report)
        host_.report(true, "print job " + std::to_string(id) + " on " + printer + ": cannot release it in CUPS: " +
                               r.error() + "; tried again at the next start or policy reload");
}

void PrintGate::reconcile_held(CupsClient& cups, const std::vector<CupsJob>& active,
                               const std::vector<daemon::HeldJob>& stored) {
    for (const auto& h : stored) {
        auto it = std::find_if(active.begin(), active.end(),
                               [&](const CupsJob& j) { return std::to_string(j.id) == h.id; });
        if (it == active.end()) {
            host_.held->forget(h.id);
            if (host_.report)
                host_.report(false, "print job " + h.id + " on " + h.printer +
                                        " is no longer in CUPS (cancelled or finished meanwhile); dropped from the "
                                        "held jobs");
            continue;
        }
        if (!h.decision) continue;  // stays held until an administrator decides
        const bool approve = *h.decision == daemon::JobDecision::approved;
        // A decision written before a crash, CUPS not told yet: finish it, never re-decide.
        if (approve && it->state != IPP_JSTATE_HELD) continue;  // the backend runs it and takes the approval
        auto r = approve ? cups.release_job(it->id) : cups.cancel_job(it->id);
        if (r && !approve) host_.held->forget(h.id);
        if (host_.report)
            host_.report(!r, "print job " + h.id + " on " + h.printer + " " + (approve ? "approved" : "rejected") +
                                 " earlier: " +
                                 (r ? std::string(approve ? "released" : "cancelled") + " in CUPS now"
                                    : "cannot " + std::string(approve ? "release" : "cancel") + " it: " + r.error()));
    }
}

void PrintGate::check_cups(bool all_custguard_holds) {
    post([this, all_custguard_holds] {
        auto cups = CupsClient::connect();
        std::vector<std::string> unprotected, warnings;
        if (!cups) {
            std::lock_guard lock(mutex_);
            unprotected_.clear();
            warnings_.clear();  // no print server here: nothing to protect
            return;
        }
        auto queues = cups->queues();
        std::set<std::string> protected_queues;
        if (!queues) {
            warnings.push_back("print gate: cannot list CUPS queues: " + queues.error());
        } else {
            // Read once: the operation policies of the wrapped queues.
            std::optional<tl::expected<CupsdConf, std::string>> conf;
            for (const auto& q : *queues) {
                if (q.is_class) continue;
                if (q.wrapped_by_custguard()) {
                    protected_queues.insert(q.name);
                    if (!conf) {
                        auto text = cups->server_file("/admin/conf/cupsd.conf");
                        conf = text ? parse_cupsd_conf(*text)
                                    : tl::expected<CupsdConf, std::string>(tl::unexpect, text.error());
                    }
                    std::string problem = !*conf ? "cannot verify its operation policy: " + conf->error()
                                                 : claimed_name_problem(**conf, q.op_policy);
                    if (problem.empty() && q.takes_auth_info())
                        problem = "it takes credentials from clients (auth-info-required)";
                    if (problem.empty()) continue;
                    unprotected.push_back(q.name);
                    warnings.push_back("CUPS queue " + q.name + " lets a client claim the print user (" + problem +
                                       "); a name a client claims there never satisfies [print] allow_users; run: "
                                       "custguardctl printer protect " + q.name);
                    continue;
                }
                unprotected.push_back(q.name);
                warnings.push_back("CUPS queue " + q.name + " is not protected by custguard (device " + q.device_uri +
                                   "); run: custguardctl printer protect " + q.name);
            }
        }
        {
            std::lock_guard lock(mutex_);
            unprotected_ = unprotected;
            warnings_ = warnings;
        }
        if (host_.report)
            for (const auto& w : warnings) host_.report(true, w);
        // Before listing CUPS jobs: a job held after this is not dropped as unknown to CUPS.
        const auto stored = host_.held ? host_.held->all() : std::vector<daemon::HeldJob>{};
        auto jobs = cups->active_jobs();
        if (!jobs) {
            if (host_.report) host_.report(true, "print gate: cannot list CUPS jobs: " + jobs.error());
            return;
        }
        reconcile_held(*cups, *jobs, stored);
        std::set<std::string> in_store;
        for (const auto& h : stored) in_store.insert(h.id);
        for (const auto& j : *jobs) {
            if (j.state != IPP_JSTATE_HELD || !protected_queues.count(j.printer)) continue;
            bool ours = j.message.rfind(options_.unreachable_prefix, 0) == 0 ||
                        (all_custguard_holds && j.message.rfind("custguard:", 0) == 0);
            if (!ours || in_store.count(std::to_string(j.id)) || (host_.held && host_.held->find(std::to_string(j.id))))
                continue;
            auto r = cups->release_job(j.id);
            if (host_.report)
                host_.report(!r, r ? "print job " + std::to_string(j.id) + " on " + j.printer +
                                         " released to be decided again (" + j.message + ")"
                                   : "print job " + std::to_string(j.id) + ": cannot release it: " + r.error());
        }
    });
}

std::vector<std::string> PrintGate::unprotected_queues() const {
    std::lock_guard lock(mutex_);
    return unprotected_;
}

std::vector<std::string> PrintGate::warnings() const {
    std::lock_guard lock(mutex_);
    auto out = warnings_;
    if (config_ && !config_->scanner_problem.empty()) out.push_back(config_->scanner_problem);
    return out;
}

}  // namespace custguard::print
