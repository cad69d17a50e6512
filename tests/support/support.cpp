#include "support/support.hpp"

#include "support/exec_plan.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace cgtest {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void spit(const fs::path& p, const std::string& text, mode_t mode) {
    {
        std::ofstream out(p, std::ios::binary | std::ios::trunc);
        out << text;
        if (!out) throw std::runtime_error("cannot write " + p.string());
    }
    ::chmod(p.c_str(), mode);
}

TempDir::TempDir(const std::string& prefix) {
    std::string tmpl = "/tmp/" + prefix + ".XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp " + tmpl + ": " + std::strerror(errno));
    path_ = tmpl;
    ::chmod(path_.c_str(), 0755);
}

TempDir::~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
}

namespace {

int sh(const std::string& cmd) { return std::system(cmd.c_str()); }

Cred cred_of(const std::string& name) {
    passwd* pw = ::getpwnam(name.c_str());
    if (!pw) throw std::runtime_error("no user " + name);
    Cred c{pw->pw_uid, pw->pw_gid, {}, name};
    int n = 64;
    std::vector<gid_t> groups(n);
    if (::getgrouplist(name.c_str(), pw->pw_gid, groups.data(), &n) < 0) throw std::runtime_error("getgrouplist " + name);
    groups.resize(n);
    c.groups = groups;
    return c;
}

// In a forked child: become `c` or exit 120.
void become(const Cred& c) {
    if (::setgroups(c.groups.size(), c.groups.data()) != 0 || ::setresgid(c.gid, c.gid, c.gid) != 0 ||
        ::setresuid(c.uid, c.uid, c.uid) != 0)
        ::_exit(120);
}

std::string read_all(int fd) {
    std::string s;
    ::lseek(fd, 0, SEEK_SET);
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    return s;
}

}  // namespace

void ensure_group(const std::string& name) {
    if (sh("getent group " + name + " >/dev/null || groupadd --system " + name) != 0)
        throw std::runtime_error("groupadd " + name + " failed");
}

Cred ensure_user(const std::string& name, const std::vector<std::string>& groups) {
    if (sh("id -u " + name + " >/dev/null 2>&1 || useradd --no-create-home --shell /usr/sbin/nologin " + name) != 0)
        throw std::runtime_error("useradd " + name + " failed");
    for (const auto& g : groups) {
        ensure_group(g);
        if (sh("usermod -aG " + g + " " + name) != 0) throw std::runtime_error("usermod -aG " + g + " " + name + " failed");
    }
    return cred_of(name);
}

BigGroup::BigGroup(const std::string& name, std::size_t extra) {
    if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        throw std::runtime_error(std::string("private mount namespace for /etc/group: ") + std::strerror(errno));
    std::istringstream in(slurp("/etc/group"));
    std::string out, line;
    bool found = false;
    while (std::getline(in, line)) {
        if (line.rfind(name + ":", 0) == 0) {
            found = true;
            for (std::size_t i = 0; i < extra; ++i) {
                char member[32];
                std::snprintf(member, sizeof member, "cgbig-%05zu", i);
                if (line.back() != ':') line += ',';
                line += member;
            }
            line_size_ = line.size();
        }
        out += line + "\n";
    }
    if (!found) throw std::runtime_error("no group " + name + " in /etc/group");
    const auto copy = dir_.path() / "group";
    spit(copy, out);
    if (::mount(copy.c_str(), "/etc/group", nullptr, MS_BIND, nullptr) != 0)
        throw std::runtime_error(std::string("bind mount over /etc/group: ") + std::strerror(errno));
}

BigGroup::~BigGroup() { ::umount2("/etc/group", MNT_DETACH); }

RunResult run(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::optional<Cred>& cred,
              std::chrono::seconds timeout) {
    // Unlinked files the child inherits: after dropping privileges it may not be able to
    // open anything in the test's directories.
    int out = ::open("/tmp", O_TMPFILE | O_RDWR, 0600);
    int err = ::open("/tmp", O_TMPFILE | O_RDWR, 0600);
    if (out < 0 || err < 0) throw std::runtime_error(std::string("O_TMPFILE in /tmp: ") + std::strerror(errno));
    std::vector<std::string> full_env = env;
    full_env.emplace_back("TZ=UTC");
    const ExecPlan plan(argv, full_env);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::alarm(static_cast<unsigned>(timeout.count()));
        int null = ::open("/dev/null", O_RDONLY);
        ::dup2(null, 0);
        ::dup2(out, 1);
        ::dup2(err, 2);
        if (cred) become(*cred);
        plan.exec();
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    RunResult r;
    r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = read_all(out);
    r.err = read_all(err);
    return r;
}

pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env, const fs::path& log) {
    const ExecPlan plan(argv, env, {"NOTIFY_SOCKET"});
    pid_t pid = ::fork();
    if (pid == 0) {
        int null = ::open("/dev/null", O_RDWR);
        ::dup2(null, 0);
        int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        plan.exec();
    }
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    return pid;
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

int read_as(const Cred& cred, const fs::path& path) {
    pid_t pid = ::fork();
    if (pid == 0) {
        ::alarm(20);  // never hang on an unanswered permission event
        become(cred);
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

int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        throw std::runtime_error(std::string("bind 127.0.0.1:0: ") + std::strerror(errno));
    }
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

bool can_connect(int tcp_port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(tcp_port));
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

bool can_connect(const fs::path& unix_socket) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, unix_socket.c_str(), sizeof addr.sun_path - 1);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
}

PrivateBus::PrivateBus(const fs::path& dir, const std::vector<fs::path>& includes) : socket_(dir / "bus") {
    const fs::path config = dir / "bus.conf";
    std::string more;
    for (const auto& i : includes) more += "  <include>" + i.string() + "</include>\n";
    spit(config,
         "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
         " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
         "<busconfig>\n"
         "  <type>system</type>\n"
         "  <auth>EXTERNAL</auth>\n"
         "  <listen>unix:path=" + socket_.string() + "</listen>\n"
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
         "  <include>" CG_DBUS_POLICY "</include>\n" +
             more +
         "</busconfig>\n");
    const fs::path log = dir / "dbus.log";
    pid_ = spawn({"dbus-daemon", "--config-file=" + config.string(), "--nofork", "--nopidfile"}, {}, log);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
        if (can_connect(socket_)) return;
        if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
            pid_ = -1;
            throw std::runtime_error("dbus-daemon exited: " + slurp(log));
        }
        std::this_thread::sleep_for(20ms);
    }
    kill_and_reap(pid_);
    throw std::runtime_error("dbus-daemon did not listen within 10 s: " + slurp(log));
}

PrivateBus::~PrivateBus() { kill_and_reap(pid_); }

std::string shell_out(const std::string& cmd, int* status) {
    auto r = run({"/bin/sh", "-c", cmd});
    if (status) *status = r.rc;
    return r.out;
}

std::string squeeze_space(const std::string& s) {
    std::string out;
    bool space = false;
    for (char c : s) {
        if (c == ' ' || c == '\n' || c == '\t') {
            space = true;
            continue;
        }
        if (space && !out.empty()) out += ' ';
        space = false;
        out += c;
    }
    return out;
}

}  // namespace cgtest
