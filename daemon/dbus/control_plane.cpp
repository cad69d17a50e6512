// The org.custguard1 service.
//
// Methods (interface org.custguard1, object /org/custguard1). Results are typed values;
// documents (status, policy, lists) are a{sv} / aa{sv} built from the JSON objects
// custguardctl --json prints (api/json.hpp maps them; custguard.dbus(7) lists the keys),
// so custguardctl rebuilds the same JSON from the typed reply.
//
//   GetStatus()                                   -> a{sv} status
//   CheckPolicy()                                 -> b valid, aa{sv} diagnostics
//   ReloadPolicy()                                -> aa{sv} warnings; PolicyRefused
//   ShowPolicy()                                  -> a{sv} policy (with origins)
//   ListZones()                                   -> aa{sv} zones
//   AllowUser(s zone, s user)                     -> s message
//   RevokeUser(s zone, s user)                    -> s message
//   ListUsers(s zone)                             -> aa{sv} users (zone "" = all)
//   AllowDevice(s kind, s zone, s value)          -> s message
//   RevokeDevice(s kind, s zone, s value)         -> s message
//   ListDevices(s kind, s zone)                   -> aa{sv} devices ("" = all)
//   AddGrant(s zone, s user, x seconds, s reason) -> t expires_at (seconds since the epoch)
//   ListGrants(s zone)                            -> aa{sv} grants (with remaining_seconds)
//   GetGrants(s zone)                             -> a(ssstsst) grants (typed: zone, user,
//                                                    client, expires_at, reason, granted_by, granted_at)
//   GetHistory(s zone, s user, s client, s event, t since_usec, t until_usec, u limit)
//                                                 -> a(tssssss) rows, b truncated (history.hpp)
//   RevokeGrant(s zone, s user)                   -> s message
//   AddClientGrant(s zone, s client, x seconds, s reason) -> t expires_at
//   RevokeClientGrant(s zone, s client)           -> s message
//     (a client machine counts as listed in the zone's allow_clients until expires_at;
//     ListGrants lists both kinds, a client grant with "client" set and "user" "")
//   ListHeldJobs(s zone)                          -> a(sssususta{su}) jobs (of owners who may read
//                                                    the zone; "" = all)
//   ApproveJob(s job, s comment)                  -> s message
//   RejectJob(s job, s reason)                    -> s message
//   CheckPrintJob(a{ss} job, h document)          -> s action, s reason, s hold_id
//   CheckPrintJobDocuments(a{ss} job, ah documents) -> the same for all documents of a job (the backend's)
//     (the CUPS backend custguard(8) asks before a job prints; see daemon/print/)
//
// Properties (typed; api/include/custguard/api/types.hpp; read through
// org.freedesktop.DBus.Properties by those polkit allows, like the methods):
//
//   Version s (constant), Enforcer s, Zones a(sasssasas), HeldJobs a(sssususta{su}),
//   Counters a{st}
//
// PropertiesChanged carries the new values, sent when something changes them: after each
// of this plane's methods, and when the pipeline commits a record of a change made
// elsewhere (k_change_kinds: a job held by the gate's workers, a reload on SIGHUP, an
// expired grant), then again k_settle_usec later, since the gate records a hold just
// before it stores the job. Enforcer, Zones and HeldJobs are compared with what was
// announced last, so a change is announced once and no change never (Zones are built and
// compared only when the policy changed since: its generation). Counters change
// with every event; they are compared once per k_counters_period_usec and announced at
// most that often.
// Signals: JobHeld((sssususta{su}) job) for each newly held job, unicast to each
// connection that called Subscribe() (read-history) and may decide the job (approve-print
// with ApproveJob's details), so that a zone's manager gets the jobs of the zone; Alert(s
// event, s zone, s user, s message) for each committed record a page should show at once
// (k_alert_kinds), broadcast. The D-Bus policy lets everyone receive JobHeld (custguardd
// addresses it) and only root and custguard-admin the broadcast ones. The interface is
// api/org.custguard1.xml; tests/dbus checks it against Introspect.
//
// A zone argument is a zone name or an absolute path inside a zone (the innermost zone
// holding it). kind is printer | client; printers take zone "". kind media is refused
// (policy::k_media_not_enforced).
//
// Authorisation: each method needs the polkit action k_method_actions names (properties:
// read-status, HeldJobs read-history), asked with the details of its arguments; root is
// always allowed; when polkitd is not on the bus, root and the admin group only. A
// refusal is AccessDenied naming the action; refusals and changes are recorded with the
// caller's uid, user, bus name, action and who decided (custguard.polkit(7)).
//
// Errors: org.custguard1.Error.{AccessDenied, InvalidArgument, UnknownZone, UnknownUser,
// NotFound, PolicyRefused, Failed}; each message says what to do.
//
// Every string and array argument has a length bound (k_method_limits below, documented
// in custguardctl(8) "LIMITS"); a longer one is refused with InvalidArgument naming the
// argument and the bound, before the method runs.
#include "daemon/dbus/control_plane.hpp"

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <vector>

#include <fmt/format.h>

#include "custguard/api/bus_ptr.hpp"
#include "custguard/api/json.hpp"
#include "custguard/api/names.hpp"
#include "custguard/api/types.hpp"
#include "custguard/common/nss.hpp"
#include "custguard/common/policy_files.hpp"
#include "custguard/common/unique_fd.hpp"
#include "custguard/events/record.hpp"
#include "custguard/policy/load.hpp"
#include "daemon/core/daemon.hpp"
#include "daemon/dbus/history.hpp"
#include "daemon/dbus/json.hpp"
#include "daemon/dbus/polkit.hpp"
#include "daemon/print/print_gate.hpp"

namespace custguard::dbus {

namespace error = api::error;
using api::bus_name;
using api::BusError;
using api::BusPtr;
using api::CredsPtr;
using api::interface_name;
using api::MessagePtr;
using api::object_path;
using api::SlotPtr;

namespace {

// When properties are compared with what was announced (see the top).
constexpr std::uint64_t k_settle_usec[] = {100'000, 1'000'000};
constexpr std::uint64_t k_counters_period_usec = 1'000'000;

// Records of changes to what the properties show, made outside this plane's methods.
constexpr events::Kind k_change_kinds[] = {events::Kind::print, events::Kind::admin_change,
                                           events::Kind::policy_reload};

// Records announced with the Alert signal, and the event name each gets.
constexpr std::pair<events::Kind, const char*> k_alert_kinds[] = {
    {events::Kind::access_denied, "access_denied"},
    {events::Kind::zone_integrity, "zone_integrity"},
    {events::Kind::bulk_read, "bulk_read"},
    {events::Kind::sensor_mismatch, "sensor_mismatch"},
    {events::Kind::customer_data_found, "customer_data_found"},
};

struct Alert {
    std::string event, zone, user, message;
};

// Alerts from the pipeline's writer thread to the event loop: a bounded queue and an
// eventfd that wakes the loop. Shared with the pipeline observer, which may outlive the
// control plane (the pipeline stops after it).
struct AlertQueue {
    static constexpr std::size_t k_max = 256;  // more while the loop is busy are dropped
    std::mutex mutex;
    std::deque<Alert> pending;
    // Alerts not announced because the queue was full (Counters "alerts.dropped", status);
    // the records themselves are in the journal.
    std::atomic<std::uint64_t> dropped{0};
    // A change record was committed (k_change_kinds): the loop compares the properties.
    std::atomic<bool> changed{false};
    common::UniqueFd wake{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};

    void push_change() {
        changed.store(true, std::memory_order_release);
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(wake.get(), &one, sizeof one);
    }

    void push(Alert a) {
        {
            std::lock_guard lock(mutex);
            if (pending.size() >= k_max) {
                dropped.fetch_add(1, std::memory_order_relaxed);
                return;
            }
            pending.push_back(std::move(a));
        }
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(wake.get(), &one, sizeof one);
    }
    std::deque<Alert> take() {
        std::uint64_t count = 0;
        [[maybe_unused]] auto n = ::read(wake.get(), &count, sizeof count);
        std::lock_guard lock(mutex);
        return std::exchange(pending, {});
    }
};

struct EventSourceDeleter {
    void operator()(sd_event_source* s) const { sd_event_source_disable_unref(s); }
};
using EventSourcePtr = std::unique_ptr<sd_event_source, EventSourceDeleter>;

// What the properties show, as last announced.
struct Published {
    std::string enforcer;
    // Built again only when the policy's generation changed: shared with the last announced.
    std::uint64_t policy_generation = 0;
    std::shared_ptr<const std::vector<api::Zone>> zones;
    std::vector<api::HeldJob> held;
    api::Counters counters;
};

constexpr std::int64_t k_max_grant_seconds = 30ll * 24 * 3600;

// A failure to report to the caller as a named D-Bus error.
struct Failure {
    const char* name;
    std::string message;
};

template <typename T>
using Result = tl::expected<T, Failure>;

tl::unexpected<Failure> fail(const char* name, std::string message) {
    return tl::unexpected(Failure{name, std::move(message)});
}

// Who called, and how the call was decided; admin records carry all of it.
struct Caller {
    uid_t uid = static_cast<uid_t>(-1);
    std::string name = "?";  // user name, or the uid as text
    std::string bus_name;    // the caller's unique bus name (:1.42)
    std::string action;      // the polkit action the call needs
    std::string authority;   // root | polkit | group <admin group> (polkitd not on the bus)
};

// The caller's name for messages and records; the uid as text when NSS does not know it.
std::string caller_name(uid_t uid) {
    auto user = common::nss::user_by_uid(uid);
    return user && *user ? (*user)->name : std::to_string(uid);
}

std::string origin_kind(policy::OriginKind k) {
    switch (k) {
    case policy::OriginKind::policy: return "policy";
    case policy::OriginKind::dropin: return "dropin";
    case policy::OriginKind::state: return "state";
    }
    return "?";
}

std::string where(const policy::SourcePos& pos) {
    std::string out = pos.file;
    if (pos.line) out += ":" + std::to_string(pos.line);
    if (pos.line && pos.column) out += ":" + std::to_string(pos.column);
    return out;
}

Json origin_json(const policy::Origin& o) {
    return Json::object().set("kind", origin_kind(o.kind)).set("source", where(o.pos));
}

Json diagnostics_json(const policy::Diagnostics& diags) {
    Json out = Json::array();
    for (const auto& d : diags)
        out.push(Json::object()
                     .set("severity", d.severity == policy::Severity::error ? "error" : "warning")
                     .set("file", d.pos.file)
                     .set("line", d.pos.line)
                     .set("column", d.pos.column)
                     .set("message", d.message)
                     .set("hint", d.hint)
                     .set("text", d.format()));
    return out;
}

std::string format_diagnostics(const policy::Diagnostics& diags) {
    std::string out;
    for (const auto& d : diags) out += (out.empty() ? "" : "\n") + d.format();
    return out;
}

Json strings_json(const std::vector<std::string>& v) {
    Json out = Json::array();
    for (const auto& s : v) out.push(s);
    return out;
}

std::string join(const std::vector<std::string>& v, std::string_view sep = ", ") {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : std::string(sep)) + s;
    return out;
}

bool valid_printer_name(std::string_view s) {
    // CUPS queue names: printable, no space, '/', '#' or '\\', at most 127 bytes.
    if (s.empty() || s.size() > 127) return false;
    return std::none_of(s.begin(), s.end(), [](char c) {
        return static_cast<unsigned char>(c) <= ' ' || c == '/' || c == '#' || c == '\\' || c == 0x7f;
    });
}

// ---- argument bounds ---------------------------------------------------------------------

// The bound of one argument: bytes of each string in it, entries of each array in it.
struct ArgLimit {
    std::string_view name;
    std::size_t max_bytes = 4096;
    std::size_t max_entries = 0;  // arrays only
};

struct MethodLimits {
    std::string_view member;
    std::array<ArgLimit, 4> args;  // in argument order; non-string, non-array ones are skipped
};

// custguardctl(8) "LIMITS" lists the same numbers.
constexpr std::size_t k_zone_bytes = 4096;   // a zone name or a path inside a zone (PATH_MAX)
constexpr std::size_t k_user_bytes = 256;    // user, or %group
constexpr std::size_t k_kind_bytes = 16;     // printer | client
constexpr std::size_t k_device_bytes = 255;  // queue name, address, CIDR, host name (253)
constexpr std::size_t k_reason_bytes = 1024;  // grant reasons, job comments: they go into records
constexpr std::size_t k_job_bytes = 64;       // held job id
constexpr std::size_t k_attr_entries = 64;    // CheckPrintJob job attributes
constexpr std::size_t k_attr_bytes = 4096;    //   each key and value
// CheckPrintJobDocuments documents: the system bus's own bound on descriptors per message
// (dbus-daemon max_message_unix_fds); kept here for a bus configured higher.
constexpr std::size_t k_documents = 16;
constexpr std::size_t k_report_title_bytes = 200;        // SendReport: a mail subject
constexpr std::size_t k_report_body_bytes = 64 * 1024;   //   the report text
constexpr std::size_t k_report_targets = 16;             //   notify targets named
// Methods not in the table (added later) get these bounds for every argument.
constexpr ArgLimit k_default_limit{"argument", 4096, 1024};

constexpr MethodLimits k_method_limits[] = {
    {"AllowUser", {{{"zone", k_zone_bytes}, {"user", k_user_bytes}}}},
    {"RevokeUser", {{{"zone", k_zone_bytes}, {"user", k_user_bytes}}}},
    {"ListUsers", {{{"zone", k_zone_bytes}}}},
    {"AllowDevice", {{{"kind", k_kind_bytes}, {"zone", k_zone_bytes}, {"value", k_device_bytes}}}},
    {"RevokeDevice", {{{"kind", k_kind_bytes}, {"zone", k_zone_bytes}, {"value", k_device_bytes}}}},
    {"ListDevices", {{{"kind", k_kind_bytes}, {"zone", k_zone_bytes}}}},
    {"AddGrant", {{{"zone", k_zone_bytes}, {"user", k_user_bytes}, {"seconds"}, {"reason", k_reason_bytes}}}},
    {"ListGrants", {{{"zone", k_zone_bytes}}}},
    {"ListHeldJobs", {{{"zone", k_zone_bytes}}}},
    {"GetGrants", {{{"zone", k_zone_bytes}}}},
    {"RevokeGrant", {{{"zone", k_zone_bytes}, {"user", k_user_bytes}}}},
    {"AddClientGrant", {{{"zone", k_zone_bytes}, {"client", k_device_bytes}, {"seconds"}, {"reason", k_reason_bytes}}}},
    {"RevokeClientGrant", {{{"zone", k_zone_bytes}, {"client", k_device_bytes}}}},
    {"ApproveJob", {{{"job", k_job_bytes}, {"comment", k_reason_bytes}}}},
    {"RejectJob", {{{"job", k_job_bytes}, {"reason", k_reason_bytes}}}},
    {"CheckPrintJob", {{{"job", k_attr_bytes, k_attr_entries}, {"document"}}}},
    {"CheckPrintJobDocuments", {{{"job", k_attr_bytes, k_attr_entries}, {"documents", 0, k_documents}}}},
    {"SendReport", {{{"title", k_report_title_bytes}, {"body", k_report_body_bytes}, {"targets", k_user_bytes, k_report_targets}}}},
};

// ---- polkit actions ----------------------------------------------------------------------

// The action each method needs, and the polkit details its leading string arguments
// become ("" = not passed). custguard.polkit(7) documents this table; a method not in it
// needs manage-policy. ApproveJob and RejectJob pass more details: see job_details().
struct MethodAction {
    std::string_view member;
    const char* action;
    std::array<std::string_view, 3> details;
};

constexpr MethodAction k_method_actions[] = {
    {"GetStatus", api::action::read_status, {}},
    {"CheckPolicy", api::action::read_status, {}},
    {"ShowPolicy", api::action::read_status, {}},
    {"ListZones", api::action::read_status, {}},
    {"ListUsers", api::action::read_status, {"zone"}},
    {"ListDevices", api::action::read_status, {"kind", "zone"}},
    {"ListGrants", api::action::read_status, {"zone"}},
    {"GetGrants", api::action::read_status, {"zone"}},
    {"ListHeldJobs", api::action::read_history, {"zone"}},
    {"Subscribe", api::action::read_history, {}},
    {"GetHistory", api::action::read_history, {"zone", "user", "client"}},
    {"ApproveJob", api::action::approve_print, {"job"}},
    {"RejectJob", api::action::approve_print, {"job"}},
    {"AllowUser", api::action::manage_zones, {"zone", "user"}},
    {"RevokeUser", api::action::manage_zones, {"zone", "user"}},
    {"AllowDevice", api::action::manage_zones, {"kind", "zone", "device"}},
    {"RevokeDevice", api::action::manage_zones, {"kind", "zone", "device"}},
    {"AddGrant", api::action::manage_zones, {"zone", "user"}},
    {"RevokeGrant", api::action::manage_zones, {"zone", "user"}},
    {"AddClientGrant", api::action::manage_zones, {"zone", "client"}},
    {"RevokeClientGrant", api::action::manage_zones, {"zone", "client"}},
    {"ReloadPolicy", api::action::manage_policy, {}},
    {"CheckPrintJob", api::action::check_print, {}},
    {"CheckPrintJobDocuments", api::action::check_print, {}},
    {"SendReport", api::action::send_report, {}},
};

// What a call asks polkit.
struct Request {
    std::string action;
    PolkitDetails details;
};

// Checks the value at the read position (a string, or a container of them) against `limit`.
Result<void> check_value(sd_bus_message* m, std::string_view member, const ArgLimit& limit) {
    auto malformed = [&](int r) {
        return fail(error::invalid_argument, fmt::format("malformed argument '{}' of {}: {}", limit.name, member,
                                                         std::strerror(-r)));
    };
    char type = 0;
    const char* contents = nullptr;
    int r = sd_bus_message_peek_type(m, &type, &contents);
    if (r < 0) return malformed(r);
    switch (type) {
    case SD_BUS_TYPE_STRING:
    case SD_BUS_TYPE_OBJECT_PATH:
    case SD_BUS_TYPE_SIGNATURE: {
        const char* v = nullptr;
        if ((r = sd_bus_message_read_basic(m, type, &v)) < 0) return malformed(r);
        const std::size_t n = v ? std::strlen(v) : 0;
        if (n > limit.max_bytes)
            return fail(error::invalid_argument,
                        fmt::format("argument '{}' of {} is {} bytes long; at most {} bytes are accepted "
                                    "(see custguardctl(8), LIMITS)",
                                    limit.name, member, n, limit.max_bytes));
        return {};
    }
    case SD_BUS_TYPE_ARRAY:
    case SD_BUS_TYPE_STRUCT:
    case SD_BUS_TYPE_DICT_ENTRY:
    case SD_BUS_TYPE_VARIANT: {
        if ((r = sd_bus_message_enter_container(m, type, contents)) < 0) return malformed(r);
        std::size_t entries = 0;
        while ((r = sd_bus_message_at_end(m, 0)) == 0) {
            if (type == SD_BUS_TYPE_ARRAY && ++entries > limit.max_entries)
                return fail(error::invalid_argument,
                            fmt::format("argument '{}' of {} has more than {} entries; at most {} are accepted "
                                        "(see custguardctl(8), LIMITS)",
                                        limit.name, member, limit.max_entries, limit.max_entries));
            if (auto c = check_value(m, member, limit); !c) return c;
        }
        if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0) return malformed(r);
        return {};
    }
    default: {
        const char one[2] = {type, '\0'};
        if ((r = sd_bus_message_skip(m, one)) < 0) return malformed(r);
        return {};
    }
    }
}

// Every argument of `m` within its bound; the message is rewound for the method.
Result<void> check_argument_limits(sd_bus_message* m) {
    const char* member_c = sd_bus_message_get_member(m);
    const std::string_view member = member_c ? member_c : "?";
    const MethodLimits* limits = nullptr;
    for (const auto& l : k_method_limits)
        if (l.member == member) limits = &l;
    Result<void> result;
    for (std::size_t i = 0; result; ++i) {
        int r = sd_bus_message_at_end(m, 1);
        if (r < 0) {
            result = fail(error::invalid_argument, fmt::format("malformed call of {}: {}", member, std::strerror(-r)));
            break;
        }
        if (r > 0) break;
        const ArgLimit& limit = limits && i < limits->args.size() && !limits->args[i].name.empty()
                                    ? limits->args[i]
                                    : k_default_limit;
        result = check_value(m, member, limit);
    }
    if (int r = sd_bus_message_rewind(m, 1); r < 0 && result)
        result = fail(error::failed, fmt::format("cannot re-read the call of {}: {}", member, std::strerror(-r)));
    return result;
}

}  // namespace

struct ControlPlane::Impl {
    daemon::Daemon& daemon;
    ControlPlaneOptions options;
    BusPtr bus;
    SlotPtr slot;
    std::shared_ptr<AlertQueue> alerts = std::make_shared<AlertQueue>();
    EventSourcePtr counters_timer, settle_timer, alert_source;
    // JobHeld subscribers by unique bus name; dropped when their connection closes.
    struct Subscriber {
        uid_t uid;
        bool by_group;  // subscribed by the admin-group fallback (polkitd not on the bus)
    };
    static constexpr std::size_t k_max_subscribers = 256;
    std::map<std::string, Subscriber> subscribers;
    SlotPtr owner_changes;
    std::size_t settle_step = 0;  // next entry of k_settle_usec
    std::optional<Published> announced;
    PolkitAuthority polkit;

    Impl(daemon::Daemon& d, ControlPlaneOptions o) : daemon(d), options(std::move(o)) {}

    // ---- properties and signals ----------------------------------------------------------

    static api::Zone zone_value(const policy::Zone& z) {
        api::Zone out{z.name, {}, std::string(policy::to_string(z.sensitivity)),
                      std::string(policy::to_string(z.on_violation)), {}, {}};
        for (const auto& e : z.paths) out.paths.push_back(e.path);
        for (const auto& u : z.allow_users) out.allow_users.push_back(u.spelled());
        for (const auto& c : z.allow_clients) out.allow_clients.push_back(c.text);
        return out;
    }

    static api::HeldJob job_value(const daemon::HeldJob& j) {
        return {j.id, j.printer, j.user, j.uid, j.title, j.pages, j.client, j.held_at, j.detector_hits};
    }

    // The counters a page shows; custguard.dbus(7) lists them.
    static api::Counters counters_of(const daemon::Status& s, std::size_t held, std::uint64_t alerts_dropped) {
        return {
            {"sensor.events", s.sensor.events},
            {"sensor.denied", s.sensor.denied},
            {"sensor.dropped", s.sensor.dropped},
            {"sensor.errors", s.sensor.errors},
            {"sensor.overload", s.sensor.overload},
            {"sensor.overload_refused", s.sensor.overload_refused},
            {"sensor.rescans", s.sensor.rescans},
            {"records.written", s.pipeline.seq},
            {"records.lost", s.pipeline.lost},
            {"records.spool_pending", s.pipeline.spool_pending},
            {"notify.sent", s.notify.sent},
            {"notify.failed", s.notify.failed},
            {"notify.alerts", s.notify.alerts},
            {"notify.bulk_reads", s.notify.bulk_reads},
            {"policy.reloads", s.reloads},
            {"policy.reload_failures", s.reload_failures},
            {"print.held", held},
            {"alerts.dropped", alerts_dropped},
        };
    }

    Published current() {
        const auto s = daemon.status();
        Published p;
        p.enforcer = s.enforcer;
        // The generation before the zones: a change in between is seen again next time.
        p.policy_generation = daemon.policy_generation();
        if (announced && announced->zones && announced->policy_generation == p.policy_generation) {
            p.zones = announced->zones;
        } else {
            auto zones = std::make_shared<std::vector<api::Zone>>();
            for (const auto& z : daemon.current_policy().zones) zones->push_back(zone_value(z));
            p.zones = std::move(zones);
        }
        for (const auto& j : daemon.held_jobs().list()) p.held.push_back(job_value(j));
        p.counters = counters_of(s, p.held.size(), alerts->dropped.load(std::memory_order_relaxed));
        return p;
    }

    // JobHeld goes to each subscriber (Subscribe) who may decide the job: unicast, since a
    // broadcast reaches whoever the bus policy lets receive it, and the bus policy cannot
    // tell a zone's manager from another. Asked like ApproveJob would be (job_details).
    void emit_job_held(const api::HeldJob& job) {
        PolkitDetails details{{"job", job.job}};
        job_details(job.job, details);
        for (const auto& [name, sub] : subscribers) {
            bool allowed = sub.uid == 0;
            if (!allowed) {
                const auto answer = polkit.check(bus.get(), name, api::action::approve_print, details);
                allowed = answer.kind == PolkitAnswer::Kind::allowed ||
                          (answer.kind == PolkitAnswer::Kind::absent && sub.by_group);
            }
            if (!allowed) continue;
            sd_bus_message* raw = nullptr;
            if (sd_bus_message_new_signal(bus.get(), &raw, object_path, interface_name, api::signals::job_held) < 0)
                return;
            MessagePtr m(raw);
            if (sd_bus_message_set_destination(m.get(), name.c_str()) >= 0 && api::append(m.get(), job) >= 0)
                sd_bus_send(bus.get(), m.get(), nullptr);
        }
    }

    // Subscribe: JobHeld for the caller's connection until it leaves the bus.
    Result<void> subscribe(const Caller& caller) {
        if (caller.bus_name.empty()) return fail(error::failed, "the bus did not name the caller's connection");
        if (!subscribers.count(caller.bus_name) && subscribers.size() >= k_max_subscribers)
            return fail(error::failed, fmt::format("{} connections are subscribed already, the most custguardd keeps; "
                                                   "try again when one has closed",
                                                   k_max_subscribers));
        subscribers[caller.bus_name] = Subscriber{caller.uid, caller.authority.rfind("group ", 0) == 0};
        return {};
    }

    // NameOwnerChanged: a subscriber's connection closed.
    static int on_name_owner_changed(sd_bus_message* m, void* u, sd_bus_error*) {
        const char *name = nullptr, *old_owner = nullptr, *new_owner = nullptr;
        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) >= 0 && new_owner && !*new_owner)
            static_cast<Impl*>(u)->subscribers.erase(name);
        return 0;
    }

    // Announce what changed since the last call: PropertiesChanged (Counters only when
    // `counters`), and JobHeld for each job not held before. The first call only takes
    // the baseline.
    void publish(bool counters = false) {
        if (!bus) return;
        Published now = current();
        if (announced) {
            for (const auto& j : now.held)
                if (std::none_of(announced->held.begin(), announced->held.end(),
                                 [&](const api::HeldJob& a) { return a.job == j.job; }))
                    emit_job_held(j);
            std::vector<const char*> changed;
            if (now.enforcer != announced->enforcer) changed.push_back(api::property::enforcer);
            if (now.zones != announced->zones && *now.zones != *announced->zones)
                changed.push_back(api::property::zones);
            if (now.held != announced->held) changed.push_back(api::property::held_jobs);
            if (counters && now.counters != announced->counters) changed.push_back(api::property::counters);
            if (!counters) now.counters = std::move(announced->counters);
            if (!changed.empty()) {
                changed.push_back(nullptr);
                sd_bus_emit_properties_changed_strv(bus.get(), object_path, interface_name,
                                                    const_cast<char**>(changed.data()));
            }
        }
        announced = std::move(now);
    }

    // A change record arrived: compare now, and again after each k_settle_usec.
    void publish_change() {
        publish();
        settle_step = 0;
        arm_settle();
    }

    void arm_settle() {
        if (!settle_timer || settle_step >= std::size(k_settle_usec)) return;
        const std::uint64_t delay = k_settle_usec[settle_step] - (settle_step ? k_settle_usec[settle_step - 1] : 0);
        if (sd_event_source_set_time_relative(settle_timer.get(), delay) >= 0)
            sd_event_source_set_enabled(settle_timer.get(), SD_EVENT_ONESHOT);
    }

    void emit_alerts() {
        for (const auto& a : alerts->take()) {
            sd_bus_emit_signal(bus.get(), object_path, interface_name, api::signals::alert, "ssss", a.event.c_str(),
                               a.zone.c_str(), a.user.c_str(), a.message.c_str());
        }
        if (alerts->changed.exchange(false, std::memory_order_acq_rel)) publish_change();
    }

    tl::expected<void, std::string> start_publishing(sd_event* event) {
        publish(true);
        auto failed = [](const char* what, int r) {
            return tl::unexpected(fmt::format("cannot start the {} timer: {}", what, std::strerror(-r)));
        };
        sd_event_source* timer = nullptr;
        int r = sd_event_add_time_relative(
            event, &timer, CLOCK_MONOTONIC, k_counters_period_usec, 0,
            [](sd_event_source* s, std::uint64_t, void* u) {
                static_cast<Impl*>(u)->publish(true);
                return sd_event_source_set_time_relative(s, k_counters_period_usec);
            },
            this);
        if (r < 0) return failed("counters", r);
        counters_timer.reset(timer);
        if ((r = sd_event_source_set_enabled(timer, SD_EVENT_ON)) < 0) return failed("counters", r);
        r = sd_event_add_time_relative(
            event, &timer, CLOCK_MONOTONIC, k_settle_usec[0], 0,
            [](sd_event_source*, std::uint64_t, void* u) {
                auto* self = static_cast<Impl*>(u);
                self->publish();
                ++self->settle_step;
                self->arm_settle();
                return 0;
            },
            this);
        if (r < 0) return failed("settle", r);
        settle_timer.reset(timer);
        if ((r = sd_event_source_set_enabled(timer, SD_EVENT_OFF)) < 0) return failed("settle", r);
        if (alerts->wake.get() < 0) return tl::unexpected(fmt::format("cannot create an eventfd: {}", std::strerror(errno)));
        sd_event_source* io = nullptr;
        r = sd_event_add_io(
            event, &io, alerts->wake.get(), EPOLLIN,
            [](sd_event_source*, int, std::uint32_t, void* u) {
                static_cast<Impl*>(u)->emit_alerts();
                return 0;
            },
            this);
        if (r < 0) return tl::unexpected(fmt::format("cannot watch for alerts: {}", std::strerror(-r)));
        alert_source.reset(io);
        daemon.pipeline().add_observer([queue = alerts](const events::Record& rec) { observe(*queue, rec); });
        return {};
    }

    // Pipeline observer (writer thread): hands alert and change records to the loop.
    static void observe(AlertQueue& queue, const events::Record& r) {
        if (std::find(std::begin(k_change_kinds), std::end(k_change_kinds), r.kind) != std::end(k_change_kinds))
            queue.push_change();
        for (const auto& [kind, event] : k_alert_kinds) {
            if (r.kind != kind) continue;
            auto field = [&](std::string_view name) {
                const std::string* v = r.get(name);
                return v ? *v : std::string();
            };
            queue.push({event, field(events::field::zone), field(events::field::user), r.message});
        }
    }

    // ---- authorisation -----------------------------------------------------------------

    // The zones whose allow_users name `user` or one of its groups, joined by ',' (zone
    // names cannot hold one): the "zone" detail of ApproveJob and RejectJob.
    std::string zones_of_user(const std::string& user) {
        auto pw = common::nss::user_by_name(user);
        if (!pw || !*pw) return {};
        auto groups = common::nss::supplementary_groups((*pw)->name, (*pw)->gid);
        std::vector<std::string> out;
        for (const auto& z : daemon.current_policy().zones)
            for (const auto& p : z.allow_users) {
                const bool member =
                    p.kind == policy::Principal::Kind::user
                        ? p.name == user
                        : groups && std::find(groups->begin(), groups->end(), p.id) != groups->end();
                if (member) {
                    out.push_back(z.name);
                    break;
                }
            }
        return join(out, ",");
    }

    // The action `m` needs, with the details a rule may read. Arguments are within their
    // bounds (check_argument_limits ran); the message is rewound for the method.
    Request request_of(sd_bus_message* m) {
        const char* member_c = sd_bus_message_get_member(m);
        const std::string_view member = member_c ? member_c : "";
        const MethodAction* entry = nullptr;
        for (const auto& a : k_method_actions)
            if (a.member == member) entry = &a;
        if (!entry) return {api::action::manage_policy, {}};
        Request req{entry->action, {}};
        const auto policy = daemon.current_policy();
        for (std::string_view key : entry->details) {
            if (key.empty()) break;
            char type = 0;
            const char* v = nullptr;
            if (sd_bus_message_peek_type(m, &type, nullptr) <= 0 || type != 's' ||
                sd_bus_message_read_basic(m, 's', &v) < 0 || !v)
                break;
            std::string value = v;
            if (key == "zone" && !value.empty())
                if (auto z = resolve_zone(policy, value)) value = (*z)->name;
            req.details.emplace_back(key, value);
            if (key == "job") job_details(value, req.details);
        }
        sd_bus_message_rewind(m, 1);
        return req;
    }

    // A held job's printer, owner and zones (the owner's; see zones_of_user) as details.
    void job_details(const std::string& id, PolkitDetails& details) {
        for (const auto& j : daemon.held_jobs().list())
            if (j.id == id) {
                details.emplace_back("printer", j.printer);
                details.emplace_back("user", j.user);
                details.emplace_back("zone", zones_of_user(j.user));
                return;
            }
    }

    // The caller's uid comes from the bus (dbus-daemon took it from SO_PEERCRED at connect
    // time). No SD_BUS_CREDS_AUGMENT: values read from /proc/PID could belong to another
    // process by the time we read them. Root may do everything; others as polkit says, or,
    // when polkitd is not on the bus, when in the admin group (today's rule).
    Result<Caller> authorize(sd_bus_message* m, const Request& req, Caller& caller) {
        caller.action = req.action;
        const char* sender = sd_bus_message_get_sender(m);
        caller.bus_name = sender ? sender : "";
        sd_bus_creds* raw = nullptr;
        int r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_UID | SD_BUS_CREDS_EUID | SD_BUS_CREDS_SUPPLEMENTARY_GIDS,
                                          &raw);
        if (r < 0) return fail(error::access_denied, "cannot establish the caller's credentials; refusing");
        CredsPtr creds(raw);
        uid_t uid = 0;
        if (sd_bus_creds_get_euid(raw, &uid) < 0 && sd_bus_creds_get_uid(raw, &uid) < 0)
            return fail(error::access_denied, "the bus did not report the caller's uid; refusing");
        caller.uid = uid;
        caller.name = caller_name(uid);
        if (uid == 0) {
            caller.authority = "root";
            return caller;
        }
        if (!caller.bus_name.empty()) {
            auto answer = polkit.check(bus.get(), caller.bus_name, req.action, req.details);
            switch (answer.kind) {
            case PolkitAnswer::Kind::allowed: caller.authority = "polkit"; return caller;
            case PolkitAnswer::Kind::denied:
                caller.authority = "polkit";
                return fail(error::access_denied,
                            fmt::format("{} (uid {}) is not authorized for {}{}; an administrator may allow it "
                                        "with a polkit rule (custguard.polkit(7)) or 'usermod -aG {} {}'",
                                        caller.name, uid, req.action,
                                        answer.detail == "challenge" ? " (polkit asked for authentication, which "
                                                                       "custguardd does not offer)"
                                                                     : "",
                                        options.admin_group, caller.name));
            case PolkitAnswer::Kind::failed:
                caller.authority = "polkit";
                return fail(error::access_denied,
                            fmt::format("cannot ask polkit whether {} may {}: {}; refusing (see custguardd(8), "
                                        "AUTHORIZATION)",
                                        caller.name, req.action, answer.detail));
            case PolkitAnswer::Kind::absent: break;
            }
        }
        caller.authority = "group " + options.admin_group;
        // A group with thousands of members does not fit a fixed buffer; nss.hpp grows it,
        // and a lookup that fails says so instead of passing for "no such group".
        auto admin = common::nss::group_by_name(options.admin_group);
        if (!admin)
            return fail(error::access_denied, fmt::format("cannot look up the admin group: {}; refusing", admin.error()));
        bool member = false;
        if (*admin) {
            const gid_t admin_gid = (*admin)->gid;
            const gid_t* gids = nullptr;
            int n = sd_bus_creds_get_supplementary_gids(raw, &gids);
            if (n >= 0) {
                member = std::find(gids, gids + n, admin_gid) != gids + n;
            } else if (auto user = common::nss::user_by_uid(uid); user && *user) {
                auto groups = common::nss::supplementary_groups((*user)->name, (*user)->gid);
                member = groups && std::find(groups->begin(), groups->end(), admin_gid) != groups->end();
            }
        }
        if (member) return caller;
        return fail(error::access_denied,
                    fmt::format("{} (uid {}) is not authorized for {}: polkitd is not running, and then only root "
                                "and members of group '{}' may; ask an administrator to run 'usermod -aG {} {}' "
                                "or use sudo",
                                caller.name, uid, req.action, options.admin_group, options.admin_group,
                                caller.name));
    }

    // Who asked, for what, and how it was decided: set on every admin record.
    static void set_caller_fields(events::Record& rec, const Caller& caller) {
        rec.set("CUSTGUARD_BUS_NAME", caller.bus_name.empty() ? "?" : caller.bus_name);
        rec.set("CUSTGUARD_POLKIT_ACTION", caller.action);
        rec.set("CUSTGUARD_AUTHORIZED_BY", caller.authority.empty() ? "none" : caller.authority);
    }

    // `what`: the property a refused read asked for (or GetAll); else the method called.
    void record_denied(sd_bus_message* m, const Caller& caller, const std::string& message,
                       const char* what = nullptr) {
        const char* member = what ? what : sd_bus_message_get_member(m);
        auto rec = events::make_admin_change_record(caller.name, caller.uid, "access_denied",
                                                    fmt::format("{}.{}", interface_name, member ? member : "?"),
                                                    message);
        set_caller_fields(rec, caller);
        rec.set(events::field::decision, "deny");
        // A caller can be refused as often as he calls: past a few records per window the
        // pipeline counts his refusals into one `repeated` record (custguard.journal(7)).
        rec.repeat_key = fmt::format("bus:{}", caller.uid);
        daemon.pipeline().submit(std::move(rec));
    }

    void record_change(const Caller& caller, std::string_view action, std::string_view target,
                       std::string_view detail, std::string_view zone, std::string_view before,
                       std::string_view after, std::string_view client = {}) {
        auto rec = events::make_admin_change_record(caller.name, caller.uid, action, target, detail);
        set_caller_fields(rec, caller);
        rec.set(events::field::zone, zone);
        if (!client.empty()) rec.set(events::field::client, client);
        rec.set("CUSTGUARD_BEFORE", before.empty() ? "none" : before);
        rec.set("CUSTGUARD_AFTER", after.empty() ? "none" : after);
        rec.set(events::field::decision, "allow");
        daemon.pipeline().submit(std::move(rec));
    }

    // ---- argument helpers --------------------------------------------------------------

    static std::string zone_names(const policy::Policy& p) {
        std::vector<std::string> names;
        for (const auto& z : p.zones) names.push_back(z.name);
        return names.empty() ? "(none)" : join(names);
    }

    // A zone name, or an absolute path inside a zone.
    static Result<const policy::Zone*> resolve_zone(const policy::Policy& p, const std::string& arg) {
        if (arg.empty())
            return fail(error::invalid_argument, "no zone given; name one of: " + zone_names(p));
        if (arg.front() == '/') {
            std::string path = arg;
            while (path.size() > 1 && path.back() == '/') path.pop_back();
            if (!policy::is_normalised_absolute(path))
                return fail(error::invalid_argument,
                            "'" + arg + "' is not a normalised absolute path; write it without '//', '/./' or '/../'");
            const policy::Zone* best = nullptr;
            std::size_t best_len = 0;
            for (const auto& z : p.zones)
                for (const auto& e : z.paths) {
                    bool inside = path == e.path || e.path == "/" ||
                                  (path.size() > e.path.size() && path.compare(0, e.path.size(), e.path) == 0 &&
                                   path[e.path.size()] == '/');
                    if (inside && e.path.size() >= best_len) best = &z, best_len = e.path.size();
                }
            if (!best)
                return fail(error::unknown_zone, "no zone protects '" + path +
                                                     "'; give a zone name or a path inside one (zones: " +
                                                     zone_names(p) + "; see custguardctl zone list)");
            return best;
        }
        if (const auto* z = p.find_zone(arg)) return z;
        return fail(error::unknown_zone,
                    "no zone named '" + arg + "'; zones are: " + zone_names(p) + " (see custguardctl zone list)");
    }

    // Every zone when `arg` is empty, else the one it names.
    static Result<std::vector<const policy::Zone*>> zones_of(const policy::Policy& p, const std::string& arg) {
        std::vector<const policy::Zone*> zones;
        if (arg.empty()) {
            for (const auto& z : p.zones) zones.push_back(&z);
            return zones;
        }
        auto z = resolve_zone(p, arg);
        if (!z) return tl::unexpected(z.error());
        zones.push_back(*z);
        return zones;
    }

    // "alice" must be a user, "%sales" a group, both known to NSS.
    static Result<void> check_principal(const std::string& name, bool users_only) {
        bool group = !name.empty() && name.front() == '%';
        std::string bare = group ? name.substr(1) : name;
        if (bare.empty() || bare.front() == '-' || bare.size() > 256 ||
            bare.find_first_of(" \t\n\r/:,\"'") != std::string::npos)
            return fail(error::invalid_argument,
                        "'" + name + "' is not a user or %group name; write a user as alice, a group as %sales");
        if (group && users_only)
            return fail(error::invalid_argument,
                        "grants are given to one user, not a group ('" + name + "'); name the user");
        auto known = group ? common::nss::group_by_name(bare).map([](const auto& g) { return g.has_value(); })
                           : common::nss::user_by_name(bare).map([](const auto& u) { return u.has_value(); });
        if (!known) return fail(error::failed, known.error());
        if (!*known)
            return fail(error::unknown_user,
                        group ? "no group '" + bare + "' on this server; create it (groupadd) or check the spelling"
                              : "no user '" + bare + "' on this server; create it or check the spelling "
                                "(groups are written as %name)");
        return {};
    }

    static Result<policy::DeviceKind> parse_kind(const std::string& kind) {
        if (kind == "media")
            return fail(error::invalid_argument,
                        "media devices are refused: " + std::string(policy::k_media_not_enforced) +
                            ", so nothing is allowed, revoked or listed for them; use printer or client");
        auto k = policy::parse_device_kind(kind);
        if (!k) return fail(error::invalid_argument, "unknown device kind '" + kind + "'; use printer or client");
        return *k;
    }

    // Persist `next` or explain why not. Nothing changes on failure.
    Result<void> commit(const policy::State& next, const char* ignored_error, const std::string& ignored_hint) {
        auto r = daemon.update_state(next);
        if (r) return {};
        const auto& diags = r.error();
        bool only_warnings = std::none_of(diags.begin(), diags.end(), [](const policy::Diagnostic& d) {
            return d.severity == policy::Severity::error;
        });
        if (only_warnings) {
            std::vector<std::string> messages;
            for (auto m : diags) {
                // The loader words these for a state file it reads ("state has malformed
                // client 'x'; entry ignored"); say it as a refusal of this request.
                for (std::string_view prefix : {"state has a ", "state has ", "state allows "})
                    if (m.message.rfind(prefix, 0) == 0) m.message.erase(0, prefix.size());
                if (auto pos = m.message.rfind("; entry ignored"); pos != std::string::npos) m.message.erase(pos);
                messages.push_back(m.message);
            }
            return fail(ignored_error, join(messages, "; ") + (ignored_hint.empty() ? "" : "; " + ignored_hint));
        }
        return fail(error::policy_refused, "the change was refused and nothing was changed:\n" +
                                               format_diagnostics(diags) +
                                               "\nfix the policy (custguardctl policy check) and try again");
    }

    // ---- methods -----------------------------------------------------------------------

    Result<Json> get_status() {
        auto s = daemon.status();
        Json pipeline = Json::object()
                            .set("submitted", s.pipeline.submitted)
                            .set("seq", s.pipeline.seq)
                            .set("journal_reachable", s.pipeline.journal_reachable)
                            .set("journal_written", s.pipeline.journal_written)
                            .set("spooled", s.pipeline.spooled)
                            .set("spool_pending", s.pipeline.spool_pending)
                            .set("lost", s.pipeline.lost)
                            .set("repeats_counted", s.pipeline.repeats_counted)
                            .set("repeats_pending", s.pipeline.repeats_pending)
                            .set("repeat_records", s.pipeline.repeat_records)
                            .set("dropped_queue_full", s.pipeline.dropped_queue_full)
                            .set("jsonl_written", s.pipeline.jsonl_written)
                            .set("run_id", s.pipeline.run_id)
                            .set("last_error", s.pipeline.last_error);
        Json sensor = Json::object()
                          .set("events", s.sensor.events)
                          .set("dropped", s.sensor.dropped)
                          .set("denied", s.sensor.denied)
                          .set("errors", s.sensor.errors)
                          .set("overload", s.sensor.overload)
                          .set("overload_refused", s.sensor.overload_refused)
                          .set("rescans", s.sensor.rescans);
        Json notify = Json::object()
                          .set("queued", s.notify.queued)
                          .set("enqueued", s.notify.enqueued)
                          .set("sent", s.notify.sent)
                          .set("failed", s.notify.failed)
                          .set("retries", s.notify.retries)
                          .set("overflow", s.notify.overflow)
                          .set("inbox_dropped", s.notify.inbox_dropped)
                          .set("ignored", s.notify.ignored)
                          .set("intake_batches", s.notify.intake_batches)
                          .set("alerts", s.notify.alerts)
                          .set("alerts_suppressed", s.notify.alerts_suppressed)
                          .set("digests", s.notify.digests)
                          .set("bulk_reads", s.notify.bulk_reads)
                          .set("last_error", s.notify.last_error);
        Json audit = Json::object()
                         .set("mode", s.audit_mode)
                         .set("off_reason", s.audit_off_reason)
                         .set("rules", s.audit.rules)
                         .set("instance", s.audit_instance)
                         .set("records", s.audit.records)
                         .set("malformed", s.audit.malformed)
                         .set("events", s.audit.events)
                         .set("incomplete", s.audit.incomplete)
                         .set("accesses", s.audit.accesses)
                         .set("recorded", s.audit.recorded)
                         .set("matched", s.audit.matched)
                         .set("mismatches", s.audit.mismatches)
                         .set("auid_mismatches", s.audit.auid_mismatches)
                         .set("unverifiable", s.audit.unverifiable)
                         .set("overruns", s.audit.overruns)
                         .set("kernel_lost", s.audit.kernel_lost)
                         .set("reenabled", s.audit.reenabled);
        Json revoked = Json::array();
        for (const auto& r : s.revoked)
            // client: set for a client machine's cool-down (uid and user: who read last).
            revoked.push(Json::object()
                             .set("zone", r.zone)
                             .set("uid", r.uid)
                             .set("user", r.user)
                             .set("client", r.client)
                             .set("until", r.until));
        auto state = daemon.current_state();
        // Per zone of the policy in force: the clients it allows and the reads each client
        // made since client_reads_since (reads of zones no longer in the policy are not shown).
        Json zone_clients = Json::array(), zone_names = Json::array();
        for (const auto& z : daemon.current_policy().zones) {
            zone_names.push(z.name);
            Json allowed = Json::array(), reads = Json::array();
            for (const auto& c : z.allow_clients) allowed.push(c.text);
            for (const auto& e : s.client_reads)
                if (e.zone == z.name) reads.push(Json::object().set("client", e.client).set("reads", e.reads));
            zone_clients.push(Json::object()
                                  .set("zone", z.name)
                                  .set("allow_clients", std::move(allowed))
                                  .set("reads_today", std::move(reads)));
        }
        return Json::object()
            .set("version", s.version)
            .set("enforcer", s.enforcer)
            .set("enforcer_reason", s.enforcer_reason)
            .set("adopted", s.adopted)
            .set("policy_path", s.policy_path)
            .set("policy_digest", s.policy_digest)
            .set("policy_loaded_at", s.policy_loaded_at)
            .set("started_at", s.started_at)
            .set("reloads", s.reloads)
            .set("reload_failures", s.reload_failures)
            .set("zones", std::move(zone_names))
            .set("state_dir", daemon.state_dir().string())
            .set("state_users", state.users.size())
            .set("state_devices", state.devices.size())
            .set("grants", state.grants.size())
            .set("held_jobs", daemon.held_jobs().list().size())
            .set("unprotected_queues", strings_json(s.unprotected_queues))
            .set("sensor", std::move(sensor))
            .set("pipeline", std::move(pipeline))
            .set("notify", std::move(notify))
            .set("audit", std::move(audit))
            .set("revoked", std::move(revoked))  // bulk-read cool-downs in force
            .set("zone_clients", std::move(zone_clients))
            .set("client_reads_since", s.client_reads_since)
            .set("authorization", authorization_json())
            .set("alerts_dropped", alerts->dropped.load(std::memory_order_relaxed))
            .set("warnings", strings_json(s.warnings));
    }

    // Who decides calls now: polkit, or (polkitd not on the bus) root and the admin group.
    Json authorization_json() {
        const std::string why = PolkitAuthority::probe(bus.get());
        return Json::object()
            .set("mode", why.empty() ? "polkit" : "fallback")
            .set("fallback_group", options.admin_group)
            .set("reason", why.empty() ? "" : "polkitd is not on the bus (" + why +
                                                  "); only root and members of group " + options.admin_group + " may call");
    }

    Result<std::pair<bool, Json>> check_policy() {
        auto s = daemon.status();
        auto loaded = common::load_policy(s.policy_path, daemon.state_dir(), common::now_seconds());
        if (!loaded) return std::pair{false, diagnostics_json(loaded.error())};
        return std::pair{true, diagnostics_json(loaded->warnings)};
    }

    Result<Json> reload_policy(const Caller& caller) {
        auto before = daemon.status().policy_digest;
        auto outcome = daemon.reload("D-Bus ReloadPolicy by " + caller.name);
        auto after = daemon.status().policy_digest;
        record_change(caller, "policy.reload", daemon.status().policy_path,
                      outcome.accepted ? "accepted" : "refused", "", "digest " + before,
                      "digest " + after + (outcome.accepted ? "" : " (refused; previous policy in force)"));
        if (!outcome.accepted)
            return fail(error::policy_refused, "the policy was refused; the running policy stays in force:\n" +
                                                   format_diagnostics(outcome.diagnostics) +
                                                   "\nfix the file(s) named above (custguardctl policy check) and reload again");
        return diagnostics_json(outcome.diagnostics);
    }

    Result<Json> show_policy() {
        auto p = daemon.current_policy();
        Json zones = Json::array();
        for (const auto& z : p.zones) {
            Json paths = Json::array(), users = Json::array(), programs = Json::array(), clients = Json::array();
            for (const auto& e : z.paths) paths.push(Json::object().set("path", e.path).set("origin", origin_json(e.origin)));
            for (const auto& u : z.allow_users)
                users.push(Json::object().set("name", u.spelled()).set("id", u.id).set("origin", origin_json(u.origin)));
            for (const auto& e : z.allow_programs)
                programs.push(Json::object().set("path", e.path).set("origin", origin_json(e.origin)));
            for (const auto& c : z.allow_clients)
                clients.push(Json::object().set("client", c.text).set("origin", origin_json(c.origin)));
            zones.push(Json::object()
                           .set("name", z.name)
                           .set("origin", origin_json(z.origin))
                           .set("sensitivity", std::string(policy::to_string(z.sensitivity)))
                           .set("on_violation", std::string(policy::to_string(z.on_violation)))
                           .set("record_allowed", z.record_allowed)
                           .set("paths", std::move(paths))
                           .set("allow_users", std::move(users))
                           .set("allow_programs", std::move(programs))
                           .set("allow_clients", std::move(clients))
                           .set("notify", strings_json(z.notify)));
        }
        Json print_users = Json::array();
        for (const auto& u : p.print.allow_users)
            print_users.push(Json::object().set("name", u.spelled()).set("origin", origin_json(u.origin)));
        Json print = Json::object()
                         .set("origin", origin_json(p.print.origin))
                         .set("action", std::string(policy::to_string(p.print.action)))
                         .set("allow_printers", strings_json(p.print.allow_printers))
                         .set("allow_users", std::move(print_users))
                         .set("detectors", strings_json(p.print.detectors))
                         .set("threshold", p.print.threshold)
                         .set("keywords", strings_json(p.print.keywords))
                         .set("keyword_proximity", p.print.keyword_proximity)
                         .set("notify", strings_json(p.print.notify));
        Json notify = Json::array();
        for (const auto& n : p.notify_targets)
            notify.push(Json::object()
                            .set("name", n.name)
                            .set("mail", strings_json(n.mail))
                            .set("webhook", n.webhook)
                            .set("digest_seconds", n.digest_seconds)
                            .set("origin", origin_json(n.origin)));
        Json grants = Json::array();
        for (const auto& g : p.grants)
            grants.push(Json::object()
                            .set("zone", g.zone)
                            .set("user", g.user)
                            .set("uid", g.uid)
                            .set("expires_at", g.expires_at)
                            .set("reason", g.reason)
                            .set("granted_by", g.granted_by)
                            .set("origin", origin_json(g.origin)));
        for (const auto& g : p.client_grants)
            grants.push(Json::object()
                            .set("zone", g.zone)
                            .set("client", g.client.text)
                            .set("expires_at", g.expires_at)
                            .set("reason", g.reason)
                            .set("granted_by", g.granted_by)
                            .set("origin", origin_json(g.origin)));
        return Json::object()
            .set("daemon", Json::object()
                               .set("enforcer", std::string(policy::to_string(p.daemon.enforcer)))
                               .set("state_dir", p.daemon.state_dir)
                               .set("origin", origin_json(p.daemon.origin)))
            .set("zones", std::move(zones))
            .set("print", std::move(print))
            // The SMTP password file's path is shown, never its contents.
            .set("mail", Json::object()
                             .set("smtp", p.mail.smtp)
                             .set("from", p.mail.from)
                             .set("starttls", p.mail.starttls)
                             .set("username", p.mail.username)
                             .set("password_file", p.mail.password_file)
                             .set("origin", origin_json(p.mail.origin)))
            .set("notify", std::move(notify))
            .set("bulk", Json::object()
                             .set("max_files", p.bulk.max_files)
                             .set("max_bytes", p.bulk.max_bytes)
                             .set("window_seconds", p.bulk.window_seconds)
                             .set("action", std::string(policy::to_string(p.bulk.action)))
                             .set("origin", origin_json(p.bulk.origin)))
            .set("grants", std::move(grants));
    }

    Result<Json> list_zones() {
        auto p = daemon.current_policy();
        Json out = Json::array();
        for (const auto& z : p.zones) {
            std::vector<std::string> paths, users;
            for (const auto& e : z.paths) paths.push_back(e.path);
            for (const auto& u : z.allow_users) users.push_back(u.spelled());
            out.push(Json::object()
                         .set("name", z.name)
                         .set("paths", strings_json(paths))
                         .set("sensitivity", std::string(policy::to_string(z.sensitivity)))
                         .set("on_violation", std::string(policy::to_string(z.on_violation)))
                         .set("record_allowed", z.record_allowed)
                         .set("allow_users", strings_json(users))
                         .set("clients", z.allow_clients.size())
                         .set("programs", z.allow_programs.size())
                         .set("origin", origin_json(z.origin)));
        }
        return out;
    }

    static std::vector<std::string> spelled_users(const policy::Zone& z) {
        std::vector<std::string> out;
        for (const auto& u : z.allow_users) out.push_back(u.spelled());
        return out;
    }

    Result<std::string> allow_user(const Caller& caller, const std::string& zone_arg, const std::string& user) {
        auto p = daemon.current_policy();
        auto zone = resolve_zone(p, zone_arg);
        if (!zone) return tl::unexpected(zone.error());
        if (auto r = check_principal(user, false); !r) return tl::unexpected(r.error());
        const std::string zname = (*zone)->name;
        for (const auto& u : (*zone)->allow_users)
            if (u.spelled() == user)
                return fmt::format("{} is already allowed in zone {} ({} {})", user, zname, origin_kind(u.origin.kind),
                                   where(u.origin.pos));
        auto state = daemon.current_state();
        auto before = spelled_users(**zone);
        state.users.push_back({zname, user, caller.name, common::now_seconds()});
        if (auto r = commit(state, error::invalid_argument, "nothing was changed"); !r)
            return tl::unexpected(r.error());
        auto after = before;
        after.push_back(user);
        record_change(caller, "user.allow", zname + ":" + user, "allowed " + user + " in zone " + zname, zname,
                      join(before), join(after));
        return fmt::format("{} may now read zone {}", user, zname);
    }

    Result<std::string> revoke_user(const Caller& caller, const std::string& zone_arg, const std::string& user) {
        auto p = daemon.current_policy();
        auto zone = resolve_zone(p, zone_arg);
        if (!zone) return tl::unexpected(zone.error());
        const std::string zname = (*zone)->name;
        auto state = daemon.current_state();
        auto it = std::remove_if(state.users.begin(), state.users.end(),
                                 [&](const policy::StateUser& u) { return u.zone == zname && u.name == user; });
        if (it == state.users.end()) {
            for (const auto& u : (*zone)->allow_users)
                if (u.spelled() == user)
                    return fail(error::policy_refused,
                                fmt::format("{} is allowed in zone {} by {}, not by custguardctl; edit that file "
                                            "and run 'custguardctl policy reload'",
                                            user, zname, where(u.origin.pos)));
            return fail(error::not_found, fmt::format("{} is not allowed in zone {}; see custguardctl user list {}",
                                                      user, zname, zname));
        }
        state.users.erase(it, state.users.end());
        auto before = spelled_users(**zone);
        if (auto r = commit(state, error::failed, ""); !r) return tl::unexpected(r.error());
        auto after = spelled_users(*daemon.current_policy().find_zone(zname));
        record_change(caller, "user.revoke", zname + ":" + user, "revoked " + user + " in zone " + zname, zname,
                      join(before), join(after));
        // The policy files may allow the same name too: say so rather than imply a change.
        const auto now_policy = daemon.current_policy();
        if (const auto* z = now_policy.find_zone(zname))
            for (const auto& u : z->allow_users)
                if (u.spelled() == user)
                    return fmt::format("{} removed from zone {} by custguardctl, but still allowed by {}", user, zname,
                                       where(u.origin.pos));
        return fmt::format("{} removed from zone {}", user, zname);
    }

    Result<Json> list_users(const std::string& zone_arg) {
        auto p = daemon.current_policy();
        auto state = daemon.current_state();
        auto zones = zones_of(p, zone_arg);
        if (!zones) return tl::unexpected(zones.error());
        Json out = Json::array();
        for (const auto* z : *zones)
            for (const auto& u : z->allow_users) {
                Json row = Json::object()
                               .set("zone", z->name)
                               .set("name", u.spelled())
                               .set("kind", u.kind == policy::Principal::Kind::group ? "group" : "user")
                               .set("id", u.id)
                               .set("origin", origin_kind(u.origin.kind))
                               .set("source", where(u.origin.pos));
                for (const auto& s : state.users)
                    if (u.origin.kind == policy::OriginKind::state && s.zone == z->name && s.name == u.spelled())
                        row.set("added_by", s.added_by).set("added_at", s.added_at);
                out.push(std::move(row));
            }
        return out;
    }

    // The effective devices of one kind in one zone (printers: zone ignored), as text.
    static std::vector<std::pair<std::string, policy::Origin>> devices_of(const policy::Policy& p,
                                                                          policy::DeviceKind kind,
                                                                          const policy::Zone* z,
                                                                          const policy::State& state) {
        std::vector<std::pair<std::string, policy::Origin>> out;
        if (kind == policy::DeviceKind::printer) {
            for (const auto& name : p.print.allow_printers) {
                bool from_state = std::any_of(state.devices.begin(), state.devices.end(), [&](const auto& d) {
                    return d.kind == policy::DeviceKind::printer && d.value == name;
                });
                policy::Origin o = p.print.origin;
                if (from_state) o = {policy::OriginKind::state, {"state.toml", 0, 0}};
                // A printer named in the policy files stays a policy entry even if the state repeats it.
                out.emplace_back(name, o);
            }
            return out;
        }
        if (!z) return out;
        for (const auto& c : z->allow_clients) out.emplace_back(c.text, c.origin);
        return out;
    }

    Result<const policy::Zone*> device_zone(const policy::Policy& p, policy::DeviceKind kind, const std::string& zone_arg) {
        if (kind == policy::DeviceKind::printer) {
            if (!zone_arg.empty())
                return fail(error::invalid_argument,
                            "printers are allowed for the whole [print] section, not per zone; leave out the zone");
            return nullptr;
        }
        return resolve_zone(p, zone_arg);
    }

    static std::string device_hint(policy::DeviceKind kind) {
        switch (kind) {
        case policy::DeviceKind::client:
            return "write an IPv4 or IPv6 address, a network without host bits such as 192.168.10.0/24, or a host name";
        case policy::DeviceKind::printer: return "write the CUPS queue name";
        }
        return {};
    }

    Result<std::string> allow_device(const Caller& caller, const std::string& kind_arg, const std::string& zone_arg,
                                     std::string value) {
        auto kind = parse_kind(kind_arg);
        if (!kind) return tl::unexpected(kind.error());
        auto p = daemon.current_policy();
        auto zone = device_zone(p, *kind, zone_arg);
        if (!zone) return tl::unexpected(zone.error());
        if (*kind == policy::DeviceKind::printer && !valid_printer_name(value))
            return fail(error::invalid_argument, "'" + value + "' is not a printer queue name; " + device_hint(*kind));
        if (value.empty()) return fail(error::invalid_argument, "no device given; " + device_hint(*kind));
        auto state = daemon.current_state();
        const std::string zname = *zone ? (*zone)->name : "";
        auto current = devices_of(p, *kind, *zone, state);
        for (const auto& [text, origin] : current)
            if (text == value)
                return fmt::format("{} {} is already allowed{} ({} {})", kind_arg, value,
                                   zname.empty() ? "" : " in zone " + zname, origin_kind(origin.kind),
                                   where(origin.pos));
        std::vector<std::string> before;
        for (const auto& d : current) before.push_back(d.first);
        state.devices.push_back({*kind, zname, value, caller.name, common::now_seconds()});
        if (auto r = commit(state, error::invalid_argument,
                            "nothing was changed; " + device_hint(*kind));
            !r)
            return tl::unexpected(r.error());
        auto after = before;
        after.push_back(value);
        std::string target = std::string(kind_arg) + ":" + (zname.empty() ? "" : zname + ":") + value;
        record_change(caller, "device.allow", target,
                      "allowed " + kind_arg + " " + value + (zname.empty() ? "" : " in zone " + zname), zname,
                      join(before), join(after));
        return fmt::format("{} {} allowed{}", kind_arg, value, zname.empty() ? "" : " in zone " + zname);
    }

    Result<std::string> revoke_device(const Caller& caller, const std::string& kind_arg, const std::string& zone_arg,
                                      const std::string& value) {
        auto kind = parse_kind(kind_arg);
        if (!kind) return tl::unexpected(kind.error());
        auto p = daemon.current_policy();
        auto zone = device_zone(p, *kind, zone_arg);
        if (!zone) return tl::unexpected(zone.error());
        const std::string zname = *zone ? (*zone)->name : "";
        auto state = daemon.current_state();
        auto current = devices_of(p, *kind, *zone, state);
        auto it = std::remove_if(state.devices.begin(), state.devices.end(), [&](const policy::StateDevice& d) {
            return d.kind == *kind && d.value == value && (*kind == policy::DeviceKind::printer || d.zone == zname);
        });
        if (it == state.devices.end()) {
            for (const auto& [text, origin] : current)
                if (text == value)
                    return fail(error::policy_refused,
                                fmt::format("{} {} is allowed by {}, not by custguardctl; edit that file and run "
                                            "'custguardctl policy reload'",
                                            kind_arg, value, where(origin.pos)));
            return fail(error::not_found, fmt::format("{} {} is not allowed{}; see custguardctl device list", kind_arg,
                                                      value, zname.empty() ? "" : " in zone " + zname));
        }
        state.devices.erase(it, state.devices.end());
        std::vector<std::string> before;
        for (const auto& d : current) before.push_back(d.first);
        if (auto r = commit(state, error::failed, ""); !r) return tl::unexpected(r.error());
        std::vector<std::string> after;
        auto np = daemon.current_policy();
        for (const auto& d : devices_of(np, *kind, zname.empty() ? nullptr : np.find_zone(zname), daemon.current_state()))
            after.push_back(d.first);
        std::string target = std::string(kind_arg) + ":" + (zname.empty() ? "" : zname + ":") + value;
        record_change(caller, "device.revoke", target,
                      "revoked " + kind_arg + " " + value + (zname.empty() ? "" : " in zone " + zname), zname,
                      join(before), join(after));
        return fmt::format("{} {} revoked{}", kind_arg, value, zname.empty() ? "" : " in zone " + zname);
    }

    Result<Json> list_devices(const std::string& kind_arg, const std::string& zone_arg) {
        std::vector<policy::DeviceKind> kinds;
        if (kind_arg.empty()) {
            kinds = {policy::DeviceKind::printer, policy::DeviceKind::client};
        } else {
            auto k = parse_kind(kind_arg);
            if (!k) return tl::unexpected(k.error());
            kinds = {*k};
        }
        auto p = daemon.current_policy();
        auto state = daemon.current_state();
        auto zones = zones_of(p, zone_arg);
        if (!zones) return tl::unexpected(zones.error());
        Json out = Json::array();
        auto row = [&](policy::DeviceKind k, const std::string& zone, const std::string& value,
                       const policy::Origin& o) {
            Json r = Json::object()
                         .set("kind", std::string(policy::to_string(k)))
                         .set("zone", zone)
                         .set("value", value)
                         .set("origin", origin_kind(o.kind))
                         .set("source", o.kind == policy::OriginKind::state ? "" : where(o.pos));
            for (const auto& d : state.devices)
                if (d.kind == k && d.value == value && (k == policy::DeviceKind::printer || d.zone == zone))
                    r.set("added_by", d.added_by).set("added_at", d.added_at);
            out.push(std::move(r));
        };
        for (auto k : kinds) {
            if (k == policy::DeviceKind::printer) {
                for (const auto& [v, o] : devices_of(p, k, nullptr, state)) row(k, "", v, o);
                continue;
            }
            for (const auto* z : *zones)
                for (const auto& [v, o] : devices_of(p, k, z, state)) row(k, z->name, v, o);
        }
        return out;
    }

    // Duration and reason of a grant (of a user or a client); `lasting` says what to use instead.
    static Result<void> check_grant_terms(std::int64_t seconds, const std::string& reason, std::string_view lasting) {
        if (seconds <= 0)
            return fail(error::invalid_argument,
                        fmt::format("a grant needs a positive duration (got {} s); e.g. --duration 30m or 2h", seconds));
        if (seconds > k_max_grant_seconds)
            return fail(error::invalid_argument,
                        fmt::format("a grant lasts at most 30 days (got {} s); for lasting access use '{}'", seconds,
                                    lasting));
        if (reason.find_first_not_of(" \t") == std::string::npos)
            return fail(error::invalid_argument, "a grant needs a reason (e.g. --reason \"ticket 4711\"): it goes into the record");
        return {};
    }

    // Removes the grants `matches` selects from `state`: how many, and the last one's terms
    // as admin records show them ("" when none).
    template <typename Matches>
    static std::pair<std::size_t, std::string> take_grants(policy::State& state, Matches matches) {
        std::string before;
        std::size_t removed = std::erase_if(state.grants, [&](const policy::StateGrant& g) {
            if (!matches(g)) return false;
            before = fmt::format("until {} ({})", g.expires_at, g.reason);
            return true;
        });
        return {removed, before};
    }
    static bool user_grant(const policy::StateGrant& g, const std::string& zone, const std::string& user) {
        return g.zone == zone && g.client.empty() && g.user == user;
    }

    Result<std::uint64_t> add_grant(const Caller& caller, const std::string& zone_arg, const std::string& user,
                                    std::int64_t seconds, const std::string& reason) {
        auto p = daemon.current_policy();
        auto zone = resolve_zone(p, zone_arg);
        if (!zone) return tl::unexpected(zone.error());
        if (auto r = check_principal(user, true); !r) return tl::unexpected(r.error());
        if (auto r = check_grant_terms(seconds, reason, "custguardctl user allow"); !r) return tl::unexpected(r.error());
        const std::string zname = (*zone)->name;
        auto now = common::now_seconds();
        std::uint64_t expires = now + static_cast<std::uint64_t>(seconds);
        auto state = daemon.current_state();
        const std::string before =
            take_grants(state, [&](const policy::StateGrant& g) { return user_grant(g, zname, user); }).second;
        state.grants.push_back({zname, user, expires, reason, caller.name, now});
        if (auto r = commit(state, error::invalid_argument, "nothing was changed"); !r) return tl::unexpected(r.error());
        record_change(caller, "grant.add", zname + ":" + user,
                      fmt::format("granted {} access to zone {} for {} s: {}", user, zname, seconds, reason), zname,
                      before, fmt::format("until {} ({})", expires, reason));
        return expires;
    }

    // The grants in force (GetGrants), of one zone or all.
    Result<std::vector<api::Grant>> grants(const std::string& zone_arg) {
        std::string zname;
        if (!zone_arg.empty()) {
            auto p = daemon.current_policy();
            auto z = resolve_zone(p, zone_arg);
            if (!z) return tl::unexpected(z.error());
            zname = (*z)->name;
        }
        auto now = common::now_seconds();
        std::vector<api::Grant> out;
        for (const auto& g : daemon.current_state().grants) {
            if (!zname.empty() && g.zone != zname) continue;
            if (g.expires_at <= now) continue;  // expired; the prune timer removes it
            out.push_back({g.zone, g.user, g.client, g.expires_at, g.reason, g.granted_by, g.granted_at});
        }
        return out;
    }

    // ListGrants: the same as a JSON document, with the seconds left.
    Result<Json> list_grants(const std::string& zone_arg) {
        auto gs = grants(zone_arg);
        if (!gs) return tl::unexpected(gs.error());
        auto now = common::now_seconds();
        Json out = Json::array();
        for (const auto& g : *gs)
            out.push(Json::object()
                         .set("zone", g.zone)
                         .set("user", g.user)
                         .set("client", g.client)
                         .set("expires_at", g.expires_at)
                         .set("remaining_seconds", g.expires_at > now ? g.expires_at - now : 0)
                         .set("reason", g.reason)
                         .set("granted_by", g.granted_by)
                         .set("granted_at", g.granted_at));
        return out;
    }

    Result<std::string> revoke_grant(const Caller& caller, const std::string& zone_arg, const std::string& user) {
        auto p = daemon.current_policy();
        auto zone = resolve_zone(p, zone_arg);
        if (!zone) return tl::unexpected(zone.error());
        const std::string zname = (*zone)->name;
        auto state = daemon.current_state();
        const auto [removed, before] =
            take_grants(state, [&](const policy::StateGrant& g) { return user_grant(g, zname, user); });
        if (removed == 0)
            return fail(error::not_found,
                        fmt::format("{} has no grant in zone {}; see custguardctl grant list", user, zname));
        if (auto r = commit(state, error::failed, ""); !r) return tl::unexpected(r.error());
        record_change(caller, "grant.revoke", zname + ":" + user,
                      fmt::format("revoked the grant of {} in zone {}", user, zname), zname, before, "");
        return fmt::format("grant of {} in zone {} revoked", user, zname);
    }

    // "192.0.2.7" and "192.0.2.7/32", or "PC-1.example" and "pc-1.example", name one client.
    static bool same_client(const std::string& a, const std::string& b) {
        if (a.empty() || b.empty()) return false;
        auto x = policy::parse_client(a), y = policy::parse_client(b);
        if (!x || !y) return a == b;
        if (x->hostname || y->hostname)
            return x->hostname && y->hostname &&
                   std::equal(x->hostname->begin(), x->hostname->end(), y->hostname->begin(), y->hostname->end(),
                              [](char c, char d) { return std::tolower(static_cast<unsigned char>(c)) ==
                                                          std::tolower(static_cast<unsigned char>(d)); });
        return x->family == y->family && x->prefix == y->prefix && std::memcmp(x->addr, y->addr, sizeof x->addr) == 0;
    }

    // For the duration the client machine counts as listed in the zone's allow_clients; the
    // zone must have allow_clients (else every client may already reach it, and listing one
    // would shut out the others). A new grant for the same zone and client replaces the old.
    Result<std::uint64_t> add_client_grant(const Caller& caller, const std::string& zone_arg,
                                           const std::string& client, std::int64_t seconds, const std::string& reason) {
        auto p = daemon.current_policy();
        auto zone = resolve_zone(p, zone_arg);
        if (!zone) return tl::unexpected(zone.error());
        const std::string zname = (*zone)->name;
        if (!policy::parse_client(client))
            return fail(error::invalid_argument,
                        "'" + client + "' is not a client machine; " + device_hint(policy::DeviceKind::client));
        if ((*zone)->allow_clients.empty())
            return fail(error::invalid_argument,
                        fmt::format("zone {} has no allow_clients, so every client machine may already reach it; a "
                                    "client grant is only for zones that list their clients. Grant the user instead "
                                    "(custguardctl grant add {} USER ...), or list the zone's clients in allow_clients "
                                    "first",
                                    zname, zname));
        if (auto r = check_grant_terms(seconds, reason, "custguardctl device allow client"); !r)
            return tl::unexpected(r.error());
        auto now = common::now_seconds();
        std::uint64_t expires = now + static_cast<std::uint64_t>(seconds);
        auto state = daemon.current_state();
        const std::string before = take_grants(state, [&](const policy::StateGrant& g) {
                                       return g.zone == zname && same_client(g.client, client);
                                   }).second;
        policy::StateGrant g{zname, "", expires, reason, caller.name, now};
        g.client = client;
        state.grants.push_back(std::move(g));
        if (auto r = commit(state, error::invalid_argument, "nothing was changed"); !r) return tl::unexpected(r.error());
        record_change(caller, "grant.add", zname + ":client:" + client,
                      fmt::format("granted client {} access to zone {} for {} s: {}", client, zname, seconds, reason),
                      zname, before, fmt::format("until {} ({})", expires, reason), client);
        return expires;
    }

    Result<std::string> revoke_client_grant(const Caller& caller, const std::string& zone_arg,
                                            const std::string& client) {
        auto p = daemon.current_policy();
        auto zone = resolve_zone(p, zone_arg);
        if (!zone) return tl::unexpected(zone.error());
        const std::string zname = (*zone)->name;
        auto state = daemon.current_state();
        const auto [removed, before] = take_grants(state, [&](const policy::StateGrant& g) {
            return g.zone == zname && same_client(g.client, client);
        });
        if (removed == 0)
            return fail(error::not_found,
                        fmt::format("client {} has no grant in zone {}; see custguardctl grant list", client, zname));
        if (auto r = commit(state, error::failed, ""); !r) return tl::unexpected(r.error());
        record_change(caller, "grant.revoke", zname + ":client:" + client,
                      fmt::format("revoked the grant of client {} in zone {}", client, zname), zname, before, "",
                      client);
        return fmt::format("grant of client {} in zone {} revoked", client, zname);
    }

    // A report made by custguardctl (the discover survey) for the notify targets. The
    // title becomes a mail subject: one line, no control characters.
    Result<std::string> send_report(const Caller& caller, const std::string& title, const std::string& body,
                                    const std::vector<std::string>& targets) {
        if (title.empty()) return fail(error::invalid_argument, "the report has no title");
        if (std::any_of(title.begin(), title.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
            return fail(error::invalid_argument, "the report title must be one line without control characters");
        auto queued = daemon.notifier().send_report(targets, title, body);
        if (!queued) return fail(targets.empty() ? error::failed : error::invalid_argument, queued.error());
        record_change(caller, "report.send", targets.empty() ? "[print] notify" : join(targets), title, "", "", "");
        return fmt::format("report queued for delivery ({} {})", *queued, *queued == 1 ? "message" : "messages");
    }

    // The held jobs whose owner may read `zone_arg` (zones_of_user, as polkit's "zone"
    // detail of ApproveJob); "" = all.
    Result<std::vector<api::HeldJob>> list_held_jobs(const std::string& zone_arg) {
        std::string zname;
        if (!zone_arg.empty()) {
            const auto policy = daemon.current_policy();
            auto zone = resolve_zone(policy, zone_arg);
            if (!zone) return tl::unexpected(zone.error());
            zname = (*zone)->name;
        }
        std::vector<api::HeldJob> out;
        for (const auto& j : daemon.held_jobs().list())
            if (zname.empty() || in_list(zones_of_user(j.user), zname)) out.push_back(job_value(j));
        return out;
    }

    // `name` is one of the ','-joined `list` (zone names hold no ',').
    static bool in_list(std::string_view list, std::string_view name) {
        for (std::size_t start = 0; start <= list.size();) {
            const auto end = std::min(list.find(',', start), list.size());
            if (list.substr(start, end - start) == name) return true;
            start = end + 1;
        }
        return false;
    }

    Result<std::string> decide_job(const Caller& caller, const std::string& id, const std::string& comment,
                                   daemon::JobDecision decision) {
        if (id.empty()) return fail(error::invalid_argument, "no job id given; see custguardctl print held");
        bool approve = decision == daemon::JobDecision::approved;
        auto job = daemon.held_jobs().decide(id, decision, caller.name, comment);
        if (!job) {
            using Kind = daemon::DecideFailure::Kind;
            if (job.error().kind == Kind::not_saved) return fail(error::failed, job.error().message);
            return fail(error::not_found, job.error().message + "; see custguardctl print held");
        }
        events::PrintJob pj;
        pj.printer = job->printer;
        pj.job = job->id;
        pj.user = job->user;
        pj.uid = job->uid;
        pj.title = job->title;
        pj.pages = job->pages;
        pj.client = job->client;
        pj.detector_hits = job->detector_hits;
        daemon.pipeline().submit(events::make_print_record(
            pj, approve ? events::PrintDecision::allow : events::PrintDecision::deny,
            fmt::format("{} by {}{}", approve ? "approved" : "rejected", caller.name,
                        comment.empty() ? "" : ": " + comment)));
        record_change(caller, approve ? "print.approve" : "print.reject", job->printer + ":" + job->id,
                      comment.empty() ? std::string(approve ? "approved" : "rejected") : comment, "", "held",
                      approve ? "released" : "cancelled");
        return fmt::format("job {} on {} {}", job->id, job->printer, approve ? "released" : "cancelled");
    }
};

namespace {

using Impl = ControlPlane::Impl;

int reply_failure(sd_bus_error* err, const Failure& f) { return sd_bus_error_set(err, f.name, f.message.c_str()); }

// Authorise, run, translate failures and exceptions into named errors.
template <typename Fn>
int guarded(sd_bus_message* m, void* userdata, sd_bus_error* err, Fn&& fn) {
    auto* self = static_cast<Impl*>(userdata);
    try {
        // Bounds first: the arguments become polkit details.
        if (auto bounded = check_argument_limits(m); !bounded) return reply_failure(err, bounded.error());
        // polkit's answer not at hand: asked without blocking the bus; this runs again with it.
        const Request req = self->request_of(m);
        if (self->polkit.defer_call(m, req.action, req.details)) return 1;
        Caller who;
        auto caller = self->authorize(m, req, who);
        if (!caller) {
            self->record_denied(m, who, caller.error().message);
            return reply_failure(err, caller.error());
        }
        const int r = fn(*self, *caller);
        self->publish();
        return r;
    } catch (const std::exception& e) {
        return sd_bus_error_setf(err, error::failed, "internal error: %s; see the daemon's log", e.what());
    }
}

int reply(sd_bus_message* m, sd_bus_error* err, const Result<std::string>& r) {
    if (!r) return reply_failure(err, r.error());
    return sd_bus_reply_method_return(m, "s", r->c_str());
}

// A value sent typed (api/json.hpp): an object as a{sv}, a list of objects as aa{sv}.
template <typename Append>
int reply_with(sd_bus_message* m, Append&& append) {
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_return(m, &raw);
    MessagePtr reply(raw);
    if (r >= 0) r = append(reply.get());
    return r < 0 ? r : sd_bus_send(nullptr, reply.get(), nullptr);
}

int reply(sd_bus_message* m, sd_bus_error* err, const Result<Json>& r) {
    if (!r) return reply_failure(err, r.error());
    return reply_with(m, [&](sd_bus_message* out) { return api::append_json(out, *r, r->is_array() ? "a{sv}" : ""); });
}

// The shape of most methods: N string arguments in, a string or JSON text out.
template <std::size_t N, typename Fn>
int with_strings(sd_bus_message* m, void* u, sd_bus_error* e, Fn&& fn) {
    return guarded(m, u, e, [&](Impl& s, const Caller& c) {
        std::array<const char*, N> args{};
        for (auto& a : args)
            if (int r = sd_bus_message_read_basic(m, 's', &a); r < 0) return sd_bus_error_set_errno(e, r);
        return reply(m, e, fn(s, c, args));
    });
}

using Args0 = std::array<const char*, 0>;
using Args1 = std::array<const char*, 1>;
using Args2 = std::array<const char*, 2>;
using Args3 = std::array<const char*, 3>;

int m_get_status(sd_bus_message* m, void* u, sd_bus_error* e) {
    return with_strings<0>(m, u, e, [](Impl& s, const Caller&, Args0) { return s.get_status(); });
}

int m_check_policy(sd_bus_message* m, void* u, sd_bus_error* e) {
    return guarded(m, u, e, [&](Impl& s, const Caller&) {
        auto r = s.check_policy();
        if (!r) return reply_failure(e, r.error());
        return reply_with(m, [&](sd_bus_message* out) {
            const int valid = r->first;
            int q = sd_bus_message_append_basic(out, 'b', &valid);
            return q < 0 ? q : api::append_json(out, r->second, "a{sv}");
        });
    });
}

int m_reload_policy(sd_bus_message* m, void* u, sd_bus_error* e) {
    return with_strings<0>(m, u, e, [](Impl& s, const Caller& c, Args0) { return s.reload_policy(c); });
}

int m_show_policy(sd_bus_message* m, void* u, sd_bus_error* e) {
    return with_strings<0>(m, u, e, [](Impl& s, const Caller&, Args0) { return s.show_policy(); });
}

int m_list_zones(sd_bus_message* m, void* u, sd_bus_error* e) {
    return with_strings<0>(m, u, e, [](Impl& s, const Caller&, Args0) { return s.list_zones(); });
}

int m_allow_user(sd_bus_message* m, void* u, sd_bus_error* e) {
    return with_strings<2>(m, u, e, [](Impl& s, const Caller& c, Args2 a) { return s.allow_user(c, a[0], a[1]); });
}

int m_revoke_user(sd_bus_message* m, void* u, sd_bus_error* e) {
    return with_strings<2>(m, u, e, [](Impl& s, const Caller& c, Args2 a) { return s.revoke_user(c, a[0], a[1]); });
}

int m_list_users(sd_bus_message* m, void* u, sd_bus_error* e) {
    return with_strings<1>(m, u, e, [](Impl& s, const Caller&, Args1 a) { return s.list_users(a[0]); });
}

int m_allow_device(sd_bus_message* m, void* u, sd_bus_error* e) {
    return with_strings<3>(m, u, e,
                           [](Impl& s, const Caller& c, Args3 a) { return s.allow_device(c, a[0], a[1], a[2]); });
}

int m_revoke_device(sd_bus_message* m, void* u, sd_bus_error* e) {
    return with_strings<3>(m, u, e,
                           [](Impl& s, const Caller& c, Args3 a) { return s.revoke_device(c, a[0], a[1], a[2]); });
}

int m_list_devices(sd_bus_message* m, void* u, sd_bus_error* e) {
    return with_strings<2>(m, u, e, [](Impl& s, const Caller&, Args2 a) { return s.list_devices(a[0], a[1]); });
}

// AddGrant and AddClientGrant: (zone, user or client, seconds, reason) -> expires_at.
template <Result<std::uint64_t> (Impl::*Add)(const Caller&, const std::string&, const std::string&, std::int64_t,
                                              const std::string&)>
int m_add_grant_of(sd_bus_message* m, void* u, sd_bus_error* e) {
    return guarded(m, u, e, [&](Impl& s, const Caller& c) {
        const char *zone = nullptr, *who = nullptr, *reason = nullptr;
        std::int64_t seconds = 0;
        int r = sd_bus_message_read(m, "ssxs", &zone, &who, &seconds, &reason);
        if (r < 0) return sd_bus_error_set_errno(e, r);
        auto res = (s.*Add)(c, zone, who, seconds, reason);
        if (!res) return reply_failure(e, res.error());
        return sd_bus_reply_method_return(m, "t", *res);
    });
}

int m_revoke_client_grant(sd_bus_message* m, void* u, sd_bus_error* e) {
    return with_strings<2>(m, u, e,
                           [](Impl& s, const Caller& c, Args2 a) { return s.revoke_client_grant(c, a[0], a[1]); });
}

int m_list_grants(sd_bus_message* m, void* u, sd_bus_error* e) {
    return with_strings<1>(m, u, e, [](Impl& s, const Caller&, Args1 a) { return s.list_grants(a[0]); });
}

// One zone argument in, a typed list out (api::append).
template <typename Fn>
int with_zone_list(sd_bus_message* m, void* u, sd_bus_error* e, Fn&& fn) {
    return guarded(m, u, e, [&](Impl& s, const Caller&) {
        const char* zone = nullptr;
        if (int r = sd_bus_message_read_basic(m, 's', &zone); r < 0) return sd_bus_error_set_errno(e, r);
        auto list = fn(s, zone);
        if (!list) return reply_failure(e, list.error());
        return reply_with(m, [&](sd_bus_message* out) { return api::append(out, *list); });
    });
}

int m_get_grants(sd_bus_message* m, void* u, sd_bus_error* e) {
    return with_zone_list(m, u, e, [](Impl& s, const char* zone) { return s.grants(zone); });
}

int m_get_history(sd_bus_message* m, void* u, sd_bus_error* e) {  // history.hpp
    return guarded(m, u, e, [&](Impl& s, const Caller&) {
        auto f = history::read_filter(m);
        if (!f) return reply_failure(e, {error::invalid_argument, f.error()});
        auto rows = history::query(s.daemon.journal_namespace(), *f);
        if (!rows) return reply_failure(e, {error::failed, rows.error()});
        sd_bus_message* raw = nullptr;
        int r = sd_bus_message_new_method_return(m, &raw);
        MessagePtr reply(raw);
        if (r >= 0) r = history::append(reply.get(), *rows);
        return r < 0 ? r : sd_bus_send(nullptr, reply.get(), nullptr);
    });
}

int m_revoke_grant(sd_bus_message* m, void* u, sd_bus_error* e) {
    return with_strings<2>(m, u, e, [](Impl& s, const Caller& c, Args2 a) { return s.revoke_grant(c, a[0], a[1]); });
}

int m_subscribe(sd_bus_message* m, void* u, sd_bus_error* e) {
    return guarded(m, u, e, [&](Impl& s, const Caller& c) {
        auto r = s.subscribe(c);
        if (!r) return reply_failure(e, r.error());
        return sd_bus_reply_method_return(m, "");
    });
}

int m_list_held_jobs(sd_bus_message* m, void* u, sd_bus_error* e) {
    return with_zone_list(m, u, e, [](Impl& s, const char* zone) { return s.list_held_jobs(zone); });
}

int m_approve_job(sd_bus_message* m, void* u, sd_bus_error* e) {
    return with_strings<2>(m, u, e, [](Impl& s, const Caller& c, Args2 a) {
        return s.decide_job(c, a[0], a[1], daemon::JobDecision::approved);
    });
}

int m_reject_job(sd_bus_message* m, void* u, sd_bus_error* e) {
    return with_strings<2>(m, u, e, [](Impl& s, const Caller& c, Args2 a) {
        return s.decide_job(c, a[0], a[1], daemon::JobDecision::rejected);
    });
}

int m_send_report(sd_bus_message* m, void* u, sd_bus_error* e) {
    return guarded(m, u, e, [&](Impl& s, const Caller& c) {
        const char* title = nullptr;
        const char* body = nullptr;
        int r = sd_bus_message_read(m, "ss", &title, &body);
        std::vector<std::string> targets;
        if (r >= 0) r = sd_bus_message_enter_container(m, 'a', "s");
        const char* t = nullptr;
        while (r >= 0 && (r = sd_bus_message_read_basic(m, 's', &t)) > 0) targets.emplace_back(t);
        if (r >= 0) r = sd_bus_message_exit_container(m);
        if (r < 0) return sd_bus_error_setf(e, error::invalid_argument, "malformed SendReport call: %s", std::strerror(-r));
        return reply(m, e, s.send_report(c, title, body, targets));
    });
}

// Answered later by the print gate's workers (a scan may take a while).
int m_check_print_job(sd_bus_message* m, void* u, sd_bus_error* e) {
    return guarded(m, u, e, [&](Impl& s, const Caller&) { return s.daemon.print_gate().handle_check_print_job(m, e); });
}

// Properties are read like methods are called: HeldJobs needs read-history, the others
// read-status. When the current message is not a Properties call, sd-bus is composing
// PropertiesChanged for publish() (signals reach only root and custguard-admin:
// org.custguard1.conf). A refused GetAll is recorded as GetAll.
template <typename Fn>
int guarded_property(sd_bus* bus, const char* property, sd_bus_message* reply, void* userdata, sd_bus_error* err,
                     Fn&& fn) {
    auto* self = static_cast<Impl*>(userdata);
    try {
        sd_bus_message* call = sd_bus_get_current_message(bus);
        if (call && sd_bus_message_is_method_call(call, "org.freedesktop.DBus.Properties", nullptr) > 0) {
            const bool history = std::string_view(property) == api::property::held_jobs;
            Caller who;
            auto caller = self->authorize(
                call, Request{history ? api::action::read_history : api::action::read_status, {}}, who);
            if (!caller) {
                const bool all = sd_bus_message_is_method_call(call, nullptr, "GetAll") > 0;
                self->record_denied(call, who, caller.error().message, all ? "GetAll" : property);
                return reply_failure(err, caller.error());
            }
        }
        return fn(*self, reply);
    } catch (const std::exception& e) {
        return sd_bus_error_setf(err, error::failed, "internal error: %s; see the daemon's log", e.what());
    }
}

int p_version(sd_bus* b, const char*, const char*, const char* p, sd_bus_message* reply, void* u, sd_bus_error* e) {
    return guarded_property(b, p, reply, u, e, [](Impl& s, sd_bus_message* r) {
        return sd_bus_message_append_basic(r, 's', s.daemon.status().version.c_str());
    });
}

int p_enforcer(sd_bus* b, const char*, const char*, const char* p, sd_bus_message* reply, void* u, sd_bus_error* e) {
    return guarded_property(b, p, reply, u, e, [](Impl& s, sd_bus_message* r) {
        return sd_bus_message_append_basic(r, 's', s.daemon.status().enforcer.c_str());
    });
}

int p_zones(sd_bus* b, const char*, const char*, const char* p, sd_bus_message* reply, void* u, sd_bus_error* e) {
    return guarded_property(b, p, reply, u, e, [](Impl& s, sd_bus_message* r) {
        std::vector<api::Zone> zones;
        for (const auto& z : s.daemon.current_policy().zones) zones.push_back(Impl::zone_value(z));
        return api::append(r, zones);
    });
}

int p_held_jobs(sd_bus* b, const char*, const char*, const char* p, sd_bus_message* reply, void* u, sd_bus_error* e) {
    return guarded_property(b, p, reply, u, e, [](Impl& s, sd_bus_message* r) {
        std::vector<api::HeldJob> jobs;
        for (const auto& j : s.daemon.held_jobs().list()) jobs.push_back(Impl::job_value(j));
        return api::append(r, jobs);
    });
}

int p_counters(sd_bus* b, const char*, const char*, const char* p, sd_bus_message* reply, void* u, sd_bus_error* e) {
    return guarded_property(b, p, reply, u, e, [](Impl& s, sd_bus_message* r) {
        return api::append(r, Impl::counters_of(s.daemon.status(), s.daemon.held_jobs().list().size(),
                                                s.alerts->dropped.load(std::memory_order_relaxed)));
    });
}

// Every method changes state or reveals it, so none is privileged-free; the checks are in
// guarded(). SD_BUS_VTABLE_UNPRIVILEGED tells sd-bus not to apply its own (capability
// based) check, which would refuse group members before we could record the attempt.
constexpr auto k_flags = SD_BUS_VTABLE_UNPRIVILEGED;

const sd_bus_vtable k_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD_WITH_NAMES("GetStatus", "", , "a{sv}", SD_BUS_PARAM(status), m_get_status, k_flags),
    SD_BUS_METHOD_WITH_NAMES("CheckPolicy", "", , "baa{sv}", SD_BUS_PARAM(valid) SD_BUS_PARAM(diagnostics),
                             m_check_policy, k_flags),
    SD_BUS_METHOD_WITH_NAMES("ReloadPolicy", "", , "aa{sv}", SD_BUS_PARAM(warnings), m_reload_policy, k_flags),
    SD_BUS_METHOD_WITH_NAMES("ShowPolicy", "", , "a{sv}", SD_BUS_PARAM(policy), m_show_policy, k_flags),
    SD_BUS_METHOD_WITH_NAMES("ListZones", "", , "aa{sv}", SD_BUS_PARAM(zones), m_list_zones, k_flags),
    SD_BUS_METHOD_WITH_NAMES("AllowUser", "ss", SD_BUS_PARAM(zone) SD_BUS_PARAM(user), "s", SD_BUS_PARAM(message),
                             m_allow_user, k_flags),
    SD_BUS_METHOD_WITH_NAMES("RevokeUser", "ss", SD_BUS_PARAM(zone) SD_BUS_PARAM(user), "s", SD_BUS_PARAM(message),
                             m_revoke_user, k_flags),
    SD_BUS_METHOD_WITH_NAMES("ListUsers", "s", SD_BUS_PARAM(zone), "aa{sv}", SD_BUS_PARAM(users), m_list_users, k_flags),
    SD_BUS_METHOD_WITH_NAMES("AllowDevice", "sss", SD_BUS_PARAM(kind) SD_BUS_PARAM(zone) SD_BUS_PARAM(value), "s",
                             SD_BUS_PARAM(message), m_allow_device, k_flags),
    SD_BUS_METHOD_WITH_NAMES("RevokeDevice", "sss", SD_BUS_PARAM(kind) SD_BUS_PARAM(zone) SD_BUS_PARAM(value), "s",
                             SD_BUS_PARAM(message), m_revoke_device, k_flags),
    SD_BUS_METHOD_WITH_NAMES("ListDevices", "ss", SD_BUS_PARAM(kind) SD_BUS_PARAM(zone), "aa{sv}", SD_BUS_PARAM(devices),
                             m_list_devices, k_flags),
    SD_BUS_METHOD_WITH_NAMES("AddGrant", "ssxs",
                             SD_BUS_PARAM(zone) SD_BUS_PARAM(user) SD_BUS_PARAM(seconds) SD_BUS_PARAM(reason), "t",
                             SD_BUS_PARAM(expires_at), m_add_grant_of<&Impl::add_grant>, k_flags),
    SD_BUS_METHOD_WITH_NAMES("ListGrants", "s", SD_BUS_PARAM(zone), "aa{sv}", SD_BUS_PARAM(grants), m_list_grants, k_flags),
    SD_BUS_METHOD_WITH_NAMES("GetGrants", "s", SD_BUS_PARAM(zone), "a(ssstsst)", SD_BUS_PARAM(grants), m_get_grants,
                             k_flags),
    SD_BUS_METHOD_WITH_NAMES("GetHistory", "ssssttu", SD_BUS_PARAM(zone) SD_BUS_PARAM(user) SD_BUS_PARAM(client)
                             SD_BUS_PARAM(event) SD_BUS_PARAM(since_usec) SD_BUS_PARAM(until_usec) SD_BUS_PARAM(limit),
                             "a(tssssss)b", SD_BUS_PARAM(rows) SD_BUS_PARAM(truncated), m_get_history, k_flags),
    SD_BUS_METHOD_WITH_NAMES("RevokeGrant", "ss", SD_BUS_PARAM(zone) SD_BUS_PARAM(user), "s", SD_BUS_PARAM(message),
                             m_revoke_grant, k_flags),
    SD_BUS_METHOD_WITH_NAMES("AddClientGrant", "ssxs",
                             SD_BUS_PARAM(zone) SD_BUS_PARAM(client) SD_BUS_PARAM(seconds) SD_BUS_PARAM(reason), "t",
                             SD_BUS_PARAM(expires_at), m_add_grant_of<&Impl::add_client_grant>, k_flags),
    SD_BUS_METHOD_WITH_NAMES("RevokeClientGrant", "ss", SD_BUS_PARAM(zone) SD_BUS_PARAM(client), "s",
                             SD_BUS_PARAM(message), m_revoke_client_grant, k_flags),
    SD_BUS_METHOD_WITH_NAMES("ListHeldJobs", "s", SD_BUS_PARAM(zone), "a(sssususta{su})", SD_BUS_PARAM(jobs), m_list_held_jobs, k_flags),
    SD_BUS_METHOD("Subscribe", "", "", m_subscribe, k_flags),
    SD_BUS_METHOD_WITH_NAMES("ApproveJob", "ss", SD_BUS_PARAM(job) SD_BUS_PARAM(comment), "s", SD_BUS_PARAM(message),
                             m_approve_job, k_flags),
    SD_BUS_METHOD_WITH_NAMES("RejectJob", "ss", SD_BUS_PARAM(job) SD_BUS_PARAM(reason), "s", SD_BUS_PARAM(message),
                             m_reject_job, k_flags),
    SD_BUS_METHOD_WITH_NAMES("CheckPrintJob", "a{ss}h", SD_BUS_PARAM(job) SD_BUS_PARAM(document), "sss",
                             SD_BUS_PARAM(action) SD_BUS_PARAM(reason) SD_BUS_PARAM(hold_id), m_check_print_job,
                             k_flags),
    SD_BUS_METHOD_WITH_NAMES("CheckPrintJobDocuments", "a{ss}ah", SD_BUS_PARAM(job) SD_BUS_PARAM(documents), "sss",
                             SD_BUS_PARAM(action) SD_BUS_PARAM(reason) SD_BUS_PARAM(hold_id), m_check_print_job,
                             k_flags),
    SD_BUS_METHOD_WITH_NAMES("SendReport", "ssas", SD_BUS_PARAM(title) SD_BUS_PARAM(body) SD_BUS_PARAM(targets), "s",
                             SD_BUS_PARAM(message), m_send_report, k_flags),
    SD_BUS_PROPERTY("Version", "s", p_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Enforcer", "s", p_enforcer, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Zones", "a(sasssasas)", p_zones, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("HeldJobs", "a(sssususta{su})", p_held_jobs, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Counters", "a{st}", p_counters, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_SIGNAL_WITH_NAMES("JobHeld", "(sssususta{su})", SD_BUS_PARAM(job), 0),
    SD_BUS_SIGNAL_WITH_NAMES("Alert", "ssss", SD_BUS_PARAM(event) SD_BUS_PARAM(zone) SD_BUS_PARAM(user)
                             SD_BUS_PARAM(message), 0),
    SD_BUS_VTABLE_END,
};

}  // namespace

ControlPlane::ControlPlane(daemon::Daemon& daemon, ControlPlaneOptions options)
    : impl_(std::make_unique<Impl>(daemon, std::move(options))) {}

ControlPlane::~ControlPlane() {
    if (impl_->bus) sd_bus_detach_event(impl_->bus.get());
}

bool ControlPlane::running() const { return impl_->bus != nullptr; }

tl::expected<void, std::string> ControlPlane::start(sd_event* event) {
    sd_bus* raw = nullptr;
    int r;
    if (impl_->options.address.empty()) {
        r = sd_bus_open_system(&raw);
        if (r < 0) {
            const char* env = std::getenv("DBUS_SYSTEM_BUS_ADDRESS");
            return tl::unexpected(fmt::format("cannot connect to the system bus ({}): {}",
                                              env ? env : "unix:path=/run/dbus/system_bus_socket",
                                              std::strerror(-r)));
        }
    } else {
        r = sd_bus_new(&raw);
        if (r >= 0) r = sd_bus_set_address(raw, impl_->options.address.c_str());
        if (r >= 0) r = sd_bus_set_bus_client(raw, 1);
        if (r >= 0) r = sd_bus_start(raw);
        if (r < 0) {
            if (raw) sd_bus_unref(raw);
            return tl::unexpected(fmt::format("cannot connect to the bus {}: {}", impl_->options.address,
                                              std::strerror(-r)));
        }
    }
    BusPtr bus(raw);
    sd_bus_slot* slot = nullptr;
    r = sd_bus_add_object_vtable(bus.get(), &slot, object_path, interface_name, k_vtable, impl_.get());
    if (r < 0) return tl::unexpected(fmt::format("cannot export {}: {}", object_path, std::strerror(-r)));
    SlotPtr slot_owner(slot);
    r = sd_bus_request_name(bus.get(), bus_name, 0);
    if (r < 0)
        return tl::unexpected(fmt::format("cannot own the bus name {}: {} (another custguardd running, or the "
                                          "D-Bus policy org.custguard1.conf not installed?)",
                                          bus_name, std::strerror(-r)));
    sd_bus_slot* owners = nullptr;
    r = sd_bus_match_signal(bus.get(), &owners, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                            "NameOwnerChanged", &Impl::on_name_owner_changed, impl_.get());
    if (r < 0) return tl::unexpected(fmt::format("cannot follow the bus's connections: {}", std::strerror(-r)));
    impl_->owner_changes.reset(owners);
    r = sd_bus_attach_event(bus.get(), event, SD_EVENT_PRIORITY_NORMAL);
    if (r < 0) return tl::unexpected(fmt::format("cannot attach the bus to the event loop: {}", std::strerror(-r)));
    impl_->slot = std::move(slot_owner);
    impl_->bus = std::move(bus);
    if (auto r = impl_->start_publishing(event); !r) return r;
    return {};
}

}  // namespace custguard::dbus
