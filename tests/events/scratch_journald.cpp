#include "scratch_journald.hpp"

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-id128.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

namespace custguard::events::testing {

namespace {

struct JournalCloser {
    void operator()(sd_journal* j) const { sd_journal_close(j); }
};
using JournalPtr = std::unique_ptr<sd_journal, JournalCloser>;

bool can_connect(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
}

// A namespace instance of journald without an stdout stream or a varlink client exits once
// 30 s pass without a datagram. On a host the kernel's audit records (journald joins their
// multicast group) usually keep it busy; where none flow (the VM, with audit off between
// custguardd's turns) a test or benchmark that paused longer lost every later record. An
// open stdout stream, with its header and nothing more, keeps it running. -1 when the
// stream cannot be opened.
int open_stream(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    // identifier, unit, priority, level prefix, forward to syslog, kmsg, console
    static constexpr char header[] = "cg-scratch-journald\n\n6\n0\n0\n0\n0\n";
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::write(fd, header, sizeof header - 1) != static_cast<ssize_t>(sizeof header - 1)) {
        ::close(fd);
        return -1;
    }
    return fd;
}

std::string machine_id() {
    sd_id128_t id;
    if (sd_id128_get_machine(&id) < 0) return {};
    char text[SD_ID128_STRING_MAX];
    return sd_id128_to_string(id, text);
}

}  // namespace

std::string unique_namespace(std::string_view suffix) { return fmt::format("cgev{}{}", ::getpid(), suffix); }

ScratchJournald::ScratchJournald(std::string name_space) : ns_(std::move(name_space)) {}

ScratchJournald::~ScratchJournald() {
    stop();
    std::error_code ec;
    const std::string mid = machine_id();
    for (const char* dir : {"/var/log/journal", "/run/log/journal"})
        std::filesystem::remove_all(fmt::format("{}/{}.{}", dir, mid, ns_), ec);
    std::filesystem::remove_all(fmt::format("/run/systemd/journal.{}", ns_), ec);
}

std::string ScratchJournald::socket_path() const { return fmt::format("/run/systemd/journal.{}/socket", ns_); }

void ScratchJournald::start() {
    if (pid_ > 0) return;
    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        ::execl("/lib/systemd/systemd-journald", "systemd-journald", ns_.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    pid_ = pid;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
        if (can_connect(socket_path())) {
            stream_fd_ = open_stream(fmt::format("/run/systemd/journal.{}/stdout", ns_));
            if (stream_fd_ >= 0) return;
            stop(true);
            throw std::runtime_error(fmt::format("systemd-journald {}: cannot open an stdout stream", ns_));
        }
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            throw std::runtime_error(fmt::format("systemd-journald {} exited during start (status {})", ns_, status));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    stop(true);
    throw std::runtime_error("systemd-journald did not open its socket within 10 s");
}

void ScratchJournald::stop(bool hard) {
    if (stream_fd_ >= 0) ::close(stream_fd_);
    stream_fd_ = -1;
    if (pid_ <= 0) return;
    ::kill(pid_, hard ? SIGKILL : SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
}

std::vector<JournalEntry> ScratchJournald::read(const std::string& match) const {
    sd_journal* raw = nullptr;
    int r = sd_journal_open_namespace(&raw, ns_.c_str(), SD_JOURNAL_LOCAL_ONLY);
    if (r < 0) throw std::runtime_error(fmt::format("sd_journal_open_namespace: {}", std::strerror(-r)));
    JournalPtr j(raw);
    sd_journal_set_data_threshold(j.get(), 0);
    if (!match.empty()) {
        r = sd_journal_add_match(j.get(), match.data(), match.size());
        if (r < 0) throw std::runtime_error(fmt::format("sd_journal_add_match: {}", std::strerror(-r)));
    }
    std::vector<JournalEntry> out;
    while ((r = sd_journal_next(j.get())) > 0) {
        JournalEntry e;
        const void* data;
        size_t len;
        SD_JOURNAL_FOREACH_DATA(j.get(), data, len) {
            std::string_view kv(static_cast<const char*>(data), len);
            auto eq = kv.find('=');
            if (eq == std::string_view::npos) continue;
            e.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
        }
        out.push_back(std::move(e));
    }
    if (r < 0) throw std::runtime_error(fmt::format("sd_journal_next: {}", std::strerror(-r)));
    return out;
}

}  // namespace custguard::events::testing
