#include "daemon/core/daemon.hpp"
#include "custguard/edm/attach.hpp"
#include "custguard/scan/sandbox.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "custguard/common/atomic_file.hpp"
#include "custguard/common/nss_resolver.hpp"
#include "custguard/common/policy_files.hpp"
#include "custguard/events/record.hpp"
#include "daemon/audit/observer.hpp"
#include "daemon/audit/rules.hpp"
#include "daemon/bpf_lsm/bpf_lsm_enforcer.hpp"
#include "daemon/exec/exec_tracker.hpp"
#include "daemon/fanotify/enforcer_select.hpp"
#include "daemon/fanotify/fanotify_enforcer.hpp"
#include "daemon/fanotify/fd_store.hpp"
#include "daemon/fanotify/proc_iter.hpp"
#include "daemon/print/print_gate.hpp"
#include "custguard/scan/findings.hpp"

namespace custguard::daemon {
namespace fs = std::filesystem;

namespace {

// The exec tracker's pins: beside the BPF-LSM pin directory, not in it (an observe-only or
// fanotify start removes that one whole).
fs::path exec_pin_dir(const fs::path& bpf_pin_dir) {
    fs::path p = bpf_pin_dir;
    p += "-exec";
    return p;
}

// Observe-only: enforces nothing, reports nothing (the audit observer records reads).
class NullEnforcer final : public Enforcer {
public:
    std::string_view name() const override { return "none"; }
    tl::expected<void, std::string> start(EventHandler) override { return {}; }
    tl::expected<void, std::string> apply(const policy::Compiled&) override { return {}; }
    SensorCounters counters() const override { return {}; }
    void stop(bool) override {}
};

// allow_clients host names are resolved again this often (and at every reload).
constexpr std::uint64_t client_host_interval_us = 3600ull * 1'000'000;

std::string digest_of(const policy::LoadInput& input) {
    // FNV-1a 64 over every source: enough to tell "which policy is in force" apart.
    std::uint64_t h = 1469598103934665603ull;
    auto mix = [&](std::string_view s) {
        for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull;
    };
    mix(input.main.text);
    for (const auto& d : input.dropins) mix(d.name), mix(d.text);
    if (input.state) mix(input.state->text);
    char out[17];
    std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
    return out;
}

std::string join_diagnostics(const policy::Diagnostics& diags) {
    std::string out;
    for (const auto& d : diags) out += d.format() + "\n";
    return out;
}


// Resolves the host names of allow_clients and of client grants forward (getaddrinfo:
// /etc/hosts, DNS, as nsswitch.conf says) into ClientMatch::resolved. Never a reverse
// lookup, never at access time. A name that does not resolve matches no client until a
// later resolution; the returned warnings say which.
std::vector<std::string> resolve_client_hosts(policy::Policy& policy) {
    std::vector<std::string> warnings;
    std::map<std::string, std::vector<policy::ClientAddress>> done;
    auto resolve = [&](policy::ClientMatch& client, const std::string& what) {
        if (!client.hostname) return;
        auto it = done.find(*client.hostname);
        if (it == done.end()) {
            std::vector<policy::ClientAddress> addresses;
            addrinfo hints{};
            hints.ai_family = AF_UNSPEC;
            hints.ai_socktype = SOCK_STREAM;
            addrinfo* res = nullptr;
            const int rc = ::getaddrinfo(client.hostname->c_str(), nullptr, &hints, &res);
            for (addrinfo* ai = res; rc == 0 && ai; ai = ai->ai_next) {
                char text[INET6_ADDRSTRLEN] = {};
                const void* src = ai->ai_family == AF_INET
                                      ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr)
                                      : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr);
                if (!::inet_ntop(ai->ai_family, src, text, sizeof text)) continue;
                auto a = policy::parse_client_address(text);
                if (a && std::find(addresses.begin(), addresses.end(), *a) == addresses.end()) addresses.push_back(*a);
            }
            if (res) ::freeaddrinfo(res);
            if (addresses.empty())
                warnings.push_back(what + " host name '" + *client.hostname + "' does not resolve (" +
                                   (rc ? ::gai_strerror(rc) : "no address") +
                                   "); it allows no client until it does (tried again at every reload and "
                                   "every hour)");
            it = done.emplace(*client.hostname, std::move(addresses)).first;
        }
        client.resolved = it->second;
    };
    for (auto& zone : policy.zones)
        for (auto& client : zone.allow_clients) resolve(client, "zone " + zone.name + ": allow_clients");
    for (auto& grant : policy.client_grants) resolve(grant.client, "zone " + grant.zone + ": client grant");
    return warnings;
}

bool same_resolution(const policy::Policy& a, const policy::Policy& b) {
    if (a.zones.size() != b.zones.size() || a.client_grants.size() != b.client_grants.size()) return false;
    for (std::size_t z = 0; z < a.zones.size(); ++z) {
        const auto& x = a.zones[z].allow_clients;
        const auto& y = b.zones[z].allow_clients;
        if (x.size() != y.size()) return false;
        for (std::size_t i = 0; i < x.size(); ++i)
            if (x[i].resolved != y[i].resolved) return false;
    }
    for (std::size_t i = 0; i < a.client_grants.size(); ++i)
        if (a.client_grants[i].client.resolved != b.client_grants[i].client.resolved) return false;
    return true;
}

struct EventDeleter {
    void operator()(sd_event* e) const { sd_event_unref(e); }
};
struct SourceDeleter {
    void operator()(sd_event_source* s) const { sd_event_source_unref(s); }
};

}  // namespace

struct Daemon::Loop {
    std::unique_ptr<sd_event, EventDeleter> event;
    std::vector<std::unique_ptr<sd_event_source, SourceDeleter>> sources;
};

Daemon::Daemon(DaemonOptions options) : options_(std::move(options)) {}

Daemon::~Daemon() {
    if (watcher_) watcher_->stop();  // before what its finds reach: enforcer, pipeline
    print_.reset();  // joins its workers before the pipeline they submit to stops
    if (audit_) audit_->stop(true);
    if (enforcer_) enforcer_->stop(false);
    if (enforcer_ && pipeline_) poll_sensor_losses();  // since the last second's tick
    if (pipeline_) pipeline_->stop();
    if (exec_tracker_) exec_tracker_->stop(false);  // after the pipeline: it enriches from it
    if (notifier_) notifier_->stop();  // after the pipeline: it observes every record
}

tl::expected<policy::Loaded, policy::Diagnostics> Daemon::load(
    const std::optional<policy::State>& state_override, std::string& digest) const {
    auto input = common::read_policy_files(options_.policy, state_dir_, common::now_seconds());
    if (!input)
        return tl::unexpected(policy::Diagnostics{{policy::Severity::error,
                                                   {options_.policy.string(), 0, 0},
                                                   input.error(),
                                                   "check the path and its permissions"}});
    if (state_override)
        input->state = policy::SourceText{(state_dir_ / "state.toml").string(),
                                          policy::serialize_state(*state_override)};
    digest = digest_of(*input);
    return policy::load(*input, common::NssResolver{});
}

tl::expected<std::unique_ptr<Daemon>, std::string> Daemon::create(DaemonOptions options) {
    std::unique_ptr<Daemon> d(new Daemon(std::move(options)));
    if (auto r = d->start(); !r) return tl::unexpected(r.error());
    return d;
}

// Start-up in the order the pieces depend on each other; each step says what it needs.
tl::expected<void, std::string> Daemon::start() {
    started_at_ = common::now_seconds();
    if (auto r = open_state_dir(); !r) return r;
    std::string digest;
    auto loaded = load(std::nullopt, digest);
    if (!loaded) return tl::unexpected("policy refused:\n" + join_diagnostics(loaded.error()));
    for (const auto& w : loaded->warnings) spdlog::warn("{}", w.format());
    if (auto r = load_state(); !r) return r;
    auto enrich = start_pipeline();
    if (!enrich) return tl::unexpected(enrich.error());
    if (auto r = start_notifier(); !r) return r;
    if (auto r = start_print_gate(); !r) return r;
    auto retire = options_.enforcer_factory ? take_enforcer_from_factory()
                                            : create_enforcer(options_.enforcer.value_or(loaded->policy.daemon.enforcer), *enrich);
    if (!retire) return tl::unexpected(retire.error());
    create_audit_observer();
    if (auto r = start_enforcer(loaded->policy); !r) return r;
    start_watcher(*enrich);
    if (auto r = install(std::move(*loaded), digest); !r) return r;
    retire_earlier_enforcement(*retire);
    if (auto r = start_audit_observer(); !r) return r;
    spdlog::info("enforcer {}: {}{}", enforcer_->name(), enforcer_reason_,
                 adopted_ ? " (adopted enforcement left by the previous daemon)" : "");
    return {};
}

tl::expected<void, std::string> Daemon::open_state_dir() {
    // The state directory may be set in the policy itself; learn it from a first read.
    if (options_.state_dir) {
        state_dir_ = *options_.state_dir;
    } else {
        auto input = common::read_policy_files(options_.policy, std::nullopt, started_at_);
        if (!input) return tl::unexpected(input.error());
        auto first = policy::load(*input, common::NssResolver{});
        if (!first) return tl::unexpected("policy refused:\n" + join_diagnostics(first.error()));
        state_dir_ = first->policy.daemon.state_dir;
    }
    std::error_code ec;
    fs::create_directories(state_dir_, ec);
    if (ec) return tl::unexpected(state_dir_.string() + ": cannot create the state directory: " + ec.message());
    return {};
}

tl::expected<void, std::string> Daemon::load_state() {
    auto state_file = state_dir_ / "state.toml";
    if (!fs::exists(state_file)) return {};
    auto text = common::read_file(state_file);
    if (!text) return tl::unexpected(text.error());
    auto parsed = policy::parse_state(state_file.string(), *text);
    if (!parsed) return tl::unexpected("state refused:\n" + join_diagnostics(parsed.error()));
    state_ = std::move(*parsed);
    return {};
}

tl::expected<events::EnrichConfig, std::string> Daemon::start_pipeline() {
    events::PipelineConfig pc;
    pc.state_dir = state_dir_;
    pc.journal = options_.journal;
    if (!options_.journal_namespace.empty())
        pc.journal_socket = events::journal_socket_for_namespace(options_.journal_namespace);
    pc.jsonl_path = options_.jsonl_export;
    if (options_.foreground) pc.console = spdlog::stdout_color_mt("events");
    const events::EnrichConfig enrich_config = pc.enrich;  // the fanotify sensor's Samba lookups use it too
    // Before any enforcer decides: records then name the program that was current at the
    // decision, and allow_programs sees loader injection. Pinned beside the BPF-LSM
    // objects, which read its map; never removed with them.
    if (!options_.exec_tracker) {
        exec_off_reason_ = "off (DaemonOptions::exec_tracker)";
    } else {
        auto tracker = exec::ExecTracker::start({.pin_dir = exec_pin_dir(options_.bpf_pin_dir)});
        if (!tracker) {
            // No bpf filesystem to pin to: run it unpinned (it then lives with this daemon).
            exec_unpinned_reason_ = tracker.error();
            tracker = exec::ExecTracker::start({.pin_dir = {}});
        }
        if (tracker) {
            exec_tracker_ = std::move(*tracker);
            pc.enrich.identities = exec_tracker_;
            if (!exec_unpinned_reason_.empty())
                spdlog::warn("exec tracker not pinned ({}): what it knows starts again with every daemon",
                             exec_unpinned_reason_);
        } else {
            exec_off_reason_ = tracker.error();
            spdlog::warn("exec tracker off: {}; records read the program from /proc after the decision",
                         tracker.error());
        }
    }
    auto pipeline = events::Pipeline::create(std::move(pc));
    if (!pipeline) return tl::unexpected("event pipeline: " + pipeline.error());
    pipeline_ = std::move(*pipeline);
    return enrich_config;
}

tl::expected<void, std::string> Daemon::start_notifier() {
    // Notifications: digests, alerts and bulk-read detection over every committed record.
    notify::NotifierOptions no;
    no.dir = state_dir_ / "notify";
    notify::NotifierHost nh;
    nh.submit = [this](events::Record&& r) { pipeline_->submit(std::move(r)); };
    nh.lost = [this](std::string_view source, std::uint64_t n, std::string_view why) {
        pipeline_->report_lost(source, n, why);
    };
    nh.revoke = [this](const notify::Revocation& r) {
        std::lock_guard lock(mutex_);
        revoke_requests_.push_back(r);
    };
    nh.revokes_clients = [this] { return revokes_clients_.load(std::memory_order_relaxed); };
    // Opens carry no byte count: the size of the file opened stands in for it.
    nh.file_size = [](const std::string& path) -> std::uint64_t {
        struct stat st {};
        return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
    };
    auto n = notify::Notifier::create(std::move(no), std::move(nh));
    if (!n) return tl::unexpected(n.error());
    notifier_ = std::move(*n);
    pipeline_->add_observer([n = notifier_.get()](const events::Record& r) { n->observe(r); });
    pipeline_->add_observer([c = &client_reads_](const events::Record& r) { c->observe(r); });
    load_revocations();
    return {};
}

void Daemon::load_revocations() {
    // Cool-downs survive a restart: "zone<TAB>uid<TAB>until<TAB>user[<TAB>client]" lines
    // (client: a client machine's cool-down); expired ones are dropped.
    auto text = common::read_file(state_dir_ / "notify" / "revoked");
    if (!text) return;
    std::istringstream in(*text);
    std::string line;
    while (std::getline(in, line)) {
        notify::Revocation r;
        std::istringstream f(line);
        std::string uid, until;
        if (std::getline(f, r.zone, '\t') && std::getline(f, uid, '\t') && std::getline(f, until, '\t')) {
            std::getline(f, r.user, '\t');
            std::getline(f, r.client);
            try {
                r.uid = static_cast<std::uint32_t>(std::stoul(uid));
                r.until = std::stoll(until);
            } catch (const std::exception&) {
                continue;
            }
            if (r.until > static_cast<std::int64_t>(started_at_)) revoked_.push_back(std::move(r));
        }
    }
}

tl::expected<void, std::string> Daemon::start_print_gate() {
    // Held print jobs survive restarts: held until an administrator decides, decided once.
    auto problems = held_jobs_.persist(state_dir_ / "print" / "held-jobs",
                                       [](const std::string& m) { spdlog::error("{}", m); });
    if (!problems) return tl::unexpected("held print jobs: " + problems.error());
    for (const auto& p : *problems) spdlog::error("held print jobs: {}", p);
    import_legacy_held_jobs();
    // The print gate: documents are read by the sandboxed helper, as nobody when we
    // are root (the sandbox then needs CAP_SETUID, CAP_SETGID and CAP_SETPCAP; without
    // them every document fails to start and its job is held, never read as root).
    print::GateHost host;
    host.submit = [this](events::Record&& r) { pipeline_->submit(std::move(r)); };
    host.held = &held_jobs_;
    host.report = [](bool warning, const std::string& m) {
        if (warning) spdlog::warn("{}", m);
        else spdlog::info("{}", m);
    };
    print::GateOptions go;
    if (::geteuid() == 0) go.sandbox.uid = go.sandbox.gid = 65534;
    print_ = std::make_unique<print::PrintGate>(std::move(host), std::move(go));
    held_jobs_.set_decision_handler([this](const HeldJob& j, JobDecision d, const std::string&, const std::string&) {
        print_->on_decision(j, d);
    });
    return {};
}

tl::expected<Daemon::Retire, std::string> Daemon::take_enforcer_from_factory() {
    auto e = options_.enforcer_factory();
    if (!e) return tl::unexpected(e.error());
    enforcer_ = std::move(*e);
    enforcer_reason_ = "given by DaemonOptions::enforcer_factory";
    // What a fake claims to withdraw is what the real enforcer of its name can.
    revokes_clients_.store(enforcer_->name() != "none", std::memory_order_relaxed);
    return Retire{};
}

tl::expected<Daemon::Retire, std::string> Daemon::create_enforcer(policy::EnforcerChoice choice,
                                                                  const events::EnrichConfig& enrich_config) {
    auto selection = select_enforcer(choice);
    if (!selection) return tl::unexpected(selection.error());
    enforcer_reason_ = selection->reason;
    Retire retire;
    retire.chosen = selection->chosen;
    switch (selection->chosen) {
    case policy::EnforcerChoice::bpf_lsm:
        enforcer_ = std::make_unique<bpf_lsm::BpfLsmEnforcer>(bpf_lsm::Options{
            options_.bpf_pin_dir, "/proc/self/mountinfo", exec_pin_dir(options_.bpf_pin_dir) / "cg_exec_tasks",
            /*own_reads=*/true});
        // A fanotify group stored by an earlier run keeps enforcing until the BPF policy
        // is in place; it is closed and dropped from the store once it is (retire_earlier_enforcement).
        if (auto listened = take_listened_fds(); listened)
            retire.stale_fanotify = take_named(*listened, fanotify_fd_name);
        // A client machine in its bulk-read cool-down is refused by cg_client_denies.
        revokes_clients_.store(true, std::memory_order_relaxed);
        break;
    case policy::EnforcerChoice::fanotify: {
        FanotifyOptions fo;
        // Samba clients are looked up while smbd waits for the answer (see SambaClients),
        // and an opener's threads for allow_programs: through BPF iterators where the
        // kernel has them, else from /proc.
        events::EnrichConfig clients_config = enrich_config;
        if (auto iter = fan::ProcIter::load()) {
            std::shared_ptr<const fan::ProcIter> proc = std::move(*iter);
            clients_config.held_sockets = [proc](std::uint32_t tgid) { return proc->sockets(tgid); };
            fo.threads = [proc](std::uint32_t tgid) { return proc->threads(tgid); };
        } else {
            spdlog::info("fanotify: an opener's connections and threads are read from /proc ({})", iter.error());
        }
        auto clients = std::make_shared<events::SambaClients>(clients_config);
        samba_clients_ = clients;  // the watcher names an smbd writer's client with it too
        fo.pending_client = [clients](std::uint32_t tgid, std::string_view comm) { return clients->client(tgid, comm); };
        // A flood of refusals costs the workers no /proc reads (the pipeline outlives the enforcer).
        fo.admit_denial = pipeline_->admitter();
        // allow_clients: a process running a Samba program (by comm, or by executable for
        // one that renamed itself) serves remote clients; it must show which.
        fo.remote_clients = [clients, enrich_config](std::uint32_t tgid,
                                                     std::string_view comm) -> std::optional<RemoteClients> {
            if (!events::is_samba_program(enrich_config, comm, {})) {
                std::error_code ec;
                std::string exe = fs::read_symlink("/proc/" + std::to_string(tgid) + "/exe", ec).string();
                // Unreadable: judged as a Samba process whose client is unknown (fail closed).
                if (ec) return RemoteClients{};
                // A program replaced on disk (a package upgrade) while it runs.
                if (exe.ends_with(" (deleted)")) exe.resize(exe.size() - 10);
                if (!events::is_samba_program(enrich_config, {}, exe)) return std::nullopt;
            }
            RemoteClients out;
            for (const auto& text : clients->served(tgid).addresses)
                if (auto a = policy::parse_client_address(text)) out.addresses.push_back(*a);
            return out;
        };
        auto listened = take_listened_fds();
        if (!listened) return tl::unexpected(listened.error());
        if (auto fd = take_named(*listened, fanotify_fd_name)) fo.adopt = std::move(*fd);
        if (exec_tracker_)
            fo.exec_flags = [t = exec_tracker_](std::uint32_t tgid) { return t->task_flags(tgid); };
        auto f = FanotifyEnforcer::create(std::move(fo));
        if (!f) return tl::unexpected("fanotify enforcer: " + f.error());
        enforcer_ = std::move(*f);
        // A client machine in its bulk-read cool-down is refused by the fanotify tables.
        revokes_clients_.store(true, std::memory_order_relaxed);
        break;
    }
    default: {
        enforcer_ = std::make_unique<NullEnforcer>();
        // Observe-only also means: leave nothing enforcing behind from an earlier run.
        remove_bpf_pins();
        if (auto listened = take_listened_fds(); listened)
            (void)take_named(*listened, fanotify_fd_name);  // closed right here
        (void)fd_store_remove(fanotify_fd_name);
        break;
    }
    }
    return retire;
}

void Daemon::create_audit_observer() {
    const bool enforcing = enforcer_->name() != "none";
    if (options_.audit == AuditChoice::off) {
        audit_off_reason_ = "--no-audit";
        return;
    }
    if (options_.audit == AuditChoice::automatic && enforcing) {
        // Beside an enforcer, which sees every open itself, audit only cross-checks it, and
        // its rules tax every system call of the machine and can stall the processes that
        // produce records (custguardd(8) AUDIT has the figures).
        audit_off_reason_ = "not needed beside the enforcer (--audit cross-checks it)";
        return;
    }
    // Without an enforcer audit is the sensor; with one it cross-checks it.
    audit::ObserverOptions ao;
    ao.mode = enforcing ? audit::ObserverMode::cross_check : audit::ObserverMode::observe;
    ao.enforcer_name = std::string(enforcer_->name());
    std::error_code canon_ec;
    const fs::path canon = fs::weakly_canonical(state_dir_, canon_ec);
    ao.instance = audit::instance_tag((canon_ec ? state_dir_ : canon).string());
    audit_instance_ = ao.instance;
    if (auto obs = audit::AuditObserver::create(std::move(ao)); obs) {
        audit_ = std::move(*obs);
    } else {
        audit_off_reason_ = obs.error();
        audit_warnings_.push_back("audit observer off: " + obs.error());
        spdlog::warn("audit observer off: {}", obs.error());
    }
}

tl::expected<void, std::string> Daemon::start_enforcer(const policy::Policy& about_to_apply) {
    EventHandler handler = pipeline_->handler();
    if (audit_)
        handler = [this, submit = std::move(handler)](AccessEvent&& ev) {
            audit_->observe_enforcer_event(ev);
            submit(std::move(ev));
        };
    // Adopted programs decide (and report) before install(): name their zones after the
    // policy about to be applied, which is what a restart normally keeps (regression:
    // records during adoption said zone#1).
    {
        std::vector<std::string> names;
        for (const auto& z : about_to_apply.zones) names.push_back(z.name);
        pipeline_->set_zone_names(std::move(names));
    }
    if (auto r = enforcer_->start(std::move(handler)); !r)
        return tl::unexpected(std::string(enforcer_->name()) + " enforcer: " + r.error());
    if (auto* b = dynamic_cast<bpf_lsm::BpfLsmEnforcer*>(enforcer_.get())) adopted_ = b->adopted();
    if (auto* f = dynamic_cast<FanotifyEnforcer*>(enforcer_.get())) adopted_ = f->adopted();
    return {};
}

void Daemon::start_watcher(const events::EnrichConfig& enrich_config) {
    // [watch]: its own notification group beside the enforcer's; the sandboxed reader
    // runs as nobody when we are root, as the print gate's does.
    load_protected_files();
    watch::WatcherOptions wo;
    if (::geteuid() == 0) wo.sandbox.uid = wo.sandbox.gid = 65534;
    wo.enrich = enrich_config;
    wo.enrich.identities = exec_tracker_;
    wo.samba = samba_clients_ ? samba_clients_ : std::make_shared<events::SambaClients>(enrich_config);
    // The client of an smbd that served a session too short to be looked up while it
    // lived: the exec tracker reads the connection in the fork that made that smbd.
    if (exec_tracker_) exec_tracker_->report_samba_forks(wo.samba);
    watch::WatcherHost wh;
    wh.found = [this](watch::Find&& f) { on_find(std::move(f)); };
    wh.lost = [this](std::string_view source, std::uint64_t n, std::string_view why) {
        pipeline_->report_lost(source, n, why);
    };
    wh.warning = [](const std::string& w) { spdlog::warn("{}", w); };
    if (auto w = watch::Watcher::create(std::move(wo), std::move(wh)))
        watcher_ = std::move(*w);
    else
        watcher_off_reason_ = w.error();
}

void Daemon::retire_earlier_enforcement(Retire& retire) {
    // BPF programs pinned by an earlier bpf-lsm run would go on deciding beside fanotify
    // (with the old policy): they go once fanotify enforces, so there is no gap.
    if (retire.chosen == policy::EnforcerChoice::fanotify) remove_bpf_pins();
    if (retire.stale_fanotify) {
        retire.stale_fanotify.reset();
        (void)fd_store_remove(fanotify_fd_name);
    }
}

tl::expected<void, std::string> Daemon::start_audit_observer() {
    if (!audit_) return {};
    audit::ObserverCallbacks cb;
    cb.record = [this](events::Record&& r) { pipeline_->submit(std::move(r)); };
    cb.lost = [this](std::string_view source, std::uint64_t n, std::string_view reason) {
        pipeline_->report_lost(source, n, reason);
    };
    cb.warning = [](const std::string& w) { spdlog::warn("{}", w); };
    if (auto r = audit_->start(std::move(cb)); !r) return tl::unexpected("audit observer: " + r.error());
    spdlog::info("audit observer: {}", audit_->mode() == audit::ObserverMode::observe
                                           ? "observe-only, records every read of a zone file"
                                           : "cross-checks the enforcer");
    return {};
}

tl::expected<void, std::string> Daemon::install(policy::Loaded loaded, std::string digest) {
    {
        std::lock_guard lock(mutex_);
        // Client machines' cool-downs saved by an enforcing run: an enforcer that cannot
        // withdraw a client's access (none) drops them, said in the log, rather than list them.
        if (!revokes_clients_.load(std::memory_order_relaxed))
            if (const auto n = std::erase_if(revoked_, [](const notify::Revocation& r) { return !r.client.empty(); })) {
                spdlog::warn("{} bulk-read cool-down(s) of client machines dropped: the {} enforcer cannot "
                             "withdraw a client machine's access (fanotify and bpf-lsm can)",
                             n, enforcer_->name());
                save_revocations();
            }
        add_cooldown_denies(loaded.policy, common::now_seconds());
        loaded.policy.protected_files = protected_files_;
    }
    auto host_warnings = resolve_client_hosts(loaded.policy);
    auto compiled = policy::compile(loaded.policy);
    if (auto r = enforcer_->apply(compiled); !r) return tl::unexpected(r.error());
    std::vector<std::string> watch_warnings;
    if (loaded.policy.watch.enabled && !watcher_)
        watch_warnings.push_back("[watch] is off: " + watcher_off_reason_);
    else if (watcher_) {
        auto scope = watch_scope(loaded.policy);
        if (!scope) return tl::unexpected(scope.error());
        auto r = watcher_->apply(std::move(*scope));
        if (!r) return tl::unexpected(r.error());
        watch_warnings = std::move(*r);
    }
    if (auto* b = dynamic_cast<bpf_lsm::BpfLsmEnforcer*>(enforcer_.get());
        loaded.policy.watch.enabled && b && !b->own_reads_error().empty())
        watch_warnings.push_back("[watch] does not recognise exact copies of zone files: the bpf-lsm enforcer cannot "
                                 "let custguardd's own reads of zone files through (" + b->own_reads_error() +
                                 "): finds are judged by their content, and on_customer_data = \"protect\" puts them "
                                 "under protect_as");
    if (loaded.policy.watch.enabled && loaded.policy.watch.on_customer_data == policy::WatchAction::protect &&
        enforcer_->name() == "none")
        watch_warnings.push_back("[watch] on_customer_data = \"protect\" cannot protect files without an enforcer "
                                 "(--enforcer none): finds are recorded and notified only");
    auto notify_warnings = notifier_->apply(loaded.policy);
    std::vector<std::string> audit_warnings = audit_warnings_;
    if (audit_) {
        // Audit is the second sensor: its trouble is a warning, never a refused policy.
        if (auto r = audit_->apply(loaded.policy); r)
            audit_warnings.insert(audit_warnings.end(), r->begin(), r->end());
        else
            audit_warnings.push_back("audit rules not updated: " + r.error());
    }
    std::vector<std::string> names;
    for (const auto& z : loaded.policy.zones) names.push_back(z.name);
    pipeline_->set_zone_names(std::move(names));
    if (auto r = print_->apply(loaded.policy.print, loaded.policy.edm); !r) return tl::unexpected("print gate: " + r.error());
    std::lock_guard lock(mutex_);
    warnings_.clear();
    for (const auto& w : loaded.warnings) warnings_.push_back(w.format());
    for (const auto& w : host_warnings) spdlog::warn("{}", w);
    host_warnings_ = std::move(host_warnings);
    for (auto& w : audit_warnings) warnings_.push_back(std::move(w));
    for (auto& w : notify_warnings) warnings_.push_back(std::move(w));
    for (auto& w : watch_warnings) spdlog::warn("{}", w), warnings_.push_back(std::move(w));
    if (auto* f = dynamic_cast<FanotifyEnforcer*>(enforcer_.get()))
        for (auto& w : f->warnings()) warnings_.push_back(w);
    policy_ = std::move(loaded.policy);
    ++policy_generation_;
    digest_ = std::move(digest);
    loaded_at_ = common::now_seconds();
    return {};
}

ReloadOutcome Daemon::reload(std::string_view trigger) {
    sd_notify(0, "RELOADING=1\nSTATUS=Reloading the policy");
    ReloadOutcome outcome;
    std::string digest;
    auto loaded = load(std::nullopt, digest);
    events::PolicyReload record;
    record.source = options_.policy.string();
    if (loaded) {
        record.zones = static_cast<std::uint32_t>(loaded->policy.zones.size());
        record.warnings = static_cast<std::uint32_t>(loaded->warnings.size());
        record.digest = digest;
        outcome.diagnostics = loaded->warnings;
        if (auto r = install(std::move(*loaded), record.digest); !r) {
            record.accepted = false;
            record.errors = 1;
            record.diagnostics = "enforcer refused the policy: " + r.error();
            outcome.diagnostics.push_back({policy::Severity::error, {options_.policy.string(), 0, 0},
                                           record.diagnostics, "the previous policy stays in force"});
        } else {
            outcome.accepted = true;
            print_->check_cups(false);  // queues may have changed; retry jobs held while we were away
        }
    } else {
        record.accepted = false;
        outcome.diagnostics = loaded.error();
        for (const auto& d : loaded.error()) {
            if (d.severity == policy::Severity::error) ++record.errors;
            else ++record.warnings;
        }
        record.diagnostics = join_diagnostics(loaded.error());
    }
    {
        std::lock_guard lock(mutex_);
        ++(outcome.accepted ? reloads_ : reload_failures_);
    }
    auto rec = events::make_policy_reload_record(record);
    rec.set("CUSTGUARD_TRIGGER", trigger);
    pipeline_->submit(std::move(rec));
    if (outcome.accepted)
        spdlog::info("policy reloaded ({}): {} zones", trigger, record.zones);
    else
        spdlog::error("policy reload ({}) refused; the running policy stays in force:\n{}", trigger,
                      join_diagnostics(outcome.diagnostics));
    sd_notifyf(0, "READY=1\nSTATUS=Enforcing with %s", std::string(enforcer_->name()).c_str());
    return outcome;
}

tl::expected<void, policy::Diagnostics> Daemon::update_state(const policy::State& next) {
    std::string digest;
    auto loaded = load(next, digest);
    if (!loaded) return tl::unexpected(loaded.error());
    {
        // The loader only warns about state entries it ignores (a state file must never
        // stop the daemon); a change that adds such an entry is refused instead.
        auto state_name = (state_dir_ / "state.toml").string();
        std::lock_guard lock(mutex_);
        policy::Diagnostics ignored;
        for (const auto& w : loaded->warnings)
            if (w.pos.file == state_name &&
                std::find(warnings_.begin(), warnings_.end(), w.format()) == warnings_.end())
                ignored.push_back(w);
        if (!ignored.empty()) return tl::unexpected(std::move(ignored));
    }
    auto path = state_dir_ / "state.toml";
    if (auto w = common::write_file_atomically(path, policy::serialize_state(next)); !w)
        return tl::unexpected(policy::Diagnostics{{policy::Severity::error, {path.string(), 0, 0},
                                                   w.error(), "check the state directory"}});
    if (auto r = install(std::move(*loaded), digest); !r)
        return tl::unexpected(policy::Diagnostics{{policy::Severity::error, {path.string(), 0, 0},
                                                   r.error(), "the enforcer refused the new tables"}});
    std::lock_guard lock(mutex_);
    state_ = next;
    return {};
}

std::size_t Daemon::prune_expired_grants(std::uint64_t now) {
    auto state = current_state();
    std::vector<policy::StateGrant> expired;
    std::erase_if(state.grants, [&](const policy::StateGrant& g) {
        if (g.expires_at > now) return false;
        expired.push_back(g);
        return true;
    });
    if (expired.empty()) return 0;
    if (auto r = update_state(state); !r) {
        spdlog::error("cannot remove expired grants from the state:\n{}", join_diagnostics(r.error()));
        return 0;
    }
    for (const auto& g : expired) {
        // A client grant is named "client ADDRESS" (its target ZONE:client:ADDRESS).
        const bool client = !g.client.empty();
        const std::string who = client ? "client " + g.client : g.user;
        auto rec = events::make_admin_change_record(
            "custguardd", static_cast<std::uint32_t>(::geteuid()), "grant.expire",
            g.zone + ":" + (client ? "client:" + g.client : g.user),
            "grant for " + who + " in zone " + g.zone + " expired (reason was: " + g.reason + ")");
        rec.set(events::field::zone, g.zone);
        if (client) rec.set(events::field::client, g.client);
        rec.set("CUSTGUARD_BEFORE", "grant " + g.zone + " " + who + " until " + std::to_string(g.expires_at));
        rec.set("CUSTGUARD_AFTER", "none");
        pipeline_->submit(std::move(rec));
    }
    return expired.size();
}

void Daemon::refresh_client_hosts() {
    policy::Policy next;
    std::string digest;
    {
        std::lock_guard lock(mutex_);
        const bool any = std::any_of(policy_.zones.begin(), policy_.zones.end(),
                                     [](const policy::Zone& z) {
                                         return std::any_of(z.allow_clients.begin(), z.allow_clients.end(),
                                                            [](const policy::ClientMatch& c) { return c.hostname.has_value(); });
                                     }) ||
                         std::any_of(policy_.client_grants.begin(), policy_.client_grants.end(),
                                     [](const policy::ClientGrant& g) { return g.client.hostname.has_value(); });
        if (!any) return;
        next = policy_;
        digest = digest_;
    }
    auto warnings = resolve_client_hosts(next);
    policy::Compiled compiled;
    {
        std::lock_guard lock(mutex_);
        // A reload or state change meanwhile installed (and resolved) a newer policy: a
        // grant added or revoked since must not be undone here.
        if (digest != digest_) return;
        host_warnings_ = warnings;
        if (same_resolution(next, policy_)) return;
        for (std::size_t z = 0; z < policy_.zones.size() && z < next.zones.size(); ++z)
            policy_.zones[z].allow_clients = next.zones[z].allow_clients;
        policy_.client_grants = next.client_grants;
        ++policy_generation_;
        compiled = policy::compile(policy_);
    }
    if (auto r = enforcer_->apply(compiled); !r)
        spdlog::error("allow_clients host names resolved anew, not applied: {}", r.error());
    else
        spdlog::info("allow_clients host names resolved to new addresses; applied");
}

void Daemon::add_cooldown_denies(policy::Policy& policy, std::uint64_t now) const {
    policy.denies.clear();
    policy.client_denies.clear();
    for (const auto& r : revoked_) {
        if (r.until <= static_cast<std::int64_t>(now)) continue;
        if (r.client.empty())
            policy.denies.push_back({r.zone, r.uid, static_cast<std::uint64_t>(r.until)});
        else if (auto a = policy::parse_client_address(r.client))
            policy.client_denies.push_back({r.zone, *a, static_cast<std::uint64_t>(r.until)});
    }
}

tl::expected<watch::WatchScope, std::string> Daemon::watch_scope(const policy::Policy& p) const {
    watch::WatchScope s;
    s.watch = p.watch;
    for (const auto& z : p.zones) {
        s.zones.emplace_back(z.name, z.sensitivity);
        for (const auto& path : z.paths) s.zone_roots.emplace_back(path.path, z.name);
    }
    for (const auto& f : p.protected_files) s.protected_files.emplace_back(f.dev, f.ino);
    // Unset [watch] detectors and threshold: the [print] ones.
    s.detectors = p.watch.detectors.empty() ? p.print.detectors : p.watch.detectors;
    if (s.detectors.empty())
        for (auto d : scan::all_detectors()) s.detectors.emplace_back(scan::to_string(d));
    s.threshold = p.watch.threshold.value_or(p.print.threshold);
    auto cfg = scan::ScannerConfig::from_names(s.detectors, p.print.keywords, p.print.keyword_proximity);
    if (!cfg) return tl::unexpected("[watch] detectors/keywords: " + cfg.error());
    if (auto attached = custguard::edm::attach_edm_matchers(*cfg, p.edm, "[watch]"); !attached) return tl::unexpected(attached.error());
    if (p.watch.enabled && scan::platform_supported())
        if (auto prepared = scan::prepare_sandboxed(*cfg); !prepared)
            return tl::unexpected("[watch] cannot prepare the content scanner: " + prepared.error());
    s.scanner = std::move(*cfg);
    s.scan_timeout = std::chrono::seconds(p.print.scan_timeout_seconds);
    s.scan_memory = std::uint64_t{p.print.scan_memory_mb} << 20;
    auto* bpf = dynamic_cast<bpf_lsm::BpfLsmEnforcer*>(enforcer_.get());
    s.recognise_copies = !bpf || bpf->own_reads_error().empty();
    return s;
}

namespace {
// Bounds on the protected-file list: every protect adds a line, and the list is read at
// every start, so neither may grow without limit.
constexpr std::size_t k_max_protected_files = 100'000;
constexpr std::uintmax_t k_max_protected_bytes = 64u << 20;
}  // namespace

void Daemon::load_protected_files() {
    const auto file = state_dir_ / "watch" / "protected";
    std::error_code ec;
    const auto size = fs::file_size(file, ec);
    if (ec) return;  // none yet
    if (size > k_max_protected_bytes) {
        spdlog::error("watch: {} is {} bytes, more than {}: its files are not protected; shorten it "
                      "(one line a file: zone, device, inode, path) and restart",
                      file.string(), size, k_max_protected_bytes);
        return;
    }
    auto text = common::read_file(file);
    if (!text) return;
    std::istringstream in(*text);
    for (std::string line; std::getline(in, line);) {
        // zone \t st_dev \t ino \t path; the path is last and keeps any further tab.
        constexpr auto none = std::string::npos;
        const auto t1 = line.find('\t');
        const auto t2 = t1 == none ? none : line.find('\t', t1 + 1);
        const auto t3 = t2 == none ? none : line.find('\t', t2 + 1);
        if (t3 == none) {
            spdlog::warn("watch: malformed line in {}: {}", file.string(), line);
            continue;
        }
        remember_protected({line.substr(0, t1), std::strtoull(line.c_str() + t1 + 1, nullptr, 10),
                            std::strtoull(line.c_str() + t2 + 1, nullptr, 10), line.substr(t3 + 1)});
        if (protected_files_.size() >= k_max_protected_files) {
            spdlog::error("watch: {} lists more than {} files; the rest are not protected", file.string(),
                          k_max_protected_files);
            break;
        }
    }
}

bool Daemon::remember_protected(policy::ProtectedFile f) {
    // One entry an inode: a file found again (rewritten, or copied once more) moves to
    // the zone of its latest find.
    for (auto& p : protected_files_)
        if (p.dev == f.dev && p.ino == f.ino) {
            p = std::move(f);
            return true;
        }
    if (protected_files_.size() >= k_max_protected_files) return false;
    protected_files_.push_back(std::move(f));
    return true;
}

void Daemon::save_protected_files() const {
    std::string text;
    for (const auto& f : protected_files_)
        text += f.zone + "\t" + std::to_string(f.dev) + "\t" + std::to_string(f.ino) + "\t" + f.path + "\n";
    std::error_code ec;
    fs::create_directories(state_dir_ / "watch", ec);
    if (auto w = common::write_file_atomically(state_dir_ / "watch" / "protected", text); !w)
        spdlog::error("watch: protected files not saved: {}", w.error());
}

void Daemon::on_find(watch::Find&& find) {
    auto& f = find.found;
    policy::WatchAction action = policy::WatchAction::record;
    std::string protect_zone;
    std::string detail = !find.unreadable.empty() ? "content not scanned: " + find.unreadable
                         : !find.customer_data ? "an exact copy of zone data, although below the threshold"
                                               : std::string();
    std::optional<policy::Compiled> compiled;
    {
        std::lock_guard lock(mutex_);
        action = policy_.watch.on_customer_data;
        if (action == policy::WatchAction::protect) {
            // An exact copy joins the zone it was copied from; other finds protect_as.
            protect_zone = !f.copy_of.empty() ? f.copy_of : policy_.watch.protect_as;
            if (protect_zone.empty()) detail += std::string(detail.empty() ? "" : "; ") + "no protect_as: a find that is no copy is not protected";
            else if (enforcer_->name() == "none") detail += std::string(detail.empty() ? "" : "; ") + "no enforcer: not protected", protect_zone.clear();
        }
        if (!protect_zone.empty()) {
            // Path kept without tabs or newlines: one line a file in the state file.
            std::string path = f.path;
            std::replace_if(path.begin(), path.end(), [](char c) { return c == '\t' || c == '\n'; }, '?');
            if (remember_protected({protect_zone, f.dev, f.ino, path})) {
                save_protected_files();
                policy_.protected_files = protected_files_;
                ++policy_generation_;
                compiled = policy::compile(policy_);
            } else {
                detail += std::string(detail.empty() ? "" : "; ") + "not protected: " +
                          std::to_string(k_max_protected_files) +
                          " files are protected already; make their folders zones (custguardctl discover)";
                protect_zone.clear();
            }
        }
    }
    if (compiled) {
        if (auto r = enforcer_->apply(*compiled); !r) {
            spdlog::error("watch: {} not protected: {}", f.path, r.error());
            detail = "protection failed: " + r.error();
            protect_zone.clear();
        } else {
            watcher_->protected_file(f.dev, f.ino);
        }
    }
    if (!protect_zone.empty()) {
        f.action = "protected";
        f.zone = protect_zone;
    } else {
        f.action = action == policy::WatchAction::record ? "recorded" : "notified";
    }
    pipeline_->submit(events::make_customer_data_found_record(f, detail));
}

void Daemon::import_legacy_held_jobs() {
    const fs::path legacy = state_dir_ / "print" / "held.toml";
    std::error_code ec;
    if (!fs::exists(legacy, ec)) return;
    auto text = read_held_file(legacy);  // bounded: parse_legacy_held_toml refuses one over it
    auto jobs = text ? parse_legacy_held_toml(*text) : tl::unexpected(text.error());
    if (!jobs) {
        // Left in place: its jobs stay held in CUPS; an admin can still decide them there.
        spdlog::error("held print jobs: {}: {}; not imported (fix it, or decide its jobs in CUPS and remove it)",
                      legacy.string(), jobs.error());
        return;
    }
    std::size_t imported = 0;
    for (auto& j : *jobs) imported += held_jobs_.hold(std::move(j));
    const fs::path done = fs::path(legacy).concat(".imported");
    fs::rename(legacy, done, ec);
    spdlog::info("held print jobs: {} of {} imported from {} (an earlier custguard's file){}", imported,
                 jobs->size(), legacy.string(), ec ? "; cannot rename it: " + ec.message() : "; renamed to " + done.string());
}

void Daemon::remove_bpf_pins() const {
    if (!fs::exists(options_.bpf_pin_dir)) return;
    bpf_lsm::BpfLsmEnforcer old(bpf_lsm::Options{options_.bpf_pin_dir, "/proc/self/mountinfo"});
    if (old.start([](AccessEvent&&) {})) old.stop(true);
    std::error_code ec;
    fs::remove_all(options_.bpf_pin_dir, ec);
    if (ec) spdlog::warn("pinned BPF objects in {} not removed: {}", options_.bpf_pin_dir.string(), ec.message());
}

void Daemon::save_revocations() const {
    std::string text;
    for (const auto& r : revoked_)
        text += r.zone + "\t" + std::to_string(r.uid) + "\t" + std::to_string(r.until) + "\t" + r.user +
                (r.client.empty() ? "" : "\t" + r.client) + "\n";
    if (auto w = common::write_file_atomically(state_dir_ / "notify" / "revoked", text); !w)
        spdlog::error("bulk-read cool-downs not saved: {}", w.error());
}

void Daemon::apply_revocations(std::uint64_t now) {
    std::vector<notify::Revocation> lifted, added;
    policy::Compiled compiled;
    std::optional<policy::Policy> observed;  // for the audit observer's decisions
    {
        std::lock_guard lock(mutex_);
        for (auto& r : revoke_requests_) {
            // One cool-down per (zone, user) and per (zone, client machine).
            std::erase_if(revoked_, [&](const notify::Revocation& o) {
                return o.zone == r.zone && o.client == r.client && (!r.client.empty() || o.uid == r.uid);
            });
            revoked_.push_back(r);
            added.push_back(r);
        }
        revoke_requests_.clear();
        std::erase_if(revoked_, [&](const notify::Revocation& r) {
            if (r.until > static_cast<std::int64_t>(now)) return false;
            lifted.push_back(r);
            return true;
        });
        if (added.empty() && lifted.empty()) return;
        add_cooldown_denies(policy_, now);
        ++policy_generation_;
        compiled = policy::compile(policy_);
        if (audit_) observed = policy_;
        save_revocations();
    }
    if (auto r = enforcer_->apply(compiled); !r) spdlog::error("bulk-read cool-down not applied: {}", r.error());
    if (observed)
        if (auto r = audit_->apply(*observed); !r) spdlog::warn("audit observer: cool-downs not updated: {}", r.error());
    auto record = [&](const notify::Revocation& r, bool lift) {
        const std::string target = r.zone + ":" + (!r.client.empty() ? "client " + r.client
                                                   : r.user.empty()    ? std::to_string(r.uid)
                                                                       : r.user);
        auto rec = events::make_admin_change_record(
            "custguardd", static_cast<std::uint32_t>(::geteuid()), lift ? "bulk.revoke.expire" : "bulk.revoke", target,
            lift ? "bulk-read cool-down ended: access to zone " + r.zone + " restored for " + target
                 : "bulk-read cool-down: access to zone " + r.zone + " revoked for " + target + " until " + std::to_string(r.until));
        rec.set(events::field::zone, r.zone);
        if (r.client.empty()) rec.set(events::field::uid, r.uid);
        else rec.set(events::field::client, r.client);
        rec.set("CUSTGUARD_UNTIL", static_cast<std::uint64_t>(r.until));
        pipeline_->submit(std::move(rec));
        spdlog::info("{}", lift ? "bulk-read cool-down ended for " + target : "bulk-read cool-down started for " + target);
    };
    for (const auto& r : added) record(r, false);
    for (const auto& r : lifted) record(r, true);
}

Status Daemon::status() const {
    Status s;
    s.version = CUSTGUARD_VERSION;
    s.enforcer = std::string(enforcer_->name());
    s.enforcer_reason = enforcer_reason_;
    s.adopted = adopted_;
    s.policy_path = options_.policy.string();
    s.sensor = enforcer_->counters();
    s.pipeline = pipeline_->counters();
    s.started_at = started_at_;
    std::lock_guard lock(mutex_);
    s.policy_digest = digest_;
    s.policy_loaded_at = loaded_at_;
    s.reloads = reloads_;
    s.reload_failures = reload_failures_;
    s.warnings = warnings_;
    s.warnings.insert(s.warnings.end(), host_warnings_.begin(), host_warnings_.end());
    if (exec_tracker_ && !exec_unpinned_reason_.empty())
        s.warnings.push_back("exec tracker not pinned (" + exec_unpinned_reason_ +
                             "): what it saw at exec is lost with each restart, and programs started "
                             "before are judged from /proc; mount a bpf filesystem on /sys/fs/bpf");
    if (!exec_off_reason_.empty())
        s.warnings.push_back("exec tracker off (" + exec_off_reason_ +
                             "): records read program, command line and parent from /proc after the decision; "
                             "allow_programs under fanotify reads loader variables from /proc/PID/environ, which "
                             "the process can rewrite");
    for (auto& w : print_->warnings()) s.warnings.push_back(std::move(w));
    s.unprotected_queues = print_->unprotected_queues();
    s.notify = notifier_->counters();
    s.revoked = revoked_;
    {
        // Local midnight of today: the counts start there, or at the start if that is later.
        const auto now = std::chrono::system_clock::now();
        const time_t t = std::chrono::system_clock::to_time_t(now);
        struct tm tm {};
        ::localtime_r(&t, &tm);
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        tm.tm_isdst = -1;
        const time_t midnight = ::mktime(&tm);
        s.client_reads_since = std::max<std::uint64_t>(static_cast<std::uint64_t>(midnight), started_at_);
        s.client_reads = client_reads_.today(
            std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count());
    }
    if (audit_) {
        s.audit_mode = audit_->mode() == audit::ObserverMode::observe ? "observe" : "cross-check";
        s.audit_instance = audit_instance_;
        s.audit = audit_->counters();
    } else {
        s.audit_mode = "off";
        s.audit_off_reason = audit_off_reason_;
    }
    return s;
}

policy::Policy Daemon::current_policy() const {
    std::lock_guard lock(mutex_);
    return policy_;
}

std::uint64_t Daemon::policy_generation() const {
    std::lock_guard lock(mutex_);
    return policy_generation_;
}

policy::State Daemon::current_state() const {
    std::lock_guard lock(mutex_);
    return state_;
}

void Daemon::poll_sensor_losses() {
    const auto c = enforcer_->counters();
    if (c.dropped > reported_drops_) {
        pipeline_->report_lost(enforcer_->name(), c.dropped - reported_drops_, "sensor queue or ring buffer full");
        reported_drops_ = c.dropped;
    }
    // Opens the fanotify enforcer refused while it was behind (answered without a decision:
    // no access record each). Counted, once a second, so that the journal says so; one
    // record per refusal would add load just when the enforcer is behind.
    if (c.overload_refused > reported_overload_refused_) {
        pipeline_->report_lost(std::string(enforcer_->name()) + "-overload",
                               c.overload_refused - reported_overload_refused_,
                               "opens of zone files (and of files it could not place) refused unrecorded while the "
                               "enforcer was behind");
        reported_overload_refused_ = c.overload_refused;
    }
}

void Daemon::request_stop() {
    if (loop_ && loop_->event) sd_event_exit(loop_->event.get(), 0);
}

int Daemon::run() {
    loop_ = std::make_unique<Loop>();
    sd_event* raw = nullptr;
    if (sd_event_new(&raw) < 0) {
        spdlog::critical("cannot create the event loop");
        return 1;
    }
    loop_->event.reset(raw);
    auto add_signal = [&](int sig, sd_event_signal_handler_t handler) {
        sd_event_source* src = nullptr;
        if (sd_event_add_signal(raw, &src, sig, handler, this) >= 0) loop_->sources.emplace_back(src);
    };
    add_signal(SIGTERM, [](sd_event_source*, const signalfd_siginfo*, void* self) {
        static_cast<Daemon*>(self)->request_stop();
        return 0;
    });
    add_signal(SIGINT, [](sd_event_source*, const signalfd_siginfo*, void* self) {
        static_cast<Daemon*>(self)->request_stop();
        return 0;
    });
    add_signal(SIGHUP, [](sd_event_source*, const signalfd_siginfo*, void* self) {
        auto* d = static_cast<Daemon*>(self);
        d->reload("SIGHUP");
        // SIGHUP is also logrotate's signal: reopen the JSON-lines export.
        if (auto r = d->pipeline().reopen_export(); !r) spdlog::error("--export: {}", r.error());
        return 0;
    });
    sd_event_source* timer = nullptr;
    if (sd_event_add_time_relative(
            raw, &timer, CLOCK_MONOTONIC, 1'000'000, 100'000,
            [](sd_event_source* s, std::uint64_t, void* self) {
                static_cast<Daemon*>(self)->poll_sensor_losses();
                static_cast<Daemon*>(self)->prune_expired_grants(common::now_seconds());
                static_cast<Daemon*>(self)->apply_revocations(common::now_seconds());
                std::uint64_t now = 0;
                sd_event_now(sd_event_source_get_event(s), CLOCK_MONOTONIC, &now);
                sd_event_source_set_time(s, now + 1'000'000);
                sd_event_source_set_enabled(s, SD_EVENT_ON);
                return 0;
            },
            this) >= 0)
        loop_->sources.emplace_back(timer);
    sd_event_source* hosts = nullptr;
    if (sd_event_add_time_relative(
            raw, &hosts, CLOCK_MONOTONIC, client_host_interval_us, 1'000'000,
            [](sd_event_source* s, std::uint64_t, void* self) {
                static_cast<Daemon*>(self)->refresh_client_hosts();
                std::uint64_t now = 0;
                sd_event_now(sd_event_source_get_event(s), CLOCK_MONOTONIC, &now);
                sd_event_source_set_time(s, now + client_host_interval_us);
                sd_event_source_set_enabled(s, SD_EVENT_ON);
                return 0;
            },
            this) >= 0)
        loop_->sources.emplace_back(hosts);
    sd_event_set_watchdog(raw, 1);  // pings WATCHDOG=1 when the unit sets WatchdogSec=
    if (loop_hook_) loop_hook_(raw);
    // Now that CheckPrintJob can be answered: check the CUPS queues, finish decisions on
    // held jobs written before a crash, and let jobs the backend held while we were away
    // (and not in the held-jobs store) be decided again.
    print_->check_cups(true);

    sd_notifyf(0, "READY=1\nSTATUS=Enforcing with %s", std::string(enforcer_->name()).c_str());
    int r = sd_event_loop(raw);
    print_->stop();  // a scan in progress must not delay the exit
    if (watcher_) watcher_->stop();
    sd_notify(0, "STOPPING=1");
    spdlog::info("stopping; enforcement stays in place for the next daemon");
    if (audit_) audit_->stop(true);  // clean shutdown: our audit rules go
    enforcer_->stop(false);
    poll_sensor_losses();  // since the last second's tick
    pipeline_->stop();
    if (exec_tracker_) exec_tracker_->stop(false);
    notifier_->stop();
    return r < 0 ? 1 : 0;
}

}  // namespace custguard::daemon
