// custguardd's core: owns the policy, the enforcer, the event pipeline and the state, and
// runs the main loop (sd-event): SIGHUP reloads, SIGTERM/SIGINT stop, timers report
// sensor losses and keep the watchdog fed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "custguard/events/client_reads.hpp"
#include "custguard/events/pipeline.hpp"
#include "custguard/policy/compile.hpp"
#include "custguard/policy/evaluate.hpp"
#include "custguard/policy/load.hpp"
#include "custguard/policy/state.hpp"
#include "daemon/audit/observer.hpp"
#include "daemon/core/held_jobs.hpp"
#include "daemon/enforcer.hpp"
#include "daemon/fanotify/unique_fd.hpp"
#include "daemon/notify/notifier.hpp"
#include "daemon/watch/watcher.hpp"

struct sd_event;

namespace custguard::audit {
class AuditObserver;
}
namespace custguard::print {
class PrintGate;
}

namespace custguard::daemon::exec {
class ExecTracker;
}

namespace custguard::daemon {

enum class AuditChoice { automatic, on, off };

struct DaemonOptions {
    std::filesystem::path policy = "/etc/custguard/policy.toml";
    bool foreground = false;
    std::optional<policy::EnforcerChoice> enforcer;  // overrides [daemon] enforcer
    std::optional<std::filesystem::path> state_dir;  // overrides [daemon] state_dir
    std::optional<std::filesystem::path> jsonl_export;
    bool journal = true;
    std::string journal_namespace;  // write to journald namespace NS (tests); "" = default
    std::filesystem::path bpf_pin_dir = "/sys/fs/bpf/custguard";
    // The audit observer. automatic: the sensor where no enforcer runs, off beside an
    // enforcer (custguardd(8) AUDIT says why); on (--audit): also cross-checks an
    // enforcer; off (--no-audit).
    AuditChoice audit = AuditChoice::automatic;
    // The exec tracker (BPF): records name the program current at a decision. Off: they
    // read it from /proc afterwards.
    bool exec_tracker = true;
    // Where the enforcer comes from. Unset: the one --enforcer / [daemon] enforcer selects
    // (bpf-lsm, fanotify or none). Set (unit tests, with a fake): that enforcer, and the
    // machine's enforcement (BPF pins, a stored fanotify group) is left alone.
    EnforcerFactory enforcer_factory;
};

struct Status {
    std::string version;
    std::string enforcer;         // bpf-lsm | fanotify | none
    std::string enforcer_reason;  // why this one
    bool adopted = false;         // enforcement taken over from a previous daemon
    std::string policy_path;
    std::string policy_digest;
    std::uint64_t policy_loaded_at = 0;  // seconds since the epoch
    std::uint32_t reloads = 0;
    std::uint32_t reload_failures = 0;
    std::uint64_t started_at = 0;
    SensorCounters sensor;
    events::PipelineCounters pipeline;
    std::vector<std::string> warnings;  // policy and enforcer warnings
    std::vector<std::string> unprotected_queues;  // CUPS queues without the custguard backend
    notify::NotifyCounters notify;                 // mail / webhook delivery
    std::vector<notify::Revocation> revoked;       // bulk-read cool-downs in force
    std::string audit_mode;                        // observe | cross-check | off
    std::string audit_off_reason;                  // why off ("" when on)
    std::string audit_instance;                    // rules' keys: custguard:<instance>:<zone>
    audit::ObserverCounters audit;                 // zero when off
    // Reads per zone and client since local midnight (or the daemon's start, if later).
    std::vector<events::ClientReads::Entry> client_reads;
    std::uint64_t client_reads_since = 0;  // seconds since the epoch
};

struct ReloadOutcome {
    bool accepted = false;
    policy::Diagnostics diagnostics;  // errors (refused) or warnings (accepted)
};

class Daemon {
public:
    // Loads the policy (refusing to start on errors), picks and starts the enforcer and
    // the pipeline. Start-up errors are returned as text for the log.
    static tl::expected<std::unique_ptr<Daemon>, std::string> create(DaemonOptions options);
    ~Daemon();

    // The main loop; returns the exit status.
    int run();
    void request_stop();

    // Reload from disk; on refusal the running policy stays in force.
    ReloadOutcome reload(std::string_view trigger);

    Status status() const;
    // The effective merged policy, each entry with its origin (policy show).
    policy::Policy current_policy() const;
    // Changes with every change of current_policy(): the control plane's periodic check
    // builds its Zones property again only then (a copy of 10,000 zones a second was most
    // of an idle daemon's CPU).
    std::uint64_t policy_generation() const;
    policy::State current_state() const;
    const std::filesystem::path& state_dir() const { return state_dir_; }
    // The journald namespace the records go to ("" = the system journal); GetHistory reads it.
    const std::string& journal_namespace() const { return options_.journal_namespace; }

    // Replace the CLI-managed state: validated by loading policy + new state; on success
    // persisted atomically and applied, else nothing changes. Used by the control plane.
    // A state entry the loader would ignore (unknown zone or user, malformed client) and
    // that is not already ignored today refuses the change: it is returned as a warning
    // diagnostic.
    tl::expected<void, policy::Diagnostics> update_state(const policy::State& next);

    events::Pipeline& pipeline() { return *pipeline_; }
    HeldJobs& held_jobs() { return held_jobs_; }
    print::PrintGate& print_gate() { return *print_; }
    notify::Notifier& notifier() { return *notifier_; }

    // Bulk-read cool-downs ([bulk] action = "revoke"): apply new ones and lift expired
    // ones in the enforcer (as deny rows) and the audit observer. run() calls it every second.
    void apply_revocations(std::uint64_t now);

    // The enforcer's losses since the last call as `lost` records: events it dropped, and
    // (fanotify) opens it refused unrecorded in overload. run() calls it every second.
    void poll_sensor_losses();

    // Called by run() with the event loop once it exists, before READY=1: the control
    // plane attaches its bus connection there.
    void set_loop_hook(std::function<void(sd_event*)> hook) { loop_hook_ = std::move(hook); }

    // Remove grants (of users and of clients) that expired at or before `now` from the state file (the enforcers
    // already refuse them at their expiry) and record each as an admin change. Returns
    // how many were removed. run() calls it every second.
    std::size_t prune_expired_grants(std::uint64_t now);

    // Resolve the host names of allow_clients and client grants again; apply when their
    // addresses changed.
    // run() calls it every hour (reloads resolve them too).
    void refresh_client_hosts();

private:
    explicit Daemon(DaemonOptions options);
    // What the start steps hand on: enforcement of an earlier daemon to retire once the
    // new enforcer is in force.
    struct Retire {
        policy::EnforcerChoice chosen = policy::EnforcerChoice::none;
        std::optional<UniqueFd> stale_fanotify;
    };
    tl::expected<void, std::string> start();
    // The start steps, in order.
    tl::expected<void, std::string> open_state_dir();  // --state-dir, else [daemon] state_dir
    tl::expected<void, std::string> load_state();      // <state>/state.toml
    tl::expected<events::EnrichConfig, std::string> start_pipeline();  // exec tracker + records
    tl::expected<void, std::string> start_notifier();  // and the cool-downs in force
    void load_revocations();                           // <state>/notify/revoked
    tl::expected<void, std::string> start_print_gate();  // and the held jobs
    tl::expected<Retire, std::string> create_enforcer(policy::EnforcerChoice choice,
                                                      const events::EnrichConfig& enrich_config);
    tl::expected<Retire, std::string> take_enforcer_from_factory();
    void create_audit_observer();  // the sensor without an enforcer; --audit cross-checks one
    tl::expected<void, std::string> start_enforcer(const policy::Policy& about_to_apply);
    void start_watcher(const events::EnrichConfig& enrich_config);
    void retire_earlier_enforcement(Retire& retire);
    tl::expected<void, std::string> start_audit_observer();
    // print/held.toml (before held-jobs) into the held-jobs store, once; then renamed.
    void import_legacy_held_jobs();
    // Reads the files once; `digest` describes exactly the bytes that were loaded.
    tl::expected<policy::Loaded, policy::Diagnostics> load(const std::optional<policy::State>& state_override,
                                                           std::string& digest) const;
    tl::expected<void, std::string> install(policy::Loaded loaded, std::string digest);
    // Sets policy.denies to the cool-downs in force: they override every allow of the user
    // in the zone, %group rows included. mutex_ held.
    void add_cooldown_denies(policy::Policy& policy, std::uint64_t now) const;
    void remove_bpf_pins() const;  // detach and unpin what an earlier bpf-lsm run left
    void save_revocations() const;                                          // mutex_ held
    // [watch]: what the watcher found, recorded and acted on (record, notify, protect).
    void on_find(watch::Find&& find);
    // The scope the watcher needs from a policy. mutex_ held or the policy not yet shared.
    tl::expected<watch::WatchScope, std::string> watch_scope(const policy::Policy& policy) const;
    void load_protected_files();   // from <state>/watch/protected
    void save_protected_files() const;  // mutex_ held
    // Adds or moves an inode's entry; false when the list is full. mutex_ held.
    bool remember_protected(policy::ProtectedFile f);

    DaemonOptions options_;
    std::filesystem::path state_dir_;
    events::ClientReads client_reads_;  // observes pipeline_; declared first, so it outlives it
    std::unique_ptr<events::Pipeline> pipeline_;
    std::unique_ptr<notify::Notifier> notifier_;  // observes pipeline_; stopped after it
    std::unique_ptr<Enforcer> enforcer_;
    // Identities at exec and loader-injection flags; null when it cannot load (then
    // exec_off_reason_ says why, in status).
    std::shared_ptr<exec::ExecTracker> exec_tracker_;
    std::string exec_off_reason_;
    std::string exec_unpinned_reason_;  // running, but without pins (no bpffs)
    std::unique_ptr<audit::AuditObserver> audit_;  // null with --no-audit or without kernel audit
    std::vector<std::string> audit_warnings_;
    std::string audit_off_reason_;
    std::string audit_instance_;  // the tag of our audit rules' keys
    std::string enforcer_reason_;
    bool adopted_ = false;

    mutable std::mutex mutex_;  // guards what follows (the control plane reads it)
    policy::Policy policy_;  // as loaded, with the cool-downs in force as denies
    std::uint64_t policy_generation_ = 0;  // +1 with every change of policy_
    policy::State state_;
    std::string digest_;
    std::uint64_t loaded_at_ = 0;
    std::uint64_t started_at_ = 0;
    std::uint32_t reloads_ = 0;
    std::uint32_t reload_failures_ = 0;
    std::vector<std::string> warnings_;
    std::vector<std::string> host_warnings_;  // allow_clients host names that do not resolve
    std::uint64_t reported_drops_ = 0;
    std::uint64_t reported_overload_refused_ = 0;

    std::vector<notify::Revocation> revoked_;  // bulk-read cool-downs in force (persisted in <state>/notify/revoked)
    // The enforcer can take a client machine's access away (fanotify, bpf-lsm): read by the
    // notifier's thread, set once the enforcer is chosen.
    std::atomic<bool> revokes_clients_{false};
    std::vector<notify::Revocation> revoke_requests_;  // from the notifier, applied by apply_revocations()

    // Files put under a zone by the watcher, by inode (persisted in <state>/watch/protected;
    // added to every policy installed, as cool-downs are).
    std::vector<policy::ProtectedFile> protected_files_;
    std::unique_ptr<watch::Watcher> watcher_;
    std::shared_ptr<events::SambaClients> samba_clients_;  // the fanotify enforcer's, when it runs  // null when the kernel cannot watch ([watch] then warns)
    std::string watcher_off_reason_;

    HeldJobs held_jobs_;
    std::unique_ptr<print::PrintGate> print_;  // decides print jobs (CheckPrintJob)
    std::function<void(sd_event*)> loop_hook_;

    struct Loop;
    std::unique_ptr<Loop> loop_;
};

}  // namespace custguard::daemon
