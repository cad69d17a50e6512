// What a printer will interpret, judged from the bytes it receives: the gate reads a
// document in one language, so anything that a printer or filter could take as another
// language (a polyglot, data in front of the header, a second job language behind it,
// printer control codes in text) is unreadable: [print] unreadable decides.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "custguard/scan/extract.hpp"

namespace custguard::scan::detail {

// Why `bytes` cannot be judged as one `type` document (pdf or postscript), or nullopt.
// Accepted framing: the header at byte 0 (PostScript may follow one Ctrl-D), or behind a
// PJL job header (UEL, @PJL lines) whose last line is ENTER LANGUAGE = that language;
// behind the document only UEL and PJL lines without ENTER LANGUAGE. PostScript must not
// contain a %PDF- header anywhere (a PDF reader would find it and read another document).
std::optional<std::string> framing_problem(std::string_view bytes, DocType type);

// Why decoded text (UTF-8) would not print as the text we read: a control character other
// than tab, newline, carriage return and form feed (ESC starts PCL and ESC/P commands,
// backspace overstrikes, C1 controls are 8-bit escapes), or nullopt. For a stream read in
// pieces: `offset` is the piece's position in the document, `prev` the byte before it
// (0 at the start), so a C1 control split across two pieces is still found.
std::optional<std::string> control_problem(std::string_view text, std::uint64_t offset = 0, unsigned char prev = 0);

// The unreadable reason for a document sniff() could not type: names the printer
// language (PCL, PCL XL, PJL, ESC/P) when it is one.
std::string unknown_format_reason(std::string_view bytes);

}  // namespace custguard::scan::detail
