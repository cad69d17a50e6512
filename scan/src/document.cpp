#include "custguard/scan/document.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "printer_language.hpp"
#include "custguard/scan/utf8.hpp"
#include "custguard/common/unique_fd.hpp"

namespace custguard::scan {

namespace {

using common::UniqueFd;

DocumentScan from_extracted(const Extracted& e) {
    DocumentScan d;
    d.doc_type = e.doc_type;
    d.pages = e.pages;
    d.pages_without_text = e.pages_without_text;
    d.readable = e.readable;
    d.reason = e.reason;
    d.encoding = e.encoding;
    d.text_bytes = e.text.size();
    d.members = e.members;
    d.members_without_text = e.members_without_text;
    return d;
}

// Reads up to buf.size() bytes (less only at end of file).
tl::expected<std::size_t, std::string> read_full(int fd, char* buf, std::size_t size) {
    std::size_t have = 0;
    while (have < size) {
        const ssize_t n = ::read(fd, buf + have, size - have);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            return tl::unexpected(std::string(std::strerror(errno)));
        }
        have += static_cast<std::size_t>(n);
    }
    return have;
}

constexpr std::size_t kBlock = 1 << 20;

}  // namespace

tl::expected<DocumentScan, std::string> scan_document(Scanner& scanner, std::string_view bytes,
                                                      std::string_view mime_hint, const ExtractOptions& options) {
    auto doc = extract(bytes, mime_hint, options);
    if (!doc) return tl::unexpected(doc.error());
    auto result = from_extracted(*doc);
    if (!doc->readable) return result;
    auto findings = scanner.scan(doc->text);
    if (!findings) return tl::unexpected(findings.error());
    result.findings = *findings;
    return result;
}

tl::expected<DocumentScan, std::string> scan_file(Scanner& scanner, const std::string& path,
                                                  std::string_view mime_hint, const ExtractOptions& options) {
    const int raw = path == "-" ? ::dup(0) : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (raw < 0) return tl::unexpected("cannot open '" + path + "': " + std::strerror(errno));
    UniqueFd fd(raw);
    auto fail = [&](const std::string& what) {
        return tl::unexpected("cannot read '" + path + "': " + what);
    };

    // The first block decides the type; for UTF-8 text, stream the rest through the scanner.
    std::string block(kBlock, '\0');
    auto got = read_full(fd.get(), block.data(), block.size());
    if (!got) return fail(got.error());
    block.resize(*got);
    std::string all;  // what extract() gets when streaming is not possible
    const bool seekable = ::lseek(fd.get(), 0, SEEK_CUR) >= 0;
    const bool text_start = sniff(block, mime_hint) == DocType::text && !block.starts_with("\xFF\xFE") &&
                            !block.starts_with("\xFE\xFF");
    if (text_start) {
        Utf8Validator utf8;
        bool controls = false;
        DocumentScan d;
        d.doc_type = DocType::text;
        d.encoding = "utf-8";
        d.pages = block.empty() ? 0 : 1;
        scanner.begin();
        std::string_view piece = block;
        if (piece.starts_with("\xEF\xBB\xBF")) piece.remove_prefix(3);
        bool ended_with_ff = false;
        unsigned char prev = 0;
        while (true) {
            utf8.feed(piece);
            if (utf8.failed()) break;
            if (auto why = detail::control_problem(piece, d.text_bytes, prev)) {
                scanner.begin();
                if (options.mode == ScanMode::file_on_disk) {
                    controls = true;  // read past them: extract() below
                    break;
                }
                d.reason = std::move(*why);
                return d;
            }
            if (!piece.empty()) prev = static_cast<unsigned char>(piece.back());
            scanner.feed(piece);
            d.text_bytes += piece.size();
            for (auto pos = piece.find('\f'); pos != std::string_view::npos; pos = piece.find('\f', pos + 1)) ++d.pages;
            if (!piece.empty()) ended_with_ff = piece.back() == '\f';
            if (block.size() < kBlock) break;  // end of file
            if (!seekable) all.append(block);  // pipes cannot be read again
            block.resize(kBlock);
            got = read_full(fd.get(), block.data(), block.size());
            if (!got) return fail(got.error());
            block.resize(*got);
            piece = block;
        }
        if (!controls && !utf8.failed() && utf8.complete()) {
            auto findings = scanner.finish();
            if (!findings) return tl::unexpected("'" + path + "': " + findings.error());
            if (ended_with_ff && d.pages > 1) --d.pages;  // a trailing form feed opens no page
            d.readable = true;
            d.findings = *findings;
            return d;
        }
        // Not UTF-8 after all (EUC-JP, Shift_JIS, ...), or on disk with control codes: decode
        // the whole file below.
        scanner.begin();
        if (seekable) {
            if (::lseek(fd.get(), 0, SEEK_SET) < 0) return fail(std::strerror(errno));
            block.resize(kBlock);
            got = read_full(fd.get(), block.data(), block.size());
            if (!got) return fail(got.error());
            block.resize(*got);
        }
    }
    all.append(block);
    if (block.size() == kBlock) {
        // Read the rest.
        while (true) {
            const std::size_t old = all.size();
            all.resize(old + kBlock);
            got = read_full(fd.get(), all.data() + old, kBlock);
            if (!got) return fail(got.error());
            all.resize(old + *got);
            if (*got < kBlock) break;
        }
    }
    auto result = scan_document(scanner, all, mime_hint, options);
    if (!result) return tl::unexpected("'" + path + "': " + result.error());
    return result;
}

}  // namespace custguard::scan
