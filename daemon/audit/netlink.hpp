// The kernel audit interface: RAII handles for the control socket (libaudit, unicast,
// for status and rules) and the multicast reader socket (AUDIT_NLGRP_READLOG).
//
// The audit pid (the unicast log channel auditd owns) is never set here: a running auditd
// keeps receiving every record, and custguardd reads its copy from the multicast group.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <tl/expected.hpp>

#include "custguard/common/unique_fd.hpp"

struct audit_rule_data;

namespace custguard::audit {

using Fd = common::UniqueFd;

struct RuleDataFree {
    void operator()(audit_rule_data* r) const;
};
using RulePtr = std::unique_ptr<audit_rule_data, RuleDataFree>;

struct KernelStatus {
    std::uint32_t enabled = 0;  // 0 off, 1 on, 2 locked
    std::uint32_t failure = 0;
    std::uint32_t pid = 0;      // auditd's pid, 0 when none
    std::uint32_t lost = 0;     // the kernel's lost-record counter
    std::uint32_t backlog = 0;
    std::uint32_t backlog_limit = 0;
};

// One rule of the kernel's list, as listed (kept whole so it can be deleted exactly).
struct ListedRule {
    std::vector<std::uint8_t> data;  // struct audit_rule_data + buf
    std::uint32_t list = 0;          // AUDIT_FILTER_*
    std::string key;                 // "" when none
    std::string path;                // of a watch (AUDIT_WATCH) or tree (AUDIT_DIR) rule
    bool dir = false;
    std::uint32_t perm = 0;          // AUDIT_PERM_* bits, 0 when absent
};

// A libaudit control socket (audit_open). Needs CAP_AUDIT_CONTROL.
class AuditControl {
public:
    static tl::expected<AuditControl, std::string> open();
    AuditControl(AuditControl&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    AuditControl& operator=(AuditControl&& o) noexcept;
    AuditControl(const AuditControl&) = delete;
    AuditControl& operator=(const AuditControl&) = delete;
    ~AuditControl();

    tl::expected<KernelStatus, std::string> status();
    tl::expected<void, std::string> set_enabled(bool on);
    tl::expected<void, std::string> set_backlog_limit(std::uint32_t limit);
    tl::expected<std::vector<ListedRule>, std::string> list_rules();
    // `-w PATH -p r -k KEY` on the exit list; `dir`: a tree watch (AUDIT_DIR).
    tl::expected<void, std::string> add_read_watch(const std::string& path, const std::string& key, bool dir);
    tl::expected<void, std::string> remove(const ListedRule& rule);

private:
    explicit AuditControl(int fd) : fd_(fd) {}
    // Replies until `want` (or NLMSG_DONE for lists); acks are skipped.
    tl::expected<void, std::string> read_replies(int want, const std::function<bool(const void* rep)>& on_reply,
                                                 int timeout_ms = 2000);
    int fd_ = -1;  // closed with audit_close
};

// A socket in the audit multicast group. Needs CAP_AUDIT_READ.
class MulticastReader {
public:
    static tl::expected<MulticastReader, std::string> open(int receive_buffer_bytes);
    int fd() const { return fd_.get(); }

    // Read what is queued (non-blocking) and call `on_record(type, text)` per message.
    // Returns the number of messages; `overruns` is increased when the kernel reported
    // that records were dropped because the socket buffer was full (ENOBUFS).
    tl::expected<std::size_t, std::string> drain(const std::function<void(std::uint16_t, std::string_view)>& on_record,
                                                 std::uint64_t& overruns, std::size_t max_messages = 4096);

private:
    explicit MulticastReader(Fd fd) : fd_(std::move(fd)), buf_(64 * 1024) {}
    Fd fd_;
    std::vector<char> buf_;
};

}  // namespace custguard::audit
