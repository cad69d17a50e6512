#include "custguard/scan/normalize.hpp"

#include <array>
#include <cstring>

namespace custguard::scan {

namespace {

// Lead bytes of every sequence the mapping touches: C2 (U+00A0), E2 (dashes, spaces,
// zero-width), E3 (U+3000, ー, ・, 〶), EF (full-width forms, U+FEFF, halfwidth ｰ ･).
constexpr std::array<bool, 256> kAttention = [] {
    std::array<bool, 256> t{};
    t[0xC2] = t[0xE2] = t[0xE3] = t[0xEF] = true;
    return t;
}();

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::size_t normalize_into(std::string_view in, char* out) {
    const auto* s = reinterpret_cast<const unsigned char*>(in.data());
    const std::size_t n = in.size();
    std::size_t i = 0, o = 0;
    // "After a digit" decides whether ー/・ act as separators.
    auto after_digit = [&] { return o > 0 && is_digit(out[o - 1]); };
    while (i < n) {
        // Copy runs of untouched bytes; most text is such runs.
        std::size_t j = i;
        while (j < n && !kAttention[s[j]]) ++j;
        if (j > i) {
            std::memcpy(out + o, s + i, j - i);
            o += j - i;
            i = j;
            if (i >= n) break;
        }
        const unsigned char b0 = s[i];
        const unsigned char b1 = i + 1 < n ? s[i + 1] : 0;
        const unsigned char b2 = i + 2 < n ? s[i + 2] : 0;
        if (b0 == 0xC2) {
            if (b1 == 0xA0) {  // no-break space
                out[o++] = ' ';
                i += 2;
                continue;
            }
        } else if (b0 == 0xEF) {
            if (b1 == 0xBC && b2 >= 0x81 && b2 <= 0xBF) {  // U+FF01..FF3F → '!'..'_'
                out[o++] = static_cast<char>(b2 - 0x81 + 0x21);
                i += 3;
                continue;
            }
            if (b1 == 0xBD && b2 >= 0x80 && b2 <= 0x9E) {  // U+FF40..FF5E → '`'..'~'
                out[o++] = static_cast<char>(b2 - 0x80 + 0x60);
                i += 3;
                continue;
            }
            if ((b1 == 0xBD && (b2 == 0xB0 || b2 == 0xA5)) && after_digit()) {  // ｰ ･
                out[o++] = '-';
                i += 3;
                continue;
            }
            if (b1 == 0xB9 && b2 == 0xA3) {  // U+FE63 small hyphen-minus
                out[o++] = '-';
                i += 3;
                continue;
            }
            if (b1 == 0xBB && b2 == 0xBF) {  // U+FEFF zero-width no-break space: drop
                i += 3;
                continue;
            }
        } else if (b0 == 0xE3) {
            if (b1 == 0x80 && b2 == 0x80) {  // U+3000 ideographic space
                out[o++] = ' ';
                i += 3;
                continue;
            }
            if (b1 == 0x83 && (b2 == 0xBC || b2 == 0xBB) && after_digit()) {  // ー ・
                out[o++] = '-';
                i += 3;
                continue;
            }
            if (b1 == 0x80 && b2 == 0xB6) {  // 〶 → 〒 (as NFKC does)
                out[o++] = static_cast<char>(0xE3);
                out[o++] = static_cast<char>(0x80);
                out[o++] = static_cast<char>(0x92);
                i += 3;
                continue;
            }
        } else if (b0 == 0xE2) {
            if (b1 == 0x80 && b2 >= 0x90 && b2 <= 0x95) {  // U+2010..2015 hyphens, dashes
                out[o++] = '-';
                i += 3;
                continue;
            }
            if (b1 == 0x88 && b2 == 0x92) {  // U+2212 minus sign
                out[o++] = '-';
                i += 3;
                continue;
            }
            if (b1 == 0x80 && b2 >= 0x80 && b2 <= 0x8A) {  // U+2000..200A spaces
                out[o++] = ' ';
                i += 3;
                continue;
            }
            if ((b1 == 0x80 && b2 >= 0x8B && b2 <= 0x8D) || (b1 == 0x81 && b2 == 0xA0)) {
                i += 3;  // zero-width space/joiners, word joiner: drop
                continue;
            }
        }
        out[o++] = static_cast<char>(b0);
        ++i;
    }
    return o;
}

std::string normalize(std::string_view in) {
    std::string out(in.size(), '\0');
    out.resize(normalize_into(in, out.data()));
    return out;
}

std::uint64_t count_code_points(std::string_view text) {
    std::uint64_t n = 0;
    // Written so the compiler vectorises it.
    for (unsigned char c : text) n += (c & 0xC0) != 0x80;
    return n;
}

}  // namespace custguard::scan
