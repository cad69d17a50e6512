// The fd store keeps enforcement across a kill -9 restart: a holder process plays systemd
// (NOTIFY_SOCKET, FDSTORE=1, LISTEN_FDS) for a small daemon around the enforcer.
#include <catch2/catch.hpp>

#include <signal.h>

#include <fstream>

#include "sandbox.hpp"

using namespace std::chrono_literals;
using cgtest::Cred;

namespace {

struct RestartRun {
    int opened = 0;   // opens by an unlisted user that succeeded
    int denied = 0;
    bool prober_finished = false;
    std::vector<std::string> status;  // "<pid> READY <STATUS>" lines from the holder
};

std::vector<std::string> read_lines(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
}

bool wait_lines(const std::string& path, std::size_t n, std::chrono::milliseconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
        if (read_lines(path).size() >= n) return true;
        std::this_thread::sleep_for(10ms);
    }
    return false;
}

RestartRun kill_and_restart(bool store) {
    RestartRun run;
    cgtest::Tmpfs fs;
    REQUIRE(fs.ok());
    fs.mkdir("zone");
    fs.write("zone/a.txt");
    // The status file must not live on the marked filesystem: the holder writes it while
    // opens there wait for the restarted daemon.
    char status_tmpl[] = "/tmp/cgfan-status.XXXXXX";
    int sfd = ::mkstemp(status_tmpl);
    REQUIRE(sfd >= 0);
    ::close(sfd);
    std::string status = status_tmpl;

    // Forked children make system calls only (see tests/support/exec_plan.hpp).
    std::vector<const char*> args = {CG_FDSTORE_HOLDER};
    if (!store) args.push_back("--no-store");
    const std::string zone = fs.path("zone");
    for (const char* a : {"--restart-delay-ms", "400", status.c_str(), "--", CG_FANOTIFY_TESTD, zone.c_str(), "60001"})
        args.push_back(a);
    args.push_back(nullptr);
    pid_t holder = ::fork();
    if (holder == 0) {
        ::execv(args[0], const_cast<char**>(args.data()));
        ::_exit(127);
    }
    REQUIRE(wait_lines(status, 1, 5s));
    pid_t daemon_pid = std::stoi(read_lines(status)[0]);

    int pipefd[2];
    REQUIRE(::pipe(pipefd) == 0);
    std::string file = fs.path("zone/a.txt");
    pid_t prober = ::fork();
    if (prober == 0) {
        ::close(pipefd[0]);
        ::dup2(pipefd[1], 3);
        ::close_range(4, ~0u, 0);  // see cgtest::run_as
        pipefd[1] = 3;
        ::alarm(20);  // an unanswered event would hang us: fail instead
        if (::setresgid(60009, 60009, 60009) || ::setresuid(60009, 60009, 60009)) ::_exit(120);
        int counts[2] = {0, 0};  // opened, denied
        auto until = std::chrono::steady_clock::now() + 2500ms;
        while (std::chrono::steady_clock::now() < until) {
            int r = cgtest::open_read(file, cgtest::Via::open);
            if (r == 0) ++counts[0];
            else if (r == EPERM) ++counts[1];
        }
        (void)!::write(pipefd[1], counts, sizeof counts);
        ::_exit(0);
    }
    ::close(pipefd[1]);
    std::this_thread::sleep_for(300ms);
    ::kill(daemon_pid, SIGKILL);
    CHECK(wait_lines(status, 2, 10s));

    int st = 0;
    ::waitpid(prober, &st, 0);
    run.prober_finished = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    int counts[2] = {0, 0};
    (void)!::read(pipefd[0], counts, sizeof counts);
    ::close(pipefd[0]);
    run.opened = counts[0];
    run.denied = counts[1];

    ::kill(holder, SIGTERM);
    ::waitpid(holder, &st, 0);
    run.status = read_lines(status);
    ::unlink(status.c_str());
    return run;
}

}  // namespace

TEST_CASE("fd store: kill -9 and restart re-adopt the fanotify group with no gap", "[fanotify][host]") {
    REQUIRE_ROOT();
    auto run = kill_and_restart(true);
    INFO("opened " << run.opened << ", denied " << run.denied);
    for (const auto& s : run.status) INFO(s);
    CHECK(run.prober_finished);  // nothing hung: stale events were answered
    CHECK(run.opened == 0);
    CHECK(run.denied > 0);
    REQUIRE(run.status.size() >= 2);
    CHECK(run.status[0].find("fresh stored") != std::string::npos);
    CHECK(run.status[1].find("adopted") != std::string::npos);
}

TEST_CASE("fd store: without it a restart leaves a gap (the control)", "[fanotify][host]") {
    REQUIRE_ROOT();
    auto run = kill_and_restart(false);
    INFO("opened " << run.opened << ", denied " << run.denied);
    CHECK(run.prober_finished);
    CHECK(run.opened > 0);  // unchecked opens while no daemon held the group
    REQUIRE(run.status.size() >= 2);
    CHECK(run.status[1].find("fresh") != std::string::npos);
}
