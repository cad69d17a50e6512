// Document scans in a sandboxed helper process. Parsing a document (poppler for PDF,
// Ghostscript for PostScript, iconv for legacy text and mail, libzip, expat and zlib for
// Office files and archives, all of them in memory) is the attack surface of the print
// gate: one small PDF can make a parser use gigabytes and hours. So the privileged caller
// never parses: it starts custguard-extract (scan/tools/extract_main.cpp) with the document
// as its standard input and
//   - no capabilities (empty bounding, permitted, effective, inheritable and ambient sets)
//     and PR_SET_NO_NEW_PRIVS,
//   - an unprivileged uid/gid when the caller may switch (the daemon uses nobody),
//   - a seccomp filter (libseccomp) that allows what reading files, computing and running
//     Ghostscript need, and nothing that opens sockets, writes files, traces or mounts;
//     the helper narrows it further (no new processes) when the document is not PostScript,
//   - rlimits: address space, CPU seconds, no file writes, few descriptors, few processes,
//     no core dumps,
//   - a wall-clock timeout after which its whole process group is SIGKILLed,
// and reads back a small, versioned, bounded result (frame.hpp). Every way the helper can
// fail (crash, signal, memory, CPU or time exhausted, malformed output) gives a
// DocumentScan that is not readable, with scan_failed set and a reason, so [print]
// unreadable decides. Errors (tl::unexpected) are for the caller's environment: no helper
// installed, the document cannot be reopened, the sandbox cannot be set up.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include "custguard/scan/document.hpp"
#include "custguard/scan/extract.hpp"
#include "custguard/scan/scanner.hpp"

namespace custguard::scan {

struct SandboxOptions {
    std::string helper;  // custguard-extract; empty: default_helper()
    // Run the helper as this uid/gid (needs CAP_SETUID/CAP_SETGID); -1: keep the caller's.
    int uid = -1;
    int gid = -1;
    std::chrono::milliseconds timeout{30'000};      // wall clock for the whole scan
    // What reading one document may use: RLIMIT_AS of Ghostscript, and of the helper plus
    // 64 MiB for the libraries it maps at start (ICU's data alone is 30 MiB).
    std::uint64_t memory = std::uint64_t{1} << 30;
    ExtractOptions extract;  // passed on (mode, ghostscript, max_text_bytes); its ids and limits are ignored
    // When this descriptor becomes readable, the helper is killed at once and the scan
    // returns an error ending in cancelled_suffix (the daemon is stopping). -1: none.
    int cancel_fd = -1;
};

inline constexpr std::string_view cancelled_suffix = "scan cancelled";

// $CUSTGUARD_EXTRACT_HELPER when set (tests, a build tree), else the installed
// <libexecdir>/custguard/custguard-extract.
std::string default_helper();

// Compiles the patterns that scan_sandboxed() hands to every reader for this
// configuration now (the Scanner overload reuses its compiled patterns), rather than at
// the first document: a policy load then fails on them, and no document pays for them.
tl::expected<void, std::string> prepare_sandboxed(const Scanner& scanner);
tl::expected<void, std::string> prepare_sandboxed(const ScannerConfig& config);

// Scans the document readable at `fd` (not closed, its offset not moved) with `config`
// in the sandboxed helper.
tl::expected<DocumentScan, std::string> scan_sandboxed(const ScannerConfig& config, int fd,
                                                       std::string_view mime_hint, const SandboxOptions& options);

// The same for a path ("-": standard input), for `custguardctl scan`. Errors name the file.
tl::expected<DocumentScan, std::string> scan_file_sandboxed(const ScannerConfig& config, const std::string& path,
                                                            std::string_view mime_hint, const SandboxOptions& options);

// A reader that scans many documents, one after another, in one sandboxed custguard-extract
// (`--batch`): the same sandbox as scan_sandboxed(), started once rather than per document,
// whose start (dynamic loader, libraries, exec) costs about twenty times the scan of a
// small file. Each document is sent as a descriptor over a socketpair (SCM_RIGHTS) and
// answered in the single-document framing. Each keeps its own bounds:
//   - its timeout: the reader is killed, only this document fails (with the reason
//     scan_sandboxed() gives), and the next document gets a fresh reader;
//   - a crash, a forbidden system call or a malformed answer fails only this document;
//   - a reader is retired after max_documents documents, max_input_bytes of input, or
//     once it has used the CPU time of one document's timeout (its RLIMIT_CPU is twice
//     that), so that its address-space and CPU limits still bound what one document can do;
//   - a document that needs Ghostscript (PostScript) goes to scan_sandboxed(): batch
//     readers may not start processes.
// One per thread: not thread-safe. The destructor kills and reaps the reader.
class SandboxedReader {
public:
    struct Limits {
        std::uint32_t max_documents = 64;
        std::uint64_t max_input_bytes = std::uint64_t{256} << 20;
    };
    SandboxedReader();
    explicit SandboxedReader(Limits limits);
    SandboxedReader(const SandboxedReader&) = delete;
    SandboxedReader& operator=(const SandboxedReader&) = delete;
    ~SandboxedReader();

    // As scan_sandboxed(). A configuration or options that differ from the running
    // reader's (a policy reload) start a new reader.
    tl::expected<DocumentScan, std::string> scan(const ScannerConfig& config, int fd, std::string_view mime_hint,
                                                 const SandboxOptions& options);

    // Readers started so far, and the running one's pid (-1: none); for tests and benchmarks.
    std::uint64_t readers_started() const { return started_; }
    int reader_pid() const;

private:
    struct Running;
    std::unique_ptr<Running> running_;
    Limits limits_;
    std::uint64_t started_ = 0;
};

}  // namespace custguard::scan
