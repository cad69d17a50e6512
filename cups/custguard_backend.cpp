// The CUPS backend `custguard` (device URI custguard:<real-uri>): asks custguardd over
// D-Bus whether the job may print, then runs the real backend, or cancels or holds the job
// with a message the user sees in lpstat. It fails closed: whatever goes wrong before the
// daemon's answer, the job is held, neither printed nor lost. See custguard(8).
//
// The job's user (argv[2]) is whatever name the client claimed unless cupsd authenticated
// the connection that created the job; then cupsd (running as root) also gives backends
// AUTH_USERNAME. The daemon gets both and confirms with cupsd itself; only an
// authenticated user can be in [print] allow_users. The password cupsd passes along
// (AUTH_PASSWORD) is never sent.
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "custguard/api/client.hpp"
#include "custguard/api/names.hpp"
#include "custguard/common/unique_fd.hpp"
#include "custguard/cups/cups_client.hpp"

namespace {

// CUPS backend exit codes (cups/backend.h).
constexpr int k_ok = 0;
constexpr int k_hold = 3;
constexpr int k_cancel = 5;

constexpr const char* k_unreachable = "custguard: daemon unreachable, job held";
constexpr std::uint64_t k_call_timeout_usec = 180ull * 1'000'000;  // Ghostscript may take a while

using custguard::common::UniqueFd;
namespace key = custguard::api::job_key;

// One line for cupsd: newlines would start a new (unprefixed) message.
std::string one_line(std::string s) {
    for (auto& c : s)
        if (c == '\n' || c == '\r') c = ' ';
    return s;
}

int hold(const std::string& message) {
    std::fprintf(stderr, "ERROR: %s\n", one_line(message).c_str());
    return k_hold;
}

int unreachable(const std::string& detail) {
    // The daemon's start-up releases jobs held with exactly this prefix; the detail follows.
    std::fprintf(stderr, "ERROR: %s (%s)\n", k_unreachable, one_line(detail).c_str());
    return k_hold;
}

const char* env_or(const char* name, const char* fallback) {
    const char* v = std::getenv(name);
    return v && *v ? v : fallback;
}

// An anonymous file in cupsd's TMPDIR: gone when the last descriptor closes.
tl::expected<UniqueFd, std::string> anonymous_file() {
    const char* dir = env_or("TMPDIR", "/var/spool/cups/tmp");
    UniqueFd fd(::open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    if (fd.get() < 0) fd = UniqueFd(::open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    if (fd.get() < 0) return tl::unexpected(std::string("cannot create a spool file: ") + std::strerror(errno));
    return fd;
}

tl::expected<UniqueFd, std::string> spool_stdin() {
    auto fd = anonymous_file();
    if (!fd) return fd;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(0, buf, sizeof buf);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            return tl::unexpected(std::string("cannot read the job from standard input: ") + std::strerror(errno));
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = ::write(fd->get(), buf + off, static_cast<std::size_t>(n - off));
            if (w < 0) {
                if (errno == EINTR) continue;
                return tl::unexpected(std::string("cannot spool the job: ") + std::strerror(errno));
            }
            off += w;
        }
    }
    ::lseek(fd->get(), 0, SEEK_SET);
    return fd;
}

// For filtered queues the backend receives the filters' output (PostScript, PCL,
// raster) of every document of the job; the originals are what the user printed, so scan
// those — all of them — when cupsd hands them out.
tl::expected<std::vector<UniqueFd>, std::string> original_documents(int job) {
    auto cups = custguard::print::CupsClient::connect(10'000);
    if (!cups) return tl::unexpected(cups.error());
    auto facts = cups->job(job);
    if (!facts) return tl::unexpected(facts.error());
    std::vector<UniqueFd> docs;
    for (int n = 1; n <= facts->documents; ++n) {
        auto fd = anonymous_file();
        if (!fd) return tl::unexpected(fd.error());
        if (auto r = cups->get_document(job, n, fd->get()); !r) return tl::unexpected(r.error());
        ::lseek(fd->get(), 0, SEEK_SET);
        docs.push_back(std::move(*fd));
    }
    return docs;
}

std::string option_value(const std::string& options, const std::string& name) {
    // CUPS passes options as "name=value name2=value2"; values here have no spaces.
    std::size_t pos = 0;
    while ((pos = options.find(name + "=", pos)) != std::string::npos) {
        if (pos == 0 || options[pos - 1] == ' ') {
            auto start = pos + name.size() + 1;
            auto end = options.find(' ', start);
            return options.substr(start, end == std::string::npos ? std::string::npos : end - start);
        }
        pos += name.size();
    }
    return {};
}

struct Answer {
    std::string action, reason, hold_id;
};

// Empty error name: transport trouble (the daemon is unreachable).
struct CallFailure {
    std::string name, message;
};

tl::expected<Answer, CallFailure> ask_daemon(const std::vector<std::pair<std::string, std::string>>& attrs,
                                             const std::vector<int>& fds) {
    namespace api = custguard::api;
    auto client = api::Client::connect_system();
    if (!client) return tl::unexpected(CallFailure{"", client.error().message});
    auto reply = client->call(
        "CheckPrintJobDocuments",
        [&](sd_bus_message* m) {
            int r = sd_bus_message_open_container(m, 'a', "{ss}");
            for (const auto& [k, v] : attrs)
                if (r >= 0) r = sd_bus_message_append(m, "{ss}", k.c_str(), v.c_str());
            if (r >= 0) r = sd_bus_message_close_container(m);
            if (r >= 0) r = sd_bus_message_open_container(m, 'a', "h");
            for (int fd : fds)
                if (r >= 0) r = sd_bus_message_append(m, "h", fd);
            return r < 0 ? r : sd_bus_message_close_container(m);
        },
        k_call_timeout_usec);
    if (!reply) {
        // Bus-level failures mean nobody answered; org.custguard1 errors are the daemon's.
        const auto& e = reply.error();
        return tl::unexpected(CallFailure{e.from_daemon() ? e.name : "", e.message});
    }
    const char *action = nullptr, *reason = nullptr, *hold_id = nullptr;
    int r = sd_bus_message_read(reply->get(), "sss", &action, &reason, &hold_id);
    if (r < 0) return tl::unexpected(CallFailure{"", std::string("malformed reply: ") + std::strerror(-r)});
    return Answer{action, reason, hold_id};
}

// Run the real backend as cupsd would: a backend that is not private to root (mode 0700)
// runs as the unprivileged cups user.
[[noreturn]] void exec_real(const std::string& real_uri, char** argv, int argc, int document_fd,
                            const char* document_path) {
    const std::string scheme = real_uri.substr(0, real_uri.find(':'));
    const std::string path = std::string(env_or("CUPS_SERVERBIN", "/usr/lib/cups")) + "/backend/" + scheme;
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) {
        std::fprintf(stderr, "ERROR: custguard: no CUPS backend for %s (%s): %s; job held\n", scheme.c_str(),
                     path.c_str(), std::strerror(errno));
        std::exit(k_hold);
    }
    ::setenv("DEVICE_URI", real_uri.c_str(), 1);
    if (!document_path && document_fd >= 0) {
        ::dup2(document_fd, 0);
        ::close(document_fd);
    }
    if ((st.st_mode & 077) != 0 && ::geteuid() == 0) {
        const passwd* pw = ::getpwnam(env_or("CUSTGUARD_CUPS_USER", "lp"));
        if (pw && (::setgroups(0, nullptr) != 0 || ::setgid(pw->pw_gid) != 0 || ::setuid(pw->pw_uid) != 0)) {
            std::fprintf(stderr, "ERROR: custguard: cannot drop privileges for %s: %s; job held\n", path.c_str(),
                         std::strerror(errno));
            std::exit(k_hold);
        }
    }
    std::vector<char*> args;
    args.push_back(const_cast<char*>(real_uri.c_str()));
    for (int i = 1; i < 6 && i < argc; ++i) args.push_back(argv[i]);
    if (document_path) args.push_back(const_cast<char*>(document_path));
    args.push_back(nullptr);
    ::execv(path.c_str(), args.data());
    std::fprintf(stderr, "ERROR: custguard: cannot run %s: %s; job held\n", path.c_str(), std::strerror(errno));
    std::exit(k_hold);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 1) {
        // Device discovery: custguard wraps queues, it finds no devices of its own.
        return k_ok;
    }
    if (argc < 6 || argc > 7) {
        std::fprintf(stderr, "Usage: %s job-id user title copies options [file]\n", argv[0]);
        return 1;
    }
    const std::string device_uri = env_or("DEVICE_URI", argv[0]);
    const std::string real_uri = custguard::print::unwrap_uri(device_uri);
    const auto colon = real_uri.find(':');
    if (real_uri.empty() || colon == 0 || colon == std::string::npos ||
        real_uri.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789+-.") < colon ||
        real_uri.rfind("custguard:", 0) == 0)
        return hold("custguard: the device URI '" + device_uri +
                    "' does not wrap a real one (custguard:SCHEME://...); job held; fix it with custguardctl printer protect");

    // The document: the spool file cupsd named, or standard input spooled to a file.
    UniqueFd doc;
    const char* doc_path = argc == 7 ? argv[6] : nullptr;
    if (doc_path) {
        doc = UniqueFd(::open(doc_path, O_RDONLY | O_CLOEXEC));
        if (doc.get() < 0) return hold(std::string("custguard: cannot open the job's file: ") + std::strerror(errno) + "; job held");
    } else {
        auto spooled = spool_stdin();
        if (!spooled) return hold("custguard: " + spooled.error() + "; job held");
        doc = std::move(*spooled);
    }
    // Scan what the user printed: the backend's input is the original unless filters ran.
    const std::string content_type = env_or("CONTENT_TYPE", "");
    const std::string final_type = env_or("FINAL_CONTENT_TYPE", content_type.c_str());
    std::vector<int> scan_fds = {doc.get()};
    std::vector<UniqueFd> originals;
    if (final_type != content_type) {
        if (auto o = original_documents(std::atoi(argv[1]))) {
            originals = std::move(*o);
            scan_fds.clear();
            for (const auto& fd : originals) scan_fds.push_back(fd.get());
        } else {
            std::fprintf(stderr, "INFO: custguard: cannot fetch the original documents (%s); scanning the filtered job\n",
                         one_line(o.error()).c_str());
        }
    }

    const std::string options = argv[5];
    std::vector<std::pair<std::string, std::string>> attrs = {
        {key::job, argv[1]},
        {key::user, argv[2]},
        {key::title, argv[3]},
        {key::copies, argv[4]},
        {key::printer, env_or("PRINTER", "")},
        {key::client, option_value(options, "job-originating-host-name")},
        {key::content_type, originals.empty() ? final_type : content_type},
        {key::device_uri, real_uri},
        {key::auth_user, env_or("AUTH_USERNAME", "")},
    };
    std::fprintf(stderr, "INFO: custguard: checking the job\n");
    auto answer = ask_daemon(attrs, scan_fds);
    if (!answer) {
        if (answer.error().name.empty()) return unreachable(answer.error().message);
        return unreachable(answer.error().name + ": " + answer.error().message);
    }
    originals.clear();
    const std::string& action = answer->action;
    if (action == "allow" || action == "audit") {
        std::fprintf(stderr, "INFO: custguard: %s\n", one_line(answer->reason).c_str());
        if (!doc_path) ::lseek(doc.get(), 0, SEEK_SET);
        exec_real(real_uri, argv, argc, doc_path ? -1 : doc.release(), doc_path);
    }
    if (action == "deny") {
        std::fprintf(stderr, "ERROR: custguard: job cancelled: %s\n", one_line(answer->reason).c_str());
        return k_cancel;
    }
    if (action == "hold")
        return hold("custguard: job held for an administrator (custguardctl print approve " + answer->hold_id +
                    "): " + answer->reason);
    return unreachable("unknown answer '" + action + "'");
}
