#include "bpf_lsm_enforcer.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cg_lsm.skel.h"
#include "custguard/common/clock.hpp"
#include "custguard/common/errno_text.hpp"
#include "custguard/common/unique_fd.hpp"
#include "daemon/bpf_pin.hpp"
#include "clients.hpp"
#include "custguard_abi.h"
#include "resolve.hpp"
#include "self.hpp"

namespace custguard::daemon::bpf_lsm {

namespace {

using common::clock_ns;
using common::errno_text;
using common::UniqueFd;
using Error = tl::unexpected<std::string>;

// RAII for the C handles (file descriptors: common::UniqueFd).
struct SkelDeleter {
    void operator()(cg_lsm* s) const { cg_lsm__destroy(s); }
};
struct LinkDeleter {
    // Closes our reference only: a pinned link stays attached.
    void operator()(bpf_link* l) const { bpf_link__destroy(l); }
};
struct RingDeleter {
    void operator()(ring_buffer* r) const { ring_buffer__free(r); }
};

// Names under the pin directory.
constexpr std::array<const char*, 15> k_map_pins = {
    "roots", "devs", "subjects", "grants", "programs", "ctl", "events", "stats", "denies", "dircache",
    "clients", "smb_peers", "client_denies", "reads", "read_slots"};
// Pins of earlier ABI versions that this one no longer makes (ABI 13 folded "zones" into
// "roots"): removed with the rest, so that a replaced pin directory holds only ours.
constexpr std::array<const char*, 1> k_retired_pins = {"zones"};
constexpr std::size_t k_ctl_pin = 5;
static_assert(std::string_view(k_map_pins[k_ctl_pin]) == "ctl");
// The directory-cache invalidators first: the open hook caches only once they run. The
// smbd peer recorder before the open hook, which reads what it records.
constexpr std::array<const char*, 6> k_link_pins = {
    "link_dir_moves", "link_dir_freed", "link_smb_recv", "link_file_open", "link_inode_link",
    "link_inode_rename"};

std::array<bpf_map*, k_map_pins.size()> skel_maps(cg_lsm* s)
{
    return {s->maps.cg_roots,    s->maps.cg_devs,
            s->maps.cg_subjects, s->maps.cg_grants, s->maps.cg_programs,
            s->maps.cg_ctl,   s->maps.cg_events,   s->maps.cg_stats,
            s->maps.cg_denies, s->maps.cg_dircache, s->maps.cg_clients,
            s->maps.cg_smb_peers, s->maps.cg_client_denies, s->maps.cg_reads,
            s->maps.cg_read_slots};
}

// How often the directory-cache refresh counter (CG_CTL_REFRESH) moves: an entry older
// than this is refilled, so a wrapped 32-bit directory-move counter (2^32 moves) cannot make
// an ancient entry look current.
constexpr std::int64_t k_epoch_refresh_ns = 600'000'000'000;
// How often cg_read_sweep records what cg_reads counted for keys whose interval is over:
// a counted read reaches the history at most this long after its interval.
constexpr std::int64_t k_read_sweep_ns = 1'000'000'000;

std::array<bpf_program*, k_link_pins.size()> skel_progs(cg_lsm* s)
{
    return {s->progs.cg_dir_moved, s->progs.cg_dir_freed, s->progs.cg_smb_recv,
            s->progs.cg_file_open, s->progs.cg_inode_link, s->progs.cg_inode_rename};
}

// The control words (struct cg_ctl_words), mapped from the mmap-able control map: single
// 8-byte loads and stores, as the programs read them. Never a whole-value update, which
// would undo the kernel's increments of CG_CTL_DIR_MOVES.
class CtlWords {
public:
    CtlWords() = default;
    explicit CtlWords(int fd) : len_(static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)))
    {
        void* p = ::mmap(nullptr, len_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        p_ = p == MAP_FAILED ? nullptr : static_cast<cg_ctl_words*>(p);
    }
    CtlWords(CtlWords&& o) noexcept : p_(std::exchange(o.p_, nullptr)), len_(o.len_) {}
    CtlWords& operator=(CtlWords&& o) noexcept
    {
        if (this != &o) {
            reset();
            p_ = std::exchange(o.p_, nullptr);
            len_ = o.len_;
        }
        return *this;
    }
    CtlWords(const CtlWords&) = delete;
    CtlWords& operator=(const CtlWords&) = delete;
    ~CtlWords() { reset(); }

    explicit operator bool() const { return p_ != nullptr; }
    std::uint64_t get(std::uint32_t key) const { return std::atomic_ref<__u64>(p_->w[key]).load(); }
    void set(std::uint32_t key, std::uint64_t v) const { std::atomic_ref<__u64>(p_->w[key]).store(v); }

private:
    void reset()
    {
        if (p_)
            ::munmap(p_, len_);
        p_ = nullptr;
    }
    cg_ctl_words* p_ = nullptr;
    std::size_t len_ = 0;
};

// CG_ABI_VERSION of a pinned control map, or 0 when its layout is not this one's.
std::uint64_t pinned_abi(int fd)
{
    bpf_map_info info{};
    std::uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0 || info.value_size != sizeof(cg_ctl_words) ||
        info.max_entries != 1 || (info.map_flags & BPF_F_MMAPABLE) == 0)
        return 0;
    cg_ctl_words w{};
    const std::uint32_t zero = 0;
    if (bpf_map_lookup_elem(fd, &zero, &w) != 0)
        return 0;
    return w.w[CG_CTL_ABI];
}

// Writes the active slot together with the next directory-cache epoch (one 8-byte store).
// The epoch only ever grows, also across "nothing enforced", so no old cache entry can
// match a later policy.
void set_active(const CtlWords& ctl, std::uint32_t slot)
{
    ctl.set(CG_CTL_ACTIVE, CG_ACTIVE_MAKE(slot, CG_ACTIVE_EPOCH(ctl.get(CG_CTL_ACTIVE)) + 1));
}

// Every value of the array map `fd`, read in batches: `f(value)` for each.
template <typename V, typename F>
tl::expected<void, std::string> each_array_value(int fd, const char* what, F&& f)
{
    constexpr std::uint32_t k_batch = 1024;
    std::vector<std::uint32_t> keys(k_batch);
    std::vector<V> values(k_batch);
    std::uint32_t in = 0, out = 0;
    for (bool first = true;; first = false) {
        std::uint32_t count = k_batch;
        const int r = bpf_map_lookup_batch(fd, first ? nullptr : &in, &out, keys.data(), values.data(), &count,
                                           nullptr);
        const int err = r < 0 ? errno : 0;
        for (std::uint32_t i = 0; i < count && i < k_batch; ++i)
            f(values[i]);
        if (err == ENOENT)
            return {};
        if (err != 0)
            return tl::unexpected(std::string("bpf-lsm: reading the pinned ") + what + ": " + errno_text(err));
        in = out;
    }
}

// An adopted pin set is moved past every epoch its caches hold. Pins are replaced map by
// map (pin_replace), so a daemon that died midway leaves one set's control map beside
// another's directory cache and read slots, whose entries may carry epochs this control
// map has not reached yet: its later applies would reuse them, and an entry filled under
// another policy would match (the read slots' shortcut past cg_decide, the cache's zone).
tl::expected<void, std::string> raise_epoch_past_caches(const CtlWords& ctl, int dircache_fd, int slots_fd)
{
    const std::uint64_t active = ctl.get(CG_CTL_ACTIVE);
    std::uint32_t top = CG_ACTIVE_EPOCH(active);
    if (auto r = each_array_value<cg_dir_zone>(dircache_fd, "directory cache",
                                               [&](const cg_dir_zone& e) { top = std::max(top, e.epoch); });
        !r)
        return r;
    if (auto r = each_array_value<cg_read_slot>(
            slots_fd, "read slots", [&](const cg_read_slot& e) { top = std::max(top, CG_ACTIVE_EPOCH(e.active)); });
        !r)
        return r;
    ctl.set(CG_CTL_ACTIVE, CG_ACTIVE_MAKE(CG_ACTIVE_SLOT(active), top + 1));
    return {};
}

// One fresh inner map, sized to its rows: per-open cost of a hash lookup does not depend
// on the map size.
tl::expected<UniqueFd, std::string> make_inner(const char* name, std::uint32_t key_size,
                                               std::uint32_t value_size, std::size_t rows)
{
    const auto max = static_cast<std::uint32_t>(rows < 1 ? 1 : rows);
    int fd = bpf_map_create(BPF_MAP_TYPE_HASH, name, key_size, value_size, max, nullptr);
    if (fd < 0)
        return Error(std::string("creating map ") + name + ": " + errno_text(errno));
    return UniqueFd(fd);
}

// The networks of allow_clients (struct cg_client_key): an LPM trie, which the kernel
// creates only without preallocation.
tl::expected<UniqueFd, std::string> make_client_trie(std::size_t rows)
{
    bpf_map_create_opts opts{};
    opts.sz = sizeof opts;
    opts.map_flags = BPF_F_NO_PREALLOC;
    const auto max = static_cast<std::uint32_t>(rows < 1 ? 1 : rows);
    int fd = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "cg_clients_in", sizeof(cg_client_key), sizeof(cg_client), max, &opts);
    if (fd < 0)
        return Error(std::string("creating map cg_clients_in: ") + errno_text(errno));
    return UniqueFd(fd);
}

template <typename K, typename V>
tl::expected<void, std::string> put(const UniqueFd& map, const char* what, const K& k, const V& v)
{
    if (bpf_map_update_elem(map.get(), &k, &v, BPF_ANY) != 0)
        return Error(std::string("filling map ") + what + ": " + errno_text(errno));
    return {};
}

// libbpf reports through a process-wide print callback (stderr by default). Library
// code does not write to stderr: while the enforcer calls into libbpf, its messages are
// collected and the tail goes into the error text instead.
thread_local std::string* t_libbpf_log = nullptr;

int collect_libbpf(enum libbpf_print_level level, const char* fmt, va_list args)
{
    if (t_libbpf_log == nullptr || level == LIBBPF_DEBUG)
        return 0;
    char buf[1024];
    int n = std::vsnprintf(buf, sizeof buf, fmt, args);
    if (n > 0)
        t_libbpf_log->append(buf, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof buf - 1));
    return 0;
}

class LibbpfLogScope {
public:
    LibbpfLogScope() : previous_(libbpf_set_print(collect_libbpf)) { t_libbpf_log = &log_; }
    ~LibbpfLogScope()
    {
        t_libbpf_log = nullptr;
        libbpf_set_print(previous_);
    }
    LibbpfLogScope(const LibbpfLogScope&) = delete;
    LibbpfLogScope& operator=(const LibbpfLogScope&) = delete;

    // The last lines: the verifier's verdict is at the end of its log.
    std::string tail(std::size_t max_lines = 12) const
    {
        std::vector<std::string> lines;
        std::istringstream in(log_);
        for (std::string line; std::getline(in, line);)
            if (!line.empty())
                lines.push_back(line);
        std::string out;
        const std::size_t first = lines.size() > max_lines ? lines.size() - max_lines : 0;
        for (std::size_t i = first; i < lines.size(); ++i)
            out += "\n  " + lines[i];
        return out;
    }

private:
    std::string log_;
    libbpf_print_fn_t previous_;
};

tl::expected<std::string, std::string> read_text(const std::filesystem::path& p)
{
    std::ifstream in(p);
    if (!in)
        return Error("cannot read " + p.string());
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

std::uint64_t read_interval_ticks(std::chrono::nanoseconds interval, std::uint64_t tick_ns)
{
    if (interval.count() <= 0)
        return 0;
    const auto ns = static_cast<std::uint64_t>(interval.count());
    return ns / tick_ns + (ns % tick_ns != 0);
}

std::uint64_t kernel_tick_ns()
{
    timespec res{};
    ::clock_getres(CLOCK_MONOTONIC_COARSE, &res);
    const auto ns = static_cast<std::uint64_t>(res.tv_sec) * 1'000'000'000 + static_cast<std::uint64_t>(res.tv_nsec);
    return std::max<std::uint64_t>(ns, 1);
}

tl::expected<void, std::string> probe()
{
    auto lsm = read_text("/sys/kernel/security/lsm");
    if (!lsm)
        return Error("securityfs is not mounted or has no lsm file (" + lsm.error() + ")");
    std::string list = *lsm;
    bool found = false;
    std::istringstream items(list);
    for (std::string item; std::getline(items, item, ',');)
        found = found || item == "bpf";
    if (!found)
        return Error("bpf is not an active LSM (" + list + "); boot with lsm=...,bpf");
    if (::access("/sys/kernel/btf/vmlinux", R_OK) != 0)
        return Error("the kernel has no BTF (/sys/kernel/btf/vmlinux)");
    return {};
}

struct BpfLsmEnforcer::Impl {
    std::unique_ptr<cg_lsm, SkelDeleter> skel;
    std::array<std::unique_ptr<bpf_link, LinkDeleter>, k_link_pins.size()> links;
    std::unique_ptr<ring_buffer, RingDeleter> ring;
    std::int64_t last_offset_sync_ns = 0;
    std::int64_t last_epoch_ns = 0;
    std::int64_t last_sweep_ns = 0;
    // Whether cg_reads may hold a key (so that the sweep has work), and when the poller
    // last received a record. A key is made only together with an open's record, which
    // this poller receives; its reads are counted only within one interval of a record of
    // the key; the sweep records the count after that interval and deletes the key two
    // intervals after its record. So two intervals and a sweep after the last record
    // received, the map is empty unless a full ring made the sweep keep a count: emptiness
    // is then checked once (one walk of the buckets) before the sweep stops running, and
    // the next record received starts it again. Over an adopted map (keys and counts of a
    // previous daemon) it starts running.
    bool reads_maybe = true;
    std::int64_t last_record_ns = 0;
    std::int64_t read_interval_ns = 0;

    int map_fd(std::size_t i) const { return bpf_map__fd(skel_maps(skel.get())[i]); }
    CtlWords ctl;

    // Attaches every program in k_link_pins order (on failure: none stays attached) and
    // then lets the open hook cache, since the move counter runs.
    tl::expected<void, std::string> attach()
    {
        auto progs = skel_progs(skel.get());
        for (std::size_t i = 0; i < progs.size(); ++i) {
            links[i].reset(bpf_program__attach(progs[i]));
            if (!links[i]) {
                int err = errno;
                for (auto& l : links)
                    l.reset();
                return Error(std::string("attaching ") + bpf_program__name(progs[i]) + ": " +
                             errno_text(err));
            }
        }
        ctl.set(CG_CTL_DIR_MOVES_TRACKED, 1);
        return {};
    }

    // Records what cg_reads counted (see struct cg_read): for keys whose interval is
    // over, or for every key. False when the kernel refused to run the sweep.
    bool sweep_reads(bool all) const
    {
        std::array<std::uint64_t, CG_SWEEP_ARGS> args{};
        args[CG_SWEEP_ALL] = all ? 1 : 0;
        LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = args.data(), .ctx_size_in = sizeof(args));
        return bpf_prog_test_run_opts(bpf_program__fd(skel->progs.cg_read_sweep), &opts) == 0;
    }

    // Whether the sweep can stop running: nothing received for two intervals and a sweep,
    // and cg_reads has no key.
    bool reads_quiet(std::int64_t now) const
    {
        if (now - last_record_ns < 2 * read_interval_ns + k_read_sweep_ns)
            return false;
        cg_read_key key{};
        return bpf_map_get_next_key(bpf_map__fd(skel->maps.cg_reads), nullptr, &key) != 0 && errno == ENOENT;
    }

    // Pins the links over those of a previous daemon, which then detach.
    tl::expected<void, std::string> pin_links(const std::filesystem::path& dir) const
    {
        for (std::size_t i = 0; i < k_link_pins.size(); ++i)
            if (auto r = pin_replace(dir, k_link_pins[i], bpf_link__fd(links[i].get())); !r)
                return r;
        return {};
    }
};

BpfLsmEnforcer::BpfLsmEnforcer(Options options) : options_(std::move(options)) {}

BpfLsmEnforcer::~BpfLsmEnforcer() { stop(false); }

namespace {

// CLOCK_REALTIME - CLOCK_BOOTTIME: how the kernel turns its boot clock into the wall
// clock that grant expiries are written in.
void sync_rt_offset(const CtlWords& ctl)
{
    const std::int64_t off = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_BOOTTIME);
    ctl.set(CG_CTL_RT_OFFSET, static_cast<std::uint64_t>(off));
}

}  // namespace

tl::expected<void, std::string> BpfLsmEnforcer::start(EventHandler handler)
{
    if (started_)
        return Error("bpf-lsm: already started");
    if (auto p = probe(); !p)
        return Error("bpf-lsm: " + p.error());
    struct statfs fs {};
    // Root only: whoever can open the pinned maps can rewrite the policy.
    if (::mkdir(options_.pin_dir.c_str(), 0700) != 0 && errno != EEXIST)
        return Error("bpf-lsm: creating " + options_.pin_dir.string() + ": " + errno_text(errno));
    ::chmod(options_.pin_dir.c_str(), 0700);
    if (::statfs(options_.pin_dir.c_str(), &fs) != 0 || fs.f_type != BPF_FS_MAGIC)
        return Error("bpf-lsm: " + options_.pin_dir.string() + " is not on a bpf filesystem");

    LibbpfLogScope libbpf_log;
    auto impl = std::make_unique<Impl>();
    impl->skel.reset(cg_lsm__open());
    if (!impl->skel)
        return Error("bpf-lsm: opening the BPF object: " + errno_text(errno));
    // The exec tracker's flags (allow_programs): its pinned map, or a new one it adopts.
    ::mkdir(options_.exec_tasks_pin.parent_path().c_str(), 0700);
    bpf_map__set_pin_path(impl->skel->maps.cg_exec_tasks, options_.exec_tasks_pin.c_str());

    // Adopt the pinned maps of a previous daemon when they have our layout.
    std::array<UniqueFd, k_map_pins.size()> pinned;
    bool adopt = true;
    for (std::size_t i = 0; i < k_map_pins.size(); ++i) {
        pinned[i] = UniqueFd(bpf_obj_get((options_.pin_dir / k_map_pins[i]).c_str()));
        adopt = adopt && pinned[i];
    }
    if (adopt) {
        adopt = pinned_abi(pinned[k_ctl_pin].get()) == CG_ABI_VERSION;
    }
    if (adopt) {
        auto maps = skel_maps(impl->skel.get());
        for (std::size_t i = 0; i < maps.size(); ++i) {
            if (int err = bpf_map__reuse_fd(maps[i], pinned[i].get()); err != 0)
                return Error(std::string("bpf-lsm: reusing pinned map ") + k_map_pins[i] + ": " +
                             errno_text(err));
        }
    }
    if (int err = cg_lsm__load(impl->skel.get()); err != 0)
        return Error("bpf-lsm: loading the BPF programs: " + errno_text(err) + libbpf_log.tail());

    impl->ctl = CtlWords(bpf_map__fd(impl->skel->maps.cg_ctl));
    if (!impl->ctl)
        return Error("bpf-lsm: mapping the control map: " + errno_text(errno));
    if (!adopt) {
        // Nothing is enforced from these maps until the first apply() attaches them.
        impl->ctl.set(CG_CTL_ACTIVE, CG_SLOT_NONE);
        impl->ctl.set(CG_CTL_ABI, CG_ABI_VERSION);
    } else if (auto r = raise_epoch_past_caches(impl->ctl, bpf_map__fd(impl->skel->maps.cg_dircache),
                                                bpf_map__fd(impl->skel->maps.cg_read_slots));
               !r) {
        return Error(r.error());
    }
    sync_rt_offset(impl->ctl);
    // Who may read zone files past the programs (see CG_CTL_SELF_TGID): this process or
    // nobody, never an earlier daemon's words. The tgid goes last, so no hook pairs it
    // with another process's start time or executable.
    own_reads_error_.clear();
    own_tgid_ = 0;
    impl->ctl.set(CG_CTL_SELF_TGID, 0);
    if (options_.own_reads) {
        if (auto self = self_identity()) {
            impl->ctl.set(CG_CTL_SELF_START, self->start_ticks);
            impl->ctl.set(CG_CTL_SELF_EXE_DEV, self->exe_dev);
            impl->ctl.set(CG_CTL_SELF_EXE_INO, self->exe_ino);
            impl->ctl.set(CG_CTL_SELF_TGID, self->tgid);
            own_tgid_ = self->tgid;
        } else {
            own_reads_error_ = self.error();
        }
    }
    // Also over an adopted map: this daemon's interval is the one in force.
    const std::uint64_t tick_ns = kernel_tick_ns();
    impl->ctl.set(CG_CTL_TICK_NS, tick_ns);
    const std::uint64_t interval_ticks = read_interval_ticks(options_.read_interval, tick_ns);
    impl->ctl.set(CG_CTL_READ_INTERVAL, interval_ticks);
    impl->read_interval_ns = static_cast<std::int64_t>(interval_ticks * tick_ns);
    impl->last_offset_sync_ns = clock_ns(CLOCK_MONOTONIC);
    impl->last_epoch_ns = impl->last_offset_sync_ns;
    impl->last_sweep_ns = impl->last_offset_sync_ns;
    impl->last_record_ns = impl->last_offset_sync_ns;

    impl->ring.reset(ring_buffer__new(
        bpf_map__fd(impl->skel->maps.cg_events),
        [](void* ctx, void* data, std::size_t size) -> int {
            auto* self = static_cast<BpfLsmEnforcer*>(ctx);
            if (size < sizeof(cg_event)) {
                self->errors_.fetch_add(1, std::memory_order_relaxed);
                return 0;
            }
            AccessEvent ev;
            std::memcpy(&ev.raw, data, sizeof(cg_event));
            ev.raw.path[CG_PATH_LEN - 1] = 0;
            ev.path = ev.raw.path;
            ev.client = client_text(ev.raw.client);
            ev.sensor = Sensor::bpf_lsm;
            // ts_ns is CLOCK_MONOTONIC; shift it onto the wall clock.
            ev.realtime_ns = static_cast<std::int64_t>(ev.raw.ts_ns) +
                             (clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC));
            self->delivered_.fetch_add(1, std::memory_order_relaxed);
            if (self->handler_)
                self->handler_(std::move(ev));
            return 0;
        },
        this, nullptr));
    if (!impl->ring)
        return Error("bpf-lsm: opening the ring buffer: " + errno_text(errno));

    impl_ = std::move(impl);
    handler_ = std::move(handler);
    adopted_ = adopt;

    if (adopt) {
        // The pinned links keep the old programs attached to the same maps; attach ours
        // and pin them over the old ones. For an instant both run and agree.
        std::lock_guard lock(apply_mutex_);
        if (auto r = impl_->attach(); !r)
            return Error("bpf-lsm: " + r.error());
        if (auto r = impl_->pin_links(options_.pin_dir); !r)
            return Error("bpf-lsm: " + r.error());
        attached_ = true;
    }

    stopping_ = false;
    poller_ = std::thread([this] { poll_loop(); });
    started_ = true;
    return {};
}

void BpfLsmEnforcer::poll_loop()
{
    while (!stopping_.load()) {
        int n = ring_buffer__poll(impl_->ring.get(), 100);
        if (n < 0 && n != -EINTR)
            errors_.fetch_add(1, std::memory_order_relaxed);
        // Recorded allowed reads are queued without a wakeup (see cg_wakeup_flags):
        // poll() only drains rings that signalled, so drain explicitly.
        if (n == 0) {
            n = ring_buffer__consume(impl_->ring.get());
            if (n < 0)
                errors_.fetch_add(1, std::memory_order_relaxed);
        }
        const auto now = clock_ns(CLOCK_MONOTONIC);
        if (n > 0) {
            impl_->last_record_ns = now;
            impl_->reads_maybe = true;
        }
        // Keep the kernel's view of the wall clock current (NTP steps, settimeofday).
        if (now - impl_->last_offset_sync_ns > 5'000'000'000) {
            impl_->last_offset_sync_ns = now;
            sync_rt_offset(impl_->ctl);
        }
        if (now - impl_->last_epoch_ns > k_epoch_refresh_ns) {
            impl_->last_epoch_ns = now;
            impl_->ctl.set(CG_CTL_REFRESH, impl_->ctl.get(CG_CTL_REFRESH) + 1);
        }
        if (impl_->reads_maybe && now - impl_->last_sweep_ns >= k_read_sweep_ns) {
            impl_->last_sweep_ns = now;
            read_sweeps_.fetch_add(1, std::memory_order_relaxed);
            if (!impl_->sweep_reads(false))
                errors_.fetch_add(1, std::memory_order_relaxed);
            else if (impl_->reads_quiet(now))
                impl_->reads_maybe = false;
        }
    }
    // Record every counted read, then deliver what is queued before stopping. Reads
    // counted after this wait in the pinned map for the next daemon's sweep.
    if (!impl_->sweep_reads(true))
        errors_.fetch_add(1, std::memory_order_relaxed);
    ring_buffer__consume(impl_->ring.get());
}

tl::expected<void, std::string> BpfLsmEnforcer::apply(const policy::Compiled& compiled)
{
    if (!started_)
        return Error("bpf-lsm: apply() before start()");
    std::lock_guard lock(apply_mutex_);

    // Resolve everything first: a failure leaves the running policy untouched.
    std::string mountinfo;
    if (auto t = read_text(options_.mountinfo))
        mountinfo = std::move(*t);
    auto roots = resolve_roots(compiled.roots, mountinfo);
    if (!roots)
        return Error("bpf-lsm: " + roots.error());
    append_inode_roots(*roots, compiled.inode_roots);
    struct Program {
        std::uint32_t zone_id;
        InodeId inode;
    };
    std::vector<Program> programs;
    const auto mounts = parse_mountinfo(mountinfo);
    for (const auto& p : compiled.programs) {
        auto id = inode_of(p.path, &mounts);
        if (!id)
            return Error("bpf-lsm: program " + id.error());
        programs.push_back({p.zone_id, *id});
    }

    auto m_roots = make_inner("cg_roots_in", sizeof(cg_inode_key), sizeof(cg_zone_root),
                              roots->size());
    auto m_devs = make_inner("cg_devs_in", sizeof(std::uint64_t), sizeof(cg_dev_count),
                             roots->size());
    auto m_subjects = make_inner("cg_subj_in", sizeof(cg_subject_key), 1, compiled.subjects.size());
    auto m_grants = make_inner("cg_grants_in", sizeof(cg_grant_key), sizeof(cg_grant),
                               compiled.grants.size());
    auto m_programs = make_inner("cg_progs_in", sizeof(cg_program_key), 1, programs.size());
    auto m_denies = make_inner("cg_denies_in", sizeof(cg_deny_key), sizeof(cg_deny),
                               compiled.denies.size());
    const auto client_rows = client_keys(compiled);
    auto m_clients = make_client_trie(client_rows.size());
    const auto client_denies = client_deny_entries(compiled);
    auto m_client_denies = make_inner("cg_cdenies_in", sizeof(cg_client_deny_key), sizeof(cg_deny),
                                      client_denies.size());
    for (auto* m : {&m_roots, &m_devs, &m_subjects, &m_grants, &m_programs, &m_denies, &m_clients,
                    &m_client_denies})
        if (!*m)
            return Error("bpf-lsm: " + m->error());

    // Each zone's flags go with its roots (struct cg_zone_root). A root of a zone the
    // policy does not define is a compiler bug: flags 0, which denies violations.
    std::unordered_map<std::uint32_t, std::uint32_t> zone_flags;
    for (const auto& z : compiled.zones) {
        std::uint32_t f = 0;
        if (z.on_violation == policy::Violation::audit)
            f |= CG_ZONE_VIOLATION_AUDIT;
        if (z.record_allowed)
            f |= CG_ZONE_RECORD_ALLOWED;
        if (z.sensitivity == policy::Sensitivity::sensitive)
            f |= CG_ZONE_SENSITIVE;
        if (z.programs_required)
            f |= CG_ZONE_PROGRAMS;
        if (!z.programs_strict)
            f |= CG_ZONE_PROGRAMS_LAX;
        if (z.clients_required)
            f |= CG_ZONE_CLIENTS;
        // Only zones with deny rows (a user's or a client's cool-down) pay for looking
        // the opener up in them.
        if (std::any_of(compiled.denies.begin(), compiled.denies.end(),
                        [&](const auto& d) { return d.zone_id == z.id; }))
            f |= CG_ZONE_DENIES;
        if (std::any_of(client_denies.begin(), client_denies.end(),
                        [&](const ClientDenyEntry& d) { return d.key.zone_id == z.id; }))
            f |= CG_ZONE_CLIENT_DENIES;
        zone_flags[z.id] = f;
    }
    std::vector<std::pair<std::uint64_t, std::uint32_t>> devs;
    for (const auto& r : *roots) {
        cg_inode_key k{r.inode.dev, r.inode.ino};
        const auto f = zone_flags.find(r.zone_id);
        cg_zone_root v{r.zone_id, f == zone_flags.end() ? 0 : f->second};
        if (auto e = put(*m_roots, "roots", k, v); !e)
            return Error("bpf-lsm: " + e.error());
        bool seen = false;
        for (auto& [dev, count] : devs)
            if (dev == r.inode.dev) {
                ++count;
                seen = true;
            }
        if (!seen)
            devs.emplace_back(r.inode.dev, 1);
    }
    for (const auto& [dev, count] : devs) {
        cg_dev_count v{count, 0};
        if (auto e = put(*m_devs, "devs", dev, v); !e)
            return Error("bpf-lsm: " + e.error());
    }
    const std::uint8_t one = 1;
    for (const auto& s : compiled.subjects) {
        const std::uint32_t kind =
            s.kind == policy::SubjectKind::uid ? CG_SUBJECT_UID : CG_SUBJECT_GID;
        cg_subject_key k{CG_SUBJECT_ZONE_KIND(s.zone_id, kind), s.id};
        if (auto e = put(*m_subjects, "subjects", k, one); !e)
            return Error("bpf-lsm: " + e.error());
    }
    for (const auto& g : compiled.grants) {
        cg_grant_key k{g.zone_id, g.uid};
        cg_grant v{g.expires_at};
        if (auto e = put(*m_grants, "grants", k, v); !e)
            return Error("bpf-lsm: " + e.error());
    }
    for (const auto& p : programs) {
        cg_program_key k{p.zone_id, 0, p.inode.dev, p.inode.ino};
        if (auto e = put(*m_programs, "programs", k, one); !e)
            return Error("bpf-lsm: " + e.error());
    }
    for (const auto& d : compiled.denies) {
        cg_deny_key k{d.zone_id, d.uid};
        cg_deny v{d.expires_at};
        if (auto e = put(*m_denies, "denies", k, v); !e)
            return Error("bpf-lsm: " + e.error());
    }
    for (std::size_t i = 0; i < client_rows.size(); ++i) {
        const cg_client v{compiled.clients[i].expires_at};
        if (auto e = put(*m_clients, "clients", client_rows[i], v); !e)
            return Error("bpf-lsm: " + e.error());
    }
    for (const auto& d : client_denies)
        if (auto e = put(*m_client_denies, "client_denies", d.key, d.value); !e)
            return Error("bpf-lsm: " + e.error());

    // Install into the idle slot, then flip: one 8-byte array store switches every table.
    const CtlWords& ctl = impl_->ctl;
    const std::uint32_t slot = CG_ACTIVE_SLOT(ctl.get(CG_CTL_ACTIVE)) == 0 ? 1 : 0;
    const std::array<std::pair<int, const UniqueFd*>, 8> outer = {{
        {bpf_map__fd(impl_->skel->maps.cg_roots), &*m_roots},
        {bpf_map__fd(impl_->skel->maps.cg_devs), &*m_devs},
        {bpf_map__fd(impl_->skel->maps.cg_subjects), &*m_subjects},
        {bpf_map__fd(impl_->skel->maps.cg_grants), &*m_grants},
        {bpf_map__fd(impl_->skel->maps.cg_programs), &*m_programs},
        {bpf_map__fd(impl_->skel->maps.cg_denies), &*m_denies},
        {bpf_map__fd(impl_->skel->maps.cg_clients), &*m_clients},
        {bpf_map__fd(impl_->skel->maps.cg_client_denies), &*m_client_denies},
    }};
    for (const auto& [outer_fd, inner] : outer) {
        const std::uint32_t inner_fd = static_cast<std::uint32_t>(inner->get());
        if (bpf_map_update_elem(outer_fd, &slot, &inner_fd, BPF_ANY) != 0)
            return Error("bpf-lsm: installing the new policy generation: " + errno_text(errno));
    }
    bool file_roots = false;
    for (const auto& r : *roots)
        file_roots = file_roots || !r.directory;
    ctl.set(CG_CTL_FILE_ROOTS + slot, file_roots ? 1 : 0);
    // The short dev list of the idle slot (see CG_FAST_DEVS); more devs use the hash.
    ctl.set(CG_CTL_NDEVS + slot, devs.size());
    for (std::size_t i = 0; i < devs.size() && i < CG_FAST_DEVS; ++i)
        ctl.set(CG_CTL_DEVS + slot * CG_FAST_DEVS + static_cast<std::uint32_t>(i), devs[i].first);
    sync_rt_offset(ctl);
    // The flip also moves the directory-cache epoch: entries of the old policy go stale.
    set_active(ctl, slot);
    ctl.set(CG_CTL_GENERATION, ctl.get(CG_CTL_GENERATION) + 1);
    // Wait for an RCU grace period: every hook that read the old slot has returned, so the
    // next apply() may replace that slot's maps. BPF LSM programs run under rcu_read_lock,
    // and MEMBARRIER_CMD_GLOBAL is synchronize_rcu() in the kernel.
    if (::syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) != 0)
        ::usleep(50'000);  // nohz_full kernels refuse it; hooks take microseconds

    if (!attached_) {
        LibbpfLogScope libbpf_log;
        if (auto r = impl_->attach(); !r) {
            set_active(ctl, static_cast<std::uint32_t>(CG_SLOT_NONE));
            return Error("bpf-lsm: " + r.error() + libbpf_log.tail());
        }
        // Maps first, links last: a pinned link from an incompatible older daemon is
        // replaced (and detached) only once ours enforce.
        for (std::size_t i = 0; i < k_map_pins.size(); ++i)
            if (auto r = pin_replace(options_.pin_dir, k_map_pins[i], impl_->map_fd(i)); !r)
                return Error("bpf-lsm: " + r.error());
        for (const char* n : k_retired_pins)
            ::unlink((options_.pin_dir / n).c_str());
        if (auto r = impl_->pin_links(options_.pin_dir); !r)
            return Error("bpf-lsm: " + r.error());
        attached_ = true;
    }
    return {};
}

SensorCounters BpfLsmEnforcer::counters() const
{
    SensorCounters c;
    c.events = delivered_.load();
    c.errors = errors_.load();
    if (!impl_)
        return c;
    const int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0)
        return c;
    std::vector<cg_stats> per_cpu(static_cast<std::size_t>(ncpu));
    const std::uint32_t zero = 0;
    if (bpf_map_lookup_elem(bpf_map__fd(impl_->skel->maps.cg_stats), &zero, per_cpu.data()) == 0) {
        for (const auto& s : per_cpu) {
            c.dropped += s.dropped;
            c.denied += s.denied;
            c.errors += s.unresolved;  // a walk that may have missed a zone is an error to show
        }
    }
    return c;
}

tl::expected<KernelState, std::string> BpfLsmEnforcer::kernel_state() const
{
    if (!impl_)
        return Error("bpf-lsm: not started");
    const CtlWords& ctl = impl_->ctl;
    KernelState s;
    const std::uint64_t a = ctl.get(CG_CTL_ACTIVE);
    s.active_slot = CG_ACTIVE_SLOT(a);
    s.cache_epoch = CG_ACTIVE_EPOCH(a);
    const int ncpu = libbpf_num_possible_cpus();
    if (ncpu > 0) {
        std::vector<cg_stats> per_cpu(static_cast<std::size_t>(ncpu));
        const std::uint32_t zero = 0;
        if (bpf_map_lookup_elem(bpf_map__fd(impl_->skel->maps.cg_stats), &zero, per_cpu.data()) == 0)
            for (const auto& st : per_cpu) {
                s.dircache_fills += st.dircache_fills;
                s.dircache_retired += st.dircache_retired;
                s.reads_folded += st.reads_folded;
                s.read_collisions += st.read_collisions;
            }
    }
    s.generation = ctl.get(CG_CTL_GENERATION);
    s.abi = ctl.get(CG_CTL_ABI);
    return s;
}

void BpfLsmEnforcer::stop(bool remove)
{
    if (!started_)
        return;
    stopping_ = true;
    if (poller_.joinable())
        poller_.join();
    // Pinned programs outlive us: they let nobody through as custguardd meanwhile.
    if (own_tgid_ && impl_->ctl.get(CG_CTL_SELF_TGID) == own_tgid_)
        impl_->ctl.set(CG_CTL_SELF_TGID, 0);
    own_tgid_ = 0;
    if (remove) {
        // Unpin, then drop our references: the last reference detaches the programs.
        for (const char* n : k_link_pins)
            ::unlink((options_.pin_dir / n).c_str());
        for (const char* n : k_map_pins)
            ::unlink((options_.pin_dir / n).c_str());
        for (const char* n : k_retired_pins)
            ::unlink((options_.pin_dir / n).c_str());
        ::rmdir(options_.pin_dir.c_str());
    }
    impl_->ring.reset();
    for (auto& l : impl_->links)
        l.reset();
    impl_.reset();
    started_ = false;
    attached_ = false;
}

}  // namespace custguard::daemon::bpf_lsm
