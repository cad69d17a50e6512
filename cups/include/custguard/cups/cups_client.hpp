// A small libcups client for what custguard asks of cupsd: list queues with their device
// URIs and operation policies, rewrite a device URI or policy and cupsd.conf (printer
// protect|unprotect), release, cancel and list held jobs, and fetch a job's original
// document (CUPS-Get-Document). Shared by custguardd's
// print gate, the CUPS backend and custguardctl. The server is libcups' default
// (CUPS_SERVER, client.conf, then the local socket); authentication as root is libcups'
// own (peer credentials on the socket, or the local certificate).
#pragma once

#include <cups/cups.h>

#include <memory>
#include <string>
#include <vector>

#include <tl/expected.hpp>

namespace custguard::print {

struct HttpDeleter {
    void operator()(http_t* http) const { httpClose(http); }
};
using HttpPtr = std::unique_ptr<http_t, HttpDeleter>;

struct IppDeleter {
    void operator()(ipp_t* ipp) const { ippDelete(ipp); }
};
using IppPtr = std::unique_ptr<ipp_t, IppDeleter>;

inline constexpr std::string_view uri_prefix = "custguard:";

struct Queue {
    std::string name;
    std::string device_uri;  // empty for classes
    bool is_class = false;
    std::string op_policy;   // printer-op-policy
    std::vector<std::string> auth_info_required;  // {"none"} unless the queue asks clients for credentials
    bool wrapped_by_custguard() const { return device_uri.rfind(uri_prefix, 0) == 0; }
    // Whether cupsd hands the backend credentials a client supplied (auth-info), which then
    // look like an authenticated user (AUTH_USERNAME).
    bool takes_auth_info() const {
        for (const auto& a : auth_info_required)
            if (a != "none") return true;
        return false;
    }
};

struct CupsJob {
    int id = 0;
    std::string printer;
    std::string user;
    int state = 0;          // ipp_jstate_t
    std::string message;    // job-printer-state-message: the backend's last message
    int documents = 1;      // number-of-documents (job() only)
};

class CupsClient {
public:
    // Connects to the default server; `timeout_ms` bounds the connect and each request.
    static tl::expected<CupsClient, std::string> connect(int timeout_ms = 10'000);

    tl::expected<std::vector<Queue>, std::string> queues();
    tl::expected<Queue, std::string> queue(const std::string& name);
    // CUPS-Add-Modify-Printer with only device-uri: the rest of the queue stays as it is.
    tl::expected<void, std::string> set_device_uri(const std::string& queue, const std::string& uri);
    // The same with only printer-op-policy (cupsd refuses a policy it does not know).
    tl::expected<void, std::string> set_op_policy(const std::string& queue, const std::string& policy);
    // cupsd's configuration files over HTTP (/admin/conf/cupsd.conf): what cupsd reads,
    // wherever it keeps it. Reads at most max_cupsd_conf bytes. A PUT of cupsd.conf makes
    // cupsd reload, which closes this connection: reconnect afterwards.
    tl::expected<std::string, std::string> server_file(const std::string& resource);
    tl::expected<void, std::string> put_server_file(const std::string& resource, const std::string& text);
    // Jobs that are not completed, with their state and last backend message.
    tl::expected<std::vector<CupsJob>, std::string> active_jobs();
    // One job, completed ones included.
    tl::expected<CupsJob, std::string> job(int id);
    // Release-Job: cupsd runs the job (filters and backend) again.
    tl::expected<void, std::string> release_job(int job);
    tl::expected<void, std::string> cancel_job(int job);
    // CUPS-Get-Document: writes document `number` (1-based) of `job` to `fd`.
    tl::expected<void, std::string> get_document(int job, int number, int fd);

    const std::string& server() const { return server_; }

private:
    CupsClient(HttpPtr http, std::string server) : http_(std::move(http)), server_(std::move(server)) {}
    tl::expected<IppPtr, std::string> request(IppPtr req, const char* resource, std::string_view what);

    HttpPtr http_;
    std::string server_;
};

// "custguard:socket://h:9100" -> "socket://h:9100"; nullopt-like empty string otherwise.
std::string unwrap_uri(std::string_view device_uri);

}  // namespace custguard::print
