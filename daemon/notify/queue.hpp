// The durable outgoing queue: one file per message in <state_dir>/notify/queue/, named by
// a 20-digit sequence number and written atomically (temp file, fsync, rename), so a crash
// leaves each message either absent or whole. Messages are delivered in sequence order
// per (target, channel); a restarted daemon replays what is left. Bounded: a push beyond
// max_messages is refused and counted (the caller reports it as a `lost` record).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <tl/expected.hpp>

namespace custguard::notify {

enum class Channel : std::uint8_t { mail, webhook };
std::string_view to_string(Channel channel);

struct Message {
    std::uint64_t id = 0;       // assigned by push(); delivery order
    std::string target;         // notify target name
    Channel channel = Channel::mail;
    std::string kind;           // "alert" | "digest"
    std::int64_t created = 0;   // seconds since the epoch
    std::string subject;        // mail: UTF-8 subject; webhook: a short summary
    std::string body;           // mail: UTF-8 text; webhook: the JSON document
    std::string address;        // mail: recipients, comma-separated; webhook: the URL
    // Not persisted: after a restart every message is tried again at once.
    std::uint32_t attempts = 0;
    std::int64_t next_attempt_ms = 0;  // steady-clock milliseconds
};

std::string serialize_message(const Message& message);
tl::expected<Message, std::string> parse_message(std::string_view text);

class DurableQueue {
public:
    static tl::expected<DurableQueue, std::string> open(const std::filesystem::path& dir, std::size_t max_messages);

    // false: the queue is full and the message was not stored (counted in overflow()).
    tl::expected<bool, std::string> push(Message& message);
    tl::expected<void, std::string> remove(std::uint64_t id);

    // Messages in id order (a copy; the caller delivers without holding our lock).
    std::vector<Message> pending() const;
    const std::map<std::uint64_t, Message>& messages() const { return messages_; }
    Message* find(std::uint64_t id);
    std::size_t size() const { return messages_.size(); }
    std::size_t capacity() const { return max_; }
    std::uint64_t overflow() const { return overflow_; }
    std::uint64_t corrupt() const { return corrupt_; }  // unreadable files found at open (removed)
    std::uint64_t replayed() const { return replayed_; }  // messages found at open

private:
    std::filesystem::path dir_;
    std::size_t max_ = 0;
    std::uint64_t next_id_ = 1;
    std::uint64_t overflow_ = 0;
    std::uint64_t corrupt_ = 0;
    std::uint64_t replayed_ = 0;
    std::map<std::uint64_t, Message> messages_;
};

}  // namespace custguard::notify
