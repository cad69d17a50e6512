// SPDX-License-Identifier: GPL-2.0-only
/*
 * custguard exec tracker: who a process is, captured when its program starts, so that
 * records name the program that made an access even when the process has exec'd
 * another program or exited by the time user space writes the record.
 *
 *  - sched_process_exec: one struct cg_exec_event (program, arguments, parent, login
 *    uid) in the ring buffer, and the task's entry in cg_exec_tasks (the loader-injection
 *    flags, read by the enforcers where allow_programs is checked);
 *  - sched_process_fork: a forked process runs its parent's program (and any code
 *    injected into it), so it inherits the parent's entry; user space gets a note, and
 *    for a child of smbd the client connections it holds from birth (cg_exec_peer);
 *  - sched_process_exit: the entry goes when the last thread of the process exits.
 *
 * Raw tracepoints and CO-RE reads only: this loads on kernels without BPF LSM or BPF
 * trampolines, where the fanotify enforcer runs.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "custguard_abi.h"

char LICENSE[] SEC("license") = "GPL";

#define CG_EXEC_RING_BYTES (4 << 20)
#define CG_ENV_CHUNK 256        /* bytes of one environment string read at a time */
#define CG_ENV_MAX_STEPS 8192   /* reads per exec before the environment counts as unread */

/* Shared with cg_lsm.bpf.c by its pin (see custguard_abi.h, struct cg_exec_task). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CG_MAX_TASKS);
	__type(key, __u32);
	__type(value, struct cg_exec_task);
} cg_exec_tasks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, CG_EXEC_RING_BYTES);
} cg_exec_events SEC(".maps");

/* Scratch for one environment string (too big for the BPF stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, char[CG_ENV_CHUNK]);
} cg_env_buf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cg_exec_stats);
} cg_exec_stats SEC(".maps");

static __always_inline struct cg_exec_stats *cg_exec_stats_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&cg_exec_stats, &zero);
}

static __always_inline void cg_count_drop(void)
{
	struct cg_exec_stats *st = cg_exec_stats_get();

	if (st)
		__sync_fetch_and_add(&st->dropped, 1);
}

/* Whether `s` starts with `prefix` (NUL-terminated name followed by '=') and a value. */
static __always_inline bool cg_env_is(const char *s, const char *prefix, int len)
{
	for (int i = 0; i < len; i++)
		if (s[i] != prefix[i])
			return false;
	return s[len] != 0;
}

/*
 * The variables that make the dynamic loader (or libc on its behalf) run code the
 * program does not name: see custguard.policy(5), allow_programs.
 */
static __always_inline bool cg_loader_variable(const char *s)
{
	if (s[0] == 'L' && s[1] == 'D' && s[2] == '_')
		return cg_env_is(s, "LD_PRELOAD=", 11) || cg_env_is(s, "LD_AUDIT=", 9) ||
		       cg_env_is(s, "LD_LIBRARY_PATH=", 16) || cg_env_is(s, "LD_ORIGIN_PATH=", 15);
	return cg_env_is(s, "GCONV_PATH=", 11);
}

struct cg_env_scan {
	__u64 p;
	__u64 end;
	__u32 flags;
	__u32 mid;   /* the next read continues a string longer than one chunk */
	__u32 done;
};

static long cg_env_step(__u32 i, struct cg_env_scan *s)
{
	__u32 zero = 0;
	char *buf;
	long n;

	if (s->p >= s->end) {
		s->done = 1;
		return 1;
	}
	buf = bpf_map_lookup_elem(&cg_env_buf, &zero);
	if (!buf)
		return 1;
	n = bpf_probe_read_user_str(buf, CG_ENV_CHUNK, (const void *)s->p);
	if (n <= 0)
		return 1; /* unreadable: not done, so it counts as unread */
	if (!s->mid && cg_loader_variable(buf))
		s->flags |= CG_TASK_LOADER_ENV;
	if (n == CG_ENV_CHUNK) {
		/* Longer than a chunk: continue in it (an exact fit reads "" next). */
		s->p += CG_ENV_CHUNK - 1;
		s->mid = 1;
	} else {
		s->p += n;
		s->mid = 0;
	}
	return 0;
}

/*
 * Loader variables in the environment the program was started with: read here, from
 * the new stack, because /proc/PID/environ is memory the process can rewrite. An
 * environment too large to scan counts as injected (CG_TASK_ENV_UNREAD): padding must
 * not hide a variable. AT_SECURE programs (set-id, file capabilities) get none: the
 * loader ignores these variables for them.
 */
static __always_inline __u32 cg_env_flags(struct mm_struct *mm, struct linux_binprm *bprm)
{
	struct cg_env_scan s = {};

	if (BPF_CORE_READ_BITFIELD_PROBED(bprm, secureexec))
		return 0;
	s.p = BPF_CORE_READ(mm, env_start);
	s.end = BPF_CORE_READ(mm, env_end);
	bpf_loop(CG_ENV_MAX_STEPS, cg_env_step, &s, 0);
	if (!s.done)
		s.flags |= CG_TASK_ENV_UNREAD;
	return s.flags;
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(cg_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct mm_struct *mm = BPF_CORE_READ(p, mm);
	struct task_struct *parent = BPF_CORE_READ(p, real_parent);
	struct cg_exec_task task = {};
	struct cg_exec_event *ev;
	struct inode *inode;
	__u64 args, args_end, len;
	__u32 tgid = BPF_CORE_READ(p, tgid);

	task.exec_ns = bpf_ktime_get_ns();
	task.flags = cg_env_flags(mm, bprm);
	bpf_map_update_elem(&cg_exec_tasks, &tgid, &task, BPF_ANY);

	ev = bpf_ringbuf_reserve(&cg_exec_events, sizeof(*ev), 0);
	if (!ev) {
		cg_count_drop();
		return 0;
	}
	ev->abi_version = CG_ABI_VERSION;
	ev->kind = CG_EXEC_EXEC;
	ev->ts_ns = task.exec_ns;
	ev->tgid = tgid;
	ev->ppid = BPF_CORE_READ(parent, tgid);
	ev->uid = BPF_CORE_READ(p, cred, uid.val);
	ev->loginuid = 0xffffffff;
	if (bpf_core_field_exists(p->loginuid))
		ev->loginuid = BPF_CORE_READ(p, loginuid.val);
	ev->flags = task.flags;
	inode = BPF_CORE_READ(mm, exe_file, f_inode);
	ev->exe_dev = BPF_CORE_READ(inode, i_sb, s_dev);
	ev->exe_ino = BPF_CORE_READ(inode, i_ino);
	BPF_CORE_READ_STR_INTO(&ev->comm, p, comm);
	BPF_CORE_READ_STR_INTO(&ev->parent_comm, parent, comm);
	/* interp: the program that runs (a script's interpreter), as execve named it. */
	if (bpf_probe_read_kernel_str(ev->exe, sizeof(ev->exe), BPF_CORE_READ(bprm, interp)) < 0)
		ev->exe[0] = 0;
	args = BPF_CORE_READ(mm, arg_start);
	args_end = BPF_CORE_READ(mm, arg_end);
	len = args_end > args ? args_end - args : 0;
	if (len > sizeof(ev->args))
		len = sizeof(ev->args);
	ev->args_len = len;
	/* The mask restates len <= sizeof(ev->args) for the verifier (a full buffer is 0). */
	if (len && bpf_probe_read_user(ev->args, len & (sizeof(ev->args) - 1) ?: sizeof(ev->args),
				       (const void *)args))
		ev->args_len = 0;
	bpf_ringbuf_submit(ev, 0);
	return 0;
}

/* Returns the note's time stamp. */
static __always_inline __u64 cg_note(__u32 kind, __u32 tgid, __u32 other)
{
	struct cg_exec_note *n = bpf_ringbuf_reserve(&cg_exec_events, sizeof(*n), 0);
	__u64 ts_ns = bpf_ktime_get_ns();

	if (!n) {
		cg_count_drop();
		return ts_ns;
	}
	n->abi_version = CG_ABI_VERSION;
	n->kind = kind;
	n->ts_ns = ts_ns;
	n->tgid = tgid;
	n->other = other;
	bpf_ringbuf_submit(n, 0);
	return ts_ns;
}

#define CG_FORK_MAX_FDS 4096  /* descriptors of a forked smbd looked at */
#define CG_S_IFMT 0170000
#define CG_S_IFSOCK 0140000
#define CG_AF_INET 2
#define CG_AF_INET6 10
#define CG_IPPROTO_TCP 6
#define CG_TCP_CLOSE 7
#define CG_TCP_LISTEN 10

/* smbd, or "smbd[CLIENT]" as newer Samba names its connection processes (as user space's
 * is_samba_program); comm is inherited at fork. */
static __always_inline bool cg_samba_comm(struct task_struct *t)
{
	char comm[CG_COMM_LEN] = {};

	BPF_CORE_READ_STR_INTO(&comm, t, comm);
	return comm[0] == 's' && comm[1] == 'm' && comm[2] == 'b' && comm[3] == 'd' &&
	       (comm[4] == 0 || comm[4] == '[');
}

struct cg_fork_fds {
	struct file **fd;
	__u64 ts_ns;
	__u32 max_fds;
	__u32 tgid;
	__u32 ptgid;
};

static long cg_fork_fd(__u32 i, struct cg_fork_fds *s)
{
	struct file *file = NULL;
	struct socket *sock;
	struct cg_exec_peer *p;
	struct sock *sk;
	__u16 family;
	__u8 state;

	if (i >= s->max_fds)
		return 1;
	if (bpf_probe_read_kernel(&file, sizeof(file), s->fd + i) || !file)
		return 0;
	if ((BPF_CORE_READ(file, f_inode, i_mode) & CG_S_IFMT) != CG_S_IFSOCK)
		return 0;
	sock = BPF_CORE_READ(file, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != CG_IPPROTO_TCP)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	state = BPF_CORE_READ(sk, __sk_common.skc_state);
	if ((family != CG_AF_INET && family != CG_AF_INET6) || state == CG_TCP_LISTEN || state == CG_TCP_CLOSE)
		return 0;
	p = bpf_ringbuf_reserve(&cg_exec_events, sizeof(*p), 0);
	if (!p) {
		cg_count_drop();
		return 0;
	}
	__builtin_memset(&p->socket, 0, sizeof(p->socket));
	p->abi_version = CG_ABI_VERSION;
	p->kind = CG_EXEC_PEER;
	p->ts_ns = s->ts_ns;
	p->tgid = s->tgid;
	p->other = s->ptgid;
	p->socket.family = family;
	p->socket.local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	p->socket.state = state;
	if (family == CG_AF_INET)
		BPF_CORE_READ_INTO(&p->socket.peer, sk, __sk_common.skc_daddr);
	else
		BPF_CORE_READ_INTO(&p->socket.peer, sk, __sk_common.skc_v6_daddr);
	bpf_ringbuf_submit(p, 0);
	return 0;
}

/*
 * The connections a child of smbd holds at birth: its parent accepted the client's
 * connection and forked it to serve that client. Read here, in the fork, because a short
 * session (connect, write, hang up) is over, and its process gone, before user space
 * could look in /proc.
 */
static __always_inline void cg_fork_peers(struct task_struct *child, __u32 ctgid, __u32 ptgid, __u64 ts_ns)
{
	struct fdtable *fdt = BPF_CORE_READ(child, files, fdt);
	struct cg_fork_fds s = { .ts_ns = ts_ns, .tgid = ctgid, .ptgid = ptgid };

	if (!fdt)
		return;
	s.fd = BPF_CORE_READ(fdt, fd);
	s.max_fds = BPF_CORE_READ(fdt, max_fds);
	bpf_loop(CG_FORK_MAX_FDS, cg_fork_fd, &s, 0);
}

SEC("raw_tp/sched_process_fork")
int BPF_PROG(cg_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid), ctgid = BPF_CORE_READ(child, tgid);
	struct cg_exec_task *task;
	__u64 ts_ns;

	if (ptgid == ctgid)
		return 0; /* a new thread: same process */
	task = bpf_map_lookup_elem(&cg_exec_tasks, &ptgid);
	if (task) {
		struct cg_exec_task copy = *task;

		bpf_map_update_elem(&cg_exec_tasks, &ctgid, &copy, BPF_ANY);
	} else {
		/* A parent from before the tracker: a stale entry of a reused pid must go. */
		bpf_map_delete_elem(&cg_exec_tasks, &ctgid);
	}
	ts_ns = cg_note(CG_EXEC_FORK, ctgid, ptgid);
	if (cg_samba_comm(child))
		cg_fork_peers(child, ctgid, ptgid, ts_ns);
	return 0;
}

SEC("raw_tp/sched_process_exit")
int BPF_PROG(cg_exit, struct task_struct *p)
{
	__u32 tgid;

	/* signal->live reaches 0 when the last thread of the process exits. */
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	tgid = BPF_CORE_READ(p, tgid);
	bpf_map_delete_elem(&cg_exec_tasks, &tgid);
	cg_note(CG_EXEC_EXIT, tgid, 0);
	return 0;
}

/*
 * A tracer, or anyone else with ptrace access to the process (/proc/PID/mem,
 * process_vm_writev), can change its code: allow_programs no longer vouches for it until
 * its next exec. BPF LSM hooks: loaded only where the kernel runs BPF LSM (user space
 * turns them off elsewhere; there the enforcer sees a tracer attached at the decision).
 */
#define CG_PTRACE_MODE_ATTACH 0x02

static __always_inline void cg_mark_traced(__u32 tgid)
{
	struct cg_exec_task *t = bpf_map_lookup_elem(&cg_exec_tasks, &tgid);
	struct cg_exec_task fresh = { .flags = CG_TASK_TRACED };

	if (t) {
		__sync_fetch_and_or(&t->flags, CG_TASK_TRACED);
		return;
	}
	bpf_map_update_elem(&cg_exec_tasks, &tgid, &fresh, BPF_NOEXIST);
}

SEC("lsm/ptrace_access_check")
int BPF_PROG(cg_ptrace_access, struct task_struct *child, unsigned int mode, int ret)
{
	if (!ret && (mode & CG_PTRACE_MODE_ATTACH))
		cg_mark_traced(BPF_CORE_READ(child, tgid));
	return ret;
}

SEC("lsm/ptrace_traceme")
int BPF_PROG(cg_ptrace_traceme, struct task_struct *parent, int ret)
{
	if (!ret)
		cg_mark_traced(bpf_get_current_pid_tgid() >> 32);
	return ret;
}
