// Test support for the fanotify host tests: a real fanotify_testd process protecting one
// zone for alice (60001), to be stopped with SIGSTOP while the test makes events.
#pragma once

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <linux/capability.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "sandbox.hpp"

namespace cgtest {

using namespace std::chrono_literals;

struct Counters {
    unsigned long long scans = 0, overflows = 0, flushes = 0, indexed = 0, kept_lost = 0;
};

// fanotify_testd protecting `zone` for alice, its standard output in a file outside the
// marked filesystem (read while the daemon is stopped). Stopped and reaped at the end.
// fs.fanotify.max_queued_events: the notify queue of a group made now.
inline unsigned long long max_queued_events() {
    unsigned long long limit = 0;
    std::ifstream("/proc/sys/fs/fanotify/max_queued_events") >> limit;
    return limit;
}

class Testd {
public:
    // `no_sys_nice`: started without CAP_SYS_NICE and with RLIMIT_NICE 0.
    // notify_nice: FanotifyOptions::notify_nice (0: its default).
    explicit Testd(const std::string& zone, bool no_sys_nice = false, int notify_nice = 0) {
        char tmpl[] = "/tmp/cgfan-testd.XXXXXX";
        int fd = ::mkstemp(tmpl);
        REQUIRE(fd >= 0);
        out_ = tmpl;
        const std::string nice = std::to_string(notify_nice);  // before the fork: the child only makes system calls
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(fd, 1);
            ::close_range(3, ~0u, 0);
            if (no_sys_nice) {
                const rlimit rl{0, 0};
                if (::prctl(PR_CAPBSET_DROP, CAP_SYS_NICE, 0, 0, 0) != 0 || ::setrlimit(RLIMIT_NICE, &rl) != 0)
                    ::_exit(126);
            }
            ::execl(CG_FANOTIFY_TESTD, CG_FANOTIFY_TESTD, zone.c_str(), "60001", notify_nice ? nice.c_str() : nullptr,
                    static_cast<char*>(nullptr));
            ::_exit(127);
        }
        ::close(fd);
        for (int i = 0; i < 500 && !stats(); ++i) std::this_thread::sleep_for(10ms);
        REQUIRE(stats());  // applied
    }
    Testd(const Testd&) = delete;
    Testd& operator=(const Testd&) = delete;
    ~Testd() {
        ::kill(pid_, SIGCONT);
        ::kill(pid_, SIGTERM);
        ::waitpid(pid_, nullptr, 0);
        ::unlink(out_.c_str());
    }
    pid_t pid() const { return pid_; }
    std::vector<std::string> lines() const {
        std::ifstream in(out_);
        std::vector<std::string> v;
        for (std::string l; std::getline(in, l);) v.push_back(l);
        return v;
    }
    // The last counters it printed (at start, and on each SIGUSR1).
    std::optional<Counters> stats() const {
        std::optional<Counters> c;
        for (const auto& l : lines()) {
            Counters n;
            if (std::sscanf(l.c_str(), "stats scans=%llu overflows=%llu flushes=%llu indexed=%llu kept_lost=%llu",
                            &n.scans, &n.overflows, &n.flushes, &n.indexed, &n.kept_lost) == 5)
                c = n;
        }
        return c;
    }
    char state() const { return field(0)[0]; }
    // Stopped with SIGSTOP: its groups queue events unread until SIGCONT.
    void pause() const {
        REQUIRE(::kill(pid_, SIGSTOP) == 0);
        for (int i = 0; i < 500 && state() != 'T'; ++i) std::this_thread::sleep_for(2ms);
        REQUIRE(state() == 'T');
    }
    // Its counters once `ready` holds for them (asked for with SIGUSR1; at most 10 s), else
    // the last ones printed.
    template <class Pred>
    std::optional<Counters> stats_when(Pred ready) const {
        std::optional<Counters> c;
        for (int i = 0; i < 200 && !(c && ready(*c)); ++i) {
            REQUIRE(::kill(pid_, SIGUSR1) == 0);
            std::this_thread::sleep_for(50ms);
            c = stats();
        }
        return c;
    }
    // Its threads whose nice value is `nice`.
    int threads_at_nice(int nice) const {
        int n = 0;
        for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid_) + "/task")) {
            const std::string tid = e.path().filename();
            if (field(16, tid) == std::to_string(nice)) ++n;
        }
        return n;
    }

private:
    // Field `i` (0: the state) of /proc/PID[/task/TID]/stat after the command name.
    std::string field(int i, const std::string& tid = {}) const {
        std::ifstream in("/proc/" + std::to_string(pid_) + (tid.empty() ? "" : "/task/" + tid) + "/stat");
        std::string all((std::istreambuf_iterator<char>(in)), {});
        auto p = all.rfind(") ");
        if (p == std::string::npos) return "?";
        std::istringstream rest(all.substr(p + 2));
        std::string f;
        for (int k = 0; k <= i && rest >> f; ++k) {}
        return f;
    }
    pid_t pid_ = -1;
    std::string out_;
};

}  // namespace cgtest
