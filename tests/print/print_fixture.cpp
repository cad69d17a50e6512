#include "print_fixture.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
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

#include "daemon/print/cups_client.hpp"

namespace cgprint {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void spit(const fs::path& p, const std::string& text, mode_t mode = 0644) {
    {
        std::ofstream out(p, std::ios::binary | std::ios::trunc);
        out << text;
        if (!out) throw std::runtime_error("cannot write " + p.string());
    }
    ::chmod(p.c_str(), mode);
}

int sh(const std::string& cmd) { return std::system(cmd.c_str()); }

Cred cred_of(const std::string& name) {
    passwd* pw = ::getpwnam(name.c_str());
    if (!pw) throw std::runtime_error("no user " + name);
    Cred c{pw->pw_uid, pw->pw_gid, {}, name};
    int n = 64;
    std::vector<gid_t> groups(n);
    if (::getgrouplist(name.c_str(), pw->pw_gid, groups.data(), &n) < 0) throw std::runtime_error("getgrouplist");
    groups.resize(n);
    c.groups = groups;
    return c;
}

int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    int port = ntohs(a.sin_port);
    ::close(fd);
    return port;
}

bool can_connect(const fs::path& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
}

void kill_and_reap(pid_t& pid) {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    for (int i = 0; i < 100; ++i) {
        if (::waitpid(pid, nullptr, WNOHANG) == pid) {
            pid = -1;
            return;
        }
        std::this_thread::sleep_for(50ms);
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pid = -1;
}

pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env, const fs::path& log) {
    pid_t pid = ::fork();
    if (pid == 0) {
        int null = ::open("/dev/null", O_RDWR);
        ::dup2(null, 0);
        int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
        ::unsetenv("NOTIFY_SOCKET");
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execvp(args[0], args.data());
        ::_exit(127);
    }
    return pid;
}

}  // namespace

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

const Accounts& accounts() {
    static const Accounts a = [] {
        if (sh("getent group cgprint-customers >/dev/null || groupadd --system cgprint-customers") != 0)
            throw std::runtime_error("groupadd cgprint-customers failed");
        for (const char* u : {"cgprint-ok", "cgprint-other"}) {
            std::string cmd = std::string("id -u ") + u + " >/dev/null 2>&1 || useradd --no-create-home --shell /usr/sbin/nologin " + u;
            if (sh(cmd) != 0) throw std::runtime_error(std::string("useradd ") + u + " failed");
        }
        if (sh("usermod -aG cgprint-customers cgprint-ok") != 0) throw std::runtime_error("usermod failed");
        return Accounts{cred_of("cgprint-ok"), cred_of("cgprint-other")};
    }();
    return a;
}

RunResult run(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::optional<Cred>& cred) {
    int out = ::open("/tmp", O_TMPFILE | O_RDWR, 0600);
    int err = ::open("/tmp", O_TMPFILE | O_RDWR, 0600);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::alarm(60);
        int null = ::open("/dev/null", O_RDONLY);
        ::dup2(null, 0);
        ::dup2(out, 1);
        ::dup2(err, 2);
        if (cred && (::setgroups(cred->groups.size(), cred->groups.data()) != 0 ||
                     ::setresgid(cred->gid, cred->gid, cred->gid) != 0 || ::setresuid(cred->uid, cred->uid, cred->uid) != 0))
            ::_exit(120);
        for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
        ::setenv("TZ", "UTC", 1);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execvp(args[0], args.data());
        ::_exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    auto read_all = [](int fd) {
        std::string s;
        ::lseek(fd, 0, SEEK_SET);
        char buf[4096];
        ssize_t n;
        while ((n = ::read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<std::size_t>(n));
        ::close(fd);
        return s;
    };
    RunResult r;
    r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = read_all(out);
    r.err = read_all(err);
    return r;
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

PrintFixture::PrintFixture(std::string print_section, bool journal) {
    if (::geteuid() != 0) throw std::runtime_error("the print gate tests need root (cupsd, useradd, backend as root)");
    accounts();
    char tmpl[] = "/tmp/cgprint.XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    ::chmod(dir_.c_str(), 0755);  // lp (cupsd's user) and the test users reach sockets and documents
    office_ = std::make_unique<AppSocketPrinter>();
    secure_ = std::make_unique<AppSocketPrinter>();
    write_cups_files();
    start_cupsd();
    add_queue("office", office_->port());
    add_queue("secure", secure_->port());
    write_policy(print_section);
    if (journal) {
        journald_ = std::make_unique<custguard::events::testing::ScratchJournald>(
            custguard::events::testing::unique_namespace("print"));
        journald_->start();
    }
    start_bus();
    start_daemon();
}

PrintFixture::~PrintFixture() {
    kill_and_reap(daemon_);
    kill_and_reap(bus_);
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
    for (const char* d : {"etc", "spool", "spool/tmp", "log", "state", "cache", "serverbin/backend", "docs", "cg-state"})
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
    spit(dir_ / "etc" / "cupsd.conf",
         "Listen " + cups_socket() + "\n"
         "Listen 127.0.0.1:" + std::to_string(cups_port_) + "\n"
         "LogLevel debug\nWebInterface No\nBrowsing No\nDefaultAuthType None\nJobPrivateValues none\n"
         "MaxLogSize 0\n"
         "<Location />\n  Order allow,deny\n  Allow all\n</Location>\n"
         "<Policy default>\n  <Limit All>\n    Order deny,allow\n  </Limit>\n</Policy>\n");
    std::string d = dir_.string();
    spit(dir_ / "etc" / "cups-files.conf",
         "ServerRoot " + d + "/etc\nRequestRoot " + d + "/spool\nTempDir " + d + "/spool/tmp\n"
         "StateDir " + d + "/state\nCacheDir " + d + "/cache\nServerBin " + d + "/serverbin\n"
         "AccessLog " + d + "/log/access_log\nErrorLog " + d + "/log/error_log\nPageLog " + d + "/log/page_log\n"
         "FileDevice Yes\nUser lp\nGroup lp\nSystemGroup root\n"
         // The backend must reach the test's bus, not the system one.
         "SetEnv DBUS_SYSTEM_BUS_ADDRESS unix:path=" + (dir_ / "bus").string() + "\n");
    // Debian's system bus configuration reduced to what a test needs, plus the shipped
    // policy for org.custguard1 (the backend calls as root).
    spit(dir_ / "bus.conf",
         "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
         " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
         "<busconfig>\n  <type>system</type>\n  <auth>EXTERNAL</auth>\n"
         "  <listen>unix:path=" + (dir_ / "bus").string() + "</listen>\n"
         "  <policy context=\"default\">\n"
         "    <allow user=\"*\"/>\n    <deny own=\"*\"/>\n    <deny send_type=\"method_call\"/>\n"
         "    <allow send_type=\"signal\"/>\n"
         "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
         "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
         "    <allow receive_type=\"method_call\"/>\n    <allow receive_type=\"method_return\"/>\n"
         "    <allow receive_type=\"error\"/>\n    <allow receive_type=\"signal\"/>\n"
         "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\"/>\n"
         "  </policy>\n  <include>" CG_DBUS_POLICY "</include>\n</busconfig>\n");
}

void PrintFixture::start_cupsd() {
    cupsd_ = spawn({"cupsd", "-f", "-c", (dir_ / "etc" / "cupsd.conf").string(), "-s",
                    (dir_ / "etc" / "cups-files.conf").string()},
                   {}, dir_ / "cupsd.out");
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
    auto r = run({"lpadmin", "-p", name, "-E", "-v", "custguard:socket://127.0.0.1:" + std::to_string(port)},
                 client_env());
    if (r.rc != 0) throw std::runtime_error("lpadmin " + name + ": " + r.err);
}

void PrintFixture::start_bus() {
    bus_ = spawn({"dbus-daemon", "--config-file=" + (dir_ / "bus.conf").string(), "--nofork", "--nopidfile"}, {},
                 dir_ / "dbus.log");
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
        if (can_connect(dir_ / "bus")) return;
        std::this_thread::sleep_for(20ms);
    }
    throw std::runtime_error("dbus-daemon did not listen: " + slurp(dir_ / "dbus.log"));
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

std::string PrintFixture::daemon_log() const { return slurp(dir_ / "custguardd.log"); }
std::string PrintFixture::cupsd_log() const { return slurp(dir_ / "log" / "error_log"); }

fs::path PrintFixture::document(const std::string& name, const std::string& bytes) const {
    auto p = dir_ / "docs" / name;
    spit(p, bytes, 0644);
    return p;
}

int PrintFixture::lp(const std::string& queue, const fs::path& file, const std::string& title,
                     const std::optional<Cred>& cred) const {
    auto r = run({"lp", "-d", queue, "-t", title, file.string()}, client_env(), cred);
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
