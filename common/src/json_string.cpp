#include "custguard/common/json_string.hpp"

#include <cstdint>

#include "utf8_decode.hpp"

namespace custguard::common {

namespace {

std::size_t utf8_length(std::string_view s, std::size_t i) {
    std::uint32_t cp = 0;
    return detail::utf8_at(s, i, cp);
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out += '"';
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    out += "\\u00";
                    out += hex[c >> 4];
                    out += hex[c & 15];
                } else {
                    out += static_cast<char>(c);
                }
            }
            ++i;
        } else if (const std::size_t n = utf8_length(s, i)) {
            out.append(s.substr(i, n));
            i += n;
        } else {
            out += "\xef\xbf\xbd";
            ++i;
        }
    }
    out += '"';
}

std::string json_string(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size() + 2);
    append_json_string(out, bytes);
    return out;
}

}  // namespace custguard::common
