#include "printer_command.hpp"

#include <chrono>
#include <ostream>
#include <thread>

#include "custguard/common/json.hpp"
#include "custguard/cups/cups_client.hpp"
#include "custguard/cups/cups_policy.hpp"

namespace custguard::cli {

namespace {

using print::CupsClient;
using print::Queue;

constexpr const char* k_conf = "/admin/conf/cupsd.conf";

// What a queue lacks for custguard to trust its print user; empty when nothing.
std::string trust_problem(const Queue& q, const tl::expected<print::CupsdConf, std::string>& conf) {
    if (!conf) return "cannot read cupsd.conf: " + conf.error();
    std::string p = print::claimed_name_problem(*conf, q.op_policy);
    if (p.empty() && q.takes_auth_info()) p = "auth-info-required lets clients supply the user name";
    return p;
}

tl::expected<print::CupsdConf, std::string> read_conf(CupsClient& cups) {
    auto text = cups.server_file(k_conf);
    if (!text) return tl::unexpected(text.error());
    return print::parse_cupsd_conf(*text);
}

// After a PUT of cupsd.conf cupsd reloads and drops every connection: set the queue's
// policy on a new one once cupsd knows the new policy (it refuses unknown ones).
tl::expected<void, std::string> set_policy_after_reload(CupsClient& cups, const std::string& queue) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    std::string last;
    while (std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        auto fresh = CupsClient::connect();
        if (!fresh) {
            last = fresh.error();
            continue;
        }
        if (auto r = fresh->set_op_policy(queue, std::string(print::custguard_policy)); !r) {
            last = r.error();
            continue;
        }
        cups = std::move(*fresh);
        return {};
    }
    return tl::unexpected("cupsd did not take policy " + std::string(print::custguard_policy) + " within 60 s: " + last);
}

int protect(CupsClient& cups, const Queue& q, std::ostream& out, std::ostream& err) {
    bool changed = false;
    auto conf = read_conf(cups);
    if (!conf && conf.error().rfind("GET ", 0) == 0) {
        err << "custguardctl: " << conf.error() << " (custguardctl needs cupsd's administrator access, as root)\n";
        return 1;
    }
    // 1. The operation policy: keep the queue's own when it already makes users authenticate.
    if (!conf || !print::claimed_name_problem(*conf, q.op_policy).empty()) {
        const bool have_block = conf && print::claimed_name_problem(*conf, print::custguard_policy).empty();
        if (!have_block) {
            auto text = cups.server_file(k_conf);
            if (!text) {
                err << "custguardctl: " << text.error() << '\n';
                return 1;
            }
            if (auto r = cups.put_server_file(k_conf, print::with_custguard_policy(*text)); !r) {
                err << "custguardctl: " << r.error() << '\n';
                return 1;
            }
            out << "cupsd.conf: <Policy " << print::custguard_policy
                << "> installed (job creation needs an authenticated user); cupsd reloads\n";
            if (auto r = set_policy_after_reload(cups, q.name); !r) {
                err << "custguardctl: " << r.error() << '\n';
                return 1;
            }
        } else if (auto r = cups.set_op_policy(q.name, std::string(print::custguard_policy)); !r) {
            err << "custguardctl: " << r.error() << '\n';
            return 1;
        }
        out << q.name << ": printer-op-policy " << (q.op_policy.empty() ? "(none)" : q.op_policy) << " -> "
            << print::custguard_policy << '\n';
        changed = true;
    }
    // 2. The device URI: the custguard backend in front of the real one.
    if (!q.wrapped_by_custguard()) {
        if (q.device_uri.empty()) {
            err << "custguardctl: " << q.name << " has no device URI to wrap\n";
            return 1;
        }
        const std::string next = std::string(print::uri_prefix) + q.device_uri;
        if (auto r = cups.set_device_uri(q.name, next); !r) {
            err << "custguardctl: " << r.error() << " (is the custguard backend installed in cupsd's ServerBin/backend?)\n";
            return 1;
        }
        out << q.name << ": device-uri " << q.device_uri << " -> " << next << '\n';
        changed = true;
    }
    if (q.takes_auth_info()) {
        // Not ours to change: the printer may need those credentials.
        err << "custguardctl: warning: " << q.name
            << " has auth-info-required; clients supply that user name, so custguard treats its jobs' users as "
               "unauthenticated (set auth-info-required none with lpadmin -o auth-info-required=none if the printer "
               "does not need credentials)\n";
    }
    if (!changed) out << q.name << " is already protected (" << q.device_uri << ", policy " << q.op_policy << ")\n";
    return 0;
}

int unprotect(CupsClient& cups, const Queue& q, std::ostream& out, std::ostream& err) {
    bool changed = false;
    if (q.wrapped_by_custguard()) {
        const std::string next = print::unwrap_uri(q.device_uri);
        if (auto r = cups.set_device_uri(q.name, next); !r) {
            err << "custguardctl: " << r.error() << '\n';
            return 1;
        }
        out << q.name << ": device-uri " << q.device_uri << " -> " << next << '\n';
        changed = true;
    }
    if (q.op_policy == print::custguard_policy) {
        if (auto r = cups.set_op_policy(q.name, "default"); !r) {
            err << "custguardctl: " << r.error() << '\n';
            return 1;
        }
        out << q.name << ": printer-op-policy " << q.op_policy << " -> default\n";
        changed = true;
    }
    if (!changed) out << q.name << " is not protected (" << q.device_uri << ")\n";
    return 0;
}

}  // namespace

int run_printer(const std::string& verb, const std::string& queue, bool json, std::ostream& out, std::ostream& err) {
    auto cups = CupsClient::connect();
    if (!cups) {
        err << "custguardctl: " << cups.error() << "; is cupsd running?\n";
        return 1;
    }
    if (verb == "list") {
        auto queues = cups->queues();
        if (!queues) {
            err << "custguardctl: " << queues.error() << '\n';
            return 1;
        }
        auto conf = read_conf(*cups);
        if (json) {
            common::Json arr = common::Json::array();
            for (const auto& q : *queues) {
                if (q.is_class) continue;
                auto problem = trust_problem(q, conf);
                arr.push(common::Json::object()
                             .set("queue", q.name)
                             .set("protected", q.wrapped_by_custguard() && problem.empty())
                             .set("device_uri", q.device_uri)
                             .set("op_policy", q.op_policy)
                             .set("authenticated_users", problem.empty())
                             .set("problem", problem));
            }
            out << arr.dump() << '\n';
            return 0;
        }
        if (queues->empty()) out << "(no CUPS queues)\n";
        for (const auto& q : *queues) {
            if (q.is_class) continue;
            auto problem = trust_problem(q, conf);
            out << q.name << "  " << (q.wrapped_by_custguard() && problem.empty() ? "protected  " : "UNPROTECTED  ")
                << q.device_uri << "  policy " << q.op_policy;
            if (!problem.empty()) out << "  (print user not authenticated: " << problem << ")";
            out << '\n';
        }
        return 0;
    }
    auto q = cups->queue(queue);
    if (!q) {
        err << "custguardctl: " << q.error() << '\n';
        return 1;
    }
    if (q->is_class) {
        err << "custguardctl: " << queue << " is a class; protect its member queues instead\n";
        return 1;
    }
    return verb == "protect" ? protect(*cups, *q, out, err) : unprotect(*cups, *q, out, err);
}

}  // namespace custguard::cli
