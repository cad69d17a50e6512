// Host fixture of the control-plane tests: a private dbus-daemon whose configuration
// includes the shipped systemd/org.custguard1.conf, a scratch journald (namespace
// instance), and the real custguardd from the build directory enforcing with fanotify on a
// private tmpfs. custguardctl runs as a real process, as root or as another user.
#pragma once

#include <sys/types.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "custguard/api/bus_ptr.hpp"
#include "scratch_journald.hpp"  // tests/events: a journald namespace instance
#include "support/support.hpp"

// Host tests need root in a private mount namespace; elsewhere they say so and return.
#define REQUIRE_ROOT()                                                 \
    do {                                                               \
        if (!cgdbus::have_root()) {                                    \
            WARN("skipped: needs root and a private mount namespace"); \
            return;                                                    \
        }                                                              \
    } while (0)

namespace cgdbus {

using Cred = cgtest::Cred;
using CtlResult = cgtest::RunResult;

// Test users and groups, created when missing (useradd/groupadd).
struct Accounts {
    Cred admin;   // cgdbus-admin: member of custguard-admin
    Cred user;    // cgdbus-user: no special groups
    Cred reader;  // cgdbus-reader: reads zone files in the grant tests
};
const Accounts& accounts();

// True when running as root in a private mount namespace (set up once per process).
bool have_root();

class Fixture {
public:
    struct Options {
        bool start_bus = true;
        bool start_journald = true;
        std::vector<std::string> daemon_args;  // more custguardd flags
        std::vector<std::filesystem::path> bus_includes;  // more bus policy files
    };
    Fixture();
    explicit Fixture(Options options);
    ~Fixture();
    Fixture(const Fixture&) = delete;
    Fixture& operator=(const Fixture&) = delete;

    const std::filesystem::path& dir() const { return dir_; }
    std::filesystem::path data() const { return dir_ / "data"; }  // the tmpfs
    std::filesystem::path state_file() const { return dir_ / "state" / "state.toml"; }
    std::filesystem::path policy_file() const { return dir_ / "etc" / "policy.toml"; }
    std::string bus_address() const { return "unix:path=" + (dir_ / "bus").string(); }
    const std::string& journal_namespace() const;
    std::string daemon_log() const;

    // A new connection to the private bus, as this process (root); null when it fails.
    custguard::api::BusPtr connect_bus() const;

    // Runs custguardctl with `args` (as root when cred is empty).
    CtlResult ctl(const std::vector<std::string>& args, const std::optional<Cred>& cred = std::nullopt) const;
    // Starts custguardctl in the background, stdout and stderr to `out`; returns its pid.
    pid_t ctl_background(const std::vector<std::string>& args, const std::filesystem::path& out) const;

    // 0 when `cred` can open `path` for reading, else the errno.
    static int read_as(const Cred& cred, const std::filesystem::path& path);

    // state.toml contents ("" when absent).
    std::string state_text() const;
    // The JSONL export's records (one JSON line each).
    std::vector<std::string> exported() const;
    // Wait until an exported line contains every needle; true when found.
    bool wait_exported(const std::vector<std::string>& needles,
                       std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;

    void stop_daemon();
    void kill_daemon();     // SIGKILL, as a crash would
    void restart_daemon();  // start it again with the same files
    pid_t daemon_pid() const { return daemon_; }

private:
    void cleanup();
    void write_files();
    void start_daemon();

    Options options_;
    std::filesystem::path dir_;
    std::unique_ptr<cgtest::PrivateBus> bus_;
    pid_t daemon_ = -1;
    std::unique_ptr<custguard::events::testing::ScratchJournald> journald_;
    std::string ns_;
};

bool contains(const std::string& haystack, const std::string& needle);

// Runs `fn` in a child process as `cred`; returns its exit status (0..255, or -1). `fn`
// may allocate (sd-bus does): safe only while this process has no other thread (throws
// otherwise).
int as_user(const Cred& cred, const std::function<int()>& fn);

// What the CUPS backend does, as root: CheckPrintJob(a{ss} job, h document) for printer
// office-2f and `user` -> (action, reason, hold_id). In control_plane_test.cpp.
std::array<std::string, 3> check_print_job(const Fixture& f, const std::string& job, const std::string& file,
                                           const std::string& user = "cgdbus-user");

}  // namespace cgdbus
