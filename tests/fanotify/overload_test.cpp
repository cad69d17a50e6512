// The fanotify enforcer under load, with a real fanotify_testd process around it.
//
// Its notify group's queue is the kernel's limited one (fs.fanotify.max_queued_events), so
// a stalled daemon cannot grow kernel memory without bound. Its overflow must not weaken
// enforcement: the zone index is rebuilt from a scan, ignore marks are flushed, and until
// the scan ends an unknown multiply linked file is refused. Here a daemon stopped with
// SIGSTOP misses the creation of more zone files than its queue holds; two files get a name
// in the zone during that storm and a zone file is moved out of it. By their names outside
// the zone all three stay refused to an outsider.
//
// The threads that answer opens run at nice -10; where that is refused, the enforcer says so.
// (Allowed by RLIMIT_NICE alone, as the unit's LimitNICE= does without CAP_SYS_NICE, is
// checked under systemd in tests/system/guest_test: raising that limit here would need
// CAP_SYS_RESOURCE, which a test's environment may lack.)
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "testd.hpp"

using namespace std::chrono_literals;
using cgtest::Cred;
using cgtest::Counters;
using cgtest::Testd;

namespace {

const Cred alice{60001, 60001, {}};    // allowed in the zone
const Cred mallory{60009, 60009, {}};  // in no allow list

}  // namespace

TEST_CASE("fanotify overflow: a notify-queue overflow rebuilds the zone index, and links made during it stay refused",
          "[fanotify][host]") {
    REQUIRE_ROOT();
    cgtest::Tmpfs fs;
    REQUIRE(fs.ok());
    fs.mkdir("zone");
    fs.mkdir("zone/drop", 01777);
    fs.mkdir("out", 01777);
    fs.write("zone/secret.txt");
    fs.write("zone/moved.txt");
    fs.write("out/pre.txt");
    fs.write("out/plain.txt");

    Testd daemon(fs.path("zone"));
    std::optional<Counters> c = daemon.stats();
    CHECK(c->overflows == 0);
    const auto scans_at_start = c->scans;

    // Before the storm, mallory reads a file outside every zone: it gets an ignore mark.
    REQUIRE(cgtest::open_as(mallory, fs.path("out/pre.txt")) == 0);

    unsigned long long limit = 0;
    std::ifstream("/proc/sys/fs/fanotify/max_queued_events") >> limit;
    REQUIRE(limit > 0);
    const unsigned long long storm = limit + 1000;

    REQUIRE(::kill(daemon.pid(), SIGSTOP) == 0);
    for (int i = 0; i < 500 && daemon.state() != 'T'; ++i) std::this_thread::sleep_for(2ms);
    REQUIRE(daemon.state() == 'T');
    // Nothing here may open a file on the marked filesystem: it would wait for the daemon.
    // Files made without an open raise no permission event.
    char name[64];
    unsigned long long made = 0;
    for (unsigned long long i = 0; i < storm; ++i) {
        std::snprintf(name, sizeof name, "zone/drop/s%llu", i);
        made += ::mknod(fs.path(name).c_str(), S_IFREG | 0644, 0) == 0;
    }
    REQUIRE(made == storm);
    // During the storm, past the queue's end: the ignored file gets a name in the zone,
    // and a new zone file gets one outside it.
    REQUIRE(::link(fs.path("out/pre.txt").c_str(), fs.path("zone/drop/pre.l").c_str()) == 0);
    REQUIRE(::mknod(fs.path("zone/drop/new.txt").c_str(), S_IFREG | 0644, 0) == 0);
    REQUIRE(::link(fs.path("zone/drop/new.txt").c_str(), fs.path("out/new_link").c_str()) == 0);
    // A move out of the zone the daemon will never hear of: it cannot judge the mover.
    REQUIRE(::rename(fs.path("zone/moved.txt").c_str(), fs.path("out/moved.txt").c_str()) == 0);
    REQUIRE(::kill(daemon.pid(), SIGCONT) == 0);

    // The overflow is read, and the rescan knows every file of the storm, also those whose
    // creation the queue lost.
    const unsigned long long files = storm + 3;  // secret.txt, the storm, pre.l, new.txt (not moved.txt)
    for (int i = 0; i < 600; ++i) {
        REQUIRE(::kill(daemon.pid(), SIGUSR1) == 0);
        std::this_thread::sleep_for(50ms);
        c = daemon.stats();
        if (c && c->overflows >= 1 && c->indexed >= files && c->scans > scans_at_start && c->kept_lost >= 1) break;
    }
    REQUIRE(c);
    INFO("queue limit " << limit << ", files made while stopped " << storm + 2 << ", scans " << c->scans
                        << ", indexed " << c->indexed << ", flushes " << c->flushes << ", kept in their zone "
                        << c->kept_lost);
    CHECK(c->overflows >= 1);
    CHECK(c->scans > scans_at_start);  // the rebuild
    CHECK(c->indexed >= files);
    CHECK(c->flushes >= 1);            // the ignore marks went with it
    CHECK(c->kept_lost == 1);          // moved.txt

    CHECK(cgtest::open_as(mallory, fs.path("out/pre.txt")) == EPERM);
    CHECK(cgtest::open_as(mallory, fs.path("out/new_link")) == EPERM);
    CHECK(cgtest::open_as(alice, fs.path("out/pre.txt")) == 0);
    CHECK(cgtest::open_as(alice, fs.path("out/new_link")) == 0);
    CHECK(cgtest::open_as(mallory, fs.path("out/moved.txt")) == EPERM);
    CHECK(cgtest::open_as(alice, fs.path("out/moved.txt")) == 0);
    CHECK(cgtest::open_as(mallory, fs.path("out/plain.txt")) == 0);  // not over-refusing
    // And the index stays current afterwards.
    REQUIRE(::mknod(fs.path("zone/drop/after.txt").c_str(), S_IFREG | 0644, 0) == 0);
    REQUIRE(::link(fs.path("zone/drop/after.txt").c_str(), fs.path("out/after_link").c_str()) == 0);
    CHECK(cgtest::open_as(mallory, fs.path("out/after_link")) == EPERM);
}

TEST_CASE("fanotify priority: the threads answering opens run at nice -10, the notify work at notify_nice, and say so when refused",
          "[fanotify][host]") {
    REQUIRE_ROOT();
    cgtest::Tmpfs fs;
    REQUIRE(fs.ok());
    fs.mkdir("zone");
    fs.mkdir("out");
    ::chmod(fs.path("out").c_str(), 0777);
    fs.write("zone/secret.txt");
    auto warned = [](const Testd& d) {
        for (const auto& l : d.lines())
            if (l.starts_with("warning: ") && l.find("LimitNICE=-10") != std::string::npos) return true;
        return false;
    };
    {
        Testd d(fs.path("zone"), false, 7);
        CHECK(d.threads_at_nice(-10) == 2);  // the two workers
        CHECK(d.threads_at_nice(7) == 1);    // the notify thread
        CHECK(d.threads_at_nice(19) == 1);   // the lane for heavy users' opens (fair share)
        CHECK_FALSE(warned(d));
        CHECK(cgtest::open_as(mallory, fs.path("zone/secret.txt")) == EPERM);
        CHECK(cgtest::open_as(alice, fs.path("zone/secret.txt")) == 0);
        // New files outside every zone: each first open waits for a drain of the notify
        // group, which its worker does itself at -10; the notify thread stays at 7.
        std::vector<std::string> created;  // named here: the child only makes system calls
        for (int i = 0; i < 50; ++i) created.push_back(fs.path("out/new" + std::to_string(i)));
        REQUIRE(cgtest::run_as(mallory, [&] {
                    for (const auto& f : created) {
                        int fd = ::open(f.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
                        if (fd < 0) return 1;
                        ::close(fd);
                    }
                    return 0;
                }) == 0);
        CHECK(d.threads_at_nice(-10) == 2);
        CHECK(d.threads_at_nice(7) == 1);
    }
    {
        Testd d(fs.path("zone"), /*no_sys_nice=*/true);
        CHECK(d.threads_at_nice(-10) == 0);
        CHECK(warned(d));
        CHECK(cgtest::open_as(mallory, fs.path("zone/secret.txt")) == EPERM);  // enforcing all the same
    }
}
