// What counts as dynamic-loader injection for allow_programs (see custguard.policy(5)),
// for user space; bpf/cg_exec.bpf.c checks the same variables at exec.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace custguard::daemon::exec {

// Whether an environment block (NUL-separated "NAME=value" strings) sets, to a non-empty
// value, a variable that makes the dynamic loader or the C library load code the program
// does not name: LD_PRELOAD, LD_AUDIT, LD_LIBRARY_PATH, LD_ORIGIN_PATH, GCONV_PATH.
bool has_loader_variable(std::string_view environ_block);

// CG_TASK_LOADER_ENV / CG_TASK_ENV_UNREAD of a running process, from
// <proc_root>/<tgid>/environ (memory the process can rewrite: only for processes the
// exec tracker did not see start) and auxv (AT_SECURE: the loader ignores the variables).
// An environment that cannot be read counts as unread.
std::uint32_t proc_loader_flags(std::uint32_t tgid, const std::string& proc_root = "/proc");

}  // namespace custguard::daemon::exec
