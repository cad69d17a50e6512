#include "daemon/exec/exec_tracker.hpp"
#include "custguard/common/errno_text.hpp"
#include "custguard/common/unique_dir.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cg_exec.skel.h"
#include "custguard_abi.h"
#include "daemon/exec/loader_env.hpp"
#include "daemon/fanotify/unique_fd.hpp"
#include "daemon/bpf_pin.hpp"
#include "daemon/held_socket.hpp"

namespace custguard::daemon::exec {

namespace {

using Error = tl::unexpected<std::string>;

using common::errno_text;

constexpr const char* k_map_pin = "cg_exec_tasks";
constexpr std::array<const char*, 5> k_link_pins = {"cg_exec_link_exec", "cg_exec_link_fork", "cg_exec_link_exit",
                                                    "cg_exec_link_ptrace", "cg_exec_link_traceme"};
constexpr std::size_t k_max_history = 16;  // identities kept per pid (exec chains, reuse)

struct SkelDeleter {
    void operator()(cg_exec* s) const { cg_exec__destroy(s); }
};
struct LinkDeleter {
    void operator()(bpf_link* l) const { bpf_link__destroy(l); }
};
struct RingDeleter {
    void operator()(ring_buffer* r) const { ring_buffer__free(r); }
};

std::uint64_t kernel_dev(dev_t d) { return (std::uint64_t{major(d)} << 20) | minor(d); }

bool same_file(const std::string& path, std::uint64_t dev, std::uint64_t ino) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && kernel_dev(st.st_dev) == dev && st.st_ino == ino;
}

std::string read_link(const std::string& path) {
    char buf[PATH_MAX];
    ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

std::string c_string(const char* s, std::size_t max) { return std::string(s, ::strnlen(s, max)); }

// Whether the kernel runs BPF LSM programs ("bpf" in the active LSM list).
bool bpf_lsm_active() {
    char buf[512];
    UniqueFd fd(::open("/sys/kernel/security/lsm", O_RDONLY | O_CLOEXEC));
    ssize_t n = fd ? ::read(fd.get(), buf, sizeof buf - 1) : -1;
    if (n <= 0) return false;
    std::string list = "," + std::string(buf, static_cast<std::size_t>(n)) + ",";
    return list.find(",bpf,") != std::string::npos;
}

// Flags for the processes that started before the programs were attached (services
// started before custguardd): from /proc, their best witness. Entries the tracker made
// meanwhile are kept (BPF_NOEXIST); untainted processes need none.
void seed_running(int map_fd) {
    common::UniqueDir proc = common::UniqueDir::from_fd(::open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!proc) return;
    while (dirent* e = proc.next()) {
        std::uint32_t tgid = 0;
        const char* p = e->d_name;
        for (; *p >= '0' && *p <= '9'; ++p) tgid = tgid * 10 + static_cast<std::uint32_t>(*p - '0');
        if (*p != '\0' || tgid == 0) continue;
        cg_exec_task t{};
        if (bpf_map_lookup_elem(map_fd, &tgid, &t) == 0) continue;
        t.flags = proc_loader_flags(tgid);
        if (t.flags & CG_TASK_ENV_UNREAD) {
            // Gone meanwhile, or a kernel thread (no environment): nothing to mark.
            if (::access(("/proc/" + std::to_string(tgid) + "/exe").c_str(), F_OK) != 0) continue;
        }
        if (t.flags) bpf_map_update_elem(map_fd, &tgid, &t, BPF_NOEXIST);
    }
}

}  // namespace

std::string join_args(const char* args, std::size_t len) {
    std::string out(args, len);
    const bool cut = !out.empty() && out.back() != '\0';
    while (!out.empty() && out.back() == '\0') out.pop_back();
    for (char& c : out)
        if (c == '\0') c = ' ';
    if (cut) out += "...";
    return out;
}

struct ExecTracker::Impl {
    struct Identity {
        events::ExecIdentity id;
        bool resolved = false;  // exe made canonical (or found not to be resolvable)
    };
    struct Entry {
        std::uint64_t start_ns = 0;     // exec or fork
        std::uint64_t incarnation = 0;  // the process (one fork) it belongs to
        bool exec = false;              // an exec (else the program inherited at fork)
        std::uint64_t exit_ns = 0;      // the process exited (set on its last entry)
        std::shared_ptr<Identity> identity;  // null: unknown (parent from before the tracker)
    };

    Options options;
    std::unique_ptr<cg_exec, SkelDeleter> skel;
    std::array<std::unique_ptr<bpf_link, LinkDeleter>, k_link_pins.size()> links;
    std::unique_ptr<ring_buffer, RingDeleter> ring;
    UniqueFd stop_efd;
    std::thread consumer;
    std::atomic<bool> stopping{false};

    mutable std::mutex mutex;  // ring consumption and everything below
    std::unordered_map<std::uint32_t, std::deque<Entry>> procs;
    std::uint64_t next_incarnation = 1;
    std::uint64_t last_ns = 0;
    std::size_t since_sweep = 0;
    Stats stats;
    std::shared_ptr<events::SambaClients> samba;  // told of smbd forks and of exits

    static int on_record(void* ctx, void* data, std::size_t size) {
        static_cast<Impl*>(ctx)->handle(data, size);
        return 0;
    }

    void handle(const void* data, std::size_t size) {
        if (size < sizeof(cg_exec_note)) return;
        const auto* note = static_cast<const cg_exec_note*>(data);
        if (note->abi_version != CG_ABI_VERSION) return;
        last_ns = note->ts_ns;
        switch (note->kind) {
        case CG_EXEC_EXEC:
            if (size >= sizeof(cg_exec_event)) on_exec(*static_cast<const cg_exec_event*>(data));
            break;
        case CG_EXEC_FORK: on_fork(*note); break;
        case CG_EXEC_EXIT: on_exit(*note); break;
        case CG_EXEC_PEER:
            if (size >= sizeof(cg_exec_peer)) on_peer(*static_cast<const cg_exec_peer*>(data));
            break;
        default: break;
        }
        if (++since_sweep >= 4096 || procs.size() > options.max_processes) sweep();
    }

    void push(std::uint32_t tgid, Entry e) {
        auto& list = procs[tgid];
        list.push_back(std::move(e));
        if (list.size() > k_max_history) list.pop_front();
    }

    void on_exec(const cg_exec_event& ev) {
        ++stats.execs;
        auto ident = std::make_shared<Identity>();
        events::ExecIdentity& id = ident->id;
        id.exe = c_string(ev.exe, sizeof ev.exe);
        id.cmdline = join_args(ev.args, std::min<std::size_t>(ev.args_len, sizeof ev.args));
        id.comm = c_string(ev.comm, sizeof ev.comm);
        id.ppid = ev.ppid;
        id.parent_comm = c_string(ev.parent_comm, sizeof ev.parent_comm);
        id.loginuid = ev.loginuid;
        id.exe_dev = ev.exe_dev;
        id.exe_ino = ev.exe_ino;
        if (!id.exe.starts_with('/')) {
            // A relative name means nothing later (the working directory is gone with the
            // process): ask /proc now, while the process most likely still runs.
            const std::string link = "/proc/" + std::to_string(ev.tgid) + "/exe";
            std::string target = read_link(link);
            if (!target.empty() && same_file(link, id.exe_dev, id.exe_ino)) id.exe = std::move(target);
            ident->resolved = true;
        }
        Entry e;
        e.start_ns = ev.ts_ns;
        e.exec = true;
        e.identity = std::move(ident);
        auto it = procs.find(ev.tgid);
        if (it != procs.end() && !it->second.empty() && it->second.back().exit_ns == 0)
            e.incarnation = it->second.back().incarnation;  // the same process, a new program
        else
            e.incarnation = next_incarnation++;  // forked before the tracker knew it
        push(ev.tgid, std::move(e));
    }

    void on_fork(const cg_exec_note& n) {
        ++stats.forks;
        Entry e;
        e.start_ns = n.ts_ns;
        e.incarnation = next_incarnation++;
        if (const Entry* parent = entry_at(n.other, n.ts_ns); parent && parent->identity && parent->exit_ns == 0) {
            auto ident = std::make_shared<Identity>(*parent->identity);
            ident->id.ppid = n.other;
            ident->id.parent_comm = parent->identity->id.comm;
            e.identity = std::move(ident);
        }
        push(n.tgid, std::move(e));
    }

    void on_peer(const cg_exec_peer& p) {
        ++stats.samba_peers;
        if (samba) samba->held_at_fork(p.tgid, p.ts_ns, held_tcp_socket(p.socket));
    }

    void on_exit(const cg_exec_note& n) {
        ++stats.exits;
        if (samba) samba->exited(n.tgid);
        auto it = procs.find(n.tgid);
        if (it != procs.end() && !it->second.empty() && it->second.back().exit_ns == 0)
            it->second.back().exit_ns = n.ts_ns;
    }

    // Forgets processes that exited more than keep_exited ago; at the size bound, the
    // ones that exited first, then any.
    void sweep() {
        since_sweep = 0;
        const std::uint64_t keep = static_cast<std::uint64_t>(options.keep_exited.count()) * 1'000'000'000ull;
        std::erase_if(procs, [&](const auto& kv) {
            const Entry& last = kv.second.back();
            return last.exit_ns != 0 && last.exit_ns + keep < last_ns;
        });
        if (procs.size() <= options.max_processes) return;
        std::vector<std::pair<std::uint64_t, std::uint32_t>> exited;
        for (const auto& [tgid, list] : procs)
            if (list.back().exit_ns) exited.emplace_back(list.back().exit_ns, tgid);
        std::sort(exited.begin(), exited.end());
        for (const auto& [ns, tgid] : exited) {
            if (procs.size() <= options.max_processes * 3 / 4) break;
            procs.erase(tgid);
        }
        while (procs.size() > options.max_processes) procs.erase(procs.begin());
    }

    // The latest entry of `tgid` that started at or before `ns`.
    const Entry* entry_at(std::uint32_t tgid, std::uint64_t ns) const {
        auto it = procs.find(tgid);
        if (it == procs.end()) return nullptr;
        const Entry* found = nullptr;
        for (const Entry& e : it->second)
            if (e.start_ns <= ns) found = &e;
        return found;
    }

    void resolve(Identity& ident) {
        if (ident.resolved) return;
        ident.resolved = true;
        // The canonical name of the same file (symlinks such as /bin -> usr/bin resolved),
        // else the name execve was given.
        if (char* real = ::realpath(ident.id.exe.c_str(), nullptr)) {
            std::string r(real);
            std::free(real);
            if (same_file(r, ident.id.exe_dev, ident.id.exe_ino)) ident.id.exe = std::move(r);
        }
    }

    void drain() {
        if (ring) ring_buffer__consume(ring.get());
    }

    // stats, with the records the kernel could not queue (per-CPU counters).
    Stats with_drops() const {
        Stats s = stats;
        if (skel) {
            const int ncpu = libbpf_num_possible_cpus();
            std::vector<cg_exec_stats> per_cpu(ncpu > 0 ? static_cast<std::size_t>(ncpu) : 1);
            const std::uint32_t zero = 0;
            if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.cg_exec_stats), &zero, per_cpu.data()) == 0)
                for (const auto& c : per_cpu) s.dropped += c.dropped;
        }
        return s;
    }

    void loop() {
        pollfd fds[2] = {{ring_buffer__epoll_fd(ring.get()), POLLIN, 0}, {stop_efd.get(), POLLIN, 0}};
        while (!stopping.load()) {
            if (::poll(fds, 2, 1000) < 0 && errno != EINTR) break;
            if (fds[1].revents) break;
            std::lock_guard lk(mutex);
            drain();
        }
    }
};

ExecTracker::ExecTracker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ExecTracker::~ExecTracker() { stop(false); }

tl::expected<std::shared_ptr<ExecTracker>, std::string> ExecTracker::start(Options options) {
    auto impl = std::make_unique<Impl>();
    impl->options = options;
    const bool pinned = !options.pin_dir.empty();
    if (pinned) {
        if (::mkdir(options.pin_dir.c_str(), 0700) != 0 && errno != EEXIST)
            return Error("creating " + options.pin_dir.string() + ": " + errno_text(errno));
        struct statfs fs {};
        if (::statfs(options.pin_dir.c_str(), &fs) != 0 || fs.f_type != BPF_FS_MAGIC)
            return Error(options.pin_dir.string() + " is not on a bpf filesystem");
    }
    const std::string map_pin = pinned ? (options.pin_dir / k_map_pin).string() : std::string();
    const bool lsm = bpf_lsm_active();
    for (int attempt = 0; attempt < 2; ++attempt) {
        impl->skel.reset(cg_exec__open());
        if (!impl->skel) return Error("opening the BPF object: " + errno_text(errno));
        // Without BPF LSM, tracers are seen only while attached (the enforcer asks then).
        bpf_program__set_autoload(impl->skel->progs.cg_ptrace_access, lsm);
        bpf_program__set_autoload(impl->skel->progs.cg_ptrace_traceme, lsm);
        // Reuses the pinned map (the flags of processes started while no daemon ran, and
        // the one the BPF-LSM program reads), or creates and pins it.
        if (pinned) bpf_map__set_pin_path(impl->skel->maps.cg_exec_tasks, map_pin.c_str());
        int err = cg_exec__load(impl->skel.get());
        if (err == 0) break;
        impl->skel.reset();
        // A pinned map of another layout (an older build): replace it.
        if (!pinned || attempt == 1 || ::unlink(map_pin.c_str()) != 0)
            return Error("loading the BPF programs: " + errno_text(err) +
                         " (needs raw tracepoints, BTF and bpf_loop: Linux 5.17 or later)");
    }
    bpf_program* progs[] = {impl->skel->progs.cg_exec, impl->skel->progs.cg_fork, impl->skel->progs.cg_exit,
                            impl->skel->progs.cg_ptrace_access, impl->skel->progs.cg_ptrace_traceme};
    const std::size_t nprogs = lsm ? k_link_pins.size() : 3;
    for (std::size_t i = 0; i < nprogs; ++i) {
        impl->links[i].reset(bpf_program__attach(progs[i]));
        if (!impl->links[i]) {
            int err = errno;
            for (auto& l : impl->links) l.reset();
            return Error(std::string("attaching ") + bpf_program__name(progs[i]) + ": " + errno_text(err));
        }
    }
    if (pinned)
        for (std::size_t i = 0; i < nprogs; ++i)
            if (auto r = pin_replace(options.pin_dir, k_link_pins[i], bpf_link__fd(impl->links[i].get())); !r)
                return Error(r.error());
    seed_running(bpf_map__fd(impl->skel->maps.cg_exec_tasks));
    impl->ring.reset(ring_buffer__new(bpf_map__fd(impl->skel->maps.cg_exec_events), &Impl::on_record, impl.get(), nullptr));
    if (!impl->ring) return Error("opening the ring buffer: " + errno_text(errno));
    impl->stop_efd = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!impl->stop_efd) return Error("eventfd: " + errno_text(errno));
    Impl* raw = impl.get();
    impl->consumer = std::thread([raw] { raw->loop(); });
    return std::shared_ptr<ExecTracker>(new ExecTracker(std::move(impl)));
}

std::optional<events::ExecIdentity> ExecTracker::identity_at(std::uint32_t tgid, std::uint64_t mono_ns) {
    std::lock_guard lk(impl_->mutex);
    // Whatever was exec'd before the access is in the ring by now: the access came later.
    impl_->drain();
    auto it = impl_->procs.find(tgid);
    const Impl::Entry* e = impl_->entry_at(tgid, mono_ns);
    if (!e || !e->identity) {
        ++impl_->stats.unknown;
        return std::nullopt;
    }
    ++impl_->stats.answered;
    impl_->resolve(*e->identity);
    events::ExecIdentity out = e->identity->id;
    const auto& list = it->second;
    for (const Impl::Entry& later : list) {
        if (later.incarnation != e->incarnation) continue;
        if (later.exit_ns) out.exited = true;
        if (later.start_ns > e->start_ns && later.exec && later.identity && out.later_exe.empty()) {
            impl_->resolve(*later.identity);
            out.later_exe = later.identity->id.exe;
        }
    }
    return out;
}

std::string ExecTracker::why_unknown(std::uint32_t tgid, std::uint64_t mono_ns) {
    std::lock_guard lk(impl_->mutex);
    impl_->drain();
    const Impl::Entry* e = impl_->entry_at(tgid, mono_ns);
    if (e && e->identity) return {};
    const Stats s = impl_->with_drops();
    std::string why = "pid " + std::to_string(tgid);
    auto it = impl_->procs.find(tgid);
    if (it == impl_->procs.end()) {
        why += ": no exec, fork or exit of it seen";
    } else {
        why += ": its entries (start, exit ns; the lookup was at " + std::to_string(mono_ns) + "):";
        for (const Impl::Entry& x : it->second)
            why += std::string(" ") + (x.exec ? "exec" : "fork") + "@" + std::to_string(x.start_ns) +
                   (x.exit_ns ? "/exit@" + std::to_string(x.exit_ns) : "") + (x.identity ? "" : "(no program)");
    }
    return why + " (tracker: " + std::to_string(s.execs) + " execs, " + std::to_string(s.forks) + " forks, " +
           std::to_string(s.exits) + " exits, " + std::to_string(impl_->procs.size()) + " processes known, " +
           std::to_string(s.dropped) + " records lost)";
}

void ExecTracker::report_samba_forks(std::shared_ptr<events::SambaClients> clients) {
    std::lock_guard lk(impl_->mutex);
    impl_->samba = std::move(clients);
}

std::optional<std::uint32_t> ExecTracker::task_flags(std::uint32_t tgid) const {
    cg_exec_task t{};
    if (!impl_->skel || bpf_map_lookup_elem(bpf_map__fd(impl_->skel->maps.cg_exec_tasks), &tgid, &t) != 0)
        return std::nullopt;
    return t.flags;
}

Stats ExecTracker::stats() const {
    std::lock_guard lk(impl_->mutex);
    return impl_->with_drops();
}

void ExecTracker::stop(bool remove) {
    if (!impl_ || !impl_->skel) return;
    impl_->stopping = true;
    if (impl_->stop_efd) {
        const std::uint64_t one = 1;
        (void)!::write(impl_->stop_efd.get(), &one, sizeof one);
    }
    if (impl_->consumer.joinable()) impl_->consumer.join();
    if (remove && !impl_->options.pin_dir.empty()) {
        for (const char* n : k_link_pins) ::unlink((impl_->options.pin_dir / n).c_str());
        ::unlink((impl_->options.pin_dir / k_map_pin).c_str());
    }
    std::lock_guard lk(impl_->mutex);
    impl_->ring.reset();
    for (auto& l : impl_->links) l.reset();
    impl_->skel.reset();
}

}  // namespace custguard::daemon::exec
