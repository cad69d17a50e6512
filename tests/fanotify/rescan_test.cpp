// The fanotify enforcer against a user who makes links, FIFOs and device nodes in a large
// zone and outside it: no open scans the zone trees (counted, not timed), and a zone file
// linked outside its zone is still refused by that name. Before the zone index, each open of
// a newly linked file walked every zone tree (0.55 s with 200,000 files).
#include <catch2/catch.hpp>

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <atomic>
#include <cstdio>
#include <new>
#include <thread>

#include "daemon/fanotify/fanotify_enforcer.hpp"
#include "sandbox.hpp"

using namespace custguard;
using namespace std::chrono_literals;
using cgtest::Cred;
using daemon::FanotifyEnforcer;
using daemon::FanotifyOptions;

namespace {

const Cred alice{60001, 60001, {}};    // allowed in the zone
const Cred mallory{60009, 60009, {}};  // in no allow list

constexpr int zone_files = 20000;
constexpr int rounds = 300;

struct Env {
    cgtest::Tmpfs fs;
    cgtest::Collector events;
    std::unique_ptr<FanotifyEnforcer> enforcer;

    Env() {
        REQUIRE(fs.ok());
        for (auto d : {"zone", "out"}) fs.mkdir(d);
        fs.mkdir("zone/drop", 01777);  // a shared folder of the zone: anyone adds files
        fs.mkdir("out/drop", 01777);
        for (int i = 0; i < zone_files; ++i) {
            if (i % 200 == 0) fs.mkdir("zone/d" + std::to_string(i / 200));
            const std::string p = fs.path("zone/d" + std::to_string(i / 200) + "/f" + std::to_string(i % 200));
            int fd = ::open(p.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);  // empty: no pages
            REQUIRE(fd >= 0);
            ::close(fd);
        }
        fs.write("zone/secret.txt");
        FanotifyOptions options;
        options.use_fd_store = false;
        auto e = FanotifyEnforcer::create(std::move(options));
        REQUIRE(e);
        enforcer = std::move(*e);
        REQUIRE(enforcer->start(events.handler()));
        policy::Compiled c;
        c.zones = {cgtest::zone(1, "customers", policy::Violation::deny, false)};
        c.roots = {{fs.path("zone"), 1}};
        c.subjects = {{1, policy::SubjectKind::uid, alice.uid}};
        auto r = enforcer->apply(c);
        INFO((r ? "" : r.error()));
        REQUIRE(r);
    }
    ~Env() {
        if (enforcer) enforcer->stop(true);
    }
};

// As mallory, `rounds` times: a file outside every zone linked there and opened (what made
// each open rescan), a zone file of its own linked inside the zone and outside it and opened
// by the outside name (must be refused), FIFOs on both sides, a rename in the zone, chmod.
// Returns how many zone files it read through an outside name; -1 if a step failed.
int hostile_user(const Env& env) {
    const std::string z = env.fs.path("zone/drop"), o = env.fs.path("out/drop");
    return cgtest::run_as(mallory, [&] {
        char a[512], b[512], c[512];
        int read_outside = 0;
        for (int i = 0; i < rounds; ++i) {
            std::snprintf(a, sizeof a, "%s/h%d", o.c_str(), i);
            std::snprintf(b, sizeof b, "%s/h%d.l", o.c_str(), i);
            int fd = ::open(a, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
            if (fd < 0 || ::close(fd) != 0 || ::link(a, b) != 0) return -1;
            if ((fd = ::open(b, O_RDONLY | O_CLOEXEC)) < 0) return -1;  // its own file, outside: allowed
            ::close(fd);
            std::snprintf(c, sizeof c, "%s/z%d", z.c_str(), i);
            // Made without opening it: mallory may not open zone files.
            if (::mknod(c, S_IFREG | 0644, 0) != 0) return -1;
            std::snprintf(a, sizeof a, "%s/z%d.l", z.c_str(), i);
            std::snprintf(b, sizeof b, "%s/zl%d", o.c_str(), i);
            if (::link(c, a) != 0 || ::link(c, b) != 0) return -1;
            if ((fd = ::open(b, O_RDONLY | O_CLOEXEC)) >= 0) {
                ++read_outside;
                ::close(fd);
            } else if (errno != EPERM) {
                return -1;
            }
            std::snprintf(b, sizeof b, "%s/z%d.m", z.c_str(), i);
            if (::rename(a, b) != 0 || ::chmod(c, 0600) != 0) return -1;
            std::snprintf(a, sizeof a, "%s/p%d", z.c_str(), i);
            std::snprintf(b, sizeof b, "%s/p%d", o.c_str(), i);
            if (::mkfifo(a, 0666) != 0 || ::mkfifo(b, 0666) != 0) return -1;
        }
        return read_outside;
    });
}

}  // namespace

TEST_CASE("fanotify rescan: links, FIFOs and device nodes made in a loop never make an open scan the zone",
          "[fanotify][host]") {
    REQUIRE_ROOT();
    Env env;
    const auto before = env.enforcer->stats();
    CHECK(before.scans == 1);                      // apply()
    CHECK(before.scanned >= std::uint64_t{zone_files});
    CHECK(before.indexed >= std::uint64_t{zone_files});

    CHECK(hostile_user(env) == 0);
    // Device nodes (root makes them) in the zone, linked outside and opened by both names.
    // Linux 6.18 reports no permission event for opening a device node or a FIFO: they cost
    // nothing (and hold no zone data). Where one is reported, the index places the node in
    // the zone and mallory is refused by either name.
    for (int i = 0; i < 20; ++i) {
        const std::string in = env.fs.path("zone/drop/n" + std::to_string(i)),
                          out = env.fs.path("out/drop/n" + std::to_string(i));
        REQUIRE(::mknod(in.c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0);
        REQUIRE(::link(in.c_str(), out.c_str()) == 0);
        const auto events = env.enforcer->stats().permission_events;
        const int by_out = cgtest::open_as(mallory, out), by_in = cgtest::open_as(mallory, in);
        if (env.enforcer->stats().permission_events == events) {
            CHECK(by_out == 0);
            CHECK(by_in == 0);
        } else {
            CHECK(by_out == EPERM);
            CHECK(by_in == EPERM);
        }
    }
    // And the zone's own file, linked outside by root just now.
    REQUIRE(::link(env.fs.path("zone/secret.txt").c_str(), env.fs.path("out/secret_link").c_str()) == 0);
    CHECK(cgtest::open_as(mallory, env.fs.path("out/secret_link")) == EPERM);
    CHECK(cgtest::open_as(alice, env.fs.path("out/secret_link")) == 0);

    const auto after = env.enforcer->stats();
    INFO("permission events " << after.permission_events - before.permission_events << ", walks "
                              << after.walks - before.walks);
    CHECK(after.scans == before.scans);      // no tree scanned again
    CHECK(after.scanned == before.scanned);  // not one entry of the 20,000
    // Each permission event walks one ancestry at most; each new name in the zone once more
    // (the notify group places it). Nothing grows with the zone's size.
    CHECK(after.walks - before.walks <= 2 * (after.permission_events - before.permission_events) + 8 * rounds + 100);
    CHECK(after.indexed >= before.indexed + 2 * rounds);  // the new zone files, each once
}

TEST_CASE("fanotify rescan: a tree moved into a zone is indexed off the open path, its files linked outside are refused",
          "[fanotify][host]") {
    REQUIRE_ROOT();
    Env env;
    env.fs.mkdir("out/tree");
    env.fs.mkdir("out/tree/sub");
    env.fs.write("out/tree/sub/t.txt");
    // A file made there under the policy: the notify group has placed that directory
    // outside every zone (and remembers it until a directory moves).
    env.fs.write("out/tree/sub/early.txt");
    const auto before = env.enforcer->stats();
    REQUIRE(::rename(env.fs.path("out/tree").c_str(), env.fs.path("zone/tree").c_str()) == 0);
    // The indexer scans the moved tree (one scan of its two entries, not of the zone).
    for (int i = 0; i < 500 && env.enforcer->stats().scans == before.scans; ++i) std::this_thread::sleep_for(10ms);
    const auto scanned = env.enforcer->stats();
    CHECK(scanned.scans == before.scans + 1);
    CHECK(scanned.scanned - before.scanned == 3);
    REQUIRE(::link(env.fs.path("zone/tree/sub/t.txt").c_str(), env.fs.path("out/t_link").c_str()) == 0);
    CHECK(cgtest::open_as(mallory, env.fs.path("out/t_link")) == EPERM);
    CHECK(cgtest::open_as(alice, env.fs.path("out/t_link")) == 0);
    // A file made in the moved tree afterwards is placed in the zone by its creation.
    // (No wait: an open that walks outside every zone handles the notify queue first.)
    // Made without an open (an open would teach the enforcer its zone by itself).
    REQUIRE(::mknod(env.fs.path("zone/tree/sub/late.txt").c_str(), S_IFREG | 0644, 0) == 0);
    REQUIRE(::link(env.fs.path("zone/tree/sub/late.txt").c_str(), env.fs.path("out/late_link").c_str()) == 0);
    CHECK(cgtest::open_as(mallory, env.fs.path("out/late_link")) == EPERM);
    CHECK(env.enforcer->stats().scans == scanned.scans);
}

// A file's zone changes (a link into a zone) while the workers are deciding opens of it by
// its outside name: the notify thread takes the file's ignore mark away without waiting
// for those decisions (no exclusive lock: a creator made hundreds of such changes a second
// and each lock stalled every worker, see bench/rescan). A decision that looked the file
// up before the change and placed its mark after the removal must take the mark back, or
// the outside name would read the zone file from then on.
TEST_CASE("fanotify rescan: a file linked into a zone while its outside name is opened in a loop is refused by that "
          "name afterwards (no stale ignore mark)",
          "[fanotify][host]") {
    REQUIRE_ROOT();
    Env env;
    constexpr int files = 120;
    struct Shared {
        std::atomic<int> stop{0};
        std::atomic<int> opened{0};
    };
    auto* shared = static_cast<Shared*>(
        ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    REQUIRE(shared != MAP_FAILED);
    int leaked = 0, failed = 0;
    for (int i = 0; i < files; ++i) {
        const std::string out = env.fs.path("out/drop/r" + std::to_string(i)),
                          in = env.fs.path("zone/drop/r" + std::to_string(i));
        env.fs.write("out/drop/r" + std::to_string(i));
        REQUIRE(::chown(out.c_str(), mallory.uid, mallory.gid) == 0);
        new (shared) Shared();
        const char* path = out.c_str();
        // mallory opens her file by its outside name until told to stop.
        std::thread opener([&] {
            cgtest::run_as(mallory, [&] {
                while (!shared->stop.load()) {
                    int f = ::open(path, O_RDONLY | O_CLOEXEC);
                    if (f >= 0) shared->opened.fetch_add(1), ::close(f);
                }
                return 0;
            });
        });
        // Linked into the zone after a varying number of opens, while they go on.
        while (shared->opened.load() < 1 + i % 7) std::this_thread::yield();
        const int linked = ::link(out.c_str(), in.c_str());
        std::this_thread::sleep_for(std::chrono::microseconds(200 * (i % 5)));
        shared->stop = 1;
        opener.join();
        REQUIRE(linked == 0);
        // Refused within 2 s (once the notify thread has handled the link), then every time.
        const int r = cgtest::run_as(mallory, [&] {
            bool refused = false;
            for (int k = 0; k < 400 && !refused; ++k) {
                int f = ::open(path, O_RDONLY | O_CLOEXEC);
                if (f < 0 && errno == EPERM) refused = true;
                else if (f >= 0) ::close(f), ::usleep(5000);
                else return 2;
            }
            int after = 0;
            for (int k = 0; k < 20; ++k) {
                int f = ::open(path, O_RDONLY | O_CLOEXEC);
                if (f >= 0) ++after, ::close(f);
            }
            return refused && after == 0 ? 0 : 1;
        });
        leaked += r == 1;
        failed += r != 0 && r != 1;
    }
    ::munmap(shared, sizeof(Shared));
    CHECK(failed == 0);
    CHECK(leaked == 0);
    // The zone's user still reads it by its outside name.
    CHECK(cgtest::open_as(alice, env.fs.path("out/drop/r0")) == 0);
}
