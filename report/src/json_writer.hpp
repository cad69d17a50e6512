// A JSON tree just large enough for the reports, written with two-space indentation and
// keys in insertion order (so the output is byte-stable). Strings go through
// common::append_json_string (invalid UTF-8 becomes U+FFFD).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace custguard::report::detail {

class JsonValue {
public:
    using Array = std::vector<JsonValue>;
    using Object = std::vector<std::pair<std::string, JsonValue>>;

    JsonValue() = default;
    JsonValue(bool b) : v_(b) {}
    JsonValue(std::uint64_t n) : v_(n) {}
    JsonValue(int n) : v_(static_cast<std::uint64_t>(n)) {}
    JsonValue(std::string s) : v_(std::move(s)) {}
    JsonValue(const char* s) : v_(std::string(s)) {}
    JsonValue(std::optional<std::uint64_t> n) {
        if (n) v_ = *n;
    }
    static JsonValue array() { return JsonValue(Array{}); }
    static JsonValue object() { return JsonValue(Object{}); }
    // An empty string as null: absent values stay visible as keys.
    static JsonValue or_null(const std::string& s) { return s.empty() ? JsonValue() : JsonValue(s); }

    JsonValue& set(std::string key, JsonValue v) {
        std::get<Object>(v_).emplace_back(std::move(key), std::move(v));
        return *this;
    }
    JsonValue& push(JsonValue v) {
        std::get<Array>(v_).push_back(std::move(v));
        return *this;
    }
    std::string dump() const {
        std::string out;
        dump_to(out, 0);
        out += '\n';
        return out;
    }

private:
    explicit JsonValue(Array a) : v_(std::move(a)) {}
    explicit JsonValue(Object o) : v_(std::move(o)) {}
    void dump_to(std::string& out, int depth) const;
    std::variant<std::monostate, bool, std::uint64_t, std::string, Array, Object> v_;
};

}  // namespace custguard::report::detail
