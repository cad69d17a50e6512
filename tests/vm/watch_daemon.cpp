#include "watch_daemon.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <vector>
#include <thread>

#include "bpf_lsm_enforcer.hpp"
#include "enforced.hpp"
#include "support/support.hpp"

namespace custguard::vmtest {

using namespace std::chrono_literals;

std::string customer_csv(int rows, int seed)
{
    std::ostringstream out;
    out << "customer_id,name,phone,mail\n";
    for (int i = 0; i < rows; ++i)
        out << seed * 1000 + i << ",山田" << i << ",03-" << 5000 + (i + seed) % 4000 << "-" << 1000 + i << ",user"
            << seed << "x" << i << "@example.co.jp\n";
    return out.str();
}

namespace {

// The CPU ticks of the child of `parent` running custguard-extract (the watcher's reader),
// or -1 when there is none.
long reader_ticks(pid_t parent)
{
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
        const std::string stat = cgtest::slurp(e.path() / "stat");
        const auto close = stat.rfind(')');
        if (close == std::string::npos || stat.find("(custguard-extra)") == std::string::npos)
            continue;
        std::istringstream rest(stat.substr(close + 2));
        std::string field;
        std::vector<std::string> f;
        while (rest >> field)
            f.push_back(field);
        // state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
        if (f.size() > 12 && std::stol(f[1]) == parent)
            return std::stol(f[11]) + std::stol(f[12]);
    }
    return -1;
}

}  // namespace

WatchDaemon::WatchDaemon(const std::string& name, const std::string& watch_settings)
    : dir_(fresh_dir(name)), data_(dir_ + "/data")
{
    try {
        const std::string img = dir_ + "/fs.img";
        {
            int fd = ::open(img.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
            REQUIRE(fd >= 0);
            REQUIRE(::ftruncate(fd, 64 << 20) == 0);
            ::close(fd);
        }
        REQUIRE(exec_as(k_root, {"/usr/sbin/mkfs.ext4", "-q", "-F", img}) == 0);
        make_dir(data_, 0755);
        REQUIRE(exec_as(k_root, {"/usr/bin/mount", "-t", "ext4", "-o", "loop", img, data_}) == 0);
        mounted_ = true;
        make_dir(zone(), 0755);
        make_dir(share(), 01777);
        make_dir(dir_ + "/state", 0700);
        write_file(zone_file(), customer_csv(40));
        cgtest::spit(dir_ + "/policy.toml", "[[zone]]\nname = \"customers\"\npaths = [\"" + zone() +
                                                "\"]\nallow_users = [\"daemon\"]\n\n[watch]\npaths = [\"" + share() +
                                                "\"]\n" + watch_settings);
        const std::string log_file = dir_ + "/custguardd.log";
        cgtest::spit(log_file, "");
        pid_ = cgtest::spawn({CG_CUSTGUARDD, "--policy", dir_ + "/policy.toml", "--state-dir", dir_ + "/state",
                              "--enforcer", "bpf-lsm", "--no-audit", "--no-journal", "--bus-address",
                              "unix:path=/nonexistent", "--export", "jsonl:" + dir_ + "/records.jsonl"},
                             {"CUSTGUARD_EXTRACT_HELPER=" CG_EXTRACT_HELPER}, log_file);
        bool up = false, exited = false;
        for (int i = 0; i < 600 && !up && !exited; ++i) {
            std::this_thread::sleep_for(100ms);
            up = log().find("control plane off") != std::string::npos;
            exited = ::waitpid(pid_, nullptr, WNOHANG) == pid_;
        }
        INFO(log());
        if (exited)
            pid_ = -1;
        REQUIRE_FALSE(exited);
        REQUIRE(up);
    } catch (...) {
        teardown();  // a throwing constructor runs no destructor
        throw;
    }
}

WatchDaemon::~WatchDaemon() { teardown(); }

void WatchDaemon::teardown()
{
    if (!pins_removed_)
        kill_and_remove_pins();
    if (mounted_)
        ::umount2(data_.c_str(), MNT_DETACH);
    mounted_ = false;
}

bool WatchDaemon::kill_and_remove_pins()
{
    if (pid_ > 0)
        kill9(pid_);
    pid_ = -1;
    pins_removed_ = true;
    daemon::bpf_lsm::BpfLsmEnforcer cleanup;
    if (!cleanup.start([](daemon::AccessEvent&&) {}))
        return false;
    const bool adopted = cleanup.adopted();
    cleanup.stop(true);
    return adopted;
}

void WatchDaemon::start_reader(const std::string& name)
{
    REQUIRE(exec_as(k_zone_user, {"/bin/sh", "-c", "echo 'meeting at ten, nothing else' > " + share() + "/" + name}) == 0);
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    long last = -1;
    int still = 0;  // polls in a row without CPU used: idle, waiting for the next file
    while (still < 5 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(100ms);
        const long now = reader_ticks(pid_);
        still = now >= 0 && now == last ? still + 1 : 0;
        last = now;
    }
    INFO(log());
    REQUIRE(still >= 5);
}

std::string WatchDaemon::log() const { return cgtest::slurp(dir_ + "/custguardd.log"); }

std::string WatchDaemon::records() const { return cgtest::slurp(dir_ + "/records.jsonl"); }

std::optional<common::Json> WatchDaemon::wait_record(const std::string& path, std::chrono::milliseconds timeout) const
{
    const auto t0 = std::chrono::steady_clock::now();
    do {
        std::istringstream in(records());
        for (std::string line; std::getline(in, line);) {
            auto r = common::Json::parse(line);
            if (r && (*r)["event"]["action"].as_string() == "customer_data_found" &&
                (*r)["file"]["path"].as_string() == path)
                return *r;
        }
        std::this_thread::sleep_for(50ms);
    } while (std::chrono::steady_clock::now() - t0 < timeout);
    return std::nullopt;
}

}  // namespace custguard::vmtest
