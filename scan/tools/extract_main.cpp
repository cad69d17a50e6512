// custguard-extract: reads one document from standard input, extracts its text and runs
// the detectors, and writes the result to standard output in the framing of
// scan/src/frame.hpp. Started only by scan_sandboxed() (scan/src/sandbox.cpp), which has
// already taken its privileges and limited it; this side narrows the seccomp filter
// further once it knows whether the document needs Ghostscript. Not for people: no
// --help, arguments as the launcher writes them.
//
// With --batch first (SandboxedReader), standard input is a SOCK_SEQPACKET socket instead:
// each message holds a document's MIME hint and, as SCM_RIGHTS, its descriptor; each is
// answered with a 4-byte little-endian length and the frame (length 0: the document needs
// Ghostscript, which a batch reader may not start). It ends when the socket does.
//
// Exit status: 0 result written (possibly an error result), 2 bad arguments, 3 out of
// memory, 4 cannot write the result.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "custguard/edm/edm.hpp"
#include "custguard/scan/document.hpp"
#include "custguard/scan/extract.hpp"
#include "custguard/scan/scanner.hpp"
#include "frame.hpp"
#include "seccomp_filter.hpp"

namespace {

namespace scan = custguard::scan;

constexpr int kBadArguments = 2, kOutOfMemory = 3, kCannotWrite = 4;

struct Arguments {
    std::string mime;
    std::vector<std::string> detectors, keywords;
    std::vector<std::pair<std::string, int>> edm;  // NAME of edm:NAME, inherited descriptor
    std::uint32_t keyword_proximity = 40;
    int patterns = -1;  // inherited descriptor of the compiled patterns (Scanner::serialized_patterns)
    scan::ExtractOptions extract;
};

bool parse(int argc, char** argv, Arguments& a) {
    auto number = [](const char* s, unsigned long long& out) {
        char* end = nullptr;
        errno = 0;
        out = std::strtoull(s, &end, 10);
        return errno == 0 && end && *end == '\0' && *s != '\0';
    };
    bool format_ok = false;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string_view key = argv[i];
        const char* value = argv[i + 1];
        unsigned long long n = 0;
        if (key == "--format") format_ok = number(value, n) && n == scan::frame::version;
        else if (key == "--mime-type") a.mime = value;
        else if (key == "--detector") a.detectors.emplace_back(value);
        else if (key == "--keyword") a.keywords.emplace_back(value);
        else if (key == "--edm") {
            const std::string_view v = value;
            const auto eq = v.rfind('=');
            if (eq == std::string_view::npos || !number(value + eq + 1, n) || n < 3 || n > 64) return false;
            a.edm.emplace_back(std::string(v.substr(0, eq)), static_cast<int>(n));
        }
        else if (key == "--patterns" && number(value, n) && n >= 3 && n <= 64) a.patterns = static_cast<int>(n);
        else if (key == "--keyword-proximity" && number(value, n) && n <= 0xFFFFFFFFu) a.keyword_proximity = static_cast<std::uint32_t>(n);
        else if (key == "--mode" && (std::string_view(value) == "print" || std::string_view(value) == "disk"))
            a.extract.mode = std::string_view(value) == "disk" ? scan::ScanMode::file_on_disk : scan::ScanMode::print_job;
        else if (key == "--ghostscript") a.extract.ghostscript = value;
        else if (key == "--gs-timeout-ms" && number(value, n)) a.extract.timeout = std::chrono::milliseconds(n);
        else if (key == "--max-text-bytes" && number(value, n)) a.extract.max_text_bytes = n;
        else if (key == "--memory" && number(value, n)) a.extract.ghostscript_memory_limit = n;
        else return false;
    }
    return format_ok && argc % 2 == 1;
}

bool write_all(std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::write(STDOUT_FILENO, bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

// Whether extracting this document runs Ghostscript (extract_postscript); every other
// document is read without starting a process. Peeks without moving the offset; a
// document that cannot be peeked keeps the wider filter.
bool may_need_ghostscript(const std::string& mime) {
    std::string head(64 * 1024, '\0');
    const ssize_t n = ::pread(STDIN_FILENO, head.data(), head.size(), 0);
    if (n < 0) return true;
    head.resize(static_cast<std::size_t>(n));
    return scan::sniff(head, mime) == scan::DocType::postscript;
}

// The compiled patterns the launcher handed us (bounded; "" when there are none or they
// cannot be read: the scanner then compiles its own, slower but the same).
std::string read_patterns(int fd) {
    std::string bytes;
    if (fd < 0) return bytes;
    constexpr std::size_t kMax = std::size_t{64} << 20;
    char buf[65536];
    for (off_t at = 0;;) {
        const ssize_t n = ::pread(fd, buf, sizeof buf, at);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (bytes.size() + static_cast<std::size_t>(n) > kMax) {
            bytes.clear();
            break;
        }
        bytes.append(buf, static_cast<std::size_t>(n));
        at += n;
    }
    ::close(fd);
    return bytes;
}

tl::expected<scan::ScannerConfig, std::string> scanner_config(const Arguments& a) {
    auto config = scan::ScannerConfig::from_names(a.detectors, a.keywords, a.keyword_proximity);
    // The EDM indexes the launcher opened for us (we cannot open them: root-only files).
    for (const auto& [name, fd] : a.edm) {
        if (!config) break;
        auto matcher = custguard::edm::Matcher::from_fd(fd);
        ::close(fd);
        if (!matcher) config = tl::unexpected("edm:" + name + ": " + matcher.error());
        else if (!config->set_matcher(name, *matcher)) config = tl::unexpected("edm:" + name + " is no detector");
    }
    if (!config) return tl::unexpected("detectors/keywords: " + config.error());
    return config;
}

// One scanner for every document: its compiled patterns are read-only while it scans,
// and each scan starts from Scanner::begin().
int run_batch(const Arguments& a) {
    if (auto r = custguard::scan::detail::forbid_new_processes(); !r) {
        std::fprintf(stderr, "custguard-extract: %s\n", r.error().c_str());
        return kBadArguments;
    }
    const int requests = ::dup(STDIN_FILENO);
    if (requests < 0) return kBadArguments;
    ::close(STDIN_FILENO);
    auto scanner = [&]() -> tl::expected<scan::Scanner, std::string> {
        auto config = scanner_config(a);
        if (!config) return tl::unexpected(config.error());
        return scan::Scanner::create(std::move(*config), read_patterns(a.patterns));
    }();
    for (;;) {
        char mime[256];
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
        iovec iov{mime, sizeof mime};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        const ssize_t n = ::recvmsg(requests, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR) continue;
        if (n == 0) return 0;  // the launcher is done
        const cmsghdr* c = n > 0 ? CMSG_FIRSTHDR(&msg) : nullptr;
        if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)) ||
            (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
            std::fprintf(stderr, "custguard-extract: malformed request\n");
            return kBadArguments;
        }
        int document = -1;
        std::memcpy(&document, CMSG_DATA(c), sizeof document);
        if (document != STDIN_FILENO) {  // 0 is free between documents: the kernel may pick it
            if (::dup2(document, STDIN_FILENO) < 0) return kBadArguments;
            ::close(document);
        }
        const std::string hint(mime, ::strnlen(mime, static_cast<std::size_t>(n)));
        std::string answer;
        if (!may_need_ghostscript(hint)) {
            scan::frame::Result result;
            if (!scanner) result = tl::unexpected(scanner.error());
            else result = scan::scan_file(*scanner, "-", hint, a.extract);
            answer = scan::frame::encode(result);
        }
        ::close(STDIN_FILENO);
        const auto size = static_cast<std::uint32_t>(answer.size());
        const char length[4] = {static_cast<char>(size), static_cast<char>(size >> 8), static_cast<char>(size >> 16),
                                static_cast<char>(size >> 24)};
        if (!write_all(std::string_view(length, sizeof length)) || !write_all(answer)) return kCannotWrite;
    }
}

int run(const Arguments& a) {
    if (!may_need_ghostscript(a.mime))
        if (auto r = custguard::scan::detail::forbid_new_processes(); !r) {
            std::fprintf(stderr, "custguard-extract: %s\n", r.error().c_str());
            return kBadArguments;
        }
    scan::frame::Result result;
    auto config = scanner_config(a);
    if (!config) {
        result = tl::unexpected(config.error());
    } else if (auto scanner = scan::Scanner::create(std::move(*config), read_patterns(a.patterns)); !scanner) {
        result = tl::unexpected(scanner.error());
    } else {
        result = scan::scan_file(*scanner, "-", a.mime, a.extract);
    }
    return write_all(scan::frame::encode(result)) ? 0 : kCannotWrite;
}

}  // namespace

int main(int argc, char** argv) {
    Arguments args;
    const bool batch = argc > 1 && std::string_view(argv[1]) == "--batch";
    if (batch) {
        argv[1] = argv[0];
        ++argv;
        --argc;
    }
    if (!parse(argc, argv, args)) {
        std::fprintf(stderr, "custguard-extract: bad arguments (started by something other than custguardd?)\n");
        return kBadArguments;
    }
    try {
        return batch ? run_batch(args) : run(args);
    } catch (const std::bad_alloc&) {
        return kOutOfMemory;
    }
}
