#include "custguard/events/journal.hpp"

#include <fcntl.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace custguard::events {

namespace {

std::string errno_text(std::string_view what) { return fmt::format("{}: {}", what, std::strerror(errno)); }

void append_field(std::string& out, std::string_view name, std::string_view value) {
    out += name;
    if (value.find('\n') == std::string_view::npos) {
        out += '=';
        out += value;
    } else {
        // Binary form: NAME\n, 64-bit little-endian length, value, \n.
        out += '\n';
        std::uint64_t len = value.size();
        for (int i = 0; i < 8; ++i) out += static_cast<char>((len >> (8 * i)) & 0xff);
        out += value;
    }
    out += '\n';
}

bool fill_address(sockaddr_un& addr, socklen_t& len, const std::string& path) {
    if (path.size() >= sizeof addr.sun_path) return false;
    std::memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    return true;
}

constexpr char spool_magic[8] = {'C', 'G', 'S', 'P', 'O', 'O', 'L', '1'};
constexpr std::uint64_t spool_header = 16;
constexpr std::uint32_t spool_max_frame = 64u << 20;

}  // namespace

std::string journal_socket_for_namespace(std::string_view name_space) {
    if (name_space.empty()) return std::string(default_journal_socket);
    return fmt::format("/run/systemd/journal.{}/socket", name_space);
}

std::string encode_native(const Record& record, std::string_view identifier) {
    std::string out;
    out.reserve(512);
    const KindInfo& k = info(record.kind);
    append_field(out, "MESSAGE_ID", k.message_id);
    append_field(out, "PRIORITY", std::to_string(k.priority));
    append_field(out, "SYSLOG_IDENTIFIER", identifier);
    append_field(out, "MESSAGE", record.message.empty() ? std::string_view(k.name) : std::string_view(record.message));
    for (const auto& f : record.fields)
        if (valid_field_name(f.name) && f.name != "MESSAGE" && f.name != "MESSAGE_ID" && f.name != "PRIORITY" &&
            f.name != "SYSLOG_IDENTIFIER")
            append_field(out, f.name, f.value);
    return out;
}

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = other.release();
    }
    return *this;
}

UniqueFd::~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
}

tl::expected<JournalSocket, std::string> JournalSocket::open(std::string path, int send_timeout_ms) {
    sockaddr_un addr;
    socklen_t len;
    if (!fill_address(addr, len, path)) return tl::make_unexpected(fmt::format("socket path too long: {}", path));
    UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) return tl::make_unexpected(errno_text("socket(AF_UNIX)"));
    timeval tv{send_timeout_ms / 1000, (send_timeout_ms % 1000) * 1000};
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
        return tl::make_unexpected(errno_text("SO_SNDTIMEO"));
    // Like libsystemd: a large send buffer so big records fit in one datagram.
    int size = 8 << 20;
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
        (void)::setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    return JournalSocket(std::move(fd), std::move(path));
}

SendStatus JournalSocket::send(std::string_view datagram) {
    sockaddr_un addr;
    socklen_t len;
    if (!fill_address(addr, len, path_)) return SendStatus::unreachable;
    for (;;) {
        ssize_t n = ::sendto(fd_.get(), datagram.data(), datagram.size(), MSG_NOSIGNAL,
                             reinterpret_cast<const sockaddr*>(&addr), len);
        if (n >= 0) return SendStatus::sent;
        if (errno == EINTR) continue;
        last_errno_ = errno;
        if (errno == EMSGSIZE) return SendStatus::too_large;
        // ENOENT, ECONNREFUSED: no journald; EAGAIN: stuck past SO_SNDTIMEO; anything else
        // we treat the same way, since the spool keeps the record either way.
        return SendStatus::unreachable;
    }
}

std::uint64_t JournalSocket::unread_bytes() const {
    int pending = 0;
    if (::ioctl(fd_.get(), SIOCOUTQ, &pending) < 0 || pending < 0) return 0;
    return static_cast<std::uint64_t>(pending);
}

bool JournalSocket::probe(const std::string& path) {
    sockaddr_un addr;
    socklen_t len;
    if (!fill_address(addr, len, path)) return false;
    UniqueFd probe(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!probe) return false;
    return ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), len) == 0;
}

tl::expected<Spool, std::string> Spool::open(std::filesystem::path path, std::uint64_t max_bytes) {
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    Spool s;
    s.path_ = std::move(path);
    s.max_bytes_ = std::max<std::uint64_t>(max_bytes, spool_header + 64);
    s.fd_ = UniqueFd(::open(s.path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!s.fd_) return tl::make_unexpected(errno_text(fmt::format("open {}", s.path_.string())));
    struct stat st{};
    if (::fstat(s.fd_.get(), &st) < 0) return tl::make_unexpected(errno_text("fstat spool"));
    const auto size = static_cast<std::uint64_t>(st.st_size);
    char header[spool_header] = {};
    bool valid = size >= spool_header && ::pread(s.fd_.get(), header, sizeof header, 0) == sizeof header &&
                 std::memcmp(header, spool_magic, 8) == 0;
    std::uint64_t offset = 0;
    if (valid) {
        std::memcpy(&offset, header + 8, 8);
        valid = offset >= spool_header && offset <= size;
    }
    if (!valid) {
        // Unknown content: start over, count what we threw away.
        s.corrupt_bytes_ = size;
        if (::ftruncate(s.fd_.get(), 0) < 0) return tl::make_unexpected(errno_text("truncate spool"));
        std::memcpy(header, spool_magic, 8);
        offset = spool_header;
        std::memcpy(header + 8, &offset, 8);
        if (::pwrite(s.fd_.get(), header, sizeof header, 0) != static_cast<ssize_t>(sizeof header))
            return tl::make_unexpected(errno_text("write spool header"));
        s.read_offset_ = s.end_offset_ = spool_header;
        return s;
    }
    // Walk the frames to count them and cut off a torn tail (crash during append).
    s.read_offset_ = offset;
    std::uint64_t pos = offset;
    while (pos + 4 <= size) {
        std::uint32_t len = 0;
        if (::pread(s.fd_.get(), &len, 4, static_cast<off_t>(pos)) != 4) break;
        if (len > spool_max_frame || pos + 4 + len > size) break;
        pos += 4 + len;
        ++s.pending_records_;
    }
    s.end_offset_ = pos;
    if (pos < size) {
        s.corrupt_bytes_ = size - pos;
        if (::ftruncate(s.fd_.get(), static_cast<off_t>(pos)) < 0) return tl::make_unexpected(errno_text("truncate spool"));
    }
    return s;
}

tl::expected<bool, std::string> Spool::append(std::string_view datagram) {
    if (datagram.size() > spool_max_frame) return false;
    const std::uint64_t frame = 4 + datagram.size();
    if (end_offset_ + frame > max_bytes_) return false;
    std::uint32_t len = static_cast<std::uint32_t>(datagram.size());
    iovec iov[2] = {{&len, 4}, {const_cast<char*>(datagram.data()), datagram.size()}};
    ssize_t n = ::pwritev(fd_.get(), iov, 2, static_cast<off_t>(end_offset_));
    if (n != static_cast<ssize_t>(frame)) {
        // Leave no half frame behind.
        (void)::ftruncate(fd_.get(), static_cast<off_t>(end_offset_));
        return tl::make_unexpected(errno_text("write spool"));
    }
    end_offset_ += frame;
    ++pending_records_;
    return true;
}

tl::expected<std::optional<Spool::Frame>, std::string> Spool::read_at(std::uint64_t cursor) {
    if (cursor >= end_offset_) return std::optional<Frame>{};
    std::uint32_t len = 0;
    if (::pread(fd_.get(), &len, 4, static_cast<off_t>(cursor)) != 4 || len > spool_max_frame ||
        cursor + 4 + len > end_offset_) {
        corrupt_bytes_ += end_offset_ - cursor;
        end_offset_ = cursor;
        (void)::ftruncate(fd_.get(), static_cast<off_t>(cursor));
        return std::optional<Frame>{};
    }
    Frame f;
    f.datagram.resize(len);
    if (::pread(fd_.get(), f.datagram.data(), len, static_cast<off_t>(cursor + 4)) != static_cast<ssize_t>(len))
        return tl::make_unexpected(errno_text("read spool"));
    f.next = cursor + 4 + len;
    return std::optional<Frame>(std::move(f));
}

tl::expected<void, std::string> Spool::commit(std::uint64_t cursor, std::uint64_t records) {
    read_offset_ = std::min(std::max(cursor, read_offset_), end_offset_);
    pending_records_ = records > pending_records_ ? 0 : pending_records_ - records;
    if (read_offset_ >= end_offset_) {
        // Replayed completely: compact so the bound applies to live data only.
        if (::ftruncate(fd_.get(), static_cast<off_t>(spool_header)) < 0) return tl::make_unexpected(errno_text("truncate spool"));
        read_offset_ = end_offset_ = spool_header;
        pending_records_ = 0;
    }
    return write_offset();
}

tl::expected<void, std::string> Spool::write_offset() {
    if (::pwrite(fd_.get(), &read_offset_, 8, 8) != 8) return tl::make_unexpected(errno_text("write spool offset"));
    return {};
}

tl::expected<void, std::string> Spool::sync() {
    if (::fdatasync(fd_.get()) < 0) return tl::make_unexpected(errno_text("fdatasync spool"));
    return {};
}

}  // namespace custguard::events
