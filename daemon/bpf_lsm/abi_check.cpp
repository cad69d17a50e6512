// The kernel and user space must agree on every byte of the shared structs: a mismatch
// would silently mis-decide opens, so it fails the build instead.
#include <cstddef>

#include "custguard_abi.h"

namespace {

static_assert(CG_ABI_VERSION == 16);
static_assert(sizeof(cg_inode_key) == 16);
static_assert(offsetof(cg_inode_key, dev) == 0 && offsetof(cg_inode_key, ino) == 8);
static_assert(sizeof(cg_zone_root) == 8);
static_assert(offsetof(cg_zone_root, zone_id) == 0 && offsetof(cg_zone_root, flags) == 4);
static_assert(sizeof(cg_dev_count) == 8);
static_assert(sizeof(cg_subject_key) == 8);
static_assert(offsetof(cg_subject_key, zone_kind) == 0 && offsetof(cg_subject_key, id) == 4);
static_assert(CG_SUBJECT_ZONE_KIND(65536, CG_SUBJECT_GID) == 131073);
static_assert(sizeof(cg_grant_key) == 8);
static_assert(offsetof(cg_grant_key, uid) == 4);
static_assert(sizeof(cg_grant) == 8);
static_assert(sizeof(cg_deny_key) == 8);
static_assert(offsetof(cg_deny_key, zone_id) == 0 && offsetof(cg_deny_key, uid) == 4);
static_assert(sizeof(cg_deny) == 8);
static_assert(CG_RULE_REVOKED == 6 && CG_RULE_ZONE_UNKNOWN == 7);
static_assert(sizeof(cg_program_key) == 24);
static_assert(CG_RULE_PROGRAM_TRACED == 9 && CG_RULE_CLIENT_NOT_ALLOWED == 10);
static_assert(sizeof(cg_client_key) == 24);
static_assert(sizeof(cg_client) == 8 && offsetof(cg_client, expires_at) == 0);
static_assert(offsetof(cg_client_key, zone_id) == 4 && offsetof(cg_client_key, addr) == 8);
static_assert(sizeof(cg_smb_peers) == 8 + CG_MAX_PEERS * 16);
static_assert(sizeof(cg_client_deny_key) == 20);
static_assert(offsetof(cg_client_deny_key, zone_id) == 0 && offsetof(cg_client_deny_key, addr) == 4);
static_assert(CG_ZONE_CLIENTS == 32 && CG_ZONE_CLIENT_DENIES == 64 && CG_ZONE_DENIES == 128);
static_assert(offsetof(cg_program_key, dev) == 8 && offsetof(cg_program_key, ino) == 16);
static_assert(sizeof(cg_stats) == 64);
static_assert(offsetof(cg_stats, dircache_fills) == 32 && offsetof(cg_stats, dircache_retired) == 40 &&
              offsetof(cg_stats, reads_folded) == 48 && offsetof(cg_stats, read_collisions) == 56);
static_assert(sizeof(cg_dir_zone) == 32);
static_assert(offsetof(cg_dir_zone, seq) == 0 && offsetof(cg_dir_zone, zone_id) == 4 &&
              offsetof(cg_dir_zone, inode) == 8 && offsetof(cg_dir_zone, epoch) == 16 &&
              offsetof(cg_dir_zone, dir_moves) == 20 && offsetof(cg_dir_zone, refresh) == 24 &&
              offsetof(cg_dir_zone, zone_flags) == 28);
static_assert(CG_DIRCACHE_SLOTS == 16384);
static_assert(CG_CTL_REFRESH == 24 && CG_CTL_DIR_MOVES == 25 && CG_CTL_DIR_MOVES_TRACKED == 26 &&
              CG_CTL_SELF_TGID == 27 && CG_CTL_SELF_START == 28 && CG_CTL_SELF_EXE_DEV == 29 &&
              CG_CTL_SELF_EXE_INO == 30 && CG_CTL_READ_INTERVAL == 31 && CG_CTL_TICK_NS == 32 &&
              CG_CTL_MAX == 33);
static_assert(CG_USER_HZ == 100 && 1'000'000'000 % CG_USER_HZ == 0);
static_assert(sizeof(cg_ctl_words) == CG_CTL_MAX * 8);
static_assert(CG_ACTIVE_SLOT(CG_ACTIVE_MAKE(1, 7)) == 1 && CG_ACTIVE_EPOCH(CG_ACTIVE_MAKE(1, 7)) == 7);
static_assert(CG_ACTIVE_SLOT(CG_ACTIVE_MAKE(CG_SLOT_NONE, 7)) == CG_SLOT_NONE);

static_assert(offsetof(cg_event, abi_version) == 0);
static_assert(offsetof(cg_event, kind) == 4);
static_assert(offsetof(cg_event, ts_ns) == 8);
static_assert(offsetof(cg_event, pid) == 16);
static_assert(offsetof(cg_event, tgid) == 20);
static_assert(offsetof(cg_event, uid) == 24);
static_assert(offsetof(cg_event, gid) == 28);
static_assert(offsetof(cg_event, loginuid) == 32);
static_assert(offsetof(cg_event, zone_id) == 36);
static_assert(offsetof(cg_event, decision) == 40);
static_assert(offsetof(cg_event, rule) == 44);
static_assert(offsetof(cg_event, open_flags) == 48);
static_assert(offsetof(cg_event, repeats) == 52);
static_assert(offsetof(cg_event, dev) == 56);
static_assert(offsetof(cg_event, ino) == 64);
static_assert(offsetof(cg_event, exe_dev) == 72);
static_assert(offsetof(cg_event, exe_ino) == 80);
static_assert(offsetof(cg_event, comm) == 88);
static_assert(offsetof(cg_event, path) == 88 + CG_COMM_LEN);
static_assert(offsetof(cg_event, client) == 88 + CG_COMM_LEN + CG_PATH_LEN);
static_assert(sizeof(cg_event) == 88 + CG_COMM_LEN + CG_PATH_LEN + 16);
static_assert(sizeof(cg_event) % 8 == 0);

static_assert(sizeof(cg_read_key) == 16);
static_assert(offsetof(cg_read_key, ino) == 0 && offsetof(cg_read_key, dev) == 8 &&
              offsetof(cg_read_key, tgid) == 12);
static_assert(sizeof(cg_read_who) == 40);
static_assert(offsetof(cg_read_who, exe_dev) == 0 && offsetof(cg_read_who, exe_ino) == 8 &&
              offsetof(cg_read_who, start_ns) == 16 && offsetof(cg_read_who, uid) == 24 &&
              offsetof(cg_read_who, gid) == 28 && offsetof(cg_read_who, zone_id) == 32 &&
              offsetof(cg_read_who, rule) == 36);
static_assert(offsetof(cg_read, recorded_ns) == 0 && offsetof(cg_read, recorded_j) == 8 &&
              offsetof(cg_read, last_j) == 16 && offsetof(cg_read, pending) == 24 &&
              offsetof(cg_read, who) == 32 && offsetof(cg_read, ev) == 72);
static_assert(sizeof(cg_read) == 72 + sizeof(cg_event));
static_assert(sizeof(cg_read_slot) == 88);
static_assert(offsetof(cg_read_slot, state) == 0 && offsetof(cg_read_slot, key) == 8 &&
              offsetof(cg_read_slot, who) == 24 && offsetof(cg_read_slot, recorded_j) == 64 &&
              offsetof(cg_read_slot, last_j) == 72 && offsetof(cg_read_slot, active) == 80);
static_assert(CG_READ_SLOTS == 16384 && CG_READ_SLOT_SEQ == 1ULL << 32);
static_assert(CG_SWEEP_ALL == 0 && CG_SWEEP_ARGS == 1);

}  // namespace
