// The shipped custguardd for benchmarks, in its default configuration: the given policy,
// default flags (audit as shipped, journald records), the control plane on a private
// dbus-daemon (tests/support PrivateBus, the shipped org.custguard1.conf) and a scratch
// journald namespace; only the state directory is the benchmark's own. Ready once
// `custguardctl status` answers over that bus; throws when it exits or does not answer.
// Shared by bench/fanotify and bench/workload. Needs CG_CUSTGUARDD and CG_CUSTGUARDCTL.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/cpu_ticks.hpp"
#include "scratch_journald.hpp"
#include "support/support.hpp"

namespace custguard::bench {

class ShippedDaemon {
public:
    // `dir`: scratch directory for the bus, state and log (kept across starts).
    explicit ShippedDaemon(std::filesystem::path dir)
        : dir_(std::move(dir)),
          journald_(events::testing::unique_namespace("bench")) {
        std::filesystem::create_directories(dir_ / "state");
        journald_.start();
        bus_ = std::make_unique<cgtest::PrivateBus>(dir_);
    }
    ~ShippedDaemon() { stop(); }
    ShippedDaemon(const ShippedDaemon&) = delete;
    ShippedDaemon& operator=(const ShippedDaemon&) = delete;

    std::vector<std::string> argv(const std::filesystem::path& policy) const {
        return {CG_CUSTGUARDD, "--policy", policy.string(), "--state-dir", (dir_ / "state").string(),
                "--journal-namespace", journald_.name_space()};
    }
    // Starts custguardd with `policy`; returns the milliseconds until the control plane answered.
    double start(const std::filesystem::path& policy, std::chrono::seconds timeout = std::chrono::seconds(180)) {
        using Clock = std::chrono::steady_clock;
        stop();
        std::error_code ec;
        std::filesystem::remove(log(), ec);
        const auto t0 = Clock::now();
        pid_ = cgtest::spawn(argv(policy), {bus_->env()}, log());
        for (;;) {
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                throw std::runtime_error("custguardd exited during start:\n" + cgtest::slurp(log()));
            }
            if (ctl({"status"}).rc == 0) break;
            if (Clock::now() - t0 > timeout) {
                stop();
                throw std::runtime_error("custguardd did not answer custguardctl status in time:\n" +
                                         cgtest::slurp(log()));
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    }
    void stop() { cgtest::kill_and_reap(pid_); }
    bool running() const { return pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0; }
    pid_t pid() const { return pid_; }
    // Waits (up to 10 s) until custguardd and journald used no CPU for 300 ms: records of
    // one measurement are written before the next starts, so none pays for another's.
    // CPU milliseconds used so far by custguardd (this start) and journald together.
    double cpu_ms() const { return static_cast<double>(cpu_ticks(journald_.pid()) + cpu_ticks(pid_)) * 1000.0 / ::sysconf(_SC_CLK_TCK); }
    void settle() const {
        auto total = [&] { return cpu_ticks(journald_.pid()) + cpu_ticks(pid_); };
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        long last = total();
        for (int quiet = 0; quiet < 3 && std::chrono::steady_clock::now() < deadline;) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            const long now = total();
            quiet = now == last ? quiet + 1 : 0;
            last = now;
        }
    }
    cgtest::RunResult ctl(const std::vector<std::string>& args) const {
        std::vector<std::string> a = {CG_CUSTGUARDCTL};
        a.insert(a.end(), args.begin(), args.end());
        return cgtest::run(a, {bus_->env()});
    }
    std::filesystem::path log() const { return dir_ / "custguardd.log"; }
    const events::testing::ScratchJournald& journald() const { return journald_; }
    std::string bus_env() const { return bus_->env(); }

private:
    std::filesystem::path dir_;
    events::testing::ScratchJournald journald_;
    std::unique_ptr<cgtest::PrivateBus> bus_;
    pid_t pid_ = -1;
};

}  // namespace custguard::bench
