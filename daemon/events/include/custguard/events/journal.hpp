// journald transport. We speak the native protocol on our own AF_UNIX datagram socket
// instead of sd_journal_send(), because sd_journal_send() reports success when no journald
// is listening and so loses records silently. sendto() tells us: ENOENT / ECONNREFUSED
// mean "unreachable", and then records go to the spool.
#pragma once

#include <cstdint>
#include <deque>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "custguard/common/unique_fd.hpp"
#include "custguard/events/record.hpp"

namespace custguard::events {

inline constexpr std::string_view default_journal_socket = "/run/systemd/journal/socket";
inline constexpr std::string_view syslog_identifier = "custguardd";

// The socket of a journald namespace ("" = the default one).
std::string journal_socket_for_namespace(std::string_view name_space);

// A Record in journald's native protocol (systemd.io/JOURNAL_NATIVE_PROTOCOL): MESSAGE,
// MESSAGE_ID, PRIORITY, SYSLOG_IDENTIFIER, then the fields. Values holding a newline use
// the length-prefixed binary form. Invalid field names are skipped.
std::string encode_native(const Record& record, std::string_view identifier = syslog_identifier);

using common::UniqueFd;

enum class SendStatus : std::uint8_t {
    sent,         // queued in journald's socket
    unreachable,  // no journald (no socket, nobody bound, or stuck past the send timeout)
    too_large,    // journald cannot take it (larger than the socket buffer)
    busy,         // journald's queue stayed full for the whole wait
};

// A datagram socket connected to journald's. Connected, because then poll(POLLOUT)
// waits for room in journald's queue, so a busy journald costs no spinning.
class JournalSocket {
public:
    static tl::expected<JournalSocket, std::string> open(std::string path);

    // Waits up to `wait_ms` for room in journald's queue (0: never blocks); `busy` when
    // there was none. `unreachable` when nothing is bound to the path (any more).
    SendStatus send(std::string_view datagram, int wait_ms = 0);
    // True when journald has read everything we sent (our unread bytes, SIOCOUTQ, are 0).
    // Datagrams still queued when journald dies are discarded by the kernel; the pipeline
    // keeps them until it knows they were read.
    bool drained() const { return unread_bytes() == 0; }
    // Bytes of our datagrams journald has not read yet (kernel memory, so each datagram
    // counts at least its length plus an sk_buff).
    std::uint64_t unread_bytes() const;
    // Is something bound to the socket path? (connect() on a fresh socket; sends nothing)
    bool reachable() const { return probe(path_); }
    static bool probe(const std::string& path);
    // Connect (again): after journald restarted, our old peer is gone.
    bool reconnect() { return connect(); }
    const std::string& path() const { return path_; }
    // errno of the last failed send (0 if none).
    int last_errno() const { return last_errno_; }

private:
    JournalSocket(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
    bool connect();
    UniqueFd fd_;
    std::string path_;
    bool connected_ = false;
    int last_errno_ = 0;
};

// Bounded, append-only file of encoded records waiting for journald, replayed in order.
// Layout: "CGSPOOL1", u64 replay offset, then frames of u32 length + datagram. The bound
// applies to unreplayed bytes; replayed ones are punched out of the file while it drains
// (FALLOC_FL_PUNCH_HOLE) and the file is truncated once it is empty. Survives restarts.
class Spool {
public:
    static tl::expected<Spool, std::string> open(std::filesystem::path path, std::uint64_t max_bytes);

    // false when the record does not fit under max_bytes (the caller counts it as lost).
    tl::expected<bool, std::string> append(std::string_view datagram);

    // Replay works with a cursor so that a record leaves the spool only once journald has
    // read it (commit), not when it was sent: if journald dies in between, the next replay
    // starts again at the committed offset.
    std::uint64_t begin() const { return read_offset_; }
    std::uint64_t end() const { return end_offset_; }
    struct Frame {
        std::string datagram;
        std::uint64_t next = 0;  // cursor after this frame
    };
    // The frame at `cursor`, or nullopt at the end. A corrupt frame cuts the spool off
    // there (counted in corrupt_bytes()).
    tl::expected<std::optional<Frame>, std::string> read_at(std::uint64_t cursor);
    // Everything before `cursor` (`records` frames since the last commit) is delivered.
    tl::expected<void, std::string> commit(std::uint64_t cursor, std::uint64_t records);
    tl::expected<void, std::string> sync();

    bool empty() const { return read_offset_ >= end_offset_; }
    std::uint64_t pending_records() const { return pending_records_; }
    std::uint64_t size_bytes() const { return end_offset_ - read_offset_ + 16; }  // live bytes
    std::uint64_t corrupt_bytes() const { return corrupt_bytes_; }
    const std::filesystem::path& path() const { return path_; }

private:
    Spool() = default;
    tl::expected<void, std::string> write_offset();
    bool read_cached(std::uint64_t offset, void* out, std::size_t size);

    UniqueFd fd_;
    std::filesystem::path path_;
    std::uint64_t max_bytes_ = 0;
    std::uint64_t read_offset_ = 0;
    std::uint64_t end_offset_ = 0;
    std::uint64_t pending_records_ = 0;
    std::uint64_t corrupt_bytes_ = 0;
    std::uint64_t punched_ = 0;  // file blocks before this offset have been freed
    std::vector<char> cache_;    // read-ahead for replay
    std::uint64_t cache_offset_ = 0;
};

}  // namespace custguard::events
