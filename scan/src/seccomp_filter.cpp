#include "seccomp_filter.hpp"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

namespace custguard::scan::detail {

namespace {

struct CtxDeleter {
    void operator()(void* ctx) const { seccomp_release(ctx); }
};
using Ctx = std::unique_ptr<void, CtxDeleter>;

std::string failed(const char* what, int rc) { return std::string(what) + ": " + std::strerror(-rc); }

// Syscalls allowed without conditions: memory, reading and stat-ing, time, signals to
// oneself, descriptors the process already has, exit.
constexpr int kAllowed[] = {
    SCMP_SYS(read), SCMP_SYS(pread64), SCMP_SYS(readv), SCMP_SYS(preadv), SCMP_SYS(write), SCMP_SYS(writev),
    SCMP_SYS(pwrite64), SCMP_SYS(lseek), SCMP_SYS(close), SCMP_SYS(close_range), SCMP_SYS(dup), SCMP_SYS(dup2),
    SCMP_SYS(dup3), SCMP_SYS(fcntl), SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(stat), SCMP_SYS(lstat),
    SCMP_SYS(statx), SCMP_SYS(fstatfs), SCMP_SYS(statfs), SCMP_SYS(access), SCMP_SYS(faccessat),
    SCMP_SYS(faccessat2), SCMP_SYS(readlink), SCMP_SYS(readlinkat), SCMP_SYS(getcwd), SCMP_SYS(getdents64),
    SCMP_SYS(fadvise64), SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(select), SCMP_SYS(pselect6),
    SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(mprotect), SCMP_SYS(madvise),
    SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack),
    SCMP_SYS(tgkill), SCMP_SYS(tkill), SCMP_SYS(futex), SCMP_SYS(set_tid_address), SCMP_SYS(set_robust_list),
    SCMP_SYS(rseq), SCMP_SYS(arch_prctl), SCMP_SYS(getrandom), SCMP_SYS(sched_getaffinity), SCMP_SYS(sched_yield),
    SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getppid), SCMP_SYS(getpgrp), SCMP_SYS(getuid), SCMP_SYS(geteuid),
    SCMP_SYS(getgid), SCMP_SYS(getegid), SCMP_SYS(getgroups), SCMP_SYS(getresuid), SCMP_SYS(getresgid),
    SCMP_SYS(getrlimit), SCMP_SYS(getrusage), SCMP_SYS(times), SCMP_SYS(sysinfo), SCMP_SYS(uname),
    SCMP_SYS(umask), SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres), SCMP_SYS(gettimeofday), SCMP_SYS(time),
    SCMP_SYS(nanosleep), SCMP_SYS(clock_nanosleep), SCMP_SYS(restart_syscall), SCMP_SYS(exit),
    SCMP_SYS(exit_group), SCMP_SYS(seccomp),
    // Running Ghostscript (run_bounded): exec, wait, the pipes, and the kill of its group.
    SCMP_SYS(execve), SCMP_SYS(wait4), SCMP_SYS(waitid), SCMP_SYS(pipe), SCMP_SYS(pipe2), SCMP_SYS(kill),
    SCMP_SYS(sendto), SCMP_SYS(sendmsg), SCMP_SYS(recvfrom), SCMP_SYS(recvmsg),
};

// New namespaces would give the sandboxed code capabilities inside them.
constexpr std::uint64_t kNamespaceFlags = CLONE_NEWNS | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |
                                          CLONE_NEWUTS | CLONE_NEWCGROUP | CLONE_NEWTIME;

tl::expected<Ctx, std::string> build_base() {
    Ctx ctx(seccomp_init(SCMP_ACT_ERRNO(EPERM)));
    if (!ctx) return tl::unexpected(std::string("seccomp_init failed"));
    int rc = 0;
    auto add = [&](std::uint32_t action, int nr, unsigned n = 0, scmp_arg_cmp a = {}, scmp_arg_cmp b = {}) {
        if (rc < 0) return;
        rc = n == 0 ? seccomp_rule_add(ctx.get(), action, nr, 0)
             : n == 1 ? seccomp_rule_add(ctx.get(), action, nr, 1, a)
                      : seccomp_rule_add(ctx.get(), action, nr, 2, a, b);
    };
    for (int nr : kAllowed) add(SCMP_ACT_ALLOW, nr);
    // Files are opened for reading only (fonts, gconv modules, Ghostscript's resources).
    constexpr std::uint64_t kWriteFlags = O_ACCMODE | O_CREAT | O_TRUNC;
    add(SCMP_ACT_ALLOW, SCMP_SYS(openat), 1, SCMP_A2(SCMP_CMP_MASKED_EQ, kWriteFlags, O_RDONLY));
    add(SCMP_ACT_ALLOW, SCMP_SYS(open), 1, SCMP_A1(SCMP_CMP_MASKED_EQ, kWriteFlags, O_RDONLY));
    add(SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(openat2));  // its flags are behind a pointer; glibc falls back
    add(SCMP_ACT_ALLOW, SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, kNamespaceFlags, 0));
    add(SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3));  // flags behind a pointer; glibc falls back to clone
    add(SCMP_ACT_ALLOW, SCMP_SYS(socketpair), 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
    add(SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1, SCMP_A0(SCMP_CMP_EQ, 0));  // own limits, lowering only
    add(SCMP_ACT_ALLOW, SCMP_SYS(setrlimit));
    for (int option : {PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, PR_GET_SECCOMP})
        add(SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1, SCMP_A0(SCMP_CMP_EQ, static_cast<std::uint64_t>(option)));
    add(SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, TCGETS));  // isatty()
    if (rc < 0) return tl::unexpected(failed("seccomp_rule_add", rc));
    return ctx;
}

// Through a pipe (the reader may not create a memfd); filters are a few KB, well within
// a pipe's buffer.
tl::expected<std::vector<sock_filter>, std::string> export_program(const Ctx& ctx) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return tl::unexpected(std::string("pipe: ") + std::strerror(errno));
    const int rc = seccomp_export_bpf(ctx.get(), fds[1]);
    ::close(fds[1]);
    std::string bytes;
    char buf[4096];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) != 0;) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        bytes.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    if (rc < 0) return tl::unexpected(failed("seccomp_export_bpf", rc));
    if (bytes.empty() || bytes.size() % sizeof(sock_filter) != 0)
        return tl::unexpected(std::string("seccomp_export_bpf wrote no program"));
    std::vector<sock_filter> program(bytes.size() / sizeof(sock_filter));
    std::memcpy(program.data(), bytes.data(), bytes.size());
    return program;
}

}  // namespace

tl::expected<std::vector<sock_filter>, std::string> base_seccomp_program() {
    auto ctx = build_base();
    if (!ctx) return tl::unexpected(ctx.error());
    return export_program(*ctx);
}

tl::expected<void, std::string> forbid_new_processes() {
    Ctx ctx(seccomp_init(SCMP_ACT_ALLOW));
    if (!ctx) return tl::unexpected(std::string("seccomp_init failed"));
    int rc = 0;
    for (int nr : {SCMP_SYS(clone), SCMP_SYS(clone3), SCMP_SYS(fork), SCMP_SYS(vfork), SCMP_SYS(execve),
                   SCMP_SYS(execveat), SCMP_SYS(kill)})
        if (rc >= 0) rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EPERM), nr, 0);
    if (rc < 0) return tl::unexpected(failed("seccomp_rule_add", rc));
    // prctl() rather than seccomp_load(): systemd's @system-service filter (the daemon's
    // unit) refuses the seccomp() system call, and whether libseccomp then falls back to
    // prctl depends on when it first probed the kernel.
    auto program = export_program(ctx);
    if (!program) return tl::unexpected(program.error());
    sock_fprog prog{static_cast<unsigned short>(program->size()), program->data()};
    if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0)
        return tl::unexpected(std::string("prctl(PR_SET_SECCOMP): ") + std::strerror(errno));
    return {};
}

}  // namespace custguard::scan::detail
