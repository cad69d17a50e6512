#include "custguard/scan/normalize.hpp"

#include <array>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace custguard::scan {

namespace {

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
constexpr bool is_blank(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
// Control characters that are not layout: dropped (a text layer's stray controls must not
// split a number).
constexpr bool is_control(unsigned char c) { return c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f'; }

// Bytes at which a mapped sequence may start: control characters, and the lead bytes C2
// (U+00A0, U+00AD, U+00B7), CD (U+034F), D8 (U+061C), E1 (U+180E), E2 (dashes, spaces,
// zero-width and bidi marks), E3 (U+3000, ー, ・, 〶), EF (variation selectors, small and
// full-width forms, U+FEFF, halfwidth ｰ ･).
constexpr std::array<bool, 256> kAttention = [] {
    std::array<bool, 256> t{};
    for (int c = 0; c < 0x20; ++c) t[c] = is_control(static_cast<unsigned char>(c));
    t[0xC2] = t[0xCD] = t[0xD8] = t[0xE1] = t[0xE2] = t[0xE3] = t[0xEF] = true;
    return t;
}();

// A blank right after a digit may be a separator inside a number. The byte before may be
// the last byte of a full-width digit (EF BC 90..99): a superset is fine.
inline bool blank_after_digit(const unsigned char* s, std::size_t i) {
    return i > 0 && is_blank(s[i]) && ((s[i - 1] >= '0' && s[i - 1] <= '9') || (s[i - 1] >= 0x90 && s[i - 1] <= 0x99));
}

// The first index >= i where a mapped sequence may start (n if none). Conservative: the
// caller copies a byte unchanged when nothing matches there. The SIMD path looks at byte
// pairs/triples, so Japanese text (E3 lead bytes everywhere) is skipped 16 bytes at a time.
inline std::size_t next_candidate(const unsigned char* s, std::size_t i, std::size_t n) {
    if (i < n && blank_after_digit(s, i)) return i;
#if defined(__SSE2__)
    const auto eq = [](__m128i v, unsigned char c) { return _mm_cmpeq_epi8(v, _mm_set1_epi8(static_cast<char>(c))); };
    const auto in_range = [](__m128i v, unsigned char lo, unsigned char hi) {
        return _mm_cmpeq_epi8(_mm_max_epu8(_mm_min_epu8(v, _mm_set1_epi8(static_cast<char>(hi))),
                                           _mm_set1_epi8(static_cast<char>(lo))),
                              v);
    };
    while (i + 18 <= n) {
        const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
        const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i + 1));
        const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i + 2));
        const __m128i b80 = eq(b, 0x80), b83 = eq(b, 0x83);
        __m128i m = _mm_and_si128(eq(a, 0xC2), _mm_or_si128(_mm_or_si128(eq(b, 0xA0), eq(b, 0xAD)), eq(b, 0xB7)));
        m = _mm_or_si128(m, _mm_or_si128(_mm_or_si128(eq(a, 0xCD), eq(a, 0xD8)), eq(a, 0xE1)));
        m = _mm_or_si128(m, _mm_and_si128(eq(a, 0xE2), _mm_or_si128(_mm_or_si128(b80, eq(b, 0x81)), eq(b, 0x88))));
        const __m128i e3 = _mm_or_si128(_mm_and_si128(b80, _mm_or_si128(eq(c, 0x80), eq(c, 0xB6))),
                                        _mm_and_si128(b83, _mm_or_si128(eq(c, 0xBB), eq(c, 0xBC))));
        m = _mm_or_si128(m, _mm_and_si128(eq(a, 0xE3), e3));
        // EF B8 .. EF BD: variation selectors, small forms, BOM, full-width forms.
        m = _mm_or_si128(m, _mm_and_si128(eq(a, 0xEF), in_range(b, 0xB8, 0xBD)));
        // Control characters other than tab, LF, CR, FF: below 0x20, outside 9..13 but VT.
        const __m128i le1f = _mm_cmpeq_epi8(_mm_min_epu8(a, _mm_set1_epi8(0x1F)), a);
        m = _mm_or_si128(m, _mm_or_si128(_mm_andnot_si128(in_range(a, 9, 13), le1f), eq(a, 0x0B)));
        // A digit, then a blank or control (any byte <= 0x20), then a digit, another such
        // byte or a multi-byte character (full-width digit, invisible character): reported
        // at the blank, so "1,234 yen" is no stop. (A full-width digit is a mapped sequence;
        // the blank after it is looked at by the caller.)
        const auto digit = [](__m128i v) {
            return _mm_cmpeq_epi8(_mm_max_epu8(_mm_sub_epi8(v, _mm_set1_epi8('0')), _mm_set1_epi8(9)), _mm_set1_epi8(9));
        };
        const auto low = [](__m128i v) { return _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x20)), v); };
        const unsigned next = static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(digit(c), low(c)))) |
                              static_cast<unsigned>(_mm_movemask_epi8(c));  // high bit: non-ASCII
        const unsigned sep = static_cast<unsigned>(_mm_movemask_epi8(_mm_and_si128(digit(a), low(b)))) & next;
        const unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(m)) | (sep << 1);
        if (mask) return i + static_cast<std::size_t>(__builtin_ctz(mask));
        i += 16;
    }
#endif
    while (i < n && !kAttention[s[i]] && !blank_after_digit(s, i)) ++i;
    return i;
}

// The length of an invisible sequence at s[i] that is dropped (0 if none): control
// characters other than layout ones, soft hyphen U+00AD, U+034F, U+061C, U+180E,
// zero-width and direction marks U+200B..200F and U+202A..202E, U+2060..206F (but U+2065),
// variation selectors U+FE00..FE0F, U+FEFF.
inline std::size_t dropped_length(const unsigned char* s, std::size_t i, std::size_t n) {
    const unsigned char b0 = s[i];
    const unsigned char b1 = i + 1 < n ? s[i + 1] : 0;
    const unsigned char b2 = i + 2 < n ? s[i + 2] : 0;
    if (is_control(b0)) return 1;
    if ((b0 == 0xC2 && b1 == 0xAD) || (b0 == 0xCD && b1 == 0x8F) || (b0 == 0xD8 && b1 == 0x9C)) return 2;
    if (b0 == 0xE1 && b1 == 0xA0 && b2 == 0x8E) return 3;
    if (b0 == 0xE2 && ((b1 == 0x80 && ((b2 >= 0x8B && b2 <= 0x8F) || (b2 >= 0xAA && b2 <= 0xAE))) ||
                       (b1 == 0x81 && b2 >= 0xA0 && b2 <= 0xAF && b2 != 0xA5)))
        return 3;
    if (b0 == 0xEF && ((b1 == 0xBB && b2 == 0xBF) || (b1 == 0xB8 && b2 >= 0x80 && b2 <= 0x8F))) return 3;
    return 0;
}

// Blanks between digits that still read as one number: at most 4 blank bytes and one line
// break ("1234  5678", "1234\r\n5678"), invisible characters among them ignored. Returns
// the run's end, or `i` when it is not one.
inline std::size_t separator_run(const unsigned char* s, std::size_t i, std::size_t n) {
    std::size_t j = i, blanks = 0;
    int breaks = 0;
    while (j < n && j - i < 32) {
        if (is_blank(s[j]) && blanks < 4) {
            breaks += s[j++] == '\n';
            ++blanks;
        } else if (const std::size_t d = dropped_length(s, j, n)) {
            j += d;
        } else {
            break;
        }
    }
    if (breaks > 1 || j >= n) return i;
    if (s[j] >= '0' && s[j] <= '9') return j;
    // A full-width digit after the run.
    if (j + 2 < n && s[j] == 0xEF && s[j + 1] == 0xBC && s[j + 2] >= 0x90 && s[j + 2] <= 0x99) return j;
    return i;
}

}  // namespace

std::size_t normalize_into(std::string_view in, char* out) {
    const auto* s = reinterpret_cast<const unsigned char*>(in.data());
    const std::size_t n = in.size();
    std::size_t i = 0, o = 0;
    // "After a digit" decides whether ー/・, dots and blanks act as separators.
    auto after_digit = [&] { return o > 0 && is_digit(out[o - 1]); };
    while (i < n) {
        // Copy runs of untouched bytes; most text is such runs. A blank right after a
        // digit that came out of a mapped or dropped sequence is looked at here.
        if (!(is_blank(s[i]) && after_digit())) {
            const std::size_t j = next_candidate(s, i, n);
            if (j > i) {
                std::memcpy(out + o, s + i, j - i);
                o += j - i;
                i = j;
                if (i >= n) break;
            }
        }
        if (const std::size_t d = dropped_length(s, i, n)) {
            i += d;
            continue;
        }
        const unsigned char b0 = s[i];
        const unsigned char b1 = i + 1 < n ? s[i + 1] : 0;
        const unsigned char b2 = i + 2 < n ? s[i + 2] : 0;
        if (is_blank(b0)) {
            if (after_digit()) {
                if (const std::size_t e = separator_run(s, i, n); e > i) {
                    out[o++] = ' ';
                    i = e;
                    continue;
                }
            }
        } else if (b0 == 0xC2) {
            if (b1 == 0xA0) {  // no-break space
                out[o++] = ' ';
                i += 2;
                continue;
            }
            if (b1 == 0xB7 && after_digit()) {  // middle dot
                out[o++] = '.';
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
            if (b1 == 0xB9 && (b2 == 0xA3 || b2 == 0x98)) {  // U+FE63 small hyphen-minus, U+FE58 small em dash
                out[o++] = '-';
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
            if ((b1 == 0x80 && b2 >= 0x90 && b2 <= 0x95) || (b1 == 0x81 && b2 == 0x83)) {
                out[o++] = '-';  // U+2010..2015 hyphens and dashes, U+2043 hyphen bullet
                i += 3;
                continue;
            }
            if (b1 == 0x88 && b2 == 0x92) {  // U+2212 minus sign
                out[o++] = '-';
                i += 3;
                continue;
            }
            if ((b1 == 0x80 && ((b2 >= 0x80 && b2 <= 0x8A) || b2 == 0xAF)) || (b1 == 0x81 && b2 == 0x9F)) {
                out[o++] = ' ';  // U+2000..200A, U+202F, U+205F spaces
                i += 3;
                continue;
            }
            if ((b1 == 0x80 && (b2 == 0xA4 || b2 == 0xA7)) && after_digit()) {
                out[o++] = '.';  // U+2024 one dot leader, U+2027 hyphenation point
                i += 3;
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
