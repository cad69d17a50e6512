#include "fixture.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
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
#include <thread>

namespace cgdbus {

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

int run(const std::string& cmd) { return std::system(cmd.c_str()); }

Cred cred_of(const std::string& name) {
    passwd* pw = ::getpwnam(name.c_str());
    if (!pw) throw std::runtime_error("no user " + name);
    Cred c{pw->pw_uid, pw->pw_gid, {}};
    int n = 64;
    std::vector<gid_t> groups(n);
    if (::getgrouplist(name.c_str(), pw->pw_gid, groups.data(), &n) < 0) throw std::runtime_error("getgrouplist");
    groups.resize(n);
    c.groups = groups;
    return c;
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

void apply_cred(const Cred& c) {
    if (::setgroups(c.groups.size(), c.groups.data()) != 0 || ::setresgid(c.gid, c.gid, c.gid) != 0 ||
        ::setresuid(c.uid, c.uid, c.uid) != 0)
        ::_exit(120);
}

void kill_and_reap(pid_t& pid) {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    for (int i = 0; i < 100; ++i) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) {
            pid = -1;
            return;
        }
        std::this_thread::sleep_for(50ms);
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pid = -1;
}

}  // namespace

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

bool have_root() {
    static const bool ok = ::geteuid() == 0 && ::unshare(CLONE_NEWNS) == 0 &&
                           ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
    return ok;
}

const Accounts& accounts() {
    static const Accounts a = [] {
        // Idempotent: existing users and groups are kept, memberships ensured.
        if (run("getent group custguard-admin >/dev/null || groupadd --system custguard-admin") != 0)
            throw std::runtime_error("groupadd custguard-admin failed");
        for (const char* u : {"cgdbus-admin", "cgdbus-user", "cgdbus-reader"}) {
            std::string cmd = std::string("id -u ") + u + " >/dev/null 2>&1 || useradd --no-create-home --shell /usr/sbin/nologin " + u;
            if (run(cmd) != 0) throw std::runtime_error(std::string("useradd ") + u + " failed");
        }
        if (run("usermod -aG custguard-admin cgdbus-admin") != 0) throw std::runtime_error("usermod failed");
        return Accounts{cred_of("cgdbus-admin"), cred_of("cgdbus-user"), cred_of("cgdbus-reader")};
    }();
    return a;
}

Fixture::Fixture() : Fixture(Options{}) {}

Fixture::Fixture(Options options) : options_(options) {
    if (!have_root()) throw std::runtime_error("needs root and a private mount namespace");
    accounts();
    char tmpl[] = "/tmp/cgdbus.XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    ::chmod(dir_.c_str(), 0755);  // other users reach the bus socket through it
    fs::create_directories(data());
    if (::mount("cgdbus", data().c_str(), "tmpfs", 0, "mode=0755,size=16m") != 0)
        throw std::runtime_error(std::string("mount tmpfs: ") + std::strerror(errno));
    try {
        write_files();
        if (options_.start_journald) {
            ns_ = custguard::events::testing::unique_namespace("dbus" + std::to_string(::time(nullptr) % 100000));
            journald_ = std::make_unique<custguard::events::testing::ScratchJournald>(ns_);
            journald_->start();
        }
        if (options_.start_bus) start_bus();
        start_daemon();
    } catch (...) {
        // The destructor does not run for a half-built object: leave no processes behind.
        cleanup();
        throw;
    }
}

Fixture::~Fixture() { cleanup(); }

void Fixture::cleanup() {
    kill_and_reap(daemon_);
    kill_and_reap(bus_);
    journald_.reset();
    ::umount2(data().c_str(), MNT_DETACH);
    std::error_code ec;
    fs::remove_all(dir_, ec);
}

const std::string& Fixture::journal_namespace() const { return ns_; }

std::string Fixture::daemon_log() const { return slurp(dir_ / "custguardd.log"); }

void Fixture::write_files() {
    fs::create_directories(data() / "customers" / "medical");
    fs::create_directories(data() / "other");
    fs::create_directories(dir_ / "etc");
    fs::create_directories(dir_ / "state");
    spit(data() / "customers" / "c1.txt", "顧客 山田太郎\n");
    spit(data() / "customers" / "medical" / "m1.txt", "病歴\n");
    spit(data() / "other" / "o.txt", "not customer data\n");
    std::string d = data().string();
    spit(policy_file(), "[daemon]\nenforcer = \"fanotify\"\n\n"
                        "[[zone]]\n"
                        "name = \"customers\"\n"
                        "paths = [\"" + d + "/customers\"]\n"
                        "sensitivity = \"personal\"\n"
                        "on_violation = \"deny\"\n"
                        "allow_users = [\"cgdbus-admin\"]\n"
                        "allow_clients = [\"192.168.10.0/24\"]\n\n"
                        "[[zone]]\n"
                        "name = \"medical\"\n"
                        "paths = [\"" + d + "/customers/medical\"]\n"
                        "sensitivity = \"sensitive\"\n"
                        "on_violation = \"deny\"\n"
                        "allow_users = [\"%custguard-admin\"]\n\n"
                        "[print]\n"
                        "action = \"hold\"\n"
                        "allow_printers = [\"secure-3f\"]\n");
    // The system bus configuration of Debian's system.conf, reduced to what a test needs,
    // plus the shipped policy file for org.custguard1.
    spit(dir_ / "bus.conf",
         "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
         " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
         "<busconfig>\n"
         "  <type>system</type>\n"
         "  <auth>EXTERNAL</auth>\n"
         "  <listen>unix:path=" + (dir_ / "bus").string() + "</listen>\n"
         "  <policy context=\"default\">\n"
         "    <allow user=\"*\"/>\n"
         "    <deny own=\"*\"/>\n"
         "    <deny send_type=\"method_call\"/>\n"
         "    <allow send_type=\"signal\"/>\n"
         "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
         "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
         "    <allow receive_type=\"method_call\"/>\n"
         "    <allow receive_type=\"method_return\"/>\n"
         "    <allow receive_type=\"error\"/>\n"
         "    <allow receive_type=\"signal\"/>\n"
         "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\"/>\n"
         "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus.Introspectable\"/>\n"
         "  </policy>\n"
         "  <include>" CG_DBUS_POLICY "</include>\n"
         "</busconfig>\n");
}

void Fixture::start_bus() {
    pid_t pid = ::fork();
    if (pid == 0) {
        int null = ::open("/dev/null", O_RDWR);
        ::dup2(null, 0);
        ::dup2(null, 1);
        int log = ::open((dir_ / "dbus.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ::dup2(log, 2);
        std::string config = "--config-file=" + (dir_ / "bus.conf").string();
        ::execlp("dbus-daemon", "dbus-daemon", config.c_str(), "--nofork", "--nopidfile", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    bus_ = pid;
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
        if (can_connect(dir_ / "bus")) return;
        if (::waitpid(bus_, nullptr, WNOHANG) == bus_) {
            bus_ = -1;
            throw std::runtime_error("dbus-daemon exited: " + slurp(dir_ / "dbus.log"));
        }
        std::this_thread::sleep_for(20ms);
    }
    throw std::runtime_error("dbus-daemon did not listen within 10 s");
}

void Fixture::start_daemon() {
    pid_t pid = ::fork();
    if (pid == 0) {
        int null = ::open("/dev/null", O_RDWR);
        ::dup2(null, 0);
        int log = ::open((dir_ / "custguardd.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ::dup2(log, 1);
        ::dup2(log, 2);
        ::setenv("DBUS_SYSTEM_BUS_ADDRESS", bus_address().c_str(), 1);
        ::unsetenv("NOTIFY_SOCKET");
        std::vector<std::string> args = {CG_CUSTGUARDD,
                                         "--policy", policy_file().string(),
                                         "--state-dir", (dir_ / "state").string(),
                                         "--enforcer", "fanotify",
                                         "--export", "jsonl:" + (dir_ / "events.jsonl").string()};
        if (options_.start_journald) args.insert(args.end(), {"--journal-namespace", ns_});
        else args.push_back("--no-journal");
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    daemon_ = pid;
    auto deadline = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < deadline) {
        if (::waitpid(daemon_, nullptr, WNOHANG) == daemon_) {
            daemon_ = -1;
            throw std::runtime_error("custguardd exited during start:\n" + daemon_log());
        }
        if (!options_.start_bus) {
            if (contains(daemon_log(), "control plane off")) return;
        } else if (ctl({"status", "--json"}).rc == 0) {
            return;
        }
        std::this_thread::sleep_for(100ms);
    }
    throw std::runtime_error("custguardd did not come up within 15 s:\n" + daemon_log());
}

void Fixture::stop_daemon() { kill_and_reap(daemon_); }

void Fixture::kill_daemon() {
    if (daemon_ <= 0) return;
    ::kill(daemon_, SIGKILL);
    ::waitpid(daemon_, nullptr, 0);
    daemon_ = -1;
}

void Fixture::restart_daemon() {
    kill_and_reap(daemon_);
    start_daemon();
}

namespace {

pid_t spawn_ctl(const std::string& bus, const std::vector<std::string>& args, const std::optional<Cred>& cred,
                int out_fd, int err_fd) {
    pid_t pid = ::fork();
    if (pid == 0) {
        ::alarm(60);
        int null = ::open("/dev/null", O_RDONLY);
        ::dup2(null, 0);
        ::dup2(out_fd, 1);
        ::dup2(err_fd, 2);
        if (cred) apply_cred(*cred);
        ::setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.c_str(), 1);
        ::setenv("TZ", "UTC", 1);
        std::vector<std::string> all = {CG_CUSTGUARDCTL};
        all.insert(all.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : all) argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    return pid;
}

}  // namespace

CtlResult Fixture::ctl(const std::vector<std::string>& args, const std::optional<Cred>& cred) const {
    // Output goes to unlinked temporary files the child inherits (it may not be able to
    // open anything in our directories after dropping privileges).
    int out = ::open("/tmp", O_TMPFILE | O_RDWR, 0600);
    int err = ::open("/tmp", O_TMPFILE | O_RDWR, 0600);
    pid_t pid = spawn_ctl(bus_address(), args, cred, out, err);
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
    CtlResult r;
    r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = read_all(out);
    r.err = read_all(err);
    return r;
}

pid_t Fixture::ctl_background(const std::vector<std::string>& args, const fs::path& out_path) const {
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int err = ::open((out_path.string() + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    pid_t pid = spawn_ctl(bus_address(), args, std::nullopt, out, err);
    ::close(out);
    ::close(err);
    return pid;
}

int Fixture::read_as(const Cred& cred, const fs::path& path) {
    pid_t pid = ::fork();
    if (pid == 0) {
        ::alarm(20);  // never hang on an unanswered permission event
        apply_cred(cred);
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) ::_exit(errno);
        char c;
        if (::read(fd, &c, 1) < 0) ::_exit(errno);
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 200 + WTERMSIG(status);
}

std::string Fixture::state_text() const {
    if (!fs::exists(state_file())) return {};
    return slurp(state_file());
}

std::vector<std::string> Fixture::exported() const {
    std::vector<std::string> lines;
    std::istringstream in(slurp(dir_ / "events.jsonl"));
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) lines.push_back(line);
    return lines;
}

bool Fixture::wait_exported(const std::vector<std::string>& needles, std::chrono::milliseconds timeout) const {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    do {
        for (const auto& line : exported()) {
            bool all = true;
            for (const auto& n : needles) all = all && contains(line, n);
            if (all) return true;
        }
        std::this_thread::sleep_for(50ms);
    } while (std::chrono::steady_clock::now() < deadline);
    return false;
}

}  // namespace cgdbus
