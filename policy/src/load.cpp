// Parsing, merging and validation of policy files. Every problem becomes a diagnostic with
// the position of the offending key or value; nothing is silently ignored.
#include "custguard/policy/load.hpp"

#include <algorithm>
#include <arpa/inet.h>  // inet_pton: pure text conversion, no system call
#include <charconv>
#include <cstdio>
#include <map>
#include <set>
#include <unordered_map>

#include <toml++/toml.h>

#include "custguard/policy/state.hpp"
#include "toml_guard.hpp"

namespace custguard::policy {
namespace {

// ---------------------------------------------------------------------------------------
// helpers

SourcePos pos_of(const toml::source_region& region, const std::string& file) {
    return SourcePos{file, region.begin.line, region.begin.column};
}

std::string type_name(const toml::node& node) {
    switch (node.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
    }
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1,
                               prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
        }
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

std::string join(const std::vector<std::string_view>& words) {
    std::string out;
    for (auto w : words) {
        if (!out.empty()) out += ", ";
        out += w;
    }
    return out;
}

bool valid_name(std::string_view name) {
    if (name.empty() || name.size() > 64) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_' || c == '.';
    });
}

// POSIX-portable user/group names, plus the characters Samba/AD names bring along
// (DOMAIN\user, user@realm).
bool valid_principal(std::string_view name) {
    if (name.empty() || name.size() > 256) return false;
    if (name.front() == '-') return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_' || c == '.' || c == '$' || c == '@' || c == '\\' ||
               static_cast<unsigned char>(c) >= 0x80;
    });
}

bool valid_email(std::string_view s) {
    auto at = s.find('@');
    if (at == std::string_view::npos || at == 0 || at + 1 >= s.size()) return false;
    if (s.find('@', at + 1) != std::string_view::npos) return false;
    if (s.find_first_of(" \t\r\n<>,;\"") != std::string_view::npos) return false;
    auto domain = s.substr(at + 1);
    return domain.find('.') != std::string_view::npos && domain.front() != '.' &&
           domain.back() != '.';
}

bool valid_hostname(std::string_view s) {
    if (s.empty() || s.size() > 253 || s.front() == '.' || s.back() == '.' || s.front() == '-')
        return false;
    bool has_alpha = false;
    for (char c : s) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) has_alpha = true;
        else if (!((c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
    }
    return has_alpha;  // all-digit "names" are malformed addresses, not host names
}

}  // namespace

std::optional<ClientMatch> parse_client(std::string_view text) {
    ClientMatch m;
    m.text = std::string(text);
    std::string addr(text);
    std::optional<unsigned> prefix;
    if (auto slash = addr.find('/'); slash != std::string::npos) {
        unsigned p = 0;
        auto digits = std::string_view(addr).substr(slash + 1);
        auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), p);
        if (ec != std::errc{} || end != digits.data() + digits.size() || digits.empty())
            return std::nullopt;
        prefix = p;
        addr.resize(slash);
    }
    if (inet_pton(AF_INET, addr.c_str(), m.addr) == 1) {
        if (prefix && *prefix > 32) return std::nullopt;
        m.family = 4;
        m.prefix = static_cast<std::uint8_t>(prefix.value_or(32));
        // The network address must not have host bits set: "10.0.0.1/8" is a typo.
        for (unsigned bit = m.prefix; bit < 32; ++bit)
            if (m.addr[bit / 8] & (0x80 >> (bit % 8))) return std::nullopt;
        return m;
    }
    if (inet_pton(AF_INET6, addr.c_str(), m.addr) == 1) {
        if (prefix && *prefix > 128) return std::nullopt;
        m.family = 6;
        m.prefix = static_cast<std::uint8_t>(prefix.value_or(128));
        for (unsigned bit = m.prefix; bit < 128; ++bit)
            if (m.addr[bit / 8] & (0x80 >> (bit % 8))) return std::nullopt;
        return m;
    }
    if (!prefix && valid_hostname(addr)) {
        m.hostname = addr;
        return m;
    }
    return std::nullopt;
}

namespace {

const std::vector<std::string_view> k_detectors = {"credit_card", "my_number", "email",
                                                   "jp_phone", "jp_address", "keywords", "sensitive"};
constexpr std::string_view k_edm_prefix = "edm:";

// ---------------------------------------------------------------------------------------
// the loader

class Loader {
public:
    Loader(const Resolver& resolver, std::uint64_t now, bool require_names)
        : resolver_(resolver), now_(now), require_names_(require_names) {}

    void load_file(const SourceText& source, OriginKind kind);
    void merge_state(const SourceText& source);
    void validate();

    Policy policy_;
    std::unordered_map<std::string, std::size_t> zone_at_;  // policy_.zones by name
    Diagnostics diags_;

private:
    // Book-keeping for merge semantics and for positions in later checks.
    struct ZoneMeta {
        std::string file;  // file of the [[zone]] block that created it
    };

    void error(SourcePos pos, std::string message, std::string hint) {
        diags_.push_back({Severity::error, std::move(pos), std::move(message), std::move(hint)});
    }
    void warning(SourcePos pos, std::string message, std::string hint) {
        diags_.push_back({Severity::warning, std::move(pos), std::move(message), std::move(hint)});
    }

    SourcePos pos(const toml::node& node) const { return pos_of(node.source(), file_); }
    SourcePos pos(const toml::key& key) const { return pos_of(key.source(), file_); }
    Origin origin(const toml::node& node) const { return Origin{kind_, pos(node)}; }

    // Reports keys of `table` not in `known`; returns false if any.
    bool check_keys(const toml::table& table, std::string_view where,
                    const std::vector<std::string_view>& known);

    const toml::table* expect_table(const toml::node& node, std::string_view what);
    std::optional<std::string> get_string(const toml::node& node, std::string_view what);
    std::optional<bool> get_bool(const toml::node& node, std::string_view what);
    std::optional<std::int64_t> get_int(const toml::node& node, std::string_view what,
                                        std::int64_t min, std::int64_t max);
    std::optional<std::uint64_t> get_duration(const toml::node& node, std::string_view what);
    // Strings of an array, each with its node (nullptr when the array itself is wrong).
    std::vector<std::pair<std::string, const toml::node*>> get_strings(const toml::node& node,
                                                                       std::string_view what);
    template <typename Enum>
    std::optional<Enum> get_enum(const toml::node& node, std::string_view what,
                                 const std::vector<std::pair<std::string_view, Enum>>& values);

    void read_daemon(const toml::table& table);
    void read_zone(const toml::table& table, std::map<std::string, SourcePos>& seen_here);
    void read_print(const toml::table& table);
    void read_mail(const toml::table& table);
    void read_notify(const toml::table& table);
    void read_bulk(const toml::table& table);
    void read_edm(const toml::table& table);
    // A detectors entry: a pattern detector, or "edm:NAME" (checked against [edm.NAME]
    // once every file is read).
    bool read_detector(const std::string& name, const toml::node& element, const std::string& list);
    void validate_edm();
    // Where each "edm:NAME" detector was written, per list ("[print]").
    std::map<std::string, std::vector<std::pair<std::string, SourcePos>>> edm_at_;
    void read_watch(const toml::table& table);
    void validate_watch();
    std::optional<Principal> principal(std::string_view text, const Origin& origin,
                                       bool from_state);
    void read_principals(const toml::node& node, std::string_view what,
                         std::vector<Principal>& out);

    // Where each notify entry was written, per list, so that an undefined target is
    // reported at its entry (lists replaced by a drop-in keep only the entries they have).
    // Keyed "zone <name>", "[print]", "[bulk]", "[watch]".
    std::map<std::string, std::vector<std::pair<std::string, SourcePos>>> notify_at_;
    SourcePos notify_pos(const std::string& list, const std::string& target, SourcePos fallback) const {
        if (auto it = notify_at_.find(list); it != notify_at_.end())
            for (auto i = it->second.rbegin(); i != it->second.rend(); ++i)
                if (i->first == target) return i->second;
        return fallback;
    }

    SourcePos watch_protect_as_pos_;
    SourcePos watch_notify_pos_;

    const Resolver& resolver_;
    std::uint64_t now_;
    bool require_names_ = true;
    std::string file_;
    OriginKind kind_ = OriginKind::policy;
};

bool Loader::check_keys(const toml::table& table, std::string_view where,
                        const std::vector<std::string_view>& known) {
    bool ok = true;
    for (const auto& [key, value] : table) {
        (void)value;
        if (std::find(known.begin(), known.end(), key.str()) != known.end()) continue;
        ok = false;
        std::string hint;
        std::string_view best;
        std::size_t best_distance = 3;
        for (auto k : known) {
            auto d = edit_distance(key.str(), k);
            if (d < best_distance) best_distance = d, best = k;
        }
        if (!best.empty()) hint = "did you mean '" + std::string(best) + "'? ";
        hint += "known keys in " + std::string(where) + ": " + join(known);
        error(pos(key), "unknown key '" + std::string(key.str()) + "' in " + std::string(where),
              hint);
    }
    return ok;
}

const toml::table* Loader::expect_table(const toml::node& node, std::string_view what) {
    if (const auto* t = node.as_table()) return t;
    error(pos(node), std::string(what) + " must be a table, found " + type_name(node),
          "write it as [" + std::string(what) + "] followed by key = value lines");
    return nullptr;
}

std::optional<std::string> Loader::get_string(const toml::node& node, std::string_view what) {
    if (const auto* s = node.as_string()) return s->get();
    error(pos(node), "'" + std::string(what) + "' must be a string, found " + type_name(node),
          "put the value in double quotes");
    return std::nullopt;
}

std::optional<bool> Loader::get_bool(const toml::node& node, std::string_view what) {
    if (const auto* b = node.as_boolean()) return b->get();
    error(pos(node), "'" + std::string(what) + "' must be true or false, found " + type_name(node),
          "write true or false without quotes");
    return std::nullopt;
}

std::optional<std::int64_t> Loader::get_int(const toml::node& node, std::string_view what,
                                            std::int64_t min, std::int64_t max) {
    const auto* i = node.as_integer();
    if (!i) {
        error(pos(node), "'" + std::string(what) + "' must be an integer, found " + type_name(node),
              "write a whole number without quotes");
        return std::nullopt;
    }
    if (i->get() < min || i->get() > max) {
        error(pos(node),
              "'" + std::string(what) + "' is " + std::to_string(i->get()) + ", out of range",
              "use a value from " + std::to_string(min) + " to " + std::to_string(max));
        return std::nullopt;
    }
    return i->get();
}

std::optional<std::uint64_t> Loader::get_duration(const toml::node& node, std::string_view what) {
    auto text = get_string(node, what);
    if (!text) return std::nullopt;
    auto seconds = parse_duration(*text);
    if (!seconds || *seconds == 0) {
        error(pos(node), "'" + std::string(what) + "' = \"" + *text + "\" is not a valid duration",
              "write a positive number followed by s, m, h or d, e.g. \"15m\"");
        return std::nullopt;
    }
    return seconds;
}

std::vector<std::pair<std::string, const toml::node*>> Loader::get_strings(const toml::node& node,
                                                                           std::string_view what) {
    std::vector<std::pair<std::string, const toml::node*>> out;
    const auto* array = node.as_array();
    if (!array) {
        error(pos(node), "'" + std::string(what) + "' must be an array of strings, found " +
                             type_name(node),
              "write it as " + std::string(what) + " = [\"...\", \"...\"]");
        return out;
    }
    for (const auto& element : *array) {
        if (const auto* s = element.as_string()) {
            out.emplace_back(s->get(), &element);
        } else {
            error(pos(element),
                  "elements of '" + std::string(what) + "' must be strings, found " +
                      type_name(element),
                  "put each element in double quotes");
        }
    }
    return out;
}

template <typename Enum>
std::optional<Enum> Loader::get_enum(const toml::node& node, std::string_view what,
                                     const std::vector<std::pair<std::string_view, Enum>>& values) {
    auto text = get_string(node, what);
    if (!text) return std::nullopt;
    for (const auto& [name, value] : values)
        if (name == *text) return value;
    std::vector<std::string_view> names;
    for (const auto& [name, value] : values) names.push_back(name), (void)value;
    error(pos(node), "'" + std::string(what) + "' = \"" + *text + "\" is not a valid value",
          "use one of: " + join(names));
    return std::nullopt;
}

void Loader::load_file(const SourceText& source, OriginKind kind) {
    file_ = source.name;
    kind_ = kind;
    if (auto bad = non_ascii_outside_strings(source.text, source.name)) {
        diags_.push_back(std::move(*bad));
        return;
    }
    toml::table root;
    try {
        root = toml::parse(source.text, source.name);
    } catch (const toml::parse_error& e) {
        error(pos_of(e.source(), file_), "invalid TOML: " + std::string(e.description()),
              "fix the syntax at this position; see custguard.policy(5) for the format");
        return;
    }
    check_keys(root, "the policy", {"daemon", "zone", "print", "mail", "notify", "bulk", "edm", "watch"});
    if (const auto* n = root.get("daemon"))
        if (const auto* t = expect_table(*n, "daemon")) read_daemon(*t);
    if (const auto* n = root.get("zone")) {
        const auto* zones = n->as_array();
        if (!zones || !zones->is_array_of_tables()) {
            error(pos(*n), "'zone' must be an array of tables, found " + type_name(*n),
                  "declare each zone with a [[zone]] header");
        } else {
            std::map<std::string, SourcePos> seen_here;
            for (const auto& z : *zones) read_zone(*z.as_table(), seen_here);
        }
    }
    if (const auto* n = root.get("print"))
        if (const auto* t = expect_table(*n, "print")) read_print(*t);
    if (const auto* n = root.get("mail"))
        if (const auto* t = expect_table(*n, "mail")) read_mail(*t);
    if (const auto* n = root.get("notify"))
        if (const auto* t = expect_table(*n, "notify")) read_notify(*t);
    if (const auto* n = root.get("bulk"))
        if (const auto* t = expect_table(*n, "bulk")) read_bulk(*t);
    if (const auto* n = root.get("edm"))
        if (const auto* t = expect_table(*n, "edm")) read_edm(*t);
    if (const auto* n = root.get("watch"))
        if (const auto* t = expect_table(*n, "watch")) read_watch(*t);
}

void Loader::read_daemon(const toml::table& t) {
    check_keys(t, "[daemon]", {"enforcer", "state_dir"});
    policy_.daemon.origin = origin(t);
    if (const auto* n = t.get("enforcer")) {
        if (auto v = get_enum<EnforcerChoice>(*n, "enforcer",
                                              {{"auto", EnforcerChoice::automatic},
                                               {"bpf-lsm", EnforcerChoice::bpf_lsm},
                                               {"fanotify", EnforcerChoice::fanotify},
                                               {"none", EnforcerChoice::none}}))
            policy_.daemon.enforcer = *v;
    }
    if (const auto* n = t.get("state_dir")) {
        if (auto v = get_string(*n, "state_dir")) {
            if (!is_normalised_absolute(*v))
                error(pos(*n), "'state_dir' = \"" + *v + "\" is not a normalised absolute path",
                      "write an absolute path such as \"/var/lib/custguard\"");
            else
                policy_.daemon.state_dir = *v;
        }
    }
}

std::optional<Principal> Loader::principal(std::string_view text, const Origin& where,
                                           bool from_state) {
    Principal p;
    p.origin = where;
    bool group = !text.empty() && text.front() == '%';
    p.kind = group ? Principal::Kind::group : Principal::Kind::user;
    p.name = std::string(group ? text.substr(1) : text);
    auto report = [&](std::string message, std::string hint) {
        if (from_state) warning(where.pos, std::move(message) + "; entry ignored", std::move(hint));
        else error(where.pos, std::move(message), std::move(hint));
    };
    if (!valid_principal(p.name)) {
        report("'" + std::string(text) + "' is not a valid user or %group name",
               "write a user name such as \"alice\" or a group as \"%sales\"");
        return std::nullopt;
    }
    auto id = group ? resolver_.group_id(p.name) : resolver_.user_id(p.name);
    if (!id && !require_names_ && !from_state) {
        warning(where.pos,
                std::string(group ? "group '" : "user '") + p.name + "' is not known on this machine (not checked)",
                "--no-resolve: make sure it exists on the servers this policy is for");
        id = unknown_id;
    }
    if (!id) {
        report(std::string(group ? "unknown group '" : "unknown user '") + p.name + "'",
               group ? "create the group (groupadd) or fix the name; users are written without %"
                     : "create the user or fix the name; groups are written as %name");
        return std::nullopt;
    }
    p.id = *id;
    return p;
}

void Loader::read_principals(const toml::node& node, std::string_view what,
                             std::vector<Principal>& out) {
    for (const auto& [text, element] : get_strings(node, what)) {
        auto p = principal(text, origin(*element), false);
        if (!p) continue;
        auto dup = std::find_if(out.begin(), out.end(), [&](const Principal& q) {
            return q.kind == p->kind && q.name == p->name;
        });
        if (dup != out.end() && dup->origin.pos.file == file_) {
            error(pos(*element), "'" + text + "' is listed twice in '" + std::string(what) + "'",
                  "remove the duplicate (first at line " + std::to_string(dup->origin.pos.line) +
                      ")");
            continue;
        }
        if (dup == out.end()) out.push_back(std::move(*p));
    }
}

void Loader::read_zone(const toml::table& t, std::map<std::string, SourcePos>& seen_here) {
    check_keys(t, "[[zone]]",
               {"name", "paths", "sensitivity", "on_violation", "record_allowed", "allow_users",
                "allow_programs", "allow_programs_strict", "allow_clients", "allow_media", "notify"});
    const auto* name_node = t.get("name");
    if (!name_node) {
        error(pos(t), "[[zone]] has no 'name'", "add name = \"...\" to identify the zone");
        return;
    }
    auto name = get_string(*name_node, "name");
    if (!name) return;
    if (!valid_name(*name)) {
        error(pos(*name_node), "zone name \"" + *name + "\" is not valid",
              "use 1 to 64 characters from a-z, A-Z, 0-9, '-', '_' and '.'");
        return;
    }
    if (auto it = seen_here.find(*name); it != seen_here.end()) {
        error(pos(*name_node), "zone '" + *name + "' is defined twice in this file",
              "merge it with the first definition at line " + std::to_string(it->second.line));
        return;
    }
    seen_here.emplace(*name, pos(*name_node));

    // By name through an index: a linear search per zone made loading 10,000 zones quadratic.
    auto [existing, added] = zone_at_.try_emplace(*name, policy_.zones.size());
    Zone* zone = nullptr;
    if (!added) {
        zone = &policy_.zones[existing->second];  // a drop-in extends the zone
    } else {
        policy_.zones.emplace_back();
        zone = &policy_.zones.back();
        zone->name = *name;
        zone->origin = origin(*name_node);
    }

    if (const auto* n = t.get("paths")) {
        auto entries = get_strings(*n, "paths");
        if (entries.empty() && n->is_array())
            error(pos(*n), "zone '" + *name + "' has an empty 'paths' list",
                  "list the files or directory trees the zone protects");
        for (const auto& [path, element] : entries) {
            if (!is_normalised_absolute(path) || path == "/") {
                std::string hint = path == "/" ? "protecting / would cover the whole system; name "
                                                 "the directories that hold customer data"
                                               : "write an absolute path without '.', '..', '//' "
                                                 "or a trailing '/'";
                error(pos(*element), "path \"" + path + "\" is not a normalised absolute path",
                      hint);
                continue;
            }
            auto dup = std::find_if(zone->paths.begin(), zone->paths.end(),
                                    [&p = path](const PathEntry& e) { return e.path == p; });
            if (dup != zone->paths.end()) {
                error(pos(*element), "path \"" + path + "\" is listed twice in zone '" + *name + "'",
                      "remove the duplicate");
                continue;
            }
            zone->paths.push_back({path, origin(*element)});
        }
    }
    if (const auto* n = t.get("sensitivity"))
        if (auto v = get_enum<Sensitivity>(*n, "sensitivity",
                                           {{"personal", Sensitivity::personal},
                                            {"sensitive", Sensitivity::sensitive}}))
            zone->sensitivity = *v;
    if (const auto* n = t.get("on_violation"))
        if (auto v = get_enum<Violation>(*n, "on_violation",
                                         {{"deny", Violation::deny}, {"audit", Violation::audit}}))
            zone->on_violation = *v;
    if (const auto* n = t.get("record_allowed"))
        if (auto v = get_bool(*n, "record_allowed")) zone->record_allowed = *v;
    if (const auto* n = t.get("allow_users")) read_principals(*n, "allow_users", zone->allow_users);
    if (const auto* n = t.get("allow_programs")) {
        for (const auto& [path, element] : get_strings(*n, "allow_programs")) {
            if (!is_normalised_absolute(path)) {
                error(pos(*element), "program \"" + path + "\" is not a normalised absolute path",
                      "write the full path of the executable, e.g. \"/usr/sbin/smbd\"");
                continue;
            }
            zone->allow_programs.push_back({path, origin(*element)});
        }
    }
    if (const auto* n = t.get("allow_programs_strict"))
        if (auto v = get_bool(*n, "allow_programs_strict")) zone->allow_programs_strict = *v;
    if (const auto* n = t.get("allow_clients")) {
        for (const auto& [text, element] : get_strings(*n, "allow_clients")) {
            auto client = parse_client(text);
            if (!client) {
                error(pos(*element), "\"" + text + "\" is not an IP address, network or host name",
                      "write e.g. \"192.0.2.10\", \"192.0.2.0/24\", \"2001:db8::/32\" or "
                      "\"pc-12.example\"; a network must have no host bits set");
                continue;
            }
            client->origin = origin(*element);
            zone->allow_clients.push_back(std::move(*client));
        }
    }
    // Known so that it is refused with its reason rather than as a typo.
    if (const auto* n = t.get("allow_media"))
        error(pos(*n), "'allow_media' is not enforced: " + std::string(k_media_not_enforced),
              "remove allow_media from zone '" + *name +
                  "'; copies of zone files onto USB storage are not restricted by custguard, "
                  "so control removable media on this server by other means");
    if (const auto* n = t.get("notify"))
        for (const auto& [target, element] : get_strings(*n, "notify")) {
            zone->notify.push_back(target);
            notify_at_["zone " + zone->name].emplace_back(target, pos(*element));
        }
}

void Loader::read_print(const toml::table& t) {
    check_keys(t, "[print]",
               {"action", "allow_printers", "allow_users", "detectors", "threshold", "keywords",
                "keyword_proximity", "unreadable", "notify", "scan_timeout", "scan_memory_mb"});
    auto& print = policy_.print;
    print.origin = origin(t);
    const std::vector<std::pair<std::string_view, Action>> actions = {
        {"allow", Action::allow}, {"audit", Action::audit}, {"deny", Action::deny},
        {"hold", Action::hold}};
    if (const auto* n = t.get("action"))
        if (auto v = get_enum<Action>(*n, "action", actions)) print.action = *v;
    if (const auto* n = t.get("unreadable"))
        if (auto v = get_enum<UnreadableDocuments>(
                *n, "unreadable",
                {{"allow", UnreadableDocuments::allow}, {"audit", UnreadableDocuments::audit},
                 {"deny", UnreadableDocuments::deny}, {"hold", UnreadableDocuments::hold}}))
            print.unreadable = *v;
    if (const auto* n = t.get("allow_printers")) {
        for (const auto& [queue, element] : get_strings(*n, "allow_printers")) {
            if (!valid_name(queue)) {
                error(pos(*element), "\"" + queue + "\" is not a valid CUPS queue name",
                      "queue names use letters, digits, '-', '_' and '.' (see lpstat -p)");
                continue;
            }
            print.allow_printers.push_back(queue);
        }
    }
    if (const auto* n = t.get("allow_users")) read_principals(*n, "allow_users", print.allow_users);
    if (const auto* n = t.get("detectors")) {
        print.detectors.clear();
        if (const auto* a = n->as_array(); a && a->empty())
            error(pos(*n), "'detectors' is empty",
                  "remove the key to use every detector, or list the ones to use");
        edm_at_.erase("[print]");
        for (const auto& [d, element] : get_strings(*n, "detectors"))
            if (read_detector(d, *element, "[print]")) print.detectors.push_back(d);
    }
    if (const auto* n = t.get("threshold"))
        if (auto v = get_int(*n, "threshold", 1, 1000000)) print.threshold = static_cast<std::uint32_t>(*v);
    if (const auto* n = t.get("keywords")) {
        print.keywords.clear();
        for (const auto& [k, element] : get_strings(*n, "keywords")) {
            if (k.find_first_not_of(" \t\u3000") == std::string::npos) {
                error(pos(*element), "empty keyword", "remove it");
                continue;
            }
            print.keywords.push_back(k);
        }
    }
    if (const auto* n = t.get("keyword_proximity"))
        if (auto v = get_int(*n, "keyword_proximity", 1, 100000))
            print.keyword_proximity = static_cast<std::uint32_t>(*v);
    if (const auto* n = t.get("notify"))
        for (const auto& [target, element] : get_strings(*n, "notify")) {
            print.notify.push_back(target);
            notify_at_["[print]"].emplace_back(target, pos(*element));
        }
    if (const auto* n = t.get("scan_timeout")) {
        if (auto v = get_duration(*n, "scan_timeout")) {
            if (*v > 120)
                error(pos(*n), "'scan_timeout' is longer than 2 minutes",
                      "use at most \"2m\" (the CUPS backend waits 3 minutes for a job's answer); a document "
                      "that takes longer is better held for a person");
            else
                print.scan_timeout_seconds = static_cast<std::uint32_t>(*v);
        }
    }
    if (const auto* n = t.get("scan_memory_mb"))
        if (auto v = get_int(*n, "scan_memory_mb", 64, 65536)) print.scan_memory_mb = static_cast<std::uint32_t>(*v);
}

void Loader::read_mail(const toml::table& t) {
    check_keys(t, "[mail]", {"smtp", "from", "starttls", "username", "password_file"});
    auto& mail = policy_.mail;
    mail.origin = origin(t);
    if (const auto* n = t.get("smtp")) {
        if (auto v = get_string(*n, "smtp")) {
            if (v->rfind("smtp://", 0) != 0 && v->rfind("smtps://", 0) != 0)
                error(pos(*n), "'smtp' = \"" + *v + "\" is not an smtp:// or smtps:// URL",
                      "write e.g. \"smtp://mail.example:25\" or \"smtps://mail.example:465\"");
            else
                mail.smtp = *v;
        }
    }
    if (const auto* n = t.get("from")) {
        if (auto v = get_string(*n, "from")) {
            if (!valid_email(*v))
                error(pos(*n), "'from' = \"" + *v + "\" is not a mail address",
                      "write an address such as \"custguard@fileserver.example\"");
            else
                mail.from = *v;
        }
    }
    if (const auto* n = t.get("starttls"))
        if (auto v = get_bool(*n, "starttls")) mail.starttls = *v;
    if (const auto* n = t.get("username"))
        if (auto v = get_string(*n, "username")) mail.username = *v;
    if (const auto* n = t.get("password_file")) {
        if (auto v = get_string(*n, "password_file")) {
            if (!is_normalised_absolute(*v))
                error(pos(*n), "'password_file' must be a normalised absolute path",
                      "write e.g. \"/etc/custguard/smtp-password\" (mode 0600)");
            else
                mail.password_file = *v;
        }
    }
}

void Loader::read_notify(const toml::table& t) {
    for (const auto& [key, value] : t) {
        std::string name(key.str());
        std::string where = "[notify." + name + "]";
        if (!valid_name(name)) {
            error(pos(key), "notify target name \"" + name + "\" is not valid",
                  "use 1 to 64 characters from a-z, A-Z, 0-9, '-', '_' and '.'");
            continue;
        }
        const auto* table = value.as_table();
        if (!table) {
            error(pos(value), "notify." + name + " must be a table, found " + type_name(value),
                  "write it as [notify." + name + "] followed by mail/webhook/digest keys");
            continue;
        }
        check_keys(*table, where, {"mail", "webhook", "digest"});
        auto existing = std::find_if(policy_.notify_targets.begin(), policy_.notify_targets.end(),
                                     [&](const NotifyTarget& n) { return n.name == name; });
        NotifyTarget* target = nullptr;
        if (existing != policy_.notify_targets.end()) {
            target = &*existing;
        } else {
            policy_.notify_targets.emplace_back();
            target = &policy_.notify_targets.back();
            target->name = name;
            target->origin = Origin{kind_, pos(key)};
        }
        if (const auto* n = table->get("mail")) {
            for (const auto& [address, element] : get_strings(*n, "mail")) {
                if (!valid_email(address)) {
                    error(pos(*element), "\"" + address + "\" is not a mail address",
                          "write a plain address such as \"manager@example.co.jp\"");
                    continue;
                }
                target->mail.push_back(address);
            }
        }
        if (const auto* n = table->get("webhook")) {
            if (auto v = get_string(*n, "webhook")) {
                if (v->rfind("http://", 0) != 0 && v->rfind("https://", 0) != 0)
                    error(pos(*n), "'webhook' = \"" + *v + "\" is not an http:// or https:// URL",
                          "write the full URL of the receiving endpoint");
                else
                    target->webhook = *v;
            }
        }
        if (const auto* n = table->get("digest"))
            if (auto v = get_duration(*n, "digest")) target->digest_seconds = static_cast<std::uint32_t>(*v);
    }
}

void Loader::read_bulk(const toml::table& t) {
    check_keys(t, "[bulk]", {"max_files", "max_bytes", "window", "action", "cooldown", "notify"});
    auto& bulk = policy_.bulk;
    bulk.origin = origin(t);
    if (const auto* n = t.get("max_files"))
        if (auto v = get_int(*n, "max_files", 0, 100000000)) bulk.max_files = static_cast<std::uint32_t>(*v);
    if (const auto* n = t.get("max_bytes"))
        if (auto v = get_int(*n, "max_bytes", 0, INT64_MAX)) bulk.max_bytes = static_cast<std::uint64_t>(*v);
    if (const auto* n = t.get("window"))
        if (auto v = get_duration(*n, "window")) bulk.window_seconds = static_cast<std::uint32_t>(*v);
    if (const auto* n = t.get("cooldown"))
        if (auto v = get_duration(*n, "cooldown")) bulk.cooldown_seconds = static_cast<std::uint32_t>(*v);
    if (const auto* n = t.get("action"))
        if (auto v = get_enum<BulkAction>(*n, "action",
                                          {{"alert", BulkAction::alert}, {"revoke", BulkAction::revoke}}))
            bulk.action = *v;
    if (const auto* n = t.get("notify"))
        for (const auto& [target, element] : get_strings(*n, "notify")) {
            bulk.notify.push_back(target);
            notify_at_["[bulk]"].emplace_back(target, pos(*element));
        }
    if (bulk.max_files == 0 && bulk.max_bytes == 0)
        error(pos(t), "[bulk] sets neither 'max_files' nor 'max_bytes'",
              "set max_files = N and/or max_bytes = N, or remove the [bulk] section");
}

bool Loader::read_detector(const std::string& name, const toml::node& element, const std::string& list) {
    if (name.starts_with(k_edm_prefix)) {
        const std::string edm = name.substr(k_edm_prefix.size());
        if (!valid_name(edm) || edm.size() > 64) {
            error(pos(element), "\"" + name + "\" is not a valid EDM detector name",
                  "write \"edm:NAME\" with NAME from a-z, A-Z, 0-9, '-', '_' and '.', as in [edm.NAME]");
            return false;
        }
        edm_at_[list].emplace_back(edm, pos(element));
        return true;
    }
    if (std::find(k_detectors.begin(), k_detectors.end(), name) == k_detectors.end()) {
        error(pos(element), "unknown detector \"" + name + "\"",
              "use one of: " + join(k_detectors) + ", or \"edm:NAME\" with an [edm.NAME] table");
        return false;
    }
    return true;
}

void Loader::read_edm(const toml::table& t) {
    for (const auto& [key, value] : t) {
        const std::string name(key.str());
        if (!valid_name(name) || name.size() > 64) {
            error(pos(key), "EDM index name \"" + name + "\" is not valid",
                  "use 1 to 64 characters from a-z, A-Z, 0-9, '-', '_' and '.'");
            continue;
        }
        const auto* table = value.as_table();
        if (!table) {
            error(pos(value), "edm." + name + " must be a table, found " + type_name(value),
                  "write it as [edm." + name + "] with index = \"/var/lib/custguard/edm/" + name + ".edm\"");
            continue;
        }
        const std::string where = "[edm." + name + "]";
        check_keys(*table, where, {"index", "key"});
        auto existing = std::find_if(policy_.edm.begin(), policy_.edm.end(), [&](const EdmIndex& e) { return e.name == name; });
        if (existing == policy_.edm.end()) {
            policy_.edm.push_back(EdmIndex{name, {}, {}, Origin{kind_, pos(key)}});
            existing = policy_.edm.end() - 1;
        }
        for (const char* k : {"index", "key"}) {
            const auto* n = table->get(k);
            if (!n) continue;
            auto v = get_string(*n, k);
            if (!v) continue;
            if (!is_normalised_absolute(*v)) {
                error(pos(*n), "'" + std::string(k) + "' = \"" + *v + "\" is not a normalised absolute path",
                      "write e.g. \"/var/lib/custguard/edm/" + name + (k[0] == 'i' ? ".edm" : "/key") + "\"");
                continue;
            }
            (k[0] == 'i' ? existing->index : existing->key) = *v;
        }
        if (existing->index.empty())
            error(pos(key), where + " has no 'index'",
                  "add index = \"/var/lib/custguard/edm/" + name + ".edm\" (built with custguardctl edm build)");
        else if (existing->key.empty())
            existing->key = existing->index.substr(0, existing->index.rfind('/') + 1) + "key";
    }
}

void Loader::validate_edm() {
    for (const auto& [list, entries] : edm_at_)
        for (const auto& [name, where] : entries)
            if (!policy_.find_edm(name))
                error(where, list + " names detector \"edm:" + name + "\" but no [edm." + name + "] table defines its index",
                      "add [edm." + name + "] with index = \"/var/lib/custguard/edm/" + name +
                          ".edm\" (custguardctl edm build), or remove the detector");
}

void Loader::read_watch(const toml::table& t) {
    check_keys(t, "[watch]", {"paths", "on_customer_data", "protect_as", "detectors", "threshold", "notify"});
    auto& watch = policy_.watch;
    watch.enabled = true;
    watch.origin = origin(t);
    if (const auto* n = t.get("paths")) {
        watch.paths.clear();  // a drop-in's list replaces the earlier one
        if (const auto* a = n->as_array(); a && a->empty())
            error(pos(*n), "[watch] 'paths' is empty",
                  "remove the key to watch the filesystems that hold zones, or list the trees to watch");
        for (const auto& [path, element] : get_strings(*n, "paths")) {
            if (!is_normalised_absolute(path)) {
                error(pos(*element), "path \"" + path + "\" is not a normalised absolute path",
                      "write an absolute directory such as \"/srv/share\" without '.', '..', '//' or a trailing '/'");
                continue;
            }
            watch.paths.push_back({path, origin(*element)});
        }
    }
    if (const auto* n = t.get("on_customer_data"))
        if (auto v = get_enum<WatchAction>(*n, "on_customer_data",
                                           {{"record", WatchAction::record},
                                            {"notify", WatchAction::notify},
                                            {"protect", WatchAction::protect}}))
            watch.on_customer_data = *v;
    if (const auto* n = t.get("protect_as")) {
        if (auto v = get_string(*n, "protect_as")) {
            watch.protect_as = *v;
            watch_protect_as_pos_ = pos(*n);
        }
    }
    if (const auto* n = t.get("detectors")) {
        watch.detectors.clear();
        if (const auto* a = n->as_array(); a && a->empty())
            error(pos(*n), "[watch] 'detectors' is empty",
                  "remove the key to use the [print] detectors, or list the ones to use");
        for (const auto& [d, element] : get_strings(*n, "detectors")) {
            if (!read_detector(d, *element, "[watch]")) continue;
            watch.detectors.push_back(d);
        }
    }
    if (const auto* n = t.get("threshold"))
        if (auto v = get_int(*n, "threshold", 1, 1000000)) watch.threshold = static_cast<std::uint32_t>(*v);
    if (const auto* n = t.get("notify")) {
        watch.notify.clear();
        notify_at_["[watch]"].clear();
        watch_notify_pos_ = pos(*n);
        for (const auto& [target, element] : get_strings(*n, "notify")) {
            watch.notify.push_back(target);
            notify_at_["[watch]"].emplace_back(target, pos(*element));
        }
    }
}

// Cross-checks of [watch] against the merged policy: the zone protect_as names, notify
// targets, and keys that the chosen on_customer_data would leave unused.
void Loader::validate_watch() {
    const auto& watch = policy_.watch;
    if (!watch.enabled) return;
    for (const auto& target : watch.notify)
        if (!policy_.find_notify(target))
            error(notify_pos("[watch]", target, watch.origin.pos), "[watch] notifies undefined target '" + target + "'",
                  "add a [notify." + target + "] section or remove it from 'notify'");
    if (!watch.protect_as.empty()) {
        if (watch.on_customer_data != WatchAction::protect)
            error(watch_protect_as_pos_,
                  "'protect_as' is used only with on_customer_data = \"protect\", not \"" +
                      std::string(to_string(watch.on_customer_data)) + "\"",
                  "set on_customer_data = \"protect\" or remove protect_as");
        else if (!policy_.find_zone(watch.protect_as))
            error(watch_protect_as_pos_, "[watch] protect_as names unknown zone '" + watch.protect_as + "'",
                  "name a zone defined with [[zone]] name = \"...\"");
    }
    if (!watch.notify.empty() && watch.on_customer_data == WatchAction::record)
        error(watch_notify_pos_, "[watch] 'notify' is not used with on_customer_data = \"record\"",
              "set on_customer_data = \"notify\" or \"protect\" to send it, or remove notify");
    if (watch.paths.empty() && policy_.zones.empty())
        error(watch.origin.pos, "[watch] has no 'paths' and the policy has no zones, so nothing is watched",
              "list the trees to watch in paths = [\"/srv/share\"]");
    for (const auto& p : watch.paths)
        for (const auto& zone : policy_.zones)
            for (const auto& zp : zone.paths)
                if (p.path == zp.path || p.path.starts_with(zp.path + "/"))
                    error(p.origin.pos,
                          "[watch] path \"" + p.path + "\" lies in zone '" + zone.name +
                              "', whose files are protected already and never scanned by the watcher",
                          "watch the trees outside the zones, e.g. the public share");
}

void Loader::merge_state(const SourceText& source) {
    auto state = parse_state(source.name, source.text);
    if (!state) {
        diags_.insert(diags_.end(), state.error().begin(), state.error().end());
        return;
    }
    SourcePos where{source.name, 0, 0};
    Origin from_state{OriginKind::state, where};
    auto zone_named = [&](const std::string& name) -> Zone* {
        for (auto& z : policy_.zones)
            if (z.name == name) return &z;
        return nullptr;
    };
    const std::string stale = "remove it with custguardctl or restore the zone in the policy";
    for (const auto& u : state->users) {
        Zone* zone = zone_named(u.zone);
        if (!zone) {
            warning(where, "state allows '" + u.name + "' in unknown zone '" + u.zone +
                               "'; entry ignored", stale);
            continue;
        }
        auto p = principal(u.name, from_state, true);
        if (!p) continue;
        auto dup = std::find_if(zone->allow_users.begin(), zone->allow_users.end(),
                                [&](const Principal& q) { return q.kind == p->kind && q.id == p->id; });
        if (dup == zone->allow_users.end()) zone->allow_users.push_back(std::move(*p));
    }
    for (const auto& d : state->devices) {
        if (d.kind == DeviceKind::printer) {
            if (std::find(policy_.print.allow_printers.begin(), policy_.print.allow_printers.end(),
                          d.value) == policy_.print.allow_printers.end())
                policy_.print.allow_printers.push_back(d.value);
            continue;
        }
        Zone* zone = zone_named(d.zone);
        if (!zone) {
            warning(where, "state allows device '" + d.value + "' in unknown zone '" + d.zone +
                               "'; entry ignored", stale);
            continue;
        }
        auto c = parse_client(d.value);
        if (!c) {
            warning(where, "state has malformed client '" + d.value + "'; entry ignored", stale);
            continue;
        }
        c->origin = from_state;
        zone->allow_clients.push_back(std::move(*c));
    }
    for (const auto& g : state->grants) {
        if (g.expires_at <= now_) continue;  // expired grants simply fall away
        if (!g.client.empty()) {
            Zone* zone = zone_named(g.zone);
            auto c = parse_client(g.client);
            if (!zone)
                warning(where, "state has a client grant for unknown zone '" + g.zone + "'; entry ignored",
                        stale);
            else if (!c)
                warning(where, "state has a grant for malformed client '" + g.client + "'; entry ignored",
                        stale);
            else if (zone->allow_clients.empty())
                // Listing the client would restrict the zone to it instead of opening it.
                warning(where, "state has a client grant for zone '" + g.zone +
                                   "', which has no allow_clients (every client may reach it); entry ignored",
                        "revoke it with custguardctl grant revoke " + g.zone + " --client " + g.client);
            else
                c->origin = from_state, policy_.client_grants.push_back(
                    ClientGrant{g.zone, std::move(*c), g.expires_at, g.reason, g.granted_by, from_state});
            continue;
        }
        if (!zone_named(g.zone)) {
            warning(where, "state has a grant for unknown zone '" + g.zone + "'; entry ignored",
                    stale);
            continue;
        }
        auto uid = resolver_.user_id(g.user);
        if (!uid) {
            warning(where, "state has a grant for unknown user '" + g.user + "'; entry ignored",
                    stale);
            continue;
        }
        policy_.grants.push_back(
            Grant{g.zone, g.user, *uid, g.expires_at, g.reason, g.granted_by, from_state});
    }
}

void Loader::validate() {
    validate_edm();
    // Every zone needs paths; users nobody can match get a warning.
    for (const auto& zone : policy_.zones) {
        if (zone.paths.empty())
            error(zone.origin.pos, "zone '" + zone.name + "' has no paths",
                  "add paths = [\"/srv/...\"] listing what the zone protects, or remove the zone");
        if (zone.allow_users.empty())
            warning(zone.origin.pos, "zone '" + zone.name + "' allows nobody",
                    zone.on_violation == Violation::deny
                        ? "every read will be denied; add allow_users or grant access with "
                          "custguardctl"
                        : "every read will be recorded as a violation; add allow_users");
        for (const auto& target : zone.notify)
            if (!policy_.find_notify(target))
                error(notify_pos("zone " + zone.name, target, zone.origin.pos),
                      "zone '" + zone.name + "' notifies undefined target '" + target + "'",
                      "add a [notify." + target + "] section or remove it from 'notify'");
    }
    for (const auto& [list, where] : {std::pair{&policy_.print.notify, "[print]"},
                                      std::pair{&policy_.bulk.notify, "[bulk]"}}) {
        const Origin& o = list == &policy_.print.notify ? policy_.print.origin : policy_.bulk.origin;
        for (const auto& target : *list)
            if (!policy_.find_notify(target))
                error(notify_pos(where, target, o.pos), std::string(where) + " notifies undefined target '" + target + "'",
                      "add a [notify." + target + "] section or remove it from 'notify'");
    }
    for (const auto& target : policy_.notify_targets) {
        if (target.mail.empty() && target.webhook.empty())
            error(target.origin.pos, "notify target '" + target.name + "' has no 'mail' or 'webhook'",
                  "add mail = [\"...\"] or webhook = \"https://...\"");
        if (!target.mail.empty() && policy_.mail.from.empty())
            error(target.origin.pos,
                  "notify target '" + target.name + "' sends mail but [mail] has no 'from'",
                  "add [mail] with from = \"custguard@your-host.example\"");
    }

    // Zone paths: one zone per path; a zone nested in another must not weaken it.
    struct Root {
        const std::string* path;
        const Zone* zone;
        const PathEntry* entry;
    };
    std::vector<Root> roots;
    for (const auto& zone : policy_.zones)
        for (const auto& p : zone.paths) roots.push_back({&p.path, &zone, &p});
    std::sort(roots.begin(), roots.end(),
              [](const Root& a, const Root& b) { return *a.path < *b.path; });
    std::map<std::string_view, const Root*> by_path;
    for (const auto& r : roots) {
        auto [it, inserted] = by_path.emplace(*r.path, &r);
        if (!inserted && it->second->zone != r.zone) {
            const auto& first = it->second->entry->origin.pos;
            error(r.entry->origin.pos,
                  "path \"" + *r.path + "\" is in zone '" + r.zone->name + "' and in zone '" +
                      it->second->zone->name + "' (" + first.file + ":" +
                      std::to_string(first.line) + ")",
                  "a path belongs to one zone; remove it from one of them");
        }
    }
    for (const auto& inner : roots) {
        // The closest enclosing root of another zone decides what "weakening" means.
        const Root* outer = nullptr;
        std::string_view p = *inner.path;
        while (!outer) {
            auto slash = p.rfind('/');
            if (slash == 0 || slash == std::string_view::npos) break;
            p = p.substr(0, slash);
            if (auto it = by_path.find(p); it != by_path.end()) outer = it->second;
        }
        if (!outer || outer->zone == inner.zone) continue;
        const Zone& o = *outer->zone;
        const Zone& i = *inner.zone;
        if (o.sensitivity == Sensitivity::sensitive && i.sensitivity == Sensitivity::personal)
            error(inner.entry->origin.pos,
                  "zone '" + i.name + "' (personal) lies inside sensitive zone '" + o.name + "'",
                  "a nested zone must be at least as strict: set sensitivity = \"sensitive\" in '" +
                      i.name + "'");
        if (o.on_violation == Violation::deny && i.on_violation == Violation::audit)
            error(inner.entry->origin.pos,
                  "zone '" + i.name + "' (on_violation = audit) lies inside zone '" + o.name +
                      "' (deny) and would let its files be read",
                  "set on_violation = \"deny\" in '" + i.name + "' or move it out of '" + o.name +
                      "'");
    }
    validate_watch();
    if (policy_.zones.size() > 65535)
        error(SourcePos{}, "the policy defines " + std::to_string(policy_.zones.size()) +
                               " zones; at most 65535 are supported",
              "merge zones that share users");
}

}  // namespace

std::optional<std::uint64_t> parse_duration(std::string_view text) {
    if (text.empty()) return std::nullopt;
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end == text.data()) return std::nullopt;
    std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
    std::uint64_t factor = 0;
    if (unit.empty() || unit == "s") factor = 1;
    else if (unit == "m") factor = 60;
    else if (unit == "h") factor = 3600;
    else if (unit == "d") factor = 86400;
    else return std::nullopt;
    if (value > UINT64_MAX / factor) return std::nullopt;
    return value * factor;
}

bool is_normalised_absolute(std::string_view path) {
    if (path.empty() || path.front() != '/') return false;
    if (path.size() > 1 && path.back() == '/') return false;
    if (path.find('\0') != std::string_view::npos) return false;
    std::size_t i = 1;
    while (i <= path.size()) {
        auto next = path.find('/', i);
        if (next == std::string_view::npos) next = path.size();
        auto part = path.substr(i, next - i);
        if (path.size() > 1 && (part.empty() || part == "." || part == "..")) return false;
        i = next + 1;
    }
    return true;
}

tl::expected<Loaded, Diagnostics> load(const LoadInput& input, const Resolver& resolver) {
    Loader loader(resolver, input.now, input.require_names);
    loader.load_file(input.main, OriginKind::policy);
    for (const auto& dropin : input.dropins) loader.load_file(dropin, OriginKind::dropin);
    if (input.state) loader.merge_state(*input.state);
    // Cross-file checks need the merged result; skip them when files did not even parse
    // so that one syntax error does not bring a cascade of follow-ups.
    bool parse_failed = std::any_of(loader.diags_.begin(), loader.diags_.end(),
                                    [](const Diagnostic& d) {
                                        return d.message.rfind("invalid TOML", 0) == 0 ||
                                               d.message.rfind("non-ASCII", 0) == 0;
                                    });
    if (!parse_failed) loader.validate();
    if (has_errors(loader.diags_)) return tl::unexpected(std::move(loader.diags_));
    return Loaded{std::move(loader.policy_), std::move(loader.diags_)};
}

}  // namespace custguard::policy
