// UTF-8 validation shared by extraction and the streaming file scan.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace custguard::scan::detail {

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

// Incremental: feed pieces of any size (a character may span pieces).
class Utf8Validator {
public:
    void feed(std::string_view s) {
        const auto* p = reinterpret_cast<const unsigned char*>(s.data());
        const std::size_t n = s.size();
        std::size_t i = 0;
        while (i < n && (state_ & 63) != utf8dfa::err) {
            // ASCII fast path between characters, 8 bytes at a time.
            if ((state_ & 63) == utf8dfa::acc) {
                while (i + 8 <= n) {
                    std::uint64_t w;
                    std::memcpy(&w, p + i, 8);
                    if (w & 0x8080808080808080ULL) break;
                    i += 8;
                }
            }
            // Then a block through the DFA; errors are sticky (err stays err).
            const std::size_t stop = i + 256 < n ? i + 256 : n;
            for (; i < stop; ++i) state_ = utf8dfa::table[p[i]] >> (state_ & 63);
        }
    }
    bool failed() const { return (state_ & 63) == utf8dfa::err; }
    bool complete() const { return (state_ & 63) == utf8dfa::acc; }

private:
    std::uint64_t state_ = utf8dfa::acc;
};

inline bool valid_utf8(std::string_view s) {
    Utf8Validator v;
    v.feed(s);
    return v.complete();
}

}  // namespace custguard::scan::detail
