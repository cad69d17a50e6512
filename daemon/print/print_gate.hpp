// custguardd's print gate: decides the jobs the CUPS backend `custguard` asks about
// (D-Bus CheckPrintJob), records one print record per decision, puts held jobs into the
// daemon's held-jobs store, releases or cancels them in CUPS when an administrator
// decides, and checks CUPS for queues that are not protected and for jobs the backend
// held because the daemon was unreachable.
//
// Documents are read by the sandboxed custguard-extract helper (scan/…/sandbox.hpp), never
// in this process: a hostile document costs a helper its limits, not the daemon its memory
// or its answers. Scans can take a while, so decisions run on worker threads and the D-Bus
// reply is sent later from the event loop: neither the control plane nor the file
// enforcer (its own threads) waits for print work. stop() kills running helpers at once.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <tl/expected.hpp>

#include "custguard/api/names.hpp"
#include "custguard/cups/cups_client.hpp"
#include "custguard/events/record.hpp"
#include "custguard/policy/policy.hpp"
#include "custguard/scan/sandbox.hpp"
#include "daemon/core/held_jobs.hpp"
#include "daemon/print/decide.hpp"

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

namespace custguard::print {

// What the gate needs from the daemon (callbacks keep this library free of the core).
struct GateHost {
    std::function<void(events::Record&&)> submit;
    // The held-jobs store (kept across restarts): held jobs go there, and a job found there
    // is never scanned again; its administrator's decision answers the backend.
    daemon::HeldJobs* held = nullptr;
    // Things an administrator should read (released jobs, CUPS trouble); the daemon logs.
    std::function<void(bool warning, const std::string&)> report;
};

struct GateOptions {
    unsigned workers = 2;
    // Sandbox user, Ghostscript; timeout and memory come from [print] scan_timeout and
    // scan_memory_mb.
    scan::SandboxOptions sandbox;
    // The backend's message prefix for jobs it held because it could not reach us.
    std::string unreachable_prefix = "custguard: daemon unreachable";
};

struct Outcome {
    policy::Action action = policy::Action::hold;
    std::string reason;
    std::string hold_id;  // the held-jobs store id when action is hold
};

// Names of CheckPrintJob's a{ss} argument: the API's (custguard/api/names.hpp).
namespace key = api::job_key;

class PrintGate {
public:
    PrintGate(GateHost host, GateOptions options = {});
    ~PrintGate();
    PrintGate(const PrintGate&) = delete;
    PrintGate& operator=(const PrintGate&) = delete;

    // A new [print] section (start, reload, state change): rebuilds the scanner, opening
    // the index of every "edm:NAME" detector from `edm` (the policy's [edm.NAME] tables);
    // an index or key that cannot be opened or read is an error, never ignored.
    tl::expected<void, std::string> apply(const policy::PrintPolicy& print, const std::vector<policy::EdmIndex>& edm = {});

    // Decides one job whose documents are readable at `fds` (not closed; the first has
    // the job's content type, the others are recognised by their contents). Thread-safe.
    // A job in the held-jobs store is not scanned: held until an administrator decides,
    // then allowed once (the approval is used up) or denied.
    // A document whose sandboxed scan failed is unreadable ([print] unreadable decides);
    // a hold of such a job is marked scan_failed.
    Outcome check(const JobFacts& job, const std::vector<int>& fds);

    // The daemon is stopping: running scans are killed now, later ones fail at once, and
    // their jobs are neither recorded nor held here (the backend holds them as "daemon
    // unreachable" and they are decided again after the restart).
    void stop();

    // The D-Bus methods CheckPrintJob(a{ss} job, h document) and
    // CheckPrintJobDocuments(a{ss} job, ah documents) -> (s action, s reason, s hold_id).
    // Call on the event loop thread after authorising the caller; replies later.
    int handle_check_print_job(sd_bus_message* m, sd_bus_error* error);

    // The held-jobs store's decision handler, called once the decision is written:
    // approval releases the job in CUPS (its next backend run gets "allow"); rejection
    // cancels it and then drops it from the store. An approval that arrives while the
    // backend run that held the job is still ending (CUPS refuses to release a job that is
    // not held yet) is tried again until CUPS holds it, for at most kReleaseWait. What fails
    // here is retried by the next check_cups (start, policy reload).
    void on_decision(const daemon::HeldJob& job, daemon::JobDecision decision);

    // In the background: list CUPS queues (unprotected ones become warnings: not wrapped
    // by the custguard backend, or with an operation policy that lets a client claim the
    // job's user); bring the held-jobs store and CUPS together (jobs CUPS no longer has are
    // dropped, approved jobs still held in CUPS released, rejected ones cancelled; held
    // ones stay held); and release jobs the backend held because the daemon was unreachable
    // (all jobs custguard held when `all_custguard_holds`, at start) that are not in the
    // store: they are decided again and held again where the policy says so.
    void check_cups(bool all_custguard_holds);
    // Waits until the background CUPS work queued so far is done (tests).
    void wait_idle();

    std::vector<std::string> unprotected_queues() const;
    std::vector<std::string> warnings() const;

private:
    struct Config;
    struct Pending;
    void post(std::function<void()> task);
    // Runs `task` on a worker once `delay` has passed, without holding a worker meanwhile.
    void post_after(std::chrono::milliseconds delay, std::function<void()> task);
    void release_approved(int id, const std::string& printer, std::chrono::steady_clock::time_point give_up,
                          std::chrono::milliseconds retry);
    void worker_loop();
    void attach(sd_bus_message* m);
    void deliver();
    static int on_done(sd_event_source*, int, std::uint32_t, void* self);
    // check_cups: the store's jobs (`stored`, read before `active` was listed) against CUPS.
    void reconcile_held(CupsClient& cups, const std::vector<CupsJob>& active,
                        const std::vector<daemon::HeldJob>& stored);

    GateHost host_;
    GateOptions options_;

    mutable std::mutex mutex_;  // guards what follows
    std::shared_ptr<const Config> config_;
    std::vector<std::string> unprotected_;
    std::vector<std::string> warnings_;
    std::deque<std::unique_ptr<Pending>> done_;

    std::mutex queue_mutex_;
    std::condition_variable queue_cv_;
    std::condition_variable idle_cv_;
    std::deque<std::function<void()>> tasks_;
    std::multimap<std::chrono::steady_clock::time_point, std::function<void()>> delayed_;
    unsigned busy_ = 0;
    bool stopping_ = false;
    std::vector<std::thread> threads_;

    int done_fd_ = -1;  // eventfd: a worker finished a D-Bus call
    int cancel_fd_ = -1;  // eventfd, written once by stop(): every scan's helper is killed
    std::atomic<bool> stopping_scans_{false};
    sd_event_source* done_source_ = nullptr;
};

}  // namespace custguard::print
