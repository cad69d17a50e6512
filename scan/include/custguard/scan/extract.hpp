// Text extraction from print spool documents: plain text (UTF-8, UTF-16 with BOM,
// EUC-JP, Shift_JIS/CP932), PDF (poppler-cpp, in process) and PostScript (Ghostscript's
// txtwrite device in a bounded subprocess: PostScript is a programming language, and
// real drivers draw text through re-encoded and CID fonts that a hand parser of `show`
// operators would miss; a separate process with -dSAFER, a timeout, an output cap and a
// memory limit keeps a hostile or broken job from hanging or crashing the caller).
//
// Documents without extractable text (images, scans, raster formats, encrypted PDFs,
// unknown binaries), and documents whose text the printer may print differently from what
// we read (two languages or data around the header, printer languages and control codes,
// device-dependent PostScript, untrusted PDF fonts, outlines, a scan cut at
// max_text_bytes; see custguard.policy(5), UNREADABLE DOCUMENTS) are not errors: they come
// back with readable = false and a reason, so the policy's [print] unreadable setting
// applies. Errors are for the caller's environment: a file that cannot be read,
// Ghostscript that cannot be started.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

namespace custguard::scan {

enum class DocType : std::uint8_t { text, pdf, postscript, image, unknown };
std::string_view to_string(DocType);

struct Extracted {
    std::string text;  // UTF-8
    DocType doc_type = DocType::unknown;
    std::uint32_t pages = 0;               // 0: unknown
    std::uint32_t pages_without_text = 0;  // PDF: pages that yielded no text (e.g. scans)
    bool readable = false;
    std::string reason;    // why not readable; empty when readable
    std::string encoding;  // of plain text: "utf-8", "utf-16", "euc-jp", "cp932"
};

struct ExtractOptions {
    std::string ghostscript = "gs";  // path or name in PATH; empty: PostScript is unreadable
    std::chrono::milliseconds timeout{30'000};
    std::size_t max_text_bytes = std::size_t{256} << 20;
    std::uint64_t ghostscript_memory_limit = std::uint64_t{2} << 30;  // RLIMIT_AS, bytes
    // When the caller is root: run Ghostscript as this uid/gid (e.g. nobody, 65534), so a
    // job that escapes -dSAFER still has no privileges. -1: keep the caller's.
    int ghostscript_uid = -1;
    int ghostscript_gid = -1;
};

// The document type from magic bytes, then the MIME type CUPS gives (e.g.
// "application/pdf", "image/png", "text/plain"), then a look at the bytes.
DocType sniff(std::string_view bytes, std::string_view mime_hint = {});

tl::expected<Extracted, std::string> extract(std::string_view bytes, std::string_view mime_hint = {},
                                             const ExtractOptions& options = {});

// Reads `path` ("-" for standard input) and extracts it. Errors name the file.
tl::expected<Extracted, std::string> extract_file(const std::string& path,
                                                  std::string_view mime_hint = {},
                                                  const ExtractOptions& options = {});

}  // namespace custguard::scan
