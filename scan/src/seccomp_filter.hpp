// The seccomp filters of the extraction helper (libseccomp).
//
// base: what the helper and the Ghostscript it may start need (read files, map memory,
// fork and exec without new namespaces, pipes and AF_UNIX socket pairs, wait, signal).
// Everything else fails with EPERM: sockets, writes to newly opened files, ptrace,
// mount, namespaces, bpf, keyrings, io_uring, setsid/setpgid (so the whole tree stays in
// the process group the caller kills). The launcher installs it before exec.
// no_processes: stacked on top by the helper for documents that need no Ghostscript:
// no fork, clone or exec, no kill.
#pragma once

#include <linux/filter.h>

#include <string>
#include <vector>

#include <tl/expected.hpp>

namespace custguard::scan::detail {

// The base filter as a BPF program, built before fork so the child only needs prctl().
tl::expected<std::vector<sock_filter>, std::string> base_seccomp_program();

// Loads the no_processes filter into the calling process (needs no_new_privs).
tl::expected<void, std::string> forbid_new_processes();

}  // namespace custguard::scan::detail
