// The formats customers keep their data in, beside print documents: CSV/TSV, Office Open
// XML (xlsx, docx, pptx), OpenDocument (ods, odt), zip and gzip containers and e-mail
// (.eml with MIME attachments). Containers hand their members back to extract() (the
// ReadMember callback), so a member is read by the same code as a file; every unpacking
// is counted against the bounds in ExtractOptions (depth, members, expanded bytes, ratio),
// and a document beyond them is unreadable with a reason, never a hang or an exhausted
// memory limit. Parsing is memory only: libzip reads from a buffer, expat reads without
// network or external entities and refuses DTDs, zlib and iconv convert buffers. (Expat,
// not libxml2: Debian's libxml2 maps ICU's 30 MB of data, and the reader must start within
// a scan_memory_mb of 64.)
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "custguard/scan/extract.hpp"

namespace custguard::scan::detail {

// Unpacking so far, shared by the whole document tree.
struct Nest {
    std::uint32_t depth = 0;     // of the document being read: 0 is the file itself
    std::uint64_t expanded = 0;  // bytes unpacked from all containers
    std::uint32_t members = 0;   // members opened in all containers
};

// Extracts a member (depth already raised); never fails: errors become unreadable results.
using ReadMember = std::function<Extracted(std::string_view bytes, std::string_view mime_hint, Nest& nest)>;

// `in` from `charset` (an iconv name) to UTF-8; nullopt on any invalid sequence.
std::optional<std::string> convert_to_utf8(const char* charset, std::string_view in);

// The field separator (',' or '\t') when `text` is a table: at least two lines, all of the
// first ones with the same number (>= 2) of fields, quoted fields respected.
std::optional<char> csv_separator(std::string_view text);
// Cells unquoted and separated by tabs, rows by newlines: a separator glued to a number
// ("03-1234-5678,123456789012") would make the detectors take both for parts of one
// identifier; Excel's ="0312345678" form loses its wrapper.
std::string csv_to_text(std::string_view text, char separator);

// The zip's kind (xlsx, docx, pptx, ods, odt by their member names, else zip); zip when
// the archive cannot be opened (extraction says why).
DocType zip_kind(std::string_view bytes);
// A mail (RFC 5322 header block with at least two of the usual fields).
bool looks_like_mail(std::string_view bytes);

Extracted extract_zip(std::string_view bytes, const ExtractOptions& options, Nest& nest, const ReadMember& read);
Extracted extract_gzip(std::string_view bytes, const ExtractOptions& options, Nest& nest, const ReadMember& read);
Extracted extract_mail(std::string_view bytes, const ExtractOptions& options, Nest& nest, const ReadMember& read);

}  // namespace custguard::scan::detail
