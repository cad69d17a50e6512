// custguardctl's online verbs: D-Bus calls to org.custguard1 and journal queries.
#include "ctl.hpp"

#include "journal.hpp"

#include <systemd/sd-bus.h>
#include <systemd/sd-journal.h>
#include <poll.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <functional>
#include <optional>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "custguard/common/text_escape.hpp"
#include "custguard/policy/load.hpp"
#include "custguard/api/client.hpp"
#include "custguard/api/json.hpp"
#include "custguard/api/names.hpp"
#include "custguard/common/json.hpp"
#include "custguard/common/policy_files.hpp"

namespace custguard::cli {

namespace {

using common::Json;
using common::escape_text;

// ---- output helpers --------------------------------------------------------------------

std::size_t display_width(std::string_view s) {
    // Code points, with East Asian wide characters (most 3-byte UTF-8 sequences from
    // U+1100 on, i.e. kana and kanji) counted as two columns.
    std::size_t w = 0;
    for (std::size_t i = 0; i < s.size();) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) ++w, ++i;
        else if ((c & 0xe0) == 0xc0) ++w, i += 2;
        else if ((c & 0xf0) == 0xe0) w += 2, i += 3;
        else w += 2, i += 4;
    }
    return w;
}

// Cells are escaped (common/text_escape.hpp): a file name holding a newline or an escape
// sequence shows as \n or \x1b and cannot forge rows or drive the terminal.
void print_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& raw_rows) {
    if (raw_rows.empty()) {
        std::cout << "(none)\n";
        return;
    }
    std::vector<std::vector<std::string>> rows;
    rows.reserve(raw_rows.size());
    for (const auto& r : raw_rows) {
        std::vector<std::string> cells;
        cells.reserve(r.size());
        for (const auto& c : r) cells.push_back(escape_text(c));
        rows.push_back(std::move(cells));
    }
    std::vector<std::size_t> widths(header.size());
    for (std::size_t i = 0; i < header.size(); ++i) widths[i] = display_width(header[i]);
    for (const auto& r : rows)
        for (std::size_t i = 0; i < r.size() && i < widths.size(); ++i)
            widths[i] = std::max(widths[i], display_width(r[i]));
    auto line = [&](const std::vector<std::string>& cells) {
        std::string out;
        for (std::size_t i = 0; i < cells.size(); ++i) {
            out += cells[i];
            if (i + 1 < cells.size()) out.append(widths[i] - display_width(cells[i]) + 2, ' ');
        }
        while (!out.empty() && out.back() == ' ') out.pop_back();
        std::cout << out << '\n';
    };
    line(header);
    for (const auto& r : rows) line(r);
}

std::string format_time(std::uint64_t seconds) {
    if (seconds == 0) return "-";
    time_t t = static_cast<time_t>(seconds);
    tm local{};
    localtime_r(&t, &local);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &local);
    return buf;
}

std::string format_duration(std::uint64_t s) {
    if (s >= 86400) return std::to_string(s / 86400) + "d" + (s % 86400 ? std::to_string(s % 86400 / 3600) + "h" : "");
    if (s >= 3600) return std::to_string(s / 3600) + "h" + (s % 3600 ? std::to_string(s % 3600 / 60) + "m" : "");
    if (s >= 60) return std::to_string(s / 60) + "m" + (s % 60 ? std::to_string(s % 60) + "s" : "");
    return std::to_string(s) + "s";
}

// The fanotify enforcer's answers without a full decision and its rescans; nothing when
// there were none (and always under BPF LSM).
std::string overload_text(const Json& sensor) {
    const std::int64_t overload = sensor["overload"].as_int(), refused = sensor["overload_refused"].as_int(),
                       rescans = sensor["rescans"].as_int();
    if (overload == 0 && rescans == 0) return {};
    return ", " + std::to_string(overload) + " answered in overload (" + std::to_string(refused) + " refused), " +
           std::to_string(rescans) + " rescans";
}

std::string join(const std::vector<std::string>& v, std::string_view sep = ", ") {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : std::string(sep)) + s;
    return out;
}

std::string join_json_strings(const Json& arr, std::string_view sep = ", ") {
    std::string out;
    for (const auto& v : arr.as_array()) out += (out.empty() ? "" : std::string(sep)) + v.as_string();
    return out;
}

// ---- D-Bus client (custguard_api) ----------------------------------------------------------

// A failure with the exit code custguardctl(8) documents for it.
struct CallError {
    int exit_code;
    std::string name;
    std::string message;
};

int report(const CallError& e, bool json) {
    if (json)
        std::cout << Json::object().set("error", e.name).set("message", e.message).set("exit", e.exit_code).dump()
                  << '\n';
    std::cerr << "custguardctl: " << escape_text(e.message) << '\n';
    return e.exit_code;
}

CallError classify(const api::CallError& e) {
    if (e.denied()) return {k_exit_denied, e.name, e.message};
    if (e.unreachable())
        return {k_exit_unreachable, e.name,
                "custguardd is not reachable on the bus (" + e.message + "); is it running? (systemctl status custguardd)"};
    if (e.unknown_member())
        return {k_exit_failed, e.name,
                "the running custguardd does not offer this (" + e.message +
                    "); is it older than custguardctl? restart it after an upgrade"};
    return {k_exit_failed, e.name.empty() ? std::string(api::error::failed) : e.name, e.message};
}

template <typename T>
tl::expected<T, CallError> classified(tl::expected<T, api::CallError> r) {
    if (!r) return tl::unexpected(classify(r.error()));
    return std::move(*r);
}

tl::expected<std::string, CallError> read_string(sd_bus_message* m) {
    const char* s = nullptr;
    int r = sd_bus_message_read_basic(m, 's', &s);
    if (r <= 0)
        return tl::unexpected(CallError{k_exit_failed, "", std::string("malformed reply: ") + std::strerror(r ? -r : EBADMSG)});
    return std::string(s ? s : "");
}

// A typed document (a{sv}, aa{sv}) as the JSON custguardctl --json prints (api/json.hpp).
tl::expected<Json, CallError> read_json(sd_bus_message* m) {
    Json j;
    if (int r = api::read_json(m, j); r < 0)
        return tl::unexpected(CallError{k_exit_failed, "", std::string("malformed reply from custguardd: ") + std::strerror(-r)});
    return j;
}

// ---- journal ----------------------------------------------------------------------------------

bool path_matches(const std::map<std::string, std::string>& f, const std::string& prefix) {
    if (prefix.empty()) return true;
    for (const char* key : {"CUSTGUARD_PATH", "CUSTGUARD_TARGET"}) {
        auto it = f.find(key);
        if (it == f.end()) continue;
        const auto& p = it->second;
        if (p == prefix || (p.size() > prefix.size() && p.compare(0, prefix.size(), prefix) == 0 &&
                            (prefix.back() == '/' || p[prefix.size()] == '/')))
            return true;
    }
    return false;
}

Json entry_json(std::uint64_t usec, const std::map<std::string, std::string>& f) {
    time_t t = static_cast<time_t>(usec / 1'000'000);
    tm utc{};
    gmtime_r(&t, &utc);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &utc);
    char frac[16];
    std::snprintf(frac, sizeof frac, ".%06lluZ", static_cast<unsigned long long>(usec % 1'000'000));
    Json o = Json::object().set("time", std::string(buf) + frac).set("realtime_usec", usec);
    for (const auto& [k, v] : f) {
        std::string key = k;
        if (key.rfind("CUSTGUARD_", 0) == 0) key = key.substr(10);
        std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
        o.set(key, v);
    }
    return o;
}

std::vector<std::string> entry_row(std::uint64_t usec, const std::map<std::string, std::string>& f) {
    auto get = [&](const char* k) {
        auto it = f.find(k);
        return it == f.end() ? std::string() : it->second;
    };
    std::string what = get("CUSTGUARD_PATH");
    if (what.empty()) what = get("CUSTGUARD_TARGET");
    std::string event = get("CUSTGUARD_EVENT");
    if (event == "admin_change") event = "admin:" + get("CUSTGUARD_ADMIN_ACTION");
    std::string user = get("CUSTGUARD_USER");
    if (user.empty()) user = get("CUSTGUARD_UID");
    return {format_time(usec / 1'000'000), event, get("CUSTGUARD_DECISION"), user, get("CUSTGUARD_ZONE"), what,
            get("CUSTGUARD_CLIENT")};
}

const std::vector<std::string> k_history_header = {"TIME", "EVENT", "DECISION", "USER", "ZONE", "PATH/TARGET", "CLIENT"};

volatile sig_atomic_t g_stop = 0;

}  // namespace

// ---- the verbs ---------------------------------------------------------------------------------

struct ControlCommands::Impl {
    CLI::App* status = nullptr;
    CLI::App* policy_check = nullptr;
    CLI::App* policy_reload = nullptr;
    CLI::App* policy_show = nullptr;
    CLI::App* zone_list = nullptr;
    CLI::App *user_allow = nullptr, *user_revoke = nullptr, *user_list = nullptr;
    CLI::App *device_allow = nullptr, *device_revoke = nullptr, *device_list = nullptr;
    CLI::App *grant_add = nullptr, *grant_list = nullptr, *grant_revoke = nullptr;
    CLI::App *print_held = nullptr, *print_approve = nullptr, *print_reject = nullptr;
    CLI::App* history = nullptr;
    CLI::App* events = nullptr;

    bool json = false;
    bool names_only = false;
    std::vector<std::string> check_files;  // set by main's `policy check FILE...`
    std::string zone, user, kind, value, duration, reason, job, comment, grant_client;
    std::vector<std::string> users, device_args;
    JournalFilter filter;
    std::string since, until, name_space, directory;
    std::size_t limit = 0;
    std::size_t lines = 10;
    bool follow = false;

    std::optional<api::Client> bus;

    int connect() {
        auto c = api::Client::connect_system();
        if (!c) return report({k_exit_unreachable, c.error().name, c.error().message}, json);
        bus.emplace(std::move(*c));
        return k_exit_ok;
    }

    tl::expected<api::MessagePtr, CallError> call(const char* member,
                                                  const std::function<int(sd_bus_message*)>& append = {}) {
        return classified(bus->call(member, append));
    }

    tl::expected<api::MessagePtr, CallError> call_strings(const char* member, const std::vector<std::string>& args) {
        return classified(bus->call_strings(member, args));
    }

    int simple_message(tl::expected<api::MessagePtr, CallError> reply) {
        if (!reply) return report(reply.error(), json);
        auto s = read_string(reply->get());
        if (!s) return report(s.error(), json);
        if (json) std::cout << Json::object().set("message", *s).dump() << '\n';
        else std::cout << escape_text(*s) << '\n';
        return k_exit_ok;
    }

    // Calls a method returning a typed document; prints it as JSON with --json or hands it to `render`.
    template <typename Render>
    int json_call(tl::expected<api::MessagePtr, CallError> reply, Render&& render) {
        if (!reply) return report(reply.error(), json);
        auto j = read_json(reply->get());
        if (!j) return report(j.error(), json);
        if (json) {
            std::cout << j->dump(2) << '\n';
            return k_exit_ok;
        }
        render(*j);
        return k_exit_ok;
    }

    int do_status() {
        return json_call(call("GetStatus"), [](const Json& s) {
            std::vector<std::vector<std::string>> rows = {
                {"version", s["version"].as_string()},
                {"enforcer", s["enforcer"].as_string() + (s["adopted"].as_bool() ? " (adopted)" : "")},
                {"enforcer reason", s["enforcer_reason"].as_string()},
                {"policy", s["policy_path"].as_string() + " (digest " + s["policy_digest"].as_string() + ")"},
                {"policy loaded", format_time(static_cast<std::uint64_t>(s["policy_loaded_at"].as_int()))},
                {"reloads", s["reloads"].as_string() + " accepted, " + s["reload_failures"].as_string() + " refused"},
                {"zones", join_json_strings(s["zones"])},
                {"state", s["state_dir"].as_string() + ": " + s["state_users"].as_string() + " users, " +
                              s["state_devices"].as_string() + " devices, " + s["grants"].as_string() + " grants"},
                {"held print jobs", s["held_jobs"].as_string()},
                {"sensor", s["sensor"]["events"].as_string() + " events, " + s["sensor"]["denied"].as_string() +
                               " denied, " + s["sensor"]["dropped"].as_string() + " dropped" + overload_text(s["sensor"])},
                {"records", s["pipeline"]["seq"].as_string() + " written, journal " +
                                (s["pipeline"]["journal_reachable"].as_bool() ? "reachable" : "NOT reachable") + ", " +
                                s["pipeline"]["spool_pending"].as_string() + " spooled, " +
                                s["pipeline"]["lost"].as_string() + " lost, " +
                                s["pipeline"]["repeats_counted"].as_string() + " repeated refusals counted"},
                {"started", format_time(static_cast<std::uint64_t>(s["started_at"].as_int()))},
                {"alert signals dropped", s["alerts_dropped"].as_string()},
                {"authorization", s["authorization"]["mode"].as_string() == "polkit"
                                      ? "polkit"
                                      : "fallback: " + s["authorization"]["reason"].as_string()},
            };
            if (!s["notify"].is_null()) {
                const Json& n = s["notify"];
                rows.push_back({"notifications", n["sent"].as_string() + " sent, " + n["queued"].as_string() + " queued, " +
                                                     n["failed"].as_string() + " failed attempts, " + n["retries"].as_string() +
                                                     " retries, " + n["overflow"].as_string() + " overflow"});
                rows.push_back({"alerts", n["alerts"].as_string() + " queued, " + n["alerts_suppressed"].as_string() +
                                              " held back by the rate limit; " + n["digests"].as_string() + " digests; " +
                                              n["bulk_reads"].as_string() + " bulk reads"});
                rows.push_back({"notify intake", n["intake_batches"].as_string() + " batches taken, " + n["ignored"].as_string() +
                                                     " records no target or [bulk] limit concerns, " +
                                                     n["inbox_dropped"].as_string() + " dropped with the inbox full"});
                if (!n["last_error"].as_string().empty()) rows.push_back({"notify error", n["last_error"].as_string()});
            }
            if (const Json& a = s["audit"]; !a.is_null()) {
                if (a["mode"].as_string() == "off")
                    rows.push_back({"audit", "off: " + a["off_reason"].as_string()});
                else
                    rows.push_back({"audit", a["mode"].as_string() + ", " + a["rules"].as_string() + " rules (key custguard:" +
                                                 a["instance"].as_string() + ":ZONE, or :* for a shared root), " +
                                                 a["accesses"].as_string() + " zone reads seen, " +
                                                 a["mismatches"].as_string() + " mismatches, " +
                                                 a["kernel_lost"].as_string() + " lost in the kernel, " +
                                                 a["overruns"].as_string() + " overruns"});
            }
            if (s["revoked"].is_array())
                for (const auto& r : s["revoked"].as_array())
                    rows.push_back({"revoked", (!r["client"].as_string().empty()
                                                    ? "client " + r["client"].as_string()
                                                    : r["user"].as_string() + " (" + r["uid"].as_string() + ")") +
                                                   " in zone " +
                                                   r["zone"].as_string() + " until " +
                                                   format_time(static_cast<std::uint64_t>(r["until"].as_int()))});
            // Per zone: the clients it allows and the reads each client made today.
            if (s["zone_clients"].is_array()) {
                rows.push_back({"client reads", "counted since " +
                                                    format_time(static_cast<std::uint64_t>(s["client_reads_since"].as_int())) +
                                                    " (local midnight, or the daemon's start)"});
                for (const auto& z : s["zone_clients"].as_array()) {
                    std::string reads;
                    for (const auto& r : z["reads_today"].as_array())
                        reads += (reads.empty() ? "" : ", ") + r["client"].as_string() + " " + r["reads"].as_string();
                    const bool any = z["allow_clients"].as_array().empty();
                    rows.push_back({"zone " + z["zone"].as_string(),
                                    "clients " + (any ? std::string("any (allow_clients not set)")
                                                      : join_json_strings(z["allow_clients"])) +
                                        "; reads today: " + (reads.empty() ? std::string("none") : reads)});
                }
            }
            if (!s["unprotected_queues"].as_array().empty())
                rows.push_back({"unprotected", join_json_strings(s["unprotected_queues"]) +
                                                   " (custguardctl printer protect QUEUE)"});
            for (const auto& w : s["warnings"].as_array()) rows.push_back({"warning", w.as_string()});
            for (const auto& r : rows)
                std::cout << r[0] << ":" << std::string(18 - std::min<std::size_t>(17, r[0].size()), ' ')
                          << escape_text(r[1]) << '\n';
        });
    }

    // A diagnostic is a line plus an optional "\n  hint:" line; each line is escaped.
    static void print_diagnostics(const Json& diags) {
        for (const auto& d : diags.as_array()) {
            const std::string text = d["text"].as_string();
            std::size_t start = 0;
            for (;;) {
                const auto nl = text.find('\n', start);
                std::cerr << escape_text(std::string_view(text).substr(start, nl == std::string::npos ? nl : nl - start))
                          << '\n';
                if (nl == std::string::npos) break;
                start = nl + 1;
            }
        }
    }

    int do_policy_check() {
        auto reply = call("CheckPolicy");
        if (!reply) return report(reply.error(), json);
        int valid = 0;
        if (int r = sd_bus_message_read_basic(reply->get(), 'b', &valid); r <= 0)
            return report({k_exit_failed, "", "malformed reply"}, json);
        auto diags = read_json(reply->get());
        if (!diags) return report(diags.error(), json);
        if (json) {
            std::cout << Json::object().set("valid", static_cast<bool>(valid)).set("diagnostics", *diags).dump(2) << '\n';
        } else {
            print_diagnostics(*diags);
            std::cout << (valid ? "policy OK" : "policy refused") << " (" << diags->as_array().size()
                      << " diagnostics); the running daemon's files were checked\n";
        }
        return valid ? k_exit_ok : k_exit_failed;
    }

    int do_policy_reload() {
        auto reply = call("ReloadPolicy");
        if (!reply) return report(reply.error(), json);
        auto j = read_json(reply->get());
        if (!j) return report(j.error(), json);
        if (json) {
            std::cout << Json::object().set("accepted", true).set("warnings", *j).dump(2) << '\n';
        } else {
            print_diagnostics(*j);
            std::cout << "policy reloaded\n";
        }
        return k_exit_ok;
    }

    static std::string origin_text(const Json& o) {
        auto kind = o["kind"].as_string();
        auto src = o["source"].as_string();
        return kind == "state" ? "state (custguardctl)" : src;
    }

    int do_policy_show() {
        return json_call(call("ShowPolicy"), [](const Json& p) {
            std::vector<std::vector<std::string>> rows;
            for (const auto& z : p["zones"].as_array()) {
                std::string zn = z["name"].as_string();
                rows.push_back({zn, "zone", z["sensitivity"].as_string() + ", on_violation " +
                                                 z["on_violation"].as_string() +
                                                 (z["record_allowed"].as_bool() ? ", records allowed reads" : ""),
                                origin_text(z["origin"])});
                for (const auto& e : z["paths"].as_array()) rows.push_back({zn, "path", e["path"].as_string(), origin_text(e["origin"])});
                for (const auto& e : z["allow_users"].as_array()) rows.push_back({zn, "user", e["name"].as_string(), origin_text(e["origin"])});
                for (const auto& e : z["allow_programs"].as_array()) rows.push_back({zn, "program", e["path"].as_string(), origin_text(e["origin"])});
                for (const auto& e : z["allow_clients"].as_array()) rows.push_back({zn, "client", e["client"].as_string(), origin_text(e["origin"])});
                for (const auto& e : z["notify"].as_array()) rows.push_back({zn, "notify", e.as_string(), ""});
            }
            const auto& pr = p["print"];
            rows.push_back({"[print]", "action", pr["action"].as_string() + ", threshold " + pr["threshold"].as_string(),
                            origin_text(pr["origin"])});
            for (const auto& e : pr["allow_printers"].as_array()) rows.push_back({"[print]", "printer", e.as_string(), ""});
            for (const auto& e : pr["allow_users"].as_array()) rows.push_back({"[print]", "user", e["name"].as_string(), origin_text(e["origin"])});
            if (!pr["detectors"].as_array().empty()) rows.push_back({"[print]", "detectors", join_json_strings(pr["detectors"]), ""});
            for (const auto& g : p["grants"].as_array()) {
                const std::string client = g["client"].as_string();
                rows.push_back({g["zone"].as_string(), "grant",
                                (client.empty() ? g["user"].as_string() : "client " + client) + " until " +
                                    format_time(static_cast<std::uint64_t>(g["expires_at"].as_int())),
                                origin_text(g["origin"])});
            }
            print_table({"ZONE", "ENTRY", "VALUE", "ORIGIN"}, rows);
        });
    }

    // The table and --names come from the typed Zones property; --json prints ListZones'
    // document, which also has origins and counts.
    int do_zone_list() {
        if (json) return json_call(call("ListZones"), [](const Json&) {});
        auto zones = classified(bus->zones());
        if (!zones) return report(zones.error(), json);
        if (names_only) {
            for (const auto& z : *zones) std::cout << escape_text(z.name) << '\n';
            return k_exit_ok;
        }
        std::vector<std::vector<std::string>> rows;
        for (const auto& z : *zones)
            rows.push_back({z.name, z.sensitivity, z.on_violation, join(z.paths), join(z.allow_users)});
        print_table({"ZONE", "SENSITIVITY", "ON_VIOLATION", "PATHS", "ALLOWED"}, rows);
        return k_exit_ok;
    }

    int for_each_user(const char* member) {
        int rc = k_exit_ok;
        for (const auto& u : users) {
            int r = simple_message(call_strings(member, {zone, u}));
            if (r != k_exit_ok) {
                rc = r;
                if (r == k_exit_unreachable || r == k_exit_denied) break;
            }
        }
        return rc;
    }

    int do_user_list() {
        return json_call(call_strings("ListUsers", {zone}), [](const Json& users) {
            std::vector<std::vector<std::string>> rows;
            for (const auto& u : users.as_array()) {
                std::string origin = u["origin"].as_string() == "state"
                                         ? "custguardctl (" + u["added_by"].as_string() + ", " +
                                               format_time(static_cast<std::uint64_t>(u["added_at"].as_int())) + ")"
                                         : u["source"].as_string();
                rows.push_back({u["zone"].as_string(), u["name"].as_string(), u["kind"].as_string(), origin});
            }
            print_table({"ZONE", "NAME", "KIND", "ORIGIN"}, rows);
        });
    }

    // device allow|revoke KIND [ZONE] VALUE
    tl::expected<std::vector<std::string>, CallError> device_triple() {
        const auto& a = device_args;
        if (a.empty())
            return tl::unexpected(CallError{k_exit_usage, "", "name the kind: printer QUEUE or client ZONE ADDRESS"});
        if (a[0] == "printer") {
            if (a.size() != 2) return tl::unexpected(CallError{k_exit_usage, "", "usage: device allow|revoke printer QUEUE"});
            return std::vector<std::string>{a[0], "", a[1]};
        }
        if (a.size() != 3)
            return tl::unexpected(CallError{k_exit_usage, "",
                                            "usage: device allow|revoke client ZONE IP|CIDR|HOST"});
        return a;
    }

    int do_device_change(const char* member) {
        auto t = device_triple();
        if (!t) return report(t.error(), json);
        return simple_message(call_strings(member, *t));
    }

    int do_device_list() {
        return json_call(call_strings("ListDevices", {kind, zone}), [](const Json& devices) {
            std::vector<std::vector<std::string>> rows;
            for (const auto& d : devices.as_array()) {
                std::string origin = d["origin"].as_string() == "state"
                                         ? "custguardctl (" + d["added_by"].as_string() + ")"
                                         : d["source"].as_string();
                rows.push_back({d["kind"].as_string(), d["zone"].as_string().empty() ? "-" : d["zone"].as_string(),
                                d["value"].as_string(), origin});
            }
            print_table({"KIND", "ZONE", "DEVICE", "ORIGIN"}, rows);
        });
    }

    // grant add|revoke name a USER or a --client CLIENT: exactly one. Checked before the bus.
    std::optional<CallError> grant_subject_error(const char* verb) const {
        if (!user.empty() && !grant_client.empty())
            return CallError{k_exit_usage, "",
                             std::string("grant ") + verb + ": give either USER or --client CLIENT, not both"};
        if (user.empty() && grant_client.empty())
            return CallError{k_exit_usage, "",
                             std::string("grant ") + verb + ": name a USER, or a client machine with --client CLIENT "
                             "(an address, a network such as 192.0.2.0/24, or a host name)"};
        return std::nullopt;
    }

    // The duration as signed seconds: a leading '-' is passed on as a negative duration, so
    // the daemon refuses it with a named error like any other bad value.
    tl::expected<std::int64_t, CallError> grant_seconds() const {
        std::string text = duration;
        bool negative = !text.empty() && text.front() == '-';
        if (negative) text.erase(0, 1);
        auto seconds = policy::parse_duration(text);
        if (!seconds || *seconds > static_cast<std::uint64_t>(INT64_MAX))
            return tl::unexpected(
                CallError{k_exit_usage, "", "'" + duration + "' is not a duration; write e.g. 90s, 30m, 2h or 1d"});
        return static_cast<std::int64_t>(*seconds) * (negative ? -1 : 1);
    }

    int do_grant_add(std::int64_t signed_seconds) {
        const bool for_client = !grant_client.empty();
        const std::string& who = for_client ? grant_client : user;
        auto reply = call(for_client ? "AddClientGrant" : "AddGrant", [&](sd_bus_message* m) {
            return sd_bus_message_append(m, "ssxs", zone.c_str(), who.c_str(), signed_seconds, reason.c_str());
        });
        if (!reply) return report(reply.error(), json);
        std::uint64_t expires = 0;
        if (sd_bus_message_read(reply->get(), "t", &expires) < 0) return report({k_exit_failed, "", "malformed reply"}, json);
        if (json)
            std::cout << Json::object()
                             .set("zone", zone)
                             .set(for_client ? "client" : "user", who)
                             .set("expires_at", expires)
                             .dump()
                      << '\n';
        else if (for_client)
            std::cout << "client " << escape_text(who) << " counts as listed in allow_clients of zone " << escape_text(zone)
                      << " until " << format_time(expires) << '\n';
        else
            std::cout << escape_text(user) << " may read zone " << escape_text(zone) << " until " << format_time(expires)
                      << '\n';
        return k_exit_ok;
    }

    // The table from the typed GetGrants; --json prints ListGrants' document.
    int do_grant_list() {
        if (json) return json_call(call_strings("ListGrants", {zone}), [](const Json&) {});
        auto grants = classified(bus->grants(zone));
        if (!grants) return report(grants.error(), json);
        const auto now = common::now_seconds();
        std::vector<std::vector<std::string>> rows;
        for (const auto& g : *grants)
            rows.push_back({g.zone, g.client.empty() ? g.user : "client " + g.client, format_time(g.expires_at),
                            format_duration(g.expires_at > now ? g.expires_at - now : 0), g.granted_by, g.reason});
        print_table({"ZONE", "FOR", "EXPIRES", "LEFT", "BY", "REASON"}, rows);
        return k_exit_ok;
    }

    // From the typed ListHeldJobs; --json prints the same fields as JSON.
    int do_print_held() {
        auto jobs = classified(bus->held_jobs(zone));
        if (!jobs) return report(jobs.error(), json);
        if (json) {
            Json out = Json::array();
            for (const auto& j : *jobs) out.push(api::to_json(j));
            std::cout << out.dump(2) << '\n';
            return k_exit_ok;
        }
        std::vector<std::vector<std::string>> rows;
        for (const auto& j : *jobs) {
            std::string hits;
            for (const auto& [name, n] : j.detector_hits) hits += (hits.empty() ? "" : ", ") + name + "=" + std::to_string(n);
            rows.push_back({j.job, j.printer, j.user, format_time(j.held_at), std::to_string(j.pages), j.title, hits});
        }
        print_table({"JOB", "PRINTER", "USER", "HELD", "PAGES", "TITLE", "DETECTORS"}, rows);
        return k_exit_ok;
    }

    tl::expected<bool, CallError> prepare_filter() {
        if (!since.empty()) {
            auto t = parse_time_usec(since);
            if (!t) return tl::unexpected(CallError{k_exit_usage, "", "--since '" + since + "': write a date (2026-10-01), a date and time (\"2026-10-01 09:00\"), today, yesterday or -2h"});
            filter.since_us = t;
        }
        if (!until.empty()) {
            auto t = parse_time_usec(until);
            if (!t) return tl::unexpected(CallError{k_exit_usage, "", "--until '" + until + "': write a date (2026-11-01), a date and time, today, now or -1h"});
            filter.until_us = t;
        }
        if (!filter.path.empty() && filter.path.front() != '/')
            return tl::unexpected(CallError{k_exit_usage, "", "--path takes an absolute path (a file or a directory)"});
        while (filter.path.size() > 1 && filter.path.back() == '/') filter.path.pop_back();
        return true;
    }

    int do_history() {
        if (auto p = prepare_filter(); !p) return report(p.error(), json);
        auto j = open_journal(name_space, directory);
        if (!j) return report({k_exit_failed, "", j.error()}, json);
        if (int r = add_matches(j->get(), filter); r < 0)
            return report({k_exit_usage, "", std::string("bad filter: ") + std::strerror(-r)}, json);
        int r = filter.since_us ? sd_journal_seek_realtime_usec(j->get(), *filter.since_us) : sd_journal_seek_head(j->get());
        if (r < 0) return report({k_exit_failed, "", std::string("journal seek: ") + std::strerror(-r)}, json);
        std::vector<std::vector<std::string>> rows;
        Json out = Json::array();
        std::size_t n = 0;
        while ((r = sd_journal_next(j->get())) > 0) {
            std::uint64_t usec = 0;
            sd_journal_get_realtime_usec(j->get(), &usec);
            if (filter.since_us && usec < *filter.since_us) continue;
            if (filter.until_us && usec >= *filter.until_us) break;
            auto f = entry_fields(j->get());
            if (!path_matches(f, filter.path)) continue;
            if (json) out.push(entry_json(usec, f));
            else rows.push_back(entry_row(usec, f));
            if (limit && ++n >= limit) break;
        }
        if (r < 0) return report({k_exit_failed, "", std::string("reading the journal: ") + std::strerror(-r)}, json);
        if (json) std::cout << out.dump(2) << '\n';
        else print_table(k_history_header, rows);
        return k_exit_ok;
    }

    int do_events() {
        if (auto p = prepare_filter(); !p) return report(p.error(), json);
        auto j = open_journal(name_space, directory);
        if (!j) return report({k_exit_failed, "", j.error()}, json);
        if (int r = add_matches(j->get(), filter); r < 0)
            return report({k_exit_usage, "", std::string("bad filter: ") + std::strerror(-r)}, json);
        // The last `lines` entries, then whatever arrives: step back from the tail and
        // print the entry we land on first.
        sd_journal_seek_tail(j->get());
        int moved = lines ? sd_journal_previous_skip(j->get(), lines) : sd_journal_previous(j->get());
        bool at_entry = lines && moved > 0;
        // Nothing recorded yet (perhaps no journal file yet): everything that arrives is
        // new, so read from the head; "tail" would skip entries of a file created later.
        if (moved <= 0) sd_journal_seek_head(j->get());
        ::signal(SIGINT, [](int) { g_stop = 1; });
        ::signal(SIGTERM, [](int) { g_stop = 1; });
        ::signal(SIGPIPE, [](int) { g_stop = 1; });
        bool header = false;
        while (!g_stop) {
            int r = at_entry ? 1 : sd_journal_next(j->get());
            at_entry = false;
            if (r < 0) return report({k_exit_failed, "", std::string("reading the journal: ") + std::strerror(-r)}, json);
            if (r == 0) {
                if (!follow) break;
                r = sd_journal_wait(j->get(), 500'000);
                if (r < 0) return report({k_exit_failed, "", std::string("waiting for the journal: ") + std::strerror(-r)}, json);
                continue;
            }
            std::uint64_t usec = 0;
            sd_journal_get_realtime_usec(j->get(), &usec);
            auto f = entry_fields(j->get());
            if (!path_matches(f, filter.path)) continue;
            if (json) {
                std::cout << entry_json(usec, f).dump() << std::endl;
            } else {
                if (!header) {
                    std::cout << "TIME                 EVENT / DECISION / USER / ZONE / PATH\n";
                    header = true;
                }
                auto row = entry_row(usec, f);
                std::string line = row[0];
                for (std::size_t i = 1; i < row.size(); ++i)
                    if (!row[i].empty()) line += "  " + escape_text(row[i]);
                std::cout << line << std::endl;
            }
            if (!std::cout) break;
        }
        return k_exit_ok;
    }
};

ControlCommands::ControlCommands(CLI::App& app, CLI::App& policy) : impl_(std::make_unique<Impl>()) {
    auto& d = *impl_;
    auto json_flag = [&](CLI::App* sub) { sub->add_flag("--json", d.json, "Print JSON for scripts instead of a table"); };

    d.status = app.add_subcommand("status", "Show the enforcer, policy, counters and version of the running daemon");
    json_flag(d.status);

    // `policy check` exists in main.cpp (offline, with FILE); without FILE it asks the daemon.
    d.policy_check = policy.get_subcommand("check");
    json_flag(d.policy_check);
    d.policy_reload = policy.add_subcommand("reload", "Reload the policy files; a refused policy leaves the running one in force");
    json_flag(d.policy_reload);
    d.policy_show = policy.add_subcommand("show", "Show the effective merged policy, each entry with its origin");
    json_flag(d.policy_show);

    auto* zone = app.add_subcommand("zone", "List the protected zones");
    zone->require_subcommand(1);
    d.zone_list = zone->add_subcommand("list", "List the zones with their paths and allowed users");
    json_flag(d.zone_list);
    d.zone_list->add_flag("--names", d.names_only, "Print only the zone names, one a line");

    auto* user = app.add_subcommand("user", "Allow, revoke and list users and %groups per zone");
    user->require_subcommand(1);
    d.user_allow = user->add_subcommand("allow", "Allow users or %groups to read a zone");
    d.user_allow->add_option("ZONE", d.zone, "Zone name, or a path inside the zone")->required();
    d.user_allow->add_option("USER", d.users, "User name, or %group")->required();
    json_flag(d.user_allow);
    d.user_revoke = user->add_subcommand("revoke", "Revoke users or %groups allowed with custguardctl");
    d.user_revoke->add_option("ZONE", d.zone, "Zone name, or a path inside the zone")->required();
    d.user_revoke->add_option("USER", d.users, "User name, or %group")->required();
    json_flag(d.user_revoke);
    d.user_list = user->add_subcommand("list", "List the users and %groups allowed per zone, with their origin");
    d.user_list->add_option("ZONE", d.zone, "Only this zone");
    json_flag(d.user_list);

    auto* device = app.add_subcommand("device", "Allow, revoke and list printers and client machines");
    device->require_subcommand(1);
    d.device_allow = device->add_subcommand("allow", "Allow a device: printer QUEUE | client ZONE ADDRESS");
    d.device_allow->add_option("DEVICE", d.device_args, "printer QUEUE or client ZONE IP|CIDR|HOST")
        ->required()
        ->expected(2, 3);
    json_flag(d.device_allow);
    d.device_revoke = device->add_subcommand("revoke", "Revoke a device allowed with custguardctl");
    d.device_revoke->add_option("DEVICE", d.device_args, "printer QUEUE or client ZONE IP|CIDR|HOST")
        ->required()
        ->expected(2, 3);
    json_flag(d.device_revoke);
    d.device_list = device->add_subcommand("list", "List the allowed devices, with their origin");
    // The daemon checks the kind, so that "media" gets its reason for being refused.
    d.device_list->add_option("KIND", d.kind, "printer or client");
    d.device_list->add_option("--zone", d.zone, "Only this zone");
    json_flag(d.device_list);

    auto* grant = app.add_subcommand("grant", "Temporary access to a zone that expires by itself");
    grant->require_subcommand(1);
    d.grant_add = grant->add_subcommand(
        "add", "Let USER read ZONE, or let client machine CLIENT count as listed in its allow_clients, for a limited time");
    d.grant_add->add_option("ZONE", d.zone, "Zone name, or a path inside the zone")->required();
    d.grant_add->add_option("USER", d.user, "User name (not a group)");
    d.grant_add->add_option("--client", d.grant_client,
                            "Instead of USER: a client machine (IP address, network or host name)");
    d.grant_add->add_option("-d,--duration", d.duration, "How long, e.g. 30m, 2h or 1d (at most 30d)")->required();
    d.grant_add->add_option("-r,--reason", d.reason, "Why (recorded with the grant)")->required();
    json_flag(d.grant_add);
    d.grant_list = grant->add_subcommand("list", "List the grants in force");
    d.grant_list->add_option("ZONE", d.zone, "Only this zone");
    json_flag(d.grant_list);
    d.grant_revoke = grant->add_subcommand("revoke", "End a grant now");
    d.grant_revoke->add_option("ZONE", d.zone, "Zone name, or a path inside the zone")->required();
    d.grant_revoke->add_option("USER", d.user, "User name");
    d.grant_revoke->add_option("--client", d.grant_client, "Instead of USER: the client machine of the grant");
    json_flag(d.grant_revoke);

    auto* print = app.add_subcommand("print", "Print jobs held for a decision");
    print->require_subcommand(1);
    d.print_held = print->add_subcommand("held", "List the held print jobs");
    d.print_held->add_option("ZONE", d.zone, "Only jobs of users allowed in this zone (name or path)");
    json_flag(d.print_held);
    d.print_approve = print->add_subcommand("approve", "Release a held print job to its printer");
    d.print_approve->add_option("JOB", d.job, "Job id (see print held)")->required();
    d.print_approve->add_option("-c,--comment", d.comment, "Why (recorded)");
    json_flag(d.print_approve);
    d.print_reject = print->add_subcommand("reject", "Cancel a held print job");
    d.print_reject->add_option("JOB", d.job, "Job id (see print held)")->required();
    d.print_reject->add_option("-r,--reason", d.comment, "Why (recorded, shown to the user)");
    json_flag(d.print_reject);

    auto journal_options = [&](CLI::App* sub) {
        sub->add_option("-u,--user", d.filter.user, "Only records of this user (name or uid)");
        sub->add_option("-z,--zone", d.filter.zone, "Only records of this zone");
        sub->add_option("-p,--path", d.filter.path, "Only this file, or files below this directory");
        sub->add_option("-e,--event", d.filter.event, "Only this kind: access, print, admin_change, policy_reload, lost, ...");
        sub->add_option("--namespace", d.name_space, "Read the journald namespace NS");
        sub->add_option("-D,--directory", d.directory, "Read the journal files in DIR");
        json_flag(sub);
    };
    d.history = app.add_subcommand("history", "Search the recorded events in the journal (who read what, when, from where)");
    journal_options(d.history);
    d.history->add_option("-S,--since", d.since, "From this time: 2026-10-01, \"2026-10-01 09:00\", today, yesterday, -2h");
    d.history->add_option("-U,--until", d.until, "Before this time (same forms as --since)");
    d.history->add_option("-n,--limit", d.limit, "At most N records (0: all)");

    d.events = app.add_subcommand("events", "Show the latest recorded events; with --follow, keep printing new ones");
    journal_options(d.events);
    d.events->add_flag("-f,--follow", d.follow, "Keep printing new events until interrupted");
    d.events->add_option("-n,--lines", d.lines, "Show the last N events first (default 10)");
}

ControlCommands::~ControlCommands() = default;

std::optional<int> ControlCommands::run() {
    auto& d = *impl_;
    if (d.history->parsed()) return d.do_history();
    if (d.events->parsed()) return d.do_events();
    if (d.policy_check->parsed()) {
        // With FILE arguments main.cpp checks offline; only the online form lands here.
        auto* files = d.policy_check->get_option("FILE");
        if (files->count() > 0) return std::nullopt;
    }
    bool mine = d.status->parsed() || d.policy_check->parsed() || d.policy_reload->parsed() ||
                d.policy_show->parsed() || d.zone_list->parsed() || d.user_allow->parsed() ||
                d.user_revoke->parsed() || d.user_list->parsed() || d.device_allow->parsed() ||
                d.device_revoke->parsed() || d.device_list->parsed() || d.grant_add->parsed() ||
                d.grant_list->parsed() || d.grant_revoke->parsed() || d.print_held->parsed() ||
                d.print_approve->parsed() || d.print_reject->parsed();
    if (!mine) return std::nullopt;
    // Usage errors of grant add|revoke are reported before the bus is asked.
    std::int64_t grant_seconds = 0;
    if (d.grant_add->parsed() || d.grant_revoke->parsed()) {
        if (auto e = d.grant_subject_error(d.grant_add->parsed() ? "add" : "revoke")) return report(*e, d.json);
    }
    if (d.grant_add->parsed()) {
        auto s = d.grant_seconds();
        if (!s) return report(s.error(), d.json);
        grant_seconds = *s;
    }
    if (int r = d.connect(); r != k_exit_ok) return r;
    if (d.status->parsed()) return d.do_status();
    if (d.policy_check->parsed()) return d.do_policy_check();
    if (d.policy_reload->parsed()) return d.do_policy_reload();
    if (d.policy_show->parsed()) return d.do_policy_show();
    if (d.zone_list->parsed()) return d.do_zone_list();
    if (d.user_allow->parsed()) return d.for_each_user("AllowUser");
    if (d.user_revoke->parsed()) return d.for_each_user("RevokeUser");
    if (d.user_list->parsed()) return d.do_user_list();
    if (d.device_allow->parsed()) return d.do_device_change("AllowDevice");
    if (d.device_revoke->parsed()) return d.do_device_change("RevokeDevice");
    if (d.device_list->parsed()) return d.do_device_list();
    if (d.grant_add->parsed()) return d.do_grant_add(grant_seconds);
    if (d.grant_list->parsed()) return d.do_grant_list();
    if (d.grant_revoke->parsed())
        return d.simple_message(d.grant_client.empty() ? d.call_strings("RevokeGrant", {d.zone, d.user})
                                                       : d.call_strings("RevokeClientGrant", {d.zone, d.grant_client}));
    if (d.print_held->parsed()) return d.do_print_held();
    if (d.print_approve->parsed()) return d.simple_message(d.call_strings("ApproveJob", {d.job, d.comment}));
    if (d.print_reject->parsed()) return d.simple_message(d.call_strings("RejectJob", {d.job, d.comment}));
    return std::nullopt;
}

}  // namespace custguard::cli
