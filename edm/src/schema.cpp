#include <algorithm>
#include <fstream>
#include <sstream>

#include <toml++/toml.h>

#include "custguard/edm/edm.hpp"

namespace custguard::edm {

std::size_t Schema::column_index(std::string_view name) const {
    for (std::size_t i = 0; i < columns.size(); ++i)
        if (columns[i] == name) return i;
    return columns.size();
}

namespace {

std::string at(const std::string& file, const toml::source_region& src) {
    return file + ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column) + ": ";
}

}  // namespace

tl::expected<Schema, std::string> parse_schema(std::string_view text, const std::string& file) {
    using tl::unexpected;
    // toml++ 3.3 misreads some non-ASCII characters outside strings (see the policy
    // library's toml_guard.hpp); column names are ASCII anyway.
    std::size_t line = 1, column = 1;
    for (unsigned char c : text) {
        if (c >= 0x80)
            return unexpected(file + ":" + std::to_string(line) + ":" + std::to_string(column) +
                              ": only ASCII is allowed in a schema file (name the columns in ASCII)");
        if (c == '\n') ++line, column = 0;
        ++column;
    }
    toml::table root;
    try {
        root = toml::parse(text, file);
    } catch (const toml::parse_error& e) {
        return unexpected(at(file, e.source()) + std::string(e.description()));
    }
    Schema s;
    auto error = [&](const toml::node& n, const std::string& message) {
        return unexpected(at(file, n.source()) + message);
    };
    auto strings = [&](const toml::node& n, const char* what, std::vector<std::string>& out) -> tl::expected<void, std::string> {
        const auto* arr = n.as_array();
        if (!arr) return error(n, std::string("'") + what + "' must be an array of strings");
        for (const auto& e : *arr) {
            const auto* str = e.as_string();
            if (!str || str->get().empty()) return error(e, std::string("'") + what + "' must hold non-empty strings");
            if (std::find(out.begin(), out.end(), str->get()) != out.end())
                return error(e, std::string("'") + str->get() + "' appears twice in '" + what + "'");
            out.push_back(str->get());
        }
        return {};
    };
    const toml::node* primary = nullptr;
    const toml::node* supporting = nullptr;
    for (const auto& [k, v] : root) {
        if (k == "columns") {
            if (auto r = strings(v, "columns", s.columns); !r) return unexpected(r.error());
        } else if (k == "header") {
            if (!v.is_boolean()) return error(v, "'header' must be true or false");
            s.header = v.as_boolean()->get();
        } else if (k == "encoding") {
            const auto* e = v.as_string();
            if (!e || (e->get() != "utf-8" && e->get() != "cp932"))
                return error(v, "'encoding' must be \"utf-8\" or \"cp932\"");
            s.encoding = e->get();
        } else if (k == "primary") {
            primary = &v;
        } else if (k == "supporting") {
            supporting = &v;
        } else {
            return error(v, "unknown key '" + std::string(k.str()) + "' (known: columns, header, encoding, [primary], [supporting])");
        }
    }
    const toml::source_region top{{1, 1}, {1, 1}, nullptr};
    if (s.columns.empty()) return unexpected(at(file, top) + "'columns' (the CSV's column names, in order) is missing");
    if (!primary || !primary->is_table()) return unexpected(at(file, top) + "the [primary] table is missing");
    bool have_kind = false;
    const toml::node* pattern_node = nullptr;
    const toml::node* length_node = nullptr;
    for (const auto& [k, v] : *primary->as_table()) {
        if (k == "column") {
            if (!v.is_string()) return error(v, "'column' must be a string");
            s.primary.column = v.as_string()->get();
            if (s.column_index(s.primary.column) == s.columns.size())
                return error(v, "primary column '" + s.primary.column + "' is not in 'columns'");
        } else if (k == "kind") {
            const auto* str = v.as_string();
            const std::string kind = str ? str->get() : "";
            if (kind == "phone") s.primary.kind = Kind::phone;
            else if (kind == "email") s.primary.kind = Kind::email;
            else if (kind == "digits") s.primary.kind = Kind::digits;
            else if (kind == "regex") s.primary.kind = Kind::regex;
            else return error(v, "'kind' must be \"phone\", \"email\", \"digits\" or \"regex\"");
            have_kind = true;
        } else if (k == "length") {
            const auto* n = v.as_integer();
            if (!n || n->get() < 4 || n->get() > 64) return error(v, "'length' must be a number of digits from 4 to 64");
            s.primary.length = static_cast<std::uint32_t>(n->get());
            length_node = &v;
        } else if (k == "pattern") {
            const auto* str = v.as_string();
            if (!str || str->get().empty() || str->get().size() > max_pattern_bytes)
                return error(v, "'pattern' must be a regular expression of 1 to " + std::to_string(max_pattern_bytes) + " bytes");
            s.primary.pattern = str->get();
            pattern_node = &v;
        } else {
            return error(v, "unknown key '" + std::string(k.str()) + "' in [primary] (known: column, kind, length, pattern)");
        }
    }
    if (s.primary.column.empty()) return error(*primary, "[primary] needs 'column'");
    if (!have_kind) return error(*primary, "[primary] needs 'kind' (phone, email, digits or regex)");
    if (s.primary.kind == Kind::digits && s.primary.length == 0)
        return error(*primary, "kind = \"digits\" needs 'length' (the number of digits)");
    if (s.primary.kind != Kind::digits && length_node) return error(*length_node, "'length' applies only to kind = \"digits\"");
    if (s.primary.kind == Kind::regex && s.primary.pattern.empty()) return error(*primary, "kind = \"regex\" needs 'pattern'");
    if (s.primary.kind != Kind::regex && pattern_node) return error(*pattern_node, "'pattern' applies only to kind = \"regex\"");
    if (supporting) {
        if (!supporting->is_table()) return error(*supporting, "'supporting' must be a table");
        bool have_min = false;
        for (const auto& [k, v] : *supporting->as_table()) {
            if (k == "columns") {
                if (auto r = strings(v, "columns", s.supporting); !r) return unexpected(r.error());
                if (s.supporting.size() > max_supporting)
                    return error(v, "at most " + std::to_string(max_supporting) + " supporting columns");
                for (const auto& c : s.supporting) {
                    if (s.column_index(c) == s.columns.size()) return error(v, "supporting column '" + c + "' is not in 'columns'");
                    if (c == s.primary.column) return error(v, "'" + c + "' is the primary column");
                }
            } else if (k == "min_supporting") {
                const auto* n = v.as_integer();
                if (!n || n->get() < 0 || n->get() > static_cast<std::int64_t>(max_supporting))
                    return error(v, "'min_supporting' must be a number from 0 to " + std::to_string(max_supporting));
                s.min_supporting = static_cast<std::uint32_t>(n->get());
                have_min = true;
            } else if (k == "near") {
                const auto* n = v.as_integer();
                if (!n || n->get() < 1 || n->get() > max_near)
                    return error(v, "'near' must be a number of characters from 1 to " + std::to_string(max_near));
                s.near = static_cast<std::uint32_t>(n->get());
            } else {
                return error(v, "unknown key '" + std::string(k.str()) + "' in [supporting] (known: columns, min_supporting, near)");
            }
        }
        if (have_min && s.min_supporting > s.supporting.size())
            return error(*supporting, "'min_supporting' is " + std::to_string(s.min_supporting) + " but only " +
                                          std::to_string(s.supporting.size()) + " supporting columns are named");
        if (!have_min) s.min_supporting = s.supporting.empty() ? 0 : 1;
    } else {
        s.min_supporting = 0;
    }
    return s;
}

tl::expected<Schema, std::string> load_schema(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return tl::unexpected("cannot read the schema file '" + path + "'");
    std::string text;
    std::getline(in, text, '\0');
    if (text.size() > (1u << 20)) return tl::unexpected("the schema file '" + path + "' is larger than 1 MiB");
    return parse_schema(text, path);
}

}  // namespace custguard::edm
