// SPDX-License-Identifier: GPL-2.0-only
/*
 * Benchmark reference: an lsm/file_open program that decides nothing. The difference
 * between no program and this one is the kernel's fixed cost of running any BPF LSM
 * program (trampoline entry and exit); custguard's own cost is measured against it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("lsm/file_open")
int BPF_PROG(cg_null_file_open, struct file *file, int ret)
{
	return ret;
}
