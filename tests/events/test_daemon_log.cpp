// custguardd's own log lines under systemd: stdout is a journald stream, and each line
// must reach the journal at its own priority (regression: every warning was filed at
// priority 6, so `journalctl -p warning -u custguardd` showed none). The daemon runs
// with its stdout connected to a scratch journald's stdout socket exactly as systemd
// connects a service (stream header, $JOURNAL_STREAM), and the entries are read back.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "scratch_journald.hpp"
#include "support/exec_plan.hpp"
#include "support/support.hpp"

using custguard::events::testing::JournalEntry;
using custguard::events::testing::ScratchJournald;
using custguard::events::testing::unique_namespace;
using namespace std::chrono_literals;

namespace {

// A stream connection to journald as systemd makes one for a service's stdout: the
// header is identifier, unit, default priority, level prefix on, no forwarding.
int journal_stream(const std::string& ns, const std::string& identifier) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string path = "/run/systemd/journal." + ns + "/stdout";
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    INFO(path);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    const std::string header = identifier + "\n\n6\n1\n0\n0\n0\n";
    REQUIRE(::write(fd, header.data(), header.size()) == static_cast<ssize_t>(header.size()));
    return fd;
}

}  // namespace

TEST_CASE("custguardd's warnings reach the journal at warning priority", "[daemon-log]") {
    ScratchJournald journald(unique_namespace("log"));
    journald.start();
    const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("cglog." + std::to_string(::getpid()));
    std::filesystem::create_directories(dir / "state");
    cgtest::spit(dir / "policy.toml", "[daemon]\nenforcer = \"none\"\n");
    const std::string identifier = "cglog" + std::to_string(::getpid());
    const int stream = journal_stream(journald.name_space(), identifier);
    struct stat st {};
    REQUIRE(::fstat(stream, &st) == 0);

    // No bus at this address: the daemon warns "control plane off" and runs on.
    const cgtest::ExecPlan plan({CG_CUSTGUARDD, "--policy", (dir / "policy.toml").string(), "--state-dir",
                                 (dir / "state").string(), "--no-journal", "--no-audit", "--bus-address",
                                 "unix:path=" + (dir / "no-bus").string()},
                                {"JOURNAL_STREAM=" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino)},
                                {"NOTIFY_SOCKET"});
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::dup2(stream, 1);
        ::dup2(stream, 2);
        plan.exec();
    }
    ::close(stream);

    JournalEntry warning, info;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline && (warning.empty() || info.empty())) {
        for (const auto& e : journald.read("SYSLOG_IDENTIFIER=" + identifier)) {
            const auto m = e.find("MESSAGE");
            if (m == e.end()) continue;
            if (m->second.find("control plane off") != std::string::npos) warning = e;
            if (m->second.find("enforcer") != std::string::npos && m->second.rfind("info:", 0) == 0) info = e;
        }
        std::this_thread::sleep_for(100ms);
    }
    ::kill(pid, SIGTERM);
    int status = 0;
    ::waitpid(pid, &status, 0);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);

    REQUIRE(!warning.empty());
    CHECK(warning["PRIORITY"] == "4");
    CHECK(warning["MESSAGE"].rfind("warning: control plane off", 0) == 0);  // the prefix is consumed
    REQUIRE(!info.empty());
    CHECK(info["PRIORITY"] == "6");
}
