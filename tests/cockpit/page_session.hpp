// What tests/cockpit and bench/cockpit share: Debian's cockpit-ws serving the page to
// headless Chromium, driven by page_agent.py (Selenium) over a line protocol.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "print_fixture.hpp"   // tests/print
#include "scratch_mounts.hpp"  // tests/report
#include "support/support.hpp"

namespace cgcockpit {

// Debian's cockpit-ws on 127.0.0.1 as it runs on a server: a browser logs in on its login
// page, cockpit-ws runs cockpit-session, which checks the password with PAM (service
// "cockpit") and starts cockpit-bridge as that user through the user's login shell. It runs
// in namespaces of its own (mount and pid, so the PAM session's ssh-agent and the bridge's
// session bus go with it): there the system bus (/run/dbus/system_bus_socket) is
// `bus_socket`, /usr/share/cockpit also holds a copy of `page_dir` (the build's staged
// share/cockpit/custguard), and /home is a tmpfs with the user's home.
class CockpitWs {
public:
    CockpitWs(const cgtest::Cred& user, const std::filesystem::path& bus_socket, const std::filesystem::path& page_dir);
    ~CockpitWs();
    CockpitWs(const CockpitWs&) = delete;
    CockpitWs& operator=(const CockpitWs&) = delete;
    std::string login_url() const;
    std::string page_url() const;
    std::string log() const;

private:
    cgtest::TempDir dir_{"cgcockpit"};
    int port_ = 0;
    pid_t pid_ = -1;
};

// A local account that logs in with a password, as a manager does: a login shell (Cockpit
// starts the bridge through it; nologin refuses) and a new random password each run, set
// with chpasswd. Locked again when the test is done (password locked, nologin), so no
// account of custguard-admin with a password outlives the test on the machine.
struct LoginUser {
    LoginUser(cgtest::Cred c, std::string pw) : cred(std::move(c)), password(std::move(pw)) {}
    LoginUser(LoginUser&& o) noexcept : cred(std::move(o.cred)), password(std::move(o.password)) { o.cred.name.clear(); }
    LoginUser(const LoginUser&) = delete;
    LoginUser& operator=(const LoginUser&) = delete;
    LoginUser& operator=(LoginUser&&) = delete;
    ~LoginUser();
    cgtest::Cred cred;
    std::string password;
};
LoginUser login_user(const std::string& name, const std::vector<std::string>& groups);

// page_agent.py as a child; ask() sends one command and returns the answer after "ok",
// throwing with the agent's "error" text (and its stderr log) otherwise.
class PageAgent {
public:
    PageAgent(const std::filesystem::path& script, const std::filesystem::path& log);
    ~PageAgent();
    PageAgent(const PageAgent&) = delete;
    PageAgent& operator=(const PageAgent&) = delete;
    std::string ask(const std::string& command, std::chrono::seconds timeout = std::chrono::seconds(60));

private:
    std::filesystem::path log_;
    pid_t pid_ = -1;
    int to_ = -1, from_ = -1;
    std::string buffer_;
};

// The scene of the test and the benchmark, in this order: a zone "customers" on a tmpfs of
// its own (the fanotify enforcer marks whole filesystems; call private_mounts() first)
// that only cgprint-other may read; the print gate holding customer data on every queue
// for anyone not in %cgprint-customers; cockpit-ws; the page agent logged in on the
// login page as cgcockpit-admin (custguard-admin) with its password, the page open.
struct Scene {
    Scene();
    cgtest::TempDir tmp{"cgcockpit-zone"};
    cgtest::report::Tmpfs zone_fs{tmp.path() / "data"};
    std::filesystem::path zone_file;  // customers/list.csv
    cgprint::PrintFixture print;
    LoginUser admin;
    CockpitWs ws;
    PageAgent page;
};

// Synthetic customer data with valid check digits (two card numbers, a My Number, a mail
// address): a job holding it is held.
const std::string& customer_list();
// Where screenshots and the agent's log go (created).
std::filesystem::path artefacts();

}  // namespace cgcockpit
