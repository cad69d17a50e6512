// The BPF iterators (bpf/cg_iter.bpf.c) that the fanotify enforcer asks instead of /proc:
// an smbd's clients must be exactly what the /proc scan finds, for the process asked about
// only, and SambaClients must really use them; a traced thread must be seen as /proc's
// TracerPid shows it.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>
#include <memory>
#include <string>
#include <vector>

#include "custguard/events/enrich.hpp"
#include "daemon/fanotify/proc_iter.hpp"
#include "multichannel_smbd.hpp"

using custguard::daemon::fan::ProcIter;
using custguard::events::EnrichConfig;
using custguard::events::SambaClients;
using custguard::events::testing::MultichannelSmbd;

TEST_CASE("the socket iterator lists an smbd's clients as the /proc scan does, also a channel that joined later",
          "[fanotify][clients]") {
    auto loaded = ProcIter::load();
    REQUIRE(loaded);  // root on a kernel with iterators: these machines, and CI
    std::shared_ptr<const ProcIter> held = std::move(*loaded);
    MultichannelSmbd smbd;
    const auto pid = static_cast<std::uint32_t>(smbd.pid);
    EnrichConfig with = smbd.config();
    with.held_sockets = [held](std::uint32_t tgid) { return held->sockets(tgid); };
    SambaClients iterated(with), scanned(smbd.config());
    struct Step {
        const char* joins;  // a further connection from this address, or none
        std::vector<std::string> expected;
    };
    const Step steps[] = {
        {nullptr, {}},
        {"127.0.0.2", {"127.0.0.2"}},
        {"127.0.0.3", {"127.0.0.2", "127.0.0.3"}},
        {"127.0.0.2", {"127.0.0.2", "127.0.0.3"}},
    };
    for (const auto& step : steps) {
        if (step.joins) smbd.next(step.joins);
        INFO("after " << (step.joins ? step.joins : "no connection"));
        const auto a = iterated.served(pid), b = scanned.served(pid);
        CHECK(a.addresses == step.expected);
        CHECK(a.addresses == b.addresses);
        CHECK(a.why == b.why);
    }
    // Every answer came from the iterator, none from /proc.
    CHECK(iterated.listed() == std::size(steps));
    CHECK(iterated.lookups() == 0);
    CHECK(iterated.hits() == 0);

    // This process holds the client ends: their local ports are not Samba's, so they are
    // listed by the iterator and then left out.
    auto own = held->sockets(static_cast<std::uint32_t>(::getpid()));
    REQUIRE(own);
    std::size_t to_smbd = 0;
    for (const auto& s : *own) to_smbd += s.peer == "127.0.0.1" && s.state == 1;
    CHECK(to_smbd == 3);
    CHECK(iterated.served(static_cast<std::uint32_t>(::getpid())).addresses.empty());
}

TEST_CASE("the socket iterator: a process that is gone holds nothing, and no pid is confused with another",
          "[fanotify][clients]") {
    auto held = ProcIter::load();
    REQUIRE(held);
    MultichannelSmbd smbd;
    smbd.next("127.0.0.4");
    auto listed = (*held)->sockets(static_cast<std::uint32_t>(smbd.pid));
    REQUIRE(listed);
    std::vector<std::string> established;  // the listening socket is there too (state 10)
    for (const auto& s : *listed)
        if (s.state == 1) established.push_back(s.peer);
    CHECK(established == std::vector<std::string>{"127.0.0.4"});
    auto gone = (*held)->sockets(0x7ffffff0u);
    REQUIRE(gone);
    CHECK(gone->empty());
}

TEST_CASE("the socket iterator writes IPv6 peers, and IPv4-mapped ones as IPv4", "[fanotify][clients]") {
    auto held = ProcIter::load();
    REQUIRE(held);
    const int listener = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(listener >= 0);
    int off = 0;
    REQUIRE(::setsockopt(listener, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) == 0);
    sockaddr_in6 any{};
    any.sin6_family = AF_INET6;
    any.sin6_addr = in6addr_any;
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&any), sizeof any) == 0);
    REQUIRE(::listen(listener, 4) == 0);
    socklen_t len = sizeof any;
    REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&any), &len) == 0);
    const std::uint16_t port = ntohs(any.sin6_port);
    auto connect_from = [&](int family, const char* to) {
        const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        int rc = -1;
        if (family == AF_INET) {
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons(port);
            ::inet_pton(AF_INET, to, &a.sin_addr);
            rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        } else {
            sockaddr_in6 a{};
            a.sin6_family = AF_INET6;
            a.sin6_port = htons(port);
            ::inet_pton(AF_INET6, to, &a.sin6_addr);
            rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        }
        REQUIRE(rc == 0);
        const int conn = ::accept(listener, nullptr, nullptr);
        REQUIRE(conn >= 0);
        return std::pair{fd, conn};
    };
    const auto v6 = connect_from(AF_INET6, "::1");
    const auto v4 = connect_from(AF_INET, "127.0.0.1");
    auto listed = (*held)->sockets(static_cast<std::uint32_t>(::getpid()));
    REQUIRE(listed);
    std::vector<std::string> served;  // the accepted ends: local port = the listener's
    for (const auto& s : *listed)
        if (s.local_port == port && s.state == 1) served.push_back(s.peer);
    std::sort(served.begin(), served.end());
    CHECK(served == std::vector<std::string>{"127.0.0.1", "::1"});
    for (int fd : {v6.first, v6.second, v4.first, v4.second, listener}) ::close(fd);
}

TEST_CASE("the thread iterator sees a tracer on any thread of a process, as /proc's TracerPid does",
          "[fanotify][programs]") {
    auto iter = ProcIter::load();
    REQUIRE(iter);
    int go[2];
    REQUIRE(::pipe(go) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::alarm(30);
        std::thread a([] { ::pause(); }), b([] { ::pause(); });
        char c;
        (void)!::read(go[0], &c, 1);
        ::_exit(0);
    }
    namespace fs = std::filesystem;
    const fs::path tasks = fs::path("/proc") / std::to_string(child) / "task";
    std::vector<pid_t> tids;
    for (int i = 0; i < 500 && tids.size() < 3; ++i) {
        tids.clear();
        for (const auto& e : fs::directory_iterator(tasks)) tids.push_back(std::stoi(e.path().filename().string()));
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    REQUIRE(tids.size() == 3);
    std::sort(tids.begin(), tids.end());
    const auto pid = static_cast<std::uint32_t>(child);
    auto quiet = (*iter)->threads(pid);
    REQUIRE(quiet);
    CHECK(quiet->threads == 3);
    CHECK_FALSE(quiet->traced);
    // A tracer on the last thread only (not the one that would wait in open).
    REQUIRE(::ptrace(PTRACE_SEIZE, tids.back(), nullptr, nullptr) == 0);
    auto traced = (*iter)->threads(pid);
    REQUIRE(traced);
    CHECK(traced->threads == 3);
    CHECK(traced->traced);
    // Detaching needs the tracee stopped.
    REQUIRE(::ptrace(PTRACE_INTERRUPT, tids.back(), nullptr, nullptr) == 0);
    REQUIRE(::waitpid(tids.back(), nullptr, __WALL) == tids.back());
    REQUIRE(::ptrace(PTRACE_DETACH, tids.back(), nullptr, nullptr) == 0);
    auto detached = (*iter)->threads(pid);
    REQUIRE(detached);
    CHECK_FALSE(detached->traced);
    REQUIRE(::write(go[1], "q", 1) == 1);
    REQUIRE(::waitpid(child, nullptr, 0) == child);
    auto gone = (*iter)->threads(pid);
    REQUIRE(gone);
    CHECK(gone->threads == 0);
    ::close(go[0]);
    ::close(go[1]);
}

// A process cannot make every open read without end: the iterator stops one past the
// bound, and SambaClients refuses beyond it (fail closed), as the /proc scan does.
TEST_CASE("the socket iterator stops one past the bound, and a process beyond it serves no known client",
          "[fanotify][clients]") {
    auto iter = ProcIter::load();
    REQUIRE(iter);
    rlimit old{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &old) == 0);
    rlimit more{8192, std::max<rlim_t>(old.rlim_max, 8192)};
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &more) == 0);
    std::vector<int> fds;
    for (int i = 0; i < 4200; ++i) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        fds.push_back(fd);
    }
    const auto me = static_cast<std::uint32_t>(::getpid());
    auto listed = (*iter)->sockets(me);
    REQUIRE(listed);
    CHECK(listed->size() == 4097);
    EnrichConfig config;
    std::shared_ptr<const ProcIter> proc = std::move(*iter);
    config.held_sockets = [proc](std::uint32_t tgid) { return proc->sockets(tgid); };
    auto served = SambaClients(config).served(me);
    CHECK(served.addresses.empty());
    CHECK(served.why == "it holds more than 4096 TCP connections");
    for (int fd : fds) ::close(fd);
    ::setrlimit(RLIMIT_NOFILE, &old);
}
