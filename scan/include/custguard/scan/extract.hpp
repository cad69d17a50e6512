// Text extraction from print spool documents and the files customers keep their data in:
// plain text (UTF-8, UTF-16 with BOM, EUC-JP, Shift_JIS/CP932), CSV/TSV (cells unquoted),
// Office Open XML (xlsx, docx, pptx), OpenDocument (ods, odt), zip and gzip containers
// (members read recursively, within the container bounds below), e-mail (.eml: MIME
// parts, base64 and quoted-printable, ISO-2022-JP/Shift_JIS/UTF-8, attachments read
// recursively), PDF (poppler-cpp, in process) and PostScript (Ghostscript's
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

// Values are part of the reader's result frame: new types are appended.
enum class DocType : std::uint8_t {
    text, pdf, postscript, image, unknown,
    csv, tsv, xlsx, docx, pptx, ods, odt, zip, gzip, eml,
};
std::string_view to_string(DocType);

struct Extracted {
    std::string text;  // UTF-8
    DocType doc_type = DocType::unknown;
    std::uint32_t pages = 0;               // 0: unknown
    std::uint32_t pages_without_text = 0;  // PDF: pages that yielded no text (e.g. scans)
    bool readable = false;
    std::string reason;    // why not readable; empty when readable
    std::string encoding;  // of plain text: "utf-8", "utf-16", "euc-jp", "cp932"
    // Containers (zip, gzip, mail; embedded objects of Office files): members read, and
    // of those the ones without text (images, unknown binaries).
    std::uint32_t members = 0;
    std::uint32_t members_without_text = 0;
};

// Where the bytes are going. A print job goes to a printer, which acts on control codes
// (ESC starts PCL, NUL and backspace change what prints): text holding them is unreadable
// and [print] unreadable decides. A file on disk (the watcher, discover, `custguardctl
// scan --mode disk`) is read by programs that skip them, and a NUL is what an attacker puts
// in front of a CSV to hide it: runs of NUL and other control codes separate text instead,
// and bytes of no known format are read as the text runs they hold (see extract_salvaged
// in extract.cpp for the rules and bounds).
enum class ScanMode : std::uint8_t { print_job, file_on_disk };
std::string_view to_string(ScanMode);

struct ExtractOptions {
    ScanMode mode = ScanMode::print_job;
    std::string ghostscript = "gs";  // path or name in PATH; empty: PostScript is unreadable
    std::chrono::milliseconds timeout{30'000};
    std::size_t max_text_bytes = std::size_t{256} << 20;
    std::uint64_t ghostscript_memory_limit = std::uint64_t{2} << 30;  // RLIMIT_AS, bytes
    // When the caller is root: run Ghostscript as this uid/gid (e.g. nobody, 65534), so a
    // job that escapes -dSAFER still has no privileges. -1: keep the caller's.
    int ghostscript_uid = -1;
    int ghostscript_gid = -1;
    // Containers (zip, gzip, Office files, mail attachments): a document beyond any bound is
    // unreadable with a reason ("zip bomb: ...", "nested too deep: ..."), read no further.
    std::uint32_t max_depth = 3;                                    // containers in containers
    std::uint32_t max_members = 10'000;                             // in the whole document
    std::uint64_t max_expanded_bytes = std::uint64_t{256} << 20;  // unpacked, whole document
    std::uint32_t max_ratio = 200;  // unpacked / packed per member, judged above 1 MiB
};

// The document type from magic bytes (zip archives by their member names:
// [Content_Types].xml and the main part for Office Open XML, mimetype for OpenDocument),
// then the MIME type CUPS gives (e.g. "application/pdf", "image/png", "text/plain"), then
// a look at the bytes (mail headers, CSV/TSV rows, text).
DocType sniff(std::string_view bytes, std::string_view mime_hint = {});

tl::expected<Extracted, std::string> extract(std::string_view bytes, std::string_view mime_hint = {},
                                             const ExtractOptions& options = {});

// Reads `path` ("-" for standard input) and extracts it. Errors name the file.
tl::expected<Extracted, std::string> extract_file(const std::string& path,
                                                  std::string_view mime_hint = {},
                                                  const ExtractOptions& options = {});

}  // namespace custguard::scan
