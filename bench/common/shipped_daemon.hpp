// The shipped custguardd for benchmarks, in its default configuration: the given policy,
// default flags (audit as shipped, journald records), the control plane on a private
// dbus-daemon (tests/support PrivateBus, the shipped org.custguard1.conf) and a scratch
// journald namespace; only the state directory is the benchmark's own. Ready once
// `custguardctl status` answers over that bus; throws when it exits or does not answer.
// Shared by bench/fanotify, bench/workload and bench/vm (in the VM, BPF LSM); bench/samba
// uses its VM helpers. Needs CG_CUSTGUARDD and CG_CUSTGUARDCTL.
#pragma once

#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/cpu_ticks.hpp"
#include "common/vm_journald.hpp"
#include "scratch_journald.hpp"
#include "support/support.hpp"

namespace custguard::bench {

// custguardd with bpf-lsm leaves its programs pinned and enforcing when it stops (so that a
// restart has no gap), and its exec tracker beside them: unpinned here, the last reference
// goes and they detach, so a baseline measured next has nothing of custguard in the path.
// Only for BPF LSM, which runs in the VM, whose bpf filesystem is the benchmark's alone.
// Throws when a pin directory cannot be removed.
inline void remove_bpf_pins() {
    for (const char* dir : {"/sys/fs/bpf/custguard", "/sys/fs/bpf/custguard-exec"}) {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
        if (ec) throw std::runtime_error(std::string("cannot remove ") + dir + ": " + ec.message());
    }
}

class ShippedDaemon {
public:
    // `dir`: scratch directory for the bus, state and log (kept across starts).
    // `bpf_lsm`: the policies choose bpf-lsm; stop() then removes its pinned programs.
    explicit ShippedDaemon(std::filesystem::path dir, bool bpf_lsm = false)
        : dir_(std::move(dir)),
          journald_(events::testing::unique_namespace("bench")),
          bpf_lsm_(bpf_lsm) {
        std::filesystem::create_directories(dir_ / "state");
        prepare_vm_for_journald();
        journald_.start();
        bus_ = std::make_unique<cgtest::PrivateBus>(dir_);
    }
    ~ShippedDaemon() {
        try {
            stop();
        } catch (const std::exception&) {
            // A pin that cannot be removed: nothing more to do on the way out.
        }
    }
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
    // Stops custguardd (SIGTERM, SIGKILL after 5 s); with bpf-lsm also removes its pins.
    void stop() {
        const bool ran = pid_ > 0;
        cgtest::kill_and_reap(pid_);
        if (ran && bpf_lsm_) remove_bpf_pins();
    }
    bool running() const { return pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0; }
    pid_t pid() const { return pid_; }
    // CPU milliseconds used so far by custguardd (this start) and journald together.
    double cpu_ms() const { return (std::max(0.0, cpu_ns(journald_.pid())) + std::max(0.0, cpu_ns(pid_))) / 1e6; }
    // Waits (up to `most`) until custguardd and journald used no CPU for 300 ms: records of
    // one measurement are written before the next starts, so none pays for another's.
    void settle(std::chrono::seconds most = std::chrono::seconds(10)) const { bench::settle({journald_.pid(), pid_}, most); }
    // CPU ms per ms that custguardd and journald use while nothing happens (their periodic
    // work), once two consecutive seconds agree within 20 % or 0.2 % of a CPU: custguardd
    // goes on working for a while after it answers, and after settle() sees no 10 ms tick
    // for 300 ms. At most a minute.
    double idle_rate() const {
        double rate = -1;
        for (int sec = 0; sec < 60; ++sec) {
            const double c0 = cpu_ms();
            std::this_thread::sleep_for(std::chrono::seconds(1));
            const double now = (cpu_ms() - c0) / 1000;
            if (rate >= 0 && std::abs(now - rate) <= std::max(0.2 * rate, 0.002)) return (now + rate) / 2;
            rate = now;
        }
        return rate;
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
    bool bpf_lsm_ = false;
    pid_t pid_ = -1;
};

}  // namespace custguard::bench
