#include "custguard/scan/extract.hpp"

#include <fcntl.h>
#include <iconv.h>
#include <sys/stat.h>
#include <unistd.h>

#include <poppler/cpp/poppler-document.h>
#include <poppler/cpp/poppler-global.h>
#include <poppler/cpp/poppler-page.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "formats.hpp"
#include "pdf_inspect.hpp"
#include "postscript_device.hpp"
#include "printer_language.hpp"
#include "subprocess.hpp"
#include "custguard/scan/utf8.hpp"

namespace custguard::scan {

namespace {

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

class Iconv {
public:
    Iconv(const char* to, const char* from) : cd_(::iconv_open(to, from)) {}
    Iconv(const Iconv&) = delete;
    Iconv& operator=(const Iconv&) = delete;
    ~Iconv() {
        if (ok()) ::iconv_close(cd_);
    }
    bool ok() const { return cd_ != reinterpret_cast<iconv_t>(-1); }
    // Whole-buffer conversion; nullopt on any invalid or incomplete sequence. The output
    // starts at most 1 MiB and doubles: a binary file tried as EUC-JP and CP932 fails in its
    // first bytes and should not first zero twice its size.
    std::optional<std::string> convert(std::string_view in) {
        std::string out(std::min<std::size_t>(in.size() * 2 + 16, std::size_t{1} << 20), '\0');
        char* src = const_cast<char*>(in.data());
        std::size_t src_left = in.size();
        std::size_t done = 0;
        while (true) {
            char* dst = out.data() + done;
            std::size_t dst_left = out.size() - done;
            const std::size_t rc = ::iconv(cd_, &src, &src_left, &dst, &dst_left);
            done = out.size() - dst_left;
            if (rc != static_cast<std::size_t>(-1)) break;
            if (errno != E2BIG) return std::nullopt;
            out.resize(out.size() * 2);
        }
        out.resize(done);
        return out;
    }

private:
    iconv_t cd_;
};

}  // namespace

std::optional<std::string> detail::convert_to_utf8(const char* from, std::string_view in) {
    Iconv cv("UTF-8", from);
    if (!cv.ok()) return std::nullopt;
    return cv.convert(in);
}

namespace {

// Text is text when control characters other than layout ones are rare. Every file the
// survey meets is sniffed: 16 bytes at a time.
bool looks_like_text(std::string_view s) {
    const std::size_t sample = std::min<std::size_t>(s.size(), 64 * 1024);
    std::size_t bad = 0, i = 0;
#if defined(__SSE2__)
    const auto eq = [](__m128i v, char c) { return _mm_cmpeq_epi8(v, _mm_set1_epi8(c)); };
    __m128i zeros = _mm_setzero_si128();
    while (i + 16 <= sample) {
        // Bad bytes counted in byte lanes, added up before a lane can overflow.
        __m128i lanes = _mm_setzero_si128();
        for (int k = 0; k < 255 && i + 16 <= sample; ++k, i += 16) {
            const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
            zeros = _mm_or_si128(zeros, eq(v, '\0'));
            const __m128i control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1F)), v);  // below 0x20
            const __m128i layout = _mm_or_si128(_mm_or_si128(eq(v, '\n'), eq(v, '\r')),
                                                _mm_or_si128(_mm_or_si128(eq(v, '\t'), eq(v, '\f')), eq(v, 0x1B)));
            lanes = _mm_sub_epi8(lanes, _mm_andnot_si128(layout, control));
        }
        if (_mm_movemask_epi8(zeros)) return false;
        const __m128i sums = _mm_sad_epu8(lanes, _mm_setzero_si128());
        bad += static_cast<std::size_t>(_mm_cvtsi128_si32(sums)) + static_cast<std::size_t>(_mm_extract_epi16(sums, 4));
    }
#endif
    for (; i < sample; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f' && c != 0x1B) ++bad;
        if (c == 0) return false;
    }
    return bad * 100 <= sample;  // <= 1 %
}

// Form feeds separate pages; one at the very end does not start a new page.
std::uint32_t count_pages(std::string_view text) {
    if (text.empty()) return 0;
    std::uint32_t pages = 1;
    for (auto pos = text.find('\f'); pos != std::string_view::npos && pos + 1 < text.size();
         pos = text.find('\f', pos + 1))
        ++pages;
    return pages;
}

// A scan that stops before the end has not judged the document.
std::string truncated(const ExtractOptions& options) {
    return "more text than the scan limit of " + std::to_string(options.max_text_bytes >> 20) +
           " MiB (max_text_bytes): the rest would print unread";
}

Extracted unreadable(DocType type, std::string reason) {
    Extracted e;
    e.doc_type = type;
    e.readable = false;
    e.reason = std::move(reason);
    return e;
}

bool has_visible_text(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](char c) {
        return !(c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == '\v');
    });
}

// --- files on disk: text behind NULs and control codes -------------------------------
//
// ScanMode::file_on_disk only: the print gate keeps calling such text unreadable.

bool layout(unsigned char c) { return c == '\t' || c == '\n' || c == '\r' || c == '\f'; }
bool control(unsigned char c) { return c < 0x20 && !layout(c); }

// UTF-16 without a byte order mark (Windows "Unicode" text saved by a program that writes
// none): in many pairs one byte is NUL (ASCII, digits) and the other not, always the same
// one, and such pairs come in runs (words, numbers). A NUL put every 4 (or 6, ...) bytes
// also falls on one side, but never in two pairs in a row. Pairs that are both NUL (a
// sparse gap) are not counted. Returns the iconv name, or nullptr.
const char* utf16_without_bom(std::string_view s) {
    constexpr std::size_t kEnough = 32 * 1024;  // counted pairs
    std::size_t le = 0, be = 0, le_runs = 0, be_runs = 0, counted = 0;
    bool last_le = false, last_be = false;
    for (std::size_t i = 0; i + 1 < s.size() && counted < kEnough; i += 2) {
        const bool a = s[i] == '\0', b = s[i + 1] == '\0';
        if (a && b) continue;
        ++counted;
        const bool is_le = !a && b, is_be = a && !b;
        le += is_le;
        be += is_be;
        le_runs += is_le && last_le;
        be_runs += is_be && last_be;
        last_le = is_le;
        last_be = is_be;
    }
    if (counted < 4) return nullptr;
    if (le * 4 >= counted && be * 20 <= le && le_runs * 2 >= le) return "UTF-16LE";
    if (be * 4 >= counted && le * 20 <= be && be_runs * 2 >= be) return "UTF-16BE";
    return nullptr;
}

// NULs and control codes as separators. A run of one to three NULs between two other bytes
// is dropped: it is what UTF-16 and UTF-32 put beside ASCII, and what is put every few bytes
// to break a number up (a reader strips it with `tr -d '\0'`). A longer NUL run (a sparse
// gap, padding) and any other control code but tab, newline, carriage return and form feed
// becomes one newline, so no detector match spans it (none at the start). One pass; never
// longer than the input.
std::string separate_controls(std::string_view s, std::size_t& separated) {
    std::string out;
    out.reserve(s.size());  // address space only: pages are touched as text is appended
    const auto* b = reinterpret_cast<const unsigned char*>(s.data());
    for (std::size_t i = 0; i < s.size();) {
        if (!control(b[i]) && b[i] != 0) {
            const std::size_t start = i;
            while (i < s.size() && !control(b[i]) && b[i] != 0) ++i;
            out.append(s.substr(start, i - start));
            continue;
        }
        std::size_t j = i + 1;
        if (b[i] == 0) j = std::min(s.find_first_not_of('\0', i), s.size());
        const bool dropped = b[i] == 0 && j - i <= 3 && i > 0 && j < s.size() && !control(b[i - 1]) && !control(b[j]);
        if (!dropped) {
            ++separated;
            if (!out.empty() && out.back() != '\n') out += '\n';
        }
        i = j;
    }
    return out;
}

// Binary bytes with text in them: the valid UTF-8 sequences, each invalid byte a separator.
// ASCII runs are copied whole and each other character is checked by the DFA in place (a
// call of valid_utf8 per byte made binaries 9x slower per byte than text).
std::string utf8_runs(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t n = s.size();
    for (std::size_t i = 0; i < n;) {
        if (p[i] < 0x80) {
            const std::size_t start = i;
            while (i + 8 <= n) {
                std::uint64_t w;
                std::memcpy(&w, p + i, 8);
                if (w & 0x8080808080808080ULL) break;
                i += 8;
            }
            while (i < n && p[i] < 0x80) ++i;
            out.append(s.substr(start, i - start));
            continue;
        }
        // A multi-byte character: valid when the DFA accepts before an error.
        unsigned state = detail::utf8dfa::acc;
        std::size_t j = i;
        do state = static_cast<unsigned>(detail::utf8dfa::table[p[j++]] >> (state & 63));
        while (j < n && (state & 63) != detail::utf8dfa::acc && (state & 63) != detail::utf8dfa::err);
        if ((state & 63) == detail::utf8dfa::acc) {
            out.append(s.substr(i, j - i));
            i = j;
        } else {
            if (out.empty() || out.back() != '\n') out += '\n';
            ++i;
        }
    }
    return out;
}

// C1 controls (U+0080..U+009F) of decoded text as separators.
void separate_c1(std::string& text, std::size_t& separated) {
    for (std::size_t i = 0; i + 1 < text.size(); ++i)
        if (static_cast<unsigned char>(text[i]) == 0xC2 && static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
            static_cast<unsigned char>(text[i + 1]) <= 0x9F) {
            text[i] = ' ';
            text[i + 1] = '\n';
            ++separated;
        }
}

// A file on disk that is no clean text and of no other known format: the text it holds,
// read past NULs and control codes. Always readable (unless its text exceeds
// max_text_bytes); the encoding says how it was read. Work and text are linear in the
// bytes: decoding makes at most 3 bytes of UTF-8 of each byte left (CP932 half-width kana).
Extracted extract_salvaged(std::string_view bytes, const ExtractOptions& options) {
    std::size_t separated = 0;
    std::string text, encoding;
    if (const char* utf16 = utf16_without_bom(bytes)) {
        if (auto t = detail::convert_to_utf8(utf16, bytes.substr(0, bytes.size() & ~std::size_t{1}))) {
            text = separate_controls(*t, separated);
            encoding = std::string_view(utf16) == "UTF-16LE" ? "utf-16le without BOM" : "utf-16be without BOM";
        }
    }
    if (encoding.empty()) {
        std::string raw = separate_controls(bytes, separated);
        // Legacy encodings after the controls are gone: their bytes are all 0x20 or above.
        if (valid_utf8(raw)) {
            text = std::move(raw);
            encoding = "utf-8";
        } else if (auto euc = detail::convert_to_utf8("EUC-JP", raw)) {
            text = std::move(*euc);
            encoding = "euc-jp";
        } else if (auto sjis = detail::convert_to_utf8("CP932", raw)) {
            text = std::move(*sjis);
            encoding = "cp932";
        } else {
            text = utf8_runs(raw);
            encoding = "text runs in binary";
        }
    }
    separate_c1(text, separated);
    if (separated) encoding += ", controls as separators";
    if (text.size() > options.max_text_bytes) return unreadable(DocType::text, truncated(options));
    Extracted e;
    e.doc_type = DocType::text;
    if (const auto separator = detail::csv_separator(text)) {
        e.doc_type = *separator == ',' ? DocType::csv : DocType::tsv;
        text = detail::csv_to_text(text, *separator);
    }
    e.encoding = std::move(encoding);
    e.pages = count_pages(text);
    e.text = std::move(text);
    e.readable = true;
    return e;
}

// `owned`, when given, holds the same bytes and may be moved from (saves a copy of
// large UTF-8 files read by extract_file).
Extracted extract_text(std::string_view bytes, const ExtractOptions& options, std::string* owned = nullptr) {
    Extracted e;
    e.doc_type = DocType::text;
    const std::string_view whole = bytes;
    const bool on_disk = options.mode == ScanMode::file_on_disk;
    const bool bom = starts_with(bytes, "\xEF\xBB\xBF");
    if (bom) bytes.remove_prefix(3);
    std::optional<std::string> text;
    if (starts_with(bytes, "\xFF\xFE") || starts_with(bytes, "\xFE\xFF")) {
        text = detail::convert_to_utf8("UTF-16", bytes);  // the BOM picks the byte order
        e.encoding = "utf-16";
    } else if (valid_utf8(bytes)) {
        if (owned && !on_disk) {  // on disk `whole` may be read again below
            text = std::move(*owned);
            if (bom) text->erase(0, 3);
        } else {
            text = std::string(bytes);
        }
        e.encoding = "utf-8";
    } else if ((text = detail::convert_to_utf8("EUC-JP", bytes))) {
        // EUC-JP first: its byte pairs are also valid CP932, the converse is rarely true.
        e.encoding = "euc-jp";
    } else if ((text = detail::convert_to_utf8("CP932", bytes))) {
        e.encoding = "cp932";
    }
    if (!text) {
        if (on_disk) return extract_salvaged(whole, options);
        return unreadable(DocType::text, "text in an unknown character encoding");
    }
    if (auto why = detail::control_problem(*text)) {
        if (on_disk) return extract_salvaged(whole, options);
        return unreadable(DocType::text, std::move(*why));
    }
    if (text->size() > options.max_text_bytes) return unreadable(DocType::text, truncated(options));
    // After decoding, so UTF-16 tables (Excel's "Unicode text") are found too.
    if (const auto separator = detail::csv_separator(*text)) {
        e.doc_type = *separator == ',' ? DocType::csv : DocType::tsv;
        *text = detail::csv_to_text(*text, *separator);
    }
    e.pages = count_pages(*text);
    e.text = std::move(*text);
    e.readable = true;
    return e;
}

void silence_poppler() {
    // poppler prints parse errors to stderr by default; library code must not.
    static std::once_flag once;
    std::call_once(once, [] { poppler::set_debug_error_function([](const std::string&, void*) {}, nullptr); });
}

Extracted extract_pdf(std::string_view bytes, const ExtractOptions& options) {
    silence_poppler();
    if (bytes.size() > static_cast<std::size_t>(INT_MAX)) return unreadable(DocType::pdf, "PDF larger than 2 GiB");
    if (auto why = detail::framing_problem(bytes, DocType::pdf)) return unreadable(DocType::pdf, std::move(*why));
    std::unique_ptr<poppler::document> doc(
        poppler::document::load_from_raw_data(bytes.data(), static_cast<int>(bytes.size())));
    if (!doc) return unreadable(DocType::pdf, "damaged PDF (cannot be parsed)");
    if (doc->is_locked()) return unreadable(DocType::pdf, "encrypted PDF (needs a password)");
    Extracted e;
    e.doc_type = DocType::pdf;
    const int pages = std::max(doc->pages(), 0);
    e.pages = static_cast<std::uint32_t>(pages);
    // Fonts and outlines: what the printer draws beside the text layer.
    auto inspection = detail::inspect_pdf(bytes, options.timeout);
    if (inspection.problem) {
        auto u = unreadable(DocType::pdf, std::move(*inspection.problem));
        u.pages = e.pages;
        return u;
    }
    for (int i = 0; i < pages; ++i) {
        std::unique_ptr<poppler::page> page(doc->create_page(i));
        if (!page) {
            auto u = unreadable(DocType::pdf, "page " + std::to_string(i + 1) + " could not be read (skipped pages are not judged)");
            u.pages = e.pages;
            return u;
        }
        const auto utf8 = page->text(poppler::rectf(), poppler::page::physical_layout).to_utf8();
        const std::string_view text(utf8.data(), utf8.size());
        if (!has_visible_text(text)) ++e.pages_without_text;
        if (e.text.size() + text.size() + 2 > options.max_text_bytes) {
            auto u = unreadable(DocType::pdf, truncated(options));
            u.pages = e.pages;
            return u;
        }
        e.text.append(text);
        e.text += "\n\f";  // page break: no detector match crosses it
    }
    if (pages == 0 || e.pages_without_text == e.pages) {
        auto u = unreadable(DocType::pdf, "no text layer (image-only or scanned PDF)");
        u.pages = e.pages;
        u.pages_without_text = e.pages_without_text;
        return u;
    }
    e.readable = true;
    return e;
}

// %%Pages: N from the DSC header, else the number of %%Page: comments; 0 when unknown.
std::uint32_t postscript_pages(std::string_view ps) {
    const std::string_view head = ps.substr(0, 64 * 1024);
    for (auto pos = head.find("%%Pages:"); pos != std::string_view::npos; pos = head.find("%%Pages:", pos + 1)) {
        std::size_t i = pos + 8;
        while (i < head.size() && head[i] == ' ') ++i;
        std::uint32_t n = 0;
        bool any = false;
        while (i < head.size() && head[i] >= '0' && head[i] <= '9' && n < 1'000'000) {
            n = n * 10 + static_cast<std::uint32_t>(head[i++] - '0');
            any = true;
        }
        if (any) return n;
    }
    std::uint32_t n = 0;
    for (auto pos = ps.find("\n%%Page:"); pos != std::string_view::npos; pos = ps.find("\n%%Page:", pos + 1)) ++n;
    return n;
}

tl::expected<Extracted, std::string> extract_postscript(std::string_view bytes, const ExtractOptions& options) {
    if (auto why = detail::framing_problem(bytes, DocType::postscript))
        return unreadable(DocType::postscript, std::move(*why));
    // Skip the PJL job header in front of the PostScript (framing_problem checked it).
    const auto start = bytes.substr(0, 64 * 1024).find("%!");
    if (start != std::string_view::npos) bytes.remove_prefix(start);
    if (auto why = detail::device_dependence(bytes)) return unreadable(DocType::postscript, std::move(*why));
    if (options.ghostscript.empty()) return unreadable(DocType::postscript, "PostScript extraction is disabled");
    const auto gs = detail::find_program(options.ghostscript);
    if (gs.empty()) {
        return tl::unexpected("Ghostscript ('" + options.ghostscript +
                              "') not found: install the ghostscript package to read PostScript");
    }
    // -sstdout=%stderr: PostScript-level prints and error reports go to stderr, so stdout
    // holds only the txtwrite device's text.
    const std::vector<std::string> argv = {gs,           "-q",          "-dNOPAUSE",         "-dBATCH",
                                           "-dSAFER",    "-dNOPROMPT",  "-sstdout=%stderr", "-sDEVICE=txtwrite",
                                           "-sOutputFile=-", "-"};
    detail::ProcessLimits limits{options.timeout, options.max_text_bytes, options.ghostscript_memory_limit,
                                 options.ghostscript_uid, options.ghostscript_gid};
    auto run = detail::run_bounded(argv, bytes, limits);
    if (!run) return tl::unexpected("cannot run Ghostscript: " + run.error());
    if (run->exit_status == 127 && run->output.empty())
        return tl::unexpected("cannot run Ghostscript ('" + gs + "'): exec failed");
    if (run->exit_status == detail::kSetupFailed && run->output.empty()) {
        return tl::unexpected("cannot start Ghostscript as uid " + std::to_string(options.ghostscript_uid) +
                              " gid " + std::to_string(options.ghostscript_gid) +
                              " (switching user needs root; check ghostscript_uid/gid)");
    }
    if (run->timed_out) {
        return unreadable(DocType::postscript, "Ghostscript did not finish within " +
                                                   std::to_string(options.timeout.count()) + " ms");
    }
    if (run->output_truncated) return unreadable(DocType::postscript, truncated(options));
    Extracted e;
    e.doc_type = DocType::postscript;
    e.pages = postscript_pages(bytes);
    e.text = std::move(run->output);
    if (!has_visible_text(e.text)) {
        e.text.clear();
        e.reason = run->exit_status == 0 ? "no text (the PostScript draws no text, e.g. images or outlines)"
                                         : "Ghostscript could not interpret the PostScript (exit status " +
                                               std::to_string(run->exit_status) + ")";
        return e;
    }
    // Text from a job that later failed is still scanned.
    e.readable = true;
    return e;
}

}  // namespace

std::string_view to_string(ScanMode m) { return m == ScanMode::file_on_disk ? "disk" : "print"; }

std::string_view to_string(DocType t) {
    switch (t) {
    case DocType::text: return "text";
    case DocType::pdf: return "pdf";
    case DocType::postscript: return "postscript";
    case DocType::image: return "image";
    case DocType::unknown: return "unknown";
    case DocType::csv: return "csv";
    case DocType::tsv: return "tsv";
    case DocType::xlsx: return "xlsx";
    case DocType::docx: return "docx";
    case DocType::pptx: return "pptx";
    case DocType::ods: return "ods";
    case DocType::odt: return "odt";
    case DocType::zip: return "zip";
    case DocType::gzip: return "gzip";
    case DocType::eml: return "eml";
    }
    return "unknown";
}

DocType sniff(std::string_view bytes, std::string_view mime) {
    const auto head = bytes.substr(0, 1024);
    if (head.find("%PDF-") != std::string_view::npos) return DocType::pdf;
    // A Ctrl-D in front resets a PostScript printer (Windows drivers send one).
    if (starts_with(bytes, "%!") || starts_with(bytes, "\x04%!") || starts_with(bytes, "\xC5\xD0\xD3\xC6") ||
        (starts_with(bytes, "\x1B%-12345X") && bytes.substr(0, 64 * 1024).find("%!PS") != std::string_view::npos))
        return DocType::postscript;
    static constexpr std::string_view kImageMagic[] = {
        "\x89PNG", "\xFF\xD8\xFF", "GIF87a", "GIF89a", std::string_view("II*\0", 4), std::string_view("MM\0*", 4),
        "RaS2", "3SaR", "UNIRAST",  // PNG JPEG GIF TIFF CUPS/PWG raster URF
    };
    for (auto m : kImageMagic)
        if (starts_with(bytes, m)) return DocType::image;
    // Printer languages (PJL without PostScript, PCL, PCL XL): already rendered, no text.
    if (starts_with(bytes, "\x1B%-12345X") || starts_with(bytes, "\x1B" "E") || starts_with(bytes, ") HP-PCL XL"))
        return DocType::unknown;
    if (starts_with(bytes, "PK\x03\x04") || starts_with(bytes, "PK\x05\x06")) return detail::zip_kind(bytes);
    if (starts_with(bytes, "\x1F\x8B")) return DocType::gzip;
    if (starts_with(mime, "image/") || mime == "application/vnd.cups-raster" || mime == "image/pwg-raster" ||
        mime == "image/urf")
        return DocType::image;
    if (mime == "application/pdf") return DocType::pdf;
    if (mime == "application/postscript") return DocType::postscript;
    if (mime == "message/rfc822") return DocType::eml;
    if (starts_with(bytes, "\xFF\xFE") || starts_with(bytes, "\xFE\xFF")) return DocType::text;
    if (looks_like_text(bytes)) {
        if (detail::looks_like_mail(bytes)) return DocType::eml;
        if (const auto separator = detail::csv_separator(bytes)) return *separator == ',' ? DocType::csv : DocType::tsv;
        return DocType::text;
    }
    return DocType::unknown;
}

namespace {

tl::expected<Extracted, std::string> extract_impl(std::string_view bytes, std::string_view mime_hint,
                                                  const ExtractOptions& options, std::string* owned, detail::Nest& nest) {
    // Members of containers come back here, one level deeper.
    const detail::ReadMember read = [&options](std::string_view member, std::string_view mime, detail::Nest& n) {
        auto e = extract_impl(member, mime, options, nullptr, n);
        return e ? std::move(*e) : unreadable(DocType::unknown, e.error());
    };
    switch (sniff(bytes, mime_hint)) {
    case DocType::text:
    case DocType::csv:
    case DocType::tsv: return extract_text(bytes, options, owned);
    case DocType::pdf: return extract_pdf(bytes, options);
    case DocType::postscript:
        // The reader forbids itself new processes unless the file itself is PostScript.
        if (nest.depth > 0)
            return unreadable(DocType::postscript, "PostScript inside a container is not interpreted (scan it on its own)");
        return extract_postscript(bytes, options);
    case DocType::image: return unreadable(DocType::image, "image or raster document (no text to scan)");
    case DocType::xlsx:
    case DocType::docx:
    case DocType::pptx:
    case DocType::ods:
    case DocType::odt:
    case DocType::zip: return detail::extract_zip(bytes, options, nest, read);
    case DocType::gzip: return detail::extract_gzip(bytes, options, nest, read);
    case DocType::eml: return detail::extract_mail(bytes, options, nest, read);
    case DocType::unknown: break;
    }
    if (starts_with(bytes, "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1"))
        return unreadable(DocType::unknown, "legacy Office file (.xls, .doc, .ppt) or Office file with a password "
                                            "(OLE2): not read; save it as xlsx/docx/pptx without a password");
    if (options.mode == ScanMode::file_on_disk) return extract_salvaged(bytes, options);
    return unreadable(DocType::unknown, detail::unknown_format_reason(bytes));
}

tl::expected<Extracted, std::string> extract_top(std::string_view bytes, std::string_view mime_hint,
                                                 const ExtractOptions& options, std::string* owned) {
    detail::Nest nest;
    return extract_impl(bytes, mime_hint, options, owned, nest);
}

}  // namespace

tl::expected<Extracted, std::string> extract(std::string_view bytes, std::string_view mime_hint,
                                             const ExtractOptions& options) {
    return extract_top(bytes, mime_hint, options, nullptr);
}

tl::expected<Extracted, std::string> extract_file(const std::string& path, std::string_view mime_hint,
                                                  const ExtractOptions& options) {
    int fd = path == "-" ? ::dup(0) : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return tl::unexpected("cannot open '" + path + "': " + std::strerror(errno));
    std::unique_ptr<int, void (*)(int*)> guard(&fd, [](int* f) { ::close(*f); });
    std::string bytes;
    struct stat st{};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) bytes.reserve(static_cast<std::size_t>(st.st_size) + 1);
    std::size_t have = 0;
    while (true) {
        // Read straight into the string; grow geometrically for pipes and growing files.
        if (bytes.capacity() - have < 65536) bytes.reserve(std::max<std::size_t>(bytes.capacity() * 2, have + 65536));
        bytes.resize(bytes.capacity());
        const ssize_t n = ::read(fd, bytes.data() + have, bytes.size() - have);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            return tl::unexpected("cannot read '" + path + "': " + std::strerror(errno));
        }
        have += static_cast<std::size_t>(n);
    }
    bytes.resize(have);
    const std::string_view view = bytes;
    auto result = extract_top(view, mime_hint, options, &bytes);
    if (!result) return tl::unexpected("'" + path + "': " + result.error());
    return result;
}

}  // namespace custguard::scan
