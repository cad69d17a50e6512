// The BPF-LSM enforcer as the in-VM tests use it: started with a policy and removed at the
// end of each test, so that tests do not stack policies.
#pragma once

#include <catch2/catch.hpp>

#include <string>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bpf_lsm_enforcer.hpp"
#include "support/exec_plan.hpp"
#include "vm_support.hpp"

namespace custguard::vmtest {

template <typename T>
std::string err_of(const tl::expected<T, std::string>& e)
{
    return e ? std::string() : e.error();
}

// Starts `e` with `events`' handler and applies `p`, as the daemon does; the test stops
// where either fails.
inline void start_and_apply(daemon::bpf_lsm::BpfLsmEnforcer& e, Events& events, const policy::Compiled& p)
{
    auto s = e.start(events.handler());
    INFO(err_of(s));
    REQUIRE(s);
    auto a = e.apply(p);
    INFO(err_of(a));
    REQUIRE(a);
}

// Removes what an enforcer pinned when its scope ends, also when a test stops early; after
// a stop(false), which leaves the pins for the next enforcer, it does nothing.
struct RemovedAtExit {
    daemon::bpf_lsm::BpfLsmEnforcer& e;
    ~RemovedAtExit() { e.stop(true); }
};

struct Enforced {
    Events events;
    daemon::bpf_lsm::BpfLsmEnforcer enforcer;

    explicit Enforced(const policy::Compiled& p, daemon::bpf_lsm::Options options = {}) : enforcer(std::move(options))
    {
        start_and_apply(enforcer, events, p);
    }
    ~Enforced() { enforcer.stop(true); }
};

// A process that loads the enforcer with `p`, reports readiness on a pipe and waits to be
// killed: the daemon in the restart test.
inline pid_t spawn_enforcer(const policy::Compiled& p, bool expect_adopt)
{
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    // The child runs the enforcer, which allocates: safe only while this process has no
    // other thread (see tests/support/exec_plan.hpp).
    REQUIRE(cgtest::thread_count() == 1);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(fds[0]);
        char status = 'E';
        {
            daemon::bpf_lsm::BpfLsmEnforcer enf;
            if (enf.start([](daemon::AccessEvent&&) {}) && enf.apply(p))
                status = enf.adopted() == expect_adopt ? 'R' : 'A';
            (void)!::write(fds[1], &status, 1);
            if (status == 'R')
                for (;;)
                    ::pause();
        }
        ::_exit(1);
    }
    ::close(fds[1]);
    char status = 0;
    // A hung loader must fail the test, not the whole VM run.
    pollfd pfd{fds[0], POLLIN, 0};
    if (::poll(&pfd, 1, 60'000) == 1)
        (void)!::read(fds[0], &status, 1);
    else
        ::kill(pid, SIGKILL);
    ::close(fds[0]);
    INFO("enforcer process status " << status);
    REQUIRE(status == 'R');
    return pid;
}

inline void kill9(pid_t pid)
{
    ::kill(pid, SIGKILL);
    int st = 0;
    ::waitpid(pid, &st, 0);
}

}  // namespace custguard::vmtest
