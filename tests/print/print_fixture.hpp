// Host fixture of the print gate tests (root): a scratch cupsd (own socket, port, spool,
// log, state and ServerBin whose backend/ holds the custguard backend from the build dir,
// mode 0700), AppSocket listeners standing in for printers, a private dbus-daemon with the
// shipped org.custguard1.conf, and the real custguardd writing JSONL records. lp, lpstat
// and custguardctl run as real processes, as root or as test users. The queues use the
// operation policy `custguardctl printer protect` installs, so lp authenticates (peer
// credentials on cupsd's socket) as the user it runs as.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "scratch_journald.hpp"  // tests/events: a journald namespace instance
#include "support/support.hpp"

namespace cgprint {

// IPP job-state values (RFC 8011 5.3.7) the tests wait for.
constexpr int k_held = 4, k_processing = 5, k_canceled = 7, k_completed = 9;

using Cred = cgtest::Cred;
using RunResult = cgtest::RunResult;
using cgtest::run;

struct Accounts {
    Cred allowed;  // cgprint-ok, member of cgprint-customers
    Cred other;    // cgprint-other
};
const Accounts& accounts();

// A TCP listener on 127.0.0.1 that keeps every connection's bytes: what reached the printer.
class AppSocketPrinter {
public:
    AppSocketPrinter();
    ~AppSocketPrinter();
    int port() const { return port_; }
    std::vector<std::string> received() const;
    // Waits for the n-th job (1-based) to arrive complete.
    std::optional<std::string> wait_job(std::size_t n, std::chrono::milliseconds timeout) const;

private:
    void serve();
    int fd_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    mutable std::mutex mutex_;
    std::vector<std::string> jobs_;
    std::thread thread_;
};

struct JobState {
    int state = 0;  // ipp_jstate_t: 3 pending, 4 held, 5 processing, 7 canceled, 9 completed
    std::string message;
};

struct FixtureOptions {
    bool journal = false;          // also run a scratch journald and let the daemon write to it
    bool custguard_policy = true;  // cupsd.conf has <Policy custguard> and the queues use it
    std::string netns;             // run cupsd and the printers in this network namespace
    std::string listen;            // another address cupsd listens on ("192.0.2.1:631")
};

class PrintFixture {
public:
    // `print_section`: the [print] table of the policy (without the header).
    // `journal`: also run a scratch journald and let the daemon write to it.
    explicit PrintFixture(std::string print_section, bool journal = false);
    PrintFixture(std::string print_section, FixtureOptions options);
    ~PrintFixture();
    PrintFixture(const PrintFixture&) = delete;
    PrintFixture& operator=(const PrintFixture&) = delete;

    const std::filesystem::path& dir() const { return dir_; }
    std::string cups_socket() const { return (dir_ / "cups.sock").string(); }
    std::string bus_address() const { return "unix:path=" + (dir_ / "bus").string(); }
    std::vector<std::string> client_env() const;

    AppSocketPrinter& office() { return *office_; }  // queue "office": not in allow_printers
    AppSocketPrinter& secure() { return *secure_; }  // queue "secure": in allow_printers

    // Writes a document readable by every test user.
    std::filesystem::path document(const std::string& name, const std::string& bytes) const;
    // lp -d queue -t title file, as `cred` (root when empty); returns the CUPS job id.
    int lp(const std::string& queue, const std::filesystem::path& file, const std::string& title,
           const std::optional<Cred>& cred = std::nullopt) const;
    // One job of several documents.
    int lp(const std::string& queue, const std::vector<std::filesystem::path>& files, const std::string& title,
           const std::optional<Cred>& cred = std::nullopt) const;
    JobState job(int id) const;
    // Waits until the job leaves pending/processing (held, cancelled, aborted, completed).
    JobState wait_settled(int id, std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;
    JobState wait_state(int id, int state, std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

    RunResult ctl(const std::vector<std::string>& args) const;
    RunResult lpstat(const std::vector<std::string>& args) const;

    std::vector<std::string> records() const;  // the daemon's JSONL export
    // Records of kind print for job `id`.
    std::vector<std::string> print_records(int id) const;
    bool wait_records(int id, std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

    // Journal entries with CUSTGUARD_JOB=id (needs journal = true).
    std::vector<custguard::events::testing::JournalEntry> journal_records(int id) const;

    void write_policy(const std::string& print_section) const;
    void start_daemon();
    void stop_daemon();
    // SIGKILL: no clean-up of any kind, as in a crash or the OOM killer.
    void kill_daemon();
    pid_t daemon_pid() const { return daemon_; }
    std::string daemon_log() const;
    std::string cupsd_log() const;

private:
    void write_cups_files();
    void start_cupsd();
    void add_queue(const std::string& name, int port);

    std::filesystem::path dir_;
    std::unique_ptr<AppSocketPrinter> office_, secure_;
    pid_t cupsd_ = -1, daemon_ = -1;
    std::unique_ptr<cgtest::PrivateBus> bus_;
    std::unique_ptr<custguard::events::testing::ScratchJournald> journald_;
    int cups_port_ = 0;
    FixtureOptions options_;
};

bool contains(const std::string& haystack, const std::string& needle);

}  // namespace cgprint
