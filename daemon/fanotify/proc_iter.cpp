#include "daemon/fanotify/proc_iter.hpp"

#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "cg_iter.skel.h"
#include "custguard_abi.h"
#include "daemon/fanotify/unique_fd.hpp"
#include "daemon/held_socket.hpp"

namespace custguard::daemon::fan {

static_assert(sizeof(cg_held_socket) == 24);
static_assert(offsetof(cg_held_socket, local_port) == 2);
static_assert(offsetof(cg_held_socket, state) == 4);
static_assert(offsetof(cg_held_socket, peer) == 8);
static_assert(sizeof(cg_thread_state) == 8);

namespace {

struct SkelDeleter {
    void operator()(cg_iter* s) const { cg_iter__destroy(s); }
};
struct LinkDeleter {
    void operator()(bpf_link* l) const { bpf_link__destroy(l); }
};

// More records than the callers accept (4096 threads or TCP connections): reading stops
// after one more, so a process cannot make each open read without end.
constexpr std::size_t k_max_records = 4097;

// Runs `prog` for process `tgid` (its threads; for task_file, their one descriptor table)
// and calls on_record for each fixed-size record it wrote, at most k_max_records times.
// False when the iterator failed.
template <typename Record, typename OnRecord>
bool run(bpf_program* prog, std::uint32_t tgid, OnRecord&& on_record) {
    union bpf_iter_link_info info {};
    info.task.pid = tgid;
    LIBBPF_OPTS(bpf_iter_attach_opts, opts, .link_info = &info, .link_info_len = sizeof info);
    std::unique_ptr<bpf_link, LinkDeleter> link(bpf_program__attach_iter(prog, &opts));
    if (!link) return false;
    UniqueFd iter(bpf_iter_create(bpf_link__fd(link.get())));
    if (!iter) return false;
    // Whole records only: each read returns complete writes of the program.
    alignas(Record) unsigned char buf[sizeof(Record) * 64];
    for (std::size_t records = 0; records < k_max_records;) {
        const ssize_t n = ::read(iter.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 || n % static_cast<ssize_t>(sizeof(Record)) != 0) return false;
        if (n == 0) return true;
        for (ssize_t at = 0; at < n && records < k_max_records; at += static_cast<ssize_t>(sizeof(Record)), ++records) {
            Record r;
            std::memcpy(&r, buf + at, sizeof r);
            on_record(r);
        }
    }
    return true;
}

}  // namespace

struct ProcIter::Impl {
    std::unique_ptr<cg_iter, SkelDeleter> skel;
};

ProcIter::ProcIter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ProcIter::~ProcIter() = default;

tl::expected<std::unique_ptr<ProcIter>, std::string> ProcIter::load() {
    auto impl = std::make_unique<Impl>();
    impl->skel.reset(cg_iter__open_and_load());
    if (!impl->skel) return tl::unexpected(std::string("cannot load the BPF iterators: ") + std::strerror(errno));
    // Run both once now, so that a kernel without per-process iterators (before 6.1) is
    // found at start and not on the first open.
    auto self = std::unique_ptr<ProcIter>(new ProcIter(std::move(impl)));
    const auto me = static_cast<std::uint32_t>(::getpid());
    if (!self->sockets(me) || !self->threads(me))
        return tl::unexpected(std::string("cannot run the BPF iterators: ") + std::strerror(errno));
    return self;
}

std::optional<std::vector<events::HeldTcpSocket>> ProcIter::sockets(std::uint32_t tgid) const {
    std::vector<events::HeldTcpSocket> out;
    if (!run<cg_held_socket>(impl_->skel->progs.cg_task_sockets, tgid, [&](const cg_held_socket& s) {
            out.push_back(held_tcp_socket(s));
        }))
        return std::nullopt;
    return out;
}

std::optional<ThreadScan> ProcIter::threads(std::uint32_t tgid) const {
    ThreadScan out;
    if (!run<cg_thread_state>(impl_->skel->progs.cg_task_threads, tgid, [&](const cg_thread_state& t) {
            ++out.threads;
            out.traced = out.traced || t.traced;
        }))
        return std::nullopt;
    return out;
}

}  // namespace custguard::daemon::fan
