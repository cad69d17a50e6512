// What the fanotify enforcer learns about the opening task from /proc, so that its events
// carry the same fields the BPF-LSM enforcer reads from the task in the kernel.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "custguard_abi.h"
#include "daemon/fanotify/zone_tables.hpp"

namespace custguard::daemon::fan {

struct TaskInfo {
    std::uint32_t tid = 0;
    std::uint32_t tgid = 0;
    std::uint32_t fsuid = 0;
    std::uint32_t fsgid = 0;
    std::uint32_t loginuid = 4294967295u;
    std::vector<std::uint32_t> gids;  // fsgid first, then supplementary groups
    char comm[CG_COMM_LEN] = {};
    InodeKey exe;
    std::uint32_t open_flags = 0;  // as file->f_flags; see read_open_flags()
};

// Reads /proc/<tid>/{status,loginuid} and the executable's inode. The task is blocked in
// open(2) while we read, so its credentials cannot change under us.
tl::expected<void, std::string> read_task(pid_t tid, TaskInfo& out);

// The flags of the open in progress, from /proc/<tid>/syscall (open, openat, openat2,
// creat), transformed as the kernel stores them in file->f_flags. io_uring workers are
// not in a syscall: their flags are unknown and reported as O_RDONLY with the kernel's O_LARGEFILE.
std::uint32_t read_open_flags(pid_t tid);

}  // namespace custguard::daemon::fan
