#include "custguard/cups/cups_client.hpp"

#include <cups/ipp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "custguard/cups/cups_policy.hpp"

namespace custguard::print {

namespace {

std::string last_error() {
    const char* s = cupsLastErrorString();
    return s && *s ? s : ippErrorString(cupsLastError());
}

const char* str(ipp_attribute_t* a) {
    const char* s = a ? ippGetString(a, 0, nullptr) : nullptr;
    return s ? s : "";
}

std::string job_uri(int job) { return "ipp://localhost/jobs/" + std::to_string(job); }
std::string printer_uri(const std::string& q) { return "ipp://localhost/printers/" + q; }

IppPtr new_request(ipp_op_t op) {
    IppPtr req(ippNewRequest(op));
    ippAddString(req.get(), IPP_TAG_OPERATION, IPP_TAG_NAME, "requesting-user-name", nullptr, cupsUser());
    return req;
}

}  // namespace

std::string unwrap_uri(std::string_view device_uri) {
    if (device_uri.rfind(uri_prefix, 0) != 0) return {};
    return std::string(device_uri.substr(uri_prefix.size()));
}

tl::expected<CupsClient, std::string> CupsClient::connect(int timeout_ms) {
    std::string server = cupsServer();
    http_t* http = httpConnect2(server.c_str(), ippPort(), nullptr, AF_UNSPEC, cupsEncryption(), 1, timeout_ms,
                                nullptr);
    if (!http) return tl::unexpected("cannot connect to cupsd at " + server + ": " + std::strerror(errno));
    httpSetTimeout(http, timeout_ms / 1000.0, nullptr, nullptr);
    return CupsClient(HttpPtr(http), std::move(server));
}

tl::expected<IppPtr, std::string> CupsClient::request(IppPtr req, const char* resource, std::string_view what) {
    // cupsDoRequest takes ownership of the request.
    IppPtr resp(cupsDoRequest(http_.get(), req.release(), resource));
    if (!resp || cupsLastError() > IPP_STATUS_OK_CONFLICTING)
        return tl::unexpected(std::string(what) + ": " + last_error());
    return resp;
}

tl::expected<std::vector<Queue>, std::string> CupsClient::queues() {
    auto req = new_request(IPP_OP_CUPS_GET_PRINTERS);
    static const char* const attrs[] = {"printer-name", "device-uri", "printer-type", "printer-op-policy",
                                        "auth-info-required"};
    ippAddStrings(req.get(), IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "requested-attributes", 5, nullptr, attrs);
    auto resp = request(std::move(req), "/", "CUPS-Get-Printers");
    if (!resp) {
        // No queues at all is reported as not-found; that is an empty list.
        if (cupsLastError() == IPP_STATUS_ERROR_NOT_FOUND) return std::vector<Queue>{};
        return tl::unexpected(resp.error());
    }
    std::vector<Queue> out;
    Queue cur;
    bool have = false;
    for (ipp_attribute_t* a = ippFirstAttribute(resp->get()); a; a = ippNextAttribute(resp->get())) {
        const char* name = ippGetName(a);
        if (!name) {  // group separator
            if (have && !cur.name.empty()) out.push_back(cur);
            cur = Queue{};
            have = false;
            continue;
        }
        if (ippGetGroupTag(a) != IPP_TAG_PRINTER) continue;
        have = true;
        if (!std::strcmp(name, "printer-name")) cur.name = str(a);
        else if (!std::strcmp(name, "device-uri")) cur.device_uri = str(a);
        else if (!std::strcmp(name, "printer-type")) cur.is_class = (ippGetInteger(a, 0) & CUPS_PRINTER_CLASS) != 0;
        else if (!std::strcmp(name, "printer-op-policy")) cur.op_policy = str(a);
        else if (!std::strcmp(name, "auth-info-required"))
            for (int i = 0; i < ippGetCount(a); ++i)
                if (const char* v = ippGetString(a, i, nullptr)) cur.auth_info_required.emplace_back(v);
    }
    if (have && !cur.name.empty()) out.push_back(cur);
    return out;
}

tl::expected<Queue, std::string> CupsClient::queue(const std::string& name) {
    auto all = queues();
    if (!all) return tl::unexpected(all.error());
    for (auto& q : *all)
        if (q.name == name) return q;
    return tl::unexpected("no CUPS queue '" + name + "' on " + server_ + " (see lpstat -v)");
}

tl::expected<void, std::string> CupsClient::set_device_uri(const std::string& queue, const std::string& uri) {
    auto req = new_request(IPP_OP_CUPS_ADD_MODIFY_PRINTER);
    ippAddString(req.get(), IPP_TAG_OPERATION, IPP_TAG_URI, "printer-uri", nullptr, printer_uri(queue).c_str());
    ippAddString(req.get(), IPP_TAG_PRINTER, IPP_TAG_URI, "device-uri", nullptr, uri.c_str());
    auto resp = request(std::move(req), "/admin/", "CUPS-Add-Modify-Printer " + queue);
    if (!resp) return tl::unexpected(resp.error());
    return {};
}

tl::expected<void, std::string> CupsClient::set_op_policy(const std::string& queue, const std::string& policy) {
    auto req = new_request(IPP_OP_CUPS_ADD_MODIFY_PRINTER);
    ippAddString(req.get(), IPP_TAG_OPERATION, IPP_TAG_URI, "printer-uri", nullptr, printer_uri(queue).c_str());
    ippAddString(req.get(), IPP_TAG_PRINTER, IPP_TAG_NAME, "printer-op-policy", nullptr, policy.c_str());
    auto resp = request(std::move(req), "/admin/", "CUPS-Add-Modify-Printer " + queue + " printer-op-policy=" + policy);
    if (!resp) return tl::unexpected(resp.error());
    return {};
}

namespace {

class MemFd {
public:
    MemFd() : fd_(::memfd_create("custguard-cups", MFD_CLOEXEC)) {}
    ~MemFd() {
        if (fd_ >= 0) ::close(fd_);
    }
    MemFd(const MemFd&) = delete;
    MemFd& operator=(const MemFd&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

}  // namespace

tl::expected<std::string, std::string> CupsClient::server_file(const std::string& resource) {
    MemFd fd;
    if (fd.get() < 0) return tl::unexpected(std::string("memfd_create: ") + std::strerror(errno));
    http_status_t st = cupsGetFd(http_.get(), resource.c_str(), fd.get());
    if (st != HTTP_STATUS_OK)
        return tl::unexpected("GET " + resource + " from cupsd: " + httpStatus(st) + " (" + last_error() + ")");
    struct stat sb{};
    if (::fstat(fd.get(), &sb) != 0) return tl::unexpected(std::string("fstat: ") + std::strerror(errno));
    if (static_cast<std::size_t>(sb.st_size) > max_cupsd_conf)
        return tl::unexpected(resource + " is larger than " + std::to_string(max_cupsd_conf) + " bytes");
    std::string text(static_cast<std::size_t>(sb.st_size), '\0');
    ssize_t n = ::pread(fd.get(), text.data(), text.size(), 0);
    if (n < 0) return tl::unexpected(std::string("read: ") + std::strerror(errno));
    text.resize(static_cast<std::size_t>(n));
    return text;
}

tl::expected<void, std::string> CupsClient::put_server_file(const std::string& resource, const std::string& text) {
    MemFd fd;
    if (fd.get() < 0) return tl::unexpected(std::string("memfd_create: ") + std::strerror(errno));
    for (std::size_t off = 0; off < text.size();) {
        ssize_t w = ::write(fd.get(), text.data() + off, text.size() - off);
        if (w < 0) return tl::unexpected(std::string("write: ") + std::strerror(errno));
        off += static_cast<std::size_t>(w);
    }
    ::lseek(fd.get(), 0, SEEK_SET);
    http_status_t st = cupsPutFd(http_.get(), resource.c_str(), fd.get());
    if (st != HTTP_STATUS_CREATED && st != HTTP_STATUS_OK)
        return tl::unexpected("PUT " + resource + " to cupsd: " + httpStatus(st) + " (" + last_error() + ")");
    return {};
}

tl::expected<std::vector<CupsJob>, std::string> CupsClient::active_jobs() {
    auto req = new_request(IPP_OP_GET_JOBS);
    ippAddString(req.get(), IPP_TAG_OPERATION, IPP_TAG_URI, "printer-uri", nullptr, "ipp://localhost/");
    ippAddString(req.get(), IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "which-jobs", nullptr, "not-completed");
    static const char* const attrs[] = {"job-id", "job-state", "job-printer-state-message", "job-printer-uri",
                                        "job-originating-user-name"};
    ippAddStrings(req.get(), IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "requested-attributes", 5, nullptr, attrs);
    auto resp = request(std::move(req), "/", "Get-Jobs");
    if (!resp) {
        if (cupsLastError() == IPP_STATUS_ERROR_NOT_FOUND) return std::vector<CupsJob>{};
        return tl::unexpected(resp.error());
    }
    std::vector<CupsJob> out;
    CupsJob cur;
    auto flush = [&] {
        if (cur.id > 0) out.push_back(cur);
        cur = CupsJob{};
    };
    for (ipp_attribute_t* a = ippFirstAttribute(resp->get()); a; a = ippNextAttribute(resp->get())) {
        const char* name = ippGetName(a);
        if (!name) {
            flush();
            continue;
        }
        if (ippGetGroupTag(a) != IPP_TAG_JOB) continue;
        if (!std::strcmp(name, "job-id")) cur.id = ippGetInteger(a, 0);
        else if (!std::strcmp(name, "job-state")) cur.state = ippGetInteger(a, 0);
        else if (!std::strcmp(name, "job-printer-state-message")) cur.message = str(a);
        else if (!std::strcmp(name, "job-originating-user-name")) cur.user = str(a);
        else if (!std::strcmp(name, "job-printer-uri")) {
            std::string uri = str(a);
            auto slash = uri.rfind('/');
            cur.printer = slash == std::string::npos ? uri : uri.substr(slash + 1);
        }
    }
    flush();
    return out;
}

tl::expected<CupsJob, std::string> CupsClient::job(int id) {
    auto req = new_request(IPP_OP_GET_JOB_ATTRIBUTES);
    ippAddString(req.get(), IPP_TAG_OPERATION, IPP_TAG_URI, "job-uri", nullptr, job_uri(id).c_str());
    auto resp = request(std::move(req), "/", "Get-Job-Attributes " + std::to_string(id));
    if (!resp) return tl::unexpected(resp.error());
    CupsJob j;
    j.id = id;
    if (auto* a = ippFindAttribute(resp->get(), "job-state", IPP_TAG_ENUM)) j.state = ippGetInteger(a, 0);
    if (auto* a = ippFindAttribute(resp->get(), "number-of-documents", IPP_TAG_INTEGER))
        j.documents = std::max(1, ippGetInteger(a, 0));
    j.message = str(ippFindAttribute(resp->get(), "job-printer-state-message", IPP_TAG_ZERO));
    j.user = str(ippFindAttribute(resp->get(), "job-originating-user-name", IPP_TAG_ZERO));
    std::string uri = str(ippFindAttribute(resp->get(), "job-printer-uri", IPP_TAG_URI));
    j.printer = uri.substr(uri.rfind('/') + 1);
    return j;
}

tl::expected<void, std::string> CupsClient::release_job(int job) {
    auto req = new_request(IPP_OP_RELEASE_JOB);
    ippAddString(req.get(), IPP_TAG_OPERATION, IPP_TAG_URI, "job-uri", nullptr, job_uri(job).c_str());
    auto resp = request(std::move(req), "/jobs/", "Release-Job " + std::to_string(job));
    if (!resp) return tl::unexpected(resp.error());
    return {};
}

tl::expected<void, std::string> CupsClient::cancel_job(int job) {
    auto req = new_request(IPP_OP_CANCEL_JOB);
    ippAddString(req.get(), IPP_TAG_OPERATION, IPP_TAG_URI, "job-uri", nullptr, job_uri(job).c_str());
    auto resp = request(std::move(req), "/jobs/", "Cancel-Job " + std::to_string(job));
    if (!resp) return tl::unexpected(resp.error());
    return {};
}

tl::expected<void, std::string> CupsClient::get_document(int job, int number, int fd) {
    auto req = new_request(IPP_OP_CUPS_GET_DOCUMENT);
    ippAddString(req.get(), IPP_TAG_OPERATION, IPP_TAG_URI, "job-uri", nullptr, job_uri(job).c_str());
    ippAddInteger(req.get(), IPP_TAG_OPERATION, IPP_TAG_INTEGER, "document-number", number);
    // The document follows the IPP response on the same connection.
    IppPtr resp(cupsDoIORequest(http_.get(), req.release(), "/", -1, fd));
    if (!resp || cupsLastError() > IPP_STATUS_OK_CONFLICTING)
        return tl::unexpected("CUPS-Get-Document " + std::to_string(job) + ": " + last_error());
    return {};
}

}  // namespace custguard::print
