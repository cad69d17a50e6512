#include "daemon/notify/queue.hpp"

#include <optional>

#include <fmt/format.h>

#include "custguard/common/atomic_file.hpp"
#include "custguard/common/policy_files.hpp"

namespace custguard::notify {

namespace fs = std::filesystem;

namespace {
constexpr std::string_view magic = "custguard-notify 1\n";

fs::path file_of(const fs::path& dir, std::uint64_t id) { return dir / fmt::format("{:020}.msg", id); }

// Header values are single lines; the subject is sanitized when built, but be safe.
std::string one_line(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c == '\n' || c == '\r') c = ' ';
    return out;
}
}  // namespace

std::string_view to_string(Channel channel) { return channel == Channel::mail ? "mail" : "webhook"; }

std::string serialize_message(const Message& m) {
    std::string out(magic);
    out += "id: " + std::to_string(m.id) + "\n";
    out += "target: " + one_line(m.target) + "\n";
    out += "channel: " + std::string(to_string(m.channel)) + "\n";
    out += "kind: " + one_line(m.kind) + "\n";
    out += "created: " + std::to_string(m.created) + "\n";
    out += "subject: " + one_line(m.subject) + "\n";
    out += "address: " + one_line(m.address) + "\n";
    out += "length: " + std::to_string(m.body.size()) + "\n\n";
    out += m.body;
    return out;
}

tl::expected<Message, std::string> parse_message(std::string_view text) {
    if (text.substr(0, magic.size()) != magic) return tl::make_unexpected(std::string("not a custguard notify message"));
    text.remove_prefix(magic.size());
    Message m;
    std::optional<std::size_t> length;
    bool have_channel = false;
    for (;;) {
        const auto nl = text.find('\n');
        if (nl == std::string_view::npos) return tl::make_unexpected(std::string("truncated header"));
        const std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl + 1);
        if (line.empty()) break;
        const auto colon = line.find(": ");
        if (colon == std::string_view::npos) return tl::make_unexpected("bad header line: " + std::string(line));
        const std::string_view key = line.substr(0, colon), value = line.substr(colon + 2);
        try {
            if (key == "id") m.id = std::stoull(std::string(value));
            else if (key == "target") m.target = value;
            else if (key == "channel") {
                if (value == "mail") m.channel = Channel::mail;
                else if (value == "webhook") m.channel = Channel::webhook;
                else return tl::make_unexpected("unknown channel " + std::string(value));
                have_channel = true;
            } else if (key == "kind") m.kind = value;
            else if (key == "created") m.created = std::stoll(std::string(value));
            else if (key == "subject") m.subject = value;
            else if (key == "address") m.address = value;
            else if (key == "length") length = std::stoull(std::string(value));
        } catch (const std::exception&) {
            return tl::make_unexpected("bad value in " + std::string(line));
        }
    }
    if (!length || !have_channel || m.target.empty() || m.address.empty()) return tl::make_unexpected(std::string("incomplete header"));
    if (text.size() != *length) return tl::make_unexpected(std::string("body length mismatch"));
    m.body = text;
    return m;
}

tl::expected<DurableQueue, std::string> DurableQueue::open(const fs::path& dir, std::size_t max_messages) {
    DurableQueue q;
    q.dir_ = dir;
    q.max_ = max_messages;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return tl::make_unexpected(dir.string() + ": " + ec.message());
    fs::permissions(dir, fs::perms::owner_all, ec);  // messages name users and paths
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        const auto name = entry.path().filename().string();
        if (name.size() != 24 || name.substr(20) != ".msg") continue;  // temp files of a crashed write stay ignored
        auto text = common::read_file(entry.path());
        tl::expected<Message, std::string> m = text ? parse_message(*text) : tl::make_unexpected(text.error());
        if (!m || m->id == 0 || file_of(dir, m->id) != entry.path()) {
            ++q.corrupt_;
            fs::remove(entry.path(), ec);
            continue;
        }
        q.next_id_ = std::max(q.next_id_, m->id + 1);
        q.messages_.emplace(m->id, std::move(*m));
    }
    if (ec) return tl::make_unexpected(dir.string() + ": " + ec.message());
    q.replayed_ = q.messages_.size();
    return q;
}

tl::expected<bool, std::string> DurableQueue::push(Message& m) {
    if (messages_.size() >= max_) {
        ++overflow_;
        return false;
    }
    m.id = next_id_;
    if (auto w = common::write_file_atomically(file_of(dir_, m.id), serialize_message(m)); !w)
        return tl::make_unexpected(w.error());
    ++next_id_;
    messages_.emplace(m.id, m);
    return true;
}

tl::expected<void, std::string> DurableQueue::remove(std::uint64_t id) {
    messages_.erase(id);
    std::error_code ec;
    fs::remove(file_of(dir_, id), ec);
    if (ec) return tl::make_unexpected(file_of(dir_, id).string() + ": " + ec.message());
    return {};
}

std::vector<Message> DurableQueue::pending() const {
    std::vector<Message> out;
    out.reserve(messages_.size());
    for (const auto& [id, m] : messages_) out.push_back(m);
    return out;
}

Message* DurableQueue::find(std::uint64_t id) {
    auto it = messages_.find(id);
    return it == messages_.end() ? nullptr : &it->second;
}

}  // namespace custguard::notify
