// A small JSON value with a writer and a strict parser. The D-Bus API returns structured
// results (status, policy, lists) as JSON strings; custguardctl parses them to print
// tables or passes them through with --json. No JSON library ships in the base system we
// build on, and these documents are small, so a compact implementation is enough.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <tl/expected.hpp>

namespace custguard::common {

class Json {
public:
    using Array = std::vector<Json>;
    using Object = std::vector<std::pair<std::string, Json>>;  // insertion order kept

    Json() = default;  // null
    Json(std::nullptr_t) {}
    Json(bool b) : v_(b) {}
    Json(int i) : v_(static_cast<std::int64_t>(i)) {}
    Json(unsigned i) : v_(static_cast<std::int64_t>(i)) {}
    Json(long i) : v_(static_cast<std::int64_t>(i)) {}
    Json(unsigned long i) : v_(static_cast<std::int64_t>(i)) {}
    Json(long long i) : v_(static_cast<std::int64_t>(i)) {}
    Json(unsigned long long i) : v_(static_cast<std::int64_t>(i)) {}
    Json(double d) : v_(d) {}
    Json(const char* s) : v_(std::string(s)) {}
    Json(std::string s) : v_(std::move(s)) {}
    Json(std::string_view s) : v_(std::string(s)) {}
    Json(Array a) : v_(std::move(a)) {}
    Json(Object o) : v_(std::move(o)) {}

    static Json array() { return Json(Array{}); }
    static Json object() { return Json(Object{}); }

    bool is_null() const { return std::holds_alternative<std::monostate>(v_); }
    bool is_bool() const { return std::holds_alternative<bool>(v_); }
    bool is_int() const { return std::holds_alternative<std::int64_t>(v_); }
    bool is_number() const { return is_int() || std::holds_alternative<double>(v_); }
    bool is_string() const { return std::holds_alternative<std::string>(v_); }
    bool is_array() const { return std::holds_alternative<Array>(v_); }
    bool is_object() const { return std::holds_alternative<Object>(v_); }

    bool as_bool(bool fallback = false) const;
    std::int64_t as_int(std::int64_t fallback = 0) const;
    std::string as_string(std::string fallback = {}) const;  // numbers and bools rendered
    const Array& as_array() const;    // empty for non-arrays
    const Object& as_object() const;  // empty for non-objects

    // Object access: missing keys give a null value.
    const Json& operator[](std::string_view key) const;
    Json& set(std::string key, Json value);  // object: replace or append; returns *this
    Json& push(Json value);                  // array: append; returns *this

    // Compact (indent < 0) or pretty with `indent` spaces per level.
    std::string dump(int indent = -1) const;
    static tl::expected<Json, std::string> parse(std::string_view text);

private:
    void dump_to(std::string& out, int indent, int depth) const;
    std::variant<std::monostate, bool, std::int64_t, double, std::string, Array, Object> v_;
};

}  // namespace custguard::common
