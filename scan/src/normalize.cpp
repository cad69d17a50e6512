#include "custguard/scan/normalize.hpp"

#include <array>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

// The first index >= i where a mapped sequence may start (n if none). Conservative: the
// caller copies a byte unchanged when nothing matches there. The SIMD path looks at byte
// pairs/triples, so Japanese text (E3 lead bytes everywhere) is skipped 16 bytes at a time.
inline std::size_t next_candidate(const unsigned char* s, std::size_t i, std::size_t n) {
#if defined(__SSE2__)
    const auto eq = [](__m128i v, unsigned char c) { return _mm_cmpeq_epi8(v, _mm_set1_epi8(static_cast<char>(c))); };
    while (i + 18 <= n) {
        const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
        const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i + 1));
        const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i + 2));
        const __m128i b80 = eq(b, 0x80), b83 = eq(b, 0x83);
        __m128i m = _mm_and_si128(eq(a, 0xC2), eq(b, 0xA0));
        m = _mm_or_si128(m, _mm_and_si128(eq(a, 0xE2), _mm_or_si128(_mm_or_si128(b80, eq(b, 0x81)), eq(b, 0x88))));
        const __m128i e3 = _mm_or_si128(_mm_and_si128(b80, _mm_or_si128(eq(c, 0x80), eq(c, 0xB6))),
                                        _mm_and_si128(b83, _mm_or_si128(eq(c, 0xBB), eq(c, 0xBC))));
        m = _mm_or_si128(m, _mm_and_si128(eq(a, 0xE3), e3));
        // EF B9 .. EF BD: small forms, BOM, full-width forms.
        const __m128i ef2 = _mm_cmpeq_epi8(_mm_max_epu8(_mm_min_epu8(b, _mm_set1_epi8(static_cast<char>(0xBD))),
                                                        _mm_set1_epi8(static_cast<char>(0xB9))),
                                           b);
        m = _mm_or_si128(m, _mm_and_si128(eq(a, 0xEF), ef2));
        const int mask = _mm_movemask_epi8(m);
        if (mask) return i + static_cast<std::size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
        i += 16;
    }
#endif
    while (i < n && !kAttention[s[i]]) ++i;
    return i;
}

}  // namespace

std::size_t normalize_into(std::string_view in, char* out) {
    const auto* s = reinterpret_cast<const unsigned char*>(in.data());
    const std::size_t n = in.size();
    std::size_t i = 0, o = 0;
    // "After a digit" decides whether ー/・ act as separators.
    auto after_digit = [&] { return o > 0 && is_digit(out[o - 1]); };
    while (i < n) {
        // Copy runs of untouched bytes; most text is such runs.
        const std::size_t j = next_candidate(s, i, n);
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
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t n = text.size();
    std::size_t i = 0;
    std::uint64_t continuation = 0;
#if defined(__SSE2__)
    // Continuation bytes 0x80..0xBF are the signed bytes below -64; count them 16 at a
    // time in byte lanes, flushed before they can overflow.
    const __m128i limit = _mm_set1_epi8(-64), zero = _mm_setzero_si128();
    while (i + 16 <= n) {
        __m128i acc = zero;
        for (int k = 0; k < 255 && i + 16 <= n; ++k, i += 16) {
            const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
            acc = _mm_sub_epi8(acc, _mm_cmplt_epi8(v, limit));
        }
        const __m128i sums = _mm_sad_epu8(acc, zero);
        continuation += static_cast<std::uint64_t>(_mm_cvtsi128_si32(sums)) +
                        static_cast<std::uint64_t>(_mm_extract_epi16(sums, 4));
    }
#endif
    for (; i < n; ++i) continuation += (p[i] & 0xC0) == 0x80;
    return n - continuation;
}

}  // namespace custguard::scan
