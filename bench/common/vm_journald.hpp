// Inside the VM of tests/vm/cg-vm-run: what a benchmark needs to start a scratch journald
// there. Header-only; shared by the benchmarks that run in the VM (shipped_daemon.hpp,
// bench/samba, bench/events).
#pragma once

#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace custguard::bench {

// Inside the VM of tests/vm/cg-vm-run (which sets CUSTGUARD_IN_VM)?
inline bool in_vm() { return std::getenv("CUSTGUARD_IN_VM") != nullptr; }

// In the VM: what a scratch journald needs to run there as on a server. Throws on failure.
// - cg-vm-run mounts no cgroup filesystem, without which systemd-journald refuses to start
//   ("Failed to acquire cgroup root path"): cgroup2 is mounted on /sys/fs/cgroup.
// - /var/log/journal is the host's, read-only over 9p. journald (Storage=auto) then tries
//   to open its persistent journal there again before every entry it writes (a mkdir and
//   an open, both refused), a round trip to the host through 9p each; measured with
//   custguard_bench_events --pace-us 20000, this doubled journald's CPU per record in the
//   VM (about 4 ms instead of 2 under TCG). A server's /var/log/journal is writable: a
//   tmpfs is mounted over it, where journald keeps its files as in /run.
inline void prepare_vm_for_journald() {
    if (!in_vm()) return;
    if (!std::filesystem::exists("/sys/fs/cgroup/cgroup.controllers") &&
        ::mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, nullptr) != 0)
        throw std::runtime_error(std::string("mount cgroup2 on /sys/fs/cgroup: ") + std::strerror(errno));
    if (std::filesystem::is_directory("/var/log/journal") && ::access("/var/log/journal", W_OK) != 0 &&
        errno == EROFS && ::mount("tmpfs", "/var/log/journal", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0)
        throw std::runtime_error(std::string("mount tmpfs on /var/log/journal: ") + std::strerror(errno));
}

}  // namespace custguard::bench
