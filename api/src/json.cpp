#include "custguard/api/json.hpp"

#include <cerrno>

namespace custguard::api {

using common::Json;

common::Json to_json(const HeldJob& j) {
    common::Json hits = common::Json::object();
    for (const auto& [name, n] : j.detector_hits) hits.set(name, n);
    return common::Json::object()
        .set("job", j.job)
        .set("printer", j.printer)
        .set("user", j.user)
        .set("uid", j.uid)
        .set("title", j.title)
        .set("pages", j.pages)
        .set("client", j.client)
        .set("held_at", j.held_at)
        .set("detector_hits", std::move(hits));
}

namespace {

// The element signature of an array: one kind for every element, else "v".
std::string element_signature(const Json::Array& a) {
    if (a.empty()) return "v";
    auto same = [&](auto pred) {
        for (const auto& e : a)
            if (!pred(e)) return false;
        return true;
    };
    if (same([](const Json& e) { return e.is_object(); })) return "a{sv}";
    if (same([](const Json& e) { return e.is_string(); })) return "s";
    if (same([](const Json& e) { return e.is_int(); })) return "x";
    return "v";
}

int append_as(sd_bus_message* m, const Json& value, const std::string& signature) {
    if (signature == "v") {
        const std::string inner = signature_of(value);
        if (inner.empty()) return -EINVAL;
        int r = sd_bus_message_open_container(m, 'v', inner.c_str());
        if (r >= 0) r = append_json(m, value);
        return r < 0 ? r : sd_bus_message_close_container(m);
    }
    return append_json(m, value);
}

}  // namespace

std::string signature_of(const Json& value) {
    if (value.is_bool()) return "b";
    if (value.is_int()) return "x";
    if (value.is_number()) return "d";
    if (value.is_string()) return "s";
    if (value.is_object()) return "a{sv}";
    if (value.is_array()) return "a" + element_signature(value.as_array());
    return {};
}

int append_json(sd_bus_message* m, const Json& value, const std::string& forced_element) {
    if (value.is_bool()) {
        int b = value.as_bool();
        return sd_bus_message_append_basic(m, 'b', &b);
    }
    if (value.is_int()) {
        std::int64_t x = value.as_int();
        return sd_bus_message_append_basic(m, 'x', &x);
    }
    if (value.is_number()) {
        double d = std::stod(value.dump());
        return sd_bus_message_append_basic(m, 'd', &d);
    }
    if (value.is_string()) return sd_bus_message_append_basic(m, 's', value.as_string().c_str());
    if (value.is_object()) {
        int r = sd_bus_message_open_container(m, 'a', "{sv}");
        for (const auto& [key, v] : value.as_object()) {
            if (r >= 0) r = sd_bus_message_open_container(m, 'e', "sv");
            if (r >= 0) r = sd_bus_message_append_basic(m, 's', key.c_str());
            if (r >= 0) r = append_as(m, v, "v");
            if (r >= 0) r = sd_bus_message_close_container(m);
        }
        return r < 0 ? r : sd_bus_message_close_container(m);
    }
    if (value.is_array()) {
        const std::string element = forced_element.empty() ? element_signature(value.as_array()) : forced_element;
        int r = sd_bus_message_open_container(m, 'a', element.c_str());
        for (const auto& e : value.as_array())
            if (r >= 0) r = append_as(m, e, element);
        return r < 0 ? r : sd_bus_message_close_container(m);
    }
    return -EINVAL;  // null: no D-Bus type
}

int read_json(sd_bus_message* m, Json& out) {
    char type = 0;
    const char* contents = nullptr;
    int r = sd_bus_message_peek_type(m, &type, &contents);
    if (r <= 0) return r == 0 ? -EBADMSG : r;
    switch (type) {
    case 'y': case 'n': case 'q': case 'i': case 'u': case 'x': case 't': case 'h': {
        union {
            std::uint8_t y;
            std::int16_t n;
            std::uint16_t q;
            std::int32_t i;
            std::uint32_t u;
            std::int64_t x;
            std::uint64_t t;
        } v{};
        if ((r = sd_bus_message_read_basic(m, type, &v)) < 0) return r;
        switch (type) {
        case 'y': out = Json(static_cast<unsigned>(v.y)); break;
        case 'n': out = Json(static_cast<int>(v.n)); break;
        case 'q': out = Json(static_cast<unsigned>(v.q)); break;
        case 'i': case 'h': out = Json(v.i); break;
        case 'u': out = Json(v.u); break;
        case 'x': out = Json(static_cast<long long>(v.x)); break;
        default: out = Json(static_cast<unsigned long long>(v.t)); break;
        }
        return 1;
    }
    case 'b': {
        int b = 0;
        if ((r = sd_bus_message_read_basic(m, 'b', &b)) < 0) return r;
        out = Json(b != 0);
        return 1;
    }
    case 'd': {
        double d = 0;
        if ((r = sd_bus_message_read_basic(m, 'd', &d)) < 0) return r;
        out = Json(d);
        return 1;
    }
    case 's': case 'o': case 'g': {
        const char* s = nullptr;
        if ((r = sd_bus_message_read_basic(m, type, &s)) < 0) return r;
        out = Json(std::string(s ? s : ""));
        return 1;
    }
    case 'v': {
        if ((r = sd_bus_message_enter_container(m, 'v', contents)) < 0 || (r = read_json(m, out)) < 0) return r;
        return sd_bus_message_exit_container(m);
    }
    case 'a': case 'r': case 'e': {
        if ((r = sd_bus_message_enter_container(m, type, contents)) < 0) return r;
        // A dict with string keys is an object; any other array, struct or dict entry an array.
        const bool object = type == 'a' && contents && contents[0] == '{' && contents[1] == 's';
        Json value = object ? Json::object() : Json::array();
        while ((r = sd_bus_message_at_end(m, 0)) == 0) {
            if (object) {
                const char* entry = contents + 1;  // "sv}" -> enter takes "sv"
                std::string inner(entry, std::string_view(entry).size() - 1);
                const char* key = nullptr;
                Json v;
                if ((r = sd_bus_message_enter_container(m, 'e', inner.c_str())) < 0 ||
                    (r = sd_bus_message_read_basic(m, 's', &key)) < 0 || (r = read_json(m, v)) < 0 ||
                    (r = sd_bus_message_exit_container(m)) < 0)
                    return r;
                value.set(key ? key : "", std::move(v));
            } else {
                Json v;
                if ((r = read_json(m, v)) < 0) return r;
                value.push(std::move(v));
            }
        }
        if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0) return r;
        out = std::move(value);
        return 1;
    }
    default: return -EBADMSG;
    }
}

}  // namespace custguard::api
