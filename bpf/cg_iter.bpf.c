// SPDX-License-Identifier: GPL-2.0-only
/*
 * What the fanotify enforcer asks of one process while it waits for an answer, read
 * through iterators attached per call with the process's pid as the filter (see
 * daemon/fanotify/proc_iter.cpp). One read of an iterator replaces many of /proc:
 *
 *  - cg_task_sockets (iter/task_file): one struct cg_held_socket per TCP socket the
 *    process holds, for allow_clients; instead of a readlink of every descriptor under
 *    /proc/PID/fd and a walk of the network namespace's TCP tables;
 *  - cg_task_threads (iter/task): one struct cg_thread_state per thread, for
 *    allow_programs (is any thread traced?); instead of each thread's /proc status.
 *
 * No BPF LSM and no trampolines: iterators load on the kernels where fanotify enforces.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "custguard_abi.h"

char LICENSE[] SEC("license") = "GPL";

#define CG_AF_INET 2
#define CG_AF_INET6 10
#define CG_IPPROTO_TCP 6

SEC("iter/task_file")
int cg_task_sockets(struct bpf_iter__task_file *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct file *file = ctx->file;
	struct cg_held_socket out = {};
	struct socket *sock;
	struct sock *sk;

	if (!file)
		return 0;
	sock = bpf_sock_from_file(file);
	if (!sock)
		return 0;
	sk = BPF_CORE_READ(sock, sk);
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != CG_IPPROTO_TCP)
		return 0;
	out.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (out.family == CG_AF_INET)
		BPF_CORE_READ_INTO(&out.peer, sk, __sk_common.skc_daddr);
	else if (out.family == CG_AF_INET6)
		BPF_CORE_READ_INTO(&out.peer, sk, __sk_common.skc_v6_daddr);
	else
		return 0;
	out.local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	out.state = BPF_CORE_READ(sk, __sk_common.skc_state);
	bpf_seq_write(seq, &out, sizeof(out));
	return 0;
}

SEC("iter/task")
int cg_task_threads(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct cg_thread_state out = {};

	if (!task)
		return 0;
	out.tid = BPF_CORE_READ(task, pid);
	/* what /proc/PID/status shows as TracerPid != 0 (PT_PTRACED and friends) */
	out.traced = BPF_CORE_READ(task, ptrace) != 0;
	bpf_seq_write(seq, &out, sizeof(out));
	return 0;
}
