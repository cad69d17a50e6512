#include "custguard/common/json.hpp"

#include "custguard/common/json_string.hpp"

#include <charconv>
#include <cstdio>

namespace custguard::common {

namespace {

const Json k_null;
const Json::Array k_empty_array;
const Json::Object k_empty_object;

void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xc0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xe0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
        out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
        out += static_cast<char>(0xf0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
        out += static_cast<char>(0x80 | (cp & 0x3f));
    }
}

class Parser {
public:
    explicit Parser(std::string_view text) : s_(text) {}

    tl::expected<Json, std::string> document() {
        auto v = value(0);
        if (!v) return v;
        skip_ws();
        if (i_ != s_.size()) return fail("trailing characters");
        return v;
    }

private:
    tl::unexpected<std::string> fail(std::string_view what) const {
        return tl::unexpected("JSON: " + std::string(what) + " at offset " + std::to_string(i_));
    }
    void skip_ws() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
    }
    bool literal(std::string_view word) {
        if (s_.substr(i_, word.size()) != word) return false;
        i_ += word.size();
        return true;
    }

    tl::expected<Json, std::string> value(int depth) {
        if (depth > 64) return fail("nesting too deep");
        skip_ws();
        if (i_ >= s_.size()) return fail("unexpected end");
        char c = s_[i_];
        if (c == '{') return object(depth);
        if (c == '[') return array(depth);
        if (c == '"') {
            auto s = string();
            if (!s) return tl::unexpected(s.error());
            return Json(std::move(*s));
        }
        if (literal("true")) return Json(true);
        if (literal("false")) return Json(false);
        if (literal("null")) return Json();
        return number();
    }

    tl::expected<Json, std::string> number() {
        std::size_t start = i_;
        if (i_ < s_.size() && s_[i_] == '-') ++i_;
        bool fractional = false;
        while (i_ < s_.size()) {
            char c = s_[i_];
            if (c >= '0' && c <= '9') ++i_;
            else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') fractional = true, ++i_;
            else break;
        }
        auto text = s_.substr(start, i_ - start);
        if (text.empty() || text == "-") return fail("expected a value");
        if (!fractional) {
            std::int64_t v = 0;
            auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
            if (ec == std::errc{} && end == text.data() + text.size()) return Json(static_cast<long long>(v));
        }
        std::string copy(text);
        char* end = nullptr;
        double d = std::strtod(copy.c_str(), &end);
        if (end != copy.c_str() + copy.size()) return fail("malformed number");
        return Json(d);
    }

    tl::expected<std::string, std::string> string() {
        ++i_;  // opening quote
        std::string out;
        while (i_ < s_.size()) {
            char c = s_[i_++];
            if (c == '"') return out;
            if (static_cast<unsigned char>(c) < 0x20) return fail("control character in string");
            if (c != '\\') {
                out += c;
                continue;
            }
            if (i_ >= s_.size()) break;
            char e = s_[i_++];
            switch (e) {
            case '"': out += '"'; break;
            case '\\': out += '\\'; break;
            case '/': out += '/'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'u': {
                auto hex4 = [&](std::uint32_t& cp) {
                    if (i_ + 4 > s_.size()) return false;
                    auto [end, ec] = std::from_chars(s_.data() + i_, s_.data() + i_ + 4, cp, 16);
                    if (ec != std::errc{} || end != s_.data() + i_ + 4) return false;
                    i_ += 4;
                    return true;
                };
                std::uint32_t cp = 0;
                if (!hex4(cp)) return fail("malformed \\u escape");
                if (cp >= 0xd800 && cp < 0xdc00 && s_.substr(i_, 2) == "\\u") {
                    i_ += 2;
                    std::uint32_t lo = 0;
                    if (!hex4(lo) || lo < 0xdc00 || lo >= 0xe000) return fail("malformed surrogate pair");
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                append_utf8(out, cp);
                break;
            }
            default: return fail("unknown escape");
            }
        }
        return fail("unterminated string");
    }

    tl::expected<Json, std::string> array(int depth) {
        ++i_;
        Json::Array out;
        skip_ws();
        if (i_ < s_.size() && s_[i_] == ']') return ++i_, Json(std::move(out));
        while (true) {
            auto v = value(depth + 1);
            if (!v) return v;
            out.push_back(std::move(*v));
            skip_ws();
            if (i_ < s_.size() && s_[i_] == ',') { ++i_; continue; }
            if (i_ < s_.size() && s_[i_] == ']') { ++i_; return Json(std::move(out)); }
            return fail("expected ',' or ']'");
        }
    }

    tl::expected<Json, std::string> object(int depth) {
        ++i_;
        Json::Object out;
        skip_ws();
        if (i_ < s_.size() && s_[i_] == '}') return ++i_, Json(std::move(out));
        while (true) {
            skip_ws();
            if (i_ >= s_.size() || s_[i_] != '"') return fail("expected a key");
            auto key = string();
            if (!key) return tl::unexpected(key.error());
            skip_ws();
            if (i_ >= s_.size() || s_[i_] != ':') return fail("expected ':'");
            ++i_;
            auto v = value(depth + 1);
            if (!v) return v;
            out.emplace_back(std::move(*key), std::move(*v));
            skip_ws();
            if (i_ < s_.size() && s_[i_] == ',') { ++i_; continue; }
            if (i_ < s_.size() && s_[i_] == '}') { ++i_; return Json(std::move(out)); }
            return fail("expected ',' or '}'");
        }
    }

    std::string_view s_;
    std::size_t i_ = 0;
};

}  // namespace

bool Json::as_bool(bool fallback) const {
    if (auto* b = std::get_if<bool>(&v_)) return *b;
    return fallback;
}

std::int64_t Json::as_int(std::int64_t fallback) const {
    if (auto* i = std::get_if<std::int64_t>(&v_)) return *i;
    if (auto* d = std::get_if<double>(&v_)) return static_cast<std::int64_t>(*d);
    return fallback;
}

std::string Json::as_string(std::string fallback) const {
    if (auto* s = std::get_if<std::string>(&v_)) return *s;
    if (auto* i = std::get_if<std::int64_t>(&v_)) return std::to_string(*i);
    if (auto* b = std::get_if<bool>(&v_)) return *b ? "yes" : "no";
    if (is_number()) return dump();
    return fallback;
}

const Json::Array& Json::as_array() const {
    if (auto* a = std::get_if<Array>(&v_)) return *a;
    return k_empty_array;
}

const Json::Object& Json::as_object() const {
    if (auto* o = std::get_if<Object>(&v_)) return *o;
    return k_empty_object;
}

const Json& Json::operator[](std::string_view key) const {
    for (const auto& [k, v] : as_object())
        if (k == key) return v;
    return k_null;
}

Json& Json::set(std::string key, Json value) {
    if (!is_object()) v_ = Object{};
    auto& o = std::get<Object>(v_);
    for (auto& [k, v] : o)
        if (k == key) {
            v = std::move(value);
            return *this;
        }
    o.emplace_back(std::move(key), std::move(value));
    return *this;
}

Json& Json::push(Json value) {
    if (!is_array()) v_ = Array{};
    std::get<Array>(v_).push_back(std::move(value));
    return *this;
}

std::string Json::dump(int indent) const {
    std::string out;
    dump_to(out, indent, 0);
    return out;
}

void Json::dump_to(std::string& out, int indent, int depth) const {
    auto newline = [&](int d) {
        if (indent < 0) return;
        out += '\n';
        out.append(static_cast<std::size_t>(indent * d), ' ');
    };
    std::visit(
        [&](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::monostate>) {
                out += "null";
            } else if constexpr (std::is_same_v<T, bool>) {
                out += v ? "true" : "false";
            } else if constexpr (std::is_same_v<T, std::int64_t>) {
                out += std::to_string(v);
            } else if constexpr (std::is_same_v<T, double>) {
                char buf[32];
                std::snprintf(buf, sizeof buf, "%.17g", v);
                out += buf;
            } else if constexpr (std::is_same_v<T, std::string>) {
                common::append_json_string(out, v);
            } else if constexpr (std::is_same_v<T, Array>) {
                out += '[';
                for (std::size_t i = 0; i < v.size(); ++i) {
                    if (i) out += ',';
                    newline(depth + 1);
                    v[i].dump_to(out, indent, depth + 1);
                }
                if (!v.empty()) newline(depth);
                out += ']';
            } else {
                out += '{';
                for (std::size_t i = 0; i < v.size(); ++i) {
                    if (i) out += ',';
                    newline(depth + 1);
                    common::append_json_string(out, v[i].first);
                    out += indent < 0 ? ":" : ": ";
                    v[i].second.dump_to(out, indent, depth + 1);
                }
                if (!v.empty()) newline(depth);
                out += '}';
            }
        },
        v_);
}

tl::expected<Json, std::string> Json::parse(std::string_view text) { return Parser(text).document(); }

}  // namespace custguard::common
