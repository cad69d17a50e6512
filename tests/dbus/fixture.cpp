#include "fixture.hpp"

#include "support/exec_plan.hpp"

#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
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

using cgtest::kill_and_reap;
using cgtest::slurp;
using cgtest::spit;

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

bool have_root() {
    static const bool ok = ::geteuid() == 0 && ::unshare(CLONE_NEWNS) == 0 &&
                           ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
    return ok;
}

const Accounts& accounts() {
    static const Accounts a{cgtest::ensure_user("cgdbus-admin", {"custguard-admin"}), cgtest::ensure_user("cgdbus-user"),
                            cgtest::ensure_user("cgdbus-reader")};
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
        if (options_.start_bus) bus_ = std::make_unique<cgtest::PrivateBus>(dir_, options_.bus_includes);
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
    bus_.reset();
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
}

void Fixture::start_daemon() {
    std::vector<std::string> args = {CG_CUSTGUARDD,
                                     "--policy", policy_file().string(),
                                     "--state-dir", (dir_ / "state").string(),
                                     "--enforcer", "fanotify",
                                     "--export", "jsonl:" + (dir_ / "events.jsonl").string()};
    if (options_.start_journald) args.insert(args.end(), {"--journal-namespace", ns_});
    else args.push_back("--no-journal");
    args.insert(args.end(), options_.daemon_args.begin(), options_.daemon_args.end());
    // Built before the fork: the child must not allocate (see support/exec_plan.hpp).
    const cgtest::ExecPlan plan(args, {"DBUS_SYSTEM_BUS_ADDRESS=" + bus_address()}, {"NOTIFY_SOCKET"});
    const fs::path log_path = dir_ / "custguardd.log";
    pid_t pid = ::fork();
    if (pid == 0) {
        int null = ::open("/dev/null", O_RDWR);
        ::dup2(null, 0);
        int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);  // a restart starts a fresh log
        ::dup2(log, 1);
        ::dup2(log, 2);
        plan.exec();
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

int as_user(const Cred& cred, const std::function<int()>& fn) {
    if (cgtest::thread_count() != 1) throw std::logic_error("as_user: fork with other threads running");
    pid_t child = ::fork();
    if (child == 0) {
        if (::setgroups(cred.groups.size(), cred.groups.data()) != 0 || ::setresgid(cred.gid, cred.gid, cred.gid) != 0 ||
            ::setresuid(cred.uid, cred.uid, cred.uid) != 0)
            ::_exit(120);
        ::_exit(fn());
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

custguard::api::BusPtr Fixture::connect_bus() const {
    sd_bus* raw = nullptr;
    if (sd_bus_new(&raw) < 0) return nullptr;
    custguard::api::BusPtr bus(raw);
    if (sd_bus_set_address(raw, bus_address().c_str()) < 0 || sd_bus_set_bus_client(raw, 1) < 0 ||
        sd_bus_negotiate_fds(raw, 1) < 0 || sd_bus_start(raw) < 0)
        return nullptr;
    return bus;
}

CtlResult Fixture::ctl(const std::vector<std::string>& args, const std::optional<Cred>& cred) const {
    std::vector<std::string> argv = {CG_CUSTGUARDCTL};
    argv.insert(argv.end(), args.begin(), args.end());
    return cgtest::run(argv, {"DBUS_SYSTEM_BUS_ADDRESS=" + bus_address()}, cred);
}

pid_t Fixture::ctl_background(const std::vector<std::string>& args, const fs::path& out_path) const {
    std::vector<std::string> argv = {CG_CUSTGUARDCTL};
    argv.insert(argv.end(), args.begin(), args.end());
    return cgtest::spawn(argv, {"DBUS_SYSTEM_BUS_ADDRESS=" + bus_address(), "TZ=UTC"}, out_path);
}

int Fixture::read_as(const Cred& cred, const fs::path& path) { return cgtest::read_as(cred, path); }

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
