// What tests/cockpit and bench/cockpit share: Debian's cockpit-ws serving the page to
// headless Chromium, driven by page_agent.py (Selenium) over a line protocol.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "print_fixture.hpp"   // tests/print
#include "scratch_mounts.hpp"  // tests/report
#include "support/support.hpp"

namespace cgcockpit {

// cockpit-ws on 127.0.0.1 with a local session: its cockpit-bridge runs as `user` (the
// logged-in user of the page), reaches `bus_address` as the system bus and finds the page
// in a copy of `page_dir` (the build's staged share/cockpit/custguard).
class CockpitWs {
public:
    CockpitWs(const cgtest::Cred& user, const std::string& bus_address, const std::filesystem::path& page_dir);
    ~CockpitWs();
    CockpitWs(const CockpitWs&) = delete;
    CockpitWs& operator=(const CockpitWs&) = delete;
    std::string page_url() const;
    std::string log() const;

private:
    cgtest::TempDir dir_{"cgcockpit"};
    int port_ = 0;
    pid_t pid_ = -1;
};

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
// for anyone not in %cgprint-customers; cockpit-ws as cgcockpit-admin (custguard-admin);
// the page agent with the page open.
struct Scene {
    Scene();
    cgtest::TempDir tmp{"cgcockpit-zone"};
    cgtest::report::Tmpfs zone_fs{tmp.path() / "data"};
    std::filesystem::path zone_file;  // customers/list.csv
    cgprint::PrintFixture print;
    cgtest::Cred admin;
    CockpitWs ws;
    PageAgent page;
};

// Synthetic customer data with valid check digits (two card numbers, a My Number, a mail
// address): a job holding it is held.
const std::string& customer_list();
// Where screenshots and the agent's log go (created).
std::filesystem::path artefacts();

}  // namespace cgcockpit
