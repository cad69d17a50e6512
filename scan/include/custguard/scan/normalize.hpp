// A small NFKC-like mapping for what the detectors look at: full-width ASCII (digits,
// letters, ＠, －, （）), Unicode dashes, ideographic and other spaces become ASCII; ー and ・
// become '-', and the middle dot, one-dot leader and hyphenation point '.', only right after
// a digit (elsewhere they are part of Japanese words, e.g. マイナンバー). Invisible
// characters are dropped so they cannot split a number: soft hyphen, zero-width and
// direction marks, variation selectors, and control characters other than tab, LF, CR and
// FF. Blanks between two digits (at most 4 bytes with at most one line break: double
// spaces, a number broken over two lines) become one space. Everything else, including
// invalid UTF-8, passes through unchanged.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace custguard::scan {

// Writes the normalised form of `in` to `out`, which must have room for in.size() bytes
// (the mapping never grows text). Returns the number of bytes written.
std::size_t normalize_into(std::string_view in, char* out);

std::string normalize(std::string_view in);

// Number of UTF-8 code points (bytes that are not continuation bytes).
std::uint64_t count_code_points(std::string_view text);

}  // namespace custguard::scan
