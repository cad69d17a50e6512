#include "custguard/scan/normalize.hpp"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
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

#if defined(__x86_64__)
// Nibble tables for byte pairs (a, b), as in Keiser and Lemire's UTF-8 check: bit k of
// A_hi[a >> 4] & A_lo[a & 15] & B_hi[b >> 4] & B_lo[b & 15] is set when rule k holds.
// A rule is a product of nibble sets, so some are supersets (harmless: the caller looks
// at each candidate byte by byte).
struct PairRule {
    const char *a_hi, *a_lo, *b_hi, *b_lo;  // hex digits of the nibbles allowed
    const char *c_hi = "0123456789ABCDEF", *c_lo = "0123456789ABCDEF";  // the third byte, for rules 2 and 3
};
constexpr const char* k_any = "0123456789ABCDEF";
constexpr PairRule k_pair_rules[8] = {
    {"CE", "12", "AB", "07D"},        // 0: C2 A0/AD/B7, E1 A0 8E (and C1, E2 A-B.., A7 B0 BD)
    {"E", "2", "8", "018"},           // 1: E2 80.., E2 81.., E2 88 92
    {"E", "3", "8", "0", "8B", "06"},  // 2: E3 80 80 U+3000, E3 80 B6 〶 (and 86, B0)
    {"E", "3", "8", "3", "B", "BC"},   // 3: E3 83 BB/BC ・ ー, which map only after a digit
    {"E", "F", "B", "89ABCD"},        // 4: EF B8..BD: variation selectors, small and full-width forms
    {"CD", "8D", k_any, k_any},       // 5: CD 8F, D8 9C (and C8, DD)
    {"01", "012345678BEF", k_any, k_any},  // 6, 7: control characters but tab, LF, CR, FF
    {"1", "9ACD", k_any, k_any},
};
constexpr int nibble_of(char c) { return c <= '9' ? c - '0' : c - 'A' + 10; }
struct PairTables {
    std::array<char, 16> a_hi{}, a_lo{}, b_hi{}, b_lo{}, c_hi{}, c_lo{};
};
constexpr PairTables k_pair_tables = [] {
    PairTables t;
    for (int k = 0; k < 8; ++k) {
        const auto set = [&](std::array<char, 16>& table, const char* nibbles) {
            for (const char* c = nibbles; *c; ++c) table[nibble_of(*c)] = static_cast<char>(table[nibble_of(*c)] | (1 << k));
        };
        set(t.a_hi, k_pair_rules[k].a_hi);
        set(t.a_lo, k_pair_rules[k].a_lo);
        set(t.b_hi, k_pair_rules[k].b_hi);
        set(t.b_lo, k_pair_rules[k].b_lo);
        set(t.c_hi, k_pair_rules[k].c_hi);
        set(t.c_lo, k_pair_rules[k].c_lo);
    }
    return t;
}();
constexpr char k_pair_plain = ~((1 << 2) | (1 << 3));  // rules that need no third byte

#define CG_AVX2 __attribute__((target("avx2"), always_inline)) inline
CG_AVX2 __m256i eq32(__m256i v, unsigned char c) { return _mm256_cmpeq_epi8(v, _mm256_set1_epi8(static_cast<char>(c))); }
CG_AVX2 __m256i digit32(__m256i v) {
    return _mm256_cmpeq_epi8(_mm256_max_epu8(_mm256_sub_epi8(v, _mm256_set1_epi8('0')), _mm256_set1_epi8(9)), _mm256_set1_epi8(9));
}
CG_AVX2 __m256i low32(__m256i v) { return _mm256_cmpeq_epi8(_mm256_min_epu8(v, _mm256_set1_epi8(0x20)), v); }
// Bytes equal to any of `bytes`.
template <class... Bytes>
CG_AVX2 __m256i any32(__m256i v, Bytes... bytes) {
    __m256i r = _mm256_setzero_si256();
    ((r = _mm256_or_si256(r, eq32(v, static_cast<unsigned char>(bytes)))), ...);
    return r;
}
CG_AVX2 __m256i table32(const std::array<char, 16>& t) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t.data())));
}
CG_AVX2 __m256i lookup32(__m256i v, __m256i hi, __m256i lo) {
    const __m256i nibble = _mm256_set1_epi8(0x0F);
    return _mm256_and_si256(_mm256_shuffle_epi8(hi, _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble)),
                            _mm256_shuffle_epi8(lo, _mm256_and_si256(v, nibble)));
}
#undef CG_AVX2

// next_candidate's test 32 bytes at a time, copying as it goes (each block is stored to
// `out`; o <= i always, as normalisation never lengthens text, so the stores stay inside
// the caller's buffer of in.size() bytes, and bytes past the candidate are overwritten
// later). The byte pairs are classified by the tables above (a few instructions instead of
// some forty compares), and there are fewer false candidates: each costs a return and a
// look byte by byte (~100 cycles), and customer lists and Japanese text had one every 200
// bytes. Not reported here:
//  - a single space between two ASCII digits (the mapping keeps it as it is);
//  - a blank after a digit followed by a character that can neither continue a number nor
//    be dropped (lead bytes other than C2 CD D8 E1 E2 EF, e.g. kanji: "〒100-0001 東京都");
//  - ー and ・ (E3 83 BC/BB, common in katakana) unless a digit may come out right before:
//    an ASCII digit or control byte before them, or a 2- or 3-byte sequence whose lead byte
//    can start a full-width digit or a dropped character.
// Returns the candidate (found) or where fewer than 34 bytes are left.
__attribute__((target("avx2"))) std::size_t copy_run_avx2(const unsigned char* s, std::size_t i, std::size_t n,
                                                          char* out, bool& found) {
    const __m256i a_hi = table32(k_pair_tables.a_hi), a_lo = table32(k_pair_tables.a_lo);
    const __m256i b_hi = table32(k_pair_tables.b_hi), b_lo = table32(k_pair_tables.b_lo);
    const __m256i c_hi = table32(k_pair_tables.c_hi), c_lo = table32(k_pair_tables.c_lo);
    const __m256i zero = _mm256_setzero_si256();
    const std::size_t from = i;
    while (i + 34 <= n) {
        const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i));
        const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i + 1));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + (i - from)), a);
        const __m256i pair = _mm256_and_si256(lookup32(a, a_hi, a_lo), lookup32(b, b_hi, b_lo));
        std::uint64_t mask = ~static_cast<std::uint32_t>(
            _mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_and_si256(pair, _mm256_set1_epi8(k_pair_plain)), zero)));
        mask &= 0xFFFFFFFFu;
        // E3 80 and E3 83 need their third byte: 80 or B6 (and 86 B0), BB or BC.
        const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i + 2));
        const __m256i third = _mm256_and_si256(pair, lookup32(c, c_hi, c_lo));
        mask |= static_cast<std::uint32_t>(
            ~_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_and_si256(third, _mm256_set1_epi8(1 << 2)), zero)));
        if (const auto dash = static_cast<std::uint32_t>(
                ~_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_and_si256(third, _mm256_set1_epi8(1 << 3)), zero)))) {
            // ー or ・: only after a digit (rare in katakana, so this branch is cheap).
            std::uint32_t after_digit = 0xFFFFFFFFu;  // at the chunk's start: unknown
            if (i >= 3) {
                const __m256i p1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i - 1));
                const __m256i p2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i - 2));
                const __m256i p3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i - 3));
                after_digit = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_or_si256(
                    _mm256_or_si256(digit32(p1), low32(p1)), _mm256_or_si256(any32(p2, 0xC2, 0xCD, 0xD8), any32(p3, 0xE1, 0xE2, 0xEF)))));
            }
            mask |= dash & after_digit;
        }
        if (const auto digit_blank = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_and_si256(digit32(a), low32(b))))) {
            // A digit, then a blank or control (any byte <= 0x20), then a digit, another
            // such byte or the lead byte of a full-width digit or invisible character:
            // reported at the blank.
            const __m256i plain = _mm256_and_si256(eq32(b, ' '), digit32(c));
            const __m256i next =
                _mm256_or_si256(_mm256_or_si256(digit32(c), low32(c)), any32(c, 0xC2, 0xCD, 0xD8, 0xE1, 0xE2, 0xEF));
            // 33 bits: a digit at the block's last byte reports the next block's first.
            mask |= std::uint64_t{static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_andnot_si256(plain, next))) & digit_blank} << 1;
        }
        if (mask) {
            found = true;
            return i + static_cast<std::size_t>(__builtin_ctzll(mask));
        }
        i += 32;
    }
    return i;
}

bool avx2_usable() {
    static const bool usable = __builtin_cpu_supports("avx2");
    return usable;
}
#endif

// Copies s[i, j) to `out` and returns j: the first index >= i where a mapped sequence may
// start (n if none). Conservative: the caller copies a byte unchanged when nothing matches
// there. The SIMD paths look at byte pairs/triples, so Japanese text (E3 lead bytes
// everywhere) is skipped 16 or 32 bytes at a time.
inline std::size_t copy_run(const unsigned char* s, std::size_t i, std::size_t n, char* out) {
    if (i < n && blank_after_digit(s, i)) return i;
    const std::size_t from = i;
#if defined(__x86_64__)
    if (avx2_usable()) {
        bool found = false;
        i = copy_run_avx2(s, i, n, out, found);
        if (found) return i;
    }
#endif
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
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + (i - from)), a);
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
    while (i < n && !kAttention[s[i]] && !blank_after_digit(s, i)) out[i - from] = static_cast<char>(s[i]), ++i;
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
            const std::size_t j = copy_run(s, i, n, out + o);
            if (j > i) {
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
