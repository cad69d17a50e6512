// Text for terminals and one-line logs: user-controlled strings (file names, user names,
// grant reasons, job titles) must not forge lines or terminal escapes in custguardctl's
// human output or in a record's MESSAGE. JSON output has its own escaping (json_string.hpp).
#pragma once

#include <string>
#include <string_view>

namespace custguard::common {

// Appends `bytes` with every character that could move the cursor, end a line, start an
// escape sequence or reorder text written as a visible escape: `\\` for a backslash (so
// an escape in the output is never ambiguous), `\n`, `\r`, `\t`, `\xNN` for the other C0
// controls, DEL and bytes that are not UTF-8, `\uNNNN` for C1 controls (U+0080..U+009F),
// the line and paragraph separators and the bidirectional overrides and isolates. Valid
// UTF-8 text (kana, kanji) stays as it is.
void append_escaped_text(std::string& out, std::string_view bytes);

// `bytes` escaped as by append_escaped_text.
std::string escape_text(std::string_view bytes);

// True when escape_text would change nothing.
bool is_plain_text(std::string_view bytes);

}  // namespace custguard::common
