#include "custguard/common/atomic_file.hpp"
#include "custguard/common/unique_fd.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace custguard::common {
namespace {

using Fd = UniqueFd;

std::string fail(const std::filesystem::path& p, const char* what) {
    return p.string() + ": " + what + ": " + std::strerror(errno);
}

}  // namespace

tl::expected<void, std::string> write_file_atomically(const std::filesystem::path& path,
                                                      std::string_view contents, mode_t mode) {
    auto dir = path.parent_path();
    std::string tmpl = (dir / ("." + path.filename().string() + ".XXXXXX")).string();
    Fd fd(::mkostemp(tmpl.data(), O_CLOEXEC));
    if (fd.get() < 0) return tl::unexpected(fail(dir, "cannot create a temporary file"));
    std::filesystem::path tmp(tmpl);
    auto cleanup = [&] { ::unlink(tmp.c_str()); };
    if (::fchmod(fd.get(), mode) != 0) { cleanup(); return tl::unexpected(fail(tmp, "chmod")); }
    const char* p = contents.data();
    std::size_t left = contents.size();
    while (left > 0) {
        ssize_t n = ::write(fd.get(), p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            cleanup();
            return tl::unexpected(fail(tmp, "write"));
        }
        p += n;
        left -= static_cast<std::size_t>(n);
    }
    if (::fsync(fd.get()) != 0) { cleanup(); return tl::unexpected(fail(tmp, "fsync")); }
    if (::close(fd.release()) != 0) { cleanup(); return tl::unexpected(fail(tmp, "close")); }
    if (::rename(tmp.c_str(), path.c_str()) != 0) { cleanup(); return tl::unexpected(fail(path, "rename")); }
    Fd dfd(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dfd.get() >= 0) ::fsync(dfd.get());  // make the rename itself durable
    return {};
}

}  // namespace custguard::common
