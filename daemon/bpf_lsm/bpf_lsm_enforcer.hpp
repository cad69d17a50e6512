// The BPF-LSM enforcer: decides opens of zone files in the kernel (bpf/cg_lsm.bpf.c).
//
// Lifecycle. start() adopts the objects pinned under the pin directory when a previous
// daemon left them (same ABI version): it loads its own programs against the pinned maps,
// attaches them and replaces the pinned links, so enforcement never pauses, kill -9 of the
// previous daemon included. Without usable pins it loads fresh maps and attaches only in
// the first apply(), once a policy is in them. apply() builds fresh inner maps for the idle
// generation and flips the active generation in one map update. stop(false) leaves the
// pinned programs enforcing; stop(true) detaches and removes them.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include <tl/expected.hpp>

#include "daemon/enforcer.hpp"

namespace custguard::daemon::bpf_lsm {

struct Options {
    // Must be on a bpffs mount.
    std::filesystem::path pin_dir = "/sys/fs/bpf/custguard";
    // Text of /proc/self/mountinfo is read on every apply() to cover filesystems mounted
    // below zone directories; tests may point this elsewhere.
    std::filesystem::path mountinfo = "/proc/self/mountinfo";
    // The exec tracker's map of loader-injection flags (daemon/exec), shared by its pin:
    // allow_programs refuses programs started with loader injection.
    std::filesystem::path exec_tasks_pin = "/sys/fs/bpf/custguard-exec/cg_exec_tasks";
    // Let this process's own read-only opens of zone files through, unrecorded (custguardd:
    // its [watch] watcher compares copies with zone files). Not its children; see
    // cg_own_read in bpf/cg_lsm.bpf.c.
    bool own_reads = false;
    // Allowed reads are recorded once per process, file and interval; the record after
    // the interval (or the sweep) carries how many more reads it stands for (struct
    // cg_read, CUSTGUARD_REPEATS in custguard.journal(7)). 0: every read is recorded.
    std::chrono::nanoseconds read_interval = std::chrono::seconds(60);
};

// CG_CTL_READ_INTERVAL for `interval`: whole jiffies of `tick_ns` ns (the kernel's
// TICK_NSEC), rounded up so that no configured interval shrinks; 0 stays 0 (every read
// recorded).
std::uint64_t read_interval_ticks(std::chrono::nanoseconds interval, std::uint64_t tick_ns);

// The kernel's jiffy in ns: clock_getres(CLOCK_MONOTONIC_COARSE), which reports TICK_NSEC.
std::uint64_t kernel_tick_ns();

// Whether this kernel can run the enforcer: "bpf" in the active LSM list and BTF present.
// The error says what is missing (for `status` and for the automatic enforcer choice).
tl::expected<void, std::string> probe();

// State read back from the kernel maps, for status output and tests.
struct KernelState {
    std::uint64_t active_slot = 0;  // CG_SLOT_NONE when nothing is enforced
    std::uint64_t cache_epoch = 0;  // directory-cache epoch (moves with every apply)
    std::uint64_t dircache_fills = 0;    // directory-cache entries written (misses cached)
    std::uint64_t dircache_retired = 0;  // entries cleared because their directory was freed
    std::uint64_t reads_folded = 0;      // allowed reads counted in cg_reads, once their count is recorded
    std::uint64_t read_collisions = 0;   // allowed reads recorded on their own: their cg_reads key named someone else
    std::uint64_t generation = 0;   // policies applied since the maps were created
    std::uint64_t abi = 0;
};

class BpfLsmEnforcer final : public Enforcer {
public:
    explicit BpfLsmEnforcer(Options options = {});
    ~BpfLsmEnforcer() override;
    BpfLsmEnforcer(const BpfLsmEnforcer&) = delete;
    BpfLsmEnforcer& operator=(const BpfLsmEnforcer&) = delete;

    std::string_view name() const override { return "bpf-lsm"; }
    tl::expected<void, std::string> start(EventHandler handler) override;
    tl::expected<void, std::string> apply(const policy::Compiled& compiled) override;
    SensorCounters counters() const override;
    void stop(bool remove) override;

    // True when start() took over pinned objects of a previous daemon.
    bool adopted() const { return adopted_; }
    // With Options::own_reads: why this process's reads of zone files are still decided
    // like anyone's (the kernel could not be told who it is), or "" when they are let through.
    const std::string& own_reads_error() const { return own_reads_error_; }
    tl::expected<KernelState, std::string> kernel_state() const;
    // Runs of cg_read_sweep by the poller (not the one at stop): it runs once a second
    // while cg_reads may hold a key, and not while nothing was read (tests).
    std::uint64_t read_sweeps() const { return read_sweeps_.load(); }

private:
    struct Impl;
    void poll_loop();

    Options options_;
    std::unique_ptr<Impl> impl_;
    EventHandler handler_;
    std::thread poller_;
    std::atomic<bool> stopping_{false};
    std::atomic<std::uint64_t> delivered_{0};
    std::atomic<std::uint64_t> errors_{0};
    std::atomic<std::uint64_t> read_sweeps_{0};
    std::mutex apply_mutex_;
    bool adopted_ = false;
    std::string own_reads_error_;
    std::uint32_t own_tgid_ = 0;
    bool attached_ = false;
    bool started_ = false;
};

}  // namespace custguard::daemon::bpf_lsm
