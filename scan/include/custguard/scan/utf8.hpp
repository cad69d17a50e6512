// UTF-8 validation shared by extraction, the streaming file scan and the survey.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CUSTGUARD_UTF8_AVX2 1
#endif

namespace custguard::scan {

namespace detail {

// UTF-8 validity (overlongs, surrogates and values above U+10FFFF rejected) with a
// shift-based DFA: each byte's table entry holds the next state for every current state
// in 6-bit fields, so the per-byte work is one load and one shift, no branches.
namespace utf8dfa {
enum State : unsigned { err = 0, acc = 6, c1 = 12, c2 = 18, c3 = 24, e0 = 30, ed = 36, f0 = 42, f4 = 48 };
constexpr unsigned next(unsigned state, unsigned b) {
    const bool cont = b >= 0x80 && b <= 0xBF;
    switch (state) {
    case acc:
        if (b < 0x80) return acc;
        if (b >= 0xC2 && b <= 0xDF) return c1;
        if (b == 0xE0) return e0;
        if (b == 0xED) return ed;
        if (b >= 0xE1 && b <= 0xEF) return c2;
        if (b == 0xF0) return f0;
        if (b >= 0xF1 && b <= 0xF3) return c3;
        if (b == 0xF4) return f4;
        return err;
    case c1: return cont ? acc : err;
    case c2: return cont ? c1 : err;
    case c3: return cont ? c2 : err;
    case e0: return b >= 0xA0 && b <= 0xBF ? c1 : err;
    case ed: return b >= 0x80 && b <= 0x9F ? c1 : err;
    case f0: return b >= 0x90 && b <= 0xBF ? c2 : err;
    case f4: return b >= 0x80 && b <= 0x8F ? c2 : err;
    default: return err;
    }
}
constexpr std::array<std::uint64_t, 256> table = [] {
    std::array<std::uint64_t, 256> t{};
    for (unsigned b = 0; b < 256; ++b)
        for (unsigned s : {acc, c1, c2, c3, e0, ed, f0, f4}) t[b] |= std::uint64_t{next(s, b)} << s;
    return t;
}();
}  // namespace utf8dfa

#if defined(CUSTGUARD_UTF8_AVX2)
// Whether p[0, n) is complete, valid UTF-8, 32 bytes at a time: the lookup algorithm of
// Keiser and Lemire ("Validating UTF-8 in less than one instruction per byte", 2021).
// Each byte pair is classified by three 16-entry tables (high nibble of the first byte,
// its low nibble, high nibble of the second; repeated in both 16-byte lanes, and the bytes
// before each lane come from the lane before); an error bit set in all three is an error.
// Japanese text (three-byte characters everywhere) runs at the speed of ASCII: ~7 GB/s
// here against ~1 GB/s byte by byte. avx2_usable() checks the CPU at run time; without
// AVX2 the DFA below does it all (~3 GB/s).
__attribute__((target("avx2"))) inline bool complete_utf8_avx2(const unsigned char* p, std::size_t n) {
    constexpr char too_short = 1 << 0, too_long = 1 << 1, overlong_3 = 1 << 2, too_large = 1 << 3,
                   surrogate = 1 << 4, overlong_2 = 1 << 5, too_large_1000 = 1 << 6, overlong_4 = 1 << 6;
    constexpr char two_conts = static_cast<char>(1 << 7), carry = too_short | too_long | two_conts;
    constexpr char large = carry | too_large | too_large_1000;
    constexpr char cont_8 = too_long | overlong_2 | two_conts | overlong_3 | too_large_1000 | overlong_4;
    constexpr char cont_9 = too_long | overlong_2 | two_conts | overlong_3 | too_large;
    constexpr char cont_ab = too_long | overlong_2 | two_conts | surrogate | too_large;
    const __m256i first_high = _mm256_broadcastsi128_si256(_mm_setr_epi8(too_long, too_long, too_long, too_long, too_long, too_long, too_long,
                                                   too_long, two_conts, two_conts, two_conts, two_conts,
                                                   too_short | overlong_2, too_short, too_short | overlong_3 | surrogate,
                                                   too_short | too_large | too_large_1000 | overlong_4));
    const __m256i first_low = _mm256_broadcastsi128_si256(_mm_setr_epi8(carry | overlong_3 | overlong_2 | overlong_4, carry | overlong_2, carry,
                                                  carry, carry | too_large, large, large, large, large, large, large,
                                                  large, large, large | surrogate, large, large));
    const __m256i second_high = _mm256_broadcastsi128_si256(_mm_setr_epi8(too_short, too_short, too_short, too_short, too_short, too_short,
                                                    too_short, too_short, cont_8, cont_9, cont_ab, cont_ab, too_short,
                                                    too_short, too_short, too_short));
    const __m256i nibble = _mm256_set1_epi8(0x0F);
    const __m256i incomplete_max = _mm256_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                                    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                                    static_cast<char>(0xEF), static_cast<char>(0xDF),
                                                    static_cast<char>(0xBF));
    __m256i error = _mm256_setzero_si256(), prev = _mm256_setzero_si256(), prev_incomplete = _mm256_setzero_si256();
    alignas(32) unsigned char last[32] = {};
    for (std::size_t i = 0; i < n; i += 32) {
        __m256i in;
        if (i + 32 <= n) {
            in = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i));
        } else {
            std::memcpy(last, p + i, n - i);
            in = _mm256_load_si256(reinterpret_cast<const __m256i*>(last));
        }
        if (_mm256_movemask_epi8(in) == 0) {
            error = _mm256_or_si256(error, prev_incomplete);
        } else {
            const __m256i before = _mm256_permute2x128_si256(prev, in, 0x21);  // prev's high lane, in's low lane
            const __m256i prev1 = _mm256_alignr_epi8(in, before, 15);
            const __m256i special = _mm256_and_si256(
                _mm256_and_si256(_mm256_shuffle_epi8(first_high, _mm256_and_si256(_mm256_srli_epi16(prev1, 4), nibble)),
                                 _mm256_shuffle_epi8(first_low, _mm256_and_si256(prev1, nibble))),
                _mm256_shuffle_epi8(second_high, _mm256_and_si256(_mm256_srli_epi16(in, 4), nibble)));
            const __m256i third = _mm256_subs_epu8(_mm256_alignr_epi8(in, before, 14), _mm256_set1_epi8(0xE0 - 0x80));
            const __m256i fourth = _mm256_subs_epu8(_mm256_alignr_epi8(in, before, 13), _mm256_set1_epi8(0xF0 - 0x80));
            const __m256i must_continue =
                _mm256_and_si256(_mm256_or_si256(third, fourth), _mm256_set1_epi8(static_cast<char>(0x80)));
            error = _mm256_or_si256(error, _mm256_xor_si256(must_continue, special));
            prev_incomplete = _mm256_subs_epu8(in, incomplete_max);
        }
        prev = in;
        if ((i & 1023) == 992 && !_mm256_testz_si256(error, error)) return false;
    }
    error = _mm256_or_si256(error, prev_incomplete);
    return _mm256_testz_si256(error, error);
}

inline bool avx2_usable() {
    static const bool usable = __builtin_cpu_supports("avx2");
    return usable;
}

#endif

}  // namespace detail

// Incremental: feed pieces of any size (a character may span pieces). failed() is exact
// after every piece.
class Utf8Validator {
public:
    void feed(std::string_view s) {
        const auto* p = reinterpret_cast<const unsigned char*>(s.data());
        const std::size_t n = s.size();
        std::size_t i = 0;
        // A character begun in the last piece is finished byte by byte.
        while (i < n && (state_ & 63) != detail::utf8dfa::acc && (state_ & 63) != detail::utf8dfa::err)
            state_ = detail::utf8dfa::table[p[i++]] >> (state_ & 63);
#if defined(CUSTGUARD_UTF8_AVX2)
        if ((state_ & 63) == detail::utf8dfa::acc && n - i >= 64 && detail::avx2_usable()) {
            // Up to the last byte that is no continuation byte, the text must be complete
            // UTF-8 (a character open there would be cut by that byte); the rest, at most
            // 4 bytes, goes through the DFA and may stay open for the next piece.
            std::size_t cut = n;
            while (cut > n - 4 && (p[cut - 1] & 0xC0) == 0x80) --cut;
            if (cut > n - 4) {
                --cut;  // p[cut] is a lead or ASCII byte (or an invalid one: the DFA says so)
                if (!detail::complete_utf8_avx2(p + i, cut - i)) {
                    state_ = detail::utf8dfa::err;
                    return;
                }
                i = cut;
            }
        }
#endif
        while (i < n && (state_ & 63) != detail::utf8dfa::err) {
            // ASCII fast path between characters, 8 bytes at a time.
            if ((state_ & 63) == detail::utf8dfa::acc) {
                while (i + 8 <= n) {
                    std::uint64_t w;
                    std::memcpy(&w, p + i, 8);
                    if (w & 0x8080808080808080ULL) break;
                    i += 8;
                }
            }
            // Then a block through the DFA; errors are sticky (err stays err).
            const std::size_t stop = i + 256 < n ? i + 256 : n;
            for (; i < stop; ++i) state_ = detail::utf8dfa::table[p[i]] >> (state_ & 63);
        }
    }
    bool failed() const { return (state_ & 63) == detail::utf8dfa::err; }
    bool complete() const { return (state_ & 63) == detail::utf8dfa::acc; }

private:
    std::uint64_t state_ = detail::utf8dfa::acc;
};

inline bool valid_utf8(std::string_view s) {
    Utf8Validator v;
    v.feed(s);
    return v.complete();
}

}  // namespace custguard::scan
