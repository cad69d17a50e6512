#include "custguard/common/text_escape.hpp"

#include <cstdint>

#include "utf8_decode.hpp"

namespace custguard::common {

namespace {

using detail::utf8_at;

constexpr char hex[] = "0123456789abcdef";

// Formatting characters that change how the rest of a line reads.
bool invisible_control(std::uint32_t cp) {
    return (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

}  // namespace

void append_escaped_text(std::string& out, std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            switch (c) {
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    out += "\\x";
                    out += hex[c >> 4];
                    out += hex[c & 15];
                } else {
                    out += static_cast<char>(c);
                }
            }
            ++i;
            continue;
        }
        std::uint32_t cp = 0;
        const std::size_t n = utf8_at(s, i, cp);
        if (n == 0) {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
            ++i;
        } else if (invisible_control(cp)) {
            out += "\\u";
            for (int shift = 12; shift >= 0; shift -= 4) out += hex[(cp >> shift) & 15];
            i += n;
        } else {
            out.append(s.substr(i, n));
            i += n;
        }
    }
}

std::string escape_text(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size());
    append_escaped_text(out, bytes);
    return out;
}

bool is_plain_text(std::string_view bytes) { return escape_text(bytes) == bytes; }

}  // namespace custguard::common
