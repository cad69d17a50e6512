// What the fanotify enforcer learns about the opening task, so that its events carry the
// same fields the BPF-LSM enforcer reads from the task in the kernel.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <tl/expected.hpp>

#include "custguard_abi.h"
#include "daemon/fanotify/unique_fd.hpp"
#include "daemon/fanotify/zone_tables.hpp"

namespace custguard::daemon::fan {

struct TaskInfo {
    std::uint32_t tid = 0;
    std::uint32_t tgid = 0;
    std::uint32_t fsuid = 0;
    std::uint32_t fsgid = 0;
    std::uint32_t loginuid = 4294967295u;
    std::vector<std::uint32_t> gids;  // fsgid first, then supplementary groups (if read)
    bool groups_read = false;
    char comm[CG_COMM_LEN] = {};
    InodeKey exe;
};

// The threads of a process and whether a tracer is attached to any, from a kernel iterator
// (see proc_iter.hpp).
struct ThreadScan {
    std::size_t threads = 0;
    bool traced = false;
};

// Reads tasks blocked in open(2) (so their credentials cannot change under us). Syscalls
// are the cost here, so per task it keeps a thread pidfd (PIDFD_GET_INFO, Linux 6.13, gives
// the credentials in one ioctl, and fails once the task is gone, so a reused tid is never
// mistaken for the old task), its /proc directory and an open /proc/<tid>/syscall (pread
// regenerates it). comm and loginuid change with exec or login only: they are reread when
// the executable's inode changes. Falls back to /proc/<tid>/status. One reader per
// thread: not thread-safe.
class TaskReader {
public:
    // The exec tracker's CG_TASK_* flags of a process (see FanotifyOptions::exec_flags).
    using ExecFlags = std::function<std::optional<std::uint32_t>(std::uint32_t tgid)>;
    // A process's threads (FanotifyOptions::threads); null, or no answer: /proc is read.
    using Threads = std::function<std::optional<ThreadScan>(std::uint32_t tgid)>;

    explicit TaskReader(std::size_t max_tasks = 128, ExecFlags exec_flags = {}, Threads threads = {})
        : max_tasks_(max_tasks), exec_flags_(std::move(exec_flags)), threads_(std::move(threads)) {}

    // Credentials, tgid, loginuid, comm, exe. Supplementary groups only with `groups`.
    tl::expected<void, std::string> read(pid_t tid, TaskInfo& out, bool groups = false);
    // Adds the supplementary groups (from /proc/<tid>/status).
    tl::expected<void, std::string> read_groups(pid_t tid, TaskInfo& out);
    // The flags of the open `tid` is blocked in (see read_open_flags()).
    std::uint32_t open_flags(pid_t tid);
    // Whether process `tgid` (whose thread `tid` waits in open) may run code its program
    // does not name, for allow_programs: CG_RULE_PROGRAM_TAMPERED when it was started with
    // a loader variable (the exec tracker's capture, else /proc/PID/environ, which the
    // process could have rewritten), CG_RULE_PROGRAM_TRACED when a thread of it has a
    // tracer now; 0 otherwise.
    std::uint32_t program_trust(pid_t tid, std::uint32_t tgid);

private:
    struct Entry {
        UniqueFd pidfd;
        UniqueFd dir;      // /proc/<tid>
        UniqueFd syscall;  // /proc/<tid>/syscall
        InodeKey exe;
        char comm[CG_COMM_LEN] = {};
        std::uint32_t loginuid = 4294967295u;
        // The /proc fallback's loader flags of a process the exec tracker never saw exec:
        // it sees every later exec, so they hold until the tracker knows the process.
        std::optional<std::uint32_t> proc_loader;
    };
    Entry* entry(pid_t tid, TaskInfo& out);
    tl::expected<void, std::string> read_status(pid_t tid, TaskInfo& out, bool groups);
    std::size_t max_tasks_;
    ExecFlags exec_flags_;
    Threads threads_;
    std::unordered_map<pid_t, Entry> cache_;
    bool pidfd_info_ = true;  // PIDFD_GET_INFO works on this kernel
};

// Reads /proc/<tid>/{status,comm,loginuid} and the executable's inode, uncached.
tl::expected<void, std::string> read_task(pid_t tid, TaskInfo& out);

// The flags of the open in progress, from /proc/<tid>/syscall (open, openat, openat2,
// creat), transformed as the kernel stores them in file->f_flags. io_uring workers are
// not in a syscall: their flags are unknown and reported as O_RDONLY with the kernel's
// O_LARGEFILE.
std::uint32_t read_open_flags(pid_t tid);

// The TracerPid of a /proc/<tid>/status text; 0 when none.
std::uint32_t tracer_pid(std::string_view status);

}  // namespace custguard::daemon::fan
