#include "daemon/audit/observer.hpp"
#include "custguard/common/clock.hpp"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <fstream>
#include <limits>
#include <mutex>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "custguard/policy/evaluate.hpp"
#include "daemon/audit/access.hpp"
#include "daemon/audit/assembler.hpp"
#include "daemon/audit/cross_check.hpp"
#include "daemon/audit/netlink.hpp"
#include "daemon/audit/rules.hpp"

namespace custguard::audit {
namespace {

using common::clock_ns;

std::uint32_t to_cg_decision(policy::Action a) {
    switch (a) {
    case policy::Action::allow: return CG_DECISION_ALLOW;
    case policy::Action::audit: return CG_DECISION_AUDIT;
    default: return CG_DECISION_DENY;
    }
}

std::uint32_t to_cg_rule(policy::Rule r) {
    switch (r) {
    case policy::Rule::outside_zones: return CG_RULE_OUTSIDE;
    case policy::Rule::allowed_user: return CG_RULE_USER;
    case policy::Rule::allowed_group: return CG_RULE_GROUP;
    case policy::Rule::grant: return CG_RULE_GRANT;
    case policy::Rule::not_allowed: return CG_RULE_NOT_ALLOWED;
    case policy::Rule::program_not_allowed: return CG_RULE_PROGRAM;
    case policy::Rule::revoked: return CG_RULE_REVOKED;
    case policy::Rule::program_tampered: return CG_RULE_PROGRAM_TAMPERED;
    case policy::Rule::program_traced: return CG_RULE_PROGRAM_TRACED;
    case policy::Rule::client_not_allowed: return CG_RULE_CLIENT_NOT_ALLOWED;
    }
    return CG_RULE_NOT_ALLOWED;
}

// Supplementary groups of a live process; nullopt when it is gone. Audit records carry
// only fsgid, the policy's %groups need the rest.
std::optional<std::vector<std::uint32_t>> read_groups(std::uint32_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    if (!in) return std::nullopt;
    std::string line;
    while (std::getline(in, line)) {
        if (!line.starts_with("Groups:")) continue;
        std::vector<std::uint32_t> out;
        std::istringstream ss(line.substr(7));
        std::uint32_t g = 0;
        while (ss >> g) out.push_back(g);
        return out;
    }
    return std::nullopt;
}

std::optional<std::string> read_fd_path(std::uint32_t pid, int fd) {
    char buf[4096];
    std::string link = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
    ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
    if (n <= 0 || buf[0] != '/') return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
}

bool zone_has_groups(const policy::Zone& z) {
    return std::any_of(z.allow_users.begin(), z.allow_users.end(),
                       [](const policy::Principal& p) { return p.kind == policy::Principal::Kind::group; });
}

std::string stamp_text(const Stamp& s) { return fmt::format("{}.{:03}:{}", s.sec, s.msec, s.serial); }

struct Snapshot {
    policy::Policy policy;
    policy::Evaluator evaluator;
    std::vector<std::string> zone_names;
    explicit Snapshot(const policy::Policy& p) : policy(p), evaluator(policy) {
        for (const auto& z : policy.zones) zone_names.push_back(z.name);
    }
};

}  // namespace

struct AuditObserver::Impl {
    ObserverOptions options;
    ObserverCallbacks callbacks;
    std::mutex control_mutex;  // the control socket: apply() and the status poll
    std::optional<AuditControl> control;
    std::optional<MulticastReader> reader;
    Fd stop_fd;
    std::thread thread;
    std::atomic<bool> stopping{false};
    bool started = false;
    bool stopped = false;
    bool enabled_by_us = false;
    std::uint32_t backlog_limit_before = 0;  // non-zero: we raised the limit from this
    std::uint32_t last_lost = 0;
    const std::uint32_t self_pid = static_cast<std::uint32_t>(::getpid());

    mutable std::mutex snap_mutex;
    std::shared_ptr<const Snapshot> snap;

    std::mutex cc_mutex;
    CrossCheck cross;

    mutable std::mutex stats_mutex;
    ObserverCounters stats;

    // Reader-thread state.
    std::vector<Event> ready;
    Assembler assembler{[this](Event&& e) { ready.push_back(std::move(e)); }};
    std::optional<events::Enricher> enricher;
    std::uint64_t overruns = 0, reported_overruns = 0;

    std::shared_ptr<const Snapshot> snapshot() const {
        std::lock_guard lock(snap_mutex);
        return snap;
    }

    void bump(std::uint64_t ObserverCounters::*field, std::uint64_t n = 1) {
        std::lock_guard lock(stats_mutex);
        stats.*field += n;
    }

    void warn(const std::string& text) {
        if (callbacks.warning) callbacks.warning(text);
    }

    void poll_status() {
        std::lock_guard lock(control_mutex);
        if (!control) return;
        auto st = control->status();
        if (!st) {
            warn("audit: " + st.error());
            return;
        }
        if (st->enabled == 0 && options.keep_enabled) {
            // auditd turns audit off when it exits; our rules would then see nothing.
            if (auto r = control->set_enabled(true); r) {
                bump(&ObserverCounters::reenabled);
                warn("audit was turned off (auditd exiting?); custguardd turned it on again");
            } else {
                warn("audit is off and cannot be turned on: " + r.error());
            }
        }
        if (st->lost > last_lost) {
            std::uint64_t delta = st->lost - last_lost;
            bump(&ObserverCounters::kernel_lost, delta);
            if (callbacks.lost)
                callbacks.lost("audit-kernel", delta,
                               st->pid == 0 ? "the kernel's audit lost counter rose (backlog or rate limit; without "
                                              "auditd this also counts records only auditd missed)"
                                            : "the kernel's audit lost counter rose (backlog or rate limit)");
        }
        last_lost = st->lost;
    }

    void submit(events::Record&& r) {
        if (callbacks.record) callbacks.record(std::move(r));
    }

    void handle(const Event& e, std::int64_t mono_now, std::int64_t real_now) {
        auto acc = extract_access(e);
        if (!acc) return;
        auto zone_key = acc->zone_key(options.instance);
        if (!zone_key) return;
        // A shared root's reads are zone reads only once their path names a zone (below).
        const bool shared = *zone_key == shared_root_zone;
        if (!shared) bump(&ObserverCounters::accesses);
        int flags_arg = -1;
        const PathItem* target = acc->target();
        const bool denied = !acc->success && acc->exit == -EPERM;
        if (classify_syscall(acc->arch, acc->syscall, &flags_arg) != OpenKind::open || acc->pid == self_pid ||
            !target || (!acc->success && !denied) || ((target->mode & S_IFMT) != 0 && !S_ISREG(target->mode))) {
            // getxattr & co. (the read class of a watch), our own opens, failed opens,
            // directory listings (enforcers decide opens of files, not of directories).
            bump(&ObserverCounters::ignored);
            return;
        }
        auto s = snapshot();
        if (!s) return;
        int dirfd = -1;
        auto path = acc->target_path(&dirfd);
        if (!path && dirfd >= 0 && target->name)
            if (auto dir = read_fd_path(acc->pid, dirfd)) path = normalize_path(*dir + "/" + *target->name);

        // The zone: the kernel matched our watch on the inode, so the rule's key names it.
        // The record's path is the name the reader gave, in its own mount namespace: it
        // confirms the zone where it resolves here (through a symlink too), and where it
        // names no zone of ours (a bind or overlay mount elsewhere) the key still decides.
        // A key naming no zone of ours is a stale rule; a shared root's key (shared_root_zone)
        // names none either: its events outside every zone's path are filtered out here.
        const policy::Zone* zone = nullptr;
        std::string eval_path;
        if (path) {
            zone = s->evaluator.zone_of(*path);
            if (!zone) {
                char real[PATH_MAX];
                if (::realpath(path->c_str(), real)) {
                    zone = s->evaluator.zone_of(real);
                    if (zone) path = std::string(real);
                }
            }
            if (zone) eval_path = *path;
        }
        if (!zone) {
            zone = s->policy.find_zone(*zone_key);
            if (!zone || zone->paths.empty()) {
                bump(&ObserverCounters::ignored);
                return;
            }
            eval_path = zone->paths.front().path;
        }
        if (shared) bump(&ObserverCounters::accesses);
        std::vector<std::uint32_t> gids{acc->fsgid};
        bool groups_known = true;
        if (zone_has_groups(*zone)) {
            auto g = read_groups(acc->pid);
            groups_known = g.has_value();
            if (g) gids.insert(gids.end(), g->begin(), g->end());
        }
        policy::AccessRequest req;
        req.path = eval_path;
        req.uid = acc->fsuid;
        req.gids = gids;
        req.exe = acc->exe;
        req.now = acc->stamp.sec;
        auto decision = s->evaluator.evaluate(req);
        if (!decision.zone) decision.zone = zone;
        const bool certain = groups_known || decision.action == policy::Action::allow;
        const std::string shown_path = path.value_or(target->name.value_or("?"));

        if (options.mode == ObserverMode::cross_check) {
            if (!decision.record) return;
            if (!certain) {
                bump(&ObserverCounters::unverifiable);
                return;
            }
            AuditSighting a;
            a.tgid = acc->pid;
            a.dev = target->dev;
            a.ino = target->inode;
            a.realtime_ns = acc->stamp.realtime_ns();
            a.auid = acc->auid;
            a.path = shown_path;
            a.zone = decision.zone->name;
            a.comm = acc->comm;
            a.uid = acc->fsuid;
            a.event_id = stamp_text(acc->stamp);
            std::lock_guard lock(cc_mutex);
            cross.audit_seen(std::move(a), mono_now);
            return;
        }

        // Observe-only: the read happened; record what the policy says about it.
        if (denied || !decision.record) return;
        daemon::AccessEvent ev;
        ev.sensor = daemon::Sensor::audit;
        ev.realtime_ns = acc->stamp.realtime_ns();
        cg_event& raw = ev.raw;
        raw.abi_version = CG_ABI_VERSION;
        raw.kind = CG_EV_OPEN;
        raw.ts_ns = static_cast<std::uint64_t>(std::max<std::int64_t>(0, mono_now - (real_now - ev.realtime_ns)));
        raw.pid = acc->pid;
        raw.tgid = acc->pid;
        raw.uid = acc->fsuid;
        raw.gid = acc->fsgid;
        raw.loginuid = acc->auid;
        raw.zone_id = static_cast<std::uint32_t>(decision.zone - s->policy.zones.data()) + 1;
        // The evaluator says `audit` for a permitted read it records; the record should
        // say allowed (as the BPF-LSM enforcer does).
        const bool permitted = decision.rule == policy::Rule::allowed_user ||
                               decision.rule == policy::Rule::allowed_group || decision.rule == policy::Rule::grant;
        raw.decision = permitted ? static_cast<std::uint32_t>(CG_DECISION_ALLOW) : to_cg_decision(decision.action);
        raw.rule = to_cg_rule(decision.rule);
        raw.open_flags = flags_arg >= 0 ? static_cast<std::uint32_t>(acc->a[flags_arg]) : O_RDONLY;
        raw.dev = target->dev;
        raw.ino = target->inode;
        std::memcpy(raw.comm, acc->comm.data(), std::min(acc->comm.size(), sizeof raw.comm - 1));
        std::memcpy(raw.path, shown_path.data(), std::min(shown_path.size(), sizeof raw.path - 1));
        ev.path = shown_path;
        if (!enricher) enricher.emplace(options.enrich);
        events::Record r = enricher->enrich(ev, s->zone_names);
        if (decision.action == policy::Action::deny) {
            // Nothing enforces in observe-only mode: the read went through.
            r.kind = events::Kind::access_audited;
            if (auto cut = r.message.rfind(": "); cut != std::string::npos) r.message.resize(cut);
            r.message += ": would be denied (observe-only, not enforced)";
        }
        // The process may be gone before enrichment reads /proc: audit carries these.
        if (!r.get(events::field::exe)) r.set(events::field::exe, acc->exe);
        if (!r.get(events::field::cmdline) && acc->proctitle) r.set(events::field::cmdline, *acc->proctitle);
        if (!r.get(events::field::ppid) && acc->ppid) r.set(events::field::ppid, acc->ppid);
        r.set("CUSTGUARD_ENFORCED", "0");
        r.set("CUSTGUARD_AUDIT_EVENT", stamp_text(acc->stamp));
        if (!certain) r.set("CUSTGUARD_GROUPS_UNKNOWN", "1");
        bump(&ObserverCounters::recorded);
        submit(std::move(r));
    }

    void report_findings(std::int64_t mono_now) {
        std::vector<Finding> findings;
        {
            std::lock_guard lock(cc_mutex);
            findings = cross.poll(mono_now);
        }
        for (auto& f : findings) {
            const auto& a = f.audit;
            std::string who = fmt::format("uid {} pid {} ({})", a.uid, a.tgid, a.comm);
            events::Record r;
            if (f.kind == Finding::Kind::unmatched) {
                bump(&ObserverCounters::mismatches);
                r = events::make_sensor_mismatch_record(
                    fmt::format("{} read {} in zone {}; audit saw it, the {} enforcer reported nothing within {} ms "
                                "(possible bypass)",
                                who, a.path, a.zone, options_enforcer(), options.cross_check_window_ms),
                    fmt::format("audit,{}", options_enforcer()), a.path, a.tgid);
                r.set("CUSTGUARD_MISMATCH", "unmatched");
            } else {
                bump(&ObserverCounters::auid_mismatches);
                r = events::make_sensor_mismatch_record(
                    fmt::format("{} read {}: audit auid {} but the {} enforcer reported loginuid {}", who, a.path,
                                a.auid, options_enforcer(), f.enforcer_loginuid),
                    fmt::format("audit,{}", options_enforcer()), a.path, a.tgid);
                r.set("CUSTGUARD_MISMATCH", "auid");
                r.set("CUSTGUARD_ENFORCER_LOGINUID", f.enforcer_loginuid);
            }
            r.realtime_us = a.realtime_ns / 1000;
            r.set(events::field::zone, a.zone);
            r.set(events::field::uid, a.uid);
            if (a.auid != unset_id) r.set(events::field::auid, a.auid);
            r.set(events::field::comm, a.comm);
            r.set(events::field::inode, a.ino);
            r.set("CUSTGUARD_AUDIT_EVENT", a.event_id);
            submit(std::move(r));
        }
        std::lock_guard lock(cc_mutex);
        std::lock_guard slock(stats_mutex);
        stats.matched = cross.counters().matched;
    }

    const std::string& options_enforcer() const { return options.enforcer_name; }

    void loop() {
        std::int64_t next_status = clock_ns(CLOCK_MONOTONIC) / 1'000'000 + options.status_interval_ms;
        pollfd fds[2] = {{reader->fd(), POLLIN, 0}, {stop_fd.get(), POLLIN, 0}};
        while (!stopping.load()) {
            std::int64_t now_ms = clock_ns(CLOCK_MONOTONIC) / 1'000'000;
            std::int64_t wake = std::min({assembler.next_deadline(), next_status, now_ms + 100});
            int timeout = static_cast<int>(std::clamp<std::int64_t>(wake - now_ms, 0, 1000));
            int pr = ::poll(fds, 2, timeout);
            if (pr < 0 && errno != EINTR) break;
            if (fds[1].revents) break;
            now_ms = clock_ns(CLOCK_MONOTONIC) / 1'000'000;
            if (pr > 0 && (fds[0].revents & POLLIN)) {
                std::uint64_t recs = 0, bad = 0;
                auto r = reader->drain(
                    [&](std::uint16_t type, std::string_view text) {
                        ++recs;
                        if (auto rec = parse_record(type, text)) assembler.push(std::move(*rec), now_ms);
                        else ++bad;
                    },
                    overruns);
                if (!r) warn(r.error());
                bump(&ObserverCounters::records, recs);
                bump(&ObserverCounters::malformed, bad);
            }
            assembler.expire(now_ms);
            process_ready();
            if (overruns > reported_overruns) {
                bump(&ObserverCounters::overruns, overruns - reported_overruns);
                if (callbacks.lost)
                    callbacks.lost("audit", overruns - reported_overruns,
                                   "audit multicast socket overrun (each counts one or more lost records)");
                reported_overruns = overruns;
            }
            if (options.mode == ObserverMode::cross_check) report_findings(clock_ns(CLOCK_MONOTONIC));
            if (now_ms >= next_status) {
                poll_status();
                next_status = now_ms + options.status_interval_ms;
            }
        }
        assembler.flush();
        process_ready();
    }

    void process_ready() {
        if (ready.empty()) return;
        std::int64_t mono = clock_ns(CLOCK_MONOTONIC), real = clock_ns(CLOCK_REALTIME);
        std::vector<Event> batch;
        batch.swap(ready);
        {
            std::lock_guard lock(stats_mutex);
            stats.events = assembler.counters().events;
            stats.incomplete = assembler.counters().incomplete;
        }
        for (const auto& e : batch) handle(e, mono, real);
    }
};

AuditObserver::AuditObserver(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AuditObserver::~AuditObserver() { stop(true); }

tl::expected<std::unique_ptr<AuditObserver>, std::string> AuditObserver::create(ObserverOptions options) {
    auto impl = std::make_unique<Impl>();
    impl->options = std::move(options);
    impl->cross = CrossCheck(CrossCheckOptions{impl->options.cross_check_window_ms * 1'000'000});
    impl->assembler = Assembler([p = impl.get()](Event&& e) { p->ready.push_back(std::move(e)); },
                                AssemblerOptions{impl->options.assemble_timeout_ms});
    auto control = AuditControl::open();
    if (!control) return tl::unexpected(control.error());
    auto st = control->status();
    if (!st) return tl::unexpected(st.error() + " (needs CAP_AUDIT_CONTROL)");
    if (st->enabled == 2) return tl::unexpected(std::string("audit is locked (enabled=2): watch rules cannot be added"));
    if (st->enabled == 0 && impl->options.keep_enabled) {
        if (auto r = control->set_enabled(true); !r) return tl::unexpected(r.error());
        impl->enabled_by_us = true;
    }
    if (st->backlog_limit != 0 && st->backlog_limit < impl->options.min_backlog_limit) {
        if (auto r = control->set_backlog_limit(impl->options.min_backlog_limit); !r) return tl::unexpected(r.error());
        impl->backlog_limit_before = st->backlog_limit;
    }
    impl->last_lost = st->lost;
    auto reader = MulticastReader::open(impl->options.receive_buffer_bytes);
    if (!reader) return tl::unexpected(reader.error());
    impl->reader.emplace(std::move(*reader));
    impl->control.emplace(std::move(*control));
    impl->stop_fd = Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!impl->stop_fd) return tl::unexpected(std::string("eventfd: ") + std::strerror(errno));
    return std::unique_ptr<AuditObserver>(new AuditObserver(std::move(impl)));
}

tl::expected<std::vector<std::string>, std::string> AuditObserver::apply(const policy::Policy& policy) {
    auto& i = *impl_;
    std::vector<std::string> warnings;
    auto specs = watch_specs(policy, warnings);
    auto snap = std::make_shared<const Snapshot>(policy);
    {
        std::lock_guard lock(i.control_mutex);
        if (!i.control) return tl::unexpected(std::string("audit observer stopped"));
        auto r = reconcile_rules(*i.control, i.options.instance, specs);
        if (!r) return tl::unexpected(r.error());
        warnings.insert(warnings.end(), r->warnings.begin(), r->warnings.end());
        std::lock_guard slock(i.stats_mutex);
        i.stats.rules = r->kept + r->added;
    }
    std::lock_guard lock(i.snap_mutex);
    i.snap = std::move(snap);
    return warnings;
}

tl::expected<void, std::string> AuditObserver::start(ObserverCallbacks callbacks) {
    auto& i = *impl_;
    if (i.started) return tl::unexpected(std::string("audit observer already started"));
    i.callbacks = std::move(callbacks);
    i.started = true;
    i.thread = std::thread([&i] { i.loop(); });
    return {};
}

void AuditObserver::observe_enforcer_event(const daemon::AccessEvent& ev) {
    auto& i = *impl_;
    if (i.options.mode != ObserverMode::cross_check || ev.raw.kind != CG_EV_OPEN) return;
    EnforcerSighting s{ev.raw.tgid, ev.raw.dev, ev.raw.ino, ev.realtime_ns, ev.raw.loginuid, ev.raw.decision};
    std::lock_guard lock(i.cc_mutex);
    i.cross.enforcer_seen(s, clock_ns(CLOCK_MONOTONIC));
}

void AuditObserver::stop(bool remove_rules) {
    auto& i = *impl_;
    if (i.stopped) return;
    i.stopped = true;
    i.stopping = true;
    std::uint64_t one = 1;
    if (i.stop_fd) (void)!::write(i.stop_fd.get(), &one, sizeof one);
    if (i.thread.joinable()) i.thread.join();
    std::lock_guard lock(i.control_mutex);
    if (remove_rules && i.control) {
        (void)remove_our_rules(*i.control, i.options.instance);
        // Turn audit off again only if we turned it on and nobody else uses it now: no
        // auditd, no rules of anybody (another custguardd, an admin) left.
        if (i.enabled_by_us) {
            auto st = i.control->status();
            auto left = i.control->list_rules();
            if (st && st->pid == 0 && left && left->empty()) (void)i.control->set_enabled(false);
        }
        if (i.backlog_limit_before != 0) {
            auto st = i.control->status();
            if (st && st->backlog_limit == i.options.min_backlog_limit)
                (void)i.control->set_backlog_limit(i.backlog_limit_before);
        }
    }
    i.control.reset();
}

ObserverMode AuditObserver::mode() const { return impl_->options.mode; }

ObserverCounters AuditObserver::counters() const {
    std::lock_guard lock(impl_->stats_mutex);
    return impl_->stats;
}

}  // namespace custguard::audit
