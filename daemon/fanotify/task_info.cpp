#include "daemon/fanotify/task_info.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <dirent.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>
#include <string_view>

#include "daemon/exec/loader_env.hpp"
#include "daemon/fanotify/unique_fd.hpp"
#include "custguard/common/unique_dir.hpp"

namespace custguard::daemon::fan {

namespace {

// The kernel's O_LARGEFILE: glibc defines O_LARGEFILE as 0 on 64-bit targets, but the
// kernel still sets its own bit in f_flags.
#if defined(__aarch64__) || defined(__arm__)
constexpr std::uint64_t kernel_o_largefile = 0400000;
#elif defined(__powerpc__)
constexpr std::uint64_t kernel_o_largefile = 0200000;
#else
constexpr std::uint64_t kernel_o_largefile = 0100000;
#endif

// PIDFD_GET_INFO (Linux 6.13), not yet in our distribution's headers: the first version
// of the structure (64 bytes); the kernel copies the size the caller names.
struct PidfdInfoV0 {
    std::uint64_t mask;
    std::uint64_t cgroupid;
    std::uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
    std::uint32_t spare0;
};
static_assert(sizeof(PidfdInfoV0) == 64);
constexpr unsigned long pidfd_get_info = _IOWR(0xFF, 11, PidfdInfoV0);
constexpr std::uint64_t pidfd_info_pid = 1u << 0;
constexpr std::uint64_t pidfd_info_creds = 1u << 1;
constexpr unsigned pidfd_thread = O_EXCL;  // PIDFD_THREAD (6.9): a pidfd for one thread


// Reads a small /proc file relative to `dirfd` into `buf`; returns the length or -1.
ssize_t read_small(int dirfd, const char* name, char* buf, std::size_t size) {
    UniqueFd fd(::openat(dirfd, name, O_RDONLY | O_CLOEXEC));
    if (!fd) return -1;
    ssize_t n = ::read(fd.get(), buf, size - 1);
    if (n < 0) return -1;
    buf[n] = '\0';
    return n;
}

std::string_view field(std::string_view text, std::string_view key) {
    // Lines look like "Uid:\t0\t0\t0\t0".
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ':')
            return line.substr(key.size() + 1);
        pos = end + 1;
    }
    return {};
}

// Parses whitespace-separated unsigned numbers (decimal or 0x hex) into `out`.
template <typename F>
void numbers(std::string_view s, F&& each, int base = 10) {
    const char* p = s.data();
    const char* end = s.data() + s.size();
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t')) ++p;
        if (p >= end) break;
        if (base == 16 && end - p > 2 && p[0] == '0' && p[1] == 'x') p += 2;
        std::uint64_t v = 0;
        auto [next, ec] = std::from_chars(p, end, v, base);
        if (ec != std::errc{}) break;
        if (!each(v)) break;
        p = next;
    }
}


void read_comm(int dirfd, char (&comm)[CG_COMM_LEN]) {
    // comm exactly as the kernel holds it (status' Name: is escaped).
    char buf[64];
    std::memset(comm, 0, sizeof comm);
    if (ssize_t c = read_small(dirfd, "comm", buf, sizeof buf); c > 0) {
        std::size_t len = static_cast<std::size_t>(c);
        if (buf[len - 1] == '\n') --len;
        std::memcpy(comm, buf, std::min(len, sizeof comm - 1));
    }
}

std::uint32_t read_loginuid(int dirfd) {
    char buf[32];
    std::uint32_t v = 4294967295u;
    if (ssize_t c = read_small(dirfd, "loginuid", buf, sizeof buf); c > 0)
        numbers(std::string_view(buf, static_cast<std::size_t>(c)),
                [&](std::uint64_t x) { v = static_cast<std::uint32_t>(x); return false; });
    return v;
}

InodeKey read_exe(int dirfd) {
    struct stat st {};
    if (::fstatat(dirfd, "exe", &st, 0) != 0) return {};
    return {static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
}

UniqueFd proc_dir(pid_t tid) {
    char dir[32];
    std::snprintf(dir, sizeof dir, "/proc/%d", static_cast<int>(tid));
    return UniqueFd(::open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC));
}

// Parses /proc/<tid>/syscall ("NR arg1 .. arg6 sp pc"; NR decimal, the rest hex) in
// `buf` (NUL-terminated at `n`) into file->f_flags as the kernel keeps them.
std::uint32_t flags_from_syscall(pid_t tid, char* buf, std::size_t n) {
    std::uint64_t flags = O_RDONLY;
    if (buf && n > 0) {
        buf[n] = '\0';
        std::uint64_t v[7] = {};
        int count = 0;
        std::string_view s(buf, n);
        std::size_t sp = s.find(' ');
        if (sp != std::string_view::npos) {
            long nr = -1;
            std::from_chars(s.data(), s.data() + sp, nr);
            numbers(s.substr(sp + 1), [&](std::uint64_t x) { v[count++] = x; return count < 6; }, 16);
            if (count >= 3) {
                if (nr == SYS_openat) flags = v[2];
#ifdef SYS_open
                else if (nr == SYS_open) flags = v[1];
#endif
#ifdef SYS_creat
                else if (nr == SYS_creat) flags = O_CREAT | O_WRONLY | O_TRUNC;
#endif
#ifdef SYS_openat2
                else if (nr == SYS_openat2) {
                    open_how how{};
                    iovec local{&how, sizeof how};
                    iovec remote{reinterpret_cast<void*>(v[2]), sizeof how};
                    if (::process_vm_readv(tid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(sizeof how))
                        flags = how.flags;
                }
#endif
            }
        }
    }
    // What the kernel keeps in file->f_flags (fs/open.c: build_open_flags, do_dentry_open).
    flags &= ~static_cast<std::uint64_t>(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC);
    flags |= kernel_o_largefile;
    return static_cast<std::uint32_t>(flags);
}

}  // namespace

tl::expected<void, std::string> TaskReader::read_status(pid_t tid, TaskInfo& out, bool groups) {
    UniqueFd dfd = proc_dir(tid);
    if (!dfd) return tl::unexpected("cannot open /proc/" + std::to_string(tid) + ": " + std::strerror(errno));
    char buf[4096];
    ssize_t n = read_small(dfd.get(), "status", buf, sizeof buf);
    if (n <= 0) return tl::unexpected("cannot read /proc/" + std::to_string(tid) + "/status");
    std::string_view status(buf, static_cast<std::size_t>(n));
    out.tid = static_cast<std::uint32_t>(tid);
    numbers(field(status, "Tgid"), [&](std::uint64_t v) { out.tgid = static_cast<std::uint32_t>(v); return false; });
    int i = 0;
    numbers(field(status, "Uid"), [&](std::uint64_t v) {
        if (i++ == 3) { out.fsuid = static_cast<std::uint32_t>(v); return false; }
        return true;
    });
    i = 0;
    numbers(field(status, "Gid"), [&](std::uint64_t v) {
        if (i++ == 3) { out.fsgid = static_cast<std::uint32_t>(v); return false; }
        return true;
    });
    if (i < 4) return tl::unexpected("unexpected format of /proc/" + std::to_string(tid) + "/status");
    out.gids.clear();
    out.gids.push_back(out.fsgid);
    if (groups) {
        numbers(field(status, "Groups"), [&](std::uint64_t v) {
            out.gids.push_back(static_cast<std::uint32_t>(v));
            return true;
        });
        out.groups_read = true;
    }
    return {};
}

tl::expected<void, std::string> TaskReader::read_groups(pid_t tid, TaskInfo& out) {
    TaskInfo t;
    auto r = read_status(tid, t, true);
    if (!r) return r;
    out.gids = std::move(t.gids);
    out.groups_read = true;
    return {};
}

TaskReader::Entry* TaskReader::entry(pid_t tid, TaskInfo& out) {
    auto it = cache_.find(tid);
    PidfdInfoV0 info{};
    if (it != cache_.end()) {
        info.mask = pidfd_info_pid | pidfd_info_creds;
        if (::ioctl(it->second.pidfd.get(), pidfd_get_info, &info) == 0 && (info.mask & pidfd_info_creds)) {
            out.tgid = info.tgid;
            out.fsuid = info.fsuid;
            out.fsgid = info.fsgid;
            return &it->second;
        }
        cache_.erase(it);  // gone: the tid may belong to another task now
    }
    if (!pidfd_info_) return nullptr;
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, tid, pidfd_thread)));
    if (!pidfd) {
        if (errno == EINVAL) pidfd_info_ = false;  // kernel before 6.9 (no PIDFD_THREAD)
        return nullptr;
    }
    info = {};
    info.mask = pidfd_info_pid | pidfd_info_creds;
    if (::ioctl(pidfd.get(), pidfd_get_info, &info) != 0 || !(info.mask & pidfd_info_creds)) {
        if (errno == ENOTTY || errno == EINVAL) pidfd_info_ = false;  // kernel before 6.13
        return nullptr;
    }
    UniqueFd dir = proc_dir(tid);
    if (!dir) return nullptr;
    out.tgid = info.tgid;
    out.fsuid = info.fsuid;
    out.fsgid = info.fsgid;
    if (cache_.size() >= max_tasks_) cache_.clear();
    Entry& e = cache_[tid];
    e.pidfd = std::move(pidfd);
    e.dir = std::move(dir);
    return &e;
}

tl::expected<void, std::string> TaskReader::read(pid_t tid, TaskInfo& out, bool groups) {
    out.tid = static_cast<std::uint32_t>(tid);
    out.groups_read = false;
    Entry* e = entry(tid, out);
    if (!e || groups) {
        auto r = read_status(tid, out, groups);
        if (!r) return r;
    } else {
        out.gids.clear();
        out.gids.push_back(out.fsgid);
    }
    if (!e) {
        UniqueFd dfd = proc_dir(tid);
        if (!dfd) return tl::unexpected("cannot open /proc/" + std::to_string(tid) + ": " + std::strerror(errno));
        out.exe = read_exe(dfd.get());
        read_comm(dfd.get(), out.comm);
        out.loginuid = read_loginuid(dfd.get());
        return {};
    }
    out.exe = read_exe(e->dir.get());
    if (e->exe != out.exe || e->comm[0] == '\0') {
        read_comm(e->dir.get(), e->comm);
        e->loginuid = read_loginuid(e->dir.get());
        e->exe = out.exe;
        e->proc_loader.reset();
    }
    std::memcpy(out.comm, e->comm, sizeof out.comm);
    out.loginuid = e->loginuid;
    return {};
}

std::uint32_t TaskReader::open_flags(pid_t tid) {
    auto it = cache_.find(tid);
    if (it == cache_.end()) return read_open_flags(tid);
    Entry& e = it->second;
    if (!e.syscall) e.syscall = UniqueFd(::openat(e.dir.get(), "syscall", O_RDONLY | O_CLOEXEC));
    char buf[256];
    ssize_t n = e.syscall ? ::pread(e.syscall.get(), buf, sizeof buf - 1, 0) : -1;
    if (n <= 0) return flags_from_syscall(tid, nullptr, 0);
    return flags_from_syscall(tid, buf, static_cast<std::size_t>(n));
}

std::uint32_t TaskReader::program_trust(pid_t tid, std::uint32_t tgid) {
    // Loader injection, as the program started: the exec tracker read the environment
    // from the new stack. Processes from before the tracker (or without one): environ.
    std::optional<std::uint32_t> flags = exec_flags_ ? exec_flags_(tgid) : std::nullopt;
    auto cached = cache_.find(tid);
    Entry* e = cached != cache_.end() ? &cached->second : nullptr;  // read() just refreshed it
    if (flags) {
        if (e) e->proc_loader.reset();
        if (*flags & CG_TASK_TAMPERED) return CG_RULE_PROGRAM_TAMPERED;
        if (*flags & CG_TASK_TRACED) return CG_RULE_PROGRAM_TRACED;  // where BPF LSM hooks saw it
    } else {
        // Reading another process's environment costs (its memory is walked): with a
        // tracker the answer is kept per task; without one a re-exec could not be seen.
        std::uint32_t loader = 0;
        if (e && exec_flags_ && e->proc_loader) {
            loader = *e->proc_loader;
        } else {
            loader = exec::proc_loader_flags(tgid);
            if (e && exec_flags_) e->proc_loader = loader;
        }
        if (loader & CG_TASK_TAMPERED) return CG_RULE_PROGRAM_TAMPERED;
    }
    // A tracer on any thread shares the address space: every thread is checked (the
    // opener waits, so its own state is exact; other threads are read now).
    constexpr std::size_t max_threads = 4096;  // bounded: refuse beyond
    if (threads_) {
        // The kernel lists the threads of the process the opener belongs to (its tgid
        // came from its pidfd), so no thread of another process can stand in for it.
        if (auto scan = threads_(tgid))
            return scan->threads == 0 || scan->threads > max_threads || scan->traced ? CG_RULE_PROGRAM_TRACED : 0;
    }
    char dir[48];
    std::snprintf(dir, sizeof dir, "/proc/%u/task", tgid);
    common::UniqueDir d = common::UniqueDir::from_fd(::open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!d) return CG_RULE_PROGRAM_TRACED;
    bool saw_opener = false;
    std::size_t threads = 0;
    while (dirent* e = d.next()) {
        if (++threads > max_threads) return CG_RULE_PROGRAM_TRACED;
        UniqueFd tdir(::openat(d.fd(), e->d_name, O_PATH | O_DIRECTORY | O_CLOEXEC));
        char status[4096];
        ssize_t n = tdir ? read_small(tdir.get(), "status", status, sizeof status) : -1;
        if (n <= 0) continue;  // exited meanwhile
        if (tracer_pid(std::string_view(status, static_cast<std::size_t>(n)))) return CG_RULE_PROGRAM_TRACED;
        saw_opener = saw_opener || std::string_view(e->d_name) == std::to_string(tid);
    }
    return saw_opener ? 0 : CG_RULE_PROGRAM_TRACED;
}

std::uint32_t tracer_pid(std::string_view status) {
    std::uint32_t pid = 0;
    numbers(field(status, "TracerPid"), [&](std::uint64_t v) { pid = static_cast<std::uint32_t>(v); return false; });
    return pid;
}

tl::expected<void, std::string> read_task(pid_t tid, TaskInfo& out) {
    TaskReader reader;
    return reader.read(tid, out, true);
}

std::uint32_t read_open_flags(pid_t tid) {
    char path[48];
    std::snprintf(path, sizeof path, "/proc/%d/syscall", static_cast<int>(tid));
    char buf[256];
    UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
    ssize_t n = fd ? ::read(fd.get(), buf, sizeof buf - 1) : -1;
    return flags_from_syscall(tid, n > 0 ? buf : nullptr, n > 0 ? static_cast<std::size_t>(n) : 0);
}

}  // namespace custguard::daemon::fan
