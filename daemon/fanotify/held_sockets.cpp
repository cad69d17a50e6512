#include "daemon/fanotify/held_sockets.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>

#include "cg_sockets.skel.h"
#include "custguard_abi.h"
#include "daemon/fanotify/unique_fd.hpp"

namespace custguard::daemon::fan {

static_assert(sizeof(cg_held_socket) == 40);
static_assert(offsetof(cg_held_socket, fd) == 8);
static_assert(offsetof(cg_held_socket, local_port) == 14);
static_assert(offsetof(cg_held_socket, state) == 16);
static_assert(offsetof(cg_held_socket, peer) == 24);

namespace {

struct SkelDeleter {
    void operator()(cg_sockets* s) const { cg_sockets__destroy(s); }
};
struct LinkDeleter {
    void operator()(bpf_link* l) const { bpf_link__destroy(l); }
};

std::string peer_text(const cg_held_socket& s) {
    char text[INET6_ADDRSTRLEN] = {};
    in6_addr a6{};
    std::memcpy(&a6, s.peer, sizeof a6);
    if (s.family == AF_INET6 && !IN6_IS_ADDR_V4MAPPED(&a6))
        return ::inet_ntop(AF_INET6, &a6, text, sizeof text) ? text : "";
    in_addr a4{};
    std::memcpy(&a4, s.family == AF_INET ? s.peer : s.peer + 12, sizeof a4);
    return ::inet_ntop(AF_INET, &a4, text, sizeof text) ? text : "";
}

}  // namespace

struct HeldSockets::Impl {
    std::unique_ptr<cg_sockets, SkelDeleter> skel;
};

HeldSockets::HeldSockets(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HeldSockets::~HeldSockets() = default;

tl::expected<std::unique_ptr<HeldSockets>, std::string> HeldSockets::load() {
    auto impl = std::make_unique<Impl>();
    impl->skel.reset(cg_sockets__open_and_load());
    if (!impl->skel) return tl::unexpected(std::string("cannot load the socket iterator: ") + std::strerror(errno));
    // Attach once now, so that a kernel without per-process iterators (before 6.1) is
    // found at start and not on the first open.
    auto self = std::unique_ptr<HeldSockets>(new HeldSockets(std::move(impl)));
    if (!self->list(static_cast<std::uint32_t>(::getpid())))
        return tl::unexpected(std::string("cannot run the socket iterator: ") + std::strerror(errno));
    return self;
}

std::optional<std::vector<events::HeldTcpSocket>> HeldSockets::list(std::uint32_t tgid) const {
    union bpf_iter_link_info info {};
    info.task.pid = tgid;  // this process's threads; they share one descriptor table
    LIBBPF_OPTS(bpf_iter_attach_opts, opts, .link_info = &info, .link_info_len = sizeof info);
    std::unique_ptr<bpf_link, LinkDeleter> link(bpf_program__attach_iter(impl_->skel->progs.cg_task_sockets, &opts));
    if (!link) return std::nullopt;
    UniqueFd iter(bpf_iter_create(bpf_link__fd(link.get())));
    if (!iter) return std::nullopt;
    std::vector<events::HeldTcpSocket> out;
    // Whole records only: the kernel fills the buffer with complete writes of the program.
    alignas(cg_held_socket) unsigned char buf[sizeof(cg_held_socket) * 64];
    for (;;) {
        const ssize_t n = ::read(iter.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 || n % static_cast<ssize_t>(sizeof(cg_held_socket)) != 0) return std::nullopt;
        if (n == 0) break;
        for (ssize_t at = 0; at < n; at += static_cast<ssize_t>(sizeof(cg_held_socket))) {
            cg_held_socket s;
            std::memcpy(&s, buf + at, sizeof s);
            out.push_back({s.local_port, s.state, peer_text(s)});
        }
    }
    return out;
}

}  // namespace custguard::daemon::fan
