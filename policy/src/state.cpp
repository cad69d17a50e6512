// The CLI-managed state file. Written only by the daemon (atomically); read at every
// policy load. Problems in it are reported with the file name and position.
#include "custguard/policy/state.hpp"

#include <sstream>

#include <toml++/toml.h>

#include "custguard/policy/policy.hpp"
#include "toml_guard.hpp"

namespace custguard::policy {
namespace {

struct Reader {
    std::string file;
    Diagnostics diags;

    void error(const toml::source_region& r, std::string message,
               std::string hint = "the state file is written by custguardd; restore it from "
                                  "backup or remove the entry") {
        diags.push_back({Severity::error, SourcePos{file, r.begin.line, r.begin.column},
                         std::move(message), std::move(hint)});
    }

    std::string str(const toml::table& t, std::string_view key, bool required) {
        const auto* n = t.get(key);
        if (!n) {
            if (required) error(t.source(), "missing '" + std::string(key) + "'");
            return {};
        }
        if (const auto* s = n->as_string()) return s->get();
        error(n->source(), "'" + std::string(key) + "' must be a string");
        return {};
    }

    std::uint64_t num(const toml::table& t, std::string_view key, bool required) {
        const auto* n = t.get(key);
        if (!n) {
            if (required) error(t.source(), "missing '" + std::string(key) + "'");
            return 0;
        }
        if (const auto* i = n->as_integer(); i && i->get() >= 0) return static_cast<std::uint64_t>(i->get());
        error(n->source(), "'" + std::string(key) + "' must be a non-negative integer");
        return 0;
    }

    void keys(const toml::table& t, std::initializer_list<std::string_view> known) {
        for (const auto& [k, v] : t) {
            (void)v;
            if (std::find(known.begin(), known.end(), k.str()) == known.end())
                error(k.source(), "unknown key '" + std::string(k.str()) + "'");
        }
    }

    template <typename F>
    void each(const toml::table& root, std::string_view name, F&& f) {
        const auto* n = root.get(name);
        if (!n) return;
        const auto* arr = n->as_array();
        if (!arr || !arr->is_array_of_tables()) {
            error(n->source(), "'" + std::string(name) + "' must be an array of tables");
            return;
        }
        for (const auto& e : *arr) f(*e.as_table());
    }
};

std::string quote(std::string_view s) {
    // toml++ formats a string value with the escaping TOML requires.
    std::ostringstream out;
    out << toml::value<std::string>(std::string(s));
    return out.str();
}

}  // namespace

tl::expected<State, Diagnostics> parse_state(const std::string& name, const std::string& text) {
    Reader r{name, {}};
    State state;
    if (auto bad = non_ascii_outside_strings(text, name)) return tl::unexpected(Diagnostics{*bad});
    toml::table root;
    try {
        root = toml::parse(text, name);
    } catch (const toml::parse_error& e) {
        r.error(e.source(), "invalid TOML in state file: " + std::string(e.description()));
        return tl::unexpected(std::move(r.diags));
    }
    r.keys(root, {"version", "user", "device", "grant"});
    r.each(root, "user", [&](const toml::table& t) {
        r.keys(t, {"zone", "name", "added_by", "added_at"});
        state.users.push_back({r.str(t, "zone", true), r.str(t, "name", true),
                               r.str(t, "added_by", false), r.num(t, "added_at", false)});
    });
    r.each(root, "device", [&](const toml::table& t) {
        r.keys(t, {"kind", "zone", "value", "added_by", "added_at"});
        StateDevice d;
        auto kind = r.str(t, "kind", true);
        if (auto k = parse_device_kind(kind)) d.kind = *k;
        else if (kind == "media")
            // Written by earlier versions, which stored media and never enforced them.
            r.error(t.source(), "removable-medium entry: " + std::string(k_media_not_enforced),
                    "delete this [[device]] entry (kind = \"media\") from the state file, then "
                    "start custguardd or run 'custguardctl policy reload'");
        else if (!kind.empty()) r.error(t.source(), "unknown device kind '" + kind + "'");
        d.zone = r.str(t, "zone", d.kind != DeviceKind::printer);
        d.value = r.str(t, "value", true);
        d.added_by = r.str(t, "added_by", false);
        d.added_at = r.num(t, "added_at", false);
        state.devices.push_back(std::move(d));
    });
    r.each(root, "grant", [&](const toml::table& t) {
        r.keys(t, {"zone", "user", "client", "expires_at", "reason", "granted_by", "granted_at"});
        // A grant names a user or a client machine: exactly one.
        const bool client = t.contains("client");
        if (client && t.contains("user"))
            r.error(t.source(), "a grant has both 'user' and 'client'");
        StateGrant g{r.str(t, "zone", true), client ? std::string{} : r.str(t, "user", true),
                     r.num(t, "expires_at", true), r.str(t, "reason", false),
                     r.str(t, "granted_by", false), r.num(t, "granted_at", false)};
        if (client) g.client = r.str(t, "client", true);
        state.grants.push_back(std::move(g));
    });
    if (has_errors(r.diags)) return tl::unexpected(std::move(r.diags));
    return state;
}

std::string serialize_state(const State& state) {
    std::ostringstream out;
    out << "# custguard state: written by custguardd, managed with custguardctl. Do not edit.\n"
        << "version = 1\n";
    for (const auto& u : state.users)
        out << "\n[[user]]\nzone = " << quote(u.zone) << "\nname = " << quote(u.name)
            << "\nadded_by = " << quote(u.added_by) << "\nadded_at = " << u.added_at << "\n";
    for (const auto& d : state.devices) {
        out << "\n[[device]]\nkind = " << quote(to_string(d.kind));
        if (!d.zone.empty()) out << "\nzone = " << quote(d.zone);
        out << "\nvalue = " << quote(d.value) << "\nadded_by = " << quote(d.added_by)
            << "\nadded_at = " << d.added_at << "\n";
    }
    for (const auto& g : state.grants)
        out << "\n[[grant]]\nzone = " << quote(g.zone)
            << (g.client.empty() ? "\nuser = " + quote(g.user) : "\nclient = " + quote(g.client))
            << "\nexpires_at = " << g.expires_at << "\nreason = " << quote(g.reason)
            << "\ngranted_by = " << quote(g.granted_by) << "\ngranted_at = " << g.granted_at
            << "\n";
    return out.str();
}

}  // namespace custguard::policy
