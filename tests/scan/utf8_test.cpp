// The UTF-8 check that decides whether a file is streamed as UTF-8 text or decoded by the
// reader (scan_file, discover): the SIMD path must say exactly what a plain decoder says,
// for every kind of error, wherever it falls in a 16-byte block and across pieces.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "custguard/scan/utf8.hpp"

using namespace custguard::scan;

namespace {

// RFC 3629 by the book, one code point at a time: the reference the validator must match.
bool reference_valid(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto b = static_cast<unsigned char>(s[i]);
        std::size_t len = 0;
        std::uint32_t cp = 0;
        if (b < 0x80) len = 1, cp = b;
        else if ((b & 0xE0) == 0xC0) len = 2, cp = b & 0x1F;
        else if ((b & 0xF0) == 0xE0) len = 3, cp = b & 0x0F;
        else if ((b & 0xF8) == 0xF0) len = 4, cp = b & 0x07;
        else return false;
        if (i + len > s.size()) return false;
        for (std::size_t k = 1; k < len; ++k) {
            const auto c = static_cast<unsigned char>(s[i + k]);
            if ((c & 0xC0) != 0x80) return false;
            cp = cp << 6 | (c & 0x3F);
        }
        static constexpr std::uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < least[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

// Fed in pieces cut at `cuts`; failed() is checked after every piece against the prefix.
bool validate_in_pieces(std::string_view s, const std::vector<std::size_t>& cuts) {
    Utf8Validator v;
    std::size_t at = 0;
    for (std::size_t cut : cuts) {
        if (cut <= at || cut > s.size()) continue;
        v.feed(s.substr(at, cut - at));
        at = cut;
        // A prefix has failed only when no ending of an open character can mend it.
        bool mendable = false;
        for (const char* tail : {"", "\x80", "\x80\x80", "\x80\x80\x80", "\xA0\x80", "\x90\x80\x80", "\x8F\xBF\xBF",
                                 "\x9F\xBF"})
            mendable = mendable || reference_valid(std::string(s.substr(0, at)) + tail);
        INFO("prefix of " << at << " bytes");
        CHECK(v.failed() == !mendable);
    }
    v.feed(s.substr(at));
    return v.complete();
}

// The SIMD kernel directly, also on pieces shorter than the validator hands it.
void check_kernels(std::string_view s, bool want) {
#if defined(CUSTGUARD_UTF8_AVX2)
    if (detail::avx2_usable())
        CHECK(detail::complete_utf8_avx2(reinterpret_cast<const unsigned char*>(s.data()), s.size()) == want);
#else
    (void)s, (void)want;
#endif
}

}  // namespace

TEST_CASE("the UTF-8 check agrees with a plain decoder on every kind of error at every offset", "[scan][utf8]") {
    struct Case {
        const char* what;
        std::string bytes;
    };
    const std::vector<Case> cases = {
        {"two-byte character", "\xC3\xA9"},
        {"three-byte character (kana)", "\xE3\x81\x82"},
        {"four-byte character", "\xF0\x9F\x98\x80"},
        {"last code point U+10FFFF", "\xF4\x8F\xBF\xBF"},
        {"last before the surrogates U+D7FF", "\xED\x9F\xBF"},
        {"first after the surrogates U+E000", "\xEE\x80\x80"},
        {"overlong two bytes (C0)", "\xC0\x80"},
        {"overlong two bytes (C1)", "\xC1\xBF"},
        {"overlong three bytes", "\xE0\x9F\xBF"},
        {"overlong four bytes", "\xF0\x8F\xBF\xBF"},
        {"surrogate U+D800", "\xED\xA0\x80"},
        {"surrogate U+DFFF", "\xED\xBF\xBF"},
        {"above U+10FFFF", "\xF4\x90\x80\x80"},
        {"F5 lead byte", "\xF5\x80\x80\x80"},
        {"FF byte", "\xFF"},
        {"lone continuation byte", "\x80"},
        {"two-byte lead before ASCII", "\xC3" "a"},
        {"three-byte lead cut after one continuation", "\xE3\x81" "a"},
        {"four-byte lead cut after two continuations", "\xF0\x9F\x98" "a"},
        {"lead after a lead", "\xE3\xE3\x81\x82"},
        {"five continuation bytes", "\xF0\x9F\x98\x80\x80"},
        {"Shift_JIS 顧客", "\x8c\xda\x8b\x71"},
        {"EUC-JP 顧客", "\xb8\xdc\xb5\xd2"},
        {"truncated at the very end", "\xE3\x81"},
    };
    const std::string japanese = "本日の会議では新製品の販売計画について検討しました。";
    const std::string ascii = "The quarterly report is due at the end of the month. ";
    for (const auto& c : cases) {
        const bool valid = reference_valid(c.bytes);
        // Inside ASCII and inside three-byte text, at every offset of a 16-byte block, and
        // long enough for the SIMD path (>= 64 bytes).
        for (const auto& filler : {ascii, japanese}) {
            for (std::size_t offset = 0; offset < 48; ++offset) {
                std::string text = (filler + filler).substr(0, offset);
                while (!reference_valid(text)) text.pop_back();  // whole characters only
                text += c.bytes;
                if (std::string(c.what) != "truncated at the very end") text += filler + filler;
                INFO(c.what << " after " << offset << " bytes of " << (filler == ascii ? "ASCII" : "Japanese"));
                REQUIRE(reference_valid(text) == valid);
                CHECK(valid_utf8(text) == valid);
                check_kernels(text, valid);
                CHECK(validate_in_pieces(text, {}) == valid);
                // Pieces cut inside and around the case's bytes: the failure is seen in the
                // piece that holds it, never later.
                for (std::size_t cut = std::max<std::size_t>(offset, 3) - 3; cut < std::min(text.size(), offset + 6); ++cut)
                    CHECK(validate_in_pieces(text, {cut, cut + 1, cut + 70}) == valid);
            }
        }
    }
}

TEST_CASE("the UTF-8 check agrees with a plain decoder on random text cut at random places", "[scan][utf8]") {
    // Mostly valid characters with now and then a byte that breaks them.
    const std::vector<std::string> parts = {"a", " ", "\n", "\xC3\xA9", "\xE3\x81\x82", "\xE9\xA1\xA7", "\xF0\x9F\x98\x80",
                                            "\xE3\x81", "\x80", "\xED\xA0\x80", "\xC0\xAF", "\xF4\x90\x80\x80", "\xFF"};
    std::mt19937_64 rng(20261206);
    int valid = 0, invalid = 0;
    for (int round = 0; round < 3000; ++round) {
        std::string text;
        const std::size_t length = 1 + rng() % 400;
        const std::size_t good = 7;  // parts[0..7) are whole characters
        const bool spoil = rng() % 2;
        while (text.size() < length) text += parts[spoil && rng() % 60 == 0 ? good + rng() % (parts.size() - good) : rng() % good];
        const bool want = reference_valid(text);
        (want ? valid : invalid)++;
        std::vector<std::size_t> cuts;
        for (std::size_t at = 0; at < text.size(); at += 1 + rng() % 120) cuts.push_back(at);
        INFO("round " << round);
        CHECK(valid_utf8(text) == want);
        check_kernels(text, want);
        CHECK(validate_in_pieces(text, cuts) == want);
    }
    CHECK(valid > 500);  // both kinds were tried
    CHECK(invalid > 500);
}
