#include "cli/printer_command.hpp"

#include <ostream>

#include "daemon/dbus/json.hpp"
#include "daemon/print/cups_client.hpp"

namespace custguard::cli {

int run_printer(const std::string& verb, const std::string& queue, bool json, std::ostream& out, std::ostream& err) {
    using print::CupsClient;
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
        if (json) {
            dbus::Json arr = dbus::Json::array();
            for (const auto& q : *queues)
                if (!q.is_class)
                    arr.push(dbus::Json::object()
                                 .set("queue", q.name)
                                 .set("protected", q.protected_by_custguard())
                                 .set("device_uri", q.device_uri));
            out << arr.dump() << '\n';
            return 0;
        }
        if (queues->empty()) out << "(no CUPS queues)\n";
        for (const auto& q : *queues)
            if (!q.is_class)
                out << q.name << "  " << (q.protected_by_custguard() ? "protected  " : "UNPROTECTED  ") << q.device_uri
                    << '\n';
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
    std::string next;
    if (verb == "protect") {
        if (q->protected_by_custguard()) {
            out << queue << " is already protected (" << q->device_uri << ")\n";
            return 0;
        }
        if (q->device_uri.empty()) {
            err << "custguardctl: " << queue << " has no device URI to wrap\n";
            return 1;
        }
        next = std::string(print::uri_prefix) + q->device_uri;
    } else {
        if (!q->protected_by_custguard()) {
            out << queue << " is not protected (" << q->device_uri << ")\n";
            return 0;
        }
        next = print::unwrap_uri(q->device_uri);
    }
    if (auto r = cups->set_device_uri(queue, next); !r) {
        err << "custguardctl: " << r.error()
            << (verb == "protect" ? " (is the custguard backend installed in cupsd's ServerBin/backend?)" : "") << '\n';
        return 1;
    }
    out << queue << ": device-uri " << q->device_uri << " -> " << next << '\n';
    return 0;
}

}  // namespace custguard::cli
