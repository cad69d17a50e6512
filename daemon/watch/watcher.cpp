#include "daemon/watch/watcher.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include <openssl/evp.h>

#include "custguard/scan/categories.hpp"
#include "custguard/scan/findings.hpp"
#include "daemon/fanotify/task_info.hpp"
#include "daemon/fanotify/unique_fd.hpp"
#include "custguard/common/unique_dir.hpp"

namespace custguard::daemon::watch {


using Clock = std::chrono::steady_clock;
using common::UniqueDir;

std::vector<std::string> categories(const std::vector<std::string>& detectors, bool sensitive) {
    std::set<std::string> out;
    for (const auto& d : detectors)
        if (auto c = scan::category_of(d); !c.empty()) out.emplace(c);
    if (sensitive) out.emplace("sensitive");
    return {out.begin(), out.end()};
}

bool path_within(std::string_view path, std::string_view root) {
    if (root == "/") return !path.empty() && path.front() == '/';
    return path == root || (path.size() > root.size() && path.starts_with(root) && path[root.size()] == '/');
}

MapsRead read_shared_mappings(pid_t pid, std::size_t max_bytes, std::string& text, std::vector<SharedMapping>& out) {
    char path[48];
    std::snprintf(path, sizeof path, "/proc/%d/maps", static_cast<int>(pid));
    UniqueFd maps(::open(path, O_RDONLY | O_CLOEXEC));
    if (!maps) return MapsRead::gone;
    text.clear();
    constexpr std::size_t chunk = 65536;
    for (;;) {
        const std::size_t had = text.size();
        text.resize(had + chunk);
        const ssize_t n = ::read(maps.get(), text.data() + had, chunk);
        text.resize(had + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && had == 0) return MapsRead::gone;  // ESRCH: exited since the open
        if (n <= 0) break;
        if (text.size() > max_bytes) return MapsRead::too_large;
    }
    // "start-end perms offset major:minor inode path", numbers in hex but the inode. Most
    // mappings are private: only lines whose perms end in 's' are parsed.
    for (std::size_t at = 0; at < text.size();) {
        std::size_t end = text.find('\n', at);
        if (end == std::string::npos) end = text.size();
        const std::size_t space = text.find(' ', at);
        if (space != std::string::npos && space + 5 < end && text[space + 4] == 's') {
            char line[160];
            const std::size_t len = std::min(end - at, sizeof line - 1);
            std::memcpy(line, text.data() + at, len);
            line[len] = '\0';
            unsigned long long start = 0, stop = 0, offset = 0, inode = 0;
            char perms[8] = {};
            unsigned major_no = 0, minor_no = 0;
            if (std::sscanf(line, "%llx-%llx %7s %llx %x:%x %llu", &start, &stop, perms, &offset, &major_no, &minor_no,
                            &inode) == 7 &&
                inode != 0)
                out.push_back({start, stop, makedev(major_no, minor_no), inode, perms[1] == 'w'});
        }
        at = end + 1;
    }
    return MapsRead::ok;
}

std::optional<HeldFiles> files_held_for_writing(pid_t pid, const HoldLimits& limits) {
    if (pid <= 0) return std::nullopt;
    const std::string proc = "/proc/" + std::to_string(pid);
    HeldFiles held;
    // Shared mappings, writable or not: a read-only one can be made writable with mprotect
    // when the file was opened for writing.
    std::string text;
    std::vector<SharedMapping> mappings;
    if (read_shared_mappings(pid, limits.max_maps_bytes, text, mappings) == MapsRead::too_large) {
        held.beyond_limits = true;
        return held;
    }
    for (const auto& m : mappings) held.files.insert({m.dev, m.ino});
    // Regular files open for writing.
    UniqueDir dir = UniqueDir::from_fd(::open((proc + "/fd").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) return std::nullopt;  // gone
    std::size_t seen = 0;
    while (const dirent* entry = dir.next()) {
        if (++seen > limits.max_fds) {
            held.beyond_limits = true;
            return held;
        }
        struct stat st {};
        if (::fstatat(dir.fd(), entry->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode)) continue;  // follows the link
        UniqueFd info(::open((proc + "/fdinfo/" + entry->d_name).c_str(), O_RDONLY | O_CLOEXEC));
        char text[512];
        const ssize_t n = info ? ::read(info.get(), text, sizeof text - 1) : -1;
        if (n <= 0) continue;
        text[n] = '\0';
        const char* flags = std::strstr(text, "flags:");
        if (!flags) continue;
        const unsigned long value = std::strtoul(flags + 6, nullptr, 8);
        if ((value & O_ACCMODE) != O_RDONLY)
            held.files.insert({static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)});
    }
    return held;
}

bool HeldFiles::holds(std::uint64_t dev, std::uint64_t ino) const { return beyond_limits || files.contains({dev, ino}); }


namespace {

struct Key {
    std::uint64_t dev = 0, ino = 0;
    auto operator<=>(const Key&) const = default;
};

struct Writer {
    std::uint32_t pid = 0;
    std::uint32_t uid = events::no_uid;
    std::string user, exe, client;
    std::string client_unknown;  // an smbd whose client could not be established: why
    std::uint64_t exited_at_ns = 0;  // CLOCK_MONOTONIC when /proc no longer had it; 0: alive
    std::uint64_t seen_at_ns = 0;    // CLOCK_MONOTONIC of the capture
    // Gone at this capture, but alive at an earlier one of the same file: exe is what /proc
    // showed then (CLOCK_MONOTONIC of that capture).
    std::uint64_t alive_at_ns = 0;
};

struct Pending {
    std::string path;
    // Where it was last named: its directory's file handle, on the filesystem `fsid`, and
    // its name there. Opened that way, a path longer than PATH_MAX is no obstacle.
    std::pair<int, int> fsid{};
    std::vector<unsigned char> dir_handle;  // struct file_handle, header included
    std::string name;
    Writer writer;
    bool writer_from_write = false;  // from a FAN_CLOSE_WRITE (better than a create/rename)
    // Only FAN_MODIFY so far: written through a descriptor that stays open. Scanned when
    // its writes pause, but an inode rescanned that way waits for `not_before`.
    bool modified_only = true;
    Clock::time_point first, last, not_before;
};

// Rescans of an inode written through a descriptor that stays open (a log, or a file
// filled after its first scan): each one that follows another waits twice as long, from
// WatcherOptions::reopen_rescan up to reopen_rescan_max; a close starts again.
struct Rescan {
    Clock::time_point at;
    std::chrono::milliseconds wait{};
};

std::string fd_path(int fd) {
    char link[64], buf[4096];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = ::readlink(link, buf, sizeof buf);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

// The name of the directory `child` (its stat) in directory `parent`, or "". By inode
// number first; a mount point shows its own inode only to fstatat.
std::string name_in(int parent, const struct stat& child) {
    constexpr std::size_t max_entries = 1'000'000;
    for (int pass = 0; pass < 2; ++pass) {
        // `parent` may be an O_PATH descriptor, which cannot be read: opened again.
        UniqueDir d = UniqueDir::from_fd(::openat(parent, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!d) return {};
        std::string found;
        std::size_t n = 0;
        while (dirent* e = d.next()) {
            if (++n > max_entries) break;
            if (pass == 0 && e->d_ino != child.st_ino) continue;
            if (pass == 1 && e->d_type != DT_DIR && e->d_type != DT_UNKNOWN) continue;
            struct stat st {};
            if (::fstatat(d.fd(), e->d_name, &st, 0) == 0 && st.st_dev == child.st_dev && st.st_ino == child.st_ino) {
                found = e->d_name;
                break;
            }
        }
        if (!found.empty()) return found;
    }
    return {};
}

// The path of directory `dir`. /proc names a directory only while its path fits in a page
// (PATH_MAX): a deeper one (made with relative mkdir and chdir) is named by walking up
// with "..", finding each directory's name in its parent, until /proc names an ancestor.
std::string dir_path(int dir) {
    if (std::string p = fd_path(dir); !p.empty()) return p;
    constexpr int max_levels = 4096;
    std::vector<std::string> names;
    UniqueFd cur(::fcntl(dir, F_DUPFD_CLOEXEC, 0));
    for (int level = 0; cur && level < max_levels; ++level) {
        struct stat st {};
        if (::fstat(cur.get(), &st) != 0) return {};
        UniqueFd parent(::openat(cur.get(), "..", O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!parent) return {};
        std::string name = name_in(parent.get(), st);
        if (name.empty()) return {};
        names.push_back(std::move(name));
        if (std::string p = fd_path(parent.get()); !p.empty() && p.front() == '/') {
            if (p == "/") p.clear();
            for (auto it = names.rbegin(); it != names.rend(); ++it) p += "/" + *it;
            return p;
        }
        cur = std::move(parent);
    }
    return {};
}

std::string joined(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& a : v) out += (out.empty() ? "" : ",") + a;
    return out;
}

// How long after the last lookup of an smbd process its answer names the process's client
// once it has exited. Pids come back only after the pid counter wraps (32768 by default).
constexpr std::chrono::seconds recent_client_age{30};

std::string hex(const unsigned char* p, unsigned n) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < n; ++i) out += digits[p[i] >> 4], out += digits[p[i] & 15];
    return out;
}

// SHA-256 of the whole file at `fd` (offset untouched), "" on a read error.
std::string sha256_fd(int fd) {
    std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) return {};
    std::vector<char> buf(1 << 16);
    off_t off = 0;
    for (;;) {
        ssize_t n = ::pread(fd, buf.data(), buf.size(), off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return {};
        if (n == 0) break;
        EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<std::size_t>(n));
        off += n;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (EVP_DigestFinal_ex(ctx.get(), md, &len) != 1) return {};
    return hex(md, len);
}

}  // namespace

struct Watcher::Impl {
    WatcherOptions options;
    WatcherHost host;
    UniqueFd fan;
    UniqueFd stop_fd;
    UniqueFd wake_fd;  // apply(): the thread may be waiting without a timeout, and the sweep starts now
    std::thread thread;
    std::atomic<bool> stopping{false};

    std::mutex mu;  // scope, marks, protected set (apply vs the thread)
    std::shared_ptr<const WatchScope> scope;
    std::vector<std::string> zone_root_paths;  // canonical
    std::map<std::pair<int, int>, UniqueFd> mounts;  // fsid -> a directory on that filesystem
    std::set<Key> protected_set;

    // Thread-only state.
    std::map<Key, Pending> pending;
    std::map<Key, Rescan> rescans;
    // Settled files their writer still holds (files_held_for_writing): enqueued again when their
    // entry in `rescans` is due, so stores into a shared mapping, which no event reports,
    // are found. At most WatcherOptions::max_held.
    std::map<Key, Pending> held;
    // What each writer held when last asked: files settle in bursts from one writer, and
    // reading its /proc once per burst rather than once per file keeps the check cheap
    // (bench_watch). A snapshot is used for kHeldSnapshotAge at most.
    static constexpr std::chrono::milliseconds kHeldSnapshotAge{50};
    std::map<pid_t, std::pair<Clock::time_point, std::optional<HeldFiles>>> held_snapshots;
    // The sweep (WatcherOptions::sweep_interval): files outside zones that a process maps
    // shared and can store into, whoever it is. A stored file is found by its bytes: each
    // sweep compares them (SHA-256) with those of its last scan.
    struct Swept {
        pid_t pid = 0;                     // a process that maps it: the writer of its records
        std::uint64_t start = 0, end = 0;  // that mapping (/proc/PID/map_files names it)
        std::string path;
        std::string digest;                // SHA-256 at its last scan
        bool dirty = true;                 // its bytes differ from its last scan's
        // A file found changed again and again is rescanned after 2 s, 4 s ... 5 min (the
        // back-off of held files); one unchanged for longer than the gap, at once.
        std::chrono::milliseconds gap{};
        Clock::time_point scanned{}, next_allowed{}, changed{}, checked{};
        std::uint64_t seen = 0;            // the sweep that last found it mapped
    };
    std::map<Key, Swept> swept;
    std::set<Key> sweep_ignored;  // mapped on a watched filesystem, but not watched or in a zone
    std::atomic<bool> scope_changed{false};
    std::vector<pid_t> sweep_pids;
    pid_t sweep_after = 0;  // each sweep starts after the last process the one before read
    std::uint64_t sweep_generation = 0;
    Clock::time_point next_sweep{};
    std::string maps_text;
    std::vector<SharedMapping> mappings;
    // Processes whose maps passed SweepLimits::max_process_maps_bytes: read again only after
    // kTooLargeAgain (reading 4 MiB of maps costs the kernel about 50 ms).
    static constexpr std::chrono::seconds kTooLargeAgain{60};
    std::map<pid_t, Clock::time_point> too_large;
    std::set<std::uint64_t> watched_devs;  // st_dev of the marked filesystems (under mu)
    // The last name in the watched trees of recently seen files: a file can be written
    // through another name (a hard link outside, the O_TMPFILE descriptor it was linked
    // from), and the event then names that one. Bounded: the oldest is forgotten first.
    struct Named {
        std::string path, name;
        std::pair<int, int> fsid;
        std::vector<unsigned char> dir_handle;
    };
    std::map<Key, Named> named;
    std::deque<Key> named_order;
    events::Enricher enricher;
    fan::TaskReader tasks;  // the writer's fsuid (one ioctl on a cached pidfd where the kernel has it)
    scan::SandboxedReader reader;  // one sandboxed reader for many files, not one each
    // The copy index: zone files by size, rebuilt when older than index_ttl.
    struct ZoneFile {
        std::string path, zone;
        Key key;
        std::int64_t mtime_ns = 0;
    };
    std::multimap<std::uint64_t, ZoneFile> by_size;
    Clock::time_point index_at{};
    std::atomic<bool> index_valid{false};
    std::map<std::tuple<std::uint64_t, std::uint64_t, std::int64_t>, std::string> hash_cache;

    // No reuse of what /proc said of a pid: the shell that created a file and the program
    // it exec'd to write it share one. No client search per event either: SambaClients
    // (options.samba) answers that, cached per process.
    static events::EnrichConfig uncached(events::EnrichConfig c) {
        c.process_ttl = std::chrono::milliseconds(0);
        c.samba_programs.clear();
        return c;
    }
    explicit Impl(WatcherOptions o, WatcherHost h)
        : options(std::move(o)), host(std::move(h)), enricher(uncached(options.enrich)) {}

    // --- events ------------------------------------------------------------------------

    Writer capture(std::uint32_t pid, const struct stat& st) {
        Writer w;
        w.pid = pid;
        timespec now{};
        ::clock_gettime(CLOCK_MONOTONIC, &now);
        w.seen_at_ns = static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(now.tv_nsec);
        fan::TaskInfo task;
        if (tasks.read(static_cast<pid_t>(pid), task)) w.uid = task.fsuid;
        auto proc = enricher.process(pid, 0, 0);
        w.exe = proc.exe;
        // Gone, or alive by /proc yet its exe link did not read (test_watch "4 KiB pieces",
        // once in six quiet runs, at the writer's close): the exec tracker knows its
        // program, asked now; for one gone, what it answers stands if settle() learns nothing.
        // Before the Samba test: an smbd that exited between the uid read above (root
        // between requests) and its exe link would otherwise pass for a root writer.
        if ((proc.exited || w.exe.empty()) && options.enrich.identities)
            if (auto id = options.enrich.identities->identity_at(pid, w.seen_at_ns))
                w.exe = id->later_exe.empty() ? id->exe : id->later_exe;
        if (events::is_samba_program(options.enrich, proc.comm, w.exe)) {
            // Every client it serves (several with multichannel), looked up now; else what
            // a lookup while it still held its connection said (the enforcer's, while smbd
            // waited for an open; or ours at an earlier event): a short session's smbd
            // closes its connection and exits right after its last write.
            auto served = options.samba ? options.samba->served(pid) : events::ServedClients{{}, "no Samba client lookup"};
            if (served.addresses.empty() && options.samba) {
                if (auto recent = options.samba->recent(pid, recent_client_age); !recent.empty()) served.addresses = recent;
            }
            w.client = joined(served.addresses);
            if (w.client.empty())
                w.client_unknown = "smbd " + std::to_string(pid) + ", when the write was reported: " + served.why;
            // smbd takes its user's identity for each request and is root again between
            // them: by the time the event is read its uid says nothing. The user it wrote
            // for owns the file it created.
            w.uid = st.st_uid;
        }
        if (proc.exited) {
            // Its program is known at settle() (exec tracker); if it was smbd, the last
            // lookup of it names its client.
            if (options.samba) w.client = joined(options.samba->recent(pid, recent_client_age));
            // Gone before we looked: the exec tracker knows its program, once it has read
            // its own ring buffer (an exec just before the write may still wait there), so
            // it is asked when the file has settled, for this moment.
            w.exited_at_ns = w.seen_at_ns;
        }
        // Gone before /proc was read: who it wrote as owns a file it created.
        if (w.uid == events::no_uid) w.uid = st.st_uid;
        if (w.uid != events::no_uid) w.user = enricher.user_name(w.uid);
        return w;
    }

    bool outside_zones(const std::string& path, const Key& k) {
        std::lock_guard lk(mu);
        for (const auto& r : zone_root_paths)
            if (path_within(path, r)) return false;
        return !protected_set.contains(k);
    }

    bool watched(const std::string& path, const WatchScope& s) {
        if (s.watch.paths.empty()) return true;  // the whole filesystems of the zones
        return std::any_of(s.watch.paths.begin(), s.watch.paths.end(),
                           [&](const policy::PathEntry& p) { return path_within(path, p.path); });
    }

    void on_event(const fanotify_event_metadata* md, Clock::time_point now) {
        if (md->mask & FAN_Q_OVERFLOW) {
            if (host.lost) host.lost("watch", 1, "the watcher's fanotify queue overflowed: files written meanwhile were not scanned");
            return;
        }
        const char* end = reinterpret_cast<const char*>(md) + md->event_len;
        const char* p = reinterpret_cast<const char*>(md) + md->metadata_len;
        std::shared_ptr<const WatchScope> s;
        {
            std::lock_guard lk(mu);
            s = scope;
        }
        if (!s) return;
        // The file's own handle (FAN_REPORT_FID), reported beside its directory and name.
        const file_handle* object = nullptr;
        std::pair<int, int> object_fsid{};
        for (const char* q = p; q + sizeof(fanotify_event_info_header) <= end;) {
            const auto* hdr = reinterpret_cast<const fanotify_event_info_header*>(q);
            if (hdr->len == 0 || q + hdr->len > end) break;
            if (hdr->info_type == FAN_EVENT_INFO_TYPE_FID) {
                const auto* fid = reinterpret_cast<const fanotify_event_info_fid*>(q);
                object = reinterpret_cast<const file_handle*>(fid->handle);
                object_fsid = {fid->fsid.val[0], fid->fsid.val[1]};
            }
            q += hdr->len;
        }
        bool named_event = false;
        while (p + sizeof(fanotify_event_info_header) <= end) {
            const auto* hdr = reinterpret_cast<const fanotify_event_info_header*>(p);
            if (hdr->len == 0 || p + hdr->len > end) break;
            if (hdr->info_type == FAN_EVENT_INFO_TYPE_DFID_NAME) {
                const auto* fid = reinterpret_cast<const fanotify_event_info_fid*>(p);
                auto* handle = reinterpret_cast<file_handle*>(const_cast<unsigned char*>(fid->handle));
                const char* name = reinterpret_cast<const char*>(handle->f_handle) + handle->handle_bytes;
                int mount_fd = -1;
                {
                    std::lock_guard lk(mu);
                    auto it = mounts.find({fid->fsid.val[0], fid->fsid.val[1]});
                    if (it != mounts.end()) mount_fd = it->second.get();
                }
                named_event = true;
                if (mount_fd >= 0)
                    handle_name({fid->fsid.val[0], fid->fsid.val[1]}, mount_fd, handle, name, object, md, *s, now);
            }
            p += hdr->len;
        }
        if (!named_event && object && !(md->mask & (FAN_CREATE | FAN_MOVED_TO))) {
            // Reported without a name (a file with none left in its directory): by its handle.
            int mount_fd = -1;
            {
                std::lock_guard lk(mu);
                if (auto it = mounts.find(object_fsid); it != mounts.end()) mount_fd = it->second.get();
            }
            struct stat st {};
            if (mount_fd >= 0)
                if (UniqueFd f = open_object(mount_fd, object); f && ::fstat(f.get(), &st) == 0 && S_ISREG(st.st_mode))
                    by_other_name(st, md, *s, now);
        }
    }

    void handle_name(std::pair<int, int> fsid, int mount_fd, file_handle* handle, const char* name,
                     const file_handle* object, const fanotify_event_metadata* md, const WatchScope& s,
                     Clock::time_point now) {
        UniqueFd dir(::open_by_handle_at(mount_fd, handle, O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!dir) return;  // the directory is gone already
        struct stat st {};
        if (::fstatat(dir.get(), name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            // No such name: an O_TMPFILE file ("#inode") written after it was linked
            // elsewhere. Its own handle says which file it is.
            if (object && !(md->mask & (FAN_CREATE | FAN_MOVED_TO)))
                if (UniqueFd f = open_object(mount_fd, object); f && ::fstat(f.get(), &st) == 0 && S_ISREG(st.st_mode))
                    by_other_name(st, md, s, now);
            return;
        }
        const bool moved_dir = S_ISDIR(st.st_mode) && (md->mask & FAN_MOVED_TO);
        if (!S_ISREG(st.st_mode) && !moved_dir) return;
        const std::string d = dir_path(dir.get());
        if (d.empty() || d.front() != '/') {
            if (host.lost) host.lost("watch", 1, std::string("the directory of ") + name + " could not be named; it was not scanned");
            return;
        }
        const std::string path = d == "/" ? "/" + std::string(name) : d + "/" + name;
        if (moved_dir)
            moved_tree(fsid, dir.get(), name, path, md, s, now);
        else if (!watched(path, s))
            by_other_name(st, md, s, now);
        else
            enqueue(fsid, handle, name, st, path, md, s, now);
    }

    UniqueFd open_object(int mount_fd, const file_handle* object) {
        std::vector<unsigned char> h(reinterpret_cast<const unsigned char*>(object),
                                     reinterpret_cast<const unsigned char*>(object) + sizeof(file_handle) +
                                         object->handle_bytes);
        return UniqueFd(::open_by_handle_at(mount_fd, reinterpret_cast<file_handle*>(h.data()), O_PATH | O_CLOEXEC));
    }

    // A file written under a name outside the watched trees that has a name inside them.
    void by_other_name(const struct stat& st, const fanotify_event_metadata* md, const WatchScope& s,
                       Clock::time_point now) {
        auto it = named.find({static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)});
        if (it == named.end()) return;
        const Named n = it->second;  // enqueue() refreshes the entry
        enqueue(n.fsid, reinterpret_cast<const file_handle*>(n.dir_handle.data()), n.name.c_str(), st, n.path, md, s,
                now);
    }

    void remember_name(const Key& k, const Pending& e) {
        constexpr std::size_t max_named = 16384;
        auto [it, fresh] = named.try_emplace(k);
        it->second = {e.path, e.name, e.fsid, e.dir_handle};
        if (!fresh) return;
        named_order.push_back(k);
        while (named_order.size() > max_named) {
            named.erase(named_order.front());
            named_order.pop_front();
        }
    }

    // A directory moved in (from outside the watched trees, where its files were written
    // unseen): each regular file in it, as if it had been moved in on its own. Bounded.
    void moved_tree(std::pair<int, int> fsid, int parent, const char* name, const std::string& path,
                    const fanotify_event_metadata* md, const WatchScope& s, Clock::time_point now) {
        constexpr std::size_t max_files = 100'000;
        constexpr std::size_t max_depth = 256;
        struct Level {
            UniqueFd fd;
            std::string path;
            std::size_t depth;
        };
        std::vector<Level> todo;
        todo.push_back({UniqueFd(::openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)), path, 0});
        std::size_t files = 0;
        while (!todo.empty()) {
            Level lv = std::move(todo.back());
            todo.pop_back();
            if (!lv.fd) continue;
            // The directory's handle names its files in their pending entries.
            alignas(file_handle) unsigned char buf[sizeof(file_handle) + MAX_HANDLE_SZ];
            auto* fh = reinterpret_cast<file_handle*>(buf);
            fh->handle_bytes = MAX_HANDLE_SZ;
            int mount_id = 0;
            if (::name_to_handle_at(lv.fd.get(), "", fh, &mount_id, AT_EMPTY_PATH) != 0) continue;
            UniqueDir dp = UniqueDir::from_fd(lv.fd.release());
            if (!dp) continue;
            while (dirent* e = dp.next()) {
                struct stat st {};
                if (::fstatat(dp.fd(), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
                const std::string p = lv.path + "/" + e->d_name;
                if (S_ISDIR(st.st_mode) && lv.depth + 1 < max_depth) {
                    todo.push_back({UniqueFd(::openat(dp.fd(), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)),
                                    p, lv.depth + 1});
                } else if (S_ISREG(st.st_mode)) {
                    if (++files > max_files) {
                        if (host.lost)
                            host.lost("watch", 1, "a folder moved into " + path + " holds more than " +
                                                      std::to_string(max_files) + " files; the rest were not scanned");
                        return;
                    }
                    enqueue(fsid, fh, e->d_name, st, p, md, s, now);
                }
            }
        }
    }

    void enqueue(std::pair<int, int> fsid, const file_handle* handle, const char* name, const struct stat& st,
                 const std::string& path, const fanotify_event_metadata* md, const WatchScope& s, Clock::time_point now) {
        const Key k{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
        if (!watched(path, s) || !outside_zones(path, k)) return;
        sweep_ignored.erase(k);
        if (auto sw = swept.find(k); sw != swept.end()) sw->second.path = path;  // renamed in the watched trees
        auto it = pending.find(k);
        const bool write = (md->mask & FAN_CLOSE_WRITE) != 0;
        if (it == pending.end()) {
            if (pending.size() >= options.max_pending) {
                if (host.lost) host.lost("watch", 1, "too many files waiting to be scanned; " + path + " was not");
                return;
            }
            Pending np;
            np.first = now;
            if (auto r = rescans.find(k); r != rescans.end()) np.not_before = r->second.at + r->second.wait;
            it = pending.emplace(k, std::move(np)).first;
        }
        Pending& e = it->second;
        e.path = path;
        e.fsid = fsid;
        const auto* h = reinterpret_cast<const unsigned char*>(handle);
        e.dir_handle.assign(h, h + sizeof(file_handle) + handle->handle_bytes);
        e.name = name;
        e.last = now;
        remember_name(k, e);
        if (md->mask & (FAN_CLOSE_WRITE | FAN_CREATE | FAN_MOVED_TO)) e.modified_only = false;
        if (md->pid > 0 && (e.writer.pid == 0 || (write && !e.writer_from_write))) {
            Writer w = capture(static_cast<std::uint32_t>(md->pid), st);
            // The same process, gone by the time its close was read (cp exits right after
            // it): what /proc showed of it alive at the create is kept, and settle() asks
            // the exec tracker only whether it exec'd another program since. The tracker
            // alone left the program out once (test_watch "cp": an empty CUSTGUARD_EXE).
            if (w.exited_at_ns && w.pid == e.writer.pid && !e.writer.exited_at_ns && !e.writer.exe.empty()) {
                w.exe = e.writer.exe;
                w.alive_at_ns = e.writer.seen_at_ns;
            } else if (w.exe.empty() && w.pid == e.writer.pid) {
                w.exe = e.writer.exe;  // never a known program replaced by none
            }
            e.writer = std::move(w);
            e.writer_from_write = write;
        }
    }

    // --- copies ------------------------------------------------------------------------

    void build_index(const WatchScope& s) {
        by_size.clear();
        std::size_t n = 0;
        std::function<void(int, const std::string&, const std::string&, int)> walk =
            [&](int dfd, const std::string& dir, const std::string& zone, int depth) {
                UniqueDir dp = UniqueDir::from_fd(dfd);
                if (!dp || depth > 64) return;
                while (dirent* e = dp.next()) {
                    if (n >= options.max_zone_files) break;
                    struct stat st {};
                    if (::fstatat(dp.fd(), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
                    const std::string p = dir + "/" + e->d_name;
                    if (S_ISDIR(st.st_mode)) {
                        walk(::openat(dp.fd(), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), p, zone, depth + 1);
                    } else if (S_ISREG(st.st_mode) && st.st_size > 0) {
                        by_size.emplace(static_cast<std::uint64_t>(st.st_size),
                                        ZoneFile{p, zone, {static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)},
                                                 st.st_mtim.tv_sec * 1'000'000'000ll + st.st_mtim.tv_nsec});
                        ++n;
                    }
                }
            };
        // Deeper roots first: a file in a nested zone belongs to the nested zone.
        auto roots = s.zone_roots;
        std::sort(roots.begin(), roots.end(), [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
        std::set<Key> seen;
        for (const auto& [root, zone] : roots) {
            struct stat st {};
            if (::stat(root.c_str(), &st) != 0) continue;
            if (S_ISREG(st.st_mode)) {
                by_size.emplace(static_cast<std::uint64_t>(st.st_size),
                                ZoneFile{root, zone, {static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)},
                                         st.st_mtim.tv_sec * 1'000'000'000ll + st.st_mtim.tv_nsec});
                continue;
            }
            int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (fd >= 0) walk(fd, root, zone, 0);
        }
        // One entry per inode: the deepest root's zone, walked first.
        for (auto it = by_size.begin(); it != by_size.end();)
            it = seen.insert(it->second.key).second ? std::next(it) : by_size.erase(it);
        if (n >= options.max_zone_files && host.warning)
            host.warning("watch: the zones hold more than " + std::to_string(options.max_zone_files) +
                         " files; copies of the others are not recognised as copies");
        index_at = Clock::now();
        index_valid = true;
    }

    // The zone whose file has exactly these bytes, or "".
    std::string copy_of(int fd, const struct stat& st, const WatchScope& s) {
        if (!s.recognise_copies) return {};
        if (st.st_size <= 0 || static_cast<std::uint64_t>(st.st_size) > options.max_hash_bytes) return {};
        if (!index_valid || Clock::now() - index_at > options.index_ttl) build_index(s);
        auto [lo, hi] = by_size.equal_range(static_cast<std::uint64_t>(st.st_size));
        if (lo == hi) return {};
        const std::string mine = sha256_fd(fd);
        if (mine.empty()) return {};
        for (auto it = lo; it != hi; ++it) {
            const ZoneFile& z = it->second;
            auto ck = std::make_tuple(z.key.dev, z.key.ino, z.mtime_ns);
            auto h = hash_cache.find(ck);
            if (h == hash_cache.end()) {
                UniqueFd zf(::open(z.path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
                struct stat zst {};
                if (!zf || ::fstat(zf.get(), &zst) != 0 || zst.st_ino != z.key.ino || zst.st_size != st.st_size) continue;
                if (hash_cache.size() >= 65536) hash_cache.clear();
                h = hash_cache.emplace(ck, sha256_fd(zf.get())).first;
            }
            if (!h->second.empty() && h->second == mine) return z.zone;
        }
        return {};
    }

    // --- scans -------------------------------------------------------------------------

    // When a pending file is scanned: once quiet (at the latest settle_cap after its first
    // event); a file only written through an open descriptor not before its rescan is due.
    Clock::time_point due(const Pending& e) const {
        const auto t = std::min(e.last + options.quiet, e.first + options.settle_cap);
        return e.modified_only ? std::max(t, e.not_before) : t;
    }

    void note_rescan(const Key& k, const Pending& e, Clock::time_point now) {
        if (!e.modified_only) {
            rescans.erase(k);
            return;
        }
        if (rescans.size() >= options.max_pending)
            std::erase_if(rescans, [&](const auto& kv) { return now - kv.second.at > options.reopen_rescan_max; });
        if (rescans.size() >= options.max_pending) rescans.clear();
        auto [it, fresh] = rescans.try_emplace(k, Rescan{now, options.reopen_rescan});
        if (!fresh) it->second = {now, std::min(it->second.wait * 2, std::chrono::milliseconds(options.reopen_rescan_max))};
    }

    // The file of a pending entry, by its directory's handle (a path may be longer than
    // PATH_MAX), else by path (the filesystem is no longer watched).
    UniqueFd open_pending(const Pending& e) {
        constexpr int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
        {
            std::lock_guard lk(mu);
            if (auto m = mounts.find(e.fsid); m != mounts.end() && !e.dir_handle.empty()) {
                std::vector<unsigned char> h = e.dir_handle;  // open_by_handle_at wants it writable
                UniqueFd dir(::open_by_handle_at(m->second.get(), reinterpret_cast<file_handle*>(h.data()),
                                                 O_PATH | O_DIRECTORY | O_CLOEXEC));
                return dir ? UniqueFd(::openat(dir.get(), e.name.c_str(), flags)) : UniqueFd();
            }
        }
        return UniqueFd(::open(e.path.c_str(), flags));
    }

    // After a settle: while the writer still holds the file, it is rescanned on the back-off
    // of `rescans` (the first time reopen_rescan after this settle).
    bool writer_holds(const Key& k, std::uint32_t writer, Clock::time_point now) {
        const auto pid = static_cast<pid_t>(writer);
        if (pid <= 0) return false;
        auto it = held_snapshots.find(pid);
        if (it == held_snapshots.end() || now - it->second.first > kHeldSnapshotAge) {
            std::erase_if(held_snapshots, [&](const auto& kv) { return now - kv.second.first > kHeldSnapshotAge; });
            it = held_snapshots.insert_or_assign(pid, std::pair{now, files_held_for_writing(pid)}).first;
        }
        return it->second.second && it->second.second->holds(k.dev, k.ino);
    }

    void note_held(const Key& k, const Pending& e, Clock::time_point now) {
        if (!writer_holds(k, e.writer.pid, now)) {
            held.erase(k);
            return;
        }
        if (!held.contains(k) && held.size() >= options.max_held) {
            if (host.lost)
                host.lost("watch", 1, "too many files held open for writing or mapped; " + e.path +
                                          " is not rescanned while its writer holds it");
            return;
        }
        held.insert_or_assign(k, e);
        rescans.try_emplace(k, Rescan{now, options.reopen_rescan});
    }

    // Held files whose rescan is due go back to `pending` (due at once); those with an event
    // pending meanwhile are decided by that event's settle.
    void requeue_held(Clock::time_point now) {
        for (auto it = held.begin(); it != held.end();) {
            if (now < held_due(it->first)) {
                ++it;
                continue;
            }
            const Key k = it->first;
            Pending e = std::move(it->second);
            it = held.erase(it);
            if (pending.contains(k)) continue;
            {
                std::lock_guard lk(mu);
                if (protected_set.contains(k)) continue;  // nobody else reads it now
            }
            if (pending.size() >= options.max_pending) {
                if (host.lost) host.lost("watch", 1, "too many files waiting to be scanned; " + e.path + " was not rescanned");
                continue;
            }
            e.first = e.last = now - options.quiet;
            e.not_before = now;
            e.modified_only = true;  // its settle doubles the wait
            pending.emplace(k, std::move(e));
        }
    }

    Clock::time_point held_due(const Key& k) const {
        const auto r = rescans.find(k);
        return r == rescans.end() ? Clock::time_point{} : r->second.at + r->second.wait;
    }

    void settle(const Key& k, Pending&& e, const WatchScope& s) {
        const auto now = Clock::now();
        note_rescan(k, e, now);
        UniqueFd fd = open_pending(e);
        struct stat st {};
        if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
            held.erase(k);
            return;
        }
        if (static_cast<std::uint64_t>(st.st_dev) != k.dev || static_cast<std::uint64_t>(st.st_ino) != k.ino) {
            held.erase(k);
            return;
        }
        if (auto sw = swept.find(k); sw != swept.end()) swept_scanned(sw->second, fd.get(), st, now);
        note_held(k, e, now);
        if (st.st_size == 0) return;
        Find f;
        f.found.path = e.path;
        f.found.dev = k.dev;
        f.found.ino = k.ino;
        if (e.writer.exited_at_ns && options.enrich.identities) {
            // The program it exec'd last is the one that held the file at its exit (a
            // shell that opened a redirection, then exec'd the writer).
            if (e.writer.alive_at_ns) {
                if (auto id = options.enrich.identities->identity_at(e.writer.pid, e.writer.alive_at_ns);
                    id && !id->later_exe.empty())
                    e.writer.exe = id->later_exe;
            } else if (auto id = options.enrich.identities->identity_at(e.writer.pid, e.writer.exited_at_ns)) {
                e.writer.exe = id->later_exe.empty() ? id->exe : id->later_exe;
            }
        }
        if (e.writer.exited_at_ns && e.writer.exe.empty() && options.enrich.identities && host.warning)
            host.warning("watch: the program that wrote " + e.path + " is unknown: " +
                         options.enrich.identities->why_unknown(e.writer.pid, e.writer.exited_at_ns));
        if (e.writer.exited_at_ns && !events::is_samba_program(options.enrich, {}, e.writer.exe))
            e.writer.client.clear();  // another process that had this pid was smbd
        else if (e.writer.client.empty() && options.samba && events::is_samba_program(options.enrich, {}, e.writer.exe)) {
            // The connection the exec tracker read when this smbd was forked (in its ring
            // by now: identity_at() above read it, or its thread did while the file settled).
            e.writer.client = joined(options.samba->recent(e.writer.pid, recent_client_age));
            if (!e.writer.client.empty())
                e.writer.client_unknown.clear();
            else if (e.writer.exited_at_ns)
                e.writer.client_unknown = "smbd " + std::to_string(e.writer.pid) +
                                          " had exited before the write was reported, and neither its fork nor a lookup "
                                          "while it lived named its connection";
        }
        // An smbd known only now (gone before capture() read its exe) was root when its uid
        // was read, between requests: the user it wrote for owns the file (see capture()).
        if (e.writer.exited_at_ns && events::is_samba_program(options.enrich, {}, e.writer.exe) &&
            e.writer.uid != static_cast<std::uint32_t>(st.st_uid)) {
            e.writer.uid = st.st_uid;
            e.writer.user = enricher.user_name(e.writer.uid);
        }
        f.found.pid = e.writer.pid;
        f.found.uid = e.writer.uid;
        f.found.user = e.writer.user;
        f.found.exe = e.writer.exe;
        f.found.client = e.writer.client;
        f.found.client_unknown = e.writer.client_unknown;
        f.found.copy_of = copy_of(fd.get(), st, s);
        scan::SandboxOptions sandbox = options.sandbox;
        sandbox.timeout = s.scan_timeout;
        sandbox.memory = s.scan_memory;
        sandbox.cancel_fd = stop_fd.get();
        sandbox.extract.mode = scan::ScanMode::file_on_disk;
        auto scanned = reader.scan(s.scanner, fd.get(), {}, sandbox);
        std::vector<std::string> found_detectors;
        std::uint64_t counted = 0;
        if (!scanned) f.unreadable = scanned.error();
        else if (!scanned->readable) f.unreadable = scanned->reason;
        if (scanned && scanned->readable) {
            for (const auto& name : s.detectors) {
                auto d = scan::parse_detector(name);
                if (!d) continue;
                if (auto n = scanned->findings.count(*d)) {
                    f.found.detector_hits[name] = static_cast<std::uint32_t>(std::min<std::uint64_t>(n, UINT32_MAX));
                    found_detectors.push_back(name);
                    counted += n;
                }
            }
            for (const auto& e : scanned->findings.edm)
                if (e.persons) {
                    const std::string name = std::string(scan::edm_prefix) + e.name;
                    f.found.detector_hits[name] = static_cast<std::uint32_t>(std::min<std::uint64_t>(e.persons, UINT32_MAX));
                    counted += e.persons;  // a customer counts one hit, as in the print gate
                }
            f.found.persons = scanned->findings.persons;
        }
        f.found.edm = !s.scanner.edm.empty();
        f.customer_data = counted >= s.threshold && counted > 0;
        if (!f.customer_data && f.found.copy_of.empty()) return;
        bool sensitive = false;
        if (!f.found.copy_of.empty())
            for (const auto& [name, sens] : s.zones)
                if (name == f.found.copy_of) sensitive = sens == policy::Sensitivity::sensitive;
        f.found.categories = categories(found_detectors, sensitive);
        {
            std::lock_guard lk(mu);
            if (protected_set.contains(k)) return;  // protected meanwhile (another name of it)
        }
        if (host.found) host.found(std::move(f));
    }

    // --- the sweep of shared mappings ----------------------------------------------------

    void lost(std::uint64_t n, const std::string& why) {
        if (host.lost) host.lost("watch", n, why);
    }

    // The file of process `pid`'s mapping start-end (/proc/PID/map_files), if it is still key
    // `k`: opened O_PATH, or for reading.
    static UniqueFd open_mapped(pid_t pid, std::uint64_t start, std::uint64_t end, const Key& k, int flags,
                                struct stat& st) {
        char link[96];
        std::snprintf(link, sizeof link, "/proc/%d/map_files/%llx-%llx", static_cast<int>(pid),
                      static_cast<unsigned long long>(start), static_cast<unsigned long long>(end));
        UniqueFd f(::open(link, flags | O_CLOEXEC));
        if (!f || ::fstat(f.get(), &st) != 0 || !S_ISREG(st.st_mode) || static_cast<std::uint64_t>(st.st_dev) != k.dev ||
            static_cast<std::uint64_t>(st.st_ino) != k.ino)
            return {};
        return f;
    }

    // The path of a mapped file as this daemon sees it: its handle opened on the mount the
    // watcher marked (the mapping may have been made in another mount namespace).
    std::string name_mapped(int mapped) {
        alignas(file_handle) unsigned char buf[sizeof(file_handle) + MAX_HANDLE_SZ];
        auto* fh = reinterpret_cast<file_handle*>(buf);
        fh->handle_bytes = MAX_HANDLE_SZ;
        int mount_id = 0;
        struct statfs sfs {};
        if (::name_to_handle_at(mapped, "", fh, &mount_id, AT_EMPTY_PATH) != 0 || ::fstatfs(mapped, &sfs) != 0) return {};
        std::lock_guard lk(mu);
        auto m = mounts.find({sfs.f_fsid.__val[0], sfs.f_fsid.__val[1]});
        if (m == mounts.end()) return {};
        UniqueFd f(::open_by_handle_at(m->second.get(), fh, O_PATH | O_CLOEXEC));
        std::string path = f ? fd_path(f.get()) : std::string();
        return path.starts_with('/') && !path.ends_with(" (deleted)") ? path : std::string();
    }

    // One shared mapping of a file on a watched filesystem, seen in process `pid`.
    void sweep_mapping(pid_t pid, const SharedMapping& m, const WatchScope& s, Clock::time_point now) {
        const Key k{m.dev, m.ino};
        if (auto it = swept.find(k); it != swept.end()) {
            if (it->second.seen != sweep_generation) {
                it->second.pid = pid;
                it->second.start = m.start;
                it->second.end = m.end;
                it->second.seen = sweep_generation;
            }
            return;
        }
        if (sweep_ignored.contains(k)) return;
        struct stat st {};
        UniqueFd f = open_mapped(pid, m.start, m.end, k, O_PATH, st);
        if (!f || st.st_nlink == 0) return;  // gone, or without a name nobody else can open
        if (!m.writable) {
            // Read-only now; writable by mprotect only when the file was opened for writing,
            // which the mode of its map_files link shows.
            struct stat link {};
            char name[96];
            std::snprintf(name, sizeof name, "/proc/%d/map_files/%llx-%llx", static_cast<int>(pid),
                          static_cast<unsigned long long>(m.start), static_cast<unsigned long long>(m.end));
            if (::lstat(name, &link) != 0 || !(link.st_mode & S_IWUSR)) return;
        }
        const std::string path = name_mapped(f.get());
        if (path.empty()) {
            lost(1, "a file process " + std::to_string(pid) + " maps shared could not be named; it is not followed");
            return;
        }
        if (!watched(path, s) || !outside_zones(path, k)) {
            if (sweep_ignored.size() >= 65536) sweep_ignored.clear();
            sweep_ignored.insert(k);
            return;
        }
        if (swept.size() >= options.sweep.max_files) {
            lost(1, "more than " + std::to_string(options.sweep.max_files) +
                        " files outside zones are mapped shared and writable; " + path +
                        " (process " + std::to_string(pid) + ") is not followed");
            return;
        }
        Swept w;
        w.pid = pid;
        w.start = m.start;
        w.end = m.end;
        w.path = path;
        w.gap = options.reopen_rescan;
        w.changed = now;
        w.seen = sweep_generation;
        swept.emplace(k, std::move(w));
    }

    // A swept file is scanned (settle(), before the scan reads it: a store after this hash
    // is a change at the next sweep).
    void swept_scanned(Swept& w, int fd, const struct stat& st, Clock::time_point now) {
        const bool first = w.scanned == Clock::time_point{};
        w.digest = static_cast<std::uint64_t>(st.st_size) <= options.sweep.max_hash_bytes ? sha256_fd(fd) : std::string();
        w.dirty = false;
        w.scanned = w.checked = now;
        if (first) return;  // found mapped: the next change is scanned at once
        w.next_allowed = now + w.gap;
        w.gap = std::min(w.gap * 2, std::chrono::milliseconds(options.reopen_rescan_max));
    }

    void enqueue_swept(const Key& k, const Swept& w, const struct stat& st, Clock::time_point now) {
        if (pending.size() >= options.max_pending) {
            lost(1, "too many files waiting to be scanned; " + w.path + " was not");
            return;
        }
        Pending e;
        e.path = w.path;
        if (auto n = named.find(k); n != named.end() && n->second.path == w.path) {
            e.fsid = n->second.fsid;
            e.dir_handle = n->second.dir_handle;
            e.name = n->second.name;
        } else {
            e.name = w.path.substr(w.path.rfind('/') + 1);  // opened by path (open_pending)
        }
        e.writer = capture(static_cast<std::uint32_t>(w.pid), st);
        // As a write through a descriptor kept open: the back-off of held files (its writer
        // maps it) goes on from where it is rather than starting again.
        e.modified_only = true;
        e.first = e.last = e.not_before = now;
        pending.emplace(k, std::move(e));
    }

    // The files followed: compared with their last scan (within the hash budget, the
    // longest unchecked first), enqueued when changed, dropped when no process maps them
    // (after a last comparison). `complete`: every process was read this sweep.
    void check_swept(const WatchScope& s, Clock::time_point now, bool complete) {
        std::vector<std::pair<Clock::time_point, Key>> order;
        order.reserve(swept.size());
        for (const auto& [k, w] : swept) order.emplace_back(w.checked, k);
        std::sort(order.begin(), order.end());
        std::uint64_t budget = options.sweep.max_hash_bytes;
        for (const auto& [checked, k] : order) {
            auto it = swept.find(k);
            Swept& w = it->second;
            const bool mapped = w.seen == sweep_generation;
            if (!mapped && !complete) continue;  // its process may be one this sweep left out
            bool now_protected = false;
            {
                std::lock_guard lk(mu);
                now_protected = protected_set.contains(k);
            }
            if (now_protected) {  // a find put under a zone: the enforcers guard it now
                sweep_ignored.insert(k);
                swept.erase(it);
                continue;
            }
            struct stat st {};
            UniqueFd f = mapped ? open_mapped(w.pid, w.start, w.end, k, O_RDONLY | O_NONBLOCK, st)
                                : UniqueFd(::open(w.path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
            if (!mapped && f &&
                (::fstat(f.get(), &st) != 0 || static_cast<std::uint64_t>(st.st_dev) != k.dev ||
                 static_cast<std::uint64_t>(st.st_ino) != k.ino))
                f.reset();
            if (!f) {
                swept.erase(it);  // gone or renamed: a mapping still there is found again
                continue;
            }
            const bool busy = pending.contains(k);
            if (!w.dirty && !busy) {
                const auto size = static_cast<std::uint64_t>(st.st_size);
                if (size <= options.sweep.max_hash_bytes && size <= budget) {
                    budget -= size;
                    w.checked = now;
                    if (sha256_fd(f.get()) != w.digest) {
                        w.dirty = true;
                        w.changed = now;
                    } else if (now - w.changed > w.gap) {
                        w.gap = options.reopen_rescan;  // quiet for longer than its gap
                        w.next_allowed = w.scanned;
                    }
                }
            }
            if (w.dirty && !busy && (now >= w.next_allowed || !mapped)) {
                // Renamed meanwhile (into a zone, out of the watched trees): named again.
                if (std::string path = mapped ? name_mapped(f.get()) : std::string(); !path.empty()) w.path = std::move(path);
                if (!watched(w.path, s) || !outside_zones(w.path, k)) {
                    sweep_ignored.insert(k);
                    swept.erase(it);
                    continue;
                }
                enqueue_swept(k, w, st, now);
            }
            if (!mapped) swept.erase(it);
        }
    }

    // Reading a process's maps (and its map_files) waits for its memory-map lock, as the
    // held-file check does: a process stuck in a page fault (a hung NFS server) while
    // another of its threads waits to change its mappings stalls this thread until the
    // fault ends. Not bounded here.
    void sweep(const WatchScope& s, Clock::time_point now) {
        if (scope_changed.exchange(false)) sweep_ignored.clear();
        std::set<std::uint64_t> devs;
        {
            std::lock_guard lk(mu);
            devs = watched_devs;
        }
        if (devs.empty()) return;
        ++sweep_generation;
        sweep_pids.clear();
        UniqueDir proc = UniqueDir::from_fd(::open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!proc) return;
        const pid_t self = ::getpid();
        while (const dirent* d = proc.next()) {
            char* tail = nullptr;
            const long pid = std::strtol(d->d_name, &tail, 10);
            if (*tail == '\0' && pid > 0 && pid != self) sweep_pids.push_back(static_cast<pid_t>(pid));
        }
        std::sort(sweep_pids.begin(), sweep_pids.end());
        std::rotate(sweep_pids.begin(), std::upper_bound(sweep_pids.begin(), sweep_pids.end(), sweep_after),
                    sweep_pids.end());
        std::erase_if(too_large, [&](const auto& kv) { return now >= kv.second; });
        if (too_large.size() > 4096) too_large.clear();
        const SweepLimits& lim = options.sweep;
        std::size_t done = 0, bytes = 0;
        bool complete = true;
        for (const pid_t pid : sweep_pids) {
            if (done >= lim.max_processes || bytes >= lim.max_maps_bytes) {
                complete = false;
                lost(sweep_pids.size() - done,
                     "the sweep of shared mappings read " + std::to_string(done) + " processes and " +
                         std::to_string(bytes >> 20) + " MiB of their maps (its bounds); the mappings of the others "
                         "are read first at the next sweep");
                break;
            }
            ++done;
            sweep_after = pid;
            if (too_large.contains(pid)) continue;  // reported when it was read
            mappings.clear();
            const MapsRead r = read_shared_mappings(pid, lim.max_process_maps_bytes, maps_text, mappings);
            bytes += maps_text.size();
            if (r == MapsRead::too_large) {
                too_large.emplace(pid, now + kTooLargeAgain);
                lost(1, "process " + std::to_string(pid) + " has more than " +
                            std::to_string(lim.max_process_maps_bytes >> 20) +
                            " MiB of memory mappings; the files it maps shared are not followed (its maps are read "
                            "again in a minute)");
                continue;
            }
            for (const auto& m : mappings)
                if (devs.contains(m.dev)) sweep_mapping(pid, m, s, now);
        }
        check_swept(s, now, complete);
    }

    void run() {
        std::vector<char> buf(64 * 1024);
        while (!stopping.load()) {
            int timeout = -1;
            const auto now = Clock::now();
            const auto wait_until = [&](Clock::time_point at) {
                int ms = static_cast<int>(std::max<std::int64_t>(
                    0, std::chrono::duration_cast<std::chrono::milliseconds>(at - now).count() + 1));
                timeout = timeout < 0 ? ms : std::min(timeout, ms);
            };
            for (const auto& [k, e] : pending) wait_until(due(e));
            for (const auto& [k, e] : held) wait_until(held_due(k));
            const bool sweeping = options.sweep_interval.count() > 0 && [&] {
                std::lock_guard lk(mu);
                return scope && !watched_devs.empty();
            }();
            if (sweeping) wait_until(next_sweep);
            pollfd pfd[3] = {{fan.get(), POLLIN, 0}, {stop_fd.get(), POLLIN, 0}, {wake_fd.get(), POLLIN, 0}};
            int r = ::poll(pfd, 3, timeout);
            if (r < 0 && errno != EINTR) break;
            if (pfd[1].revents) break;
            if (pfd[2].revents & POLLIN) {
                std::uint64_t n = 0;
                (void)!::read(wake_fd.get(), &n, sizeof n);
            }
            if (pfd[0].revents & POLLIN) {
                for (;;) {
                    ssize_t n = ::read(fan.get(), buf.data(), buf.size());
                    if (n <= 0) break;
                    const auto at = Clock::now();
                    // Events with file names are not padded to 8 bytes: each is copied to
                    // an aligned buffer before its fields are read.
                    alignas(fanotify_event_metadata) char event[sizeof(fanotify_event_metadata) + 4096 + 512];
                    std::size_t off = 0;
                    while (off + sizeof(fanotify_event_metadata) <= static_cast<std::size_t>(n)) {
                        fanotify_event_metadata head;
                        std::memcpy(&head, buf.data() + off, sizeof head);
                        if (head.event_len < sizeof head || off + head.event_len > static_cast<std::size_t>(n)) break;
                        if (head.fd >= 0) ::close(head.fd);  // not used with FID reporting; never leak one
                        if (head.event_len <= sizeof event) {
                            std::memcpy(event, buf.data() + off, head.event_len);
                            on_event(reinterpret_cast<const fanotify_event_metadata*>(event), at);
                        }
                        off += head.event_len;
                    }
                }
            }
            std::shared_ptr<const WatchScope> s;
            {
                std::lock_guard lk(mu);
                s = scope;
            }
            const auto t = Clock::now();
            if (sweeping && s && t >= next_sweep) {
                sweep(*s, t);
                next_sweep = t + options.sweep_interval;
            }
            requeue_held(t);
            for (auto it = pending.begin(); it != pending.end();) {
                if (t < due(it->second)) {
                    ++it;
                    continue;
                }
                Key k = it->first;
                Pending e = std::move(it->second);
                it = pending.erase(it);
                if (s) settle(k, std::move(e), *s);
                if (stopping.load()) return;
            }
        }
    }
};

Watcher::Watcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Watcher::~Watcher() { stop(); }

tl::expected<std::unique_ptr<Watcher>, std::string> Watcher::create(WatcherOptions options, WatcherHost host) {
    auto impl = std::make_unique<Impl>(std::move(options), std::move(host));
    // FAN_REPORT_FID too: a file written through a name that no longer exists (an O_TMPFILE
    // descriptor) is known by its own handle.
    impl->fan = UniqueFd(::fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME | FAN_REPORT_FID | FAN_CLOEXEC | FAN_NONBLOCK,
                                         O_RDONLY | O_LARGEFILE | O_CLOEXEC));
    if (!impl->fan)
        return tl::unexpected(std::string("watch: fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME | FAN_REPORT_FID) failed: ") +
                              std::strerror(errno) + " (needs Linux 5.9 and CAP_SYS_ADMIN)");
    impl->stop_fd = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    impl->wake_fd = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!impl->stop_fd || !impl->wake_fd) return tl::unexpected(std::string("watch: eventfd: ") + std::strerror(errno));
    Impl* raw = impl.get();
    auto w = std::unique_ptr<Watcher>(new Watcher(std::move(impl)));
    raw->thread = std::thread([raw] { raw->run(); });
    return w;
}

tl::expected<std::vector<std::string>, std::string> Watcher::apply(WatchScope scope) {
    Impl& m = *impl_;
    std::vector<std::string> warnings;
    // FAN_MODIFY: a file filled through a descriptor that stays open has no close to report.
    // FAN_ONDIR: a folder moved in has files nobody saw written (moved_tree).
    constexpr std::uint64_t mask = FAN_CLOSE_WRITE | FAN_CREATE | FAN_MOVED_TO | FAN_MODIFY | FAN_ONDIR;
    std::vector<std::string> targets;
    if (scope.watch.enabled) {
        if (!scope.watch.paths.empty())
            for (const auto& p : scope.watch.paths) targets.push_back(p.path);
        else
            for (const auto& [path, zone] : scope.zone_roots) targets.push_back(path);
    }
    std::map<std::pair<int, int>, UniqueFd> mounts;
    for (const auto& t : targets) {
        std::string dir = t;
        struct stat st {};
        if (::stat(dir.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) dir = dir.substr(0, std::max<std::size_t>(dir.rfind('/'), 1));
        UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!fd) {
            warnings.push_back("[watch] " + t + " cannot be watched: " + std::strerror(errno));
            continue;
        }
        struct statfs sfs {};
        if (::fstatfs(fd.get(), &sfs) != 0) continue;
        std::pair<int, int> fsid{sfs.f_fsid.__val[0], sfs.f_fsid.__val[1]};
        if (mounts.contains(fsid)) continue;
        if (::fanotify_mark(m.fan.get(), FAN_MARK_ADD | FAN_MARK_FILESYSTEM, mask, fd.get(), nullptr) != 0) {
            warnings.push_back("[watch] the filesystem of " + t + " cannot be watched: " + std::strerror(errno) +
                               (errno == EXDEV || errno == ENODEV || errno == EOPNOTSUPP
                                    ? " (it has no file handles, e.g. a FUSE or network filesystem)" : ""));
            continue;
        }
        mounts.emplace(fsid, std::move(fd));
    }
    std::vector<std::string> zone_roots;
    for (const auto& [path, zone] : scope.zone_roots) {
        char buf[PATH_MAX];
        zone_roots.push_back(::realpath(path.c_str(), buf) ? std::string(buf) : path);
    }
    std::set<Key> prot;
    for (const auto& [dev, ino] : scope.protected_files) prot.insert({dev, ino});
    std::lock_guard lk(m.mu);
    for (auto& [fsid, fd] : m.mounts)
        if (!mounts.contains(fsid))
            ::fanotify_mark(m.fan.get(), FAN_MARK_REMOVE | FAN_MARK_FILESYSTEM, mask, fd.get(), nullptr);
    m.watched_devs.clear();
    for (const auto& [fsid, fd] : mounts)
        if (struct stat st {}; ::fstat(fd.get(), &st) == 0) m.watched_devs.insert(static_cast<std::uint64_t>(st.st_dev));
    m.mounts = std::move(mounts);
    m.scope_changed = true;
    m.zone_root_paths = std::move(zone_roots);
    m.protected_set = std::move(prot);
    m.index_valid = false;  // zones may have changed: the thread rebuilds it when it next needs it
    m.scope = scope.watch.enabled ? std::make_shared<const WatchScope>(std::move(scope)) : nullptr;
    std::uint64_t one = 1;
    (void)!::write(m.wake_fd.get(), &one, sizeof one);
    return warnings;
}

void Watcher::protected_file(std::uint64_t dev, std::uint64_t ino) {
    std::lock_guard lk(impl_->mu);
    impl_->protected_set.insert({dev, ino});
}

void Watcher::stop() {
    Impl& m = *impl_;
    if (m.stopping.exchange(true)) return;
    std::uint64_t one = 1;
    (void)!::write(m.stop_fd.get(), &one, sizeof one);
    if (m.thread.joinable()) m.thread.join();
}

}  // namespace custguard::daemon::watch
