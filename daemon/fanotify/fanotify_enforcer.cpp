#include "daemon/fanotify/fanotify_enforcer.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>
#include <latch>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "custguard/common/clock.hpp"
#include "custguard/common/mountinfo.hpp"
#include "custguard/common/unique_dir.hpp"
#include "daemon/fanotify/fd_store.hpp"
#include "daemon/fanotify/task_info.hpp"
#include "daemon/fanotify/user_shares.hpp"
#include "daemon/fanotify/zone_tables.hpp"

namespace custguard::daemon {

using fan::InodeKey;
using fan::InodeKeyHash;
using fan::ZoneTables;

namespace {

// Unlimited queue for permission events: each one holds its opener's thread until it is
// answered, so the threads of the machine bound it; past a limit the kernel would allow
// the open unanswered.
constexpr unsigned perm_group_flags =
    FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_QUEUE | FAN_UNLIMITED_MARKS | FAN_REPORT_TID;
// FAN_REPORT_TARGET_FID (5.17): a rename also names the moved file by handle, so it is
// found however often it moved on before we look.
// The kernel's limited queue (fs.fanotify.max_queued_events, 16,384 by default): nothing
// holds a creator back, so a stalled reader would let an unlimited queue grow kernel memory
// without bound. An overflow (FAN_Q_OVERFLOW) rebuilds the zone index from a scan, and
// until that ends unknown multiply linked files are refused (handle_notification).
constexpr unsigned notify_group_flags = FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_DFID_NAME |
                                        FAN_REPORT_FID | FAN_REPORT_TARGET_FID;
constexpr unsigned notify_group_flags_old = FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_DFID_NAME;
constexpr std::uint64_t notify_mask = FAN_RENAME | FAN_CREATE | FAN_ONDIR;
constexpr std::size_t max_cache = 1u << 20;
constexpr std::size_t max_dir_cache = 1u << 16;
// Files kept in their zone after notify-queue overflows (about 100 bytes each).
constexpr std::size_t max_lost_kept = 1u << 18;
// Files kept in their zone after a move out (departed) are looked up on every open, and a
// user may link zone files out and delete them as fast as she likes: past this many
// entries (and past twice what the last sweep left), the indexer retires those whose file
// is gone (sweep_departed()). Amortized: one handle lookup per entry added.
constexpr std::size_t departed_sweep_min = 4096;
// ... and it locks the table (which every open looks up) for this many buckets or
// entries at a time.
constexpr std::size_t departed_slice = 1024;
// How long an overload answer waits for the notify thread to handle what was queued
// before it (see answer_quickly); past that, a file outside every zone is refused.
constexpr std::chrono::milliseconds max_catch_up{50};
// A parked open (see park()) waits at most this long for the workers to have nothing in
// hand; then the lane answers it anyway, at the workers' priority.
constexpr std::chrono::milliseconds max_park{20};
// Parked opens each hold a descriptor of the file opened: past this many, a heavy user's
// opens are answered by the workers like everyone's.
constexpr std::size_t max_parked = 256;
// The lane's nice value: it runs when nothing else wants the CPU, so answering a heavy
// user's opens never delays a decision of the workers (at worker_nice), nor the users'
// own programs; max_park bounds what that costs the heavy user.
constexpr int lane_nice = 19;
// No notification is longer: its header (24 bytes), a rename's two directory records with
// names and the file's own record (each at most 12 + 8 + MAX_HANDLE_SZ bytes, plus a name
// of at most NAME_MAX + 1) come to about 1,000.
constexpr std::size_t max_notification_len = 4096;

// The length of the notification at `off` in a batch read from the notify group; 0 when
// none (the end, or a malformed record: the batch ends there).
std::uint32_t notification_len(const char* buf, std::size_t len, std::size_t off) {
    if (off + sizeof(fanotify_event_metadata) > len) return 0;
    std::uint32_t ev_len = 0;
    std::memcpy(&ev_len, buf + off, sizeof ev_len);
    return ev_len < sizeof(fanotify_event_metadata) || off + ev_len > len ? 0 : ev_len;
}

using common::clock_ns;
using common::UniqueDir;

// Events carry the kernel's dev_t (MAJOR << 20 | MINOR, as i_sb->s_dev), like the BPF
// programs; stat(2) returns glibc's encoding.
std::uint64_t kernel_dev(std::uint64_t st_dev) {
    return (std::uint64_t{major(st_dev)} << 20) | minor(st_dev);
}

std::optional<InodeKey> key_of(int fd, const char* name = "", int flags = AT_EMPTY_PATH) {
    struct stat st {};
    if (::fstatat(fd, name, &st, flags | AT_SYMLINK_NOFOLLOW) != 0) return std::nullopt;
    return InodeKey{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
}

// An inode number names a file only together with its generation (ext4, xfs and tmpfs give
// a reused number a new one), and a file handle carries both: its hash tells a file from a
// later one on the same number. 0 where the filesystem makes no handles.
// A file handle as name_to_handle_at(2) makes it.
union FileHandle {
    file_handle fh;
    char buf[sizeof(file_handle) + MAX_HANDLE_SZ];
    bool make(int fd, const char* name = "", int flags = AT_EMPTY_PATH) {
        fh.handle_bytes = MAX_HANDLE_SZ;
        int mount_id = 0;
        return ::name_to_handle_at(fd, name, &fh, &mount_id, flags) == 0;
    }
    file_handle* get() { return &fh; }
};

// A set of 64-bit hashes as N bits, shared between threads: test() may answer yes for a
// hash never set (another one on its bit), never no for one set since the last clear().
template <std::size_t N>
class HashBits {
public:
    void set(std::uint64_t h) { words_[(h % N) / 64].fetch_or(std::uint64_t{1} << (h % N % 64)); }
    bool test(std::uint64_t h) const { return (words_[(h % N) / 64].load() >> (h % N % 64)) & 1; }
    void clear() {
        for (auto& w : words_) w.store(0);
    }

private:
    std::array<std::atomic<std::uint64_t>, N / 64> words_{};
};

std::uint64_t hash_handle(const file_handle& h) {
    std::uint64_t v = 0xcbf29ce484222325ull ^ static_cast<std::uint32_t>(h.handle_type);  // FNV-1a
    const unsigned char* bytes = h.f_handle;  // a flexible array: bounded by handle_bytes
    for (unsigned i = 0; i < std::min<unsigned>(h.handle_bytes, MAX_HANDLE_SZ); ++i) v = (v ^ bytes[i]) * 0x100000001b3ull;
    return v | 1;  // never 0
}

std::uint64_t handle_of(int fd, const char* name = "", int flags = AT_EMPTY_PATH) {
    FileHandle fh{};
    return fh.make(fd, name, flags) ? hash_handle(*fh.get()) : 0;
}

// A file handle kept as a string: its type, then its bytes. Empty when it has none.
std::string pack_handle(int fd) {
    FileHandle fh{};
    if (!fh.make(fd)) return {};
    std::string s(sizeof fh.fh.handle_type + fh.fh.handle_bytes, '\0');
    std::memcpy(s.data(), &fh.fh.handle_type, sizeof fh.fh.handle_type);
    std::memcpy(s.data() + sizeof fh.fh.handle_type, fh.fh.f_handle, fh.fh.handle_bytes);
    return s;
}

// pack_handle() undone; false for a string it did not make.
bool unpack_handle(const std::string& s, FileHandle& fh) {
    if (s.size() < sizeof fh.fh.handle_type || s.size() - sizeof fh.fh.handle_type > MAX_HANDLE_SZ) return false;
    std::memcpy(&fh.fh.handle_type, s.data(), sizeof fh.fh.handle_type);
    fh.fh.handle_bytes = static_cast<unsigned>(s.size() - sizeof fh.fh.handle_type);
    std::memcpy(fh.fh.f_handle, s.data() + sizeof fh.fh.handle_type, fh.fh.handle_bytes);
    return true;
}

// This process's descriptors by name in /proc/self/fd, opened once: a readlink of
// "/proc/self/fd/N" looked up four names for each event (a third of its cost).
struct ProcFds {
    UniqueFd dir{::open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC)};
    struct Name {
        int dir = AT_FDCWD;
        char name[32];
    };
    // `fd` as a name for *at() calls; "/proc/self/fd/N" where the directory did not open.
    Name name(int fd) const {
        Name n;
        if (dir) {
            n.dir = dir.get();
            std::snprintf(n.name, sizeof n.name, "%d", fd);
        } else {
            std::snprintf(n.name, sizeof n.name, "/proc/self/fd/%d", fd);
        }
        return n;
    }
    std::string path(int fd) const {
        const Name n = name(fd);
        char buf[PATH_MAX];
        ssize_t len = ::readlinkat(n.dir, n.name, buf, sizeof buf);
        if (len <= 0) return {};
        return std::string(buf, static_cast<std::size_t>(len));
    }
};

// A mount showing the whole filesystem `dev` (its root is the filesystem's root), so that
// ".." walks reach every ancestor directory however the file was reached (bind mounts).
UniqueFd open_whole_fs(std::uint64_t dev) {
    for (const auto& m : common::read_mountinfo()) {
        if (static_cast<std::uint64_t>(m.dev()) != dev || m.root != "/") continue;
        // Not O_PATH: open_by_handle_at refuses O_PATH mount descriptors.
        UniqueFd fd(::open(m.mount_point.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!fd) continue;
        auto k = key_of(fd.get());
        if (k && k->dev == dev) return fd;
    }
    return {};
}

// Filesystem marks a group already holds (an adopted group), from fdinfo. The kernel
// prints s_dev as MAJOR << 20 | MINOR.
std::vector<std::uint64_t> existing_sb_marks(int fan_fd) {
    std::vector<std::uint64_t> devs;
    std::ifstream in("/proc/self/fdinfo/" + std::to_string(fan_fd));
    std::string line;
    while (std::getline(in, line)) {
        unsigned long long sdev = 0;
        if (std::sscanf(line.c_str(), "fanotify sdev:%llx", &sdev) == 1)
            devs.push_back(static_cast<std::uint64_t>(makedev(static_cast<unsigned>(sdev >> 20),
                                                               static_cast<unsigned>(sdev & 0xfffff))));
    }
    return devs;
}

unsigned group_init_flags(int fan_fd) {
    std::ifstream in("/proc/self/fdinfo/" + std::to_string(fan_fd));
    std::string line;
    while (std::getline(in, line)) {
        unsigned flags = 0;
        if (std::sscanf(line.c_str(), "fanotify flags:%x", &flags) == 1) return flags;
    }
    return 0;
}

struct Job {
    int fd = -1;
    pid_t pid = 0;
    std::chrono::steady_clock::time_point read_at;  // when a worker read it
    std::int64_t mono_ns = 0;
    std::int64_t real_ns = 0;
};

struct ZoneLookup {
    std::uint64_t epoch = 0;  // Impl::file_epoch(key) before the lookup: see invalidate_file()
    std::uint32_t zone = 0;
    bool certain = false;  // false: membership could not be established
    bool walked = false;   // decided from the file's ancestry now, not from what was known
    std::string path;
};

// What is known about an inode number, valid only for the file whose handle it names.
struct KnownFile {
    std::uint32_t zone = 0;
    std::uint64_t handle = 0;
};
struct DepartedFile {
    std::string zone;
    std::uint64_t handle = 0;
    // The file's handle, packed (see pack_handle()): a sweep retires the entry once it
    // names no file. Empty for files kept after lost events (only their hash is known):
    // those are bounded by max_lost_kept instead.
    std::string fh;
};

// The zone index: a file with a name in a zone, as a scan of the zone trees found it.
struct IndexedFile {
    std::uint64_t ino = 0;
    std::uint64_t handle = 0;
    std::uint32_t zone = 0;
    bool linked = false;  // more than one link when scanned
};
// A change to the index since the scans, by event; zone 0: no longer in a zone.
struct IndexChange {
    std::uint32_t zone = 0;
    std::uint64_t handle = 0;
    std::uint64_t seq = 0;  // kept by a rescan that started before it
};
// A directory tree moved into a zone (`zone`: its name) or out of every zone (empty),
// waiting for the indexer.
struct TreeMove {
    InodeKey key;
    UniqueFd dir;  // O_PATH
    std::string zone;
};
// Directory trees waiting for the indexer, beyond which a full rescan is cheaper (and
// holds no descriptors).
constexpr std::size_t max_tree_moves = 256;

}  // namespace

struct FanotifyEnforcer::Impl {
    struct FsMark {
        std::uint64_t dev = 0;
        UniqueFd ref;    // a directory on the filesystem, to add/remove marks by
        UniqueFd whole;  // the whole filesystem's root, else `ref` reopened readable (for handles)
        fsid_t fsid{};
        bool notify = false;  // renames/links are watched: ignore marks are safe
    };

    FanotifyOptions options;
    UniqueFd fan;
    UniqueFd notify_fd;
    UniqueFd stop_efd;
    ProcFds proc_fds;
    bool adopted = false;
    bool report_tid = true;
    bool stored = false;
    std::atomic<bool> ignore_new_api{true};  // FAN_MARK_IGNORE (6.0); else the old ignored mask

    // Held shared while a worker decides and places an ignore mark; exclusively while the
    // policy, the marks or the caches change, so no mark outlives the state it came from.
    mutable std::shared_mutex policy_mutex;
    std::shared_ptr<const ZoneTables> tables;
    std::map<std::uint64_t, FsMark> marks;
    std::vector<std::string> warnings;
    std::string priority_warning;  // from launch(): see FanotifyOptions::worker_nice

    // Inodes known to be in a zone (reached through a zone path, or a hard link of such).
    std::mutex cache_mutex;
    // Entries carry the file's handle: a later file on the same number inherits nothing.
    std::unordered_map<InodeKey, KnownFile, InodeKeyHash> zone_cache;
    // The zone of each directory walked, keyed by (dev, hash of its handle): a handle
    // carries the generation, so a directory made later on a reused number is another key.
    // A directory's ancestry on its filesystem is one chain however it is reached (no hard
    // links of directories; walks start on the whole-filesystem mount), and only a rename
    // of a directory (or a lost notification, or apply()) changes it: forget_dirs() then.
    // Shared by the workers (a zone file's open needs no walk) and the notify thread.
    std::mutex dir_mutex;
    std::unordered_map<InodeKey, std::uint32_t, InodeKeyHash> dir_cache;
    std::uint64_t dir_epoch = 0;  // under dir_mutex: moves with every forget_dirs()
    // The zone index: every non-directory file with a name in a zone, so that one with
    // more than one link, opened by a name outside its zone, is placed by one lookup and
    // no open ever scans a tree. A scan at apply() builds the base; the notify group keeps
    // it current (files created in zones, moved into or out of them); trees moved into or
    // out of zones are scanned by the indexer thread, off the open path.
    mutable std::mutex index_mutex;
    std::map<std::uint64_t, std::vector<IndexedFile>> index_base;  // per dev, sorted by ino
    std::size_t index_base_size = 0;
    std::unordered_map<InodeKey, IndexChange, InodeKeyHash> index_delta;
    std::uint64_t index_seq = 0;
    std::deque<TreeMove> index_queue;
    bool index_rebuild = false;     // the delta outgrew the base, or moved trees overflowed
    bool index_overflowed = false;  // ... and trees moved into zones are not indexed yet
    bool index_lost_events = false;  // ... because the notify queue overflowed: see keep_lost_locked()
    // From a notify-queue overflow until the rescan after the last one is installed: a file
    // the index had in a zone that now walks outside every zone may have been moved out
    // while events were lost, by a mover nobody can judge. It keeps its zone meanwhile,
    // as keep_lost_locked() then keeps it for good; an "outside" answer in between would
    // place an ignore mark that outlives that decision.
    std::atomic<bool> index_lost{false};
    // One bit per hash of a file handle the index ever gave a zone: a new name outside
    // every zone whose handle has no bit is no link of a zone file (linked_out() makes no
    // system call for it). Never cleared: a stale bit costs an fstat, a cleared one racing
    // a link would let the link pass unjudged.
    HashBits<std::size_t{1} << 20> zone_handles;
    unsigned index_busy = 0;        // trees being scanned into zones, apply()'s scan
    std::condition_variable index_cv;
    std::thread indexer;
    // While trees moved into zones (or the whole zones, at apply()) are being indexed, a
    // multiply linked file that walks outside every zone and that the index does not know
    // may have its other name there: it is refused, not let through.
    std::atomic<bool> index_incomplete{false};
    // Files and trees moved out of a zone by someone not allowed, or by a process gone
    // before it could be identified: fanotify cannot refuse a rename, so the inode keeps
    // its zone (by name, across reloads) until the daemon stops or the file is deleted
    // (sweep_departed()).
    mutable std::mutex departed_mutex;
    std::unordered_map<InodeKey, DepartedFile, InodeKeyHash> departed;
    std::atomic<bool> any_departed{false};
    std::size_t departed_sweep_at = departed_sweep_min;  // under departed_mutex
    bool departed_sweep = false;  // under index_mutex: the indexer is to sweep
    fan::TaskReader notify_reader;  // whoever holds notify_mutex
    const std::uint32_t self_tgid = static_cast<std::uint32_t>(::getpid());
    // Held while the notify group is read and its events handled, by its thread or by a
    // worker that must see a rename before it answers.
    std::mutex notify_mutex;
    std::atomic<std::uint64_t> notifications{0};  // handled so far
    // Read from the group so far (handled or in the reader's hands), and odd while a read
    // is under way: with FIONREAD they say how many notifications were queued before a
    // given moment (notify_horizon()).
    std::atomic<std::uint64_t> notify_read{0};
    std::atomic<std::uint64_t> notify_reading{0};
    // Overload answers waiting for `notifications` to reach their horizon.
    std::mutex catch_up_mutex;
    std::condition_variable catch_up_cv;
    std::atomic<unsigned> catch_up_waiters{0};
    // Count invalidate_file() per slot of the inode's hash: a decision about a file that
    // began before one and placed an ignore mark or a cached zone after it takes them back
    // (see there). Per slot, not one counter: a creator linking new files into a zone
    // moved a single counter thousands of times a second, and every outside file decided
    // meanwhile lost the ignore mark it had just been given (and came back to us on its
    // next open). A file sharing a slot with a changed one only loses its mark.
    static constexpr std::size_t file_epoch_slots = 1024;
    std::array<std::atomic<std::uint64_t>, file_epoch_slots> file_epochs{};
    std::atomic<std::uint64_t>& file_epoch(const InodeKey& key) {
        return file_epochs[InodeKeyHash{}(key) % file_epoch_slots];
    }
    // What can give a file that walked outside every zone a zone, besides its own
    // file_epoch (index_set_locked(), invalidate_file()): a directory rename
    // (forget_dirs()), a flush (invalidate(): every rename that changes an inode's zone,
    // or keeps a tree in its zone, ends with it or with invalidate_file()), the index
    // becoming incomplete. Moved after the change is visible. A worker that handled the
    // notify queue before answering "outside" looks again only if this or its file's
    // epoch moved meanwhile, not after every notification: creators made thousands of
    // new files outside zones a second, and each one made every such answer look twice.
    std::atomic<std::uint64_t> zone_epoch{0};
    // Inodes that may carry an ignore mark of ours, one bit per hash: invalidate_file()
    // skips the removal (a system call failing with ENOENT) for a file that never got one,
    // as a new file in a zone linked elsewhere at once. Set before the mark is placed;
    // cleared only right after a flush of every ignore mark, under policy_mutex held
    // exclusively (marks are placed under it shared). A worker that sets a bit after
    // invalidate_file() read it clear sees that call's file_epoch and takes its mark back.
    // Callers of marked.clear() hold policy_mutex exclusively and have just flushed the
    // ignore marks.
    HashBits<std::size_t{1} << 18> marked;

    EventHandler handler;
    bool started = false;
    bool running = false;
    std::atomic<bool> stopping{false};
    std::atomic<std::size_t> pending{0};  // events read and not yet answered
    std::thread notifier;
    std::vector<std::thread> workers;

    // Fair share between users (see park()). Events counted per user, under shares_mutex.
    std::mutex shares_mutex;
    fan::UserShares shares;
    // The owner of a recent process, by its id (see owner_of()).
    struct OwnerSlot {
        std::atomic<std::uint64_t> pid_uid{0};  // pid << 32 | uid
        std::atomic<std::int64_t> at_ns{0};
    };
    std::array<OwnerSlot, 256> owners{};
    // Opens of heavy users, answered by the lane thread in their order.
    std::mutex lane_mutex;
    std::condition_variable lane_cv;  // an open parked, or lane_stop
    std::condition_variable gate_cv;  // the workers answered what they had read
    std::deque<Job> parked;
    std::atomic<std::size_t> parked_n{0};  // parked and not answered yet (counted in `pending`)
    std::atomic<bool> lane_waiting{false};
    std::atomic<pid_t> lane_tid{0};
    std::atomic<std::int64_t> lane_job{0};  // read_at of the open the lane answers (ticks()); 0: none
    std::atomic<bool> lane_raised{false};   // a worker raised its priority for that open
    bool lane_stop = false;  // under lane_mutex: the workers are gone, answer the rest and leave
    std::thread lane;

    std::atomic<std::uint64_t> c_events{0}, c_dropped{0}, c_denied{0}, c_errors{0};
    std::atomic<std::uint64_t> c_perm{0}, c_ignores{0}, c_hits{0}, c_dir_hits{0}, c_walks{0}, c_timeouts{0},
        c_flushes{0}, c_stale{0}, c_scans{0}, c_scanned{0}, c_overflows{0}, c_kept_lost{0}, c_quick_waits{0},
        c_quick_refused{0}, c_overload_refused{0}, c_parked{0}, c_park_late{0}, c_departed_swept{0};

    // ---- membership ---------------------------------------------------------------

    const FsMark* mark_for(std::uint64_t dev) const {
        auto it = marks.find(dev);
        return it == marks.end() ? nullptr : &it->second;
    }

    // `fd` is the inode's file: an entry counts only for the file it was made for.
    std::uint32_t departed_zone(const InodeKey& key, int fd, const ZoneTables& t) {
        if (!any_departed.load(std::memory_order_acquire)) return 0;
        DepartedFile d;
        {
            std::lock_guard lk(departed_mutex);
            auto it = departed.find(key);
            if (it == departed.end()) return 0;
            d = it->second;
        }
        if (d.handle && handle_of(fd) != d.handle) {
            std::lock_guard lk(departed_mutex);  // deleted since: retire the entry
            if (auto it = departed.find(key); it != departed.end() && it->second.handle == d.handle) departed.erase(it);
            return 0;
        }
        return t.zone_id(d.zone);
    }

    // Walks from directory `d` up with "..", within filesystem `dev`.
    std::optional<std::uint32_t> walk_dir(UniqueFd d, std::uint64_t dev, const ZoneTables& t) {
        c_walks.fetch_add(1, std::memory_order_relaxed);
        auto k = key_of(d.get());
        if (!k) return std::nullopt;
        for (int depth = 0; depth < 4096; ++depth) {
            if (k->dev != dev) return 0;
            if (auto z = t.root_zone(*k)) return z;
            if (auto z = departed_zone(*k, d.get(), t)) return z;
            UniqueFd up(::openat(d.get(), "..", O_PATH | O_DIRECTORY | O_CLOEXEC));
            if (!up) return std::nullopt;
            auto uk = key_of(up.get());
            if (!uk) return std::nullopt;
            if (*uk == *k) return 0;  // the root of the namespace
            d = std::move(up);
            k = uk;
        }
        return std::nullopt;
    }

    // A directory's zone as last walked. `epoch` gets what a walk's result must be stored
    // with (cache_dir): a walk that overlapped a forget_dirs() may have seen the old tree.
    std::optional<std::uint32_t> cached_dir(const InodeKey& k, std::uint64_t& epoch) {
        std::lock_guard lk(dir_mutex);
        epoch = dir_epoch;
        auto it = dir_cache.find(k);
        if (it == dir_cache.end()) return std::nullopt;
        c_dir_hits.fetch_add(1, std::memory_order_relaxed);
        return it->second;
    }

    void cache_dir(const InodeKey& k, std::uint32_t zone, std::uint64_t epoch) {
        std::lock_guard lk(dir_mutex);
        if (dir_epoch != epoch) return;
        if (dir_cache.size() >= max_dir_cache) dir_cache.clear();
        dir_cache.emplace(k, zone);
    }

    // A directory was renamed (any directory below it may have another zone now), the
    // notify queue lost events, or the policy changed.
    void forget_dirs() {
        {
            std::lock_guard lk(dir_mutex);
            ++dir_epoch;
            dir_cache.clear();
        }
        zone_epoch.fetch_add(1);
    }

    // The zone of directory `d` on filesystem `dev`: from dir_cache, else by a walk from `d`
    // reopened on the whole-filesystem mount (so that a bind mount of a sub-directory walks
    // on to its real ancestors). Only such walks are cached, and only where the notify
    // group sees the renames that would make them stale. `cached` false: walk (see
    // answer_quickly), though the walk's result is still stored.
    std::optional<std::uint32_t> dir_zone_of(UniqueFd d, std::uint64_t dev, const ZoneTables& t, bool cached) {
        const FsMark* m = mark_for(dev);
        FileHandle h{};
        if (!m || !m->whole || !h.make(d.get())) return walk_dir(std::move(d), dev, t);
        const InodeKey dk{dev, hash_handle(*h.get())};
        std::uint64_t epoch = 0;
        if (m->notify && cached) {
            if (auto z = cached_dir(dk, epoch)) return z;
        } else if (m->notify) {
            std::lock_guard lk(dir_mutex);
            epoch = dir_epoch;
        }
        UniqueFd r(::open_by_handle_at(m->whole.get(), h.get(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!r) return walk_dir(std::move(d), dev, t);
        d.reset();
        auto z = walk_dir(std::move(r), dev, t);
        if (z && m->notify) cache_dir(dk, *z, epoch);
        return z;
    }

    std::optional<std::uint32_t> walk_file(const std::string& path, const InodeKey& key, const ZoneTables& t,
                                           bool cached) {
        if (path.empty() || path[0] != '/') return std::nullopt;
        std::size_t slash = path.rfind('/');
        std::string dir = slash == 0 ? "/" : path.substr(0, slash);
        std::string base = path.substr(slash + 1);
        UniqueFd d(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!d) return std::nullopt;
        // The name may have been renamed since the open: only trust a match.
        auto ck = key_of(d.get(), base.c_str(), 0);
        if (!ck || *ck != key) return std::nullopt;
        return dir_zone_of(std::move(d), key.dev, t, cached);
    }

    std::uint32_t cached_zone(const InodeKey& key, std::uint64_t handle) {
        std::lock_guard lk(cache_mutex);
        auto it = zone_cache.find(key);
        if (it == zone_cache.end()) return 0;
        if (it->second.handle == handle) return it->second.zone;
        zone_cache.erase(it);  // the number names another file now: the old one is gone
        return 0;
    }

    // Only files with a handle are cached: without one a reused number could not be told.
    // `epoch`: file_epoch(key) before the zone was looked up; if the file's zone changed since,
    // the zone may be that file's old one and is not kept (invalidate_file() erases under
    // the same mutex after moving the epoch, so one of the two sees the other).
    void cache_zone(const InodeKey& key, std::uint64_t handle, std::uint32_t zone, std::uint64_t epoch) {
        if (!handle) return;
        std::lock_guard lk(cache_mutex);
        if (zone_cache.size() >= max_cache) zone_cache.clear();
        if (file_epoch(key).load() == epoch)
            zone_cache[key] = {zone, handle};
    }

    // The non-directory files under directory `d`, for the index, except nested zone trees
    // (scanned with their own root). One fstatat and one name_to_handle_at per entry.
    void scan_tree(UniqueFd d, std::uint32_t zone, std::uint64_t dev, const ZoneTables& t,
                   std::vector<IndexedFile>& out, int depth) {
        if (depth > 256) return;
        UniqueDir dir = UniqueDir::from_fd(d.release());
        if (!dir) return;
        const int dfd = dir.fd();
        while (dirent* e = dir.next()) {
            struct stat st {};
            if (::fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
            InodeKey k{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
            if (k.dev != dev) continue;
            c_scanned.fetch_add(1, std::memory_order_relaxed);
            if (S_ISDIR(st.st_mode)) {
                if (t.root_zone(k)) continue;  // a nested zone: scanned with its own root
                UniqueFd sub(::openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
                if (sub) scan_tree(std::move(sub), zone, dev, t, out, depth + 1);
            } else if (!S_ISLNK(st.st_mode)) {
                out.push_back({k.ino, handle_of(dfd, e->d_name, 0), zone, st.st_nlink > 1});
            }
        }
    }

    // Every zone tree on `dev`, sorted by inode number (one entry per inode).
    std::vector<IndexedFile> scan_zones(std::uint64_t dev, const ZoneTables& t) {
        c_scans.fetch_add(1, std::memory_order_relaxed);
        std::vector<IndexedFile> out;
        for (const auto& r : t.resolved_roots()) {
            if (r.key.dev != dev || !r.is_dir || r.by_inode) continue;
            UniqueFd d(::open(r.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            if (d) scan_tree(std::move(d), r.zone_id, dev, t, out, 0);
        }
        std::sort(out.begin(), out.end(), [](const IndexedFile& a, const IndexedFile& b) { return a.ino < b.ino; });
        out.erase(std::unique(out.begin(), out.end(),
                              [](const IndexedFile& a, const IndexedFile& b) { return a.ino == b.ino; }),
                  out.end());
        return out;
    }

    // The index's zone for this file (by handle: a later file on the number inherits
    // nothing), 0 when it has no name in a zone. One hash lookup and one binary search.
    std::uint32_t indexed_zone(const InodeKey& key, std::uint64_t handle) {
        auto same = [&](std::uint64_t h) { return h == 0 || h == handle; };
        std::lock_guard lk(index_mutex);
        if (auto it = index_delta.find(key); it != index_delta.end()) {
            if (same(it->second.handle)) return it->second.zone;
            index_delta.erase(it);  // that file is gone
        }
        auto b = index_base.find(key.dev);
        if (b == index_base.end()) return 0;
        auto it = std::lower_bound(b->second.begin(), b->second.end(), key.ino,
                                   [](const IndexedFile& f, std::uint64_t ino) { return f.ino < ino; });
        return it != b->second.end() && it->ino == key.ino && same(it->handle) ? it->zone : 0;
    }

    // Callers hold index_mutex. Returns the zone the index gave the file before.
    std::uint32_t index_set_locked(const InodeKey& key, std::uint64_t handle, std::uint32_t zone) {
        std::uint32_t was = 0;
        // One hash lookup: under a creator this table is large, and each costs cache misses.
        auto [change, fresh] = index_delta.try_emplace(key);
        if (!fresh) {
            if (change->second.handle == handle) was = change->second.zone;
        } else if (auto b = index_base.find(key.dev); b != index_base.end()) {
            auto f = std::lower_bound(b->second.begin(), b->second.end(), key.ino,
                                      [](const IndexedFile& e, std::uint64_t ino) { return e.ino < ino; });
            if (f != b->second.end() && f->ino == key.ino && f->handle == handle) was = f->zone;
        }
        if (zone) zone_handles.set(handle);
        change->second = {zone, handle, ++index_seq};
        file_epoch(key).fetch_add(1);  // a decision that looked the file up before looks again
        // Files created and deleted again leave entries behind: past the size of the base,
        // a rescan (off the open path) starts the delta over. Amortized: one scan per as
        // many changes as the zones hold files.
        if (index_delta.size() > std::max<std::size_t>(65536, index_base_size) && !index_rebuild) {
            index_rebuild = true;
            index_cv.notify_one();
        }
        return was;
    }

    std::uint32_t index_set(const InodeKey& key, std::uint64_t handle, std::uint32_t zone) {
        std::lock_guard lk(index_mutex);
        return index_set_locked(key, handle, zone);
    }

    void update_incomplete_locked() {
        const bool incomplete = index_busy != 0 || index_overflowed ||
                                std::any_of(index_queue.begin(), index_queue.end(),
                                            [](const TreeMove& m) { return !m.zone.empty(); });
        index_incomplete.store(incomplete, std::memory_order_release);
        if (incomplete) zone_epoch.fetch_add(1);
    }

    // A directory tree moved into zone `zone` (by name), or out of every zone (empty): the
    // indexer scans it. The same directory queued twice is scanned once, for where it went last.
    void queue_tree(const InodeKey& key, UniqueFd dir, std::string zone) {
        std::lock_guard lk(index_mutex);
        auto it = std::find_if(index_queue.begin(), index_queue.end(), [&](const TreeMove& m) { return m.key == key; });
        if (it != index_queue.end()) {
            it->zone = std::move(zone);
        } else if (index_queue.size() >= max_tree_moves) {
            // More trees than worth scanning one by one: rescan everything instead.
            index_overflowed |= !zone.empty() || std::any_of(index_queue.begin(), index_queue.end(),
                                                             [](const TreeMove& m) { return !m.zone.empty(); });
            index_queue.clear();
            index_rebuild = true;
        } else {
            index_queue.push_back({key, std::move(dir), std::move(zone)});
        }
        update_incomplete_locked();
        index_cv.notify_one();
    }

    // After a notify-queue overflow: a file that had a name in a zone before it (in the
    // index, and not changed by an event handled since the rescan began at index_seq ==
    // `from`) and that the rescan found in no zone was moved out, or deleted, while events
    // were lost. Its mover cannot be judged: like an unknown mover's, the inode keeps its
    // zone (departed). Deleted files among them cost an entry each (retired when their
    // number is reused), up to max_lost_kept entries in all. Callers hold index_mutex.
    void keep_lost_locked(const std::map<std::uint64_t, std::vector<IndexedFile>>& scanned, std::uint64_t from,
                          const ZoneTables& t) {
        std::vector<std::pair<InodeKey, DepartedFile>> lost;
        for (const auto& [dev, files] : scanned) {
            auto consider = [&](std::uint64_t ino, std::uint64_t handle, std::uint32_t zone) {
                if (zone == 0) return;
                auto f = std::lower_bound(files.begin(), files.end(), ino,
                                          [](const IndexedFile& e, std::uint64_t i) { return e.ino < i; });
                if (f != files.end() && f->ino == ino) return;  // still in a zone
                lost.push_back({{dev, ino}, {t.zone_name(zone), handle}});
            };
            if (auto b = index_base.find(dev); b != index_base.end())
                for (const auto& f : b->second)
                    if (!index_delta.contains({dev, f.ino})) consider(f.ino, f.handle, f.zone);
            for (const auto& [key, change] : index_delta)
                if (key.dev == dev && change.seq <= from) consider(key.ino, change.handle, change.zone);
        }
        if (lost.empty()) return;
        std::lock_guard dl(departed_mutex);
        for (auto& [key, file] : lost) {
            if (departed.size() >= max_lost_kept) break;
            if (departed.try_emplace(key, std::move(file)).second) c_kept_lost.fetch_add(1, std::memory_order_relaxed);
        }
        any_departed.store(true, std::memory_order_release);
    }

    // Replaces the base of `dev` with a scan that started at index_seq == `from`: changes
    // made since are kept, older ones are in the scan (or gone). Callers hold index_mutex.
    void install_base_locked(std::uint64_t dev, std::vector<IndexedFile> files, std::uint64_t from) {
        for (const auto& f : files)
            if (f.zone) zone_handles.set(f.handle);
        auto& b = index_base[dev];
        index_base_size -= b.size();
        b = std::move(files);
        index_base_size += b.size();
        std::erase_if(index_delta, [&](const auto& kv) { return kv.first.dev == dev && kv.second.seq <= from; });
    }

    // Retires the departed entries whose file is gone (its handle opens nothing: ESTALE),
    // off the open path. Every open looks the table up, so it is locked only for slices:
    // the handles are copied and the entries erased at most departed_slice at a time (a
    // whole copy of 86,000 live entries held the lock for 0.1-0.26 s). An entry missed
    // because the table grew between slices waits for the next sweep; one replaced
    // meanwhile (another handle on the number) stays. Run by the indexer.
    void sweep_departed() {
        struct Entry {
            InodeKey key;
            std::uint64_t handle;
            std::string fh;
        };
        std::vector<Entry> entries;
        for (std::size_t b = 0;;) {
            std::lock_guard dl(departed_mutex);
            const std::size_t buckets = departed.bucket_count();
            if (b >= buckets) break;
            for (const std::size_t end = std::min(buckets, b + departed_slice); b < end; ++b)
                for (auto it = departed.begin(b); it != departed.end(b); ++it)
                    if (!it->second.fh.empty()) entries.push_back({it->first, it->second.handle, it->second.fh});
        }
        // The filesystems' whole mounts, duplicated: apply() may replace the marks meanwhile.
        std::map<std::uint64_t, UniqueFd> mounts;
        {
            std::shared_lock pl(policy_mutex);
            for (const auto& e : entries)
                if (!mounts.contains(e.key.dev))
                    if (const FsMark* m = mark_for(e.key.dev); m && m->whole)
                        mounts.emplace(e.key.dev, UniqueFd(::fcntl(m->whole.get(), F_DUPFD_CLOEXEC, 0)));
        }
        std::vector<std::pair<InodeKey, std::uint64_t>> gone;
        for (const auto& e : entries) {
            if (stopping.load()) break;  // what was found is still retired below
            auto m = mounts.find(e.key.dev);
            FileHandle fh{};
            if (m == mounts.end() || !m->second || !unpack_handle(e.fh, fh)) continue;
            UniqueFd f(::open_by_handle_at(m->second.get(), fh.get(), O_PATH | O_CLOEXEC));
            if (!f && errno == ESTALE) gone.emplace_back(e.key, e.handle);
        }
        for (std::size_t i = 0;;) {
            std::lock_guard dl(departed_mutex);
            for (const std::size_t end = std::min(gone.size(), i + departed_slice); i < end; ++i) {
                const auto& [key, handle] = gone[i];
                if (auto it = departed.find(key); it != departed.end() && it->second.handle == handle) {
                    departed.erase(it);
                    c_departed_swept.fetch_add(1, std::memory_order_relaxed);
                }
            }
            if (i < gone.size()) continue;
            departed_sweep_at = std::max(departed_sweep_min, 2 * departed.size());
            break;
        }
    }

    void index_loop() {
        std::unique_lock lk(index_mutex);
        for (;;) {
            index_cv.wait(lk, [&] { return stopping.load() || index_rebuild || departed_sweep || !index_queue.empty(); });
            if (stopping.load()) return;
            // After the rescans and moved trees: those close windows (index_incomplete);
            // a sweep only gives memory back.
            if (departed_sweep && !index_rebuild && index_queue.empty()) {
                departed_sweep = false;
                lk.unlock();
                sweep_departed();
                lk.lock();
                continue;
            }
            // Never policy_mutex under index_mutex: apply() takes them the other way round.
            std::shared_ptr<const ZoneTables> t;
            lk.unlock();
            {
                std::shared_lock pl(policy_mutex);
                t = snapshot();
            }
            lk.lock();
            if (stopping.load()) return;
            if (!index_rebuild && index_queue.empty()) continue;
            if (!t) {
                index_queue.clear();
                index_rebuild = index_overflowed = index_lost_events = false;
                index_lost.store(false);
                update_incomplete_locked();
                continue;
            }
            if (index_rebuild) {
                index_rebuild = false;
                const bool overflowed = std::exchange(index_overflowed, false);
                const bool lost_events = std::exchange(index_lost_events, false);
                if (overflowed) ++index_busy;
                const std::uint64_t from = index_seq;
                lk.unlock();
                std::map<std::uint64_t, std::vector<IndexedFile>> scanned;
                for (auto dev : t->devices()) scanned[dev] = scan_zones(dev, *t);
                lk.lock();
                if (lost_events) keep_lost_locked(scanned, from, *t);
                for (auto& [dev, files] : scanned) install_base_locked(dev, std::move(files), from);
                // Another overflow since this scan began is rescanned first.
                if (lost_events && !index_lost_events) index_lost.store(false);
                if (overflowed) --index_busy;
                update_incomplete_locked();
                continue;
            }
            TreeMove move = std::move(index_queue.front());
            index_queue.pop_front();
            const std::uint32_t zone = move.zone.empty() ? 0 : t->zone_id(move.zone);
            if (zone) ++index_busy;
            lk.unlock();
            std::vector<IndexedFile> files;
            if (UniqueFd d{::openat(move.dir.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)})
                scan_tree(std::move(d), zone, move.key.dev, *t, files, 0);
            lk.lock();
            // Out of every zone: a file with another link may still have a name in its
            // zone, so only singly linked files leave the index.
            for (const auto& f : files)
                if (zone || !f.linked) index_set_locked({move.key.dev, f.ino}, f.handle, zone);
            if (zone) --index_busy;
            update_incomplete_locked();
            // Counted once its files are in the index: a reader of stats() that sees the
            // count move sees the whole scan (rescan_test waits for it).
            c_scans.fetch_add(1, std::memory_order_relaxed);
        }
    }

    // The event's file reopened by its handle on the whole-filesystem mount: for a file
    // opened in another mount namespace (a user's own bind or overlay mount) the kernel
    // hands back the dentry the opener used, whose ancestry is the real one, named in ours.
    std::optional<std::uint32_t> walk_reopened(int evfd, const InodeKey& key, const ZoneTables& t, std::string& path,
                                               bool cached = true) {
        const FsMark* m = mark_for(key.dev);
        if (!m || !m->whole) return std::nullopt;
        FileHandle h{};
        if (!h.make(evfd)) return std::nullopt;
        UniqueFd f(::open_by_handle_at(m->whole.get(), h.get(), O_PATH | O_CLOEXEC));
        if (!f) return std::nullopt;
        std::string p = proc_fds.path(f.get());
        auto w = walk_file(p, key, t, cached);
        if (w) path = std::move(p);  // the opener's name does not exist here; this one does
        return w;
    }

    // The path a record names: the opener's where it names this file here too, else the
    // file's name on the whole filesystem (opened through another namespace's mount).
    std::string record_path(int evfd, const InodeKey& key, const ZoneTables& t) {
        std::string p = proc_fds.path(evfd);
        if (key_of(AT_FDCWD, p.c_str(), 0) == key) return p;
        std::string canonical;
        if (walk_reopened(evfd, key, t, canonical) && !canonical.empty()) return canonical;
        return p;
    }

    // A deleted file (or an O_TMPFILE) keeps the directory it was last in: the kernel names
    // it "DIR/NAME (deleted)". Only a directory on the file's own filesystem counts.
    std::optional<std::uint32_t> walk_deleted(const std::string& path, const InodeKey& key, const ZoneTables& t,
                                              bool cached) {
        constexpr std::string_view suffix = " (deleted)";
        if (path.empty() || path[0] != '/' || !path.ends_with(suffix)) return std::nullopt;
        std::size_t slash = path.rfind('/', path.size() - suffix.size());
        std::string dir = slash == 0 ? "/" : path.substr(0, slash);
        UniqueFd d(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!d) return std::nullopt;
        auto dk = key_of(d.get());
        if (!dk || dk->dev != key.dev) return std::nullopt;
        return dir_zone_of(std::move(d), key.dev, t, cached);
    }

    // Membership from the inode: known roots and departed files, then what was learnt of
    // this very file (by handle), then its ancestry. `certain` is false when no route to
    // the file's real ancestry worked: the caller refuses such a file.
    // `dir_cache` false: every directory is walked (answer_quickly: see there).
    ZoneLookup zone_of(int evfd, const InodeKey& key, const struct stat& st, const ZoneTables& t,
                       bool dir_cache = true) {
        ZoneLookup r;
        r.epoch = file_epoch(key).load();
        if ((r.zone = t.root_zone(key)) || (r.zone = departed_zone(key, evfd, t))) {
            r.certain = true;
            return r;
        }
        const std::uint64_t handle = handle_of(evfd);
        if ((r.zone = cached_zone(key, handle))) {
            c_hits.fetch_add(1, std::memory_order_relaxed);
            r.certain = true;
            return r;
        }
        r.path = proc_fds.path(evfd);
        r.walked = true;
        std::optional<std::uint32_t> w;
        if (st.st_nlink == 0) {
            w = walk_deleted(r.path, key, t, dir_cache);
            // An empty file without a name holds nothing to protect: it is an O_TMPFILE
            // being created (overlayfs makes them in mounts no namespace shows).
            if (!w && st.st_size == 0) w = 0;
        } else {
            w = walk_file(r.path, key, t, dir_cache);
            if (!w) w = walk_reopened(evfd, key, t, r.path, dir_cache);
        }
        if (!w) {
            // A multiply linked zone file is still known from the index.
            if (st.st_nlink > 1) r.zone = indexed_zone(key, handle);
            r.certain = r.zone != 0;
            return r;
        }
        r.zone = *w;
        r.certain = true;
        // The link count must be read after r.epoch: `st` may be from before a link into a
        // zone whose notification was handled (index, epoch, ignore mark) before r.epoch was
        // read, and with one link the index was not asked, the epoch had not moved since,
        // and the ignore mark placed then stayed on a zone file ("fair attack: her own file
        // linked into the zone ..." let 4 late opens through in 9-12 of 60 runs). A link
        // made after this fstat moves the epoch after r.epoch was read, which decide() sees.
        nlink_t links = st.st_nlink;
        if (r.zone == 0 && links <= 1) {
            struct stat now {};
            if (::fstat(evfd, &now) == 0) links = now.st_nlink;
        }
        if (r.zone == 0 && (links > 1 || index_lost.load())) {
            // Another of its names may be in a zone: the index knows, without a scan. Or
            // events were lost: it may have been moved out unseen (see index_lost).
            r.zone = indexed_zone(key, handle);
            if (r.zone == 0 && index_incomplete.load(std::memory_order_acquire)) r.certain = false;
        }
        if (r.zone) cache_zone(key, handle, r.zone, r.epoch);
        return r;
    }

    // ---- answering ----------------------------------------------------------------

    // What every event of this enforcer carries about the task, the verdict and the inode.
    static cg_event make_raw(decltype(cg_event::kind) kind, const fan::TaskInfo& task, const fan::Verdict& v,
                             const InodeKey& key, std::int64_t mono_ns) {
        cg_event raw{};
        raw.abi_version = CG_ABI_VERSION;
        raw.kind = kind;
        raw.ts_ns = static_cast<std::uint64_t>(mono_ns);
        raw.pid = raw.tgid = task.tgid;
        raw.uid = task.fsuid;
        raw.gid = task.fsgid;
        raw.loginuid = task.loginuid;
        raw.zone_id = v.zone_id;
        raw.decision = v.decision;
        raw.rule = v.rule;
        raw.dev = kernel_dev(key.dev);
        raw.ino = key.ino;
        raw.exe_dev = task.exe.dev ? kernel_dev(task.exe.dev) : 0;
        raw.exe_ino = task.exe.ino;
        std::memcpy(raw.comm, task.comm, sizeof raw.comm);
        return raw;
    }

    void respond(int fd, bool allow) {
        fanotify_response resp{fd, allow ? static_cast<std::uint32_t>(FAN_ALLOW) : static_cast<std::uint32_t>(FAN_DENY)};
        if (::write(fan.get(), &resp, sizeof resp) != static_cast<ssize_t>(sizeof resp) && errno != ENOENT)
            c_errors.fetch_add(1, std::memory_order_relaxed);
        if (!allow) c_denied.fetch_add(1, std::memory_order_relaxed);
    }

    void add_ignore_mark(int evfd) {
        unsigned flags = FAN_MARK_ADD | FAN_MARK_EVICTABLE |
                         (ignore_new_api.load() ? FAN_MARK_IGNORE_SURV : (FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY));
        if (::fanotify_mark(fan.get(), flags, FAN_OPEN_PERM, evfd, nullptr) == 0) {
            c_ignores.fetch_add(1, std::memory_order_relaxed);
        } else if (errno == EINVAL && ignore_new_api.load()) {
            ignore_new_api.store(false);  // pre-6.0 kernel
        } else {
            c_errors.fetch_add(1, std::memory_order_relaxed);
        }
    }

    // Callers hold policy_mutex (shared or exclusive): `tables` only changes exclusively.
    std::shared_ptr<const ZoneTables> snapshot() const { return tables; }

    // Answer without asking /proc: deny zone files, allow the rest (no ignore mark).
    // "Outside every zone" comes from a walk of the tree as it is now, which a rename or
    // link not yet handled by the notify thread may contradict (a tree moved out of its
    // zone by someone not allowed in it stays in it, but only once its mover is judged).
    // The normal path drains the notify group first; this one must not wait that long,
    // but the notification of a rename is queued before rename() returns, so the events
    // that matter are the ones queued before the walk. It waits (at most max_catch_up)
    // until the notify thread has handled those, walks again if it handled any, and
    // refuses the open when the notify thread did not get that far in time.
    void answer_quickly(const Job& job) {
        c_timeouts.fetch_add(1, std::memory_order_relaxed);
        UniqueFd evfd(job.fd);
        std::shared_lock lk(policy_mutex);
        auto t = snapshot();
        struct stat st {};
        bool zone = false;
        if (t && ::fstat(evfd.get(), &st) == 0 && !S_ISDIR(st.st_mode)) {
            InodeKey key{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
            const std::uint64_t handled = notifications.load();
            // Without the directory cache: a walk sees a tree moved into a zone as it is,
            // even between the move and the queueing of its notification (see below).
            auto zl = zone_of(evfd.get(), key, st, *t, false);
            zone = zl.zone != 0 || !zl.certain;
            if (!zone && notify_fd) {
                lk.unlock();  // the notify thread may need policy_mutex exclusively
                const bool caught_up = catch_up();
                lk.lock();
                t = snapshot();
                if (!caught_up) {
                    c_quick_refused.fetch_add(1, std::memory_order_relaxed);
                    zone = true;
                } else if (t && notifications.load() != handled) {
                    zl = zone_of(evfd.get(), key, st, *t, false);
                    zone = zl.zone != 0 || !zl.certain;
                }
            }
        }
        if (zone) c_overload_refused.fetch_add(1, std::memory_order_relaxed);
        respond(evfd.get(), !zone);
    }

    // How many notifications will have been handled once every one queued before this
    // call is: those read from the group so far plus those still queued (FIONREAD counts
    // FAN_EVENT_METADATA_LEN per queued event). A read under way (odd notify_reading) has
    // taken events off the queue without counting them yet: tried again once it ends, until
    // `deadline`. Under a creator the notify thread reads back to back, and one read of a
    // full buffer outlasted 64 yields: a fixed number of tries then gave up, refusing an
    // outside open (answer_quickly()) that a wait of well under a millisecond would have
    // let through. nullopt: past the deadline, or poll/FIONREAD failed.
    std::optional<std::uint64_t> notify_horizon(std::chrono::steady_clock::time_point deadline) {
        for (;;) {
            const std::uint64_t s = notify_reading.load();
            if (!(s & 1)) {
                // poll() tells an empty queue in O(1); FIONREAD walks the queue (at most
                // fs.fanotify.max_queued_events entries).
                pollfd p{notify_fd.get(), POLLIN, 0};
                int queued = 0;
                if (::poll(&p, 1, 0) < 0) return std::nullopt;
                if ((p.revents & POLLIN) && (::ioctl(notify_fd.get(), FIONREAD, &queued) != 0 || queued < 0))
                    return std::nullopt;
                const std::uint64_t read = notify_read.load();
                if (notify_reading.load() == s) return read + static_cast<std::uint64_t>(queued) / FAN_EVENT_METADATA_LEN;
            }
            if (stopping.load() || std::chrono::steady_clock::now() >= deadline) return std::nullopt;
            std::this_thread::yield();
        }
    }

    // Waits (at most max_catch_up) until every notification queued before the call is
    // handled. False: it was not.
    bool catch_up() {
        const auto deadline = std::chrono::steady_clock::now() + max_catch_up;
        const auto horizon = notify_horizon(deadline);
        if (!horizon) return false;
        if (notifications.load() >= *horizon) return true;
        c_quick_waits.fetch_add(1, std::memory_order_relaxed);
        return wait_handled(*horizon, deadline);
    }

    // Waits (until `deadline`, or until stopping) until `horizon` notifications are
    // handled. False: they were not.
    bool wait_handled(std::uint64_t horizon, std::chrono::steady_clock::time_point deadline) {
        std::unique_lock l(catch_up_mutex);
        catch_up_waiters.fetch_add(1);
        const bool done = catch_up_cv.wait_until(l, deadline, [&] {
            return notifications.load() >= horizon || stopping.load();
        });
        catch_up_waiters.fetch_sub(1);
        return done && notifications.load() >= horizon;
    }

    // An event decided "outside every zone" from a fresh walk, waiting for the notify
    // group to be drained before it is answered (see handle()).
    struct Deferred {
        UniqueFd evfd;
        Job job;
        struct stat st {};
        InodeKey key;
        ZoneLookup zl;
        std::uint64_t zones_before = 0;  // zone_epoch before the lookup
    };

    // Decides one event, except one that walked outside every zone: a rename out of a zone
    // just before this open may still wait in the notify group, or be in the notify
    // thread's hands, and must be judged first (so the file keeps its zone under its new
    // name). Such an event is returned, to be answered by conclude() after a drain: the
    // worker answers the rest of its batch first (zone files, cached answers: nothing to
    // wait for), so one opener's burst of new files does not hold up another's open behind
    // the drains it needs, and one drain serves every such event of the batch.
    std::optional<Deferred> handle(const Job& job, fan::TaskReader& reader) {
        UniqueFd evfd(job.fd);
        std::shared_lock lk(policy_mutex);
        auto t = snapshot();
        struct stat st {};
        if (!t || ::fstat(evfd.get(), &st) != 0) {
            if (t) c_errors.fetch_add(1, std::memory_order_relaxed);
            respond(evfd.get(), true);
            return std::nullopt;
        }
        if (S_ISDIR(st.st_mode)) {
            respond(evfd.get(), true);
            return std::nullopt;
        }
        InodeKey key{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
        const std::uint64_t zones_before = zone_epoch.load();
        ZoneLookup zl = zone_of(evfd.get(), key, st, *t);
        if (zl.zone == 0 && zl.walked && notify_fd) return Deferred{std::move(evfd), job, st, key, std::move(zl), zones_before};
        decide(std::move(evfd), job, key, st, std::move(zl), *t, lk, reader);
        return std::nullopt;
    }

    // Answers a deferred event once the notify group was drained after its lookup. Looked
    // up again only when what was handled can have changed this file's zone (see zone_epoch).
    // The epochs are read under the lock: an apply() between their reading and the lock
    // (it moves zone_epoch and flushes the ignore marks under the lock) would leave an
    // answer of the old policy's lookup, and its ignore mark, on a file of the new one.
    void conclude(Deferred d, fan::TaskReader& reader) {
        std::shared_lock lk(policy_mutex);
        const bool moved = zone_epoch.load() != d.zones_before || file_epoch(d.key).load() != d.zl.epoch;
        auto t = snapshot();
        if (!t) {
            respond(d.evfd.get(), true);
            return;
        }
        if (moved) d.zl = zone_of(d.evfd.get(), d.key, d.st, *t);
        decide(std::move(d.evfd), d.job, d.key, d.st, std::move(d.zl), *t, lk, reader);
    }

    // The answer to an open whose zone is known (`zl`); `lk` holds policy_mutex shared,
    // `t` is its snapshot.
    void decide(UniqueFd evfd, const Job& job, const InodeKey& key, const struct stat& st, ZoneLookup zl,
                const ZoneTables& t, std::shared_lock<std::shared_mutex>& lk, fan::TaskReader& reader) {
        if (!zl.certain) {
            refuse_unknown(evfd.get(), job, key, std::move(zl.path), t, reader);
            return;
        }
        if (zl.zone == 0) {
            const FsMark* m = mark_for(key.dev);
            // Before the answer, so the opener's next open already skips us; under the
            // shared lock, so a rename into a zone flushes after this.
            // Not on a file without a name: linked into a zone later, it must reach us.
            if (zl.certain && m && m->notify && st.st_nlink > 0) {
                marked.set(InodeKeyHash{}(key));
                add_ignore_mark(evfd.get());
                // A file's zone changed while this was decided (invalidate_file() does not
                // wait for decisions): the mark may stand on a file of a zone now.
                if (file_epoch(key).load() != zl.epoch) remove_ignore_mark(evfd.get());
            }
            respond(evfd.get(), true);
            return;
        }

        thread_local fan::TaskInfo task;
        if (auto r = reader.read(job.pid, task); !r) {
            // A zone file and no decision possible: deny (the task may be gone anyway).
            c_errors.fetch_add(1, std::memory_order_relaxed);
            respond(evfd.get(), false);
            return;
        }
        if (!report_tid) task.tid = task.tgid;
        if (task.tgid == self_tgid) {
            // custguardd itself: the [watch] watcher compares files written outside zones
            // with zone files. It holds this enforcer anyway; its reads are not accesses.
            respond(evfd.get(), true);
            return;
        }
        fan::Subject subject{task.fsuid, task.gids, task.exe,
                             static_cast<std::uint64_t>(job.real_ns / 1'000'000'000)};
        fan::Verdict v = t.decide(zl.zone, subject);
        // Groups rank before grants; reading them costs, so only when they could matter.
        if ((v.rule == CG_RULE_NOT_ALLOWED || v.rule == CG_RULE_GRANT) && t.zone_has_groups(zl.zone)) {
            if (auto r = reader.read_groups(job.pid, task); !r) {
                c_errors.fetch_add(1, std::memory_order_relaxed);
                respond(evfd.get(), false);
                return;
            }
            subject.gids = task.gids;
            v = t.decide(zl.zone, subject);
        }
        // allow_programs vouches for a program only while it runs its own code.
        if (v.decision == CG_DECISION_ALLOW && t.zone_requires_programs(zl.zone) &&
            (subject.untrusted = reader.program_trust(job.pid, task.tgid)))
            v = t.decide(zl.zone, subject);
        const std::string_view comm(task.comm, ::strnlen(task.comm, sizeof task.comm));
        // allow_clients: asked only here, for opens in such zones that everything else allows.
        std::optional<RemoteClients> remote;
        if (v.decision == CG_DECISION_ALLOW && t.zone_checks_clients(zl.zone)) {
            remote = options.remote_clients ? options.remote_clients(task.tgid, comm) : RemoteClients{};
            if (remote) {
                subject.remote = true;
                subject.clients = remote->addresses;
                v = t.decide(zl.zone, subject);
            }
        }
        AccessEvent ev;
        if (v.record) {
            ev.sensor = Sensor::fanotify;
            ev.realtime_ns = job.real_ns;
            ev.raw = make_raw(CG_EV_OPEN, task, v, key, job.mono_ns);
            if (report_tid) ev.raw.pid = static_cast<std::uint32_t>(job.pid);
            if (v.decision == CG_DECISION_DENY && options.admit_denial) ev.admission = options.admit_denial(ev);
        }
        // A denial only counted into its `repeated` record is not described (admit_denial).
        const bool describe = v.record && ev.admission != Admission::counted;
        std::uint32_t flags = describe ? reader.open_flags(job.pid) : 0;
        std::string client;
        if (remote) {
            // The record names an address that was refused (in its cool-down, or not in
            // allow_clients), else the first one served.
            const std::uint64_t now = subject.now;
            auto refused = [&](const auto& a) {
                return t.client_revoked(zl.zone, a, now) ||
                       (t.zone_requires_clients(zl.zone) && !t.client_allowed(zl.zone, a, now));
            };
            auto named = std::find_if(remote->addresses.begin(), remote->addresses.end(), refused);
            if (named == remote->addresses.end()) named = remote->addresses.begin();
            if (named != remote->addresses.end()) client = policy::to_string(*named);
        } else if (describe && options.pending_client) {
            client = options.pending_client(task.tgid, comm);
        }
        respond(evfd.get(), v.decision != CG_DECISION_DENY);
        if (!v.record) return;
        // Still under the lock: naming the file may reopen it on a marked filesystem.
        std::string path = !zl.path.empty() ? std::move(zl.path) : describe ? record_path(evfd.get(), key, t) : "";
        lk.unlock();

        cg_event& raw = ev.raw;
        raw.open_flags = flags;
        ev.path = std::move(path);
        std::size_t n = std::min(ev.path.size(), sizeof raw.path - 1);
        std::memcpy(raw.path, ev.path.data(), n);
        raw.path[n] = '\0';
        ev.client = std::move(client);
        if (handler) {
            handler(std::move(ev));
            c_events.fetch_add(1, std::memory_order_relaxed);
        }
    }

    // A file on a marked filesystem whose zone could not be established (reached only
    // through a route the daemon cannot follow): refused and recorded, never let through.
    void refuse_unknown(int evfd, const Job& job, const InodeKey& key, std::string path, const ZoneTables& t,
                        fan::TaskReader& reader) {
        thread_local fan::TaskInfo task;
        const bool known = reader.read(job.pid, task).has_value();
        if (!known) task = {};
        if (!report_tid) task.tid = task.tgid;
        respond(evfd, false);
        fan::Verdict v{0, CG_DECISION_DENY, CG_RULE_ZONE_UNKNOWN, true};
        AccessEvent ev;
        ev.sensor = Sensor::fanotify;
        ev.realtime_ns = job.real_ns;
        ev.raw = make_raw(CG_EV_OPEN, task, v, key, job.mono_ns);
        ev.raw.pid = static_cast<std::uint32_t>(job.pid);
        if (!known) ev.raw.tgid = static_cast<std::uint32_t>(job.pid);
        ev.path = path.empty() ? record_path(evfd, key, t) : std::move(path);
        const std::size_t n = std::min(ev.path.size(), sizeof ev.raw.path - 1);
        std::memcpy(ev.raw.path, ev.path.data(), n);
        ev.raw.path[n] = '\0';
        if (handler) {
            handler(std::move(ev));
            c_events.fetch_add(1, std::memory_order_relaxed);
        }
    }

    // ---- threads ------------------------------------------------------------------

    // Every worker reads the group itself (no hand-off between threads: a context switch
    // costs more than a decision), a few events at a time so the kernel spreads them.
    void worker_loop() {
        fan::TaskReader reader(128, options.exec_flags, options.threads);
        constexpr std::size_t batch = 16;
        alignas(fanotify_event_metadata) char buf[batch * sizeof(fanotify_event_metadata)];
        std::vector<Deferred> deferred;
        deferred.reserve(batch);
        // EPOLLEXCLUSIVE: an event wakes one idle worker, not all of them.
        UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
        epoll_event in{};
        in.events = EPOLLIN | EPOLLEXCLUSIVE;
        in.data.fd = fan.get();
        epoll_event st{};
        st.events = EPOLLIN;
        st.data.fd = stop_efd.get();
        if (!ep || ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, fan.get(), &in) != 0 ||
            ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, stop_efd.get(), &st) != 0) {
            c_errors.fetch_add(1);
            ep.reset();
        }
        pollfd fds[2] = {{fan.get(), POLLIN, 0}, {stop_efd.get(), POLLIN, 0}};
        while (!stopping.load()) {
            bool stop = false;
            if (ep) {
                epoll_event got[2];
                // Parked opens: wake when one is due, to answer it if the lane did not (take_overdue()).
                int n = ::epoll_wait(ep.get(), got, 2, park_timeout_ms());
                if (n < 0 && errno != EINTR) {
                    c_errors.fetch_add(1);
                    break;
                }
                for (int i = 0; i < n; ++i) stop |= got[i].data.fd == stop_efd.get();
            } else {
                if (::poll(fds, 2, park_timeout_ms()) < 0) {
                    if (errno == EINTR) continue;
                    c_errors.fetch_add(1);
                    break;
                }
                stop = fds[1].revents != 0;
            }
            if (stop) break;
            for (;;) {
                ssize_t len = ::read(fan.get(), buf, sizeof buf);
                if (len <= 0) break;
                std::int64_t mono = clock_ns(CLOCK_MONOTONIC), real = clock_ns(CLOCK_REALTIME);
                auto now = std::chrono::steady_clock::now();
                auto* md = reinterpret_cast<fanotify_event_metadata*>(buf);
                std::size_t n = 0;
                ssize_t rest = len;  // FAN_EVENT_NEXT consumes its length argument
                for (auto* m = md; FAN_EVENT_OK(m, rest); m = FAN_EVENT_NEXT(m, rest)) ++n;
                pending.fetch_add(n);
                bool full = static_cast<std::size_t>(len) + sizeof(fanotify_event_metadata) > sizeof buf;
                // Events that wait for the notify drain go last (see handle()).
                deferred.clear();
                for (; FAN_EVENT_OK(md, len); md = FAN_EVENT_NEXT(md, len)) {
                    Taken r = process(md, Job{md->fd, md->pid, now, mono, real}, reader, deferred);
                    if (r == Taken::answered) pending.fetch_sub(1);
                }
                conclude_drained(deferred, reader, [&] { pending.fetch_sub(1); });
                if (lane_waiting.load()) {
                    std::lock_guard l(lane_mutex);
                    gate_cv.notify_one();
                }
                take_overdue(reader);
                if (!full) break;  // drained when we read: wait again rather than read EAGAIN
            }
            take_overdue(reader);
        }
    }

    enum class Taken {
        answered,  // answered now
        deferred,  // in `deferred`, to be answered after a drain of the notify group (see handle())
        parked,    // the lane answers it (see park())
    };

    // Answers one event read from the group, or sets it aside.
    Taken process(const fanotify_event_metadata* md, const Job& job, fan::TaskReader& reader,
                  std::vector<Deferred>& deferred) {
        if (md->vers != FANOTIFY_METADATA_VERSION) {
            c_errors.fetch_add(1);
            if (md->fd >= 0) ::close(md->fd);
            return Taken::answered;
        }
        if (md->mask & FAN_Q_OVERFLOW) c_dropped.fetch_add(1);
        if (md->fd < 0) return Taken::answered;
        if (!(md->mask & FAN_OPEN_PERM)) {
            ::close(md->fd);
            return Taken::answered;
        }
        c_perm.fetch_add(1, std::memory_order_relaxed);
        if (pending.load() > options.max_queue ||
            std::chrono::steady_clock::now() - job.read_at > options.decision_timeout) {
            answer_quickly(job);
            return Taken::answered;
        }
        if (charge(owner_of(job.pid)) && park(job)) return Taken::parked;
        if (auto d = handle(job, reader)) {
            deferred.push_back(std::move(*d));
            return Taken::deferred;
        }
        return Taken::answered;
    }

    // ---- fair share ---------------------------------------------------------------
    //
    // Each permission event and notification is work for the enforcer, and a user creating,
    // linking and renaming files in a loop made so much that everyone else's opens waited
    // behind it (5x as long; bench/rescan). The work is counted per user (UserShares). An
    // open of a user making more than twice the work of the least busy other active user
    // and at least their mean (UserShares), read while the workers have other opens in
    // hand, is parked: the lane thread answers it, in order and by the same decision, at
    // nice 19 and only once the workers have nothing else in hand. So the heavy user's opens wait for everyone else's, and its
    // loop slows down, instead of everyone waiting for it. Parked opens wait at most about
    // max_park: then a worker answers those still parked, and raises the lane's priority
    // for the one it has in hand (programs of any user keeping the CPUs busy would
    // otherwise hold them at nice 19).

    // The owner of process (or thread) `pid`: the owner of /proc/PID, its effective uid
    // (a process that is not dumpable too: the kernel gives root only the entries in that
    // directory, such as fd/). Kept a second per slot: a reused pid or a changed uid in
    // that second only misplaces a count.
    std::uint32_t owner_of(pid_t pid) {
        const std::int64_t now = clock_ns(CLOCK_MONOTONIC_COARSE);
        OwnerSlot& slot = owners[static_cast<std::uint32_t>(pid) % owners.size()];
        const std::uint64_t pu = slot.pid_uid.load(std::memory_order_relaxed);
        if (pu >> 32 == static_cast<std::uint32_t>(pid) && now - slot.at_ns.load(std::memory_order_relaxed) < 1'000'000'000)
            return static_cast<std::uint32_t>(pu);
        char path[32];
        std::snprintf(path, sizeof path, "/proc/%d", static_cast<int>(pid));
        struct stat st {};
        if (::stat(path, &st) != 0) return fan::UserShares::no_user;
        slot.pid_uid.store(std::uint64_t{static_cast<std::uint32_t>(pid)} << 32 | st.st_uid, std::memory_order_relaxed);
        slot.at_ns.store(now, std::memory_order_relaxed);
        return st.st_uid;
    }

    // Counts one event of `uid`; true when that user is heavy now.
    bool charge(std::uint32_t uid) {
        if (uid == fan::UserShares::no_user) return false;
        const auto now = static_cast<std::uint64_t>(clock_ns(CLOCK_MONOTONIC_COARSE));
        std::lock_guard l(shares_mutex);
        return shares.charge(uid, now);
    }

    // Hands an open of a heavy user to the lane when the workers have others' opens in
    // hand (`pending` counts this one, and the parked); false: the caller answers it.
    bool park(const Job& job) {
        {
            std::lock_guard l(lane_mutex);
            if (pending.load() <= parked_n.load() + 1 || parked.size() >= max_parked) return false;
            parked.push_back(job);
            parked_n.fetch_add(1);
        }
        lane_cv.notify_one();
        return true;
    }

    void lane_loop() {
        lane_tid.store(::gettid());
        fan::TaskReader reader(128, options.exec_flags, options.threads);
        std::unique_lock l(lane_mutex);
        for (;;) {
            lane_cv.wait(l, [&] { return !parked.empty() || lane_stop; });
            if (parked.empty()) return;
            // Events read by the workers and not answered yet: `pending` less the parked.
            auto idle = [&] { return lane_stop || pending.load() <= parked_n.load(); };
            if (!idle()) {
                lane_waiting.store(true);
                gate_cv.wait_until(l, parked.front().read_at + max_park, idle);
                lane_waiting.store(false);
            }
            if (parked.empty()) continue;  // the workers took them (take_overdue())
            const Job job = parked.front();
            parked.pop_front();
            lane_job.store(ticks(job.read_at));
            l.unlock();
            answer_parked(job, reader);
            lane_job.store(0);
            // Back to nice 19 if a worker raised it (checked, not remembered: a raise may
            // land after the flag was cleared; it then lasts one open more).
            lane_raised.store(false);
            if (own_nice() != lane_nice) renice(lane_nice);
            l.lock();
        }
    }

    // Run by the lane (the workers take overdue opens as a batch: take_overdue()).
    void answer_parked(const Job& job, fan::TaskReader& reader) {
        if (auto d = handle(job, reader)) {
            // As a worker's deferred event, after the notify group was drained; but by
            // waiting for the notify thread, not by holding notify_mutex itself.
            if (!catch_up()) {
                // The lane drains at the workers' nice (back to 19 after this open): at 19 it
                // would hold notify_mutex, so the notify thread and every worker's drain,
                // behind the busy programs of any user.
                lane_raised.store(true);
                (void)renice(options.worker_nice);  // refused: it drains at 19
                drain_notifications();
            }
            conclude(std::move(*d), reader);
        }
        parked_answered();
    }

    void parked_answered() {
        c_parked.fetch_add(1, std::memory_order_relaxed);
        parked_n.fetch_sub(1);
        pending.fetch_sub(1);
    }

    // A Job's read_at as lane_job holds it (an atomic needs an integer), and back.
    static std::int64_t ticks(std::chrono::steady_clock::time_point t) { return t.time_since_epoch().count(); }
    static std::chrono::steady_clock::time_point from_ticks(std::int64_t n) {
        return std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(n));
    }

    // How long a worker may sleep before a parked open is due (take_overdue()); -1: none.
    int park_timeout_ms() {
        if (parked_n.load() == 0) return -1;
        using namespace std::chrono;
        auto oldest = from_ticks(lane_job.load());
        {
            std::lock_guard l(lane_mutex);
            if (!parked.empty() && (lane_job.load() == 0 || parked.front().read_at < oldest))
                oldest = parked.front().read_at;
        }
        const auto left = duration_cast<milliseconds>(oldest + max_park - steady_clock::now()).count();
        return static_cast<int>(std::clamp<std::int64_t>(left + 1, 1, max_park.count()));
    }

    // Raises the lane to the caller's nice for the open it answers now (it goes back to 19
    // after it); false when it answers none or was raised already. Refused: it stays at 19.
    // Not from the lane itself (its fallback drain reaching invalidate()): that would only
    // mark it raised, at 19, and keep the workers from raising it for this open.
    bool raise_lane() {
        if (::gettid() == lane_tid.load() || !lane_job.load() || lane_raised.exchange(true)) return false;
        ::setpriority(PRIO_PROCESS, static_cast<id_t>(lane_tid.load()), own_nice());
        return true;
    }

    // Takes policy_mutex exclusively. The lane holds it shared while it answers an open,
    // at nice 19: a caller that would wait raises it first, or programs keeping the CPUs
    // busy would hold the notify thread (and apply()) behind it for as long as they like.
    std::unique_lock<std::shared_mutex> lock_policy() {
        std::unique_lock lk(policy_mutex, std::try_to_lock);
        if (!lk.owns_lock()) {
            raise_lane();
            lk.lock();
        }
        return lk;
    }

    // Run by the workers: answers the parked opens that waited max_park, and raises the
    // lane to worker_nice while it holds one that did (see "fair share").
    void take_overdue(fan::TaskReader& reader) {
        if (parked_n.load() == 0) return;
        const auto now = std::chrono::steady_clock::now();
        const std::int64_t held = lane_job.load();
        if (held && now - from_ticks(held) >= max_park && raise_lane())
            c_park_late.fetch_add(1, std::memory_order_relaxed);
        // As a batch of the worker's own: every overdue open looked up, then one drain of the
        // notify group for those outside every zone, by the worker itself. One catch_up()
        // each (answer_parked()) made a worker wait for the notify thread once per open,
        // for as long as a creator kept it behind, while everyone else's opens queued.
        std::vector<Deferred> later;
        for (;;) {
            std::unique_lock l(lane_mutex);
            if (parked.empty() || std::chrono::steady_clock::now() - parked.front().read_at < max_park) break;
            const Job job = parked.front();
            parked.pop_front();
            l.unlock();
            c_park_late.fetch_add(1, std::memory_order_relaxed);
            if (auto d = handle(job, reader))
                later.push_back(std::move(*d));
            else
                parked_answered();
        }
        conclude_drained(later, reader, [&] { parked_answered(); });
    }

    // Answers the opens a worker set aside for the notify drain (see handle()): one drain
    // for the batch, then each concluded; `done` after each, for the caller's counts.
    template <class Done>
    void conclude_drained(std::vector<Deferred>& batch, fan::TaskReader& reader, Done done) {
        if (batch.empty()) return;
        drain_notifications();
        for (auto& d : batch) {
            conclude(std::move(d), reader);
            done();
        }
        batch.clear();
    }

    // The mark of the filesystem an event's handle is on, by its fsid.
    const FsMark* mark_of(const fanotify_event_info_fid* fid) const {
        const FsMark* m = nullptr;
        for (const auto& [dev, mk] : marks)
            if (std::memcmp(&mk.fsid, &fid->fsid, sizeof mk.fsid) == 0) m = &mk;
        return m;
    }

    // What an event's handle names (the directory of a DFID record, or the file itself),
    // opened on its filesystem's whole mount; no fd when it is not ours or is gone.
    UniqueFd open_fid(const fanotify_event_info_fid* fid) {
        const FsMark* m = mark_of(fid);
        if (!m) return UniqueFd();
        auto* fh = reinterpret_cast<file_handle*>(const_cast<unsigned char*>(fid->handle));
        return UniqueFd(::open_by_handle_at(m->whole.get(), fh, O_PATH | O_CLOEXEC));
    }

    // The zone of the directory a notification names, from dir_cache (by its handle) or a
    // walk. Events are handled in queue order and every directory rename clears the cache,
    // so an answer from it is one a walk gave after the last rename before it was handled
    // (as a walk now would: the workers' entries come from the tree as it is, like ours).
    // Callers hold notify_mutex and policy_mutex (shared).
    std::optional<std::uint32_t> dir_zone(const fanotify_event_info_fid* fid, const ZoneTables& t) {
        const FsMark* m = mark_of(fid);
        if (!m) return std::nullopt;
        const InodeKey dk{m->dev, hash_handle(*reinterpret_cast<const file_handle*>(fid->handle))};
        std::uint64_t epoch = 0;
        if (auto z = cached_dir(dk, epoch)) return z;
        UniqueFd d = open_fid(fid);
        if (!d) return std::nullopt;
        auto z = walk_dir(std::move(d), m->dev, t);
        if (z && m->notify) cache_dir(dk, *z, epoch);
        return z;
    }

    void invalidate(bool flush_ignores) {
        auto lk = lock_policy();
        {
            std::lock_guard ck(cache_mutex);
            zone_cache.clear();
        }
        if (flush_ignores) {
            ::fanotify_mark(fan.get(), FAN_MARK_FLUSH, 0, AT_FDCWD, nullptr);
            marked.clear();
            c_flushes.fetch_add(1);
        }
        zone_epoch.fetch_add(1);
    }

    // The ignore mark of file `fd` (O_PATH or open) goes; when that fails for another
    // reason than there being none, every ignore mark goes.
    void remove_ignore_mark(int fd) {
        const auto n = proc_fds.name(fd);
        const unsigned flags = FAN_MARK_REMOVE | (ignore_new_api.load() ? FAN_MARK_IGNORE : FAN_MARK_IGNORED_MASK);
        if (::fanotify_mark(fan.get(), flags, FAN_OPEN_PERM, n.dir, n.name) != 0 && errno != ENOENT) {
            ::fanotify_mark(fan.get(), FAN_MARK_FLUSH, 0, AT_FDCWD, nullptr);  // cannot tell: drop them all
            c_flushes.fetch_add(1);
        }
    }

    // invalidate() for one file whose zone changed (`fd`, O_PATH), called after the index
    // has its new zone: its cached zone and its ignore mark go; every other file keeps
    // both. It does not wait for decisions in progress (a creator linking its new files
    // into a zone made this hundreds of times a second, and each exclusive lock stalled
    // every worker). Instead file_epoch moves first: a decision that looked the zone up
    // before (from the old index) and places its mark or cache entry after the removal
    // sees the new epoch afterwards and takes them back (handle(), cache_zone()).
    void invalidate_file(const InodeKey& key, int fd) {
        file_epoch(key).fetch_add(1);
        {
            std::lock_guard ck(cache_mutex);
            zone_cache.erase(key);
        }
        if (marked.test(InodeKeyHash{}(key))) remove_ignore_mark(fd);
    }

    // Reads and handles whatever the notify group holds now.
    // Workers call it without holding policy_mutex (handling may take it exclusively).
    void drain_notifications() {
        std::lock_guard nl(notify_mutex);
        alignas(fanotify_event_metadata) static thread_local char buf[64 * 1024];
        for (;;) {
            ssize_t len = read_notifications(buf, sizeof buf);
            if (len <= 0) break;
            handle_notifications(buf, static_cast<std::size_t>(len));
            if (emptied(len, sizeof buf)) break;
        }
    }

    // Whether a read of `len` bytes into a buffer of `size` took every notification then
    // queued: the kernel's read stops early only at an empty queue or at a notification that
    // does not fit, and none is longer than max_notification_len. A worker's drain then
    // stops: another read would mostly return EAGAIN (a system call per drain for nothing),
    // and what was queued after its first read came after the walks it drains for (the
    // notify thread handles it). The notify thread reads on instead: under a creator the
    // queue has refilled by then, and a poll() before each read would cost more.
    static bool emptied(ssize_t len, std::size_t size) {
        return static_cast<std::size_t>(len) + max_notification_len <= size;
    }

    // One read of the notify group, its notifications counted in notify_read before they
    // are handled (see notify_horizon()). Callers hold notify_mutex.
    ssize_t read_notifications(char* buf, std::size_t size) {
        notify_reading.fetch_add(1);  // odd: events may be off the queue and not counted yet
        const ssize_t len = ::read(notify_fd.get(), buf, size);
        std::uint64_t n = 0;
        if (len > 0)
            for (std::size_t off = 0, l = 0; (l = notification_len(buf, static_cast<std::size_t>(len), off)); off += l) ++n;
        notify_read.fetch_add(n);
        notify_reading.fetch_add(1);
        return len;
    }

    void handle_notifications(const char* buf, std::size_t len) {
        // Events with names are padded to 4 bytes only: copy each to an aligned buffer
        // before reading its 64-bit mask.
        alignas(fanotify_event_metadata) char ev[max_notification_len];
        for (std::size_t off = 0, ev_len = 0; (ev_len = notification_len(buf, len, off)); off += ev_len) {
            fanotify_event_metadata md;
            std::memcpy(&md, buf + off, sizeof md);
            if (md.fd >= 0) ::close(md.fd);
            if (ev_len <= sizeof ev) {
                std::memcpy(ev, buf + off, ev_len);
                handle_notification(reinterpret_cast<const fanotify_event_metadata*>(ev));
            } else {
                invalidate(true);  // cannot happen (names are short): be safe
            }
            notifications.fetch_add(1);
        }
        // Overload answers waiting for these (catch_up()). notifications and
        // catch_up_waiters are sequentially consistent: a waiter that counted itself after
        // this load saw the new count before it slept.
        if (catch_up_waiters.load()) {
            std::lock_guard l(catch_up_mutex);
            catch_up_cv.notify_all();
        }
    }

    void notify_loop() {
        alignas(fanotify_event_metadata) char buf[64 * 1024];
        pollfd fds[2] = {{notify_fd.get(), POLLIN, 0}, {stop_efd.get(), POLLIN, 0}};
        while (!stopping.load()) {
            if (::poll(fds, 2, -1) < 0) {
                if (errno == EINTR) continue;
                break;
            }
            if (fds[1].revents) break;
            // One read at a time under the lock: a worker that must see the queue drained
            // waits for one batch, not for as long as a creator keeps it full.
            for (;;) {
                std::lock_guard nl(notify_mutex);
                ssize_t len = read_notifications(buf, sizeof buf);
                if (len <= 0) break;
                handle_notifications(buf, static_cast<std::size_t>(len));
            }
        }
    }

    void handle_notification(const fanotify_event_metadata* md) {
        if (md->pid > 0) charge(owner_of(md->pid));  // the work it makes counts toward its user's share
        if (md->mask & FAN_Q_OVERFLOW) {
            // We do not know what moved or was made: start over, the index with a rescan
            // (incomplete until it ends).
            c_overflows.fetch_add(1, std::memory_order_relaxed);
            forget_dirs();
            {
                std::lock_guard il(index_mutex);
                index_rebuild = index_overflowed = index_lost_events = true;
                index_lost.store(true);
                update_incomplete_locked();
            }
            index_cv.notify_one();
            invalidate(true);
            return;
        }
        const fanotify_event_info_fid* dfid = nullptr;
        const fanotify_event_info_fid* old_dfid = nullptr;
        const fanotify_event_info_fid* new_dfid = nullptr;
        const fanotify_event_info_fid* target = nullptr;  // the file itself (TARGET_FID)
        const char* p = reinterpret_cast<const char*>(md) + md->metadata_len;
        const char* end = reinterpret_cast<const char*>(md) + md->event_len;
        while (p + sizeof(fanotify_event_info_header) <= end) {
            auto* hdr = reinterpret_cast<const fanotify_event_info_header*>(p);
            if (hdr->len == 0) break;
            auto* fid = reinterpret_cast<const fanotify_event_info_fid*>(p);
            switch (hdr->info_type) {
            case FAN_EVENT_INFO_TYPE_DFID_NAME: dfid = fid; break;
            case FAN_EVENT_INFO_TYPE_OLD_DFID_NAME: old_dfid = fid; break;
            case FAN_EVENT_INFO_TYPE_NEW_DFID_NAME: new_dfid = fid; break;
            case FAN_EVENT_INFO_TYPE_FID: target = fid; break;
            default: break;
            }
            p += hdr->len;
        }
        std::shared_ptr<const ZoneTables> t;
        std::optional<std::uint32_t> zsrc, zdst;
        std::optional<Departure> left;
        std::optional<NamedFile> moved;  // a file (not a tree) that changed zones
        {
            std::shared_lock lk(policy_mutex);
            t = snapshot();
            if (!t) return;
            if ((md->mask & FAN_RENAME) && old_dfid && new_dfid) {
                // Any directory below may be elsewhere now. Forgotten again once the mover
                // is judged: a walk in between did not see the tree kept in its zone.
                if (md->mask & FAN_ONDIR) forget_dirs();
                zsrc = dir_zone(old_dfid, *t);
                zdst = dir_zone(new_dfid, *t);
                if (zsrc && *zsrc != 0 && (!zdst || *zdst != *zsrc))
                    left = left_zone(md, old_dfid, new_dfid, target, *zsrc, *t);
                if (zsrc && zdst && *zsrc != *zdst) moved = reindex(new_dfid, target, *zdst, left && left->kept, *t);
                if (md->mask & FAN_ONDIR) forget_dirs();
            } else if ((md->mask & FAN_CREATE) && !(md->mask & FAN_ONDIR) && dfid) {
                zdst = dir_zone(dfid, *t);
                if (zdst && *zdst == 0) {
                    // A new name outside every zone: a new file, or a hard link of a zone
                    // file (see linked_out()).
                    NamedFile f;
                    left = linked_out(md, dfid, target, *t, f);
                    if (!left) return;
                    lk.unlock();
                    // Kept in its zone: an outside answer given since the link (its epoch
                    // unmoved) must look again, and an ignore mark placed meanwhile must go.
                    if (left->kept) invalidate_file(f.key, f.fd.get());
                    if (handler) {
                        handler(std::move(left->event));
                        c_events.fetch_add(1, std::memory_order_relaxed);
                    }
                    return;
                }
                // A new name in a zone goes into the index. If it is a hard link of an
                // inode the index did not place in this zone, that inode may carry an
                // ignore mark from its other name.
                if (zdst) {
                    if (auto f = moved_file(dfid, target)) {
                        if (S_ISDIR(f->st.st_mode)) return;
                        const std::uint32_t was = index_set(f->key, f->handle, *zdst);
                        if (f->st.st_nlink <= 1 || was == *zdst) return;
                        lk.unlock();
                        invalidate_file(f->key, f->fd.get());
                        return;
                    }
                }
                lk.unlock();
                invalidate(true);
                return;
            } else {
                return;
            }
        }
        bool unknown = !zsrc || !zdst;
        // Kept in its zone: an ignore mark placed on it since the rename must go. A move
        // within one zone changes no inode's zone: nothing cached goes stale.
        const bool kept = left && left->kept;
        if (!unknown && moved)
            invalidate_file(moved->key, moved->fd.get());
        else if (unknown || *zsrc != *zdst)
            invalidate(unknown || kept || *zdst != 0);
        if (left && handler) {
            handler(std::move(left->event));
            c_events.fetch_add(1, std::memory_order_relaxed);
        }
    }

    struct NamedFile {
        struct stat st {};
        InodeKey key;
        std::uint64_t handle = 0;
        UniqueFd fd;  // O_PATH
    };

    // The index after a move from one zone to another or out of every zone (`zone` 0; `kept`:
    // the mover was not allowed, the inode keeps its zone). A file is updated at once; a
    // directory's tree goes to the indexer. Callers hold policy_mutex (shared).
    // Returns the file when it is one (not a tree): only its own caches go stale.
    std::optional<NamedFile> reindex(const fanotify_event_info_fid* to, const fanotify_event_info_fid* target,
                                     std::uint32_t zone, bool kept, const ZoneTables& t) {
        auto f = moved_file(to, target);
        if (!f) return std::nullopt;  // gone already
        if (S_ISDIR(f->st.st_mode)) {
            // A zone root is indexed with its zone, wherever it is.
            if (!t.root_zone(f->key) && (zone || !kept))
                queue_tree(f->key, std::move(f->fd), zone ? t.zone_name(zone) : std::string());
            return std::nullopt;
        }
        // A file with another link may still have a name in the zone it left.
        if (zone || (!kept && f->st.st_nlink <= 1)) index_set(f->key, f->handle, zone);
        return f;
    }

    // The file an event is about: by its own handle where the group reports one (it may
    // have moved on since), else by the name in its directory.
    std::optional<NamedFile> moved_file(const fanotify_event_info_fid* dir, const fanotify_event_info_fid* target) {
        NamedFile f;
        UniqueFd fd;
        if (target) {
            fd = open_fid(target);
            if (!fd || ::fstat(fd.get(), &f.st) != 0) return std::nullopt;
            // The one name_to_handle_at() gives (see linked_out()): no need to ask again.
            f.handle = hash_handle(*reinterpret_cast<const file_handle*>(target->handle));
        } else {
            UniqueFd d = open_fid(dir);
            if (!d || ::fstatat(d.get(), name_of(dir), &f.st, AT_SYMLINK_NOFOLLOW) != 0) return std::nullopt;
            f.handle = handle_of(d.get(), name_of(dir), 0);
            fd = UniqueFd(::openat(d.get(), name_of(dir), O_PATH | O_NOFOLLOW | O_CLOEXEC));
        }
        f.key = {static_cast<std::uint64_t>(f.st.st_dev), static_cast<std::uint64_t>(f.st.st_ino)};
        f.fd = std::move(fd);
        return f;
    }

    static const char* name_of(const fanotify_event_info_fid* fid) {
        auto* fh = reinterpret_cast<const file_handle*>(fid->handle);
        return reinterpret_cast<const char*>(fh->f_handle + fh->handle_bytes);
    }

    struct Departure {
        AccessEvent event;
        bool kept = false;  // the inode stays in its zone
    };

    // A file or tree moved from `zone` to another zone or out of every zone. fanotify has
    // no permission event for renames, so the mover is judged afterwards: an allowed (or
    // audit-zone) mover takes it out, as the BPF-LSM enforcer lets them; a mover not
    // allowed, or one gone before it could be read, leaves the inode in its zone. The
    // record says what happened: the move itself was not refused.
    std::optional<Departure> left_zone(const fanotify_event_metadata* md, const fanotify_event_info_fid* from,
                                       const fanotify_event_info_fid* to, const fanotify_event_info_fid* target,
                                       std::uint32_t zone, const ZoneTables& t) {
        auto f = moved_file(to, target);
        if (!f) return std::nullopt;  // deleted meanwhile (or moved on, on kernels before 5.17)
        if (t.root_zone(f->key)) return std::nullopt;  // a zone root keeps its zone wherever it goes
        return judge_departure(md, CG_EV_RENAME, name_of(from), name_of(to), *f, zone, t);
    }

    // A hard link of a zone file made outside every zone: fanotify cannot refuse it, as the
    // BPF-LSM enforcer does for a linker not allowed in the zone, so its linker is judged
    // as a mover is: one not allowed leaves the inode in its zone (departed), whatever
    // then happens to its zone name (unlinked, or another file renamed over it: no rename
    // of this inode is ever reported). Without it, a link out and an unlink of the zone
    // name moved a zone file out unseen ("overload attack: a zone file linked out ..." in
    // overload_attack_test.cpp). A new file (one link) costs an open by handle and an fstat.
    std::optional<Departure> linked_out(const fanotify_event_metadata* md, const fanotify_event_info_fid* dir,
                                        const fanotify_event_info_fid* target, const ZoneTables& t, NamedFile& f) {
        if (!target) return std::nullopt;  // kernels before 5.17: the multiply linked rule still holds
        // The file's handle as the event reports it is the one name_to_handle_at() gives
        // (both encode the inode alone), so it is hashed as the index's are.
        if (!zone_handles.test(hash_handle(*reinterpret_cast<const file_handle*>(target->handle)))) return std::nullopt;
        // Its link count says nothing here: the zone name may be unlinked already.
        auto named = moved_file(dir, target);
        if (!named || !S_ISREG(named->st.st_mode)) return std::nullopt;
        f = std::move(*named);
        std::uint32_t zone = t.root_zone(f.key);
        if (!zone) zone = indexed_zone(f.key, f.handle);
        if (!zone) return std::nullopt;
        return judge_departure(md, CG_EV_LINK, "", name_of(dir), f, zone, t);
    }

    // The mover (renamer or linker, md->pid) of file `f` out of `zone`, judged: an allowed
    // (or audit-zone) one takes it out; one not allowed, or gone before it could be read,
    // leaves the inode in its zone (departed). The record, "<from>\0<to>", says which.
    Departure judge_departure(const fanotify_event_metadata* md, decltype(cg_event::kind) kind, const char* from,
                              const char* to, const NamedFile& f, std::uint32_t zone, const ZoneTables& t) {
        const InodeKey key = f.key;
        fan::TaskInfo task;
        // Without the supplementary groups first, as decide() reads an opener: /proc/PID/status
        // was most of the cost of a creator's links out (a pidfd ioctl gives the rest).
        bool known = md->pid > 0 && notify_reader.read(md->pid, task).has_value();
        // smbd switches to each client's credentials only for the request and is root in
        // between: read after the move, its identity is not the mover's.
        if (known && std::string_view(task.comm, ::strnlen(task.comm, sizeof task.comm)) == "smbd") known = false;
        fan::Verdict v;
        if (known) {
            fan::Subject subject{task.fsuid, task.gids, task.exe, static_cast<std::uint64_t>(std::time(nullptr))};
            v = t.decide(zone, subject);
            // Groups rank before grants; read only when a %group row could decide.
            if ((v.rule == CG_RULE_NOT_ALLOWED || v.rule == CG_RULE_GRANT) && t.zone_has_groups(zone)) {
                known = notify_reader.read_groups(md->pid, task).has_value();
                subject.gids = task.gids;
                if (known) v = t.decide(zone, subject);
            }
        }
        if (!known) {
            task = {};  // an unknown mover: no credentials, executable or name
            task.tgid = static_cast<std::uint32_t>(md->pid);
            task.fsuid = task.fsgid = 4294967295u;
            v = {zone, CG_DECISION_DENY, CG_RULE_NOT_ALLOWED, true};
        }
        Departure d;
        d.kept = v.decision == CG_DECISION_DENY;
        if (d.kept) {
            bool sweep = false;
            {
                std::string fh = pack_handle(f.fd.get());
                std::lock_guard lk(departed_mutex);
                departed[key] = {t.zone_name(zone), f.handle, std::move(fh)};
                any_departed.store(true, std::memory_order_release);
                sweep = departed.size() >= departed_sweep_at;
                if (sweep) departed_sweep_at = std::numeric_limits<std::size_t>::max();  // until the sweep ends
            }
            if (sweep) {
                std::lock_guard il(index_mutex);
                departed_sweep = true;
                index_cv.notify_one();
            }
        }
        AccessEvent& ev = d.event;
        ev.sensor = Sensor::fanotify;
        ev.realtime_ns = clock_ns(CLOCK_REALTIME);
        ev.raw = make_raw(kind, task, v, key, clock_ns(CLOCK_MONOTONIC));
        cg_event& raw = ev.raw;
        if (d.kept) raw.decision = CG_DECISION_AUDIT;  // it was moved (or linked) all the same
        // As the BPF-LSM enforcer writes it: "<source name>\0<new name>".
        constexpr std::size_t half = sizeof raw.path / 2;
        const std::size_t n = ::strnlen(from, half - 1);
        std::memcpy(raw.path, from, n);
        const std::size_t m = ::strnlen(to, half - 1);
        std::memcpy(raw.path + n + 1, to, m);
        return d;
    }

    // The calling thread's nice value (on Linux a thread's own: PRIO_PROCESS with a thread
    // id). Returns 0 or the errno of the refusal.
    static int renice(int nice) {
        if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), nice) != 0) return errno;
        return 0;
    }
    static int own_nice() {
        errno = 0;
        const int n = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
        return errno ? 0 : n;
    }

    void launch() {
        if (running) return;
        running = true;
        const unsigned n = std::max(1u, options.workers);
        // Each thread sets its own priority (see FanotifyOptions::worker_nice, notify_nice;
        // 0: the process's); wait for them so that warnings() after this apply() already
        // says whether it was refused.
        std::latch ready(static_cast<std::ptrdiff_t>(n + 1 + (notify_fd ? 1 : 0)));
        std::atomic<int> refused{0}, refused_nice{0};
        // Named (at most 15 characters) so that top -H, ps -L and perf tell them apart.
        auto begin = [&](int nice, const char* name) {
            ::pthread_setname_np(::pthread_self(), name);
            if (nice != 0 && nice != own_nice())
                if (int e = renice(nice)) {
                    refused.store(e);
                    refused_nice.store(nice);
                }
            ready.count_down();
        };
        if (notify_fd)
            notifier = std::thread([this, &begin] { begin(options.notify_nice, "cg-fan-notify"); notify_loop(); });
        indexer = std::thread([this] {
            ::pthread_setname_np(::pthread_self(), "cg-fan-index");
            index_loop();
        });
        for (unsigned i = 0; i < n; ++i)
            workers.emplace_back([this, &begin] { begin(options.worker_nice, "cg-fan-worker"); worker_loop(); });
        lane = std::thread([this, &begin] { begin(lane_nice, "cg-fan-lane"); lane_loop(); });
        ready.wait();
        if (int e = refused.load()) {
            std::unique_lock lk(policy_mutex);
            const std::string nice = std::to_string(refused_nice.load());
            priority_warning = "the threads answering opens run at the daemon's priority: nice " + nice +
                               " was refused (" + std::strerror(e) + "); give the service LimitNICE=" + nice +
                               " or CAP_SYS_NICE";
        }
    }

    void halt() {
        if (!running) return;
        stopping = true;
        std::uint64_t one = 1;
        (void)!::write(stop_efd.get(), &one, sizeof one);
        if (notifier.joinable()) notifier.join();
        {
            std::lock_guard il(index_mutex);  // the indexer checks `stopping` under it
        }
        index_cv.notify_all();
        if (indexer.joinable()) indexer.join();
        for (auto& w : workers) w.join();  // each answers what it has read before leaving
        workers.clear();
        {
            std::lock_guard l(lane_mutex);
            lane_stop = true;
        }
        lane_cv.notify_one();
        gate_cv.notify_one();
        lane.join();  // answers every parked open first
        lane_stop = false;
        running = false;
    }

    // ---- marks --------------------------------------------------------------------

    tl::expected<FsMark, std::string> mark_filesystem(const fan::ResolvedRoot& root) {
        FsMark m;
        m.dev = root.key.dev;
        std::string dir = root.path;
        if (!root.is_dir) {
            auto slash = dir.rfind('/');
            dir = slash == 0 ? "/" : dir.substr(0, slash);
        }
        m.ref = UniqueFd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!m.ref) return tl::unexpected("cannot open " + dir + ": " + std::strerror(errno));
        if (::fanotify_mark(fan.get(), FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_OPEN_PERM, m.ref.get(), ".") != 0)
            return tl::unexpected("cannot mark the filesystem of " + dir + " for FAN_OPEN_PERM: " + std::strerror(errno));
        m.whole = open_whole_fs(m.dev);
        if (!m.whole) m.whole = UniqueFd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        struct statfs sfs {};
        if (::fstatfs(m.ref.get(), &sfs) == 0) m.fsid = sfs.f_fsid;
        if (notify_fd &&
            ::fanotify_mark(notify_fd.get(), FAN_MARK_ADD | FAN_MARK_FILESYSTEM, notify_mask, m.ref.get(), ".") == 0)
            m.notify = true;
        else
            warnings.push_back("renames on the filesystem of " + dir +
                               " cannot be watched; every open there reaches the daemon");
        return m;
    }

    void unmark_device(std::uint64_t dev, int ref) {
        if (ref >= 0) {
            ::fanotify_mark(fan.get(), FAN_MARK_REMOVE | FAN_MARK_FILESYSTEM, FAN_OPEN_PERM, ref, ".");
            if (notify_fd) ::fanotify_mark(notify_fd.get(), FAN_MARK_REMOVE | FAN_MARK_FILESYSTEM, notify_mask, ref, ".");
            return;
        }
        for (const auto& ml : common::read_mountinfo()) {
            if (static_cast<std::uint64_t>(ml.dev()) != dev) continue;
            if (::fanotify_mark(fan.get(), FAN_MARK_REMOVE | FAN_MARK_FILESYSTEM, FAN_OPEN_PERM, AT_FDCWD,
                                ml.mount_point.c_str()) == 0)
                return;
        }
    }

    // Answers the permission events a killed predecessor had read but not answered: their
    // descriptors died with it, but the kernel keys responses by the descriptor number.
    void answer_stale() {
        rlimit rl{};
        ::getrlimit(RLIMIT_NOFILE, &rl);
        int limit = static_cast<int>(std::min<rlim_t>(rl.rlim_cur, 1u << 20));
        for (int fd = 0; fd < limit; ++fd) {
            fanotify_response resp{fd, FAN_DENY};
            if (::write(fan.get(), &resp, sizeof resp) == static_cast<ssize_t>(sizeof resp)) c_stale.fetch_add(1);
        }
    }
};

FanotifyEnforcer::FanotifyEnforcer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

FanotifyEnforcer::~FanotifyEnforcer() {
    if (impl_) impl_->halt();
}

tl::expected<std::unique_ptr<FanotifyEnforcer>, std::string> FanotifyEnforcer::create(FanotifyOptions options) {
    auto impl = std::make_unique<Impl>();
    if (options.adopt) {
        if (!is_fanotify_fd(options.adopt.get()))
            return tl::unexpected(std::string("the stored descriptor is not a fanotify group"));
        unsigned flags = group_init_flags(options.adopt.get());
        if ((flags & (FAN_CLASS_CONTENT | FAN_CLASS_PRE_CONTENT)) == 0)
            return tl::unexpected(std::string("the stored fanotify group has no permission events"));
        impl->report_tid = (flags & FAN_REPORT_TID) != 0;
        impl->fan = std::move(options.adopt);
        impl->adopted = true;
        // The fd store passes descriptors blocking; our reader polls.
        int fl = ::fcntl(impl->fan.get(), F_GETFL);
        if (fl >= 0) ::fcntl(impl->fan.get(), F_SETFL, fl | O_NONBLOCK);
        ::fcntl(impl->fan.get(), F_SETFD, FD_CLOEXEC);
        impl->answer_stale();
        // Renames while no daemon watched them may have moved ignored inodes into zones.
        ::fanotify_mark(impl->fan.get(), FAN_MARK_FLUSH, 0, AT_FDCWD, nullptr);
    } else {
        impl->fan = UniqueFd(::fanotify_init(perm_group_flags, O_RDONLY | O_LARGEFILE | O_CLOEXEC));
        if (!impl->fan) return tl::unexpected(std::string("fanotify_init failed: ") + std::strerror(errno));
    }
    impl->notify_fd = UniqueFd(::fanotify_init(notify_group_flags, O_RDONLY | O_CLOEXEC));
    if (!impl->notify_fd) impl->notify_fd = UniqueFd(::fanotify_init(notify_group_flags_old, O_RDONLY | O_CLOEXEC));
    impl->stop_efd = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!impl->stop_efd) return tl::unexpected(std::string("eventfd failed: ") + std::strerror(errno));
    impl->options = std::move(options);
    return std::unique_ptr<FanotifyEnforcer>(new FanotifyEnforcer(std::move(impl)));
}

tl::expected<void, std::string> FanotifyEnforcer::start(EventHandler handler) {
    auto& m = *impl_;
    if (m.started) return tl::unexpected(std::string("fanotify enforcer already started"));
    m.handler = std::move(handler);
    m.started = true;
    if (m.options.use_fd_store && !m.adopted) {
        auto r = fd_store_put(m.fan.get(), fanotify_fd_name);
        if (!r) return tl::unexpected(r.error());
        m.stored = *r;
    } else if (m.adopted) {
        m.stored = true;  // it came from there and stays there
    }
    // An adopted group may hold events of the last policy: they wait until apply().
    bool have_policy = false;
    {
        std::shared_lock lk(m.policy_mutex);
        have_policy = m.snapshot() != nullptr;
    }
    if (have_policy) m.launch();
    return {};
}

tl::expected<void, std::string> FanotifyEnforcer::apply(const policy::Compiled& compiled) {
    auto& m = *impl_;
    std::vector<std::string> warnings;
    auto built = ZoneTables::build(compiled, warnings);
    if (!built) return tl::unexpected(built.error());
    auto tables = std::make_shared<const ZoneTables>(std::move(*built));

    auto lk = m.lock_policy();
    m.warnings = std::move(warnings);
    auto wanted = tables->devices();
    std::map<std::uint64_t, Impl::FsMark> marks;
    // New marks first, so a filesystem in both policies is never unmarked in between.
    for (auto dev : wanted) {
        if (auto it = m.marks.find(dev); it != m.marks.end()) {
            marks.emplace(dev, std::move(it->second));
            m.marks.erase(it);
            continue;
        }
        const fan::ResolvedRoot* root = nullptr;
        for (const auto& r : tables->resolved_roots())
            if (r.key.dev == dev) { root = &r; break; }
        auto mk = m.mark_filesystem(*root);
        if (!mk) {
            // Keep the previous state: undo the marks added so far.
            for (auto& [d, fm] : marks)
                if (!m.marks.contains(d)) m.unmark_device(d, fm.ref.get());
            for (auto& [d, fm] : marks) m.marks.emplace(d, std::move(fm));
            return tl::unexpected(mk.error());
        }
        marks.emplace(dev, std::move(*mk));
    }
    for (auto& [dev, fm] : m.marks) m.unmark_device(dev, fm.ref.get());
    if (m.adopted && !m.snapshot()) {
        // Filesystems the predecessor marked that this policy no longer needs.
        for (auto dev : existing_sb_marks(m.fan.get()))
            if (!marks.contains(dev)) m.unmark_device(dev, -1);
    }
    m.marks = std::move(marks);
    m.tables = tables;
    {
        std::lock_guard ck(m.cache_mutex);
        m.zone_cache.clear();
    }
    m.forget_dirs();
    // The index is rebuilt for these zones: what the notify group adds from now on is
    // placed in them, and a scan begun after this point misses nothing it does not add.
    std::uint64_t from = 0;
    {
        std::lock_guard il(m.index_mutex);
        from = m.index_seq;
        ++m.index_busy;
        m.update_incomplete_locked();
    }
    // Inodes ignored under the old policy may be zone files now.
    ::fanotify_mark(m.fan.get(), FAN_MARK_FLUSH, 0, AT_FDCWD, nullptr);
    m.marked.clear();
    lk.unlock();
    // Outside the lock: the notify group and the workers go on meanwhile (a multiply linked
    // file outside every zone that the index does not know yet is refused until this ends).
    std::map<std::uint64_t, std::vector<IndexedFile>> scanned;
    for (auto dev : tables->devices()) scanned[dev] = m.scan_zones(dev, *tables);
    {
        std::lock_guard il(m.index_mutex);
        for (auto it = m.index_base.begin(); it != m.index_base.end();) {
            if (scanned.contains(it->first)) {
                ++it;
            } else {
                m.index_base_size -= it->second.size();
                std::erase_if(m.index_delta, [&](const auto& kv) { return kv.first.dev == it->first; });
                it = m.index_base.erase(it);
            }
        }
        for (auto& [dev, files] : scanned) m.install_base_locked(dev, std::move(files), from);
        --m.index_busy;
        m.update_incomplete_locked();
    }
    if (m.started) m.launch();
    return {};
}

SensorCounters FanotifyEnforcer::counters() const {
    const auto& m = *impl_;
    SensorCounters c{m.c_events.load(), m.c_dropped.load(), m.c_denied.load(), m.c_errors.load()};
    c.overload = m.c_timeouts.load();
    c.overload_refused = m.c_overload_refused.load();
    c.rescans = m.c_overflows.load();
    return c;
}

FanotifyStats FanotifyEnforcer::stats() const {
    const auto& m = *impl_;
    std::size_t indexed = 0, departed = 0;
    {
        std::lock_guard il(m.index_mutex);
        indexed = m.index_base_size + m.index_delta.size();
    }
    {
        std::lock_guard dl(m.departed_mutex);
        departed = m.departed.size();
    }
    return {m.c_perm.load(), m.c_ignores.load(), m.c_hits.load(), m.c_walks.load(),
            m.c_timeouts.load(), m.c_flushes.load(), m.c_stale.load(), m.c_scans.load(), m.c_scanned.load(), indexed,
            m.c_overflows.load(), m.c_kept_lost.load(), m.c_dir_hits.load(), m.c_quick_waits.load(),
            m.c_quick_refused.load(), m.notifications.load(), m.c_parked.load(), m.c_park_late.load(), m.parked_n.load(),
            departed, m.c_departed_swept.load()};
}

void FanotifyEnforcer::stop(bool remove) {
    auto& m = *impl_;
    m.halt();  // every event read so far is answered before this returns
    if (remove) {
        if (m.stored) (void)fd_store_remove(fanotify_fd_name);
        m.stored = false;
    }
    // Our copy closes; the fd store's copy (if any) keeps enforcement for the successor.
    m.fan.reset();
    m.notify_fd.reset();
}

bool FanotifyEnforcer::wait_notifications(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const auto horizon = impl_->notify_horizon(deadline);
    return horizon && impl_->wait_handled(*horizon, deadline);
}

bool FanotifyEnforcer::adopted() const { return impl_->adopted; }
bool FanotifyEnforcer::stored() const { return impl_->stored; }
int FanotifyEnforcer::fd() const { return impl_->fan.get(); }
std::vector<std::string> FanotifyEnforcer::warnings() const {
    std::shared_lock lk(impl_->policy_mutex);
    auto w = impl_->warnings;
    if (!impl_->priority_warning.empty()) w.push_back(impl_->priority_warning);
    return w;
}

}  // namespace custguard::daemon
