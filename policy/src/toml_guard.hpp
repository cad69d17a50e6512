// Guards in front of toml++ (internal to the policy library).
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

#include "custguard/policy/diagnostic.hpp"

namespace custguard::policy {

// TOML allows non-ASCII text only inside strings and comments. toml++ 3.3 (Debian 12)
// reaches __builtin_unreachable() when it tests some non-ASCII characters for white space
// (e.g. U+3001 "、" after a value), so such characters are rejected here, with their
// position, before the parser sees them. Found by fuzz/policy.
inline std::optional<Diagnostic> non_ascii_outside_strings(const std::string& text,
                                                    const std::string& file) {
    enum class Mode { code, comment, basic, literal, ml_basic, ml_literal } mode = Mode::code;
    std::uint32_t line = 1, column = 1;
    for (std::size_t i = 0; i < text.size();) {
        unsigned char c = static_cast<unsigned char>(text[i]);
        auto starts = [&](std::string_view s) { return text.compare(i, s.size(), s) == 0; };
        std::size_t step = 1;
        switch (mode) {
        case Mode::code:
            if (c >= 0x80) {
                int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
                auto cp = static_cast<std::uint32_t>(c & (0x3F >> extra));
                for (int k = 1; k <= extra && i + static_cast<std::size_t>(k) < text.size(); ++k)
                    cp = (cp << 6) | (static_cast<unsigned char>(text[i + static_cast<std::size_t>(k)]) & 0x3F);
                char hex[16];
                std::snprintf(hex, sizeof hex, "U+%04X", static_cast<unsigned>(cp));
                return Diagnostic{Severity::error, {file, line, column},
                                  std::string("non-ASCII character ") + hex +
                                      " outside a quoted string or comment",
                                  "TOML allows non-ASCII text only inside \"...\" strings and "
                                  "after #; look for a full-width space or punctuation"};
            }
            if (c == '#') mode = Mode::comment;
            else if (starts("\"\"\"")) mode = Mode::ml_basic, step = 3;
            else if (starts("'''")) mode = Mode::ml_literal, step = 3;
            else if (c == '"') mode = Mode::basic;
            else if (c == '\'') mode = Mode::literal;
            break;
        case Mode::comment:
            if (c == '\n') mode = Mode::code;
            break;
        case Mode::basic:
            if (c == '\\') step = 2;
            else if (c == '"' || c == '\n') mode = Mode::code;
            break;
        case Mode::literal:
            if (c == '\'' || c == '\n') mode = Mode::code;
            break;
        case Mode::ml_basic:
            if (c == '\\') step = 2;
            else if (starts("\"\"\"")) mode = Mode::code, step = 3;
            break;
        case Mode::ml_literal:
            if (starts("'''")) mode = Mode::code, step = 3;
            break;
        }
        for (std::size_t k = 0; k < step && i < text.size(); ++k, ++i) {
            unsigned char b = static_cast<unsigned char>(text[i]);
            if (b == '\n') ++line, column = 1;
            else if ((b & 0xC0) != 0x80) ++column;  // count characters, not UTF-8 bytes
        }
    }
    return std::nullopt;
}

}  // namespace custguard::policy
