#include "custguard/events/export.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <map>
#include <variant>

#include <fmt/format.h>
#include <spdlog/logger.h>

#include "custguard/common/json_string.hpp"
#include "custguard/common/text_escape.hpp"

namespace custguard::events {

namespace {

using common::append_json_string;

// DESIGN.md fields and the pipeline's own, in the order of custguard.journal(7).
constexpr EcsMapping ecs_table[] = {
    {"CUSTGUARD_EVENT", "custguard.event", false},
    {"CUSTGUARD_DECISION", "custguard.decision", false},
    {"CUSTGUARD_ZONE", "custguard.zone.name", false},
    {"CUSTGUARD_ZONE_ID", "custguard.zone.id", true},
    {"CUSTGUARD_PATH", "file.path", false},
    {"CUSTGUARD_INODE", "file.inode", false},
    {"CUSTGUARD_DEVICE", "file.device", false},
    {"CUSTGUARD_UID", "user.id", false},
    {"CUSTGUARD_USER", "user.name", false},
    {"CUSTGUARD_GID", "group.id", false},
    {"CUSTGUARD_GROUP", "group.name", false},
    {"CUSTGUARD_AUID", "user.audit.id", false},
    {"CUSTGUARD_AUID_USER", "user.audit.name", false},
    {"CUSTGUARD_PID", "process.pid", true},
    {"CUSTGUARD_TID", "process.thread.id", true},
    {"CUSTGUARD_COMM", "process.name", false},
    {"CUSTGUARD_EXE", "process.executable", false},
    {"CUSTGUARD_CMDLINE", "process.command_line", false},
    {"CUSTGUARD_PPID", "process.parent.pid", true},
    {"CUSTGUARD_PARENT_COMM", "process.parent.name", false},
    {"CUSTGUARD_UNIT", "systemd.unit", false},
    {"CUSTGUARD_CGROUP", "systemd.cgroup", false},
    {"CUSTGUARD_CLIENT", "client.ip", false},
    {"CUSTGUARD_SEQ", "event.sequence", true},
    {"CUSTGUARD_RUN", "custguard.run", false},
    {"CUSTGUARD_LOST", "custguard.lost", true},
    {"CUSTGUARD_FILES", "custguard.files", true},
    {"CUSTGUARD_WINDOW_SEC", "custguard.window_sec", true},
    {"CUSTGUARD_HITS", "custguard.hits", true},
    {"CUSTGUARD_REPEATS", "custguard.repeats", true},
    {"CUSTGUARD_PAGES", "custguard.pages", true},
    {"CUSTGUARD_ZONES", "custguard.zones", true},
    {"CUSTGUARD_ERRORS", "custguard.errors", true},
    {"CUSTGUARD_WARNINGS", "custguard.warnings", true},
};

const EcsMapping* find_mapping(std::string_view name) {
    for (const auto& m : ecs_table)
        if (m.journald == name) return &m;
    return nullptr;
}

bool is_integer(std::string_view v) {
    if (v.empty() || v.size() > 19) return false;
    return std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
}

struct Node {
    std::variant<std::monostate, std::string, std::uint64_t, std::vector<std::string>> value;
    std::map<std::string, Node> children;
};

void put(Node& root, std::string_view dotted, decltype(Node::value) value) {
    Node* n = &root;
    while (true) {
        auto dot = dotted.find('.');
        n = &n->children[std::string(dotted.substr(0, dot))];
        if (dot == std::string_view::npos) break;
        dotted.remove_prefix(dot + 1);
    }
    n->value = std::move(value);
}

void emit(std::string& out, const Node& n) {
    if (n.children.empty()) {
        if (auto* s = std::get_if<std::string>(&n.value)) append_json_string(out, *s);
        else if (auto* u = std::get_if<std::uint64_t>(&n.value)) out += std::to_string(*u);
        else if (auto* a = std::get_if<std::vector<std::string>>(&n.value)) {
            out += '[';
            for (std::size_t i = 0; i < a->size(); ++i) {
                if (i) out += ',';
                append_json_string(out, (*a)[i]);
            }
            out += ']';
        } else
            out += "null";
        return;
    }
    out += '{';
    bool first = true;
    for (const auto& [key, child] : n.children) {
        if (!first) out += ',';
        first = false;
        append_json_string(out, key);
        out += ':';
        emit(out, child);
    }
    out += '}';
}

std::string iso_time(std::int64_t usec) {
    std::time_t secs = static_cast<std::time_t>(usec / 1000000);
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                       tm.tm_hour, tm.tm_min, tm.tm_sec, usec % 1000000);
}

const std::string& host_name() {
    static const std::string name = [] {
        char buf[256] = {};
        if (::gethostname(buf, sizeof buf - 1) < 0) return std::string{};
        return std::string(buf);
    }();
    return name;
}

struct EventClass {
    std::string_view kind;
    std::vector<std::string> category;
    std::vector<std::string> type;
};

EventClass classify(const Record& r) {
    switch (r.kind) {
    case Kind::access_allowed:
    case Kind::access_audited:
    case Kind::access_denied: return {"event", {"file"}, {"access"}};
    case Kind::zone_integrity: {
        const std::string* op = r.get(field::operation);
        return {"event", {"file"}, {op && *op == "unlink" ? "deletion" : op && *op == "link" ? "creation" : "change"}};
    }
    case Kind::print: return {"event", {"file"}, {"info"}};
    case Kind::admin_change: return {"event", {"configuration", "iam"}, {"change"}};
    case Kind::policy_reload: return {"event", {"configuration"}, {"change"}};
    case Kind::lost: return {"metric", {"host"}, {"info"}};
    case Kind::sensor_mismatch: return {"alert", {"host"}, {"info"}};
    case Kind::bulk_read: return {"alert", {"file"}, {"access"}};
    case Kind::repeated: return {"alert", {"intrusion_detection"}, {"denied"}};
    case Kind::customer_data_found: return {"alert", {"file"}, {"creation"}};
    }
    return {"event", {}, {}};
}

std::string_view level_name(int priority) {
    switch (priority) {
    case 0: return "emergency";
    case 1: return "alert";
    case 2: return "critical";
    case 3: return "error";
    case 4: return "warning";
    case 5: return "notice";
    case 6: return "informational";
    default: return "debug";
    }
}

}  // namespace

std::span<const EcsMapping> ecs_mappings() { return ecs_table; }

std::string ecs_name(std::string_view journald_field) {
    if (const auto* m = find_mapping(journald_field)) return std::string(m->ecs);
    std::string_view rest = journald_field;
    if (rest.starts_with("CUSTGUARD_")) rest.remove_prefix(10);
    std::string out = "custguard.";
    for (char c : rest) out += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    return out;
}

std::string to_json_line(const Record& record) {
    const KindInfo& k = info(record.kind);
    Node root;
    if (record.realtime_us > 0) put(root, "@timestamp", iso_time(record.realtime_us));
    put(root, "message", record.message.empty() ? std::string(k.name) : record.message);
    const EventClass cls = classify(record);
    put(root, "event.kind", std::string(cls.kind));
    put(root, "event.category", cls.category);
    put(root, "event.type", cls.type);
    put(root, "event.action", std::string(to_string(record.kind)));
    put(root, "event.code", std::string(k.message_id));
    put(root, "event.module", std::string("custguard"));
    put(root, "log.level", std::string(level_name(k.priority)));
    put(root, "log.syslog.severity.code", static_cast<std::uint64_t>(k.priority));
    if (const std::string* d = record.get(field::decision)) {
        if (*d == "deny") put(root, "event.outcome", std::string("failure"));
        else if (*d == "allow" || *d == "audit") put(root, "event.outcome", std::string("success"));
    }
    put(root, "service.name", std::string("custguardd"));
    if (!host_name().empty()) put(root, "host.name", host_name());
    for (const auto& f : record.fields) {
        if (f.name == field::time_usec) continue;  // that is @timestamp
        const EcsMapping* m = find_mapping(f.name);
        std::string name = m ? std::string(m->ecs) : ecs_name(f.name);
        if (m && m->number && is_integer(f.value))
            put(root, name, static_cast<std::uint64_t>(std::stoull(f.value)));
        else
            put(root, name, f.value);
    }
    std::string out;
    out.reserve(1024);
    emit(out, root);
    return out;
}

tl::expected<JsonlWriter, std::string> JsonlWriter::open(std::filesystem::path path) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
    if (!fd) return tl::make_unexpected(fmt::format("open {}: {}", path.string(), std::strerror(errno)));
    return JsonlWriter(std::move(fd), std::move(path));
}

tl::expected<void, std::string> JsonlWriter::write(const Record& record) {
    std::string line = to_json_line(record);
    line += '\n';
    // O_APPEND + one write: a line is never interleaved with another writer's.
    std::size_t off = 0;
    while (off < line.size()) {
        ssize_t n = ::write(fd_.get(), line.data() + off, line.size() - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return tl::make_unexpected(fmt::format("write {}: {}", path_.string(), std::strerror(errno)));
        }
        off += static_cast<std::size_t>(n);
    }
    return {};
}

tl::expected<void, std::string> JsonlWriter::reopen() {
    auto fresh = open(path_);
    if (!fresh) return tl::make_unexpected(fresh.error());
    fd_ = std::move(fresh->fd_);
    return {};
}

std::string format_line(const Record& record) {
    std::string label;
    switch (record.kind) {
    case Kind::access_allowed: label = "ALLOWED"; break;
    case Kind::access_audited: label = "AUDITED"; break;
    case Kind::access_denied: label = "DENIED"; break;
    case Kind::zone_integrity: label = "INTEGRITY"; break;
    case Kind::print: label = "PRINT"; break;
    case Kind::admin_change: label = "ADMIN"; break;
    case Kind::policy_reload: label = "POLICY"; break;
    case Kind::lost: label = "LOST"; break;
    case Kind::sensor_mismatch: label = "MISMATCH"; break;
    case Kind::bulk_read: label = "BULK"; break;
    case Kind::repeated: label = "REPEATED"; break;
    case Kind::customer_data_found: label = "FOUND"; break;
    }
    // One line per record whatever a path contains, and no terminal escapes from it.
    std::string line = fmt::format("{:<9} {}", label,
                                   common::escape_text(record.message.empty() ? info(record.kind).name : record.message));
    if (const std::string* pid = record.get(field::pid)) line += fmt::format(" pid={}", *pid);
    if (const std::string* seq = record.get(field::seq)) line += fmt::format(" seq={}", *seq);
    return line;
}

void log_record(spdlog::logger& logger, const Record& record) {
    const int p = info(record.kind).priority;
    auto level = p <= 3 ? spdlog::level::err : p == 4 ? spdlog::level::warn : p <= 6 ? spdlog::level::info : spdlog::level::debug;
    logger.log(level, "{}", format_line(record));
}

}  // namespace custguard::events
