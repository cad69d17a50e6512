// Records name the program that made an access (issue 15, point 5): the real exec
// tracker (raw tracepoints on this kernel), the real fanotify enforcer on a private
// tmpfs, the pipeline and a scratch journald; records are read back from the journal.
// Needs root; never skipped.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <deque>
#include <mutex>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <thread>

#include "custguard/events/pipeline.hpp"
#include "daemon/exec/exec_tracker.hpp"
#include "daemon/fanotify/fanotify_enforcer.hpp"
#include "../fanotify/sandbox.hpp"
#include "../support/exec_plan.hpp"
#include "scratch_journald.hpp"

using namespace custguard;
using namespace std::chrono_literals;
using events::testing::JournalEntry;
using events::testing::ScratchJournald;
using events::testing::unique_namespace;

namespace {

std::string real(const char* path) {
    char buf[PATH_MAX];
    REQUIRE(::realpath(path, buf) != nullptr);
    return buf;
}

// Zone "customers" on a fresh tmpfs; root may read it and every read is recorded.
struct IdentityEnv {
    cgtest::Tmpfs fs;
    ScratchJournald journald{unique_namespace("id")};
    std::filesystem::path state = std::filesystem::path(fs.path()) / ".state";
    std::shared_ptr<daemon::exec::ExecTracker> tracker;
    std::unique_ptr<events::Pipeline> pipeline;
    std::unique_ptr<daemon::FanotifyEnforcer> enforcer;
    std::string file;
    std::mutex delayed_mutex;
    std::deque<std::pair<std::chrono::steady_clock::time_point, daemon::AccessEvent>> delayed;
    std::atomic<bool> stopping{false};
    std::thread delayer;

    // `lag`: how long each access waits before it reaches the pipeline, as under load.
    explicit IdentityEnv(std::chrono::milliseconds lag = 0ms) {
        REQUIRE(fs.ok());
        fs.mkdir("zone");
        fs.write("zone/customers.csv");
        file = fs.path("zone/customers.csv");
        journald.start();
        auto t = daemon::exec::ExecTracker::start({.pin_dir = {}});
        INFO((t ? "" : t.error()));
        REQUIRE(t);
        tracker = *t;
        events::PipelineConfig pc;
        pc.state_dir = state;
        pc.journal_socket = journald.socket_path();
        pc.enrich.identities = tracker;
        auto p = events::Pipeline::create(pc);
        REQUIRE(p);
        pipeline = std::move(*p);
        pipeline->set_zone_names({"customers"});
        daemon::FanotifyOptions fo;
        fo.use_fd_store = false;
        auto e = daemon::FanotifyEnforcer::create(std::move(fo));
        REQUIRE(e);
        enforcer = std::move(*e);
        REQUIRE(enforcer->start([this, lag](daemon::AccessEvent&& ev) {
            // Delayed on a thread of its own: a waiting worker would leave opens unanswered.
            std::lock_guard lk(delayed_mutex);
            delayed.emplace_back(std::chrono::steady_clock::now() + lag, std::move(ev));
        }));
        delayer = std::thread([this] {
            while (!stopping) {
                std::vector<daemon::AccessEvent> due;
                {
                    std::lock_guard lk(delayed_mutex);
                    while (!delayed.empty() && delayed.front().first <= std::chrono::steady_clock::now()) {
                        due.push_back(std::move(delayed.front().second));
                        delayed.pop_front();
                    }
                }
                for (auto& ev : due) pipeline->submit(std::move(ev));
                std::this_thread::sleep_for(5ms);
            }
        });
        policy::Compiled c;
        c.zones = {cgtest::zone(1, "customers", policy::Violation::deny, true)};
        c.roots = {{fs.path("zone"), 1}};
        c.subjects = {{1, policy::SubjectKind::uid, 0}};
        REQUIRE(enforcer->apply(c));
    }
    ~IdentityEnv() {
        if (enforcer) enforcer->stop(true);
        stopping = true;
        if (delayer.joinable()) delayer.join();
        if (pipeline) pipeline->stop();
        if (tracker) tracker->stop(true);
    }

    // The access records of `file`, by pid, once `count` of them are in the journal.
    std::map<std::string, JournalEntry> records(std::size_t count) {
        REQUIRE(pipeline->flush(30s));
        std::map<std::string, JournalEntry> by_pid;
        const auto until = std::chrono::steady_clock::now() + 30s;
        do {
            by_pid.clear();
            for (auto& e : journald.read("CUSTGUARD_RUN=" + pipeline->counters().run_id))
                if (e["CUSTGUARD_EVENT"] == "access" && e["CUSTGUARD_PATH"] == file) by_pid[e["CUSTGUARD_PID"]] = e;
            if (by_pid.size() >= count) break;
            std::this_thread::sleep_for(100ms);
        } while (std::chrono::steady_clock::now() < until);
        return by_pid;
    }
};

pid_t spawn(const std::vector<std::string>& argv) {
    const cgtest::ExecPlan plan(argv);  // the enforcer's and pipeline's threads run here
    pid_t pid = ::fork();
    if (pid == 0) {
        ::close_range(3, ~0u, 0);
        ::alarm(20);
        int null = ::open("/dev/null", O_WRONLY);
        ::dup2(null, 1);
        plan.exec();
    }
    return pid;
}

int wait_for(pid_t pid) {
    int st = 0;
    ::waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

}  // namespace

// Regression: the enricher read /proc/PID/exe after the decision, so a process that
// opened a zone file and then exec'd another program was recorded under the second one.
TEST_CASE("open-then-exec: the record names the program that opened", "[exec-identity]") {
    REQUIRE_ROOT();
    // The shell opens the file, then becomes sleep, which still runs when the record is
    // enriched (each access reaches the pipeline 300 ms late): /proc shows sleep then.
    IdentityEnv env(300ms);
    std::vector<pid_t> pids;
    for (int i = 0; i < 10; ++i)
        pids.push_back(spawn({"/bin/sh", "-c", "exec 3< " + env.file + "; exec /usr/bin/sleep 4"}));
    auto recs = env.records(pids.size());
    for (pid_t p : pids) CHECK(wait_for(p) == 0);
    const std::string sh = real("/bin/sh");
    REQUIRE(recs.size() == pids.size());
    for (pid_t p : pids) {
        INFO("pid " << p);
        auto& r = recs[std::to_string(p)];
        CHECK(r["CUSTGUARD_EXE"] == sh);
        CHECK(r["CUSTGUARD_CMDLINE"] == "/bin/sh -c exec 3< " + env.file + "; exec /usr/bin/sleep 4");
        CHECK(r["CUSTGUARD_PPID"] == std::to_string(::getpid()));
        // The later program is marked, not substituted.
        CHECK(r["CUSTGUARD_EXE_CHANGED"] == "1");
        CHECK(r["CUSTGUARD_LATER_EXE"] == "/usr/bin/sleep");
    }
}

// Regression: CUSTGUARD_EXE was missing for short-lived processes (gone from /proc by
// the time the record was enriched), 25 of 50 under load.
TEST_CASE("1000 short cats under load all name /usr/bin/cat", "[exec-identity]") {
    REQUIRE_ROOT();
    IdentityEnv env;
    std::atomic<bool> busy{true};
    std::thread load([&] {
        while (busy.load(std::memory_order_relaxed)) {
        }
    });
    constexpr int n = 1000;
    std::vector<pid_t> pids;
    int failed = 0;
    for (int i = 0; i < n; ++i) {
        pid_t p = spawn({"/usr/bin/cat", env.file});
        pids.push_back(p);
        failed += wait_for(p) != 0;
    }
    busy = false;
    load.join();
    CHECK(failed == 0);
    auto recs = env.records(n);
    int named = 0;
    std::map<std::string, int> others;
    for (pid_t p : pids) {
        auto it = recs.find(std::to_string(p));
        if (it == recs.end()) continue;
        if (it->second["CUSTGUARD_EXE"] == "/usr/bin/cat" && it->second["CUSTGUARD_CMDLINE"] == "/usr/bin/cat " + env.file)
            ++named;
        else
            ++others[it->second["CUSTGUARD_EXE"]];
    }
    for (const auto& [exe, count] : others) WARN("CUSTGUARD_EXE '" << exe << "': " << count);
    CHECK(recs.size() == static_cast<std::size_t>(n));
    CHECK(named == n);
}
