// A stand-in for custguard-extract, started by scan_sandboxed() in its place: it tries what
// a compromised reader would (network, new files, namespaces, ptrace, leaving the process
// group) and reports each outcome as the errno name in the reason of an unreadable result.
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>

namespace {

std::string outcome(int rc) { return rc >= 0 ? "allowed" : strerrorname_np(errno); }

// scan/src/frame.hpp, written out independently: an unreadable result with `reason`.
std::string result(const std::string& reason) {
    std::string out("CGX\x02", 4);
    auto record = [&](std::uint8_t tag, const std::string& value) {
        out += static_cast<char>(tag);
        for (int i = 0; i < 4; ++i) out += static_cast<char>((value.size() >> (8 * i)) & 0xFF);
        out += value;
    };
    record(1, std::string(1, '\x04'));  // doc_type unknown
    record(2, std::string(4, '\0'));    // pages
    record(3, std::string(4, '\0'));    // pages_without_text
    record(4, std::string(1, '\0'));    // not readable
    record(5, reason);
    record(6, "");                      // encoding
    record(7, std::string(8, '\0'));    // text_bytes
    record(8, std::string(7 * 8, '\0'));  // findings
    record(0xFF, "");
    return out;
}

}  // namespace

int main() {
    std::string report;
    auto add = [&](const char* what, int rc) { report += std::string(report.empty() ? "" : " ") + what + "=" + outcome(rc); };
    add("inet", ::socket(AF_INET, SOCK_STREAM, 0));
    add("unix", ::socket(AF_UNIX, SOCK_STREAM, 0));
    add("create", ::open(("/tmp/cgscan-probe." + std::to_string(::getpid())).c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600));
    add("userns", ::unshare(CLONE_NEWUSER));
    add("setsid", ::setsid());
    add("setpgid", ::setpgid(0, 0));
    add("ptrace", static_cast<int>(::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr)));
    add("read", ::open("/etc/hostname", O_RDONLY));
    const auto out = result(report);
    return ::write(1, out.data(), out.size()) == static_cast<ssize_t>(out.size()) ? 0 : 1;
}
