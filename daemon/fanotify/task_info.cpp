#include "daemon/fanotify/task_info.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string_view>

#include "daemon/fanotify/unique_fd.hpp"

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

}  // namespace

tl::expected<void, std::string> read_task(pid_t tid, TaskInfo& out) {
    char dir[32];
    std::snprintf(dir, sizeof dir, "/proc/%d", static_cast<int>(tid));
    UniqueFd dfd(::open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dfd) return tl::unexpected(std::string("cannot open ") + dir + ": " + std::strerror(errno));

    char buf[4096];
    ssize_t n = read_small(dfd.get(), "status", buf, sizeof buf);
    if (n <= 0) return tl::unexpected(std::string("cannot read ") + dir + "/status");
    std::string_view status(buf, static_cast<std::size_t>(n));

    out.tid = static_cast<std::uint32_t>(tid);
    int i = 0;
    numbers(field(status, "Tgid"), [&](std::uint64_t v) { out.tgid = static_cast<std::uint32_t>(v); return false; });
    i = 0;
    numbers(field(status, "Uid"), [&](std::uint64_t v) {
        if (i++ == 3) { out.fsuid = static_cast<std::uint32_t>(v); return false; }
        return true;
    });
    i = 0;
    numbers(field(status, "Gid"), [&](std::uint64_t v) {
        if (i++ == 3) { out.fsgid = static_cast<std::uint32_t>(v); return false; }
        return true;
    });
    if (i < 4) return tl::unexpected(std::string("unexpected format of ") + dir + "/status");
    out.gids.clear();
    out.gids.push_back(out.fsgid);
    numbers(field(status, "Groups"), [&](std::uint64_t v) {
        out.gids.push_back(static_cast<std::uint32_t>(v));
        return true;
    });

    // comm exactly as the kernel holds it (status' Name: is escaped).
    std::memset(out.comm, 0, sizeof out.comm);
    if (ssize_t c = read_small(dfd.get(), "comm", buf, sizeof buf); c > 0) {
        std::size_t len = static_cast<std::size_t>(c);
        if (buf[len - 1] == '\n') --len;
        std::memcpy(out.comm, buf, std::min(len, sizeof out.comm - 1));
    }

    out.loginuid = 4294967295u;
    if (ssize_t c = read_small(dfd.get(), "loginuid", buf, sizeof buf); c > 0)
        numbers(std::string_view(buf, static_cast<std::size_t>(c)),
                [&](std::uint64_t v) { out.loginuid = static_cast<std::uint32_t>(v); return false; });

    struct stat st {};
    if (::fstatat(dfd.get(), "exe", &st, 0) == 0)
        out.exe = {static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
    else
        out.exe = {};
    return {};
}

std::uint32_t read_open_flags(pid_t tid) {
    char path[48];
    std::snprintf(path, sizeof path, "/proc/%d/syscall", static_cast<int>(tid));
    char buf[256];
    UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
    std::uint64_t flags = O_RDONLY;
    if (fd) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
        if (n > 0) {
            buf[n] = '\0';
            std::uint64_t v[7] = {};
            int count = 0;
            // "NR arg1 .. arg6 sp pc"; NR is decimal, the rest hex.
            std::string_view s(buf, static_cast<std::size_t>(n));
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
    }
    // What the kernel keeps in file->f_flags (fs/open.c: build_open_flags, do_dentry_open).
    flags &= ~static_cast<std::uint64_t>(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC);
    flags |= kernel_o_largefile;
    return static_cast<std::uint32_t>(flags);
}

}  // namespace custguard::daemon::fan
