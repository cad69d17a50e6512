#include <unicode/normalizer2.h>
#include <unicode/regex.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include "custguard/edm/edm.hpp"
#include "internal.hpp"

namespace custguard::edm {

std::string_view to_string(Kind k) {
    switch (k) {
    case Kind::phone: return "phone";
    case Kind::email: return "email";
    case Kind::digits: return "digits";
    case Kind::regex: return "regex";
    case Kind::supporting: return "supporting";
    }
    return "?";
}

std::u32string fold(std::string_view utf8) {
    UErrorCode status = U_ZERO_ERROR;
    const icu::Normalizer2* nfkc_cf = icu::Normalizer2::getNFKCCasefoldInstance(status);
    const auto in = icu::UnicodeString::fromUTF8(icu::StringPiece(utf8.data(), static_cast<std::int32_t>(utf8.size())));
    icu::UnicodeString out;
    if (U_SUCCESS(status)) out = nfkc_cf->normalize(in, status);
    // The ICU data ships with libicu; without it, unfolded text still matches ASCII forms.
    if (U_FAILURE(status)) out = in;
    std::u32string result;
    result.reserve(static_cast<std::size_t>(out.length()));
    for (std::int32_t i = 0; i < out.length();) {
        const UChar32 c = out.char32At(i);
        result.push_back(static_cast<char32_t>(c));
        i += U16_LENGTH(c);
    }
    return result;
}

namespace detail {

bool is_space(char32_t c) { return u_isUWhiteSpace(static_cast<UChar32>(c)) != 0; }

bool is_hyphen(char32_t c) {
    switch (c) {
    case U'-': case U'\u2010': case U'\u2011': case U'\u2012': case U'\u2013': case U'\u2014':
    case U'\u2015': case U'\u2212': case U'\u30FC': case U'\uFF70': case U'\uFE63': case U'\u2043':
        return true;
    default: return false;
    }
}

bool is_separator(char32_t c) {
    return is_space(c) || is_hyphen(c) || c == U'.' || c == U'(' || c == U')' || c == U'/' || c == U'\u30FB';
}

void append_utf8(std::string& out, char32_t c) {
    if (c < 0x80) {
        out += static_cast<char>(c);
    } else if (c < 0x800) {
        out += static_cast<char>(0xC0 | (c >> 6));
        out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
        out += static_cast<char>(0xE0 | (c >> 12));
        out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (c >> 18));
        out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (c & 0x3F));
    }
}

std::string utf8(std::u32string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char32_t c : s) append_utf8(out, c);
    return out;
}

bool valid_email(std::string_view e) {
    const auto at = e.find('@');
    if (at == 0 || at == std::string_view::npos || at > 64 || e.find('@', at + 1) != std::string_view::npos) return false;
    const auto domain = e.substr(at + 1);
    const auto dot = domain.rfind('.');
    if (domain.empty() || dot == 0 || dot == std::string_view::npos || dot + 2 > domain.size()) return false;
    for (char c : e)
        if (!(is_email_char(static_cast<char32_t>(static_cast<unsigned char>(c))) || c == '@')) return false;
    return true;
}

bool is_email_char(char32_t c) {
    return (c >= U'a' && c <= U'z') || (c >= U'0' && c <= U'9') || c == U'.' || c == U'_' || c == U'%' ||
           c == U'+' || c == U'-';
}

}  // namespace detail

std::u32string compact(std::u32string_view folded) {
    std::u32string out;
    out.reserve(folded.size());
    for (char32_t c : folded) {
        if (detail::is_space(c)) continue;
        // ー after a digit is a mistyped hyphen (1ー2ー3); elsewhere a long vowel (ヨーコ).
        if (detail::is_hyphen(c) && (c != U'\u30FC' || (!out.empty() && out.back() >= U'0' && out.back() <= U'9')))
            c = U'-';
        out.push_back(c);
    }
    return out;
}

tl::expected<std::string, std::string> normalize_value(std::string_view value, Kind kind, std::uint32_t length) {
    const auto folded = fold(value);
    switch (kind) {
    case Kind::supporting: return detail::utf8(compact(folded));
    case Kind::email: {
        std::string out;
        for (char32_t c : folded)
            if (!detail::is_space(c)) detail::append_utf8(out, c);
        if (!detail::valid_email(out)) return tl::unexpected("'" + out + "' is no e-mail address");
        return out;
    }
    case Kind::phone:
    case Kind::digits: {
        std::string digits;
        bool plus = false;
        for (char32_t c : folded) {
            if (c >= U'0' && c <= U'9') digits += static_cast<char>(c);
            else if (c == U'+' && digits.empty() && !plus) plus = true;
            else if (!detail::is_separator(c)) return tl::unexpected(std::string("a character other than digits and separators"));
        }
        if (kind == Kind::digits) {
            if (plus || digits.size() != length)
                return tl::unexpected(std::to_string(digits.size()) + " digits, not " + std::to_string(length));
            return digits;
        }
        if (plus) {
            if (!digits.starts_with("81")) return tl::unexpected(std::string("a foreign number (+ without 81)"));
            digits = "0" + digits.substr(2);
        }
        if (digits.size() < 10 || digits.size() > 11 || digits[0] != '0')
            return tl::unexpected(std::string("no Japanese phone number (10 or 11 digits starting with 0)"));
        return digits;
    }
    case Kind::regex: {
        std::string out;
        for (char32_t c : folded)
            if (!detail::is_separator(c)) detail::append_utf8(out, c);
        if (out.empty()) return tl::unexpected(std::string("empty"));
        return out;
    }
    }
    return tl::unexpected(std::string("unknown kind"));
}

}  // namespace custguard::edm
