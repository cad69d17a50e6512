// custguardd on a CPU without SSSE3 (cg-vm-run's default qemu64 model), where Hyperscan,
// the print gate's scanner, cannot run. Regression: the daemon refused to start at all
// ("Unsupported architecture"), so a server lost its file enforcement over printing.
// Now it starts, says why content scanning is off, and every print document counts as
// unreadable ([print] unreadable decides; hold by default).
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

bool cpu_has_ssse3()
{
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("flags", 0) == 0)
            return (" " + line + " ").find(" ssse3 ") != std::string::npos;
    return false;
}

std::string slurp(const std::string& path)
{
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

TEST_CASE("without SSSE3 the daemon starts and print content scanning is reported off", "[vm]")
{
    REQUIRE_FALSE(cpu_has_ssse3());  // the premise: cg-vm-run's CPU model lacks it
    const std::string dir = "/tmp/cg-nossse3";
    ::mkdir(dir.c_str(), 0700);
    ::mkdir((dir + "/state").c_str(), 0700);
    std::ofstream(dir + "/policy.toml") << "[daemon]\nenforcer = \"none\"\n\n[print]\naction = \"hold\"\n";
    const std::string log = dir + "/log";
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        ::execl(CG_CUSTGUARDD, CG_CUSTGUARDD, "--policy", (dir + "/policy.toml").c_str(), "--state-dir",
                (dir + "/state").c_str(), "--no-journal", "--no-audit", "--bus-address",
                "unix:path=/nonexistent", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    bool up = false, exited = false;
    for (int i = 0; i < 300 && !up && !exited; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        up = slurp(log).find("control plane off") != std::string::npos;
        exited = ::waitpid(pid, nullptr, WNOHANG) == pid;
    }
    const std::string out = slurp(log);
    INFO(out);
    if (!exited) {
        ::kill(pid, SIGTERM);
        ::waitpid(pid, nullptr, 0);
    }
    CHECK_FALSE(exited);
    CHECK(up);
    CHECK(out.find("print content scanning unavailable: this CPU lacks SSSE3") != std::string::npos);
    CHECK(out.find("Unsupported architecture") == std::string::npos);
}

TEST_CASE("without SSSE3 custguardctl scan says what is missing", "[vm]")
{
    REQUIRE_FALSE(cpu_has_ssse3());
    const std::string dir = "/tmp/cg-nossse3-scan";
    ::mkdir(dir.c_str(), 0700);
    std::ofstream(dir + "/doc.txt") << "meeting notes\n";
    const std::string log = dir + "/log";
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        ::execl(CG_CUSTGUARDCTL, CG_CUSTGUARDCTL, "scan", (dir + "/doc.txt").c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    const std::string out = slurp(log);
    INFO(out);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 2);
    CHECK(out.find("this CPU lacks SSSE3, which Hyperscan needs") != std::string::npos);
}
