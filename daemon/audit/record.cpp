#include "daemon/audit/record.hpp"

#include <algorithm>
#include <charconv>

namespace custguard::audit {
namespace {

struct TypeName {
    std::uint16_t type;
    std::string_view name;
};

// The types this host's kernel and auditd write most (linux/audit.h, libaudit's table).
constexpr TypeName type_names[] = {
    {1006, "LOGIN"},          {1100, "USER_AUTH"},      {1101, "USER_ACCT"},     {1103, "CRED_ACQ"},
    {1104, "CRED_DISP"},      {1105, "USER_START"},     {1106, "USER_END"},      {1107, "USER_AVC"},
    {1108, "USER_CHAUTHTOK"}, {1112, "USER_LOGIN"},     {1113, "USER_LOGOUT"},   {1130, "SERVICE_START"},
    {1131, "SERVICE_STOP"},   {1200, "DAEMON_START"},   {1201, "DAEMON_END"},    {1203, "DAEMON_ABORT"},
    {1204, "DAEMON_CONFIG"},  {1205, "DAEMON_RECONFIG"}, {1206, "DAEMON_ROTATE"}, {1300, "SYSCALL"},
    {1302, "PATH"},           {1303, "IPC"},            {1304, "SOCKETCALL"},    {1305, "CONFIG_CHANGE"},
    {1306, "SOCKADDR"},       {1307, "CWD"},            {1309, "EXECVE"},        {1312, "IPC_SET_PERM"},
    {1313, "MQ_OPEN"},        {1318, "FD_PAIR"},        {1320, "EOE"},           {1321, "BPRM_FCAPS"},
    {1322, "CAPSET"},         {1323, "MMAP"},           {1324, "NETFILTER_PKT"}, {1325, "NETFILTER_CFG"},
    {1326, "SECCOMP"},        {1327, "PROCTITLE"},      {1328, "FEATURE_CHANGE"}, {1329, "REPLACE"},
    {1330, "KERN_MODULE"},    {1331, "FANOTIFY"},       {1332, "TIME_INJOFFSET"}, {1333, "TIME_ADJNTPVAL"},
    {1334, "BPF"},            {1335, "EVENT_LISTENER"}, {1336, "URINGOP"},       {1337, "OPENAT2"},
    {1338, "DM_CTRL"},        {1339, "DM_EVENT"},       {1400, "AVC"},           {1700, "ANOM_PROMISCUOUS"},
    {1701, "ANOM_ABEND"},
};

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
int hex_val(char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }

template <typename T>
bool parse_uint(std::string_view s, T& out, int base = 10) {
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, base);
    return ec == std::errc{} && p == s.data() + s.size();
}

// "audit(SEC.MSEC:SERIAL):" at the start of `s`; returns the offset after ':' or npos.
std::size_t parse_stamp(std::string_view s, Stamp& stamp) {
    constexpr std::string_view head = "audit(";
    if (s.substr(0, head.size()) != head) return std::string_view::npos;
    std::size_t close = s.find(')', head.size());
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') return std::string_view::npos;
    std::string_view inner = s.substr(head.size(), close - head.size());
    std::size_t dot = inner.find('.'), colon = inner.find(':');
    if (dot == std::string_view::npos || colon == std::string_view::npos || colon < dot) return std::string_view::npos;
    if (!parse_uint(inner.substr(0, dot), stamp.sec) || !parse_uint(inner.substr(dot + 1, colon - dot - 1), stamp.msec) ||
        !parse_uint(inner.substr(colon + 1), stamp.serial))
        return std::string_view::npos;
    return close + 2;
}

}  // namespace

std::optional<std::uint16_t> type_from_name(std::string_view name) {
    for (const auto& t : type_names)
        if (t.name == name) return t.type;
    if (name.starts_with("UNKNOWN[") && name.ends_with("]")) {
        std::uint16_t v = 0;
        if (parse_uint(name.substr(8, name.size() - 9), v)) return v;
    }
    return std::nullopt;
}

std::string_view type_name(std::uint16_t type) {
    for (const auto& t : type_names)
        if (t.type == type) return t.name;
    return {};
}

std::optional<std::string> decode_hex(std::string_view hex) {
    if (hex.size() % 2) return std::nullopt;
    std::string out;
    out.resize(hex.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i) {
        char a = hex[2 * i], b = hex[2 * i + 1];
        if (!is_hex(a) || !is_hex(b)) return std::nullopt;
        out[i] = static_cast<char>(hex_val(a) << 4 | hex_val(b));
    }
    return out;
}

std::optional<std::uint64_t> parse_dev(std::string_view text) {
    std::size_t colon = text.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    std::uint64_t major = 0, minor = 0;
    if (!parse_uint(text.substr(0, colon), major, 16) || !parse_uint(text.substr(colon + 1), minor, 16)) return std::nullopt;
    if (major >= (1u << 12) || minor >= (1u << 20)) return std::nullopt;
    return major << 20 | minor;
}

std::optional<Record> parse_record(std::uint16_t type, std::string_view text) {
    Record r;
    r.type = type;
    // Netlink payloads may carry a trailing NUL or newline.
    while (!text.empty() && (text.back() == '\0' || text.back() == '\n')) text.remove_suffix(1);
    std::size_t pos = parse_stamp(text, r.stamp);
    if (pos == std::string_view::npos) return std::nullopt;
    r.text_.assign(text);
    std::string_view s = r.text_;
    const std::size_t n = s.size();
    r.fields_.reserve(24);
    while (pos < n) {
        while (pos < n && s[pos] == ' ') ++pos;
        if (pos >= n || s[pos] == '\x1d') break;  // ENRICHED: interpreted values follow
        std::size_t name_start = pos;
        while (pos < n && s[pos] != '=' && s[pos] != ' ' && s[pos] != '\x1d') ++pos;
        if (pos >= n || s[pos] != '=') continue;  // a bare token (AVC "{ read }"): skip it
        FieldRef f;
        f.name_off = static_cast<std::uint32_t>(name_start);
        f.name_len = static_cast<std::uint16_t>(std::min<std::size_t>(pos - name_start, 0xffff));
        ++pos;
        char q = pos < n ? s[pos] : 0;
        if (q == '"' || q == '\'') {
            f.encoding = q == '"' ? Encoding::quoted : Encoding::single_quoted;
            std::size_t end = s.find(q, pos + 1);
            if (end == std::string_view::npos) end = n;  // truncated record: keep what is there
            f.value_off = static_cast<std::uint32_t>(pos + 1);
            f.value_len = static_cast<std::uint32_t>(end - pos - 1);
            pos = end < n ? end + 1 : n;
        } else {
            std::size_t end = pos;
            while (end < n && s[end] != ' ' && s[end] != '\x1d') ++end;
            f.value_off = static_cast<std::uint32_t>(pos);
            f.value_len = static_cast<std::uint32_t>(end - pos);
            pos = end;
        }
        r.fields_.push_back(f);
    }
    return r;
}

std::optional<Record> parse_log_line(std::string_view line) {
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    if (line.starts_with("node=")) {
        std::size_t sp = line.find(' ');
        if (sp == std::string_view::npos) return std::nullopt;
        line.remove_prefix(sp + 1);
    }
    if (!line.starts_with("type=")) return std::nullopt;
    std::size_t sp = line.find(' ');
    if (sp == std::string_view::npos) return std::nullopt;
    auto t = type_from_name(line.substr(5, sp - 5));
    if (!t) return std::nullopt;
    line.remove_prefix(sp + 1);
    if (!line.starts_with("msg=")) return std::nullopt;
    return parse_record(*t, line.substr(4));
}

std::string_view Record::field_name(std::size_t i) const {
    return std::string_view(text_).substr(fields_[i].name_off, fields_[i].name_len);
}

std::string_view Record::raw_value(std::size_t i) const {
    return std::string_view(text_).substr(fields_[i].value_off, fields_[i].value_len);
}

std::optional<std::string_view> Record::raw(std::string_view name) const {
    for (std::size_t i = 0; i < fields_.size(); ++i)
        if (field_name(i) == name) return raw_value(i);
    return std::nullopt;
}

std::optional<std::string> Record::string(std::string_view name) const {
    for (std::size_t i = 0; i < fields_.size(); ++i) {
        if (field_name(i) != name) continue;
        std::string_view v = raw_value(i);
        if (fields_[i].encoding != Encoding::plain) return std::string(v);
        if (v == "(null)" || v == "(none)") return std::nullopt;
        return decode_hex(v);
    }
    return std::nullopt;
}

std::optional<std::uint64_t> Record::number(std::string_view name, bool hex) const {
    auto v = raw(name);
    std::uint64_t out = 0;
    if (!v || !parse_uint(*v, out, hex ? 16 : 10)) return std::nullopt;
    return out;
}

std::optional<std::int64_t> Record::signed_number(std::string_view name) const {
    auto v = raw(name);
    std::int64_t out = 0;
    if (!v || v->empty()) return std::nullopt;
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
    if (ec != std::errc{} || p != v->data() + v->size()) return std::nullopt;
    return out;
}

}  // namespace custguard::audit
