// libFuzzer target: the audit record parser, the assembler and access extraction on
// arbitrary input. Input: lines, each "<type> <netlink payload>" (as the multicast reader
// gets them) or an auditd log line ("type=SYSCALL msg=audit(...): ...").
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "daemon/audit/access.hpp"
#include "daemon/audit/assembler.hpp"
#include "daemon/audit/cross_check.hpp"
#include "daemon/audit/record.hpp"

using namespace custguard::audit;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    std::vector<Event> events;
    // Small limits so the fuzzer reaches timeouts and overflow quickly.
    Assembler assembler([&](Event&& e) { events.push_back(std::move(e)); }, AssemblerOptions{3, 8, 16});
    std::int64_t now = 0;
    while (!in.empty()) {
        std::size_t nl = in.find('\n');
        std::string_view line = in.substr(0, nl);
        in.remove_prefix(nl == std::string_view::npos ? in.size() : nl + 1);
        std::optional<Record> r;
        if (line.starts_with("type=") || line.starts_with("node=")) {
            r = parse_log_line(line);
        } else {
            std::size_t sp = line.find(' ');
            std::uint32_t type = 0;
            for (std::size_t i = 0; i < sp && i < line.size() && i < 5; ++i)
                type = type * 10 + static_cast<std::uint32_t>(static_cast<unsigned char>(line[i]) % 10);
            if (sp != std::string_view::npos) r = parse_record(static_cast<std::uint16_t>(type), line.substr(sp + 1));
        }
        if (!r) continue;
        for (std::size_t i = 0; i < r->field_count(); ++i) {
            (void)r->field_name(i);
            (void)r->raw_value(i);
        }
        (void)r->string("name");
        (void)r->number("inode");
        (void)r->signed_number("exit");
        if (auto d = r->raw("dev")) (void)parse_dev(*d);
        assembler.push(std::move(*r), now++);
        assembler.expire(now);
    }
    assembler.flush();
    CrossCheck cc(CrossCheckOptions{1000, 4, 4});
    std::int64_t t = 0;
    for (const auto& e : events) {
        auto a = extract_access(e);
        if (!a) continue;
        int fd = -1;
        auto p = a->target_path(&fd);
        (void)a->zone_key("");
        (void)a->zone_key("0123abcd");  // a tagged instance, as the daemon asks
        (void)classify_syscall(a->arch, a->syscall);
        if (const PathItem* target = a->target()) {
            AuditSighting s;
            s.tgid = a->pid;
            s.ino = target->inode;
            s.realtime_ns = a->stamp.realtime_ns();
            s.path = p.value_or("");
            cc.audit_seen(s, t);
            cc.enforcer_seen(EnforcerSighting{a->ppid, target->dev, target->inode, s.realtime_ns, a->auid, 0}, t);
            t += 300;
            (void)cc.poll(t);
        }
    }
    return 0;
}
