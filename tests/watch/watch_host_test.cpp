// [watch] on this machine (root): the real custguardd with the fanotify enforcer and its
// notification watcher on a private tmpfs, a scratch journald read back with sd-journal,
// and files written by test users with real programs (cp, a shell redirection, mv, a
// program writing 4 KiB pieces). Records must appear within 2 s of the write, name the
// writer, say whether the file is a copy of a zone file, and with "protect" the enforcer
// must refuse the copy to a user the zone does not allow, also after a restart.
#include "watch_harness.hpp"

using namespace cgwatch;

TEST_CASE("a copy of a zone file written outside the zone is recorded within 2 s with its writer and zone, "
          "and protected by inode",
          "[watch][host]") {
    Watch w("on_customer_data = \"protect\"\n");
    const auto& u = users();
    struct Way {
        const char* name;
        std::string target;
        std::string script;
        std::string exe;  // base name of the writer's program
    };
    const std::string src = w.zone_file().string();
    const std::string pub = w.public_dir().string();
    const std::string staging = (w.data() / "staging").string();
    const std::string python = "import sys\nsrc=open(sys.argv[1],'rb').read()\nf=open(sys.argv[2],'wb')\n"
                               "import time\nfor i in range(0,len(src),4096):\n f.write(src[i:i+4096]); f.flush(); time.sleep(0.002)\nf.close()\n";
    const Way ways[] = {
        {"cp", pub + "/by-cp.csv", "cp " + src + " " + pub + "/by-cp.csv", "cp"},
        // dash opens the redirection itself, runs cat on it and closes it last: the shell
        // is the program that created and closed the file.
        {"shell redirection", pub + "/by-redirect.csv", "cat " + src + " > " + pub + "/by-redirect.csv; true", "dash"},
        {"4 KiB pieces", pub + "/by-pieces.csv",
         "python3 -c \"$0\" " + w.zone_file("big.csv").string() + " " + pub + "/by-pieces.csv", "python3"},
        {"rename into the share", pub + "/by-mv.csv",
         "cp " + src + " " + staging + "/x.csv && mv " + staging + "/x.csv " + pub + "/by-mv.csv", "mv"},
    };
    for (const auto& way : ways) {
        DYNAMIC_SECTION(way.name) {
            cgtest::RunResult r;
            if (std::string(way.name) == "4 KiB pieces")
                r = cgtest::run({"/bin/sh", "-c", way.script, python}, {}, u.alice);
            else
                r = Watch::as(u.alice, way.script);
            REQUIRE(r.rc == 0);
            std::chrono::milliseconds took{};
            auto rec = w.wait_record(way.target, took);
            REQUIRE(rec);
            INFO("record after " << took.count() << " ms");
            CHECK(took < 2s);
            CHECK(field(*rec, "MESSAGE_ID") == "c7c30392d91d45ebb1473e0655df735b");
            CHECK(field(*rec, "CUSTGUARD_COPY_OF") == "customers");
            CHECK(field(*rec, "CUSTGUARD_UID") == std::to_string(u.alice.uid));
            CHECK(field(*rec, "CUSTGUARD_USER") == "cgwatch-alice");
            {
                INFO(w.log());  // says why, when the program is unknown
                CHECK_THAT(fs::path(field(*rec, "CUSTGUARD_EXE")).filename().string(), Catch::StartsWith(way.exe));
            }
            CHECK(field(*rec, "CUSTGUARD_ACTION") == "protected");
            CHECK(field(*rec, "CUSTGUARD_ZONE") == "customers");
            CHECK_THAT(field(*rec, "CUSTGUARD_CATEGORIES"), Catch::Contains("contact"));
            CHECK_THAT(field(*rec, "CUSTGUARD_DETECTORS"), Catch::Contains("email:"));
            // Within a second of the record the enforcer has the inode: bob is refused,
            // alice (allowed in the zone) still reads it.
            CHECK(cgtest::read_as(u.bob, way.target) == EPERM);
            CHECK(cgtest::read_as(u.alice, way.target) == 0);
            // Renamed, it stays protected: the inode is what is protected.
            fs::rename(way.target, way.target + ".renamed");
            CHECK(cgtest::read_as(u.bob, way.target + ".renamed") == EPERM);
            CHECK(w.records(way.target).size() == 1);
        }
    }
}

// Regression (CI, "rename into the share"): the writer had exited before its event was
// read, and the record named no program. The exec tracker knows every program that ran.
TEST_CASE("a writer that exited before the watcher read its event is named by the exec tracker", "[watch][host]") {
    Watch w("on_customer_data = \"record\"\n", true);
    const auto& u = users();
    // Outside the zones' filesystem too: the stopped enforcer would hold opens there.
    const std::string pub = w.public_dir().string();
    const std::string staging = (w.public_dir().parent_path() / "staging").string();
    const std::string src = staging + "/rows.csv";
    cgtest::spit(src, customer_csv(30, 5));
    ::chmod(src.c_str(), 0644);
    struct Way {
        const char* name;
        std::string target;
        std::string script;
        std::string exe;
    };
    const Way ways[] = {
        {"cp", pub + "/late-cp.csv", "cp " + src + " " + pub + "/late-cp.csv", "cp"},
        {"mv", pub + "/late-mv.csv", "cp " + src + " " + staging + "/y.csv && mv " + staging + "/y.csv " + pub + "/late-mv.csv", "mv"},
        {"shell redirection", pub + "/late-redirect.csv", "cat " + src + " > " + pub + "/late-redirect.csv; true", "dash"},
    };
    for (const auto& way : ways) {
        DYNAMIC_SECTION(way.name) {
            w.pause();
            const auto r = Watch::as(u.alice, way.script);  // run, exited and reaped while custguardd is stopped
            w.resume();
            REQUIRE(r.rc == 0);
            std::chrono::milliseconds took{};
            auto rec = w.wait_record(way.target, took);
            REQUIRE(rec);
            CHECK(field(*rec, "CUSTGUARD_UID") == std::to_string(u.alice.uid));
            INFO(w.log());
            CHECK_THAT(fs::path(field(*rec, "CUSTGUARD_EXE")).filename().string(), Catch::StartsWith(way.exe));
            CHECK_THAT(w.log(), !Catch::Contains("is unknown"));
        }
    }
}

// Regression (hostile route): a file created empty, left until its scan found nothing, then
// filled with customer data through a descriptor that stays open, gave no FAN_CLOSE_WRITE
// and was never scanned again; anyone could read it as long as the writer kept it open.
TEST_CASE("a file filled later through a descriptor kept open is scanned once its writes stop, before any close",
          "[watch][host]") {
    Watch w("on_customer_data = \"protect\"\n");
    const auto& u = users();
    const fs::path target = w.public_dir() / "held-open.csv";
    const fs::path pidfile = w.public_dir() / "writer.pid";
    const std::string python =
        "import os, sys, time\n"
        "rows = open(sys.argv[1], 'rb').read()\n"
        "f = open(sys.argv[2], 'wb')\n"  // created empty
        "open(sys.argv[3], 'w').write(str(os.getpid()))\n"
        "time.sleep(2)\n"  // well past the watcher's quiet time: the empty file is settled
        "f.write(rows); f.flush()\n"
        "time.sleep(30)\n";  // kept open; the test ends it
    REQUIRE(cgtest::run({"/bin/sh", "-c", "python3 -c \"$0\" \"$@\" >/dev/null 2>&1 &", python, w.zone_file().string(),
                         target.string(), pidfile.string()},
                        {}, u.alice)
                .rc == 0);
    std::chrono::milliseconds took{};
    auto rec = w.wait_record(target, took, 8s);
    const bool writer_alive = end_writer(pidfile);
    REQUIRE(rec);
    INFO("record " << took.count() << " ms after the writer started");
    CHECK(writer_alive);  // found while the descriptor was still open
    CHECK(took < 4500ms);  // 2 s before the write, then within the 2 s the copies get
    CHECK(field(*rec, "CUSTGUARD_COPY_OF") == "customers");
    CHECK(field(*rec, "CUSTGUARD_ACTION") == "protected");
    CHECK_THAT(fs::path(field(*rec, "CUSTGUARD_EXE")).filename().string(), Catch::StartsWith("python3"));
    CHECK(cgtest::read_as(u.bob, target) == EPERM);
}

// A log kept open and written every second must not be scanned every second (FAN_MODIFY
// settles after 500 ms): rescans of one inode written through an open descriptor wait
// 2 s, then 4 s, 8 s… (WatcherOptions::reopen_rescan).
TEST_CASE("a file written every second through a descriptor kept open is rescanned with growing pauses",
          "[watch][host]") {
    Watch w("on_customer_data = \"record\"\n");
    const auto& u = users();
    const fs::path target = w.public_dir() / "growing.csv";
    const std::string python =
        "import sys, time\n"
        "rows = open(sys.argv[1], 'rb').read()\n"
        "f = open(sys.argv[2], 'wb')\n"
        "f.write(rows); f.flush()\n"
        "for i in range(12):\n"
        "    time.sleep(1); f.write(rows); f.flush()\n";
    REQUIRE(cgtest::run({"/bin/sh", "-c", "python3 -c \"$0\" \"$@\"", python, w.zone_file().string(), target.string()},
                        {}, u.alice)
                .rc == 0);
    std::this_thread::sleep_for(1500ms);  // the close's scan, after the last write
    const auto found = w.records(target);
    // Every second without the pauses (12 or 13); with them: the create's, 2 s, 4 s and
    // 8 s later, and the close's.
    CHECK(found.size() >= 3);
    CHECK(found.size() <= 6);
}

// A file its writer still holds open (or maps shared) after it settled is rescanned while
// it is held, because stores into a shared mapping give no event (watch_attack_test.cpp,
// "mapping kept"). Those rescans back off like FAN_MODIFY's: the settle's scan, then 2 s and
// 4 s later. A file written once and left open idle for 10 s is thus scanned at most 3 times
// (a rescan every 2 s would make 5) and at least twice (the held-file re-check is live).
TEST_CASE("a file written once and kept open idle is rescanned at most 3 times in 10 s (back-off 2 s, then 4 s)",
          "[watch][host]") {
    Watch w("on_customer_data = \"record\"\n");
    const auto& u = users();
    const fs::path target = w.public_dir() / "idle-open.csv";
    const fs::path pidfile = w.data() / "staging" / "idle.pid";
    fs::create_directories(pidfile.parent_path());
    const std::string python =
        "import os, sys, time\n"
        "rows = open(sys.argv[1], 'rb').read()\n"
        "f = open(sys.argv[2], 'wb')\n"
        "f.write(rows); f.flush()\n"
        "open(sys.argv[3], 'w').write(str(os.getpid()))\n"
        "time.sleep(30)\n";  // kept open, idle; the test ends it
    REQUIRE(cgtest::run({"/bin/sh", "-c", "python3 -c \"$0\" \"$@\" >/dev/null 2>&1 &", python, w.zone_file().string(),
                         target.string(), pidfile.string()},
                        {}, u.alice)
                .rc == 0);
    std::this_thread::sleep_for(10s);
    const auto found = w.records(target);
    const bool writer_alive = end_writer(pidfile);
    INFO(w.log());
    CHECK(writer_alive);
    CHECK(found.size() >= 2);
    CHECK(found.size() <= 3);
}

// Regression (hostile route): a copy written below a directory whose path is longer than
// PATH_MAX (made with relative mkdir and cd, read back the same way) was never scanned:
// the watcher named files by /proc/self/fd paths and opened them by path.
TEST_CASE("a copy below a path longer than PATH_MAX is found, recorded with its whole path and protected",
          "[watch][host]") {
    // The share on a filesystem without zones: the fanotify enforcer refuses any open it
    // cannot name on the zones' filesystem (past PATH_MAX too); BPF LSM decides by dentry.
    Watch w("on_customer_data = \"protect\"\n", true);
    const auto& u = users();
    const std::string level(200, 'd');
    constexpr int depth = 25;  // 25 x 201 bytes below the share: longer than 4096
    // bash changes directory step by step (dash's cd gives up past PATH_MAX).
    auto bash_as = [](const cgtest::Cred& who, const std::string& script) {
        return cgtest::run({"/bin/bash", "-c", script}, {}, who);
    };
    std::string down = "cd " + w.public_dir().string();
    for (int i = 0; i < depth; ++i) down += " && mkdir -p " + level + " && cd " + level;
    const auto made = bash_as(u.alice, down + " && cp " + w.zone_file().string() + " deep.csv");
    INFO(made.err);
    REQUIRE(made.rc == 0);
    std::string deep = w.public_dir().string();
    for (int i = 0; i < depth; ++i) deep += "/" + level;
    deep += "/deep.csv";
    REQUIRE(deep.size() > PATH_MAX);
    std::chrono::milliseconds took{};
    auto rec = w.wait_record(deep, took);
    REQUIRE(rec);
    CHECK(took < 2s);
    CHECK(field(*rec, "CUSTGUARD_COPY_OF") == "customers");
    CHECK(field(*rec, "CUSTGUARD_ACTION") == "protected");
    // Read the way it was written: relative steps.
    std::string walk = "cd " + w.public_dir().string();
    for (int i = 0; i < depth; ++i) walk += " && cd " + level;
    CHECK(bash_as(u.bob, walk + " && cat deep.csv > /dev/null").rc != 0);
    CHECK(bash_as(u.alice, walk + " && cat deep.csv > /dev/null").rc == 0);
}

// Regression (hostile route): copies made in a folder outside the watched trees, then the
// folder moved into the share in one rename: only the folder had an event, and the files
// in it were never scanned.
TEST_CASE("a folder moved into the share from outside the watched trees is scanned file by file", "[watch][host]") {
    Watch w("on_customer_data = \"protect\"\n");
    const auto& u = users();
    const std::string staging = (w.data() / "staging" / "folder").string();
    REQUIRE(Watch::as(u.alice, "mkdir -p " + staging + "/sub && cp " + w.zone_file().string() + " " + staging +
                                   "/a.csv && cp " + w.zone_file("big.csv").string() + " " + staging + "/sub/b.csv")
                .rc == 0);
    std::this_thread::sleep_for(1s);  // written and settled where nobody watches
    REQUIRE(Watch::as(u.alice, "mv " + staging + " " + (w.public_dir() / "folder").string()).rc == 0);
    for (const fs::path& moved : {w.public_dir() / "folder" / "a.csv", w.public_dir() / "folder" / "sub" / "b.csv"}) {
        INFO(moved);
        std::chrono::milliseconds took{};
        auto rec = w.wait_record(moved, took);
        REQUIRE(rec);
        CHECK(took < 2s);
        CHECK(field(*rec, "CUSTGUARD_COPY_OF") == "customers");
        CHECK(field(*rec, "CUSTGUARD_ACTION") == "protected");
        CHECK_THAT(fs::path(field(*rec, "CUSTGUARD_EXE")).filename().string(), Catch::StartsWith("mv"));
        CHECK(cgtest::read_as(u.bob, moved) == EPERM);
    }
}

TEST_CASE("protection of a find survives a restart of custguardd", "[watch][host]") {
    Watch w("on_customer_data = \"protect\"\n");
    const auto& u = users();
    const std::string target = (w.public_dir() / "kept.csv").string();
    REQUIRE(Watch::as(u.alice, "cp " + w.zone_file().string() + " " + target).rc == 0);
    std::chrono::milliseconds took{};
    REQUIRE(w.wait_record(target, took));
    REQUIRE(cgtest::read_as(u.bob, target) == EPERM);
    w.restart();
    CHECK(cgtest::read_as(u.bob, target) == EPERM);
    CHECK(cgtest::read_as(u.alice, target) == 0);
}

TEST_CASE("the protected-file list keeps one line an inode, skips damaged lines and still protects what it lists",
          "[watch][host]") {
    Watch w("on_customer_data = \"protect\"\n");
    const auto& u = users();
    const fs::path first = w.public_dir() / "first.csv";
    REQUIRE(Watch::as(u.alice, "cp " + w.zone_file().string() + " " + first.string()).rc == 0);
    std::chrono::milliseconds took{};
    REQUIRE(w.wait_record(first, took));
    // The list as an older custguardd, or a hand edit, could leave it: the same inode
    // twice and a damaged line.
    const std::string line = cgtest::slurp(w.protected_list());
    REQUIRE(std::count(line.begin(), line.end(), '\n') == 1);
    cgtest::spit(w.protected_list(), line + "not a line of the list\n" + line);
    w.restart();
    CHECK(cgtest::read_as(u.bob, first) == EPERM);
    CHECK_THAT(w.log(), Catch::Contains("malformed line"));
    // The next protect rewrites the list: the inode once, and the new find.
    const fs::path second = w.public_dir() / "second.csv";
    REQUIRE(Watch::as(u.alice, "cp " + w.zone_file().string() + " " + second.string()).rc == 0);
    REQUIRE(w.wait_record(second, took));
    const std::string list = cgtest::slurp(w.protected_list());
    CHECK(std::count(list.begin(), list.end(), '\n') == 2);
    CHECK_THAT(list, Catch::Contains(first.string()) && Catch::Contains(second.string()));
}

TEST_CASE("customer data that is no copy is recorded without CUSTGUARD_COPY_OF, protect_as protects it",
          "[watch][host]") {
    Watch w("on_customer_data = \"protect\"\nprotect_as = \"customers\"\n");
    const auto& u = users();
    const fs::path target = w.public_dir() / "export.csv";
    cgtest::spit(w.data() / "staging" / "gen.csv", customer_csv(25, 7));  // other rows than any zone file
    REQUIRE(Watch::as(u.alice, "cat " + (w.data() / "staging" / "gen.csv").string() + " > " + target.string()).rc == 0);
    std::chrono::milliseconds took{};
    auto rec = w.wait_record(target, took);
    REQUIRE(rec);
    INFO("record after " << took.count() << " ms");
    CHECK(took < 2s);
    CHECK_FALSE(rec->count("CUSTGUARD_COPY_OF"));
    CHECK_THAT(field(*rec, "CUSTGUARD_DETECTORS"), Catch::Contains("email:25"));
    CHECK(field(*rec, "CUSTGUARD_CATEGORIES") == "contact");
    CHECK(field(*rec, "CUSTGUARD_ACTION") == "protected");
    CHECK(cgtest::read_as(u.bob, target) == EPERM);
}

TEST_CASE("record only: a find is recorded and nothing is protected, a file without customer data gives no record",
          "[watch][host]") {
    Watch w("on_customer_data = \"record\"\n");
    const auto& u = users();
    const fs::path copy = w.public_dir() / "copy.csv";
    const fs::path plain = w.public_dir() / "minutes.txt";
    REQUIRE(Watch::as(u.alice, "cp " + w.zone_file().string() + " " + copy.string() +
                                   " && echo 'meeting at ten, nothing else' > " + plain.string()).rc == 0);
    std::chrono::milliseconds took{};
    auto rec = w.wait_record(copy, took);
    INFO(w.log());
    REQUIRE(rec);
    CHECK(field(*rec, "CUSTGUARD_ACTION") == "recorded");
    CHECK(cgtest::read_as(u.bob, copy) == 0);
    std::this_thread::sleep_for(1500ms);  // well past the settle time of the plain file
    CHECK(w.records(plain).empty());
}

TEST_CASE("a file written in many pieces is scanned once, after it settles", "[watch][host]") {
    Watch w("on_customer_data = \"record\"\n");
    const auto& u = users();
    const fs::path target = w.public_dir() / "appended.csv";
    // 40 appends, each its own open and close (40 FAN_CLOSE_WRITE events), 20 ms apart.
    const std::string script = "i=0; while [ $i -lt 40 ]; do echo \"$i,user$i@example.co.jp,03-5555-$((1000 + i))\" >> " +
                               target.string() + "; i=$((i+1)); sleep 0.02; done";
    REQUIRE(Watch::as(u.alice, script).rc == 0);
    std::chrono::milliseconds took{};
    auto rec = w.wait_record(target, took);
    REQUIRE(rec);
    CHECK_THAT(field(*rec, "CUSTGUARD_DETECTORS"), Catch::Contains("email:40"));
    std::this_thread::sleep_for(1500ms);
    CHECK(w.records(target).size() == 1);
}

// The sweep of shared mappings is bounded (SweepLimits): a process with more than 4 MiB of
// maps is not read further, and at most 1,024 mapped files are followed. What a bound
// leaves out is recorded as lost (source watch), and the watcher goes on: a file mapped
// and written through the mapping by another process is found afterwards (while the
// process with many mappings still runs; once the one with many files has ended).
TEST_CASE("the sweep of shared mappings records what its bounds leave out as lost and goes on", "[watch][host]") {
    struct Bound {
        const char* name;
        std::string program;  // $1 the share, $2 a file for its pid
        const char* reason;   // in CUSTGUARD_LOST_REASON
        bool check_while_running;
    };
    const Bound bounds[] = {
        {"a process with more than 4 MiB of maps: 20,000 mappings of a file with a long name",
         "import os, sys, time\n" + mmap_py + "fd = os.open(sys.argv[1] + '/' + 'm' * 200, os.O_RDWR | os.O_CREAT, 0o644)\n"
         "os.ftruncate(fd, 4096)\nms = [map_shared(fd, 4096) for i in range(20000)]\nos.close(fd)\n"
         "open(sys.argv[2], 'w').write(str(os.getpid()))\ntime.sleep(60)\n",
         "MiB of memory mappings", true},
        {"more mapped files than the sweep follows: 1,100",
         "import os, sys, time\n" + mmap_py + "os.mkdir(sys.argv[1] + '/many')\nfor i in range(1100):\n"
         "    fd = os.open('%s/many/f%d' % (sys.argv[1], i), os.O_RDWR | os.O_CREAT, 0o644)\n"
         "    os.ftruncate(fd, 4096)\n    map_shared(fd, 4096)\n    os.close(fd)\n"
         "open(sys.argv[2], 'w').write(str(os.getpid()))\ntime.sleep(60)\n",
         "are mapped shared and writable", false},
    };
    const auto& u = users();
    const std::string alive =
        "import os, sys, time\n" + mmap_py + "d = open(sys.argv[1], 'rb').read()\nt = sys.argv[2]\n"
        "open(t, 'wb').write(b'x' * len(d))\ntime.sleep(1)\nfd = os.open(t, os.O_RDWR)\nm = map_shared(fd, len(d))\n"
        "os.close(fd)\nopen(sys.argv[3], 'w').write(str(os.getpid()))\ntime.sleep(1)\nctypes.memmove(m, d, len(d))\n"
        "time.sleep(60)\n";
    for (const auto& bound : bounds) {
        DYNAMIC_SECTION(bound.name) {
            Watch w("on_customer_data = \"record\"\n");
            const fs::path pidfile = w.data() / "staging" / "bound.pid";
            const fs::path alive_pid = w.data() / "staging" / "alive.pid";
            REQUIRE(cgtest::run({"/bin/sh", "-c", "python3 -c \"$0\" \"$@\" >/dev/null 2>&1 &", bound.program,
                                 w.public_dir().string(), pidfile.string()},
                                {}, u.alice)
                        .rc == 0);
            std::optional<JournalEntry> lost;
            const auto t0 = std::chrono::steady_clock::now();
            while (!lost && std::chrono::steady_clock::now() - t0 < 20s) {
                for (auto& e : w.lost_records())
                    if (field(e, "CUSTGUARD_LOST_SOURCE") == "watch" &&
                        field(e, "CUSTGUARD_LOST_REASON").find(bound.reason) != std::string::npos)
                        lost = std::move(e);
                std::this_thread::sleep_for(100ms);
            }
            INFO(w.log());
            CHECK(lost);
            if (!bound.check_while_running) CHECK(end_writer(pidfile));
            const fs::path target = w.public_dir() / "alive.csv";
            REQUIRE(cgtest::run({"/bin/sh", "-c", "python3 -c \"$0\" \"$@\" >/dev/null 2>&1 &", alive,
                                 w.zone_file().string(), target.string(), alive_pid.string()},
                                {}, u.alice)
                        .rc == 0);
            std::chrono::milliseconds took{};
            auto rec = w.wait_record(target, took, 10s);
            CHECK(end_writer(alive_pid));  // found while its mapping was kept
            if (bound.check_while_running) CHECK(end_writer(pidfile));
            REQUIRE(rec);
            CHECK(field(*rec, "CUSTGUARD_COPY_OF") == "customers");
            CHECK(took < 8s);  // stores at 2 s, then a sweep (2 s) and the settle
        }
    }
}
