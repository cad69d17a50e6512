// What a PDF's pages draw, beside the text poppler-cpp extracts: whether each glyph's text
// can be trusted, and how much is drawn as vector paths.
//
// poppler-cpp exposes neither fonts' encodings and ToUnicode maps nor paths, so this pass
// uses poppler's core API (libpoppler-private-dev, the same library poppler-cpp wraps)
// with an output device that renders nothing: every page is interpreted once, as for
// printing, with a deadline and caps on glyphs, paths and embedded font sizes.
//
// Untrusted text mapping (any drawn glyph of such a font makes the document unreadable):
//   - Type 3 fonts: glyphs are arbitrary drawings;
//   - a simple font whose glyph name says one digit while its text (ToUnicode) says another
//     character, or the reverse;
//   - a font without ToUnicode whose glyph name is not a standard one and holds a digit
//     (poppler guesses the text of names like /g31, /cid17);
//   - an embedded TrueType font whose own character map or glyph names put a digit at the
//     glyph drawn while the text says another character, or the reverse;
//   - a CID font without ToUnicode whose collection is not a registered Adobe one (e.g.
//     Adobe-Identity: poppler takes the CIDs for text), and glyphs with no text at all.
// Outlines: a page whose filled, clipped or curved stroked path segments number at least
// kOutlineSegments and exceed the visible glyphs drawn on it is text drawn as outlines,
// or unjudgeable artwork.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace custguard::scan::detail {

inline constexpr std::uint64_t kOutlineSegments = 100;

struct PdfPageFacts {
    std::uint64_t glyphs = 0;
    std::uint64_t path_segments = 0;
};

struct PdfInspection {
    std::optional<std::string> problem;  // why the pages cannot be judged from their text
    std::vector<PdfPageFacts> pages;
};

PdfInspection inspect_pdf(std::string_view bytes, std::chrono::milliseconds timeout);

}  // namespace custguard::scan::detail
