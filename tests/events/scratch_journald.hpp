// A private systemd-journald for tests and the benchmark: a namespace instance
// (`systemd-journald NAMESPACE`), so it never collides with the host's journald or other
// tests, with its own socket (/run/systemd/journal.NAMESPACE/socket) and journal files,
// which are removed afterwards. Records are read back with sd-journal.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace custguard::events::testing {

using JournalEntry = std::map<std::string, std::string>;

class ScratchJournald {
public:
    explicit ScratchJournald(std::string name_space);
    ~ScratchJournald();
    ScratchJournald(const ScratchJournald&) = delete;
    ScratchJournald& operator=(const ScratchJournald&) = delete;

    // Start journald and wait until its socket accepts connections. Throws on failure.
    void start();
    // SIGTERM (or SIGKILL with hard = true) and reap it.
    void stop(bool hard = false);
    bool running() const { return pid_ > 0; }
    pid_t pid() const { return pid_; }

    const std::string& name_space() const { return ns_; }
    std::string socket_path() const;
    // Every entry whose `match` (e.g. "CUSTGUARD_RUN=...") holds, in journal order, with
    // all fields.
    std::vector<JournalEntry> read(const std::string& match) const;

private:
    std::string ns_;
    pid_t pid_ = -1;
    int stream_fd_ = -1;  // an open stdout stream: keeps the namespace journald from exiting idle
};

// A unique namespace name for this process ("cgev" + pid + suffix).
std::string unique_namespace(std::string_view suffix);

}  // namespace custguard::events::testing
