// The exec tracker's structs as bpf/cg_exec.bpf.c and bpf/cg_lsm.bpf.c lay them out: a
// mismatch would misname programs or misread the loader-injection flags, so it fails the
// build (as daemon/bpf_lsm/abi_check.cpp does for the enforcer's).
#include <cstddef>

#include "custguard_abi.h"

namespace {

static_assert(CG_RULE_PROGRAM_TAMPERED == CG_RULE_ZONE_UNKNOWN + 1 && CG_RULE_PROGRAM_TRACED == CG_RULE_ZONE_UNKNOWN + 2);
static_assert(CG_TASK_TAMPERED == (CG_TASK_LOADER_ENV | CG_TASK_ENV_UNREAD) && (CG_TASK_TAMPERED & CG_TASK_TRACED) == 0);

static_assert(CG_ZONE_PROGRAMS_LAX == 16 && (CG_ZONE_PROGRAMS_LAX & (CG_ZONE_VIOLATION_AUDIT | CG_ZONE_RECORD_ALLOWED |
                                                                 CG_ZONE_SENSITIVE | CG_ZONE_PROGRAMS)) == 0);
static_assert(sizeof(cg_exec_task) == 16);
static_assert(offsetof(cg_exec_task, exec_ns) == 0 && offsetof(cg_exec_task, flags) == 8);

static_assert(sizeof(cg_exec_note) == 24);
static_assert(offsetof(cg_exec_note, abi_version) == 0 && offsetof(cg_exec_note, kind) == 4 &&
              offsetof(cg_exec_note, ts_ns) == 8 && offsetof(cg_exec_note, tgid) == 16 &&
              offsetof(cg_exec_note, other) == 20);

// Both records start alike: user space reads the kind before it knows which one it has.
static_assert(offsetof(cg_exec_event, abi_version) == offsetof(cg_exec_note, abi_version) &&
              offsetof(cg_exec_event, kind) == offsetof(cg_exec_note, kind) &&
              offsetof(cg_exec_event, ts_ns) == offsetof(cg_exec_note, ts_ns) &&
              offsetof(cg_exec_event, tgid) == offsetof(cg_exec_note, tgid));
static_assert(offsetof(cg_exec_event, ppid) == 20 && offsetof(cg_exec_event, uid) == 24 &&
              offsetof(cg_exec_event, loginuid) == 28 && offsetof(cg_exec_event, flags) == 32 &&
              offsetof(cg_exec_event, args_len) == 36 && offsetof(cg_exec_event, exe_dev) == 40 &&
              offsetof(cg_exec_event, exe_ino) == 48 && offsetof(cg_exec_event, comm) == 56 &&
              offsetof(cg_exec_event, parent_comm) == 56 + CG_COMM_LEN &&
              offsetof(cg_exec_event, exe) == 56 + 2 * CG_COMM_LEN &&
              offsetof(cg_exec_event, args) == 56 + 2 * CG_COMM_LEN + CG_EXEC_PATH_LEN);
static_assert(sizeof(cg_exec_event) == 56 + 2 * CG_COMM_LEN + CG_EXEC_PATH_LEN + CG_EXEC_ARGS_LEN);
static_assert((CG_EXEC_ARGS_LEN & (CG_EXEC_ARGS_LEN - 1)) == 0, "cg_exec masks the argument length");
static_assert(sizeof(cg_exec_stats) == 8);
static_assert(offsetof(cg_exec_peer, abi_version) == offsetof(cg_exec_note, abi_version) &&
              offsetof(cg_exec_peer, kind) == offsetof(cg_exec_note, kind) &&
              offsetof(cg_exec_peer, ts_ns) == offsetof(cg_exec_note, ts_ns) &&
              offsetof(cg_exec_peer, tgid) == offsetof(cg_exec_note, tgid) &&
              offsetof(cg_exec_peer, other) == offsetof(cg_exec_note, other));
static_assert(offsetof(cg_exec_peer, socket) == 24 && sizeof(cg_exec_peer) == 24 + sizeof(cg_held_socket));

}  // namespace
