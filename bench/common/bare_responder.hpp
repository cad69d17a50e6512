// A bare fanotify listener for benchmarks: the floor any fanotify enforcer stands on.
// Shared by bench/fanotify (open+read+close) and bench/samba (SMB reads).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

namespace custguard::bench {

// Floors: bare fanotify groups that allow every open at once, without looking at anything.
//  - Mode::filesystem: a filesystem mark, every open asks; what any fanotify enforcer pays
//    per permission event.
//  - Mode::filesystem_ignored: the same mark plus an ignore mark on every file of
//    `ignored` (f0 .. f<ignored_files - 1>), so their opens never reach user space: the
//    kernel-only cost of (a) for any enforcer that marks the filesystem (custguard's
//    ignore marks do just this).
//  - Mode::zone_directory: only the zone directory is marked (its children report to
//    it), so opens elsewhere on the filesystem meet no mark of theirs: the (a) floor of an
//    enforcer built on inode marks instead.
//  - Mode::filesystem_spinning: as Mode::filesystem, but the listener never sleeps (it
//    spins on a non-blocking read, burning a core): the lowest per-event cost a
//    listener can reach, not something a daemon can do.
//  - Mode::custguard_marks: custguard's kernel set-up without its user-space work: the
//    filesystem mark, evictable ignore marks on the outside files, and a second group
//    watching the filesystem for renames and creations (what guards moves out of zones).
struct BareResponder {
    enum class Mode { filesystem, filesystem_ignored, zone_directory, filesystem_spinning, custguard_marks };
    static constexpr int k_modes = 5;
    int fan = -1, stop = -1, renames = -1;
    std::atomic<bool> stopping{false};
    std::atomic<std::uint64_t> answered{0};  // permission events allowed: proves it was in the path
    std::thread thread;
    bool start(Mode mode, const std::string& fs, const std::string& zone = {}, const std::string& ignored = {},
               int ignored_files = 0) {
        fan = ::fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY | O_CLOEXEC);
        stop = ::eventfd(0, EFD_CLOEXEC);
        if (fan < 0 || stop < 0) return false;
        bool ok = mode == Mode::zone_directory
                      ? ::fanotify_mark(fan, FAN_MARK_ADD, FAN_OPEN_PERM | FAN_EVENT_ON_CHILD, AT_FDCWD, zone.c_str()) == 0
                      : ::fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_OPEN_PERM, AT_FDCWD, fs.c_str()) == 0;
        const bool ignore = mode == Mode::filesystem_ignored || mode == Mode::custguard_marks;
        const unsigned ignore_flags =
            FAN_MARK_ADD | FAN_MARK_IGNORE_SURV | (mode == Mode::custguard_marks ? FAN_MARK_EVICTABLE : 0u);
        for (int i = 0; ok && ignore && i < ignored_files; ++i)
            ok = ::fanotify_mark(fan, ignore_flags, FAN_OPEN_PERM, AT_FDCWD, (ignored + "/f" + std::to_string(i)).c_str()) == 0;
        if (ok && mode == Mode::custguard_marks) {
            renames = ::fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_DFID_NAME, O_RDONLY | O_CLOEXEC);
            ok = renames >= 0 && ::fanotify_mark(renames, FAN_MARK_ADD | FAN_MARK_FILESYSTEM,
                                                 FAN_RENAME | FAN_CREATE | FAN_ONDIR, AT_FDCWD, fs.c_str()) == 0;
        }
        if (!ok) return false;
        thread = std::thread([this, spin = mode == Mode::filesystem_spinning] {
            alignas(fanotify_event_metadata) char buf[4096];
            pollfd fds[2] = {{fan, POLLIN, 0}, {stop, POLLIN, 0}};
            while (spin ? !stopping.load(std::memory_order_relaxed) : (::poll(fds, 2, -1) >= 0 && !fds[1].revents)) {
                ssize_t len = ::read(fan, buf, sizeof buf);
                auto* md = reinterpret_cast<fanotify_event_metadata*>(buf);
                for (; len > 0 && FAN_EVENT_OK(md, len); md = FAN_EVENT_NEXT(md, len)) {
                    fanotify_response r{md->fd, FAN_ALLOW};
                    (void)!::write(fan, &r, sizeof r);
                    ::close(md->fd);
                    answered.fetch_add(1, std::memory_order_relaxed);
                }
            }
        });
        return true;
    }
    ~BareResponder() {
        stopping = true;
        std::uint64_t one = 1;
        if (stop >= 0) (void)!::write(stop, &one, sizeof one);
        if (thread.joinable()) thread.join();
        if (fan >= 0) ::close(fan);
        if (stop >= 0) ::close(stop);
        if (renames >= 0) ::close(renames);
    }
};

}  // namespace custguard::bench
