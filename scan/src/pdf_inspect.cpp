#include "pdf_inspect.hpp"

#include <poppler/Error.h>
#include <poppler/GfxFont.h>
#include <poppler/GfxState.h>
#include <poppler/GlobalParams.h>
#include <poppler/OutputDev.h>
#include <poppler/PDFDoc.h>
#include <poppler/Stream.h>
#include <poppler/fofi/FoFiTrueType.h>
#include <poppler/goo/gmem.h>

#include <array>
#include <climits>
#include <cstring>
#include <map>
#include <memory>
#include <set>

namespace custguard::scan::detail {

namespace {

constexpr std::size_t kMaxFontProgram = 32u << 20;      // embedded font programs read for checks
constexpr std::uint64_t kMaxOperations = 20'000'000;   // glyphs and path segments over the document

void silent(ErrorCategory, Goffset, const char*) {}

// The digit a single code point stands for (ASCII or full-width), or -1.
int digit_of(const Unicode* u, int len) {
    if (len != 1) return -1;
    if (u[0] >= '0' && u[0] <= '9') return static_cast<int>(u[0] - '0');
    if (u[0] >= 0xFF10 && u[0] <= 0xFF19) return static_cast<int>(u[0] - 0xFF10);
    return -1;
}

constexpr std::array<std::string_view, 10> kDigitNames = {"zero", "one", "two",   "three", "four",
                                                          "five", "six", "seven", "eight", "nine"};

bool hex4(std::string_view s) {
    return s.size() == 4 && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
           });
}

// The digit a glyph name stands for ("seven", "seven.oldstyle", "uni0037", "uniFF17"), or -1.
int digit_of_name(std::string_view name) {
    if (auto dot = name.find('.'); dot != std::string_view::npos && dot > 0) name = name.substr(0, dot);
    for (std::size_t d = 0; d < kDigitNames.size(); ++d)
        if (name == kDigitNames[d]) return static_cast<int>(d);
    if (name.size() == 7 && name.starts_with("uni") && hex4(name.substr(3))) {
        const auto v = std::stoul(std::string(name.substr(3)), nullptr, 16);
        if (v >= '0' && v <= '9') return static_cast<int>(v - '0');
        if (v >= 0xFF10 && v <= 0xFF19) return static_cast<int>(v - 0xFF10);
    }
    return -1;
}

// A glyph name whose text poppler guesses: not in the Adobe Glyph List, not uniXXXX /
// uXXXX[XX], and with a digit in it (poppler reads names like /g31, /cid17, /C45 as
// numbers). Names without digits that poppler does not know give no text to guess.
bool guessed_name(const char* name) {
    const std::string_view n(name);
    if (n.find_first_of("0123456789") == std::string_view::npos) return false;
    if (globalParams->mapNameToUnicodeText(name) != 0) return false;
    if (n.starts_with("uni") && n.size() >= 7 && (n.size() - 3) % 4 == 0) return false;
    if (n.size() >= 5 && n.size() <= 7 && n[0] == 'u') return false;
    // Variants and ligatures of standard names: one.sups, f_f_i.
    const auto base = n.substr(0, std::min(n.find('.'), n.find('_')));
    return base.empty() || base.size() == n.size() || globalParams->mapNameToUnicodeText(std::string(base).c_str()) == 0;
}

void append_utf8(std::string& out, Unicode u) {
    if (u < 0x80) out += static_cast<char>(u);
    else if (u < 0x800) {
        out += static_cast<char>(0xC0 | (u >> 6));
        out += static_cast<char>(0x80 | (u & 0x3F));
    } else if (u < 0x10000) {
        out += static_cast<char>(0xE0 | (u >> 12));
        out += static_cast<char>(0x80 | ((u >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (u & 0x3F));
    } else if (u < 0x110000) {
        out += static_cast<char>(0xF0 | (u >> 18));
        out += static_cast<char>(0x80 | ((u >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((u >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (u & 0x3F));
    }
}

std::string font_label(const GfxFont& font) {
    if (font.getName()) return *font.getName();
    return "(unnamed)";
}

// What an embedded TrueType program says about its glyphs: which glyph each digit is.
struct TrueTypeFacts {
    bool loaded = false;
    std::array<std::set<int>, 10> digit_gids;  // from the Unicode cmap and the glyph names
    std::vector<int> code_to_gid;              // 8-bit fonts: the renderer's code -> glyph map
    bool knows_digits() const {
        return std::any_of(digit_gids.begin(), digit_gids.end(), [](const auto& s) { return !s.empty(); });
    }
    int digit_of_gid(int gid) const {
        for (int d = 0; d < 10; ++d)
            if (digit_gids[d].count(gid)) return d;
        return -1;
    }
};

class InspectDevice : public OutputDev {
public:
    explicit InspectDevice(XRef* xref, std::chrono::steady_clock::time_point deadline)
        : xref_(xref), deadline_(deadline) {}

    bool upsideDown() override { return false; }
    bool useDrawChar() override { return true; }
    bool interpretType3Chars() override { return false; }  // Type 3 fonts are refused anyway
    bool needNonText() override { return true; }

    // Called before each page is displayed (a page that fails to display still counts).
    void begin_page() { pages_.emplace_back(); }

    void stroke(GfxState* state) override { count_path(state, true); }
    void fill(GfxState* state) override { count_path(state, false); }
    void eoFill(GfxState* state) override { count_path(state, false); }
    void clip(GfxState* state) override { count_path(state, false); }
    void eoClip(GfxState* state) override { count_path(state, false); }

    void drawChar(GfxState* state, double, double, double, double, double, double, CharCode code, int,
                  const Unicode* u, int u_len) override {
        if (pages_.empty()) return;
        // Invisible glyphs (render modes 3 and 7) do not count against outlines, or padding
        // a page with invisible text would hide outlined digits.
        if (state->getRender() != 3 && state->getRender() != 7) ++pages_.back().glyphs;
        ++operations_;
        if (problem_) return;
        const auto& font = state->getFont();
        if (!font) return;
        // Each glyph of a font once. Fonts are keyed by their object reference (poppler
        // gives direct font dictionaries one from a hash of their content): a GfxFont
        // address may be reused after a form's resources are freed.
        const Ref id = *font->getID();
        if (!checked_.insert({{id.num, id.gen}, code}).second) return;
        check_glyph(*font, code, u, u_len);
    }

    static bool abort_check(void* self) {
        auto* dev = static_cast<InspectDevice*>(self);
        if (dev->operations_ > kMaxOperations) dev->aborted_ = "more than " + std::to_string(kMaxOperations) + " glyphs and path segments";
        else if (std::chrono::steady_clock::now() > dev->deadline_) dev->aborted_ = "the time limit";
        return !dev->aborted_.empty();
    }

    std::vector<PdfPageFacts>& pages() { return pages_; }
    const std::optional<std::string>& problem() const { return problem_; }
    const std::string& aborted() const { return aborted_; }

private:
    XRef* xref_;
    std::chrono::steady_clock::time_point deadline_;
    std::vector<PdfPageFacts> pages_;
    std::optional<std::string> problem_;
    std::string aborted_;
    std::uint64_t operations_ = 0;
    using FontKey = std::pair<int, int>;  // object number and generation
    std::set<std::pair<FontKey, CharCode>> checked_;
    std::map<FontKey, TrueTypeFacts> truetype_;

    void count_path(GfxState* state, bool stroked) {
        if (pages_.empty()) return;
        const GfxPath* path = state->getPath();
        if (!path) return;
        std::uint64_t segments = 0;
        for (int i = 0; i < path->getNumSubpaths(); ++i) {
            const GfxSubpath* sub = path->getSubpath(i);
            if (!stroked) {
                segments += static_cast<std::uint64_t>(std::max(sub->getNumPoints() - 1, 0));
                continue;
            }
            // Stroked lines are rules and table borders; curves are glyph-like.
            for (int p = 1; p < sub->getNumPoints(); ++p) segments += sub->getCurve(p);
        }
        pages_.back().path_segments += segments;
        operations_ += segments;
    }

    void fail(std::string why) { problem_ = std::move(why); }

    const TrueTypeFacts& truetype(GfxFont& font) {
        auto [it, inserted] = truetype_.try_emplace(FontKey{font.getID()->num, font.getID()->gen});
        if (!inserted) return it->second;
        auto& facts = it->second;
        const auto type = font.getType();
        if (type != fontTrueType && type != fontTrueTypeOT && type != fontCIDType2 && type != fontCIDType2OT) return facts;
        Ref id;
        if (!font.getEmbeddedFontID(&id)) return facts;
        auto program = font.readEmbFontFile(xref_);
        if (!program || program->empty() || program->size() > kMaxFontProgram) return facts;
        auto ff = FoFiTrueType::make(program->data(), static_cast<int>(program->size()));
        if (!ff) return facts;
        facts.loaded = true;
        for (auto [platform, encoding] : {std::pair{3, 1}, std::pair{3, 10}, std::pair{0, 3}, std::pair{0, 4}}) {
            const int cmap = ff->findCmap(platform, encoding);
            if (cmap < 0) continue;
            for (int d = 0; d < 10; ++d) {
                if (int gid = ff->mapCodeToGID(cmap, '0' + d); gid > 0) facts.digit_gids[d].insert(gid);
                if (int gid = ff->mapCodeToGID(cmap, 0xFF10 + d); gid > 0) facts.digit_gids[d].insert(gid);
            }
        }
        for (int d = 0; d < 10; ++d)
            if (int gid = ff->mapNameToGID(std::string(kDigitNames[d]).c_str()); gid > 0) facts.digit_gids[d].insert(gid);
        if (!font.isCIDFont()) {
            if (int* map = static_cast<Gfx8BitFont&>(font).getCodeToGIDMap(ff.get())) {
                facts.code_to_gid.assign(map, map + 256);
                gfree(map);
            }
        }
        return facts;
    }

    int glyph_id(GfxFont& font, const TrueTypeFacts& facts, CharCode code) {
        if (!font.isCIDFont()) return code < facts.code_to_gid.size() ? facts.code_to_gid[code] : -1;
        auto& cid = static_cast<GfxCIDFont&>(font);
        if (const int* map = cid.getCIDToGID()) return code < cid.getCIDToGIDLen() ? map[code] : -1;
        return static_cast<int>(code);
    }

    void check_glyph(GfxFont& font, CharCode code, const Unicode* u, int u_len) {
        const std::string label = font_label(font);
        if (font.getType() == fontType3) {
            fail("Type 3 font " + label + ": its glyphs are drawings, their text cannot be trusted");
            return;
        }
        if (u_len == 0) {
            fail("font " + label + " draws glyphs that have no text (e.g. no ToUnicode map)");
            return;
        }
        if (font.isCIDFont() && !font.hasToUnicodeCMap()) {
            // Without ToUnicode poppler maps CIDs through the collection's table; for
            // Identity or private orderings it has none and takes the CID as the text.
            const GooString* collection = static_cast<GfxCIDFont&>(font).getCollection();
            const std::string_view c = collection ? std::string_view(collection->c_str()) : std::string_view();
            if (c != "Adobe-Japan1" && c != "Adobe-GB1" && c != "Adobe-CNS1" && c != "Adobe-Korea1" && c != "Adobe-KR") {
                fail("CID font " + label + " (" + std::string(c.empty() ? "no collection" : c) +
                     ") has no ToUnicode map: its text is guessed");
                return;
            }
        }
        const int text_digit = digit_of(u, u_len);
        std::string text;
        for (int i = 0; i < u_len && i < 4; ++i) append_utf8(text, u[i]);
        if (!font.isCIDFont()) {
            auto& simple = static_cast<Gfx8BitFont&>(font);
            const char* name = code < 256 ? simple.getEncoding()[code] : nullptr;
            if (name) {
                const int name_digit = digit_of_name(name);
                if (font.hasToUnicodeCMap() && (name_digit >= 0 || text_digit >= 0) && name_digit != text_digit) {
                    fail("font " + label + " maps glyph /" + name + " to the text \"" + text + "\" (ToUnicode)");
                    return;
                }
                if (!font.hasToUnicodeCMap() && guessed_name(name)) {
                    fail("font " + label + " has no ToUnicode map and a non-standard glyph name /" + name +
                         ": its text is guessed");
                    return;
                }
            } else if (!font.hasToUnicodeCMap()) {
                fail("font " + label + " has neither glyph names nor a ToUnicode map: its text is guessed");
                return;
            }
        }
        const auto& tt = truetype(font);
        if (!tt.loaded || !tt.knows_digits()) return;
        const int gid = glyph_id(font, tt, code);
        if (gid < 0) return;
        const int glyph_digit = tt.digit_of_gid(gid);
        if (glyph_digit >= 0 && glyph_digit != text_digit) {
            fail("font " + label + " draws the digit " + std::to_string(glyph_digit) + " as the text \"" + text + "\"");
        } else if (text_digit >= 0 && glyph_digit < 0 && !tt.digit_gids[text_digit].empty()) {
            fail("font " + label + " gives the text \"" + text + "\" to glyph " + std::to_string(gid) +
                 ", which its character map does not give that digit");
        }
    }
};

}  // namespace

PdfInspection inspect_pdf(std::string_view bytes, std::chrono::milliseconds timeout) {
    PdfInspection result;
    if (bytes.size() > static_cast<std::size_t>(INT_MAX)) {
        result.problem = "PDF larger than 2 GiB";
        return result;
    }
    GlobalParamsIniter initer(silent);
    // PDFDoc owns the stream, the stream only borrows the bytes.
    auto* stream = new MemStream(bytes.data(), 0, static_cast<Goffset>(bytes.size()), Object(objNull));
    PDFDoc doc(stream);
    if (!doc.isOk()) {
        result.problem = "damaged PDF (cannot be parsed)";
        return result;
    }
    InspectDevice device(doc.getXRef(), std::chrono::steady_clock::now() + timeout);
    const int pages = doc.getNumPages();
    for (int p = 1; p <= pages; ++p) {
        device.begin_page();
        // printing = true: annotations are drawn as a printer draws them.
        doc.displayPage(&device, p, 72, 72, 0, true, false, true, InspectDevice::abort_check, &device);
        if (!device.aborted().empty()) {
            result.problem = "the pages could not be inspected within " + device.aborted();
            return result;
        }
    }
    result.pages = std::move(device.pages());
    if (device.problem()) {
        result.problem = *device.problem();
        return result;
    }
    for (std::size_t i = 0; i < result.pages.size(); ++i) {
        const auto& page = result.pages[i];
        if (page.path_segments >= kOutlineSegments && page.path_segments > page.glyphs) {
            result.problem = "page " + std::to_string(i + 1) + " draws " + std::to_string(page.path_segments) +
                             " path segments and only " + std::to_string(page.glyphs) +
                             " characters: text drawn as outlines cannot be read";
            return result;
        }
    }
    return result;
}

}  // namespace custguard::scan::detail
