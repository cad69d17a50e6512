#include "print_fixture.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "custguard/cups/cups_client.hpp"
#include "custguard/cups/cups_policy.hpp"

namespace cgprint {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using cgtest::can_connect;
using cgtest::free_port;
using cgtest::kill_and_reap;
using cgtest::slurp;
using cgtest::spawn;
using cgtest::spit;

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

const Accounts& accounts() {
    static const Accounts a{cgtest::ensure_user("cgprint-ok", {"cgprint-customers"}), cgtest::ensure_user("cgprint-other")};
    return a;
}

// ---- AppSocket printer --------------------------------------------------------------------

AppSocketPrinter::AppSocketPrinter() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 8) != 0)
        throw std::runtime_error("AppSocket listener: " + std::string(std::strerror(errno)));
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
}

AppSocketPrinter::~AppSocketPrinter() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
}

void AppSocketPrinter::serve() {
    while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        // One connection is one job: the socket backend shuts down its side when done.
        std::string data;
        char buf[65536];
        for (;;) {
            pollfd q{c, POLLIN, 0};
            if (::poll(&q, 1, 100) == 0) {
                if (stop_) break;
                continue;
            }
            ssize_t n = ::read(c, buf, sizeof buf);
            if (n <= 0) break;
            data.append(buf, static_cast<std::size_t>(n));
        }
        ::close(c);
        std::lock_guard lock(mutex_);
        jobs_.push_back(std::move(data));
    }
}

std::vector<std::string> AppSocketPrinter::received() const {
    std::lock_guard lock(mutex_);
    return jobs_;
}

std::optional<std::string> AppSocketPrinter::wait_job(std::size_t n, std::chrono::milliseconds timeout) const {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    do {
        {
            std::lock_guard lock(mutex_);
            if (jobs_.size() >= n) return jobs_[n - 1];
        }
        std::this_thread::sleep_for(50ms);
    } while (std::chrono::steady_clock::now() < deadline);
    return std::nullopt;
}

// ---- fixture ------------------------------------------------------------------------------

namespace {

// This thread in network namespace `name` (under /run/netns) until destroyed: sockets
// made meanwhile stay in it.
class NetnsScope {
public:
    explicit NetnsScope(const std::string& name) {
        if (name.empty()) return;
        own_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        int fd = ::open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
        if (own_ < 0 || fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
            int e = errno;
            if (fd >= 0) ::close(fd);
            throw std::runtime_error("cannot enter network namespace " + name + ": " + std::strerror(e));
        }
        ::close(fd);
    }
    ~NetnsScope() {
        if (own_ < 0) return;
        (void)::setns(own_, CLONE_NEWNET);
        ::close(own_);
    }
    NetnsScope(const NetnsScope&) = delete;
    NetnsScope& operator=(const NetnsScope&) = delete;

private:
    int own_ = -1;
};

}  // namespace

PrintFixture::PrintFixture(std::string print_section, bool journal)
    : PrintFixture(std::move(print_section), FixtureOptions{journal}) {}

PrintFixture::PrintFixture(std::string print_section, FixtureOptions options) : options_(std::move(options)) {
    if (::geteuid() != 0) throw std::runtime_error("the print gate tests need root (cupsd, useradd, backend as root)");
    const bool journal = options_.journal;
    accounts();
    char tmpl[] = "/tmp/cgprint.XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    ::chmod(dir_.c_str(), 0755);  // lp (cupsd's user) and the test users reach sockets and documents
    {
        // The backend connects to the printers from cupsd's network namespace.
        NetnsScope in(options_.netns);
        office_ = std::make_unique<AppSocketPrinter>();
        secure_ = std::make_unique<AppSocketPrinter>();
    }
    write_cups_files();
    start_cupsd();
    try {
        add_queue("office", office_->port());
        add_queue("secure", secure_->port());
        write_policy(print_section);
        if (journal) {
            journald_ = std::make_unique<custguard::events::testing::ScratchJournald>(
                custguard::events::testing::unique_namespace("print"));
            journald_->start();
        }
        bus_ = std::make_unique<cgtest::PrivateBus>(dir_);
        start_daemon();
    } catch (...) {
        // No destructor runs for a half-built fixture: do not leave cupsd behind.
        kill_and_reap(daemon_);
        bus_.reset();
        kill_and_reap(cupsd_);
        journald_.reset();
        throw;
    }
}

PrintFixture::~PrintFixture() {
    kill_and_reap(daemon_);
    bus_.reset();
    kill_and_reap(cupsd_);
    journald_.reset();
    if (std::getenv("CGPRINT_KEEP")) return;  // debugging: keep logs and spool
    std::error_code ec;
    fs::remove_all(dir_, ec);
}

std::vector<std::string> PrintFixture::client_env() const {
    return {"CUPS_SERVER=" + cups_socket(), "DBUS_SYSTEM_BUS_ADDRESS=" + bus_address()};
}

void PrintFixture::write_cups_files() {
    // etc/ssl: cupsd's keychain, where it makes its self-signed certificate for IPP over TLS.
    for (const char* d : {"etc", "etc/ssl", "spool", "spool/tmp", "log", "state", "cache", "serverbin/backend", "docs",
                          "cg-state"})
        fs::create_directories(dir_ / d);
    ::chmod((dir_ / "docs").c_str(), 0755);
    // ServerBin: the system's filters, drivers, ... plus a backend/ with ours beside the real ones.
    for (const auto& e : fs::directory_iterator("/usr/lib/cups")) {
        if (e.path().filename() == "backend") continue;
        fs::create_symlink(e.path(), dir_ / "serverbin" / e.path().filename());
    }
    // An installed custguard backend (package, scripts/demo) is skipped: the one under test
    // is the build's.
    for (const auto& e : fs::directory_iterator("/usr/lib/cups/backend"))
        if (e.path().filename() != "custguard")
            fs::create_symlink(e.path(), dir_ / "serverbin" / "backend" / e.path().filename());
    fs::copy_file(CG_BACKEND, dir_ / "serverbin" / "backend" / "custguard");
    ::chmod((dir_ / "serverbin" / "backend" / "custguard").c_str(), 0700);  // run as root
    cups_port_ = free_port();
    // DefaultAuthType Basic: cupsd (Debian 2.4.2-3+deb12u11) takes Basic credentials only
    // where the location's type is Basic.
    spit(dir_ / "etc" / "cupsd.conf",
         "Listen " + cups_socket() + "\n"
         "Listen 127.0.0.1:" + std::to_string(cups_port_) + "\n" +
         (options_.listen.empty() ? "" : "Listen " + options_.listen + "\n") +
         "LogLevel debug\nWebInterface No\nBrowsing No\nDefaultAuthType Basic\n"
         "MaxLogSize 0\n"
         "<Location />\n  Order allow,deny\n  Allow all\n</Location>\n"
         "<Policy default>\n  JobPrivateValues none\n  <Limit All>\n    Order deny,allow\n  </Limit>\n</Policy>\n" +
         (options_.custguard_policy ? custguard::print::custguard_policy_block() : std::string()));
    std::string d = dir_.string();
    spit(dir_ / "etc" / "cups-files.conf",
         "ServerRoot " + d + "/etc\nRequestRoot " + d + "/spool\nTempDir " + d + "/spool/tmp\n"
         "StateDir " + d + "/state\nCacheDir " + d + "/cache\nServerBin " + d + "/serverbin\n"
         "AccessLog " + d + "/log/access_log\nErrorLog " + d + "/log/error_log\nPageLog " + d + "/log/page_log\n"
         "FileDevice Yes\nUser lp\nGroup lp\nSystemGroup root\n"
         // The backend must reach the test's bus, not the system one.
         "SetEnv DBUS_SYSTEM_BUS_ADDRESS unix:path=" + (dir_ / "bus").string() + "\n");
}

void PrintFixture::start_cupsd() {
    std::vector<std::string> argv = {"cupsd", "-f", "-c", (dir_ / "etc" / "cupsd.conf").string(), "-s",
                                     (dir_ / "etc" / "cups-files.conf").string()};
    if (!options_.netns.empty()) argv.insert(argv.begin(), {"ip", "netns", "exec", options_.netns});
    cupsd_ = spawn(argv, {}, dir_ / "cupsd.out");
    auto deadline = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < deadline) {
        if (can_connect(cups_socket())) return;
        if (::waitpid(cupsd_, nullptr, WNOHANG) == cupsd_) {
            cupsd_ = -1;
            throw std::runtime_error("cupsd exited: " + slurp(dir_ / "cupsd.out") + cupsd_log());
        }
        std::this_thread::sleep_for(50ms);
    }
    throw std::runtime_error("cupsd did not listen within 15 s");
}

void PrintFixture::add_queue(const std::string& name, int port) {
    // A raw queue (no PPD): the backend receives the original document.
    auto r = run({"lpadmin", "-p", name, "-E", "-v", "custguard:socket://127.0.0.1:" + std::to_string(port), "-o",
                  std::string("printer-op-policy=") + (options_.custguard_policy ? "custguard" : "default")},
                 client_env());
    if (r.rc != 0) throw std::runtime_error("lpadmin " + name + ": " + r.err);
}

void PrintFixture::write_policy(const std::string& print_section) const {
    spit(dir_ / "policy.toml", "[daemon]\nenforcer = \"fanotify\"\n\n[print]\n" + print_section + "\n");
}

void PrintFixture::start_daemon() {
    std::vector<std::string> argv = {CG_CUSTGUARDD, "--policy", (dir_ / "policy.toml").string(), "--state-dir",
                                     (dir_ / "cg-state").string(), "--enforcer", "fanotify", "--no-audit", "--export",
                                     "jsonl:" + (dir_ / "events.jsonl").string()};
    if (journald_) argv.insert(argv.end(), {"--journal-namespace", journald_->name_space()});
    else argv.push_back("--no-journal");
    daemon_ = spawn(argv, client_env(), dir_ / "custguardd.log");
    auto deadline = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < deadline) {
        if (::waitpid(daemon_, nullptr, WNOHANG) == daemon_) {
            daemon_ = -1;
            throw std::runtime_error("custguardd exited during start:\n" + daemon_log());
        }
        if (ctl({"status", "--json"}).rc == 0) return;
        std::this_thread::sleep_for(100ms);
    }
    throw std::runtime_error("custguardd did not come up within 15 s:\n" + daemon_log());
}

void PrintFixture::stop_daemon() { kill_and_reap(daemon_); }

void PrintFixture::kill_daemon() {
    if (daemon_ <= 0) return;
    ::kill(daemon_, SIGKILL);
    ::waitpid(daemon_, nullptr, 0);
    daemon_ = -1;
}

std::string PrintFixture::daemon_log() const { return slurp(dir_ / "custguardd.log"); }
std::string PrintFixture::cupsd_log() const { return slurp(dir_ / "log" / "error_log"); }

fs::path PrintFixture::document(const std::string& name, const std::string& bytes) const {
    auto p = dir_ / "docs" / name;
    spit(p, bytes, 0644);
    return p;
}

int PrintFixture::lp(const std::string& queue, const fs::path& file, const std::string& title,
                     const std::optional<Cred>& cred) const {
    return lp(queue, std::vector<fs::path>{file}, title, cred);
}

int PrintFixture::lp(const std::string& queue, const std::vector<fs::path>& files, const std::string& title,
                     const std::optional<Cred>& cred) const {
    std::vector<std::string> argv = {"lp", "-d", queue, "-t", title};
    for (const auto& f : files) argv.push_back(f.string());
    auto r = run(argv, client_env(), cred);
    // "request id is office-12 (1 file(s))"
    auto pos = r.out.find(queue + "-");
    if (r.rc != 0 || pos == std::string::npos) throw std::runtime_error("lp failed: " + r.out + r.err);
    return std::atoi(r.out.c_str() + pos + queue.size() + 1);
}

JobState PrintFixture::job(int id) const {
    ::setenv("CUPS_SERVER", cups_socket().c_str(), 1);
    cupsSetServer(cups_socket().c_str());
    auto c = custguard::print::CupsClient::connect();
    if (!c) throw std::runtime_error(c.error());
    auto j = c->job(id);
    if (!j) throw std::runtime_error(j.error());
    return {j->state, j->message};
}

JobState PrintFixture::wait_settled(int id, std::chrono::milliseconds timeout) const {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    JobState s;
    do {
        s = job(id);
        if (s.state == 4 || s.state >= 7) return s;
        std::this_thread::sleep_for(100ms);
    } while (std::chrono::steady_clock::now() < deadline);
    return s;
}

JobState PrintFixture::wait_state(int id, int state, std::chrono::milliseconds timeout) const {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    JobState s;
    do {
        s = job(id);
        if (s.state == state) return s;
        std::this_thread::sleep_for(100ms);
    } while (std::chrono::steady_clock::now() < deadline);
    return s;
}

RunResult PrintFixture::ctl(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {CG_CUSTGUARDCTL};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, client_env());
}

RunResult PrintFixture::lpstat(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {"lpstat"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, client_env());
}

std::vector<custguard::events::testing::JournalEntry> PrintFixture::journal_records(int id) const {
    if (!journald_) throw std::runtime_error("journal_records needs PrintFixture(..., true)");
    return journald_->read("CUSTGUARD_JOB=" + std::to_string(id));
}

std::vector<std::string> PrintFixture::records() const {
    std::vector<std::string> lines;
    std::istringstream in(slurp(dir_ / "events.jsonl"));
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) lines.push_back(line);
    return lines;
}

std::vector<std::string> PrintFixture::print_records(int id) const {
    std::vector<std::string> out;
    for (auto& l : records())
        if (contains(l, "\"action\":\"print\"") && contains(l, "\"job\":\"" + std::to_string(id) + "\""))
            out.push_back(l);
    return out;
}

bool PrintFixture::wait_records(int id, std::size_t n, std::chrono::milliseconds timeout) const {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    do {
        if (print_records(id).size() >= n) return true;
        std::this_thread::sleep_for(50ms);
    } while (std::chrono::steady_clock::now() < deadline);
    return false;
}

}  // namespace cgprint
