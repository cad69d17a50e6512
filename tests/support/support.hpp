// What the host tests and benchmarks share: files, test accounts, child processes (as
// another user, with captured output), loopback ports and sockets, and a private
// dbus-daemon with the shipped org.custguard1 policy. Throws on set-up failures: a fixture
// that cannot start is a failed test, never a skipped one.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace cgtest {

std::string slurp(const std::filesystem::path& p);
void spit(const std::filesystem::path& p, const std::string& text, mode_t mode = 0644);

// A fresh directory /tmp/<prefix>.XXXXXX, mode 0755 (test users reach sockets in it),
// removed with everything below it.
class TempDir {
public:
    explicit TempDir(const std::string& prefix);
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

struct Cred {
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;
    std::string name;
};

// The user, created when missing (system user, no home, no shell), in each group of
// `groups` (created when missing). Idempotent.
Cred ensure_user(const std::string& name, const std::vector<std::string>& groups = {});
void ensure_group(const std::string& name);

// Gives group `name` `extra` more members (cgbig-00000, cgbig-00001, ... which need not
// exist) by binding an edited copy of /etc/group over /etc/group in a private mount
// namespace of this process (unshare(CLONE_NEWNS): call it while single-threaded). The real
// file is never written, so a failing or crashing test cannot leave it changed; the
// destructor unbinds. Processes started meanwhile (a daemon, dbus-daemon) see the big group.
class BigGroup {
public:
    BigGroup(const std::string& name, std::size_t extra);
    ~BigGroup();
    BigGroup(const BigGroup&) = delete;
    BigGroup& operator=(const BigGroup&) = delete;
    std::size_t line_size() const { return line_size_; }  // bytes of the group's line

private:
    TempDir dir_{"cgbiggroup"};
    std::size_t line_size_ = 0;
};

struct RunResult {
    int rc = -1;  // exit status, or 128 + signal
    std::string out;
    std::string err;
};

// Runs argv (argv[0] looked up in PATH) with extra environment ("NAME=value"), optionally
// as `cred`, and captures its output. Killed after `timeout`.
RunResult run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
              const std::optional<Cred>& cred = std::nullopt,
              std::chrono::seconds timeout = std::chrono::seconds(60));

// `/bin/sh -c cmd`'s standard output; its exit status (as run()'s rc) in *status.
std::string shell_out(const std::string& cmd, int* status = nullptr);

// Runs of spaces, tabs and newlines as one space, none at the ends: text compared across
// the line breaks of a formatted man page.
std::string squeeze_space(const std::string& s);

// Starts argv in the background, stdout and stderr appended to `log`, NOTIFY_SOCKET unset.
pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
            const std::filesystem::path& log);

// SIGTERM, then SIGKILL after 5 s; reaps; sets pid to -1.
void kill_and_reap(pid_t& pid);

// 0 when `cred` can open `path` and read a byte, else the errno.
int read_as(const Cred& cred, const std::filesystem::path& path);

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port();
bool can_connect(int tcp_port);
bool can_connect(const std::filesystem::path& unix_socket);

// A dbus-daemon of type system listening on dir/bus, with Debian's system.conf reduced to
// what a test needs plus the shipped systemd/org.custguard1.conf and `includes` (more bus
// policy files, such as polkitd's); log in dir/dbus.log.
class PrivateBus {
public:
    explicit PrivateBus(const std::filesystem::path& dir, const std::vector<std::filesystem::path>& includes = {});
    ~PrivateBus();
    PrivateBus(const PrivateBus&) = delete;
    PrivateBus& operator=(const PrivateBus&) = delete;
    std::string address() const { return "unix:path=" + socket_.string(); }
    std::string env() const { return "DBUS_SYSTEM_BUS_ADDRESS=" + address(); }

private:
    std::filesystem::path socket_;
    pid_t pid_ = -1;
};

}  // namespace cgtest
