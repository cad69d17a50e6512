// Test support for the fanotify host tests: a private tmpfs, opens as other users in a
// forked child (plain, io_uring, via an exec'd program), and an event collector.
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <liburing.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "custguard/policy/compile.hpp"
#include "daemon/event.hpp"

namespace cgtest {

// Our mounts stay private to this test process.
inline bool private_mount_namespace() {
    static const bool ok = ::unshare(CLONE_NEWNS) == 0 &&
                           ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
    return ok;
}

inline bool have_root() { return ::geteuid() == 0 && private_mount_namespace(); }

// These tests need root; CI runs them as root, where they must never skip.
#define REQUIRE_ROOT()                                                     \
    do {                                                                   \
        if (!cgtest::have_root()) {                                        \
            WARN("skipped: needs root and a private mount namespace");     \
            return;                                                        \
        }                                                                  \
    } while (0)

struct Cred {
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;
};

enum class Via { open, io_uring, io_uring_async, exec_cat };

inline const char* to_string(Via v) {
    switch (v) {
    case Via::open: return "open";
    case Via::io_uring: return "io_uring";
    case Via::io_uring_async: return "io_uring(async)";
    case Via::exec_cat: return "exec cat";
    }
    return "?";
}

// Runs `fn` in a child with credentials `c`; returns its exit status (or 128+signal).
// The enforcer's threads run in this process: `fn` makes system calls only and never
// allocates (no strings built in it; see tests/support/exec_plan.hpp).
inline int run_as(const Cred& c, const std::function<int()>& fn, pid_t* child_pid = nullptr) {
    pid_t pid = ::fork();
    if (pid == 0) {
        // Inherited descriptors include the fanotify group: holding it, this child would
        // wait forever for an answer if the test process died.
        ::close_range(3, ~0u, 0);
        ::alarm(20);  // never hang a test run on an unanswered permission event
        if (::setgroups(c.groups.size(), c.groups.data()) != 0 || ::setresgid(c.gid, c.gid, c.gid) != 0 ||
            ::setresuid(c.uid, c.uid, c.uid) != 0)
            ::_exit(120);
        ::_exit(fn());
    }
    if (child_pid) *child_pid = pid;
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

// Opens and reads `path`; 0 on success, else the errno.
inline int open_read(const std::string& path, Via via) {
    switch (via) {
    case Via::open: {
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return errno;
        char b;
        (void)!::read(fd, &b, 1);
        ::close(fd);
        return 0;
    }
    case Via::io_uring:
    case Via::io_uring_async: {
        io_uring ring;
        if (io_uring_queue_init(4, &ring, 0) != 0) return 121;
        io_uring_sqe* sqe = io_uring_get_sqe(&ring);
        io_uring_prep_openat(sqe, AT_FDCWD, path.c_str(), O_RDONLY, 0);
        if (via == Via::io_uring_async) sqe->flags |= IOSQE_ASYNC;
        io_uring_submit(&ring);
        io_uring_cqe* cqe = nullptr;
        if (io_uring_wait_cqe(&ring, &cqe) != 0) return 122;
        int res = cqe->res;
        io_uring_cqe_seen(&ring, cqe);
        io_uring_queue_exit(&ring);
        if (res < 0) return -res;
        ::close(res);
        return 0;
    }
    case Via::exec_cat: {
        pid_t p = ::fork();
        if (p == 0) {
            int null = ::open("/dev/null", O_WRONLY);
            ::dup2(null, 1);
            ::dup2(null, 2);
            ::execl("/usr/bin/cat", "cat", path.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        int st = 0;
        ::waitpid(p, &st, 0);
        // cat reports failure only as status 1; EPERM is the only failure we provoke.
        return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : EPERM;
    }
    }
    return 123;
}

inline int open_as(const Cred& c, const std::string& path, Via via = Via::open, pid_t* pid = nullptr) {
    return run_as(c, [&] { return open_read(path, via); }, pid);
}

// A scratch filesystem mounted on a new directory under /tmp, with bind mounts made in it
// undone by the destructor. Subclasses mount it.
class ScratchFs {
public:
    ScratchFs(const ScratchFs&) = delete;
    ScratchFs& operator=(const ScratchFs&) = delete;
    bool ok() const { return ok_; }
    std::string path(const std::string& rel = "") const { return rel.empty() ? dir_ : dir_ + "/" + rel; }
    void mkdir(const std::string& rel, mode_t mode = 0755) const {
        ::mkdir(path(rel).c_str(), mode);
        ::chmod(path(rel).c_str(), mode);
    }
    void write(const std::string& rel, const std::string& text = "customer data\n") const {
        std::ofstream(path(rel)) << text;
        ::chmod(path(rel).c_str(), 0644);
    }
    bool bind(const std::string& from, const std::string& to) {
        if (::mount(from.c_str(), to.c_str(), nullptr, MS_BIND, nullptr) != 0) return false;
        extra_mounts_.push_back(to);
        return true;
    }

protected:
    explicit ScratchFs(const char* prefix) {
        std::string tmpl = std::string("/tmp/") + prefix + ".XXXXXX";
        dir_ = ::mkdtemp(tmpl.data());
    }
    ~ScratchFs() {
        for (auto it = extra_mounts_.rbegin(); it != extra_mounts_.rend(); ++it) ::umount2(it->c_str(), MNT_DETACH);
        ::umount2(dir_.c_str(), MNT_DETACH);
        ::rmdir(dir_.c_str());
    }
    std::string dir_;
    bool ok_ = false;

private:
    std::vector<std::string> extra_mounts_;
};

// A fresh tmpfs.
class Tmpfs : public ScratchFs {
public:
    Tmpfs() : ScratchFs("cgfan") { ok_ = ::mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=64m,mode=0755") == 0; }
};

// A fresh ext4 filesystem on a loop device: ext4 reuses a deleted file's inode number at
// once, which tmpfs never does. Journaled, as on a file server: without a journal ext4
// holds back a number freed in an earlier second for 60-360 s (recently_deleted() in
// fs/ext4/ialloc.c), so reuse would hang on the clock ticking between delete and create.
class Ext4Image : public ScratchFs {
public:
    explicit Ext4Image(unsigned megabytes = 64) : ScratchFs("cgext4"), image_(dir_ + ".img") {
        std::string cmd = "truncate -s " + std::to_string(megabytes) + "M " + image_ +
                          " && mkfs.ext4 -q -F " + image_ + " >/dev/null 2>&1 && mount -o loop " +
                          image_ + " " + dir_;
        ok_ = std::system(cmd.c_str()) == 0;
        if (ok_) ::chmod(dir_.c_str(), 0755);
    }
    ~Ext4Image() {
        ::umount2(dir_.c_str(), MNT_DETACH);  // before the image goes (the base unmounts again: harmless)
        ::unlink(image_.c_str());
    }

private:
    std::string image_;
};

class Collector {
public:
    custguard::daemon::EventHandler handler() {
        return [this](custguard::daemon::AccessEvent&& e) {
            std::lock_guard lk(mutex_);
            events_.push_back(std::move(e));
        };
    }
    // Waits up to `wait` for an event of process `tgid`.
    std::optional<custguard::daemon::AccessEvent> for_process(pid_t tgid,
                                                              std::chrono::milliseconds wait = std::chrono::milliseconds(2000)) {
        auto until = std::chrono::steady_clock::now() + wait;
        do {
            {
                std::lock_guard lk(mutex_);
                for (const auto& e : events_)
                    if (e.raw.tgid == static_cast<std::uint32_t>(tgid)) return e;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        } while (std::chrono::steady_clock::now() < until);
        return std::nullopt;
    }
    std::optional<custguard::daemon::AccessEvent> find(const std::function<bool(const custguard::daemon::AccessEvent&)>& pred,
                                                       std::chrono::milliseconds wait = std::chrono::milliseconds(2000)) {
        auto until = std::chrono::steady_clock::now() + wait;
        do {
            {
                std::lock_guard lk(mutex_);
                for (const auto& e : events_)
                    if (pred(e)) return e;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        } while (std::chrono::steady_clock::now() < until);
        return std::nullopt;
    }
    std::size_t size() {
        std::lock_guard lk(mutex_);
        return events_.size();
    }

private:
    std::mutex mutex_;
    std::vector<custguard::daemon::AccessEvent> events_;
};

inline custguard::policy::CompiledZone zone(std::uint32_t id, std::string name, custguard::policy::Violation v,
                                            bool record_allowed, bool programs = false) {
    custguard::policy::CompiledZone z;
    z.id = id;
    z.name = std::move(name);
    z.on_violation = v;
    z.record_allowed = record_allowed;
    z.programs_required = programs;
    return z;
}

}  // namespace cgtest
