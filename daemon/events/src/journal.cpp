#include "custguard/events/journal.hpp"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

#include "custguard/common/text_escape.hpp"

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
    // MESSAGE is what `journalctl` prints: escaped, so a file name with a newline or an
    // escape sequence cannot forge a line or drive a terminal. The CUSTGUARD_* fields keep
    // the exact bytes (the binary form carries newlines).
    append_field(out, "MESSAGE", common::escape_text(record.message.empty() ? std::string_view(k.name)
                                                                            : std::string_view(record.message)));
    for (const auto& f : record.fields)
        if (valid_field_name(f.name) && f.name != "MESSAGE" && f.name != "MESSAGE_ID" && f.name != "PRIORITY" &&
            f.name != "SYSLOG_IDENTIFIER")
            append_field(out, f.name, f.value);
    return out;
}

tl::expected<JournalSocket, std::string> JournalSocket::open(std::string path) {
    sockaddr_un addr;
    socklen_t len;
    if (!fill_address(addr, len, path)) return tl::make_unexpected(fmt::format("socket path too long: {}", path));
    UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) return tl::make_unexpected(errno_text("socket(AF_UNIX)"));
    // Like libsystemd: a large send buffer so big records fit in one datagram.
    int size = 8 << 20;
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
        (void)::setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    JournalSocket s(std::move(fd), std::move(path));
    (void)s.connect();  // journald may come later
    return s;
}

bool JournalSocket::connect() {
    sockaddr_un addr;
    socklen_t len;
    if (!fill_address(addr, len, path_)) return false;
    // Re-connecting a datagram socket just changes its peer (a restarted journald).
    connected_ = ::connect(fd_.get(), reinterpret_cast<const sockaddr*>(&addr), len) == 0;
    if (!connected_) last_errno_ = errno;
    return connected_;
}

SendStatus JournalSocket::send(std::string_view datagram, int wait_ms) {
    if (!connected_ && !connect()) return SendStatus::unreachable;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
    for (;;) {
        ssize_t n = ::send(fd_.get(), datagram.data(), datagram.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n >= 0) return SendStatus::sent;
        if (errno == EINTR) continue;
        last_errno_ = errno;
        if (errno == EMSGSIZE) return SendStatus::too_large;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return SendStatus::busy;
            pollfd p{fd_.get(), POLLOUT, 0};
            (void)::poll(&p, 1, static_cast<int>(left.count()));
            continue;
        }
        // ECONNREFUSED, ENOTCONN, ECONNRESET, ENOENT: journald is gone (or restarted: the
        // next send connects to the new one).
        connected_ = false;
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
    // The bound is on live (unreplayed) bytes; replayed ones are punched out (commit).
    if (end_offset_ - read_offset_ + spool_header + frame > max_bytes_) return false;
    std::uint32_t len = static_cast<std::uint32_t>(datagram.size());
    iovec iov[2] = {{&len, 4}, {const_cast<char*>(datagram.data()), datagram.size()}};
    ssize_t n = ::pwritev(fd_.get(), iov, 2, static_cast<off_t>(end_offset_));
    if (n != static_cast<ssize_t>(frame)) {
        std::string why = n < 0 ? errno_text("write spool") : fmt::format("write spool: {} of {} bytes written", n, frame);
        // Leave no half frame behind; one that stays is cut at the next open (read_at).
        if (::ftruncate(fd_.get(), static_cast<off_t>(end_offset_)) != 0) why += "; " + errno_text("truncate spool");
        return tl::make_unexpected(why);
    }
    end_offset_ += frame;
    ++pending_records_;
    return true;
}

bool Spool::read_cached(std::uint64_t offset, void* out, std::size_t size) {
    // Replay reads frames in order: read ahead in 64 KiB blocks instead of two preads each.
    if (offset < cache_offset_ || offset + size > cache_offset_ + cache_.size()) {
        const std::size_t want = std::max<std::size_t>(size, 64 << 10);
        const std::uint64_t avail = end_offset_ > offset ? end_offset_ - offset : 0;
        cache_.resize(static_cast<std::size_t>(std::min<std::uint64_t>(want, avail)));
        ssize_t n = ::pread(fd_.get(), cache_.data(), cache_.size(), static_cast<off_t>(offset));
        cache_.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
        cache_offset_ = offset;
        if (cache_.size() < size) return false;
    }
    std::memcpy(out, cache_.data() + (offset - cache_offset_), size);
    return true;
}

tl::expected<std::optional<Spool::Frame>, std::string> Spool::read_at(std::uint64_t cursor) {
    if (cursor >= end_offset_) return std::optional<Frame>{};
    std::uint32_t len = 0;
    if (!read_cached(cursor, &len, 4) || len > spool_max_frame || cursor + 4 + len > end_offset_) {
        corrupt_bytes_ += end_offset_ - cursor;
        end_offset_ = cursor;
        // A cut that fails (a read-only disk) is made again here at the next open.
        (void)!::ftruncate(fd_.get(), static_cast<off_t>(cursor));
        cache_.clear();
        return std::optional<Frame>{};
    }
    Frame f;
    f.datagram.resize(len);
    if (!read_cached(cursor + 4, f.datagram.data(), len)) return tl::make_unexpected(errno_text("read spool"));
    f.next = cursor + 4 + len;
    return std::optional<Frame>(std::move(f));
}

tl::expected<void, std::string> Spool::commit(std::uint64_t cursor, std::uint64_t records) {
    read_offset_ = std::min(std::max(cursor, read_offset_), end_offset_);
    pending_records_ = records > pending_records_ ? 0 : pending_records_ - records;
    if (read_offset_ >= end_offset_) {
        // Replayed completely: start over at the beginning.
        if (::ftruncate(fd_.get(), static_cast<off_t>(spool_header)) < 0) return tl::make_unexpected(errno_text("truncate spool"));
        read_offset_ = end_offset_ = spool_header;
        pending_records_ = 0;
        punched_ = 0;
        cache_.clear();
        cache_offset_ = 0;
    } else if (read_offset_ - punched_ >= (1u << 20)) {
        // Still draining while new records arrive behind: give the replayed blocks back to
        // the file system so disk use stays within the bound (offsets keep growing).
        const std::uint64_t to = read_offset_ & ~std::uint64_t{4095};
        const std::uint64_t from = std::max<std::uint64_t>(punched_, 4096);
        if (to > from &&
            ::fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(from),
                        static_cast<off_t>(to - from)) == 0)
            punched_ = to;
        else
            punched_ = read_offset_;  // unsupported: the dead prefix stays until the spool drains
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
