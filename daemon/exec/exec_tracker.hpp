// The exec tracker: loads bpf/cg_exec.bpf.c (raw tracepoints on exec, fork and exit) and
// keeps, per process, the identities its programs had when they started, so that the
// event pipeline names the program that made an access (events::IdentitySource), and
// the enforcers see whether an allowed program was started with loader injection
// (the pinned map cg_exec_tasks, see custguard_abi.h).
//
// Lifecycle. The map and the programs' links are pinned under the pin directory, so the
// flags stay maintained while no daemon runs (as the BPF-LSM program stays enforcing);
// start() loads fresh programs against the pinned map and pins its links over the old
// ones. stop(true) detaches and removes them.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <tl/expected.hpp>

#include "custguard/events/enrich.hpp"

namespace custguard::daemon::exec {

struct Options {
    // On a bpf filesystem; shared with the BPF-LSM enforcer, which reads cg_exec_tasks.
    // Empty: nothing pinned (tests), the programs detach with the tracker.
    std::filesystem::path pin_dir = "/sys/fs/bpf/custguard";
    // How long the identities of an exited process stay answerable: the pipeline enriches
    // after the access, later still while journald is slow.
    std::chrono::seconds keep_exited{300};
    std::size_t max_processes = 65536;
};

struct Stats {
    std::uint64_t execs = 0;
    std::uint64_t forks = 0;
    std::uint64_t exits = 0;
    std::uint64_t samba_peers = 0;  // client connections of forked smbd processes
    std::uint64_t dropped = 0;   // records the kernel could not queue (ring buffer full)
    std::uint64_t answered = 0;  // identity_at() found the process
    std::uint64_t unknown = 0;   // identity_at() did not
};

class ExecTracker final : public events::IdentitySource {
public:
    // Loads and attaches the programs; the error says why not (for status).
    static tl::expected<std::shared_ptr<ExecTracker>, std::string> start(Options options);
    ~ExecTracker() override;
    ExecTracker(const ExecTracker&) = delete;
    ExecTracker& operator=(const ExecTracker&) = delete;

    std::optional<events::ExecIdentity> identity_at(std::uint32_t tgid, std::uint64_t mono_ns) override;
    std::string why_unknown(std::uint32_t tgid, std::uint64_t mono_ns) override;

    // Tells `clients` the client connections each child of smbd holds when it is forked,
    // and every exit (SambaClients::held_at_fork, exited). Thread-safe; set once.
    void report_samba_forks(std::shared_ptr<events::SambaClients> clients);

    // CG_TASK_* flags of process `tgid` since its last exec; nullopt when the process
    // started before the tracker. One map lookup; thread-safe.
    std::optional<std::uint32_t> task_flags(std::uint32_t tgid) const;

    Stats stats() const;
    // remove: detach the programs and unpin (else they keep the flags for the next daemon).
    void stop(bool remove);

    struct Impl;

private:
    explicit ExecTracker(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// Pure helpers, exposed for tests.
// argv as the kernel keeps it (NUL-separated, `len` bytes, maybe cut) -> "a b c", with
// "..." when the last argument was cut.
std::string join_args(const char* args, std::size_t len);

}  // namespace custguard::daemon::exec
