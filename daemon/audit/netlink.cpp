#include "daemon/audit/netlink.hpp"

#include <errno.h>
#include <fcntl.h>
#include <libaudit.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

namespace custguard::audit {
namespace {

std::string errno_text(int err) { return std::strerror(err < 0 ? -err : err); }

// libaudit prints its errors on stderr unless told not to; ours are returned instead.
void quiet_libaudit() {
    static const bool once = [] {
        set_aumessage_mode(MSG_QUIET, DBG_NO);
        return true;
    }();
    (void)once;
}

bool is_string_field(std::uint32_t field) {
    switch (field) {
    case AUDIT_SUBJ_USER: case AUDIT_SUBJ_ROLE: case AUDIT_SUBJ_TYPE: case AUDIT_SUBJ_SEN:
    case AUDIT_SUBJ_CLR: case AUDIT_OBJ_USER: case AUDIT_OBJ_ROLE: case AUDIT_OBJ_TYPE:
    case AUDIT_OBJ_LEV_LOW: case AUDIT_OBJ_LEV_HIGH: case AUDIT_WATCH: case AUDIT_DIR:
    case AUDIT_FILTERKEY:
#ifdef AUDIT_EXE
    case AUDIT_EXE:
#endif
        return true;
    default:
        return false;
    }
}

ListedRule describe(const audit_rule_data* r, std::size_t size) {
    ListedRule out;
    out.data.assign(reinterpret_cast<const std::uint8_t*>(r), reinterpret_cast<const std::uint8_t*>(r) + size);
    out.list = r->flags & ~AUDIT_FILTER_PREPEND;
    std::size_t off = 0;
    for (std::uint32_t i = 0; i < r->field_count && i < AUDIT_MAX_FIELDS; ++i) {
        const std::uint32_t field = r->fields[i] & ~AUDIT_OPERATORS & ~AUDIT_NEGATE;
        if (is_string_field(field)) {
            std::size_t len = r->values[i];
            if (off + len > r->buflen || sizeof(audit_rule_data) + off + len > size) break;
            std::string s(r->buf + off, len);
            off += len;
            if (field == AUDIT_FILTERKEY) out.key = out.key.empty() ? s : out.key + '\x01' + s;
            else if (field == AUDIT_WATCH) out.path = s;
            else if (field == AUDIT_DIR) out.path = s, out.dir = true;
        } else if (field == AUDIT_PERM) {
            out.perm = r->values[i];
        }
    }
    return out;
}

}  // namespace

void RuleDataFree::operator()(audit_rule_data* r) const { audit_rule_free_data(r); }

tl::expected<AuditControl, std::string> AuditControl::open() {
    quiet_libaudit();
    int fd = audit_open();
    if (fd < 0) return tl::unexpected("cannot open the audit netlink socket: " + errno_text(errno));
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    return AuditControl(fd);
}

AuditControl& AuditControl::operator=(AuditControl&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) audit_close(fd_);
        fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
}

AuditControl::~AuditControl() {
    if (fd_ >= 0) audit_close(fd_);
}

tl::expected<void, std::string> AuditControl::read_replies(int want, const std::function<bool(const void*)>& on_reply,
                                                           int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    auto rep = std::make_unique<audit_reply>();
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return tl::unexpected(std::string("no reply from the kernel's audit subsystem"));
        pollfd p{fd_, POLLIN, 0};
        int pr = ::poll(&p, 1, static_cast<int>(left.count()));
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) continue;
        int len = audit_get_reply(fd_, rep.get(), GET_REPLY_NONBLOCKING, 0);
        if (len == -EAGAIN || len == 0) continue;
        if (len < 0) return tl::unexpected("audit netlink: " + errno_text(len));
        if (rep->type == NLMSG_ERROR) {
            if (rep->error->error == 0) continue;  // the ack of a request
            return tl::unexpected(errno_text(rep->error->error));
        }
        if (rep->type == NLMSG_DONE) {
            if (want == NLMSG_DONE) return {};
            continue;
        }
        if (rep->type == want || (want == NLMSG_DONE && rep->type == AUDIT_LIST_RULES)) {
            if (!on_reply(rep.get())) return {};
        }
    }
}

tl::expected<KernelStatus, std::string> AuditControl::status() {
    if (int rc = audit_request_status(fd_); rc < 0) return tl::unexpected("audit status: " + errno_text(rc));
    KernelStatus st;
    auto r = read_replies(AUDIT_GET, [&](const void* p) {
        const auto* rep = static_cast<const audit_reply*>(p);
        st.enabled = rep->status->enabled;
        st.failure = rep->status->failure;
        st.pid = rep->status->pid;
        st.lost = rep->status->lost;
        st.backlog = rep->status->backlog;
        st.backlog_limit = rep->status->backlog_limit;
        return false;
    });
    if (!r) return tl::unexpected("audit status: " + r.error());
    return st;
}

tl::expected<void, std::string> AuditControl::set_enabled(bool on) {
    if (int rc = audit_set_enabled(fd_, on ? 1 : 0); rc < 0)
        return tl::unexpected(std::string("cannot ") + (on ? "enable" : "disable") + " audit: " + errno_text(rc));
    return {};
}

tl::expected<void, std::string> AuditControl::set_backlog_limit(std::uint32_t limit) {
    if (int rc = audit_set_backlog_limit(fd_, limit); rc < 0)
        return tl::unexpected("cannot set the audit backlog limit to " + std::to_string(limit) + ": " + errno_text(rc));
    return {};
}

tl::expected<std::vector<ListedRule>, std::string> AuditControl::list_rules() {
    if (int rc = audit_request_rules_list_data(fd_); rc < 0)
        return tl::unexpected("cannot list audit rules: " + errno_text(rc));
    std::vector<ListedRule> out;
    auto r = read_replies(NLMSG_DONE, [&](const void* p) {
        const auto* rep = static_cast<const audit_reply*>(p);
        std::size_t size = sizeof(audit_rule_data) + rep->ruledata->buflen;
        if (static_cast<std::size_t>(rep->len) >= size) out.push_back(describe(rep->ruledata, size));
        return true;
    });
    if (!r) return tl::unexpected("cannot list audit rules: " + r.error());
    return out;
}

tl::expected<void, std::string> AuditControl::add_read_watch(const std::string& path, const std::string& key, bool dir) {
    RulePtr rule(audit_rule_create_data());
    if (!rule) return tl::unexpected(std::string("out of memory"));
    audit_rule_data* raw = rule.release();
    // audit_add_watch_dir replaces the rule it is given (and frees the old one).
    int rc = audit_add_watch_dir(dir ? AUDIT_DIR : AUDIT_WATCH, &raw, path.c_str());
    rule.reset(raw);
    if (rc != 0) return tl::unexpected(path + ": not a valid watch path");
    if (audit_update_watch_perms(rule.get(), AUDIT_PERM_READ) != 0)
        return tl::unexpected(path + ": cannot set the watch permissions");
    raw = rule.release();
    rc = audit_rule_fieldpair_data(&raw, ("key=" + key).c_str(), AUDIT_FILTER_EXIT);
    rule.reset(raw);
    if (rc != 0) return tl::unexpected("audit key " + key + " refused (too long?)");
    rc = audit_add_rule_data(fd_, rule.get(), AUDIT_FILTER_EXIT, AUDIT_ALWAYS);
    if (rc == -EEXIST) return {};
    if (rc < 0) return tl::unexpected(path + ": cannot add the audit watch: " + errno_text(rc));
    return {};
}

tl::expected<void, std::string> AuditControl::remove(const ListedRule& rule) {
    std::vector<std::uint8_t> copy = rule.data;  // libaudit writes flags/action into it
    auto* r = reinterpret_cast<audit_rule_data*>(copy.data());
    int rc = audit_delete_rule_data(fd_, r, r->flags, r->action);
    if (rc < 0 && rc != -ENOENT)
        return tl::unexpected("cannot delete the audit rule for " + rule.path + ": " + errno_text(rc));
    return {};
}

tl::expected<MulticastReader, std::string> MulticastReader::open(int receive_buffer_bytes) {
    Fd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_AUDIT));
    if (!fd) return tl::unexpected("cannot open an audit netlink socket: " + errno_text(errno));
    // A burst of reads must not overrun the buffer while the reader is busy; FORCE needs
    // CAP_NET_ADMIN, the plain option is capped by net.core.rmem_max.
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &receive_buffer_bytes, sizeof receive_buffer_bytes) != 0)
        ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes, sizeof receive_buffer_bytes);
    sockaddr_nl addr{};
    addr.nl_family = AF_NETLINK;
    addr.nl_groups = 1u << (AUDIT_NLGRP_READLOG - 1);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        int err = errno;
        return tl::unexpected("cannot join the audit multicast group (needs CAP_AUDIT_READ): " + errno_text(err));
    }
    return MulticastReader(std::move(fd));
}

tl::expected<std::size_t, std::string> MulticastReader::drain(
    const std::function<void(std::uint16_t, std::string_view)>& on_record, std::uint64_t& overruns,
    std::size_t max_messages) {
    std::size_t count = 0;
    while (count < max_messages) {
        ssize_t n = ::recv(fd_.get(), buf_.data(), buf_.size(), 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            if (errno == ENOBUFS) {  // records were dropped for this socket; go on reading
                ++overruns;
                continue;
            }
            return tl::unexpected("audit multicast: " + errno_text(errno));
        }
        // The multicast copy carries a standard nlmsg_len (the unicast one does not).
        std::size_t len = static_cast<std::size_t>(n);
        std::size_t off = 0;
        while (off + NLMSG_HDRLEN <= len) {
            const auto* h = reinterpret_cast<const nlmsghdr*>(buf_.data() + off);
            std::size_t msg_len = h->nlmsg_len;
            if (msg_len < NLMSG_HDRLEN || off + msg_len > len) msg_len = len - off;
            if (h->nlmsg_type >= NLMSG_MIN_TYPE)
                on_record(h->nlmsg_type, std::string_view(buf_.data() + off + NLMSG_HDRLEN, msg_len - NLMSG_HDRLEN));
            ++count;
            off += NLMSG_ALIGN(msg_len);
        }
    }
    return count;
}

}  // namespace custguard::audit
