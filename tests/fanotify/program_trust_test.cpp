// allow_programs vouches for a program only while it runs its own code (issue 15, point
// 6): the fanotify enforcer refuses an allowed program started with dynamic-loader
// injection or being traced. Real fanotify on a private tmpfs, the real exec tracker
// (raw tracepoints) or, without it, /proc/PID/environ. Needs root.
#include <catch2/catch.hpp>

#include <sys/ptrace.h>

#include "daemon/exec/exec_tracker.hpp"
#include "daemon/exec/loader_env.hpp"
#include "daemon/fanotify/fanotify_enforcer.hpp"
#include "daemon/fanotify/proc_iter.hpp"
#include "daemon/fanotify/task_info.hpp"
#include "sandbox.hpp"

using namespace custguard;
using namespace std::chrono_literals;

namespace {

constexpr uid_t alice = 60001;

// Zone "prog": alice, through /usr/bin/cat only; every read recorded.
struct TrustEnv {
    cgtest::Tmpfs fs;
    cgtest::Collector events;
    std::shared_ptr<daemon::exec::ExecTracker> tracker;
    std::unique_ptr<daemon::FanotifyEnforcer> enforcer;
    std::string file;
    std::atomic<std::size_t> iterated{0};  // thread lists asked of the iterator

    // with_iterators: threads from the BPF iterator (as custguardd runs it), else /proc.
    explicit TrustEnv(bool with_tracker, bool strict = true, std::string program = "/usr/bin/cat",
                      bool with_iterators = false) {
        REQUIRE(fs.ok());
        fs.mkdir("prog");
        fs.write("prog/p.txt");
        file = fs.path("prog/p.txt");
        daemon::FanotifyOptions fo;
        fo.use_fd_store = false;
        if (with_tracker) {
            auto t = daemon::exec::ExecTracker::start({.pin_dir = {}});
            INFO((t ? "" : t.error()));
            REQUIRE(t);
            tracker = *t;
            fo.exec_flags = [t = tracker](std::uint32_t tgid) { return t->task_flags(tgid); };
        }
        if (with_iterators) {
            auto iter = daemon::fan::ProcIter::load();
            INFO((iter ? "" : iter.error()));
            REQUIRE(iter);
            std::shared_ptr<const daemon::fan::ProcIter> proc = std::move(*iter);
            fo.threads = [proc, this](std::uint32_t tgid) {
                ++iterated;
                return proc->threads(tgid);
            };
        }
        auto e = daemon::FanotifyEnforcer::create(std::move(fo));
        REQUIRE(e);
        enforcer = std::move(*e);
        REQUIRE(enforcer->start(events.handler()));
        policy::Compiled c;
        c.zones = {cgtest::zone(1, "prog", policy::Violation::deny, true, true)};
        c.zones[0].programs_strict = strict;
        c.roots = {{fs.path("prog"), 1}};
        c.subjects = {{1, policy::SubjectKind::uid, alice}};
        c.programs = {{1, program}};
        REQUIRE(enforcer->apply(c));
    }
    ~TrustEnv() {
        if (enforcer) enforcer->stop(true);
        if (tracker) tracker->stop(true);
    }
};

// Runs `cat file` as alice with `env`, optionally traced by this process from its start
// (PTRACE_TRACEME). Returns cat's exit status and its pid.
std::pair<int, pid_t> cat_as_alice(const std::string& file, std::vector<std::string> env, bool traced) {
    std::vector<char*> envp;  // the child must not allocate: the enforcer's threads run here
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close_range(3, ~0u, 0);
        ::alarm(20);
        int null = ::open("/dev/null", O_WRONLY);
        ::dup2(null, 1);
        ::dup2(null, 2);
        if (::setgroups(0, nullptr) != 0 || ::setresgid(alice, alice, alice) != 0 ||
            ::setresuid(alice, alice, alice) != 0)
            ::_exit(120);
        if (traced && ::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) ::_exit(121);
        ::execle("/usr/bin/cat", "cat", file.c_str(), static_cast<char*>(nullptr), envp.data());
        ::_exit(127);
    }
    int st = 0;
    for (;;) {
        REQUIRE(::waitpid(pid, &st, 0) == pid);
        if (!WIFSTOPPED(st)) break;
        // The exec stop (SIGTRAP) is swallowed; any other signal is passed on.
        int sig = WSTOPSIG(st) == SIGTRAP ? 0 : WSTOPSIG(st);
        ::ptrace(PTRACE_CONT, pid, nullptr, reinterpret_cast<void*>(static_cast<long>(sig)));
    }
    return {WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), pid};
}

struct TrustCase {
    const char* label;
    std::vector<std::string> env;
    bool traced;
    std::optional<std::uint32_t> refused_rule;  // nullopt: the read is allowed
};

const std::vector<TrustCase> cases = {
    {"plain environment", {"PATH=/usr/bin", "LANG=C"}, false, std::nullopt},
    {"LD_PRELOAD", {"PATH=/usr/bin", "LD_PRELOAD=libm.so.6"}, false, CG_RULE_PROGRAM_TAMPERED},
    {"LD_AUDIT", {"LD_AUDIT=libm.so.6"}, false, CG_RULE_PROGRAM_TAMPERED},
    {"LD_LIBRARY_PATH", {"LD_LIBRARY_PATH=/tmp"}, false, CG_RULE_PROGRAM_TAMPERED},
    {"GCONV_PATH", {"LANG=C", "GCONV_PATH=/tmp"}, false, CG_RULE_PROGRAM_TAMPERED},
    {"LD_PRELOAD after a long variable", {std::string("X=") + std::string(3000, 'x'), "LD_PRELOAD=libm.so.6"}, false,
     CG_RULE_PROGRAM_TAMPERED},
    {"empty LD_PRELOAD (the loader ignores it)", {"LD_PRELOAD="}, false, std::nullopt},
    {"LD_BIND_NOW (binds named libraries only)", {"LD_BIND_NOW=1"}, false, std::nullopt},
    {"traced by a debugger", {"PATH=/usr/bin"}, true, CG_RULE_PROGRAM_TRACED},
};

}  // namespace

TEST_CASE("allow_programs refuses an allowed program with loader injection or a tracer", "[fanotify][programs]") {
    REQUIRE_ROOT();
    struct Mode {
        const char* label;
        bool tracker, iterators;
    };
    for (const Mode m : {Mode{"exec tracker, /proc threads: ", true, false}, Mode{"/proc environ and threads: ", false, false},
                         Mode{"exec tracker, BPF iterator threads: ", true, true}}) {
        TrustEnv env(m.tracker, true, "/usr/bin/cat", m.iterators);
        for (const auto& c : cases) {
            INFO(m.label << c.label);
            auto [status, pid] = cat_as_alice(env.file, c.env, c.traced);
            auto ev = env.events.for_process(pid);
            REQUIRE(ev);
            if (c.refused_rule) {
                CHECK(status != 0);
                CHECK(ev->raw.decision == CG_DECISION_DENY);
                CHECK(ev->raw.rule == *c.refused_rule);
            } else {
                CHECK(status == 0);
                CHECK(ev->raw.decision == CG_DECISION_ALLOW);
                CHECK(ev->raw.rule == CG_RULE_USER);
            }
        }
        if (m.iterators) CHECK(env.iterated.load() > 0);  // the iterator answered, not /proc
    }
}

TEST_CASE("allow_programs_strict = false lets an injected allowed program read", "[fanotify][programs]") {
    REQUIRE_ROOT();
    TrustEnv env(true, /*strict=*/false);
    auto [status, pid] = cat_as_alice(env.file, {"LD_PRELOAD=libm.so.6"}, false);
    CHECK(status == 0);
    auto ev = env.events.for_process(pid);
    REQUIRE(ev);
    CHECK(ev->raw.decision == CG_DECISION_ALLOW);
    CHECK(ev->raw.rule == CG_RULE_USER);
}

TEST_CASE("loader variables in an environment block", "[fanotify][programs][unit]") {
    using daemon::exec::has_loader_variable;
    using namespace std::string_view_literals;
    CHECK(has_loader_variable("A=1\0LD_PRELOAD=/x.so\0"sv));
    CHECK(has_loader_variable("LD_AUDIT=a"sv));
    CHECK(!has_loader_variable("LD_PRELOAD=\0B=2\0"sv));
    CHECK(!has_loader_variable("MY_LD_PRELOAD=/x.so\0XLD_LIBRARY_PATH=/a\0"sv));
    CHECK(!has_loader_variable("LD_BIND_NOW=1\0LD_DEBUG=all\0"sv));
    CHECK(daemon::fan::tracer_pid("Name:\tcat\nTracerPid:\t4711\nUid:\t0\n") == 4711);
    CHECK(daemon::fan::tracer_pid("Name:\tcat\nTracerPid:\t0\n") == 0);
}

// The enforcer keeps the /proc answer for a process the exec tracker never saw exec (it
// started before the tracker): reading another process's environment on every open cost
// about 0.1 ms per SMB read. Guards that the kept answer never hides a later exec, even
// of the same program: the tracker sees that one.
TEST_CASE("a program started before the exec tracker that re-executes itself with LD_PRELOAD is refused",
          "[fanotify][programs]") {
    REQUIRE_ROOT();
    int go[2], out[2];
    REQUIRE(::pipe2(go, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    // Prepared before fork: the child only makes system calls.
    std::string file_slot = "/tmp/cg-trust-reexec." + std::to_string(::getpid());
    std::string script = "read go; read -r x < \"$1\" && echo A; "
                         "exec /usr/bin/env LD_PRELOAD=libm.so.6 /usr/bin/bash -c 'read -r x < \"$1\" && echo B' _ \"$1\"";
    std::vector<std::string> args = {"bash", "-c", script, "_", file_slot};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    char* envp[] = {const_cast<char*>("PATH=/usr/bin"), nullptr};
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::dup2(go[0], 0);
        ::dup2(out[1], 1);
        ::close_range(3, ~0u, 0);
        ::alarm(30);
        if (::setgroups(0, nullptr) != 0 || ::setresgid(alice, alice, alice) != 0 ||
            ::setresuid(alice, alice, alice) != 0)
            ::_exit(120);
        ::execve("/usr/bin/bash", argv.data(), envp);
        ::_exit(127);
    }
    ::close(go[0]);
    ::close(out[1]);
    {
        TrustEnv env(true, true, "/usr/bin/bash");
        // The zone file under the path the script was given.
        REQUIRE(::symlink(env.file.c_str(), file_slot.c_str()) == 0);
        REQUIRE(::write(go[1], "\n", 1) == 1);
        int st = 0;
        REQUIRE(::waitpid(pid, &st, 0) == pid);
        ::unlink(file_slot.c_str());
        char buf[64] = {};
        ssize_t n = ::read(out[0], buf, sizeof buf - 1);
        const std::string said(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
        INFO("the script printed: " << said);
        CHECK(said == "A\n");  // the first read allowed, the one after the re-exec refused
        auto refused = env.events.find([&](const daemon::AccessEvent& ev) {
            return ev.raw.tgid == static_cast<std::uint32_t>(pid) && ev.raw.decision == CG_DECISION_DENY;
        });
        REQUIRE(refused);
        CHECK(refused->raw.rule == CG_RULE_PROGRAM_TAMPERED);
    }
    ::close(go[1]);
    ::close(out[0]);
}
