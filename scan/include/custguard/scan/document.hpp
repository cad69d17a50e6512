// Extract and scan in one call: what the print gate and `custguardctl scan` do per
// document. UTF-8 text files are streamed through the scanner in blocks (no copy of the
// whole file); other formats are extracted first (see extract.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include "custguard/scan/extract.hpp"
#include "custguard/scan/findings.hpp"
#include "custguard/scan/scanner.hpp"

namespace custguard::scan {

struct DocumentScan {
    DocType doc_type = DocType::unknown;
    std::uint32_t pages = 0;
    std::uint32_t pages_without_text = 0;
    bool readable = false;  // false: no text could be extracted; `reason` says why and
                            // the policy's [print] unreadable setting applies
    std::string reason;
    std::string encoding;
    std::uint64_t text_bytes = 0;  // extracted text scanned
    std::uint32_t members = 0;               // containers: see Extracted
    std::uint32_t members_without_text = 0;
    Findings findings;             // all zero when not readable
    // The extraction did not finish (the sandboxed helper crashed, ran out of memory or
    // time, or answered garbage): readable is false and `reason` says what happened.
    bool scan_failed = false;
};

tl::expected<DocumentScan, std::string> scan_document(Scanner& scanner, std::string_view bytes,
                                                      std::string_view mime_hint = {},
                                                      const ExtractOptions& options = {});

// `path` "-" reads standard input. Errors name the file.
tl::expected<DocumentScan, std::string> scan_file(Scanner& scanner, const std::string& path,
                                                  std::string_view mime_hint = {},
                                                  const ExtractOptions& options = {});

}  // namespace custguard::scan
