// allow_programs under BPF LSM (issue 15, point 6): the kernel refuses an allowed program
// started with dynamic-loader injection, traced, or traced once since its exec. The real
// exec tracker (tracepoints and its ptrace LSM hooks) shares its flags map with the
// BPF-LSM program through the pin, as in the daemon.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <grp.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "bpf_lsm_enforcer.hpp"
#include "daemon/exec/exec_tracker.hpp"
#include "enforced.hpp"
#include "vm_support.hpp"

using namespace custguard;
using namespace custguard::vmtest;
using custguard::daemon::AccessEvent;
using custguard::daemon::bpf_lsm::BpfLsmEnforcer;

namespace {

// The tracker's pins where the enforcer looks for them by default.
struct Tracked {
    std::shared_ptr<daemon::exec::ExecTracker> tracker;
    Events events;
    BpfLsmEnforcer enforcer;

    explicit Tracked(const policy::Compiled& p)
    {
        auto t = daemon::exec::ExecTracker::start({.pin_dir = "/sys/fs/bpf/custguard-exec"});
        INFO((t ? "" : t.error()));
        REQUIRE(t);
        tracker = *t;
        start_and_apply(enforcer, events, p);
    }
    ~Tracked()
    {
        enforcer.stop(true);
        tracker->stop(true);
    }
};

struct Child {
    pid_t pid = -1;
    int stdin_fd = -1;  // write end of the child's stdin
};

// argv as alice with `env`; stdin a pipe (the test releases the child by closing it).
Child spawn_as_alice(const std::vector<std::string>& argv, std::vector<std::string> env, bool traceme)
{
    // Built before the fork: the enforcer's and the tracker's threads run in this process.
    std::vector<char*> args, envp;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    for (auto& e : env)
        envp.push_back(e.data());
    envp.push_back(nullptr);
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    Child c;
    c.pid = ::fork();
    REQUIRE(c.pid >= 0);
    if (c.pid == 0) {
        ::dup2(p[0], 0);
        int null = ::open("/dev/null", O_WRONLY);
        ::dup2(null, 1);
        ::dup2(null, 2);
        ::alarm(60);
        if (::setgroups(0, nullptr) != 0 || ::setresgid(k_alice.gid, k_alice.gid, k_alice.gid) != 0 ||
            ::setresuid(k_alice.uid, k_alice.uid, k_alice.uid) != 0)
            ::_exit(120);
        if (traceme && ::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0)
            ::_exit(121);
        ::execve(args[0], args.data(), envp.data());
        ::_exit(127);
    }
    ::close(p[0]);
    c.stdin_fd = p[1];
    return c;
}

// Lets the child run to its end (continuing it through ptrace stops); its exit status.
int finish(Child& c)
{
    if (c.stdin_fd >= 0)
        ::close(c.stdin_fd);
    int st = 0;
    for (;;) {
        REQUIRE(::waitpid(c.pid, &st, 0) == c.pid);
        if (!WIFSTOPPED(st))
            break;
        int sig = WSTOPSIG(st) == SIGTRAP ? 0 : WSTOPSIG(st);
        ::ptrace(PTRACE_CONT, c.pid, nullptr, reinterpret_cast<void*>(static_cast<long>(sig)));
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
}

}  // namespace

TEST_CASE("programs: an allowed program with loader injection or a tracer is refused in the kernel",
          "[vm][programs]")
{
    const auto dir = fresh_dir("trust");
    make_dir(dir + "/zone");
    write_file(dir + "/zone/f", "x\n");
    const std::string file = dir + "/zone/f";
    const std::string sh = std::filesystem::canonical("/bin/sh");
    // cat reads at once; sh waits for its stdin to close, then opens the file.
    Tracked t(make_policy({ZoneSpec{{dir + "/zone"}, {k_alice.uid}, {}, {"/usr/bin/cat", sh}}}));
    const std::vector<std::string> cat = {"/usr/bin/cat", file};
    const std::vector<std::string> wait_then_open = {sh, "-c", "read x; exec 3< " + file};

    struct Case {
        const char* label;
        std::vector<std::string> argv;
        std::vector<std::string> env;
        bool traceme;
        bool attach_detach;  // the test attaches to it and detaches before it opens
        std::uint32_t rule;  // CG_RULE_USER: allowed
    };
    const std::vector<Case> cases = {
        {"plain", cat, {"PATH=/usr/bin"}, false, false, CG_RULE_USER},
        {"LD_PRELOAD", cat, {"LD_PRELOAD=libm.so.6"}, false, false, CG_RULE_PROGRAM_TAMPERED},
        {"LD_LIBRARY_PATH", cat, {"LD_LIBRARY_PATH=/tmp"}, false, false, CG_RULE_PROGRAM_TAMPERED},
        {"traced from exec", cat, {}, true, false, CG_RULE_PROGRAM_TRACED},
        {"plain wait", wait_then_open, {}, false, false, CG_RULE_USER},
        {"attached and detached before the open", wait_then_open, {}, false, true, CG_RULE_PROGRAM_TRACED},
    };
    for (const auto& c : cases) {
        INFO(c.label);
        t.events.clear();
        Child child = spawn_as_alice(c.argv, c.env, c.traceme);
        if (c.attach_detach) {
            // Once it runs sh (an attach before the exec would be reset by it) and waits.
            const auto exe = "/proc/" + std::to_string(child.pid) + "/exe";
            for (int i = 0; i < 500; ++i) {
                std::error_code ec;
                if (std::filesystem::read_symlink(exe, ec) == sh)
                    break;
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            REQUIRE(::ptrace(PTRACE_ATTACH, child.pid, nullptr, nullptr) == 0);
            int st = 0;
            REQUIRE(::waitpid(child.pid, &st, 0) == child.pid);
            REQUIRE(WIFSTOPPED(st));
            REQUIRE(::ptrace(PTRACE_DETACH, child.pid, nullptr, nullptr) == 0);
        }
        const int status = finish(child);
        CHECK((status == 0) == (c.rule == CG_RULE_USER));
        REQUIRE(t.events.wait_for([&](const AccessEvent& ev) {
            return ev.raw.tgid == static_cast<std::uint32_t>(child.pid) && ev.raw.rule == c.rule &&
                   ev.raw.decision == (c.rule == CG_RULE_USER ? CG_DECISION_ALLOW : CG_DECISION_DENY);
        }));
    }
}

TEST_CASE("programs: allow_programs_strict = false lets an injected or traced allowed program read",
          "[vm][programs]")
{
    const auto dir = fresh_dir("trust-lax");
    make_dir(dir + "/zone");
    write_file(dir + "/zone/f", "x\n");
    auto policy = make_policy({ZoneSpec{{dir + "/zone"}, {k_alice.uid}, {}, {"/usr/bin/cat"}}});
    policy.zones[0].programs_strict = false;
    Tracked t(policy);
    for (bool traced : {false, true}) {
        INFO((traced ? "traced" : "LD_PRELOAD"));
        Child c = spawn_as_alice({"/usr/bin/cat", dir + "/zone/f"},
                                 {traced ? "PATH=/usr/bin" : "LD_PRELOAD=libm.so.6"}, traced);
        CHECK(finish(c) == 0);
        CHECK(t.events.wait_for([&](const AccessEvent& ev) {
            return ev.raw.tgid == static_cast<std::uint32_t>(c.pid) && ev.raw.rule == CG_RULE_USER &&
                   ev.raw.decision == CG_DECISION_ALLOW;
        }));
    }
}

TEST_CASE("programs: a program started with LD_PRELOAD before the tracker is refused too", "[vm][programs]")
{
    const auto dir = fresh_dir("trust-early");
    make_dir(dir + "/zone");
    write_file(dir + "/zone/f", "x\n");
    const std::string file = dir + "/zone/f";
    const std::string sh = std::filesystem::canonical("/bin/sh");
    // Started (and waiting) before any tracker runs: the tracker reads its flags from /proc.
    Child early = spawn_as_alice({sh, "-c", "read x; exec 3< " + file}, {"LD_PRELOAD=libm.so.6"}, false);
    Child clean = spawn_as_alice({sh, "-c", "read x; exec 3< " + file}, {"PATH=/usr/bin"}, false);
    for (const Child* c : {&early, &clean}) {
        const auto exe = "/proc/" + std::to_string(c->pid) + "/exe";
        for (int i = 0; i < 500; ++i) {
            std::error_code ec;
            if (std::filesystem::read_symlink(exe, ec) == sh)
                break;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    Tracked t(make_policy({ZoneSpec{{dir + "/zone"}, {k_alice.uid}, {}, {sh}}}));
    CHECK(finish(early) != 0);
    CHECK(finish(clean) == 0);
    CHECK(t.events.wait_for([&](const AccessEvent& ev) {
        return ev.raw.tgid == static_cast<std::uint32_t>(early.pid) && ev.raw.rule == CG_RULE_PROGRAM_TAMPERED &&
               ev.raw.decision == CG_DECISION_DENY;
    }));
    CHECK(t.events.wait_for([&](const AccessEvent& ev) {
        return ev.raw.tgid == static_cast<std::uint32_t>(clean.pid) && ev.raw.rule == CG_RULE_USER;
    }));
}

TEST_CASE("exec identity: a BPF-LSM event is matched to the program that opened, not a later one",
          "[vm][programs]")
{
    const auto dir = fresh_dir("identity");
    make_dir(dir + "/zone");
    write_file(dir + "/zone/f", "x\n");
    const std::string file = dir + "/zone/f";
    const std::string sh = std::filesystem::canonical("/bin/sh");
    Tracked t(make_policy({ZoneSpec{{dir + "/zone"}, {k_alice.uid}}}));
    // The shell opens the file, then becomes sleep.
    Child c = spawn_as_alice({sh, "-c", "exec 3< " + file + "; exec /usr/bin/sleep 1"}, {}, false);
    CHECK(finish(c) == 0);
    AccessEvent opened;
    REQUIRE(t.events.wait_for([&](const AccessEvent& ev) {
        if (ev.raw.tgid != static_cast<std::uint32_t>(c.pid))
            return false;
        opened = ev;
        return true;
    }));
    auto id = t.tracker->identity_at(opened.raw.tgid, opened.raw.ts_ns);
    REQUIRE(id);
    CHECK(id->exe == sh);
    CHECK(id->exe_ino == opened.raw.exe_ino);
    CHECK(id->exe_dev == opened.raw.exe_dev);
    CHECK(id->cmdline == sh + " -c exec 3< " + file + "; exec /usr/bin/sleep 1");
    CHECK(id->ppid == static_cast<std::uint32_t>(::getpid()));
    CHECK(id->later_exe == std::filesystem::canonical("/usr/bin/sleep").string());
    CHECK(id->exited);
}
