/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * custguard kernel/user ABI: every struct shared between the BPF programs and the
 * daemon. Plain C types, explicit padding, fixed sizes; the C++ side asserts sizes and
 * offsets (daemon/abi_check.cpp). Bump CG_ABI_VERSION on any layout change: pinned maps
 * of another version are not adopted but replaced.
 */
#ifndef CUSTGUARD_ABI_H
#define CUSTGUARD_ABI_H

#ifdef __BPF__
/* vmlinux.h provides __u32 and friends */
#else
#include <linux/types.h>
#endif

/*
 * 8: allow_clients (client map, smbd peers, cg_event.client)
 * 9: cg_clients values are struct cg_client (expiry of client grants), not __u8
 * 10: client machines' bulk-read cool-downs (cg_client_denies, CG_ZONE_CLIENT_DENIES)
 * 11: custguardd's own reads of zone files (CG_CTL_SELF_*)
 * 12: allowed reads recorded once per process, file and interval (cg_reads,
 *     cg_event.repeats, CG_CTL_READ_INTERVAL, cg_stats.reads_folded)
 * 13: a zone's flags in its roots' values and in directory-cache entries (the zones
 *     map is gone); CG_ZONE_DENIES; cg_stats.reads_folded moves when counts are recorded
 * 14: cg_reads times its intervals in jiffies (bpf_jiffies64, a load, instead of a
 *     clocksource read per counted open): CG_CTL_READ_INTERVAL in ticks, CG_CTL_TICK_NS,
 *     struct cg_read's recorded_j and last_j; a 16-byte cg_read_key (file, tgid) with
 *     the rest (struct cg_read_who) compared in the value; cg_stats.read_collisions
 * 15: repeated reads are counted in a direct-mapped array in front of cg_reads
 *     (cg_read_slots, struct cg_read_slot); an 8-byte cg_subject_key (zone_kind, id)
 * 16: struct cg_read_slot.active: a repeated read by a named user under the policy that
 *     filled its slot is counted without a decision
 */
#define CG_ABI_VERSION 16

#define CG_COMM_LEN 16
#define CG_PATH_LEN 256
#define CG_MAX_ZONES 65536
#define CG_MAX_ROOTS 65536
#define CG_MAX_SUBJECTS 262144
#define CG_MAX_GRANTS 65536
#define CG_MAX_PROGRAMS 16384
#define CG_MAX_GROUPS 32    /* supplementary groups checked per open */
#define CG_MAX_DEPTH 64     /* ancestors walked to find a zone root */

/* Decision, as recorded in events. */
enum cg_decision {
	CG_DECISION_ALLOW = 0,
	CG_DECISION_AUDIT = 1,
	CG_DECISION_DENY = 2,
};

/* Why (mirrors custguard::policy::Rule). */
enum cg_rule {
	CG_RULE_OUTSIDE = 0,
	CG_RULE_USER = 1,
	CG_RULE_GROUP = 2,
	CG_RULE_GRANT = 3,
	CG_RULE_NOT_ALLOWED = 4,
	CG_RULE_PROGRAM = 5,
	CG_RULE_REVOKED = 6, /* a deny row (bulk-read cool-down) overrides every allow */
	CG_RULE_ZONE_UNKNOWN = 7, /* on a zone filesystem, membership could not be established */
};

/* What the event is about. */
enum cg_event_kind {
	CG_EV_OPEN = 1,       /* open of a zone file */
	CG_EV_LINK = 2,       /* hard link to a zone file */
	CG_EV_RENAME = 3,     /* rename/move of a zone file or tree */
	CG_EV_UNLINK = 4,
};

/* zone_flags bits */
#define CG_ZONE_VIOLATION_AUDIT (1u << 0) /* else deny */
#define CG_ZONE_RECORD_ALLOWED (1u << 1)
#define CG_ZONE_SENSITIVE (1u << 2)
#define CG_ZONE_PROGRAMS (1u << 3) /* allow_programs must match too */
/* The zone has deny rows (cg_denies): only such zones pay for looking the opener up there. */
#define CG_ZONE_DENIES (1u << 7)

/*
 * Policy generations. Every policy table is an inner map of a two-slot array-of-maps; the
 * program reads the active slot once per hook and takes every table from that slot, so a
 * reload (fill the idle slot with fresh maps, then flip CG_CTL_ACTIVE in one 8-byte
 * store) is never seen half applied.
 */
#define CG_GENERATIONS 2

/* Indexes of the control words (struct cg_ctl_words). */
enum cg_ctl {
	/*
	 * Low 32 bits: policy slot in force (CG_SLOT_NONE: nothing enforced). High 32 bits:
	 * the directory-cache epoch (see struct cg_dir_zone), stored in the same 8-byte word
	 * so that a hook never pairs one generation's tables with another's epoch.
	 */
	CG_CTL_ACTIVE = 0,
	CG_CTL_RT_OFFSET = 1,   /* CLOCK_REALTIME - CLOCK_BOOTTIME in ns, set by user space */
	CG_CTL_ABI = 2,         /* CG_ABI_VERSION of the loader that created the maps */
	CG_CTL_GENERATION = 3,  /* counter of applied policies, for status and tests */
	CG_CTL_NDEVS = 4,       /* + slot: filesystems with zone roots in that generation */
	/*
	 * + slot: non-zero when some root of that generation is not a directory. Otherwise an
	 * opened file cannot be a root itself and its own root lookup is skipped.
	 */
	CG_CTL_FILE_ROOTS = 6,
	CG_CTL_DEVS = 8,        /* + slot * CG_FAST_DEVS + i: their devs, when <= CG_FAST_DEVS */
	/*
	 * Directory-cache refresh counter (struct cg_dir_zone.refresh): moved by user space
	 * every few minutes on its own key, so that it never rewrites CG_CTL_ACTIVE outside
	 * apply() (a read-modify-write there could race with another daemon's flip).
	 */
	CG_CTL_REFRESH = 8 + CG_GENERATIONS * 8,
	/*
	 * Completed renames that moved a directory, counted by the fexit program on
	 * vfs_rename (struct cg_dir_zone.dir_moves).
	 */
	CG_CTL_DIR_MOVES = CG_CTL_REFRESH + 1,
	/*
	 * Non-zero once that program and the one clearing entries of freed inodes are
	 * attached: until then no directory-cache entry is made, because nothing would
	 * invalidate it.
	 */
	CG_CTL_DIR_MOVES_TRACKED = CG_CTL_REFRESH + 2,
	/*
	 * custguardd itself, whose read-only opens of zone files are let through unrecorded:
	 * its [watch] watcher hashes zone files to recognise copies (CUSTGUARD_COPY_OF). The
	 * process is named by its tgid in the initial pid namespace AND its group leader's
	 * start_boottime in USER_HZ ticks (as /proc/PID/stat's starttime), so a pid recycled
	 * after custguardd exits does not match: user space writes these words only once a
	 * tick has passed since its own start, and a later process starts after it exited.
	 * Also its executable (kernel dev_t, inode), so that an exec in the process loses it.
	 * 0 in CG_CTL_SELF_TGID: nobody. A torn update mixes two daemons' words and matches
	 * neither.
	 */
	CG_CTL_SELF_TGID = CG_CTL_REFRESH + 3,
	CG_CTL_SELF_START = CG_CTL_REFRESH + 4,
	CG_CTL_SELF_EXE_DEV = CG_CTL_REFRESH + 5,
	CG_CTL_SELF_EXE_INO = CG_CTL_REFRESH + 6,
	/*
	 * The interval of allowed reads in jiffies (struct cg_read): within it, a process's
	 * further read-only opens of a file it was recorded opening only count. 0: every
	 * allowed open is recorded. User space writes the configured interval rounded up to
	 * whole ticks of CG_CTL_TICK_NS.
	 */
	CG_CTL_READ_INTERVAL = CG_CTL_REFRESH + 7,
	/*
	 * The length of a jiffy in ns (user space: clock_getres(CLOCK_MONOTONIC_COARSE), the
	 * kernel's TICK_NSEC): the sweep turns the jiffies of a counted open into a time.
	 */
	CG_CTL_TICK_NS = CG_CTL_REFRESH + 8,
	CG_CTL_MAX = CG_CTL_REFRESH + 9,
};

/* Clock ticks of CG_CTL_SELF_START: the kernel's USER_HZ (x86, arm64), checked by user space. */
#define CG_USER_HZ 100

/*
 * The control words: the single value of the one-entry, mmap-able control array. A hook
 * looks it up once and then reads words with plain loads; user space maps the value and
 * writes single words with 8-byte stores (never the whole value, which would undo the
 * kernel's increments of CG_CTL_DIR_MOVES).
 */
struct cg_ctl_words {
	__u64 w[CG_CTL_MAX];
};
/*
 * Opens on filesystems without zones are the common case: with few such filesystems the
 * check is a handful of inlined array loads instead of a hash lookup.
 */
#define CG_FAST_DEVS 8
#define CG_SLOT_NONE 0xffffffffULL
#define CG_ACTIVE_SLOT(v) ((__u32)(v))
#define CG_ACTIVE_EPOCH(v) ((__u32)((v) >> 32))
#define CG_ACTIVE_MAKE(slot, epoch) (((__u64)(epoch) << 32) | (__u32)(slot))

/*
 * Directory zone cache: a direct-mapped array indexed by a hash of a directory's struct
 * inode address -> the zone of the nearest zone root at or above that directory (0:
 * none), as the ancestor walk found it. Kept only on directories: a directory has
 * exactly one dentry, so its ancestry is a property of the inode, while a file's
 * membership depends on which of its hard links was opened (its parent directory
 * decides, plus its own root entry). A hit is a few plain loads, no helper call. An
 * entry is valid while its tags still hold:
 *  - inode: the address of the live directory inode. When a directory inode is freed
 *    (removed, evicted, unmounted) the lsm/inode_free_security program clears the slot
 *    that holds it, before the memory can be reused by another inode;
 *  - epoch: CG_ACTIVE_EPOCH at fill time; user space bumps it with every policy apply;
 *  - refresh: ctl[CG_CTL_REFRESH], moved by user space every 10 minutes, which bounds how
 *    long an entry can wait for a wrapped 32-bit dir_moves;
 *  - dir_moves: ctl[CG_CTL_DIR_MOVES] read before the walk. The counter moves after every
 *    completed rename that moved a directory, the only event that changes a directory's
 *    ancestry on a cacheable filesystem; renames of files leave entries valid. The fill
 *    itself is made only while the kernel's rename_lock sequence stays even and unchanged
 *    across the walk, so the walk saw one consistent tree.
 * seq is a per-slot sequence: odd while a writer (claimed with a compare-and-swap) owns
 * the slot; a reader uses what it read only if seq was even and unchanged around it.
 */
#define CG_DIRCACHE_BITS 14
#define CG_DIRCACHE_SLOTS (1u << CG_DIRCACHE_BITS)

struct cg_dir_zone {
	__u32 seq;
	__u32 zone_id;
	__u64 inode;      /* identity of the directory inode (its address), 0: empty */
	__u32 epoch;
	__u32 dir_moves;  /* ctl[CG_CTL_DIR_MOVES] before the walk */
	__u32 refresh;    /* ctl[CG_CTL_REFRESH] at fill time */
	__u32 zone_flags; /* of zone_id in the epoch's generation (struct cg_zone_root) */
};

/*
 * Map: zone roots, (dev, ino) of a file or directory -> zone id and that zone's flags.
 * The flags ride with every root (and from there into the directory cache) so that an
 * open finds its zone's settings in the lookup that found the zone: a generation's
 * flags never change, and a new generation moves the cache epoch.
 */
struct cg_inode_key {
	__u64 dev;  /* kernel dev_t: (major << 20) | minor, not the glibc st_dev encoding */
	__u64 ino;
};

struct cg_zone_root {
	__u32 zone_id;
	__u32 flags;      /* CG_ZONE_* of zone_id */
};

/* Map: dev -> number of roots on that filesystem: opens elsewhere exit after one lookup. */
struct cg_dev_count {
	__u32 roots;
	__u32 _pad;
};

/*
 * Map: (zone, kind, id) -> present (__u8 1). kind: 0 uid, 1 gid. 8 bytes, zone and kind in
 * one word (CG_SUBJECT_ZONE_KIND): jhash and the bucket's compare cover half the former
 * 16-byte key on every decided open.
 */
#define CG_SUBJECT_UID 0
#define CG_SUBJECT_GID 1
#define CG_SUBJECT_ZONE_KIND(zone_id, kind) (((__u32)(zone_id) << 1) | (__u32)(kind))
struct cg_subject_key {
	__u32 zone_kind; /* CG_SUBJECT_ZONE_KIND(zone_id, kind) */
	__u32 id;
};

/* Map: (zone, uid) -> expiry in CLOCK_REALTIME seconds. */
struct cg_grant_key {
	__u32 zone_id;
	__u32 uid;
};

struct cg_grant {
	__u64 expires_at;
};

/*
 * Map: (zone, uid) -> expiry of a deny row in CLOCK_REALTIME seconds, the grants' clock.
 * Until then the uid gets the zone's violation decision, whatever would allow it.
 */
struct cg_deny_key {
	__u32 zone_id;
	__u32 uid;
};

struct cg_deny {
	__u64 expires_at;
};

/* Map: (zone, exe dev, exe ino) -> present (__u8 1). */
struct cg_program_key {
	__u32 zone_id;
	__u32 _pad;
	__u64 dev;
	__u64 ino;
};

/*
 * One event per decided operation on a zone file. Produced by the BPF-LSM enforcer in
 * the ring buffer and, with identical contents, by the fanotify enforcer in user space.
 */
struct cg_event {
	__u32 abi_version;
	__u32 kind;       /* enum cg_event_kind */
	__u64 ts_ns;      /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
	__u32 pid;        /* thread id */
	__u32 tgid;       /* process id */
	__u32 uid;        /* fsuid */
	__u32 gid;        /* fsgid */
	__u32 loginuid;   /* audit loginuid, 4294967295 when unset */
	__u32 zone_id;
	__u32 decision;   /* enum cg_decision */
	__u32 rule;       /* enum cg_rule */
	__u32 open_flags; /* file->f_flags */
	/*
	 * Allowed reads only: how many more read-only opens of this file by this process
	 * (same user, zone, rule and program) this record stands for, made after the
	 * previous record of them and up to this one (struct cg_read). 0 otherwise.
	 */
	__u32 repeats;
	__u64 dev;        /* of the file */
	__u64 ino;
	__u64 exe_dev;    /* of the executable */
	__u64 exe_ino;
	char comm[CG_COMM_LEN];
	/*
	 * NUL-terminated; may be truncated. CG_EV_OPEN: the full path of the opened file
	 * in the opener's mount namespace. CG_EV_LINK/RENAME: "<source name>\0<new name>",
	 * the final components only (the hooks have no mount to build a full path from).
	 */
	char path[CG_PATH_LEN];
	/*
	 * An smbd's client (struct cg_smb_peers), IPv4 as ::ffff:a.b.c.d; all zero: none
	 * known or not an smbd. With CG_RULE_CLIENT_NOT_ALLOWED: the first one not allowed;
	 * with CG_RULE_REVOKED for a client's cool-down (cg_client_denies): that client.
	 */
	__u8 client[16];
};

/* Counters, per CPU, key 0. */
struct cg_stats {
	__u64 events;
	__u64 dropped;     /* ring buffer full: events lost */
	__u64 denied;
	/*
	 * Opens and moves on a filesystem with zones whose membership could not be
	 * established (ancestry cut at CG_MAX_DEPTH, a disconnected dentry, the real file of
	 * an overlay whose names could not all be read): refused as CG_RULE_ZONE_UNKNOWN.
	 */
	__u64 unresolved;
	/* Directory cache entries written (misses that could be cached), for tests. */
	__u64 dircache_fills;
	/* Directory cache entries cleared because their directory inode was freed. */
	__u64 dircache_retired;
	/*
	 * Allowed reads counted in cg_reads instead of recorded one by one, added when
	 * their count goes out in a record (cg_event.repeats, the sweep's record).
	 */
	__u64 reads_folded;
	/* Allowed reads recorded on their own because their cg_reads key names someone else. */
	__u64 read_collisions;
};

/*
 * ---- Allowed reads, once per process, file and interval ----
 * Map cg_reads (hash, not preallocated, pinned): what lsm/file_open recorded last for a
 * process reading a zone file. A read-only open that the zone's record_allowed would
 * record, made within CG_CTL_READ_INTERVAL of that record with the same key, is only
 * counted (pending) instead of being put into the ring buffer with its path. Two routes
 * record what was counted, so every read is in the history:
 *  - the next open of the key after the interval: its record carries the count in
 *    cg_event.repeats;
 *  - the sweep (raw_tp cg_read_sweep, run by user space through BPF_PROG_TEST_RUN every
 *    second and at stop): for each key whose interval is over (every key at stop), a
 *    copy of the key's stored record, timed at the last counted open, with repeats =
 *    pending - 1. A process that exited or stopped reading is flushed this way.
 * Both take pending with an atomic exchange, and the key's count in its slot of
 * cg_read_slots with a compare-and-swap, so an open is counted exactly once. The
 * sweep deletes a key with nothing pending two intervals after its record. When the map
 * is full, reads of new keys are recorded one by one (nothing is lost).
 * Intervals are counted in jiffies (bpf_jiffies64: a load; bpf_ktime_get_ns reads the
 * clocksource, and bpf_ktime_get_coarse_ns is refused to LSM programs by 6.1), by the
 * open and by the sweep alike, so both see the same end: an open is counted while fewer
 * than CG_CTL_READ_INTERVAL ticks have passed since its key's record, which holds the
 * configured interval to within one tick. The sweep's record is timed at the last
 * counted open's jiffy, turned into CLOCK_MONOTONIC with CG_CTL_TICK_NS: within one
 * tick of the open (4 ms at HZ=250), never before the key's last record.
 */
#define CG_MAX_READS 65536

/*
 * The hash key is the file and the process (16 bytes: jhash and the bucket's compare
 * cover a quarter of the former 64-byte key); who read it with what (struct
 * cg_read_who) is kept in the value and compared after the lookup. A key whose value
 * names someone else (the process ran another program, changed its fsuid or fsgid, the
 * zone or rule changed, or a recycled tgid within two intervals) is a collision: that
 * open is recorded on its own, never counted into the other's record
 * (cg_stats.read_collisions).
 */
struct cg_read_key {
	__u64 ino;
	__u32 dev;         /* kernel dev_t of the file (32 bits in the kernel) */
	__u32 tgid;
};

struct cg_read_who {
	__u64 exe_dev;     /* of the executable */
	__u64 exe_ino;
	__u64 start_ns;    /* group leader's start_boottime: a recycled pid is someone else */
	__u32 uid;         /* fsuid */
	__u32 gid;         /* fsgid */
	__u32 zone_id;
	__u32 rule;        /* enum cg_rule of the allow */
};

struct cg_read {
	__u64 recorded_ns; /* cg_event.ts_ns of the key's last record from lsm/file_open */
	__u64 recorded_j;  /* bpf_jiffies64() of that record */
	__u64 last_j;      /* of the last counted open */
	__u32 pending;     /* opens counted since and not yet recorded */
	__u32 _pad;
	struct cg_read_who who; /* set when the key is made, never changed */
	struct cg_event ev; /* the key's first record: what the sweep records again */
};

/*
 * Map cg_read_slots (array, pinned): the front of cg_reads for repeated reads. A key
 * (struct cg_read_key) has one slot, at a multiplicative hash of its words; the slot holds
 * the key, its reader and a copy of its recorded_j once an open recorded it, and then the
 * key's further reads within the interval are counted in the slot's state: an inlined
 * array lookup, seven compared words and a compare-and-swap instead of a hash lookup.
 * Keys whose slot holds another key count in cg_reads as before.
 * state: high 32 bits a sequence, odd while a writer owns the slot; low 32 bits the
 * key's opens counted there and not yet recorded. A reader counts with a compare-and-swap
 * of the state it read before comparing the key, so a count lands only in a slot that held
 * that key throughout. Writers claim the slot (sequence to odd) with a compare-and-swap:
 *  - the open that records a key (new or due) takes the slot's count of that key into its
 *    record, and puts the key into the slot if the slot holds it already or holds nothing
 *    counted, and cg_reads still has the key;
 *  - the sweep takes a due key's count from its slot with its pending in cg_reads, and
 *    deletes a quiet key only while it owns the key's slot, emptying the slot with it.
 * So a slot holds a key only while cg_reads has it, and the sweep, which walks cg_reads,
 * finds every count. An empty slot has rule 0 (CG_RULE_OUTSIDE), which no allowed reader has.
 * A slot also keeps the CG_CTL_ACTIVE word (policy slot and epoch) of the decision that
 * filled it. Every policy apply moves that word, so while it is unchanged the tables that
 * decided are the same: a read by the same fsuid in the same zone, allowed as a named user
 * (CG_RULE_USER) in a zone whose decisions depend on nothing else (no deny rows, program
 * list or client machines: CG_ZONE_DECIDED_EACH), is counted before cg_decide runs.
 */
#define CG_READ_SLOT_BITS 14
#define CG_READ_SLOTS (1u << CG_READ_SLOT_BITS)
#define CG_READ_SLOT_SEQ (1ULL << 32)   /* one step of the sequence in state */

struct cg_read_slot {
	__u64 state;            /* sequence << 32 | pending */
	struct cg_read_key key;
	struct cg_read_who who;
	__u64 recorded_j;       /* the key's recorded_j when the slot was filled */
	__u64 last_j;           /* bpf_jiffies64() of the last open counted here */
	__u64 active;           /* ctl[CG_CTL_ACTIVE] of the decision that filled the slot */
};

/* The slot of a key: a multiplicative hash of its two words (tests pick colliding keys). */
static inline __u32 cg_read_slot_index(const struct cg_read_key *k)
{
	__u64 lo = k->ino, hi = ((__u64)k->tgid << 32) | k->dev;

	return (__u32)((((lo * 0x9E3779B97F4A7C15ULL) ^ hi) * 0x9E3779B97F4A7C15ULL) >>
		       (64 - CG_READ_SLOT_BITS));
}

/* BPF_PROG_TEST_RUN context of cg_read_sweep (raw_tp: an array of __u64). */
enum cg_sweep_arg {
	CG_SWEEP_ALL = 0,  /* non-zero: flush every key, whatever its interval (stop) */
	CG_SWEEP_ARGS = 1,
};

/*
 * ---- Exec tracker (bpf/cg_exec.bpf.c) ----
 * Who a process is, captured when its program starts; and whether that program may
 * run code it does not name (allow_programs). Versioned by CG_ABI_VERSION like the rest.
 */

/* Rules of allow_programs' strict checks; they continue enum cg_rule. */
enum cg_rule_program {
	/* An allowed program started with dynamic-loader injection (LD_PRELOAD, ...). */
	CG_RULE_PROGRAM_TAMPERED = 8,
	/* An allowed program that is or was being traced (ptrace, memory access). */
	CG_RULE_PROGRAM_TRACED = 9,
};

#define CG_MAX_TASKS 65536
#define CG_EXEC_PATH_LEN 256
#define CG_EXEC_ARGS_LEN 512

/* struct cg_exec_task.flags */
#define CG_TASK_LOADER_ENV (1u << 0) /* a loader variable was set at exec */
#define CG_TASK_ENV_UNREAD (1u << 1) /* the environment could not be scanned whole */
#define CG_TASK_TRACED (1u << 2)     /* a tracer attached since the exec (BPF LSM) */
#define CG_TASK_TAMPERED (CG_TASK_LOADER_ENV | CG_TASK_ENV_UNREAD)

/* zone_flags bit: allow_programs_strict = false (listed programs trusted regardless) */
#define CG_ZONE_PROGRAMS_LAX (1u << 4)

/*
 * Map cg_exec_tasks: tgid -> what holds since the process's last exec. Written by the
 * exec tracker at exec (and copied at fork), deleted at exit; pinned as
 * <pin dir>/cg_exec_tasks and read there by the BPF-LSM program and by the fanotify
 * enforcer. A process started before the tracker has no entry.
 */
struct cg_exec_task {
	__u64 exec_ns;  /* bpf_ktime_get_ns() of the exec (or of the parent's) */
	__u32 flags;    /* CG_TASK_* */
	__u32 _pad;
};

/* Ring buffer records of the exec tracker; both start with abi_version and kind. */
enum cg_exec_kind {
	CG_EXEC_EXEC = 1, /* struct cg_exec_event */
	CG_EXEC_FORK = 2, /* struct cg_exec_note: tgid forked from other */
	CG_EXEC_EXIT = 3, /* struct cg_exec_note: the last thread of tgid exited */
	CG_EXEC_PEER = 4, /* struct cg_exec_peer: a connection tgid held when forked */
};

struct cg_exec_note {
	__u32 abi_version;
	__u32 kind;
	__u64 ts_ns;     /* CLOCK_MONOTONIC, as cg_event.ts_ns */
	__u32 tgid;
	__u32 other;
};

struct cg_exec_event {
	__u32 abi_version;
	__u32 kind;
	__u64 ts_ns;     /* CLOCK_MONOTONIC, as cg_event.ts_ns */
	__u32 tgid;
	__u32 ppid;      /* the real parent's tgid at exec */
	__u32 uid;       /* real uid */
	__u32 loginuid;  /* 4294967295 when unset */
	__u32 flags;     /* CG_TASK_* */
	__u32 args_len;  /* bytes of args used */
	__u64 exe_dev;   /* kernel dev_t of the executable, as cg_event.exe_dev */
	__u64 exe_ino;
	char comm[CG_COMM_LEN];
	char parent_comm[CG_COMM_LEN];
	/* The program that runs (a script's interpreter) as execve named it; may be relative. */
	char exe[CG_EXEC_PATH_LEN];
	char args[CG_EXEC_ARGS_LEN]; /* argv, NUL-separated, possibly truncated */
};

/* Counters, per CPU, key 0. */
struct cg_exec_stats {
	__u64 dropped;  /* ring buffer full: exec records lost */
};

/*
 * ---- allow_clients: which client machines an smbd may serve a zone's files to ----
 * smbd (comm "smbd" or "smbd[...]", or executable named smbd: the daemon's Samba
 * programs) serves one client per process. lsm/socket_recvmsg records, per process, the
 * peer of every TCP socket with local port 445 or 139 it reads from; lsm/file_open of a
 * zone with allow_clients then requires each recorded peer to be in the zone's list.
 * No peer recorded, or more than CG_MAX_PEERS: refused (fail closed).
 */
enum cg_rule_client {
	/* The user is allowed, but a client machine the smbd serves is not. */
	CG_RULE_CLIENT_NOT_ALLOWED = 10,
};

/* zone_flags bit: allow_clients is set; smbd needs every peer in cg_clients */
#define CG_ZONE_CLIENTS (1u << 5)

#define CG_MAX_CLIENT_ROWS 65536
#define CG_MAX_PEERS 4
#define CG_SMB_PORT 445
#define CG_NETBIOS_PORT 139

/*
 * Map cg_clients (per generation, LPM trie): the networks of a zone's allow_clients.
 * prefixlen counts bits from zone_id on: 32 + the network's prefix in the IPv6 form
 * (IPv4 a.b.c.d/n as ::ffff:a.b.c.d/96+n). A lookup uses 32 + 128.
 */
struct cg_client_key {
	__u32 prefixlen;
	__u32 zone_id;
	__u8 addr[16];
};

/*
 * Value of cg_clients: in force while the CLOCK_REALTIME second is below expires_at (as
 * cg_grant); 0: permanent (allow_clients). The trie returns only the longest match, so
 * user space stores each network with the latest expiry of the networks of its zone that
 * contain it (policy::spread_client_expiry): the longest match then answers for them all.
 */
struct cg_client {
	__u64 expires_at;
};

/*
 * Task storage cg_smb_peers, on the process's group leader: the TCP peers an smbd
 * process has read from. Entries [0, n) are valid once written (n is claimed with a
 * compare-and-swap first, so a reader may see an all-zero address for an instant: it is
 * not in any list but ::/0 and fails closed). overflow: more peers than fit.
 */
struct cg_smb_peers {
	__u32 n;
	__u32 overflow;
	__u8 addr[CG_MAX_PEERS][16];
};

/*
 * One TCP socket a process holds (cg_iter.bpf.c, iter/task_file), for the fanotify
 * enforcer. state: the kernel's TCP_* number (as in /proc/net/tcp); local_port in host
 * order; peer: network order, IPv4 in the first 4 bytes.
 */
struct cg_held_socket {
	__u16 family;
	__u16 local_port;
	__u8 state;
	__u8 pad[3];
	__u8 peer[16];
};

/*
 * After the CG_EXEC_FORK note of a process forked by a Samba process (comm "smbd" or
 * "smbd[..."): one record per connected TCP socket (not listening, not closed) the child
 * holds at birth. smbd accepts a client's connection and forks the process that serves
 * it, so this names the client of a session that is over before user space could look
 * (a `put` that connects, writes and hangs up at once). ts_ns, tgid and other (the
 * parent) are the fork note's.
 */
struct cg_exec_peer {
	__u32 abi_version;
	__u32 kind;
	__u64 ts_ns;
	__u32 tgid;
	__u32 other;
	struct cg_held_socket socket;
};

/* One thread of a process (cg_iter.bpf.c, iter/task): tid in the initial pid namespace. */
struct cg_thread_state {
	__u32 tid;
	__u32 traced; /* a tracer is attached */
};

/* zone_flags bit: the zone has client deny rows; an smbd's peers are looked up in them */
#define CG_ZONE_CLIENT_DENIES (1u << 6)

/*
 * The zone flags under which a decision reads more than the policy tables and the reader's
 * fsuid, fsgid and program: a clock (deny rows), tracers (allow_programs) or the smbd's
 * client machines. Reads in such zones are decided every time (see struct cg_read_slot).
 */
#define CG_ZONE_DECIDED_EACH (CG_ZONE_DENIES | CG_ZONE_PROGRAMS | CG_ZONE_CLIENTS | CG_ZONE_CLIENT_DENIES)

/*
 * Map cg_client_denies (per generation, hash): a client machine's bulk-read cool-down,
 * (zone, address in the IPv6 form, IPv4 as ::ffff:a.b.c.d like cg_client_key) -> expiry
 * (struct cg_deny) in CLOCK_REALTIME seconds, the grants' clock. Until then an smbd
 * process serving that address gets the zone's violation decision as CG_RULE_REVOKED,
 * with or without allow_clients, and the record names that address. An smbd whose peers
 * are unknown (more than CG_MAX_PEERS) is refused the same way in such a zone.
 */
struct cg_client_deny_key {
	__u32 zone_id;
	__u8 addr[16];
};

#endif /* CUSTGUARD_ABI_H */
