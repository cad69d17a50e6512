// SPDX-License-Identifier: GPL-2.0-only
/*
 * custguard BPF-LSM enforcer: decides opens of zone files, hard links and renames out of
 * zones, from maps that user space compiles from the policy. The kernel only looks
 * things up; every policy table belongs to one of two generations (see custguard_abi.h)
 * and a hook reads the active generation once, so a reload is never seen half applied.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "custguard_abi.h"

#define EPERM 1
#define CG_S_IFMT 00170000
#define CG_S_IFDIR 0040000
#define CG_FS_REQUIRES_DEV 1
#define CG_TMPFS_MAGIC 0x01021994
#define CG_FUSE_MAGIC 0x65735546
#define CG_AF_INET 2
#define CG_AF_INET6 10
#define CG_IPPROTO_TCP 6
#define CG_RING_BYTES (4 << 20)
#define CG_RING_WAKEUP_BYTES (CG_RING_BYTES / 4)

char LICENSE[] SEC("license") = "GPL";

/*
 * Whether the CPU keeps loads in order with loads, and stores with stores (x86). The
 * directory cache (cg_rename_seq) and cg_read_slots rely on that with compiler barriers
 * only; other architectures would need real barriers on their read sides, so there both
 * stay off.
 */
#if defined(__TARGET_ARCH_x86)
#define CG_ORDERED_CPU 1
#else
#define CG_ORDERED_CPU 0
#endif

/*
 * Inner map templates: the loader creates one inner map per table and generation. Sizes
 * instead of BTF types: clang emits only forward declarations for types used solely
 * here, and libbpf cannot size those.
 */
struct cg_inner_roots {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(struct cg_inode_key));
	__uint(value_size, sizeof(struct cg_zone_root));
};

struct cg_inner_devs {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u64));
	__uint(value_size, sizeof(struct cg_dev_count));
};

struct cg_inner_subjects {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(struct cg_subject_key));
	__uint(value_size, sizeof(__u8));
};

struct cg_inner_grants {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(struct cg_grant_key));
	__uint(value_size, sizeof(struct cg_grant));
};

struct cg_inner_denies {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(struct cg_deny_key));
	__uint(value_size, sizeof(struct cg_deny));
};

struct cg_inner_programs {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(struct cg_program_key));
	__uint(value_size, sizeof(__u8));
};

struct cg_inner_clients {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(key_size, sizeof(struct cg_client_key));
	__uint(value_size, sizeof(struct cg_client));
};

struct cg_inner_client_denies {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(struct cg_client_deny_key));
	__uint(value_size, sizeof(struct cg_deny));
};

#define CG_OUTER(name, inner)                                  \
	struct {                                               \
		__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);      \
		__uint(max_entries, CG_GENERATIONS);           \
		__type(key, __u32);                            \
		__array(values, struct inner);                 \
	} name SEC(".maps")

CG_OUTER(cg_roots, cg_inner_roots);
CG_OUTER(cg_devs, cg_inner_devs);
CG_OUTER(cg_subjects, cg_inner_subjects);
CG_OUTER(cg_grants, cg_inner_grants);
CG_OUTER(cg_programs, cg_inner_programs);
CG_OUTER(cg_denies, cg_inner_denies);
CG_OUTER(cg_clients, cg_inner_clients);
CG_OUTER(cg_client_denies, cg_inner_client_denies);

/* The TCP peers of each smbd process (struct cg_smb_peers); freed with the process. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct cg_smb_peers);
} cg_smb_peers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cg_ctl_words);
} cg_ctl SEC(".maps");

/* Directory zone cache: see struct cg_dir_zone in custguard_abi.h. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CG_DIRCACHE_SLOTS);
	__type(key, __u32);
	__type(value, struct cg_dir_zone);
} cg_dircache SEC(".maps");

/*
 * The dcache's rename seqlock. Not in the kernel's BTF (only per-CPU variables are), so
 * its address comes from kallsyms and it is read with bpf_probe_read_kernel. Weak: a
 * kernel without it (or hidden kallsyms) loads fine and simply never caches.
 */
extern const void rename_lock __ksym __weak;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, CG_RING_BYTES);
} cg_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cg_stats);
} cg_stats SEC(".maps");

/* Allowed reads, once per process, file and interval (see struct cg_read). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, CG_MAX_READS);
	__type(key, struct cg_read_key);
	__type(value, struct cg_read);
} cg_reads SEC(".maps");

/*
 * A new key's value is built here, then copied into cg_reads: it is too large for the
 * stack, and only map values and the stack can be inserted.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cg_read);
} cg_read_scratch SEC(".maps");

/* The front of cg_reads for repeated reads (see struct cg_read_slot). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CG_READ_SLOTS);
	__type(key, __u32);
	__type(value, struct cg_read_slot);
} cg_read_slots SEC(".maps");

/* Who is asking, read once per hook from the current task's credentials. */
struct cg_subject {
	__u32 fsuid;
	__u32 fsgid;
	__u64 exe_dev;
	__u64 exe_ino;
	/* The client to record (struct cg_event.client); all zero: none. */
	__u8 client[16];
};

#define cg_barrier() asm volatile("" ::: "memory")
/* Hides what the compiler knows about x's value (see cg_backing_zone). */
#define cg_opaque(x) asm volatile("" : "+r"(x))
#define CG_READ_ONCE(x) (*(volatile typeof(x) *)&(x))

static __always_inline struct cg_ctl_words *cg_ctl_words(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&cg_ctl, &zero);
}

/*
 * Word `base + slot` (a per-generation word). The mask restates slot < CG_GENERATIONS,
 * already checked, for the verifier, which loses the bound when slot is spilled.
 */
_Static_assert((CG_GENERATIONS & (CG_GENERATIONS - 1)) == 0, "CG_GENERATIONS: power of two");
static __always_inline __u64 cg_ctl_slot(struct cg_ctl_words *ctl, __u32 base, __u32 slot)
{
	return ctl->w[base + (slot & (CG_GENERATIONS - 1))];
}

static __always_inline struct cg_stats *cg_stats_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&cg_stats, &zero);
}

/*
 * Hot-path reads are direct BTF loads (CO-RE relocated, JITed as plain loads with fault
 * handling) rather than bpf_probe_read_kernel() helper calls: the ancestor walk runs on
 * every open on a filesystem that has zones.
 */
static __always_inline __u64 cg_inode_dev(struct inode *inode)
{
	return inode->i_sb->s_dev;
}

/* Whether filesystem `dev` has zone roots in generation `slot`. */
static __always_inline bool cg_dev_has_zones(struct cg_ctl_words *ctl, __u32 slot, __u64 dev)
{
	__u64 n = cg_ctl_slot(ctl, CG_CTL_NDEVS, slot);
	void *devs;

	if (n > CG_FAST_DEVS) {
		devs = bpf_map_lookup_elem(&cg_devs, &slot);
		return devs && bpf_map_lookup_elem(devs, &dev);
	}
	for (__u32 i = 0; i < CG_FAST_DEVS; i++) {
		if (i >= n)
			return false;
		if (ctl->w[CG_CTL_DEVS + (slot & (CG_GENERATIONS - 1)) * CG_FAST_DEVS + i] == dev)
			return true;
	}
	return false;
}

/* Marks a dentry cut off from its directory (found by file handle); 0x20 since 2.6. */
#define CG_DCACHE_DISCONNECTED 0x20

/* Field loads of the two walks: direct BTF loads, or probe reads (see below). */
#define CG_LOAD_DIRECT(p, field) ((p)->field)
#define CG_LOAD_PROBED(p, field) BPF_CORE_READ(p, field)

/*
 * Zone of a dentry, and that zone's flags in *zflags: the nearest ancestor (itself
 * included) that is a zone root. Walking d_parent of the dentry, not the path, is what
 * makes symlinks, bind mounts and /proc/<pid>/fd reopens land on the same answer: they
 * all resolve to this dentry.
 * Mount points inside a zone are covered by user space, which adds the root of every
 * filesystem mounted below a zone path as a root of that zone.
 *
 * A dentry that is its own parent ends the walk outside every zone when it is the root of
 * a tree: the filesystem's, or that of a subtree mounted on its own (a btrfs subvolume,
 * an NFS export path). Membership stays unknown (*resolved false) for a disconnected
 * dentry (open_by_handle_at, knfsd with a cold cache), a walk deeper than CG_MAX_DEPTH,
 * and an ancestry torn down while it is walked.
 *
 * cg_zone_walk loads fields directly, which the verifier allows for a dentry it knows
 * (the opened file's); cg_zone_walk_probed reads them with bpf_probe_read_kernel, for a
 * dentry found from a pointer computed by hand (cg_backing_zone).
 */
#define CG_DEFINE_ZONE_WALK(name, LOAD)						\
static __always_inline __u32 name(void *roots, struct dentry *d, __u64 dev,	\
				  __u32 *zflags, bool *resolved)			\
{										\
	struct cg_inode_key key = { .dev = dev };				\
	struct cg_zone_root *r;							\
	struct dentry *parent;							\
	struct inode *inode;							\
										\
	*resolved = false;							\
	*zflags = 0;								\
	for (int i = 0; i < CG_MAX_DEPTH; i++) {				\
		inode = LOAD(d, d_inode);					\
		if (!inode)							\
			return 0;						\
		key.ino = LOAD(inode, i_ino);					\
		r = bpf_map_lookup_elem(roots, &key);				\
		if (r) {							\
			*resolved = true;					\
			*zflags = r->flags;					\
			return r->zone_id;					\
		}								\
		parent = LOAD(d, d_parent);					\
		if (!parent)							\
			return 0;						\
		if (parent == d) {						\
			*resolved = !(LOAD(d, d_flags) & CG_DCACHE_DISCONNECTED); \
			return 0;						\
		}								\
		d = parent;							\
	}									\
	return 0;								\
}

CG_DEFINE_ZONE_WALK(cg_zone_walk, CG_LOAD_DIRECT)
CG_DEFINE_ZONE_WALK(cg_zone_walk_probed, CG_LOAD_PROBED)

/*
 * rename_lock's sequence: odd while a dentry moves, and odd (no caching) if unreadable.
 * The directory cache relies on x86's ordered loads (plus the locked compare-and-swap of
 * a fill, which keeps the walk's loads between the two reads of this sequence); other
 * architectures would need real barriers on the read side, so there it stays off.
 */
static __always_inline __u32 cg_rename_seq(void)
{
#if CG_ORDERED_CPU
	const seqlock_t *lock = (const seqlock_t *)&rename_lock;
	__u32 seq;

	if (!lock)
		return 1;
	if (bpf_core_read(&seq, sizeof(seq), &lock->seqcount.seqcount.sequence))
		return 1;
	return seq;
#else
	return 1;
#endif
}

/*
 * Filesystems whose dcache sees every rename: local block filesystems and tmpfs. A
 * network or FUSE filesystem can change its tree behind the dcache (another client
 * renames a directory; the new dentry is made without a d_move), so it is never cached.
 */
static __always_inline bool cg_fs_cacheable(struct inode *inode)
{
	struct super_block *sb = inode->i_sb;
	unsigned long magic = sb->s_magic;

	if (magic == CG_TMPFS_MAGIC)
		return true;
	if (magic == CG_FUSE_MAGIC)
		return false;
	return sb->s_type->fs_flags & CG_FS_REQUIRES_DEV;
}

/*
 * A directory inode's identity in the cache: its address, as its distance from the cache
 * map's own address. The verifier allows no arithmetic on a kernel pointer but the
 * difference of two pointers (a scalar, for programs loaded with CAP_PERFMON), and the
 * map's address is the same for every program that shares the pinned map.
 */
static __always_inline __u64 cg_dir_ident(struct inode *dir)
{
	return (__u64)(void *)dir - (__u64)(void *)&cg_dircache;
}

/* The slot of identity `id`: a multiplicative hash. */
static __always_inline struct cg_dir_zone *cg_dircache_slot(__u64 id)
{
	__u32 i = (id * 0x9E3779B97F4A7C15ULL) >> (64 - CG_DIRCACHE_BITS);

	return bpf_map_lookup_elem(&cg_dircache, &i);
}

/*
 * The cached zone of the directory of identity `id` (cg_dir_ident) and its flags, or
 * false on a miss. Seqcount read:
 * on x86 loads are not reordered with loads and the JIT keeps program order, so a
 * compiler barrier is all a reader needs (as the kernel's own smp_rmb() on x86). Other
 * architectures never fill.
 */
static __always_inline bool cg_dircache_get(__u64 id, __u32 epoch, __u32 moves, __u32 refresh,
					    __u32 *zone_id, __u32 *zflags)
{
	struct cg_dir_zone *e = cg_dircache_slot(id);
	__u32 seq, z, f;

	if (!e)
		return false;
	seq = CG_READ_ONCE(e->seq);
	cg_barrier();
	if ((seq & 1) || e->inode != id || e->epoch != epoch || e->dir_moves != moves ||
	    e->refresh != refresh)
		return false;
	z = e->zone_id;
	f = e->zone_flags;
	cg_barrier();
	if (CG_READ_ONCE(e->seq) != seq)
		return false;
	*zone_id = z;
	*zflags = f;
	return true;
}

/* Takes slot `e`, whose sequence was read as `s`, for writing: false if a writer has it. */
static __always_inline bool cg_dircache_claim(struct cg_dir_zone *e, __u32 s)
{
	return !(s & 1) && __sync_val_compare_and_swap(&e->seq, s, s + 1) == s;
}

/*
 * Empties slot `e` if it still holds `id` and no writer owns it. A failed claim means a
 * writer took the slot meanwhile: it writes another directory, or this one and then
 * re-checks it (see cg_dircache_fill).
 */
static __always_inline bool cg_dircache_clear(struct cg_dir_zone *e, __u64 id)
{
	__u32 s = CG_READ_ONCE(e->seq);

	if (e->inode != id || !cg_dircache_claim(e, s))
		return false;
	e->inode = 0;
	__sync_fetch_and_add(&e->seq, 1);
	return true;
}

/*
 * Records the walk's answer for directory `dir` (inode of dentry `dird`): `moves` was
 * ctl[CG_CTL_DIR_MOVES] and `seq` rename_lock's sequence (even), both read before the
 * walk. The slot is claimed by moving its sequence to odd with a compare-and-swap,
 * written, and published by a locked add to the next even value (both full barriers on
 * x86). The entry is then re-checked and cleared again unless the walk saw one tree: an
 * unchanged rename sequence means no dentry moved since before the walk, and `d`'s parent
 * still being `dird` means it was throughout. Passing also proves `dir` was alive after
 * the publish: it is the opened inode (the file holds it) or the parent of the opened
 * dentry `d` (held by `d` while it stays its parent). So when `dir` is freed, its
 * inode_free_security (cg_dir_freed) finds the published entry and clears it; a free
 * that raced the fill makes the re-check fail instead (the barriers guarantee one side
 * sees the other), and RCU keeps the memory from reuse until this program has returned.
 */
static __always_inline void cg_dircache_fill(struct inode *dir, struct dentry *dird,
					     struct dentry *d, __u32 zone_id, __u32 zflags,
					     __u32 epoch, __u32 moves, __u32 seq, __u32 refresh)
{
	__u64 id = cg_dir_ident(dir);
	struct cg_dir_zone *e = cg_dircache_slot(id);
	struct cg_stats *st;
	__u32 s;

	if (!e)
		return;
	s = CG_READ_ONCE(e->seq);
	if (!cg_dircache_claim(e, s))
		return; /* another writer owns the slot */
	e->zone_id = zone_id;
	e->zone_flags = zflags;
	e->epoch = epoch;
	e->dir_moves = moves;
	e->refresh = refresh;
	e->inode = id;
	__sync_fetch_and_add(&e->seq, 1);
	if (cg_rename_seq() != seq || (dird != d && d->d_parent != dird)) {
		cg_dircache_clear(e, id);
		return;
	}
	st = cg_stats_get();
	if (st)
		__sync_fetch_and_add(&st->dircache_fills, 1);
}

/* Names of one inode examined before a backing file's membership counts as unknown. */
#define CG_MAX_ALIASES 8

/*
 * Zone of a backing file: the real file an overlay opens for a user's open. On Linux 6.1
 * overlayfs opens it with open_with_fake_path: f_inode is the real inode (on the
 * filesystem with the zones), f_path the overlay's, so a walk from f_path never meets a
 * zone. The real file's own names are decided instead: every dentry on the real inode's
 * alias list, which holds the one the overlay opened (the overlay keeps a reference to
 * it). The file is in the zone any of its names is in. Unknown (*resolved false): names
 * in two zones, more than CG_MAX_ALIASES names, a name leaving the list while it is read,
 * a walk that cannot finish, or no name at all. The caller has checked the file's own
 * root entry.
 *
 * A name's directory is looked up in the directory cache (entries belong to a directory
 * inode however it is reached); a miss walks from it. Backing files never fill the cache:
 * which name the overlay holds is unknown, and a fill needs a held name.
 *
 * The list is read without its lock. A dentry's d_inode is cleared before it leaves the
 * alias list, and x86 does not reorder loads, so a name that still has this inode after
 * its next pointer was read gave a current next pointer; the dentries stay memory until
 * this RCU reader returns. container_of on the list node is pointer arithmetic the
 * verifier refuses on a BTF pointer, hence probe reads.
 */
static __always_inline __u32 cg_backing_zone(void *roots, struct inode *inode, bool is_dir,
					    __u64 dev, __u32 epoch, __u32 moves, __u32 refresh,
					    __u32 *zflags, bool *resolved)
{
	__u64 alias_off = bpf_core_field_offset(struct dentry, d_u.d_alias);
	struct hlist_node *n = BPF_CORE_READ(inode, i_dentry.first), *next;
	__u64 inode_id = cg_dir_ident(inode), inode_addr, same, dinode;
	struct dentry *a, *dir;
	__u32 zone_id = 0, z, f;
	bool ok;

	*resolved = false;
	*zflags = 0;
	if (!n)
		return 0;
	cg_opaque(inode_id);
	for (int i = 0; i < CG_MAX_ALIASES; i++) {
		a = (struct dentry *)((__u64)n - alias_off);
		next = BPF_CORE_READ(n, next);
		inode_addr = (__u64)BPF_CORE_READ(a, d_inode);
		same = inode_addr;
		cg_opaque(same);
		if (same != (__u64)inode)
			return 0;
		/* A file's zone is its directory's; a directory (or a root) is walked itself. */
		dir = is_dir ? a : BPF_CORE_READ(a, d_parent);
		if (!dir)
			return 0;
		dinode = dir != a ? (__u64)BPF_CORE_READ(dir, d_inode) : 0;
		/*
		 * The directory's cache identity from plain numbers: the verifier allows no
		 * arithmetic between a number and the cache map's address, but the opened
		 * inode's identity is a difference of two pointers, and inode_addr its address.
		 * cg_opaque keeps the compiler from folding that back into pointer arithmetic
		 * (it knows `same` equals inode, not that inode_addr does).
		 */
		if (!dinode || !cg_dircache_get(dinode - inode_addr + inode_id, epoch, moves,
						refresh, &z, &f)) {
			z = cg_zone_walk_probed(roots, dir, dev, &f, &ok);
			if (!ok)
				return 0;
		}
		if (z && zone_id && z != zone_id)
			return 0;
		if (z) {
			zone_id = z;
			*zflags = f;
		}
		if (!next) {
			*resolved = true;
			return zone_id;
		}
		n = next;
	}
	return 0;
}

/*
 * The audit loginuid of the current task, for records only (4294967295 when unset or not
 * built in): a decision does not read it, so a counted read does not load it.
 */
static __always_inline __u32 cg_loginuid(void)
{
	struct task_struct *task = bpf_get_current_task_btf();

	if (bpf_core_field_exists(task->loginuid))
		return task->loginuid.val;
	return 0xffffffff;
}

/*
 * Direct BTF loads, no helper calls: this runs for every decided open. Only what a
 * decision or a counted read compares (cg_loginuid and the supplementary groups are
 * loaded where needed).
 */
static __always_inline void cg_subject_read(struct task_struct *task, struct cg_subject *s)
{
	const struct cred *cred = task->cred;
	struct file *exe;

	s->fsuid = cred->fsuid.val;
	s->fsgid = cred->fsgid.val;
	s->exe_dev = 0;
	s->exe_ino = 0;
	exe = task->mm ? task->mm->exe_file : NULL;
	if (exe) {
		struct inode *inode = exe->f_inode;

		s->exe_dev = cg_inode_dev(inode);
		s->exe_ino = inode->i_ino;
	}
}

/*
 * ---- allow_programs, strict: the allowed program runs only its own code ----
 * The exec tracker (cg_exec.bpf.c) keeps per process whether it was started with
 * dynamic-loader injection or had a tracer attach since its exec; this map is its map,
 * shared by the pin (user space sets the pin path). A process without an entry started
 * before the tracker: only a tracer attached now is seen.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CG_MAX_TASKS);
	__type(key, __u32);
	__type(value, struct cg_exec_task);
} cg_exec_tasks SEC(".maps");

/* CG_RULE_PROGRAM_TAMPERED / _TRACED when the current process may run foreign code, else 0. */
static __always_inline __u32 cg_program_untrusted(void)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct cg_exec_task *t = bpf_map_lookup_elem(&cg_exec_tasks, &tgid);

	if (t && (t->flags & CG_TASK_TAMPERED))
		return CG_RULE_PROGRAM_TAMPERED;
	if ((t && (t->flags & CG_TASK_TRACED)) || task->ptrace)
		return CG_RULE_PROGRAM_TRACED;
	return 0;
}

/*
 * ---- allow_clients (see struct cg_smb_peers) ----
 * A Samba file server process, named as the daemon names them (events::EnrichConfig
 * samba_programs): comm "smbd" or "smbd[<client>]", or an executable called smbd. A
 * process that only calls itself smbd gets the stricter treatment, never a looser one.
 */
static __always_inline bool cg_is_smbd(struct task_struct *task)
{
	char comm[CG_COMM_LEN];
	char name[6];
	struct file *exe;

	bpf_get_current_comm(comm, sizeof(comm));
	if (comm[0] == 's' && comm[1] == 'm' && comm[2] == 'b' && comm[3] == 'd' &&
	    (comm[4] == 0 || comm[4] == '['))
		return true;
	exe = task->mm ? task->mm->exe_file : NULL;
	if (!exe)
		return false;
	if (bpf_probe_read_kernel_str(name, sizeof(name), exe->f_path.dentry->d_name.name) != 5)
		return false;
	return name[0] == 's' && name[1] == 'm' && name[2] == 'b' && name[3] == 'd';
}

static __always_inline struct cg_smb_peers *cg_peers_of(struct task_struct *task, __u64 flags)
{
	return bpf_task_storage_get(&cg_smb_peers, task->group_leader, 0, flags);
}

/*
 * Whether every client the current smbd process serves is in zone_id's allow_clients
 * (or a client grant in force: the entry's expiry, same clock as grants).
 * Unknown clients (none recorded, too many) are not. *bad: the first one not allowed.
 */
static __always_inline bool cg_clients_allowed(__u32 slot, __u32 zone_id, __u64 rt_offset, __u8 *bad)
{
	struct cg_smb_peers *p = cg_peers_of(bpf_get_current_task_btf(), 0);
	struct cg_client_key k = { .prefixlen = 32 + 128, .zone_id = zone_id };
	void *clients = bpf_map_lookup_elem(&cg_clients, &slot);
	__u64 now_s = (bpf_ktime_get_boot_ns() + rt_offset) / 1000000000ULL;
	struct cg_client *c;
	__u32 n;

	if (!p || !clients || p->overflow)
		return false;
	n = CG_READ_ONCE(p->n);
	if (!n)
		return false;
	for (__u32 i = 0; i < CG_MAX_PEERS; i++) {
		if (i >= n)
			break;
		__builtin_memcpy(k.addr, p->addr[i], 16);
		c = bpf_map_lookup_elem(clients, &k);
		if (!c || (c->expires_at && now_s >= c->expires_at)) {
			__builtin_memcpy(bad, k.addr, 16);
			return false;
		}
	}
	return true;
}

/*
 * Whether a client the current smbd process serves is in its bulk-read cool-down in
 * zone_id at now_s (struct cg_client_deny_key). Unknown clients (more than CG_MAX_PEERS)
 * count as one: the cool-down must not be escaped by opening connections. *bad: the
 * address in its cool-down.
 */
static __always_inline bool cg_client_revoked(__u32 slot, __u32 zone_id, __u64 now_s, __u8 *bad)
{
	struct cg_smb_peers *p = cg_peers_of(bpf_get_current_task_btf(), 0);
	struct cg_client_deny_key k = { .zone_id = zone_id };
	void *denies = bpf_map_lookup_elem(&cg_client_denies, &slot);
	struct cg_deny *d;
	__u32 n;

	if (!p || !denies)
		return false;
	if (p->overflow)
		return true;
	n = CG_READ_ONCE(p->n);
	for (__u32 i = 0; i < CG_MAX_PEERS; i++) {
		if (i >= n)
			break;
		__builtin_memcpy(k.addr, p->addr[i], 16);
		d = bpf_map_lookup_elem(denies, &k);
		if (d && now_s < d->expires_at) {
			__builtin_memcpy(bad, k.addr, 16);
			return true;
		}
	}
	return false;
}

/* Returns the decision; *rule says why. */
static __always_inline __u32 cg_decide(__u32 slot, __u32 zone_id, __u32 zflags,
				       struct cg_subject *s, __u64 rt_offset, __u32 *rule)
{
	struct cg_subject_key sk = { .zone_kind = CG_SUBJECT_ZONE_KIND(zone_id, CG_SUBJECT_UID) };
	struct cg_grant_key gk = { .zone_id = zone_id, .uid = s->fsuid };
	struct cg_deny_key dk = { .zone_id = zone_id, .uid = s->fsuid };
	void *subjects, *grants, *programs, *denies;
	struct cg_grant *grant;
	struct cg_deny *deny;
	bool allowed = false;

	/* A deny row in force overrides every allow below; same clock as grants. */
	denies = (zflags & CG_ZONE_DENIES) ? bpf_map_lookup_elem(&cg_denies, &slot) : NULL;
	deny = denies ? bpf_map_lookup_elem(denies, &dk) : NULL;
	if (deny && (bpf_ktime_get_boot_ns() + rt_offset) / 1000000000ULL < deny->expires_at) {
		*rule = CG_RULE_REVOKED;
		return (zflags & CG_ZONE_VIOLATION_AUDIT) ? CG_DECISION_AUDIT : CG_DECISION_DENY;
	}
	subjects = bpf_map_lookup_elem(&cg_subjects, &slot);
	if (subjects) {
		sk.id = s->fsuid;
		if (bpf_map_lookup_elem(subjects, &sk)) {
			allowed = true;
			*rule = CG_RULE_USER;
		}
		sk.zone_kind = CG_SUBJECT_ZONE_KIND(zone_id, CG_SUBJECT_GID);
		sk.id = s->fsgid;
		if (!allowed && bpf_map_lookup_elem(subjects, &sk)) {
			allowed = true;
			*rule = CG_RULE_GROUP;
		}
		/*
		 * The supplementary groups are loaded only here: each BTF load is a checked
		 * load, and most allowed opens match by fsuid or fsgid.
		 */
		struct group_info *gi = allowed ? NULL : bpf_get_current_task_btf()->cred->group_info;

		if (!allowed && gi) {
			int n = BPF_CORE_READ(gi, ngroups);

			for (int i = 0; i < CG_MAX_GROUPS; i++) {
				if (i >= n)
					break;
				if (bpf_core_read(&sk.id, sizeof(sk.id), &gi->gid[i]))
					break;
				if (bpf_map_lookup_elem(subjects, &sk)) {
					allowed = true;
					*rule = CG_RULE_GROUP;
					break;
				}
			}
		}
	}
	if (!allowed) {
		grants = bpf_map_lookup_elem(&cg_grants, &slot);
		grant = grants ? bpf_map_lookup_elem(grants, &gk) : NULL;
		/*
		 * Grants expire in CLOCK_REALTIME seconds (what admins type). The kernel reads
		 * CLOCK_BOOTTIME, which keeps counting across suspend like the wall clock does,
		 * and user space keeps REALTIME - BOOTTIME in CG_CTL_RT_OFFSET.
		 */
		if (grant) {
			__u64 now_s = (bpf_ktime_get_boot_ns() + rt_offset) / 1000000000ULL;

			if (now_s < grant->expires_at) {
				allowed = true;
				*rule = CG_RULE_GRANT;
			}
		}
	}
	if (!allowed) {
		*rule = CG_RULE_NOT_ALLOWED;
	} else if (zflags & CG_ZONE_PROGRAMS) {
		struct cg_program_key pk = {
			.zone_id = zone_id, .dev = s->exe_dev, .ino = s->exe_ino,
		};

		__u32 untrusted;

		programs = bpf_map_lookup_elem(&cg_programs, &slot);
		if (!programs || !bpf_map_lookup_elem(programs, &pk)) {
			allowed = false;
			*rule = CG_RULE_PROGRAM;
		} else if (!(zflags & CG_ZONE_PROGRAMS_LAX) &&
			   (untrusted = cg_program_untrusted())) {
			allowed = false;
			*rule = untrusted;
		}
	}
	/*
	 * A client machine in its bulk-read cool-down, among those the smbd serves: refused
	 * like a revoked user, whatever allow_clients lists.
	 */
	if (allowed && (zflags & CG_ZONE_CLIENT_DENIES) && cg_is_smbd(bpf_get_current_task_btf()) &&
	    cg_client_revoked(slot, zone_id, (bpf_ktime_get_boot_ns() + rt_offset) / 1000000000ULL,
			      s->client)) {
		allowed = false;
		*rule = CG_RULE_REVOKED;
	}
	/* The zone lists client machines: an smbd may serve it only to those. */
	if (allowed && (zflags & CG_ZONE_CLIENTS) && cg_is_smbd(bpf_get_current_task_btf()) &&
	    !cg_clients_allowed(slot, zone_id, rt_offset, s->client)) {
		allowed = false;
		*rule = CG_RULE_CLIENT_NOT_ALLOWED;
	}
	if (allowed)
		return CG_DECISION_ALLOW;
	return (zflags & CG_ZONE_VIOLATION_AUDIT) ? CG_DECISION_AUDIT : CG_DECISION_DENY;
}

/* Whether the decision named a client (struct cg_subject.client is not all zero). */
static __always_inline bool cg_client_named(struct cg_subject *s)
{
	__u64 w[2];

	__builtin_memcpy(w, s->client, sizeof(w));
	return w[0] | w[1];
}

static __always_inline struct cg_event *cg_event_start(__u32 kind, struct cg_subject *s,
						       __u32 zone_id, __u32 decision,
						       __u32 rule, struct inode *inode)
{
	struct cg_stats *st = cg_stats_get();
	struct cg_event *ev;
	__u64 id;

	ev = bpf_ringbuf_reserve(&cg_events, sizeof(*ev), 0);
	if (!ev) {
		if (st)
			__sync_fetch_and_add(&st->dropped, 1);
		return NULL;
	}
	if (st)
		__sync_fetch_and_add(&st->events, 1);
	id = bpf_get_current_pid_tgid();
	ev->abi_version = CG_ABI_VERSION;
	ev->kind = kind;
	ev->ts_ns = bpf_ktime_get_ns();
	ev->pid = (__u32)id;
	ev->tgid = id >> 32;
	ev->uid = s->fsuid;
	ev->gid = s->fsgid;
	ev->loginuid = cg_loginuid();
	ev->zone_id = zone_id;
	ev->decision = decision;
	ev->rule = rule;
	ev->open_flags = 0;
	ev->repeats = 0;
	ev->dev = cg_inode_dev(inode);
	ev->ino = inode->i_ino;
	ev->exe_dev = s->exe_dev;
	ev->exe_ino = s->exe_ino;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	ev->path[0] = 0;
	/*
	 * An smbd's records name its client, as the fanotify enforcer's do: the one the
	 * decision refused (not allowed, in its cool-down), else the first one served.
	 */
	__builtin_memcpy(ev->client, s->client, sizeof(ev->client));
	if (rule != CG_RULE_CLIENT_NOT_ALLOWED && !cg_client_named(s)) {
		struct task_struct *task = bpf_get_current_task_btf();
		struct cg_smb_peers *p;

		if (cg_is_smbd(task) && (p = cg_peers_of(task, 0)) && CG_READ_ONCE(p->n))
			__builtin_memcpy(ev->client, p->addr[0], sizeof(ev->client));
	}
	return ev;
}

/*
 * Recorded allowed reads (the access history) do not wake the consumer: it drains the
 * ring on its poll timeout, which saves a context switch per open. Denials and audits
 * wake it at once, and so does a ring filling up.
 */
static __always_inline __u64 cg_wakeup_flags(__u32 decision)
{
	if (decision == CG_DECISION_ALLOW &&
	    bpf_ringbuf_query(&cg_events, BPF_RB_AVAIL_DATA) < CG_RING_WAKEUP_BYTES)
		return BPF_RB_NO_WAKEUP;
	return 0;
}

static __always_inline int cg_verdict(__u32 decision)
{
	if (decision == CG_DECISION_DENY) {
		struct cg_stats *st = cg_stats_get();

		if (st)
			__sync_fetch_and_add(&st->denied, 1);
		return -EPERM;
	}
	return 0;
}

/* Counts an operation refused because its membership is unknown (CG_RULE_ZONE_UNKNOWN). */
static __always_inline void cg_count_unresolved(void)
{
	struct cg_stats *st = cg_stats_get();

	if (st)
		__sync_fetch_and_add(&st->unresolved, 1);
}

#define CG_FMODE_WRITE 0x2
#define CG_O_TRUNC 01000

/*
 * custguardd's own open of a zone file (see CG_CTL_SELF_TGID): its [watch] watcher reads
 * zone files to recognise exact copies of them. Only a process with custguardd's tgid, its
 * start time and its executable, so not a child it forks (the sandboxed reader, notify
 * helpers, sendmail: each has a tgid of its own), nor a process given a recycled pid.
 * Not while a tracer is or was attached, nor after a start with loader injection (the exec
 * tracker's flags, as allow_programs strict): whoever controls custguardd's code would read
 * through it. Reads only: opened for writing or with O_TRUNC, custguardd is decided like
 * anyone. It never writes zone files, and an open that can change one could be made to
 * rewrite zone data on someone else's behalf. Links and renames (cg_integrity) get no
 * exemption for the same reason: moving a file out of a zone is how data leaves it.
 */
static __always_inline bool cg_own_read(struct cg_ctl_words *ctl, struct task_struct *task,
					__u32 tgid, struct file *file)
{
	__u64 self = ctl->w[CG_CTL_SELF_TGID];
	struct inode *exe_inode;
	struct file *exe;

	if (!self || tgid != self)
		return false;
	if ((file->f_mode & CG_FMODE_WRITE) || (file->f_flags & CG_O_TRUNC))
		return false;
	if (task->group_leader->start_boottime / (1000000000ULL / CG_USER_HZ) !=
	    ctl->w[CG_CTL_SELF_START])
		return false;
	exe = task->mm ? task->mm->exe_file : NULL;
	if (!exe)
		return false;
	exe_inode = exe->f_inode;
	if (cg_inode_dev(exe_inode) != ctl->w[CG_CTL_SELF_EXE_DEV] ||
	    exe_inode->i_ino != ctl->w[CG_CTL_SELF_EXE_INO])
		return false;
	return !cg_program_untrusted();
}

/*
 * The cg_reads key and reader of an allowed open, or false when the open is not a read
 * that may be counted instead of recorded (opened for writing or truncation: each is
 * recorded, as it can change the file; or no interval set).
 */
static __always_inline bool cg_read_key(struct cg_ctl_words *ctl, struct task_struct *task, __u32 tgid,
					struct file *file, struct cg_subject *s, __u32 zone_id,
					__u32 rule, struct inode *inode, __u64 dev,
					struct cg_read_key *k, struct cg_read_who *w)
{
	if (!ctl->w[CG_CTL_READ_INTERVAL])
		return false;
	if ((file->f_mode & CG_FMODE_WRITE) || (file->f_flags & CG_O_TRUNC))
		return false;
	k->ino = inode->i_ino;
	k->dev = dev;
	k->tgid = tgid;
	w->exe_dev = s->exe_dev;
	w->exe_ino = s->exe_ino;
	w->start_ns = task->group_leader->start_boottime;
	w->uid = s->fsuid;
	w->gid = s->fsgid;
	w->zone_id = zone_id;
	w->rule = rule;
	return true;
}

/* Whether two readers are the same (struct cg_read_who: 5 words, compared branch-free). */
static __always_inline bool cg_read_same(const struct cg_read_who *a, const struct cg_read_who *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return !((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4]));
}

/* The slot of key k in cg_read_slots. */
static __always_inline struct cg_read_slot *cg_read_slot_of(const struct cg_read_key *k)
{
	__u32 i = cg_read_slot_index(k);

	return bpf_map_lookup_elem(&cg_read_slots, &i);
}

/* Whether slot e holds key k; read under a sequence the caller checks afterwards. */
static __always_inline bool cg_read_slot_key(const struct cg_read_slot *e, const struct cg_read_key *k)
{
	const __u64 *x = (const __u64 *)&e->key, *y = (const __u64 *)k;

	return !((x[0] ^ y[0]) | (x[1] ^ y[1]));
}

/* Whether slot e holds key k of reader w (7 words, compared branch-free). */
static __always_inline bool cg_read_slot_holds(const struct cg_read_slot *e, const struct cg_read_key *k,
					       const struct cg_read_who *w)
{
	const __u64 *a = (const __u64 *)&e->key, *b = (const __u64 *)k;
	const __u64 *x = (const __u64 *)&e->who, *y = (const __u64 *)w;

	return !((a[0] ^ b[0]) | (a[1] ^ b[1]) | (x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) |
		 (x[3] ^ y[3]) | (x[4] ^ y[4]));
}

#define CG_READ_SLOT_COUNT 0xffffffffULL /* the count's bits of cg_read_slot.state */

/*
 * A repeated read counted in its key's slot: the slot holds the key and reader and the
 * key's record is less than an interval old; with same_policy, the slot was also filled
 * under the policy in force now (`active`, see struct cg_read_slot). The count is a
 * compare-and-swap of the state read before the compare, so it fails (and the open goes
 * on to cg_reads) if a writer claimed the slot meanwhile or another open counted first.
 * x86 keeps loads in order; the barrier keeps the compiler from moving the compare before
 * the state's load. last_j is stored before the count: a taker that takes this count
 * reads it after.
 * Only on an ordered CPU (CG_ORDERED_CPU): a writer gives the slot back with an atomic
 * add that orders nothing on arm64 (STADD). Elsewhere no slot is ever filled and every
 * repeated read counts in cg_reads; the sweep's take and retire see empty slots.
 */
static __always_inline bool cg_read_front(struct cg_ctl_words *ctl, struct cg_read_key *k,
					  struct cg_read_who *w, __u64 active, bool same_policy)
{
	struct cg_read_slot *e;
	__u64 s, now_j;

	if (!CG_ORDERED_CPU)
		return false;
	e = cg_read_slot_of(k);
	if (!e)
		return false;
	s = CG_READ_ONCE(e->state);
	cg_barrier();
	/* A writer owns the slot, or the count would carry into the sequence. */
	if ((s & CG_READ_SLOT_SEQ) || (__u32)s == (__u32)CG_READ_SLOT_COUNT ||
	    !cg_read_slot_holds(e, k, w) || (same_policy && e->active != active))
		return false;
	now_j = bpf_jiffies64();
	if (now_j - e->recorded_j >= ctl->w[CG_CTL_READ_INTERVAL])
		return false;
	e->last_j = now_j;
	return __sync_val_compare_and_swap(&e->state, s, s + 1) == s;
}

/*
 * The open that records key k (new or due, recorded at recorded_j) takes the count its
 * slot holds for it, and puts the key into the slot for its next reads: when the slot
 * holds it already or nothing counted, and cg_reads, looked up while the slot is owned,
 * still has the key with this reader (the sweep deletes keys only while it owns their
 * slot). Returns the count taken. A slot owned by someone else is left as it is: a count
 * of this key in it stays for the sweep.
 */
static __always_inline __u32 cg_read_slot_fill(struct cg_read_key *k, struct cg_read_who *w,
					       __u64 recorded_j, __u64 active)
{
	struct cg_read_slot *e;
	struct cg_read *r;
	bool held;
	__u64 s;

	if (!CG_ORDERED_CPU)
		return 0;
	e = cg_read_slot_of(k);
	if (!e)
		return 0;
	s = CG_READ_ONCE(e->state);
	cg_barrier();
	if (s & CG_READ_SLOT_SEQ)
		return 0;
	held = cg_read_slot_holds(e, k, w);
	if (!held && (s & CG_READ_SLOT_COUNT))
		return 0; /* another key's count waits for its record */
	/* Claimed with the count cleared: this key's if held, else there was none. */
	if (__sync_val_compare_and_swap(&e->state, s, (s & ~CG_READ_SLOT_COUNT) + CG_READ_SLOT_SEQ) != s)
		return 0;
	r = bpf_map_lookup_elem(&cg_reads, k);
	if (r && cg_read_same(&r->who, w)) {
		__builtin_memcpy(&e->key, k, sizeof(e->key));
		__builtin_memcpy(&e->who, w, sizeof(e->who));
		e->recorded_j = recorded_j;
		e->last_j = recorded_j;
		e->active = active;
	} else {
		e->who.rule = 0; /* empty */
	}
	__sync_fetch_and_add(&e->state, CG_READ_SLOT_SEQ);
	return held ? (__u32)s : 0;
}

/* Outcome of cg_read_counted for an open that is recorded. */
enum cg_read_state {
	CG_READ_NEW = 0,       /* no key: the record makes one */
	CG_READ_DUE = 1,       /* the key's interval is over: the record takes its count */
	CG_READ_COLLIDED = 2,  /* the key names another reader: recorded on its own */
};

/*
 * A read within the interval of its key's last record by the same reader: counted, not
 * recorded. Otherwise says why (enum cg_read_state) and returns the key's value for a
 * due key. The clock (jiffies, see struct cg_read) is read only for a key that exists.
 * cg_stats.reads_folded moves when a count is taken (cg_reads_taken), not here: this
 * path, taken by every repeated read, stays one lookup, a compare, a load of jiffies
 * and an atomic add.
 */
static __always_inline bool cg_read_counted(struct cg_ctl_words *ctl, struct cg_read_key *k,
					    struct cg_read_who *w, struct cg_read **v,
					    enum cg_read_state *state)
{
	struct cg_read *r = bpf_map_lookup_elem(&cg_reads, k);
	__u64 now_j;

	*v = NULL;
	*state = CG_READ_NEW;
	if (!r)
		return false;
	if (!cg_read_same(&r->who, w)) {
		*state = CG_READ_COLLIDED;
		return false;
	}
	now_j = bpf_jiffies64();
	if (now_j - CG_READ_ONCE(r->recorded_j) >= ctl->w[CG_CTL_READ_INTERVAL]) {
		*v = r;
		*state = CG_READ_DUE;
		return false;
	}
	__sync_fetch_and_add(&r->pending, 1);
	r->last_j = now_j;
	return true;
}

/* `n` counted reads were taken into a record (cg_stats.reads_folded). */
static __always_inline void cg_reads_taken(__u32 n)
{
	struct cg_stats *st;

	if (!n)
		return;
	st = cg_stats_get();
	if (st)
		__sync_fetch_and_add(&st->reads_folded, n);
}

/*
 * The open's record ev is about to go out: a due key's count goes with it (an atomic
 * exchange, as the sweep takes it) and starts a new interval; a new key is inserted with
 * ev as its stored record. A full map or a racing insert of the same key leaves this
 * open recorded on its own, which loses nothing; so does a collision.
 */
static __always_inline void cg_read_recorded(struct cg_read_key *k, struct cg_read_who *w,
					     struct cg_read *v, enum cg_read_state state,
					     struct cg_event *ev, __u64 now, __u64 active)
{
	__u64 now_j;
	struct cg_read *r;
	struct cg_stats *st;
	__u32 zero = 0;

	if (state == CG_READ_COLLIDED) {
		st = cg_stats_get();
		if (st)
			__sync_fetch_and_add(&st->read_collisions, 1);
		return;
	}
	now_j = bpf_jiffies64();
	if (v) {
		ev->repeats = __sync_lock_test_and_set(&v->pending, 0);
		v->recorded_ns = now;
		v->recorded_j = now_j;
		ev->repeats += cg_read_slot_fill(k, w, now_j, active);
		cg_reads_taken(ev->repeats);
		return;
	}
	r = bpf_map_lookup_elem(&cg_read_scratch, &zero);
	if (!r)
		return;
	r->recorded_ns = now;
	r->recorded_j = now_j;
	r->last_j = now_j;
	r->pending = 0;
	r->_pad = 0;
	__builtin_memcpy(&r->who, w, sizeof(r->who));
	__builtin_memcpy(&r->ev, ev, sizeof(r->ev));
	if (bpf_map_update_elem(&cg_reads, k, r, BPF_NOEXIST))
		return;
	ev->repeats = cg_read_slot_fill(k, w, now_j, active);
	cg_reads_taken(ev->repeats);
}

SEC("lsm/file_open")
int BPF_PROG(cg_file_open, struct file *file, int ret)
{
	struct inode *inode = file->f_inode, *dinode = inode;
	struct dentry *d = file->f_path.dentry, *dird = d;
	__u32 slot, epoch, seq, refresh, zone_id = 0, zflags = 0, decision, rule = CG_RULE_OUTSIDE, tgid;
	__u64 moves;
	bool cacheable = true;
	void *roots;
	struct cg_ctl_words *ctl;
	struct cg_subject s = {};
	struct cg_zone_root *own;
	struct task_struct *task;
	struct cg_event *ev;
	__u64 active, dev, rt_offset;
	bool resolved, is_dir, counted = false;
	struct cg_read_key rk;
	struct cg_read_who rw;
	struct cg_read *rv = NULL;
	enum cg_read_state rstate = CG_READ_NEW;

	if (ret)
		return ret;
	ctl = cg_ctl_words();
	if (!ctl)
		return 0;
	active = CG_READ_ONCE(ctl->w[CG_CTL_ACTIVE]);
	slot = CG_ACTIVE_SLOT(active);
	epoch = CG_ACTIVE_EPOCH(active);
	if (slot >= CG_GENERATIONS)
		return 0;
	/* Filesystems without zone roots, the common case, exit here. */
	dev = cg_inode_dev(inode);
	if (!cg_dev_has_zones(ctl, slot, dev))
		return 0;
	/*
	 * Membership = the opened inode's own root entry (single-file zones), else the zone
	 * of the directory holding the opened dentry: the directory cache answers that in
	 * one lookup, a miss walks the ancestors. Either gives the zone's flags with it. The
	 * move counter is read before d_parent. The roots table is looked up only by what
	 * reads it, not on a cache hit: user space installs a slot's tables before it makes
	 * the slot active and never removes them, so a slot with zone devs has its roots.
	 */
	moves = CG_READ_ONCE(ctl->w[CG_CTL_DIR_MOVES]);
	refresh = CG_READ_ONCE(ctl->w[CG_CTL_REFRESH]);
	is_dir = (inode->i_mode & CG_S_IFMT) == CG_S_IFDIR;
	if (!is_dir && cg_ctl_slot(ctl, CG_CTL_FILE_ROOTS, slot)) {
		struct cg_inode_key self = { .dev = dev, .ino = inode->i_ino };

		roots = bpf_map_lookup_elem(&cg_roots, &slot);
		if (!roots)
			return 0;
		own = bpf_map_lookup_elem(roots, &self);
		if (own) {
			zone_id = own->zone_id;
			zflags = own->flags;
			goto decide;
		}
	}
	if (d->d_inode != inode) {
		/* A backing file (see cg_backing_zone): its path is not its own. */
		roots = bpf_map_lookup_elem(&cg_roots, &slot);
		if (!roots)
			return 0;
		zone_id = cg_backing_zone(roots, inode, is_dir, dev, epoch, moves, refresh,
					  &zflags, &resolved);
		if (!resolved)
			goto unresolved;
		goto decide;
	}
	if (!is_dir) {
		dird = d->d_parent;
		if (!dird || dird == d) {
			/* A root or disconnected: walked from the file itself, never cached. */
			dird = d;
			cacheable = false;
		}
		dinode = dird->d_inode;
	}
	if (cacheable && dinode &&
	    cg_dircache_get(cg_dir_ident(dinode), epoch, moves, refresh, &zone_id, &zflags))
		goto decide;
	/* Only a miss pays for rename_lock: a fill needs a walk over an unchanging tree. */
	roots = bpf_map_lookup_elem(&cg_roots, &slot);
	if (!roots)
		return 0;
	seq = cg_rename_seq();
	zone_id = cg_zone_walk(roots, dird, dev, &zflags, &resolved);
	if (!resolved)
		goto unresolved;
	if (cacheable && dinode && !(seq & 1) && cg_fs_cacheable(dinode) &&
	    ctl->w[CG_CTL_DIR_MOVES_TRACKED])
		cg_dircache_fill(dinode, dird, d, zone_id, zflags, epoch, moves, seq, refresh);
decide:
	if (!zone_id)
		return 0;
	/* Everything below reads the current task: one helper call, then plain loads. */
	task = bpf_get_current_task_btf();
	/* task->tgid: bpf_get_current_pid_tgid's upper half, without the helper call. */
	tgid = task->tgid;
	if (cg_own_read(ctl, task, tgid, file))
		return 0;
	rt_offset = ctl->w[CG_CTL_RT_OFFSET];
	cg_subject_read(task, &s);
	/*
	 * A repeated read by a user the zone names, in a zone decided by its tables alone,
	 * whose slot was filled under this policy: the subjects row that allowed it then
	 * allows it now, so it is counted without cg_decide (see struct cg_read_slot).
	 */
	if ((zflags & (CG_ZONE_RECORD_ALLOWED | CG_ZONE_DECIDED_EACH)) == CG_ZONE_RECORD_ALLOWED &&
	    cg_read_key(ctl, task, tgid, file, &s, zone_id, CG_RULE_USER, inode, dev, &rk, &rw) &&
	    cg_read_front(ctl, &rk, &rw, active, true))
		return 0;
	decision = cg_decide(slot, zone_id, zflags, &s, rt_offset, &rule);
	if (decision == CG_DECISION_ALLOW) {
		if (!(zflags & CG_ZONE_RECORD_ALLOWED))
			return 0;
		counted = cg_read_key(ctl, task, tgid, file, &s, zone_id, rule, inode, dev, &rk, &rw);
		if (counted && (cg_read_front(ctl, &rk, &rw, active, false) ||
				cg_read_counted(ctl, &rk, &rw, &rv, &rstate)))
			return 0;
	}
	goto record;
unresolved:
	/* On a filesystem with zones, a file of unknown membership is refused. */
	cg_count_unresolved();
	cg_subject_read(bpf_get_current_task_btf(), &s);
	zone_id = 0;
	decision = CG_DECISION_DENY;
	rule = CG_RULE_ZONE_UNKNOWN;
record:
	ev = cg_event_start(CG_EV_OPEN, &s, zone_id, decision, rule, inode);
	if (ev) {
		ev->open_flags = file->f_flags;
		if (bpf_d_path((struct path *)&file->f_path, ev->path, sizeof(ev->path)) < 0)
			ev->path[0] = 0;
		if (counted)
			cg_read_recorded(&rk, &rw, rv, rstate, ev, ev->ts_ns, active);
		bpf_ringbuf_submit(ev, cg_wakeup_flags(decision));
	}
	return cg_verdict(decision);
}

/* See struct cg_read: records what cg_reads counted, for keys whose interval is over. */
struct cg_sweep {
	__u64 now_ns;
	__u64 now_j;
	__u64 interval_j;
	__u64 tick_ns;
	__u64 all;
	__u64 recorded;
};

/*
 * CLOCK_MONOTONIC of the tick in which jiffies read `j`, from the sweep's own pair of
 * clocks: within one tick of the open, and kept between the key's last record and now.
 */
static __always_inline __u64 cg_jiffies_ns(struct cg_sweep *c, __u64 j, __u64 recorded_ns)
{
	__u64 back = j < c->now_j ? (c->now_j - j) * c->tick_ns : 0;
	__u64 ns = back < c->now_ns ? c->now_ns - back : 0;

	return ns < recorded_ns ? recorded_ns : ns;
}

/*
 * The count of key k (reader w) in its slot, taken by the sweep (the sequence is kept:
 * only the count changes), and in *last_j the slot's last counted jiffy. 0 when the slot
 * holds another key or a writer owns it: a count of k left there waits for the next sweep,
 * as k, still due, is not deleted while its slot holds a count (cg_read_retire).
 */
static __always_inline __u32 cg_read_slot_take(struct cg_read_key *k, struct cg_read_who *w,
					       __u64 *last_j)
{
	struct cg_read_slot *e = cg_read_slot_of(k);
	__u64 s;

	if (!e)
		return 0;
	for (int attempt = 0; attempt < 4; attempt++) {
		s = CG_READ_ONCE(e->state);
		cg_barrier();
		if ((s & CG_READ_SLOT_SEQ) || !(s & CG_READ_SLOT_COUNT) || !cg_read_slot_holds(e, k, w))
			return 0;
		if (__sync_val_compare_and_swap(&e->state, s, s & ~CG_READ_SLOT_COUNT) == s) {
			*last_j = CG_READ_ONCE(e->last_j);
			return (__u32)s;
		}
	}
	return 0;
}

/*
 * Deletes quiet key k from cg_reads, owning its slot meanwhile, and empties the slot if
 * it holds k; so no open puts k into its slot between (cg_read_slot_fill looks k up while
 * it owns the slot). Leaves k for the next sweep when the slot is busy or holds a count
 * of k made since this sweep took it.
 */
static __always_inline void cg_read_retire(struct bpf_map *map, struct cg_read_key *k)
{
	struct cg_read_slot *e = cg_read_slot_of(k);
	bool held;
	__u64 s;

	if (!e)
		return;
	s = CG_READ_ONCE(e->state);
	cg_barrier();
	if (s & CG_READ_SLOT_SEQ)
		return;
	held = cg_read_slot_key(e, k);
	if (held && (s & CG_READ_SLOT_COUNT))
		return;
	if (__sync_val_compare_and_swap(&e->state, s, s + CG_READ_SLOT_SEQ) != s)
		return;
	bpf_map_delete_elem(map, k);
	if (held)
		e->who.rule = 0; /* empty */
	__sync_fetch_and_add(&e->state, CG_READ_SLOT_SEQ);
}

static long cg_sweep_one(struct bpf_map *map, struct cg_read_key *k, struct cg_read *v,
			 struct cg_sweep *c)
{
	__u64 recorded_j = CG_READ_ONCE(v->recorded_j);
	/* A record made since this sweep read the clock is new, not 2^64 ticks old. */
	__u64 age_j = recorded_j < c->now_j ? c->now_j - recorded_j : 0;
	__u64 last_j = CG_READ_ONCE(v->last_j), slot_j = 0;
	struct cg_event *ev;
	__u32 n, in_slot;

	if (!c->all && age_j < c->interval_j)
		return 0;
	n = CG_READ_ONCE(v->pending) ? __sync_lock_test_and_set(&v->pending, 0) : 0;
	in_slot = cg_read_slot_take(k, &v->who, &slot_j);
	if (in_slot) {
		n += in_slot;
		if (slot_j > last_j)
			last_j = slot_j;
	}
	if (!n) {
		/* Quiet for two intervals: an open still deciding within the first is long done. */
		if (age_j >= 2 * c->interval_j)
			cg_read_retire(map, k);
		return 0;
	}
	ev = bpf_ringbuf_reserve(&cg_events, sizeof(*ev), 0);
	if (!ev) {
		/* The ring is full: keep the count for the next sweep and stop this one. */
		if (last_j > CG_READ_ONCE(v->last_j))
			v->last_j = last_j;
		__sync_fetch_and_add(&v->pending, n);
		return 1;
	}
	__builtin_memcpy(ev, &v->ev, sizeof(*ev));
	ev->ts_ns = cg_jiffies_ns(c, last_j, CG_READ_ONCE(v->recorded_ns));
	ev->repeats = n - 1;
	bpf_ringbuf_submit(ev, 0);
	cg_reads_taken(n);
	c->recorded++;
	return 0;
}

/*
 * Run by user space with BPF_PROG_TEST_RUN, never attached. Returns how many records it
 * made; the control word gives the interval, ctx[CG_SWEEP_ALL] flushes every key.
 */
SEC("raw_tp")
int cg_read_sweep(__u64 *ctx)
{
	struct cg_ctl_words *ctl = cg_ctl_words();
	struct cg_sweep c = {};

	if (!ctl)
		return 0;
	c.now_ns = bpf_ktime_get_ns();
	c.now_j = bpf_jiffies64();
	c.interval_j = ctl->w[CG_CTL_READ_INTERVAL];
	c.tick_ns = ctl->w[CG_CTL_TICK_NS];
	c.all = ctx[CG_SWEEP_ALL];
	bpf_for_each_map_elem(&cg_reads, cg_sweep_one, &c, 0);
	return c.recorded;
}

/*
 * A hard link or a rename that takes a zone inode out of its zone (to no zone or another
 * zone) is decided like an open by the same subject: someone not allowed to read the zone
 * must not be able to give its data a path outside the zone. Links and renames inside
 * the zone are left alone. The inode_* hooks are used instead of path_* so that in-kernel
 * callers (nfsd, ksmbd, overlayfs) are covered too.
 */
static __always_inline int cg_integrity(__u32 kind, struct dentry *src, struct dentry *dst)
{
	__u32 slot, zone_id, dst_zone, zflags, dst_flags, decision, rule = CG_RULE_OUTSIDE;
	struct inode *inode = src->d_inode;
	struct dentry *dst_dir = dst->d_parent;
	void *roots;
	struct cg_ctl_words *ctl;
	struct cg_subject s = {};
	struct cg_event *ev;
	__u64 dev, dst_dev;
	bool resolved;

	if (!inode)
		return 0;
	ctl = cg_ctl_words();
	if (!ctl)
		return 0;
	slot = CG_ACTIVE_SLOT(CG_READ_ONCE(ctl->w[CG_CTL_ACTIVE]));
	if (slot >= CG_GENERATIONS)
		return 0;
	dev = cg_inode_dev(inode);
	if (!cg_dev_has_zones(ctl, slot, dev))
		return 0;
	roots = bpf_map_lookup_elem(&cg_roots, &slot);
	if (!roots)
		return 0;
	zone_id = cg_zone_walk(roots, src, dev, &zflags, &resolved);
	if (!resolved)
		goto unresolved;
	if (!zone_id)
		return 0;
	/* Renaming a zone root itself keeps it a root: its (dev, ino) does not change. */
	dst_dev = dst_dir && dst_dir->d_inode ? cg_inode_dev(dst_dir->d_inode) : 0;
	dst_zone = 0;
	if (dst_dir) {
		dst_zone = cg_zone_walk(roots, dst_dir, dst_dev, &dst_flags, &resolved);
		if (!resolved)
			goto unresolved;
	}
	if (dst_zone == zone_id)
		return 0;
	{
		struct cg_inode_key self = { .dev = dev, .ino = inode->i_ino };

		if (kind == CG_EV_RENAME && bpf_map_lookup_elem(roots, &self))
			return 0;
	}
	cg_subject_read(bpf_get_current_task_btf(), &s);
	decision = cg_decide(slot, zone_id, zflags, &s, ctl->w[CG_CTL_RT_OFFSET], &rule);
	goto record;
unresolved:
	/* Where the source or the destination cannot be placed, the move is refused. */
	cg_count_unresolved();
	cg_subject_read(bpf_get_current_task_btf(), &s);
	zone_id = 0;
	decision = CG_DECISION_DENY;
	rule = CG_RULE_ZONE_UNKNOWN;
record:
	ev = cg_event_start(kind, &s, zone_id, decision, rule, inode);
	if (ev) {
		const unsigned char *name = BPF_CORE_READ(src, d_name.name);
		int n = bpf_probe_read_kernel_str(ev->path, CG_PATH_LEN / 2, name);

		if (n > 0 && n < CG_PATH_LEN / 2) {
			name = BPF_CORE_READ(dst, d_name.name);
			bpf_probe_read_kernel_str(ev->path + (n & (CG_PATH_LEN / 2 - 1)),
						  CG_PATH_LEN / 2, name);
		}
		bpf_ringbuf_submit(ev, cg_wakeup_flags(decision));
	}
	return cg_verdict(decision);
}

SEC("lsm/inode_link")
int BPF_PROG(cg_inode_link, struct dentry *old_dentry, struct inode *dir,
	     struct dentry *new_dentry, int ret)
{
	if (ret)
		return ret;
	return cg_integrity(CG_EV_LINK, old_dentry, new_dentry);
}

/* RENAME_EXCHANGE calls this hook a second time with the roles swapped. */
SEC("lsm/inode_rename")
int BPF_PROG(cg_inode_rename, struct inode *old_dir, struct dentry *old_dentry,
	     struct inode *new_dir, struct dentry *new_dentry, int ret)
{
	if (ret)
		return ret;
	return cg_integrity(CG_EV_RENAME, old_dentry, new_dentry);
}

#define CG_RENAME_EXCHANGE (1 << 1)

static __always_inline bool cg_is_dir(struct dentry *d)
{
	struct inode *inode = d ? d->d_inode : NULL;

	return inode && (inode->i_mode & CG_S_IFMT) == CG_S_IFDIR;
}

/*
 * Invalidates the directory cache after a rename that moved a directory (see struct
 * cg_dir_zone): fexit, so the count moves once the new tree is in place. Every rename of
 * a local filesystem's tree goes through vfs_rename (syscalls, nfsd, ksmbd, overlayfs).
 * Renames of files do not change any directory's ancestry and keep the cache warm:
 * clients that save by writing a temporary file and renaming it over the original.
 */
SEC("fexit/vfs_rename")
int BPF_PROG(cg_dir_moved, struct renamedata *rd, int ret)
{
	struct cg_ctl_words *ctl;

	if (ret)
		return 0;
	if (!cg_is_dir(rd->old_dentry) &&
	    !((rd->flags & CG_RENAME_EXCHANGE) && cg_is_dir(rd->new_dentry)))
		return 0;
	ctl = cg_ctl_words();
	if (ctl)
		__sync_fetch_and_add(&ctl->w[CG_CTL_DIR_MOVES], 1);
	return 0;
}

/*
 * Retires the directory-cache entry of a directory inode that is being freed (removed,
 * evicted under memory pressure, unmounted, a btrfs subvolume deleted), before its
 * memory can become another inode at the same address. Runs for every freed inode; files
 * never have entries and return at once.
 */
SEC("lsm/inode_free_security")
int BPF_PROG(cg_dir_freed, struct inode *inode)
{
	struct cg_dir_zone *e;
	struct cg_stats *st;
	__u64 id;

	if ((inode->i_mode & CG_S_IFMT) != CG_S_IFDIR)
		return 0;
	id = cg_dir_ident(inode);
	e = cg_dircache_slot(id);
	if (!e || !cg_dircache_clear(e, id))
		return 0;
	st = cg_stats_get();
	if (st)
		__sync_fetch_and_add(&st->dircache_retired, 1);
	return 0;
}

/*
 * Records the client machines of smbd processes (struct cg_smb_peers): the peer of every
 * TCP socket on the SMB ports an smbd reads from. read(), readv() and recvmsg() on a
 * socket all pass security_socket_recvmsg, and a request is read before the opens it
 * asks for, so the peer is known when file_open decides. smbd's own TCP connections
 * (to a domain controller, say) have other local ports and are not clients.
 */
_Static_assert((CG_MAX_PEERS & (CG_MAX_PEERS - 1)) == 0, "CG_MAX_PEERS: power of two");
SEC("lsm/socket_recvmsg")
int BPF_PROG(cg_smb_recv, struct socket *sock, struct msghdr *msg, int size, int flags, int ret)
{
	struct task_struct *task;
	struct cg_smb_peers *p;
	struct sock *sk;
	union {
		__u8 b[16];
		__u64 w[2];
	} addr = {};
	__u16 family, port;
	__u32 n;

	if (ret)
		return ret;
	sk = sock->sk;
	if (!sk || sk->sk_protocol != CG_IPPROTO_TCP)
		return 0;
	port = sk->__sk_common.skc_num;
	if (port != CG_SMB_PORT && port != CG_NETBIOS_PORT)
		return 0;
	family = sk->__sk_common.skc_family;
	task = bpf_get_current_task_btf();
	if (!cg_is_smbd(task))
		return 0;
	if (family == CG_AF_INET) {
		__u32 v4 = sk->__sk_common.skc_daddr;

		addr.b[10] = 0xff;
		addr.b[11] = 0xff;
		__builtin_memcpy(&addr.b[12], &v4, 4);
	} else if (family == CG_AF_INET6) {
		if (bpf_core_read(addr.b, sizeof(addr.b), &sk->__sk_common.skc_v6_daddr))
			return 0;
	} else {
		return 0;
	}
	p = cg_peers_of(task, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!p)
		return 0;
	/* Claim a slot; a writer racing on another thread makes us look again. */
	for (int attempt = 0; attempt < CG_MAX_PEERS; attempt++) {
		n = CG_READ_ONCE(p->n);
		for (__u32 i = 0; i < CG_MAX_PEERS; i++) {
			if (i >= n)
				break;
			__u64 *have = (__u64 *)p->addr[i];

			if (have[0] == addr.w[0] && have[1] == addr.w[1])
				return 0;
		}
		if (n >= CG_MAX_PEERS) {
			p->overflow = 1;
			return 0;
		}
		if (__sync_val_compare_and_swap(&p->n, n, n + 1) == n) {
			__builtin_memcpy(p->addr[n & (CG_MAX_PEERS - 1)], addr.b, 16);
			return 0;
		}
	}
	/* Could not record this peer: the process counts as serving unknown clients. */
	p->overflow = 1;
	return 0;
}
