#include "printer_language.hpp"

#include <cstdio>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "custguard/scan/utf8.hpp"

namespace custguard::scan::detail {

namespace {

constexpr std::string_view kUel = "\x1B%-12345X";  // Universal Exit Language: ends a job language
constexpr std::size_t kMaxPjlHeader = 64 * 1024;

char upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

bool starts_with_ci(std::string_view s, std::string_view p) {
    if (s.size() < p.size()) return false;
    for (std::size_t i = 0; i < p.size(); ++i)
        if (upper(s[i]) != upper(p[i])) return false;
    return true;
}

void skip_blanks(std::string_view s, std::size_t& i) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
}

// "ENTER LANGUAGE = X" in the rest of a PJL line (after "@PJL"): X in upper case, else empty.
std::string enter_language(std::string_view line) {
    std::size_t i = 0;
    skip_blanks(line, i);
    if (!starts_with_ci(line.substr(i), "ENTER")) return {};
    i += 5;
    skip_blanks(line, i);
    if (!starts_with_ci(line.substr(i), "LANGUAGE")) return {};
    i += 8;
    skip_blanks(line, i);
    if (i >= line.size() || line[i] != '=') return {};
    ++i;
    skip_blanks(line, i);
    std::string lang;
    while (i < line.size() && line[i] != '\r' && line[i] != ' ' && line[i] != '\t' && lang.size() < 32) lang += upper(line[i++]);
    return lang;
}

struct PjlRun {
    bool present = false;   // starts with UEL or @PJL
    std::size_t end = 0;    // first byte after the UELs, @PJL lines and blank lines
    std::string language;   // of the last ENTER LANGUAGE line; the run stops after it
};

// A run of UELs, PJL command lines and blank lines starting at `from`.
PjlRun pjl_run(std::string_view b, std::size_t from) {
    PjlRun run;
    std::size_t i = from;
    while (i < b.size() && i - from < kMaxPjlHeader) {
        const auto rest = b.substr(i);
        if (rest.starts_with(kUel)) {
            run.present = true;
            i += kUel.size();
            continue;
        }
        if (rest.front() == '\r' || rest.front() == '\n') {
            if (!run.present) break;
            ++i;
            continue;
        }
        if (!starts_with_ci(rest, "@PJL")) break;
        run.present = true;
        auto nl = rest.find('\n');
        const auto line = rest.substr(4, nl == std::string_view::npos ? std::string_view::npos : nl - 4);
        i += nl == std::string_view::npos ? rest.size() : nl + 1;
        if (auto lang = enter_language(line); !lang.empty()) {
            run.language = std::move(lang);
            break;  // the language's data follows the line
        }
    }
    run.end = i;
    return run;
}

// A few printable bytes of `s` for a reason, e.g. "%!PS-Adobe-3.0".
std::string excerpt(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size() && out.size() < 24; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7F) out += static_cast<char>(c);
        else {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02X", c);
            out += hex;
        }
    }
    return out;
}

std::string language_name(DocType type) { return type == DocType::pdf ? "PDF" : "PostScript"; }

}  // namespace

std::optional<std::string> framing_problem(std::string_view bytes, DocType type) {
    if (type != DocType::pdf && type != DocType::postscript) return std::nullopt;
    const std::string want = type == DocType::pdf ? "PDF" : "POSTSCRIPT";
    const std::string name = language_name(type);
    const auto header = pjl_run(bytes, 0);
    if (header.present) {
        if (header.language.empty())
            return "a PJL job header without ENTER LANGUAGE in front of the " + name +
                   ": the printer chooses the language itself";
        if (header.language != want)
            return "the PJL job header selects the printer language " + header.language + ", not " + name;
    }
    std::string_view doc = bytes.substr(header.end);
    if (type == DocType::postscript) {
        if (doc.starts_with("\x04")) doc.remove_prefix(1);  // Ctrl-D: resets a PostScript printer
        const bool dos_eps = !header.present && doc.starts_with("\xC5\xD0\xD3\xC6");
        if (!doc.starts_with("%!") && !dos_eps)
            return "data in front of the %! header (\"" + excerpt(doc) + "\"): a printer may interpret it as another language";
        if (bytes.find("%PDF-") != std::string_view::npos)
            return "PostScript that also holds a PDF header (%PDF-): a PDF reader and a PostScript printer "
                   "would print different documents";
    } else if (!doc.starts_with("%PDF-")) {
        return "data in front of the %PDF- header (\"" + excerpt(doc) + "\"): a printer may interpret it as another language";
    }
    // Behind the document: a job may end with UEL and PJL lines, but a new language is a
    // second document the printer prints and we did not read.
    for (auto uel = doc.find(kUel); uel < doc.size();) {
        const auto trailer = pjl_run(doc, uel);
        if (!trailer.language.empty())
            return "a second printer language (PJL ENTER LANGUAGE=" + trailer.language + ") behind the " + name;
        std::size_t i = trailer.end;
        while (i < doc.size() && (doc[i] == '\r' || doc[i] == '\n' || doc[i] == ' ' || doc[i] == '\t' || doc[i] == '\x04')) ++i;
        if (i < doc.size() && !doc.substr(i).starts_with(kUel))
            return "data behind the " + name + "'s end of job (UEL): a printer would interpret it as another language";
        uel = i;  // the next UEL, or the end: every byte is looked at once
    }
    return std::nullopt;
}

namespace {

// Where the first rejected control character starts: -1 when it began in the previous
// piece (a C1 lead byte), nullopt when there is none.
std::optional<std::ptrdiff_t> find_control(std::string_view text, unsigned char prev) {
    if (prev == 0xC2 && !text.empty()) {
        const auto c = static_cast<unsigned char>(text[0]);
        if (c >= 0x80 && c <= 0x9F) return -1;
    }
    const auto* s = reinterpret_cast<const unsigned char*>(text.data());
    std::size_t i = 0;
#if defined(__SSE2__)
    // Streamed print files pass here whole: skip clean text 16 bytes at a time.
    const auto eq = [](__m128i v, unsigned char c) { return _mm_cmpeq_epi8(v, _mm_set1_epi8(static_cast<char>(c))); };
    const auto in_range = [](__m128i v, unsigned char lo, unsigned char hi) {
        return _mm_cmpeq_epi8(_mm_max_epu8(_mm_min_epu8(v, _mm_set1_epi8(static_cast<char>(hi))),
                                           _mm_set1_epi8(static_cast<char>(lo))),
                              v);
    };
    while (i + 17 <= text.size()) {
        const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
        const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i + 1));
        const __m128i layout = _mm_or_si128(_mm_or_si128(eq(a, '\t'), eq(a, '\n')), _mm_or_si128(eq(a, '\r'), eq(a, '\f')));
        const __m128i hit = _mm_or_si128(_mm_andnot_si128(layout, in_range(a, 0x00, 0x1F)),
                                         _mm_and_si128(eq(a, 0xC2), in_range(b, 0x80, 0x9F)));
        if (_mm_movemask_epi8(hit)) break;  // the scalar loop finds it
        i += 16;
    }
#endif
    for (; i < text.size(); ++i) {
        const auto c = s[i];
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f') return static_cast<std::ptrdiff_t>(i);
        if (c == 0xC2 && i + 1 < text.size()) {
            const auto d = static_cast<unsigned char>(text[i + 1]);
            if (d >= 0x80 && d <= 0x9F) return static_cast<std::ptrdiff_t>(i);  // U+0080..U+009F: C1 controls
        }
    }
    return std::nullopt;
}

}  // namespace

std::optional<std::string> control_problem(std::string_view text, std::uint64_t offset, unsigned char prev) {
    const auto found = find_control(text, prev);
    if (!found) return std::nullopt;
    const std::ptrdiff_t pos = *found;
    std::string what;
    char buf[32];
    if (pos < 0 || static_cast<unsigned char>(text[static_cast<std::size_t>(pos)]) == 0xC2) {
        const auto second = static_cast<unsigned char>(text[static_cast<std::size_t>(pos + 1)]);  // pos >= -1
        std::snprintf(buf, sizeof buf, "C1 control U+%04X", second);
        what = buf;
    } else {
        const auto c = static_cast<unsigned char>(text[static_cast<std::size_t>(pos)]);
        if (c == 0x1B) what = "ESC";
        else if (c == 0x08) what = "backspace";
        else if (c == 0x0B) what = "vertical tab";
        else if (c == 0x00) what = "NUL";
        else {
            std::snprintf(buf, sizeof buf, "control character 0x%02X", c);
            what = buf;
        }
    }
    return "text with printer control codes (" + what + " at byte " +
           std::to_string(static_cast<std::int64_t>(offset) + pos) +
           "): a printer or filter would interpret them, not print them";
}

std::string unknown_format_reason(std::string_view bytes) {
    const std::string suffix = " (a printer language the scanner does not interpret)";
    if (bytes.starts_with(kUel) || starts_with_ci(bytes, "@PJL")) {
        const auto header = pjl_run(bytes, 0);
        if (!header.language.empty()) return "PJL job in printer language " + header.language + suffix;
        return "PJL job without a page language the scanner reads" + suffix;
    }
    if (bytes.starts_with(") HP-PCL XL")) return "PCL XL (PCL 6) page description" + suffix;
    if (bytes.starts_with("\x1B@")) return "ESC/P page description" + suffix;
    if (bytes.starts_with("\x1B")) return "PCL page description" + suffix;
    // Text that sniff() refused for its many control characters: say which.
    auto sample = bytes.substr(0, 64 * 1024);
    while (!sample.empty() && (static_cast<unsigned char>(sample.back()) & 0xC0) == 0x80) sample.remove_suffix(1);
    if (!sample.empty() && static_cast<unsigned char>(sample.back()) >= 0xC0) sample.remove_suffix(1);  // cut character
    if (sample.find('\0') == std::string_view::npos && valid_utf8(sample))
        if (auto why = control_problem(sample)) return *why;
    return "unknown document format";
}

}  // namespace custguard::scan::detail
