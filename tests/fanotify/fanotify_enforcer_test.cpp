// Host integration tests of the fanotify enforcer: real fanotify on a private tmpfs, opens
// by other users in forked children. Needs root.
#include <catch2/catch.hpp>

#include <sys/fanotify.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <condition_variable>
#include <ctime>
#include <mutex>

#include "daemon/fanotify/enforcer_select.hpp"
#include "daemon/fanotify/fanotify_enforcer.hpp"
#include "enforced.hpp"

using namespace custguard;
using namespace std::chrono_literals;
using cgtest::Cred;
using cgtest::Via;
using daemon::FanotifyEnforcer;
using daemon::FanotifyOptions;

namespace {

const Cred alice{60001, 60001, {}};
const Cred bob{60002, 60002, {}};
const Cred carol{60003, 60003, {}};  // unexpired grant
const Cred dave{60004, 60004, {}};   // expired grant
const Cred mallory{60009, 60009, {}};
const Cred sales_member{60011, 60011, {60100}};
const Cred sales_primary{60012, 60100, {}};
const Cred root{0, 0, {}};



// Zones:   1 customers  T/zone         deny,  record allowed; alice, %60100
//          2 nested     T/zone/nested  audit, no record;      bob
//          3 prog       T/prog         deny,  programs /usr/bin/cat; alice
//          4 grants     T/grant        deny;  grants carol (valid), dave (expired)
//          5 single     T/single.txt   deny;  alice   (a file as zone root)
policy::Compiled make_policy(const cgtest::Tmpfs& fs) {
    using policy::SubjectKind;
    using policy::Violation;
    policy::Compiled c;
    c.zones = {cgtest::zone(1, "customers", Violation::deny, true), cgtest::zone(2, "nested", Violation::audit, false),
               cgtest::zone(3, "prog", Violation::deny, true, true), cgtest::zone(4, "grants", Violation::deny, true),
               cgtest::zone(5, "single", Violation::deny, true)};
    c.roots = {{fs.path("grant"), 4}, {fs.path("prog"), 3}, {fs.path("single.txt"), 5},
               {fs.path("zone"), 1}, {fs.path("zone/nested"), 2}};
    c.subjects = {{1, SubjectKind::uid, 60001}, {1, SubjectKind::gid, 60100}, {2, SubjectKind::uid, 60002},
                  {3, SubjectKind::uid, 60001}, {5, SubjectKind::uid, 60001}};
    c.programs = {{3, "/usr/bin/cat"}};
    auto now = static_cast<std::uint64_t>(std::time(nullptr));
    c.grants = {{4, 60003, now + 3600}, {4, 60004, now - 10}};
    return c;
}

struct Env {
    cgtest::Tmpfs fs;
    cgtest::Collector events;
    std::unique_ptr<FanotifyEnforcer> enforcer;

    explicit Env(FanotifyOptions options = {}) {
        REQUIRE(fs.ok());
        for (auto d : {"zone", "zone/nested", "zone/sub", "zone/sub/deep", "prog", "grant", "out", "out/dir"})
            fs.mkdir(d);
        ::chmod(fs.path("zone").c_str(), 0777);  // files created later by alice
        ::chmod(fs.path("out").c_str(), 0777);
        for (auto f : {"zone/a.txt", "zone/nested/b.txt", "zone/sub/deep/d.txt", "prog/p.txt", "grant/g.txt",
                       "single.txt", "out/c.txt", "out/o.txt", "out/r.txt", "out/dir/f.txt", "zone/m.txt",
                       "zone/pre.txt"})
            fs.write(f);
        // A hard link made before the policy: the scan must find it.
        REQUIRE(::link(fs.path("zone/pre.txt").c_str(), fs.path("out/pre_link").c_str()) == 0);
        enforcer = cgtest::start_enforcer(events, make_policy(fs), std::move(options));
    }
    ~Env() {
        if (enforcer) enforcer->stop(true);
    }
};

struct Expected {
    std::uint32_t zone;
    cg_decision decision;
    cg_rule rule;
};

struct Case {
    const char* label;
    Cred cred;
    const char* path;
    Via via;
    int expect_errno;
    std::optional<Expected> event;
};

// The kernel's dev_t encoding, as events carry it.
std::uint64_t kdev(dev_t d) { return (std::uint64_t{major(d)} << 20) | minor(d); }

std::string self_comm() {
    std::ifstream in("/proc/self/comm");
    std::string s;
    std::getline(in, s);
    return s.substr(0, CG_COMM_LEN - 1);
}

std::uint32_t self_loginuid() {
    std::ifstream in("/proc/self/loginuid");
    std::uint64_t v = 4294967295u;
    in >> v;
    return static_cast<std::uint32_t>(v);
}

}  // namespace

TEST_CASE("fanotify enforcer: decision matrix", "[fanotify][host]") {
    REQUIRE_ROOT();
    Env env;
    const Expected customers_allow_user{1, CG_DECISION_ALLOW, CG_RULE_USER};  // recorded
    const Expected customers_deny{1, CG_DECISION_DENY, CG_RULE_NOT_ALLOWED};
    const Expected nested_audit{2, CG_DECISION_AUDIT, CG_RULE_NOT_ALLOWED};
    const std::vector<Case> cases = {
        {"listed user", alice, "zone/a.txt", Via::open, 0, customers_allow_user},
        {"listed user, io_uring", alice, "zone/a.txt", Via::io_uring, 0, customers_allow_user},
        {"listed user, io_uring worker", alice, "zone/a.txt", Via::io_uring_async, 0, customers_allow_user},
        {"unlisted user", mallory, "zone/a.txt", Via::open, EPERM, customers_deny},
        {"unlisted user, io_uring", mallory, "zone/a.txt", Via::io_uring, EPERM, customers_deny},
        {"unlisted user, io_uring worker", mallory, "zone/a.txt", Via::io_uring_async, EPERM, customers_deny},
        {"unlisted user, cat", mallory, "zone/a.txt", Via::exec_cat, EPERM, std::nullopt},
        {"unlisted user, deep file", mallory, "zone/sub/deep/d.txt", Via::open, EPERM, customers_deny},
        {"root is not exempt", root, "zone/a.txt", Via::open, EPERM, customers_deny},
        {"supplementary group", sales_member, "zone/a.txt", Via::open, 0, Expected{1, CG_DECISION_ALLOW, CG_RULE_GROUP}},
        {"primary group", sales_primary, "zone/a.txt", Via::open, 0, Expected{1, CG_DECISION_ALLOW, CG_RULE_GROUP}},
        {"user of the inner zone only", bob, "zone/a.txt", Via::open, EPERM, customers_deny},
        {"nested: deepest zone wins (audit)", alice, "zone/nested/b.txt", Via::open, 0, nested_audit},
        {"nested: unlisted user audited", mallory, "zone/nested/b.txt", Via::open, 0, nested_audit},
        {"nested: listed, not recorded", bob, "zone/nested/b.txt", Via::open, 0, std::nullopt},
        {"program required, other program", alice, "prog/p.txt", Via::open, EPERM,
         Expected{3, CG_DECISION_DENY, CG_RULE_PROGRAM}},
        {"program required, listed program", alice, "prog/p.txt", Via::exec_cat, 0, std::nullopt},
        {"program required, unlisted user", mallory, "prog/p.txt", Via::exec_cat, EPERM, std::nullopt},
        {"valid grant", carol, "grant/g.txt", Via::open, 0, Expected{4, CG_DECISION_ALLOW, CG_RULE_GRANT}},
        {"expired grant", dave, "grant/g.txt", Via::open, EPERM, Expected{4, CG_DECISION_DENY, CG_RULE_NOT_ALLOWED}},
        {"file as zone root, unlisted", mallory, "single.txt", Via::open, EPERM,
         Expected{5, CG_DECISION_DENY, CG_RULE_NOT_ALLOWED}},
        {"file as zone root, listed", alice, "single.txt", Via::open, 0, Expected{5, CG_DECISION_ALLOW, CG_RULE_USER}},
        {"outside every zone", mallory, "out/c.txt", Via::open, 0, std::nullopt},
        {"outside, io_uring", mallory, "out/c.txt", Via::io_uring_async, 0, std::nullopt},
        {"hard link made before the policy", mallory, "out/pre_link", Via::open, EPERM, customers_deny},
    };

    struct stat exe {};
    REQUIRE(::stat("/proc/self/exe", &exe) == 0);
    for (const auto& c : cases) {
        INFO(c.label << " (" << cgtest::to_string(c.via) << ", uid " << c.cred.uid << ", " << c.path << ")");
        std::size_t before = env.events.size();
        pid_t pid = 0;
        int r = cgtest::open_as(c.cred, env.fs.path(c.path), c.via, &pid);
        CHECK(r == c.expect_errno);
        if (c.via == Via::exec_cat) continue;  // the event belongs to cat's pid
        auto ev = env.events.for_process(pid, c.event ? 2000ms : 100ms);
        if (!c.event) {
            CHECK_FALSE(ev);
            CHECK(env.events.size() == before);
            continue;
        }
        REQUIRE(ev);
        const cg_event& raw = ev->raw;
        struct stat file {};
        REQUIRE(::stat(env.fs.path(c.path).c_str(), &file) == 0);
        CHECK(raw.abi_version == CG_ABI_VERSION);
        CHECK(raw.kind == CG_EV_OPEN);
        CHECK(raw.zone_id == c.event->zone);
        CHECK(raw.decision == c.event->decision);
        CHECK(raw.rule == c.event->rule);
        CHECK(raw.tgid == static_cast<std::uint32_t>(pid));
        if (c.via == Via::io_uring_async)
            CHECK(std::string(raw.comm).rfind("iou-wrk-", 0) == 0);
        else
            CHECK(std::string(raw.comm) == self_comm());
        if (c.via == Via::open) {
            CHECK(raw.pid == static_cast<std::uint32_t>(pid));
            CHECK((raw.open_flags & O_ACCMODE) == O_RDONLY);
            CHECK((raw.open_flags & 0100000) != 0);  // the kernel's O_LARGEFILE (x86-64)
            CHECK((raw.open_flags & O_CLOEXEC) == 0);  // not part of f_flags
        }
        CHECK(raw.uid == c.cred.uid);
        CHECK(raw.gid == c.cred.gid);
        CHECK(raw.loginuid == self_loginuid());
        CHECK(raw.dev == kdev(file.st_dev));
        CHECK(raw.ino == static_cast<std::uint64_t>(file.st_ino));
        CHECK(raw.exe_dev == kdev(exe.st_dev));
        CHECK(raw.exe_ino == static_cast<std::uint64_t>(exe.st_ino));
        CHECK(ev->path == env.fs.path(c.path));
        CHECK(std::string(raw.path) == ev->path);
        CHECK(ev->sensor == daemon::Sensor::fanotify);
        CHECK(ev->realtime_ns > 0);
    }
    auto counters = env.enforcer->counters();
    CHECK(counters.errors == 0);
    CHECK(counters.denied >= 10);
}

// Regression guard for the flood bound's shortcut (FanotifyOptions::admit_denial): a denial
// the pipeline will only count is refused all the same and carries what the count and the
// audit cross-check use (uid, zone, rule, file), but not its flags, client or path (unless
// the zone walk had it), which are three /proc reads per open; the first of a key is described in full, and allowed
// opens are never asked about.
TEST_CASE("fanotify enforcer: a denial the flood bound only counts is refused but not described",
          "[fanotify][host]") {
    REQUIRE_ROOT();
    struct Asked {
        std::mutex mutex;
        std::vector<std::uint32_t> uids;
        bool named = false;  // a file named before it was asked (Catch2 cannot check on other threads)
    };
    auto asked = std::make_shared<Asked>();
    FanotifyOptions options;
    // As a pipeline whose flood bound is spent for mallory's key and not for root's.
    options.admit_denial = [asked](const daemon::AccessEvent& ev) {
        std::lock_guard lk(asked->mutex);
        asked->uids.push_back(ev.raw.uid);
        asked->named = asked->named || !ev.path.empty() || ev.raw.path[0] != '\0';
        return ev.raw.uid == mallory.uid ? daemon::Admission::counted : daemon::Admission::first;
    };
    options.pending_client = [](std::uint32_t, std::string_view) { return std::string("192.0.2.9"); };
    Env env(std::move(options));
    struct stat file {};
    REQUIRE(::stat(env.fs.path("zone/a.txt").c_str(), &file) == 0);

    const struct {
        const char* label;
        Cred cred;
        int expect_errno;
        daemon::Admission admission;
        cg_decision decision;
    } cases[] = {
        {"counted denial", mallory, EPERM, daemon::Admission::counted, CG_DECISION_DENY},
        {"first denial of a key", root, EPERM, daemon::Admission::first, CG_DECISION_DENY},
        {"allowed open, not asked", alice, 0, daemon::Admission::not_asked, CG_DECISION_ALLOW},
    };
    for (const auto& c : cases) {
        INFO(c.label);
        pid_t pid = 0;
        CHECK(cgtest::open_as(c.cred, env.fs.path("zone/a.txt"), Via::open, &pid) == c.expect_errno);
        auto ev = env.events.for_process(pid);
        REQUIRE(ev);
        CHECK(ev->admission == c.admission);
        CHECK(ev->raw.decision == c.decision);
        CHECK(ev->raw.uid == c.cred.uid);
        CHECK(ev->raw.zone_id == 1);
        CHECK(ev->raw.rule == (c.decision == CG_DECISION_DENY ? CG_RULE_NOT_ALLOWED : CG_RULE_USER));
        CHECK(ev->raw.dev == kdev(file.st_dev));
        CHECK(ev->raw.ino == static_cast<std::uint64_t>(file.st_ino));
        CHECK(ev->raw.tgid == static_cast<std::uint32_t>(pid));
        if (c.admission == daemon::Admission::counted) {
            // Named only when the zone walk already had the name (free), and then rightly.
            if (!ev->path.empty()) CHECK(ev->path == env.fs.path("zone/a.txt"));
            CHECK(ev->raw.open_flags == 0);
            CHECK(ev->client.empty());
        } else {
            CHECK(ev->path == env.fs.path("zone/a.txt"));
            CHECK(std::string(ev->raw.path) == ev->path);
            CHECK((ev->raw.open_flags & O_ACCMODE) == O_RDONLY);
            CHECK((ev->raw.open_flags & 0100000) != 0);  // the kernel's O_LARGEFILE (x86-64)
            CHECK(ev->client == "192.0.2.9");
        }
    }
    std::lock_guard lk(asked->mutex);
    CHECK(asked->uids == std::vector<std::uint32_t>{mallory.uid, root.uid});
    CHECK_FALSE(asked->named);
}

TEST_CASE("fanotify enforcer: program rows match the executable by inode", "[fanotify][host]") {
    REQUIRE_ROOT();
    Env env;
    // cat as alice is allowed in zone prog and recorded with cat's identity.
    CHECK(cgtest::open_as(alice, env.fs.path("prog/p.txt"), Via::exec_cat) == 0);
    CHECK(cgtest::open_as(mallory, env.fs.path("prog/p.txt"), Via::exec_cat) == EPERM);
    struct stat cat {};
    REQUIRE(::stat("/usr/bin/cat", &cat) == 0);
    auto allowed = env.events.find([](const daemon::AccessEvent& e) { return e.raw.uid == 60001; });
    REQUIRE(allowed);
    CHECK(allowed->raw.zone_id == 3);
    CHECK(allowed->raw.decision == CG_DECISION_ALLOW);
    CHECK(allowed->raw.rule == CG_RULE_USER);
    CHECK(std::string(allowed->raw.comm) == "cat");
    CHECK(allowed->raw.exe_dev == kdev(cat.st_dev));
    CHECK(allowed->raw.exe_ino == static_cast<std::uint64_t>(cat.st_ino));
    auto denied = env.events.find([](const daemon::AccessEvent& e) { return e.raw.uid == 60009; });
    REQUIRE(denied);
    CHECK(denied->raw.decision == CG_DECISION_DENY);
    CHECK(denied->raw.rule == CG_RULE_NOT_ALLOWED);
}

// A link out of a zone and an unlink of the zone name move a file without FAN_RENAME. The
// linker is judged at the link's create as a mover is: mallory (not allowed, linking a
// world-writable zone file) leaves it in its zone, and her link is recorded (CG_EV_LINK,
// audit: it was made all the same); alice's (allowed) link is recorded as allowed.
TEST_CASE("fanotify enforcer: a zone file linked out and unlinked by a user not allowed in its zone stays in it",
          "[fanotify][host]") {
    REQUIRE_ROOT();
    Env env;
    // Made without an open (which would leave the zone in the enforcer's cache, and hide
    // the route): indexed from their creates.
    const mode_t mask = ::umask(0);
    for (auto f : {"zone/la.txt", "zone/lm.txt", "zone/lg.txt"})
        REQUIRE(::mknod(env.fs.path(f).c_str(), S_IFREG | 0666, 0) == 0);
    ::umask(mask);
    std::this_thread::sleep_for(200ms);
    auto move_by_link = [&](const cgtest::Cred& who, const std::string& from, const std::string& to) {
        return cgtest::run_as(who, [&] {
            if (::link(from.c_str(), to.c_str()) != 0) return errno;
            // Alive while its link is judged: a linker gone by then counts as not allowed.
            std::this_thread::sleep_for(300ms);
            return ::unlink(from.c_str()) == 0 ? 0 : errno;
        });
    };
    REQUIRE(move_by_link(alice, env.fs.path("zone/la.txt"), env.fs.path("out/la.txt")) == 0);
    REQUIRE(move_by_link(mallory, env.fs.path("zone/lm.txt"), env.fs.path("out/lm.txt")) == 0);
    // Allowed only through a supplementary group: the linker's groups are read only when a
    // %group row could decide (guards that read: without it she counts as not allowed).
    REQUIRE(move_by_link(sales_member, env.fs.path("zone/lg.txt"), env.fs.path("out/lg.txt")) == 0);
    std::this_thread::sleep_for(200ms);
    CHECK(cgtest::open_as(mallory, env.fs.path("out/lm.txt")) == EPERM);
    CHECK(cgtest::open_as(mallory, env.fs.path("out/lm.txt")) == EPERM);  // no ignore mark either
    CHECK(cgtest::open_as(alice, env.fs.path("out/lm.txt")) == 0);
    auto link = env.events.find([](const daemon::AccessEvent& e) { return e.raw.kind == CG_EV_LINK && e.raw.uid == 60009; });
    REQUIRE(link);
    CHECK(link->raw.decision == CG_DECISION_AUDIT);
    CHECK(link->raw.rule == CG_RULE_NOT_ALLOWED);
    CHECK(std::string(link->raw.path + std::strlen(link->raw.path) + 1) == "lm.txt");
    auto allowed = env.events.find([](const daemon::AccessEvent& e) { return e.raw.kind == CG_EV_LINK && e.raw.uid == 60001; });
    REQUIRE(allowed);
    CHECK(allowed->raw.decision == CG_DECISION_ALLOW);
    auto by_group = env.events.find([](const daemon::AccessEvent& e) { return e.raw.kind == CG_EV_LINK && e.raw.uid == 60011; });
    REQUIRE(by_group);
    CHECK(by_group->raw.decision == CG_DECISION_ALLOW);
    CHECK(by_group->raw.rule == CG_RULE_GROUP);
    CHECK(cgtest::open_as(mallory, env.fs.path("out/lg.txt")) == 0);  // out of the zone
}

// Guards the departed table against growing without bound: each zone file a user not
// allowed links out is kept in its zone by an entry (looked up on every open), and she can
// delete it at once and make the next. Entries of deleted files are retired by a sweep of
// the indexer; those of files that still exist stay, and keep theirs in the zone.
TEST_CASE("fanotify enforcer: entries of departed zone files are retired once deleted, and live ones kept",
          "[fanotify][host]") {
    REQUIRE_ROOT();
    Env env;
    const std::string zone = env.fs.path("zone"), out = env.fs.path("out");
    auto link_out = [&](const std::string& prefix, int from, int to) {
        return cgtest::run_as(mallory, [&] {
            for (int i = from; i < to; ++i) {
                const std::string z = zone + "/" + prefix + std::to_string(i), o = out + "/" + prefix + std::to_string(i);
                if (::mknod(z.c_str(), S_IFREG | 0666, 0) != 0 || ::link(z.c_str(), o.c_str()) != 0) return errno;
            }
            return 0;
        });
    };
    auto unlink_all = [&](const std::string& prefix, int from, int to, bool outside_too) {
        for (int i = from; i < to; ++i) {
            ::unlink((zone + "/" + prefix + std::to_string(i)).c_str());
            if (outside_too) ::unlink((out + "/" + prefix + std::to_string(i)).c_str());
        }
    };
    // Waits until the notify thread has handled every link.
    auto settle = [&] {
        REQUIRE(env.enforcer->wait_notifications(20s));
        return env.enforcer->stats().departed;
    };
    // Live: linked out, zone names unlinked.
    constexpr int live = 50;
    REQUIRE(link_out("k", 0, live) == 0);
    REQUIRE(settle() >= live);
    unlink_all("k", 0, live, false);
    // Churn: 13 rounds of 1,000 links out, each judged before both names go.
    constexpr int batch = 1000, rounds = 13;
    std::uint64_t most = 0;
    for (int r = 0; r < rounds; ++r) {
        REQUIRE(link_out("c", r * batch, (r + 1) * batch) == 0);
        most = std::max(most, settle());
        unlink_all("c", r * batch, (r + 1) * batch, true);
    }
    std::this_thread::sleep_for(300ms);  // the last sweep, if one is under way
    const auto st = env.enforcer->stats();
    INFO("departed now " << st.departed << ", swept " << st.departed_swept << ", most seen " << most);
    // Without sweeps the table would hold every one of the 13,050 entries.
    CHECK(st.departed_swept >= 4096);
    CHECK(st.departed <= 8192 + batch);
    for (int i = 0; i < live; ++i) {
        INFO("live departed file k" << i);
        CHECK(cgtest::open_as(mallory, out + "/k" + std::to_string(i)) == EPERM);
    }
    CHECK(cgtest::open_as(alice, out + "/k0") == 0);
}

// Guards the wait for the notify thread (wait_notifications(), and catch_up() before an
// overload answer "outside") against a notify thread that reads back to back: a read under
// way hides the events it took off the queue until it returns. The wait gave up after 64
// yields, which one read of a full buffer outlasts: the wait reported false, and an outside
// open was refused as "not caught up".
TEST_CASE("fanotify enforcer: the notify thread is waited for while a creator keeps it reading", "[fanotify][host]") {
    REQUIRE_ROOT();
    Env env;
    const std::string zone = env.fs.path("zone");
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> made{0};
    std::vector<std::thread> creators;
    for (int c = 0; c < 2; ++c)
        creators.emplace_back([&, c] {
            // No opens: each round is a create and a rename in the zone, two notifications.
            const std::string a = zone + "/w" + std::to_string(c), b = a + "b";
            while (!stop.load()) {
                if (::mknod(a.c_str(), S_IFREG | 0600, 0) == 0 && ::rename(a.c_str(), b.c_str()) == 0) made.fetch_add(1);
                ::unlink(b.c_str());
            }
        });
    int waits = 0, failed = 0;
    const auto end = std::chrono::steady_clock::now() + 4s;
    while (std::chrono::steady_clock::now() < end) {
        ++waits;
        if (!env.enforcer->wait_notifications(10s)) ++failed;
    }
    stop = true;
    for (auto& t : creators) t.join();
    const auto st = env.enforcer->stats();
    INFO("waits " << waits << ", failed " << failed << ", rounds " << made.load() << ", notifications "
                  << st.notify_events << ", overflows " << st.overflows);
    CHECK(made.load() >= 10000);  // the notify thread had something to read
    CHECK(waits >= 10);
    CHECK(failed == 0);
}

TEST_CASE("fanotify enforcer: files outside zones reach user space once per inode", "[fanotify][host]") {
    REQUIRE_ROOT();
    Env env;
    const std::string outside = env.fs.path("out/c.txt"), zone_file = env.fs.path("zone/a.txt");
    auto before = env.enforcer->stats();
    int rc = cgtest::run_as(mallory, [&] {
        for (int i = 0; i < 20; ++i)
            if (cgtest::open_read(outside, Via::open) != 0) return 1;
        return 0;
    });
    CHECK(rc == 0);
    auto after = env.enforcer->stats();
    CHECK(after.permission_events - before.permission_events <= 1);
    CHECK(after.ignore_marks - before.ignore_marks <= 1);
    // Zone files are decided every time (no ignore mark).
    rc = cgtest::run_as(mallory, [&] {
        int denied = 0;
        for (int i = 0; i < 5; ++i) denied += cgtest::open_read(zone_file, Via::open) == EPERM;
        return denied;
    });
    CHECK(rc == 5);
}

TEST_CASE("fanotify enforcer: files and directories created later", "[fanotify][host]") {
    REQUIRE_ROOT();
    Env env;
    const std::string later = env.fs.path("zone/later");
    const std::string created[] = {env.fs.path("zone/new.txt"), env.fs.path("zone/later/x.txt")};
    int rc = cgtest::run_as(alice, [&] {
        if (::mkdir(later.c_str(), 0755) != 0) return 1;
        for (const auto& f : created) {
            int fd = ::open(f.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
            if (fd < 0) return 2;
            (void)!::write(fd, "x", 1);
            ::close(fd);
        }
        return 0;
    });
    REQUIRE(rc == 0);
    CHECK(cgtest::open_as(mallory, env.fs.path("zone/new.txt")) == EPERM);
    CHECK(cgtest::open_as(mallory, env.fs.path("zone/later/x.txt"), Via::io_uring) == EPERM);
    CHECK(cgtest::open_as(alice, env.fs.path("zone/later/x.txt")) == 0);
    // A file created by a denied user in a writable zone directory cannot be reopened.
    pid_t pid = 0;
    const std::string mine = env.fs.path("zone/mine.txt");
    rc = cgtest::run_as(mallory, [&] {
        int fd = ::open(mine.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
        return fd < 0 ? errno : 0;
    }, &pid);
    CHECK(rc == EPERM);
    auto ev = env.events.for_process(pid);
    REQUIRE(ev);
    CHECK((ev->raw.open_flags & O_ACCMODE) == O_WRONLY);
    CHECK((ev->raw.open_flags & (O_CREAT | O_EXCL)) == 0);  // not kept in f_flags
}

TEST_CASE("fanotify enforcer: hard links", "[fanotify][host]") {
    REQUIRE_ROOT();
    Env env;
    SECTION("a link made outside after the policy reaches the zone file") {
        REQUIRE(::link(env.fs.path("zone/a.txt").c_str(), env.fs.path("out/hl_a").c_str()) == 0);
        pid_t pid = 0;
        CHECK(cgtest::open_as(mallory, env.fs.path("out/hl_a"), Via::open, &pid) == EPERM);
        auto ev = env.events.for_process(pid);
        REQUIRE(ev);
        CHECK(ev->raw.zone_id == 1);
        CHECK(ev->path == env.fs.path("out/hl_a"));
        CHECK(cgtest::open_as(alice, env.fs.path("out/hl_a"), Via::io_uring) == 0);
    }
    SECTION("a zone file opened first, then linked outside") {
        CHECK(cgtest::open_as(mallory, env.fs.path("zone/m.txt")) == EPERM);
        REQUIRE(::link(env.fs.path("zone/m.txt").c_str(), env.fs.path("out/hl_m").c_str()) == 0);
        CHECK(cgtest::open_as(mallory, env.fs.path("out/hl_m")) == EPERM);
    }
    SECTION("an ignored outside file linked into a zone loses its ignore mark") {
        CHECK(cgtest::open_as(mallory, env.fs.path("out/o.txt")) == 0);
        CHECK(cgtest::open_as(mallory, env.fs.path("out/o.txt")) == 0);
        REQUIRE(::link(env.fs.path("out/o.txt").c_str(), env.fs.path("zone/o_link").c_str()) == 0);
        std::this_thread::sleep_for(200ms);  // the link is seen asynchronously (no link permission event)
        CHECK(cgtest::open_as(mallory, env.fs.path("zone/o_link")) == EPERM);
        CHECK(cgtest::open_as(mallory, env.fs.path("out/o.txt")) == EPERM);
    }
}

// Guards that creates outside every zone stay reported (a hard link of a zone file made
// there is judged at its create: linked_out()), and that a directory moved into the zone
// has its later links indexed: the link made below, in a directory moved into the zone,
// must make the file's outside name (carrying an ignore mark) refuse.
TEST_CASE("fanotify enforcer: creates outside every zone stay reported and a directory moved into a zone has its links indexed",
          "[fanotify][host]") {
    REQUIRE_ROOT();
    Env env;
    env.fs.write("out/dir/first.txt");
    std::this_thread::sleep_for(200ms);
    const auto before = env.enforcer->stats();
    for (int i = 0; i < 20; ++i) env.fs.write("out/dir/n" + std::to_string(i));
    env.fs.write("out/victim.txt");  // a create in another directory: reported
    std::this_thread::sleep_for(200ms);
    const auto after = env.enforcer->stats();
    CHECK(after.notify_events - before.notify_events >= 21);
    CHECK(cgtest::open_as(mallory, env.fs.path("out/victim.txt")) == 0);  // outside: an ignore mark
    REQUIRE(::rename(env.fs.path("out/dir").c_str(), env.fs.path("zone/dir").c_str()) == 0);
    std::this_thread::sleep_for(300ms);  // the move is handled, the tree indexed
    REQUIRE(::link(env.fs.path("out/victim.txt").c_str(), env.fs.path("zone/dir/victim_link").c_str()) == 0);
    std::this_thread::sleep_for(200ms);
    CHECK(cgtest::open_as(mallory, env.fs.path("out/victim.txt")) == EPERM);
    CHECK(cgtest::open_as(mallory, env.fs.path("zone/dir/n3")) == EPERM);
}

TEST_CASE("fanotify enforcer: renames", "[fanotify][host]") {
    REQUIRE_ROOT();
    Env env;
    SECTION("the zone root renamed keeps its protection (inode, not path)") {
        REQUIRE(::rename(env.fs.path("zone").c_str(), env.fs.path("moved_zone").c_str()) == 0);
        CHECK(cgtest::open_as(mallory, env.fs.path("moved_zone/a.txt")) == EPERM);
        CHECK(cgtest::open_as(mallory, env.fs.path("moved_zone/sub/deep/d.txt")) == EPERM);
        CHECK(cgtest::open_as(alice, env.fs.path("moved_zone/a.txt")) == 0);
    }
    SECTION("an ignored file moved into a zone") {
        CHECK(cgtest::open_as(mallory, env.fs.path("out/r.txt")) == 0);
        REQUIRE(::rename(env.fs.path("out/r.txt").c_str(), env.fs.path("zone/r.txt").c_str()) == 0);
        std::this_thread::sleep_for(200ms);
        CHECK(cgtest::open_as(mallory, env.fs.path("zone/r.txt")) == EPERM);
    }
    SECTION("an ignored tree moved into a zone") {
        CHECK(cgtest::open_as(mallory, env.fs.path("out/dir/f.txt")) == 0);
        REQUIRE(::rename(env.fs.path("out/dir").c_str(), env.fs.path("zone/dir").c_str()) == 0);
        std::this_thread::sleep_for(200ms);
        CHECK(cgtest::open_as(mallory, env.fs.path("zone/dir/f.txt")) == EPERM);
    }
    // fanotify cannot refuse a rename: the mover is judged once it is done. The renaming
    // child lingers so that it can be identified (one already gone counts as not allowed).
    auto move_as = [](const Cred& who, const std::string& from, const std::string& to) {
        pid_t pid = 0;
        int rc = cgtest::run_as(who, [&] {
            int r = ::rename(from.c_str(), to.c_str()) == 0 ? 0 : errno;
            std::this_thread::sleep_for(500ms);
            return r;
        }, &pid);
        return std::pair{rc, pid};
    };
    SECTION("a zone file moved out of every zone by an allowed user leaves the zone") {
        auto [rc, pid] = move_as(alice, env.fs.path("zone/m.txt"), env.fs.path("out/m.txt"));
        REQUIRE(rc == 0);
        auto ev = env.events.for_process(pid);
        REQUIRE(ev);
        CHECK(ev->raw.kind == CG_EV_RENAME);
        CHECK(ev->raw.decision == CG_DECISION_ALLOW);
        CHECK(ev->raw.uid == alice.uid);
        CHECK(cgtest::open_as(mallory, env.fs.path("out/m.txt")) == 0);
    }
    SECTION("a zone file moved out by someone not allowed stays in its zone, recorded") {
        auto [rc, pid] = move_as(mallory, env.fs.path("zone/m.txt"), env.fs.path("out/m.txt"));
        REQUIRE(rc == 0);  // not refusable with fanotify
        auto ev = env.events.for_process(pid);
        REQUIRE(ev);
        CHECK(ev->raw.kind == CG_EV_RENAME);
        CHECK(ev->raw.zone_id == 1);
        CHECK(ev->raw.decision == CG_DECISION_AUDIT);
        CHECK(ev->raw.rule == CG_RULE_NOT_ALLOWED);
        CHECK(ev->raw.uid == mallory.uid);
        CHECK(std::string(ev->raw.path) == "m.txt");
        CHECK(std::string(ev->raw.path + 6) == "m.txt");
        CHECK(cgtest::open_as(mallory, env.fs.path("out/m.txt")) == EPERM);
        CHECK(cgtest::open_as(mallory, env.fs.path("out/m.txt"), Via::io_uring) == EPERM);
        CHECK(cgtest::open_as(alice, env.fs.path("out/m.txt")) == 0);
        // It keeps its zone across a policy reload too.
        REQUIRE(env.enforcer->apply(make_policy(env.fs)));
        CHECK(cgtest::open_as(mallory, env.fs.path("out/m.txt")) == EPERM);
    }
    SECTION("a tree moved out by someone not allowed stays in its zone") {
        ::chmod(env.fs.path("zone/sub").c_str(), 0777);  // moving a directory rewrites its ".."
        auto [rc, pid] = move_as(mallory, env.fs.path("zone/sub"), env.fs.path("out/sub"));
        REQUIRE(rc == 0);
        REQUIRE(env.events.for_process(pid));
        CHECK(cgtest::open_as(mallory, env.fs.path("out/sub/deep/d.txt")) == EPERM);
        CHECK(cgtest::open_as(alice, env.fs.path("out/sub/deep/d.txt")) == 0);
    }
    SECTION("a file moved between nested zones by a user allowed in its zone") {
        CHECK(cgtest::open_as(bob, env.fs.path("zone/a.txt")) == EPERM);
        ::chmod(env.fs.path("zone/nested").c_str(), 0777);
        auto [rc, pid] = move_as(alice, env.fs.path("zone/a.txt"), env.fs.path("zone/nested/a.txt"));
        REQUIRE(rc == 0);
        REQUIRE(env.events.for_process(pid));
        CHECK(cgtest::open_as(bob, env.fs.path("zone/nested/a.txt")) == 0);
    }
    SECTION("a file moved into a nested zone by someone not allowed keeps its zone") {
        ::chmod(env.fs.path("zone/nested").c_str(), 0777);
        auto [rc, pid] = move_as(mallory, env.fs.path("zone/a.txt"), env.fs.path("zone/nested/a.txt"));
        REQUIRE(rc == 0);
        REQUIRE(env.events.for_process(pid));
        CHECK(cgtest::open_as(bob, env.fs.path("zone/nested/a.txt")) == EPERM);
        CHECK(cgtest::open_as(alice, env.fs.path("zone/nested/a.txt")) == 0);
    }
}

TEST_CASE("fanotify enforcer: symlinks", "[fanotify][host]") {
    REQUIRE_ROOT();
    Env env;
    REQUIRE(::symlink(env.fs.path("zone/a.txt").c_str(), env.fs.path("out/sl").c_str()) == 0);
    REQUIRE(::symlink(env.fs.path("out/c.txt").c_str(), env.fs.path("zone/sl_out").c_str()) == 0);
    REQUIRE(::symlink(env.fs.path("zone").c_str(), env.fs.path("out/zone_dir_link").c_str()) == 0);
    pid_t pid = 0;
    CHECK(cgtest::open_as(mallory, env.fs.path("out/sl"), Via::open, &pid) == EPERM);
    auto ev = env.events.for_process(pid);
    REQUIRE(ev);
    CHECK(ev->path == env.fs.path("zone/a.txt"));  // the file opened, as the kernel resolved it
    CHECK(cgtest::open_as(mallory, env.fs.path("out/zone_dir_link/sub/deep/d.txt"), Via::io_uring) == EPERM);
    CHECK(cgtest::open_as(mallory, env.fs.path("zone/sl_out")) == 0);
}

TEST_CASE("fanotify enforcer: bind mounts", "[fanotify][host]") {
    REQUIRE_ROOT();
    Env env;
    char t1[] = "/tmp/cgfan-bind.XXXXXX";
    char t2[] = "/tmp/cgfan-bind.XXXXXX";
    std::string whole = ::mkdtemp(t1), sub = ::mkdtemp(t2);
    REQUIRE(env.fs.bind(env.fs.path("zone"), whole));
    REQUIRE(env.fs.bind(env.fs.path("zone/sub"), sub));  // not a zone root itself
    pid_t pid = 0;
    CHECK(cgtest::open_as(mallory, whole + "/a.txt", Via::open, &pid) == EPERM);
    auto ev = env.events.for_process(pid);
    REQUIRE(ev);
    CHECK(ev->raw.zone_id == 1);
    CHECK(ev->path == whole + "/a.txt");
    CHECK(cgtest::open_as(mallory, sub + "/deep/d.txt") == EPERM);
    CHECK(cgtest::open_as(mallory, sub + "/deep/d.txt", Via::io_uring_async) == EPERM);
    CHECK(cgtest::open_as(alice, sub + "/deep/d.txt") == 0);
    CHECK(cgtest::open_as(mallory, whole + "/nested/b.txt") == 0);  // audit zone
    ::umount2(whole.c_str(), MNT_DETACH);
    ::umount2(sub.c_str(), MNT_DETACH);
    ::rmdir(whole.c_str());
    ::rmdir(sub.c_str());
}

// A zone file's open is placed from the directory cache (no walk); a rename of any
// directory must make it forget, or a file below a directory moved into a zone would be
// let through by the directory's old zone (and one moved out refused). Each section first
// proves the cache answered (dir_hits), then opens a file never opened before, which has
// no cached zone or ignore mark of its own: only the directory cache can place it (files
// are made with mknod: creating one with open(2) would be an open the enforcer decides).
// apply() forgetting it is guarded by "policy changes apply atomically ..." below.
TEST_CASE("fanotify enforcer: the directory cache forgets a directory's zone when a directory above it is renamed",
          "[fanotify][host]") {
    REQUIRE_ROOT();
    Env env;
    auto dir_hits = [&] { return env.enforcer->stats().dir_hits; };
    auto make = [&](std::initializer_list<const char*> files) {
        for (auto f : files) REQUIRE(::mknod(env.fs.path(f).c_str(), S_IFREG | 0644, 0) == 0);
    };
    SECTION("a tree moved into a zone: a file two levels below its top is refused") {
        env.fs.mkdir("out/t");
        env.fs.mkdir("out/t/u");
        make({"out/t/u/f1", "out/t/u/f2", "out/t/u/f3"});
        CHECK(cgtest::open_as(mallory, env.fs.path("out/t/u/f1")) == 0);
        const auto hits = dir_hits();
        CHECK(cgtest::open_as(mallory, env.fs.path("out/t/u/f2")) == 0);
        CHECK(dir_hits() > hits);  // placed by the cache: out/t/u was not walked again
        REQUIRE(::rename(env.fs.path("out/t").c_str(), env.fs.path("zone/t").c_str()) == 0);
        std::this_thread::sleep_for(200ms);  // the rename is seen asynchronously
        CHECK(cgtest::open_as(mallory, env.fs.path("zone/t/u/f3")) == EPERM);
        CHECK(cgtest::open_as(alice, env.fs.path("zone/t/u/f3")) == 0);
    }
    SECTION("a tree moved out of every zone by an allowed user: a file below it leaves the zone") {
        env.fs.mkdir("zone/v");
        env.fs.mkdir("zone/v/w");
        ::chmod(env.fs.path("zone/v").c_str(), 0777);  // moving a directory rewrites its ".."
        make({"zone/v/w/g1", "zone/v/w/g2", "zone/v/w/g3"});
        CHECK(cgtest::open_as(alice, env.fs.path("zone/v/w/g1")) == 0);
        const auto hits = dir_hits();
        CHECK(cgtest::open_as(mallory, env.fs.path("zone/v/w/g2")) == EPERM);
        CHECK(dir_hits() > hits);
        pid_t pid = 0;
        const int rc = cgtest::run_as(alice, [&] {
            const int r = ::rename(env.fs.path("zone/v").c_str(), env.fs.path("out/v").c_str()) == 0 ? 0 : errno;
            std::this_thread::sleep_for(500ms);  // still there to be identified as the mover
            return r;
        }, &pid);
        REQUIRE(rc == 0);
        REQUIRE(env.events.for_process(pid));
        CHECK(cgtest::open_as(mallory, env.fs.path("out/v/w/g3")) == 0);
    }
    SECTION("a zone directory reached through a bind mount and by its own name has one zone") {
        char t[] = "/tmp/cgfan-bind.XXXXXX";
        const std::string bound = ::mkdtemp(t);
        REQUIRE(env.fs.bind(env.fs.path("zone/sub/deep"), bound));
        // An outside directory mounted over a path in the zone stays outside.
        env.fs.mkdir("zone/sub/mnt");
        REQUIRE(env.fs.bind(env.fs.path("out/dir"), env.fs.path("zone/sub/mnt")));
        make({"zone/sub/deep/e1.txt", "zone/sub/deep/e2.txt", "out/dir/f2.txt"});
        CHECK(cgtest::open_as(mallory, bound + "/d.txt") == EPERM);
        const auto hits = dir_hits();
        CHECK(cgtest::open_as(mallory, env.fs.path("zone/sub/deep/e1.txt")) == EPERM);
        CHECK(cgtest::open_as(mallory, bound + "/e2.txt") == EPERM);
        CHECK(dir_hits() >= hits + 2);
        CHECK(cgtest::open_as(alice, bound + "/e2.txt") == 0);
        CHECK(cgtest::open_as(mallory, env.fs.path("zone/sub/mnt/f.txt")) == 0);
        CHECK(cgtest::open_as(mallory, env.fs.path("out/dir/f2.txt")) == 0);
        ::umount2(env.fs.path("zone/sub/mnt").c_str(), MNT_DETACH);
        ::umount2(bound.c_str(), MNT_DETACH);
        ::rmdir(bound.c_str());
    }
}

TEST_CASE("fanotify enforcer: policy changes apply atomically and drop ignore marks", "[fanotify][host]") {
    REQUIRE_ROOT();
    Env env;
    CHECK(cgtest::open_as(mallory, env.fs.path("out/c.txt")) == 0);  // ignored from now on
    auto p2 = make_policy(env.fs);
    p2.zones.push_back(cgtest::zone(6, "out", policy::Violation::deny, true));
    p2.roots.push_back({env.fs.path("out"), 6});
    REQUIRE(env.enforcer->apply(p2));
    CHECK(cgtest::open_as(mallory, env.fs.path("out/c.txt")) == EPERM);
    REQUIRE(env.enforcer->apply(make_policy(env.fs)));
    CHECK(cgtest::open_as(mallory, env.fs.path("out/c.txt")) == 0);
    // A bad policy is refused and the running one stays.
    auto bad = make_policy(env.fs);
    bad.roots.push_back({env.fs.path("out"), 99});
    CHECK_FALSE(env.enforcer->apply(bad));
    CHECK(cgtest::open_as(mallory, env.fs.path("zone/a.txt")) == EPERM);
    CHECK(cgtest::open_as(mallory, env.fs.path("out/c.txt")) == 0);
    // Unresolvable roots are warnings, not errors.
    auto missing = make_policy(env.fs);
    missing.roots.push_back({env.fs.path("nonexistent"), 1});
    REQUIRE(env.enforcer->apply(missing));
    CHECK(env.enforcer->warnings().size() == 1);
}

TEST_CASE("fanotify enforcer: a deny row overrides a %group allow until it expires", "[fanotify][host]") {
    REQUIRE_ROOT();
    Env env;
    // sales_member reads zone 1 only through %60100, sales_primary likewise.
    CHECK(cgtest::open_as(sales_member, env.fs.path("zone/a.txt")) == 0);
    auto p = make_policy(env.fs);
    const auto now = static_cast<std::uint64_t>(std::time(nullptr));
    const std::uint64_t until = now + 5;  // room for the rows below on a loaded machine
    p.denies = {{1, alice.uid, until}, {1, sales_member.uid, until}, {1, sales_primary.uid, now - 1},
                {2, bob.uid, until}, {3, alice.uid, until}, {4, carol.uid, until}};
    REQUIRE(env.enforcer->apply(p));

    struct Row {
        const char* label;
        Cred cred;
        const char* path;
        Via via;
        int expect_errno;
        std::optional<Expected> event;
    };
    const Row during[] = {
        {"%group member", sales_member, "zone/a.txt", Via::open, EPERM, Expected{1, CG_DECISION_DENY, CG_RULE_REVOKED}},
        {"%group member, deep file", sales_member, "zone/sub/deep/d.txt", Via::open, EPERM,
         Expected{1, CG_DECISION_DENY, CG_RULE_REVOKED}},
        {"listed user", alice, "zone/a.txt", Via::open, EPERM, Expected{1, CG_DECISION_DENY, CG_RULE_REVOKED}},
        {"expired deny row", sales_primary, "zone/a.txt", Via::open, 0, Expected{1, CG_DECISION_ALLOW, CG_RULE_GROUP}},
        {"audit zone: let through, recorded", bob, "zone/nested/b.txt", Via::open, 0,
         Expected{2, CG_DECISION_AUDIT, CG_RULE_REVOKED}},
        {"listed program does not lift it", alice, "prog/p.txt", Via::exec_cat, EPERM, std::nullopt},
        {"grant does not lift it", carol, "grant/g.txt", Via::open, EPERM, Expected{4, CG_DECISION_DENY, CG_RULE_REVOKED}},
        {"per zone: alice's single-file zone", alice, "single.txt", Via::open, 0, Expected{5, CG_DECISION_ALLOW, CG_RULE_USER}},
    };
    for (const auto& r : during) {
        INFO(r.label);
        pid_t pid = 0;
        CHECK(cgtest::open_as(r.cred, env.fs.path(r.path), r.via, &pid) == r.expect_errno);
        if (!r.event) continue;
        auto ev = env.events.for_process(pid);
        REQUIRE(ev);
        CHECK(ev->raw.zone_id == r.event->zone);
        CHECK(ev->raw.decision == r.event->decision);
        CHECK(ev->raw.rule == r.event->rule);
        CHECK(ev->raw.uid == r.cred.uid);
    }
    REQUIRE(std::time(nullptr) < static_cast<std::time_t>(until));  // all of the above ran during the deny

    // Expiry is checked at decision time: no apply() in between.
    while (static_cast<std::uint64_t>(std::time(nullptr)) < until)
        std::this_thread::sleep_for(100ms);
    pid_t pid = 0;
    CHECK(cgtest::open_as(sales_member, env.fs.path("zone/a.txt"), Via::open, &pid) == 0);
    auto ev = env.events.for_process(pid);
    REQUIRE(ev);
    CHECK(ev->raw.decision == CG_DECISION_ALLOW);
    CHECK(ev->raw.rule == CG_RULE_GROUP);
    CHECK(cgtest::open_as(alice, env.fs.path("zone/a.txt")) == 0);
    CHECK(cgtest::open_as(alice, env.fs.path("prog/p.txt"), Via::exec_cat) == 0);
    CHECK(cgtest::open_as(carol, env.fs.path("grant/g.txt")) == 0);
}

TEST_CASE("fanotify enforcer: overload answers at once (zone files denied, others allowed)", "[fanotify][host]") {
    REQUIRE_ROOT();
    FanotifyOptions o;
    o.max_queue = 0;  // every event counts as overload
    Env env(std::move(o));
    CHECK(cgtest::open_as(alice, env.fs.path("zone/a.txt")) == EPERM);
    CHECK(cgtest::open_as(alice, env.fs.path("out/c.txt")) == 0);
    CHECK(env.enforcer->stats().timeouts >= 2);
}

namespace {

// A child of `who` opening `path` (it makes system calls only: no allocation after fork).
pid_t fork_open(const Cred& who, const std::string& path) {
    pid_t pid = ::fork();
    if (pid == 0) {
        ::close_range(3, ~0u, 0);
        ::alarm(20);
        if (::setresgid(who.gid, who.gid, who.gid) || ::setresuid(who.uid, who.uid, who.uid)) ::_exit(120);
        ::_exit(cgtest::open_read(path, Via::open));
    }
    return pid;
}

// Waits until process `pid` sleeps in the kernel waiting for a fanotify answer.
bool waits_for_fanotify(pid_t pid) {
    for (int i = 0; i < 1000; ++i) {
        std::ifstream in("/proc/" + std::to_string(pid) + "/wchan");
        std::string w;
        std::getline(in, w);
        if (w.find("fanotify") != std::string::npos) return true;
        std::this_thread::sleep_for(5ms);
    }
    return false;
}

// The inode numbers carrying a mark of fanotify group `fd` (its fdinfo, "fanotify ino:HEX ...").
std::vector<std::uint64_t> marked_inodes(int fd) {
    std::ifstream in("/proc/self/fdinfo/" + std::to_string(fd));
    std::vector<std::uint64_t> out;
    std::string line;
    while (std::getline(in, line)) {
        unsigned long long ino = 0;
        if (std::sscanf(line.c_str(), "fanotify ino:%llx", &ino) == 1) out.push_back(ino);
    }
    return out;
}

}  // namespace

// Fair ordering (issue 18, "No rescan storms"): a worker answers the events of its batch
// that need no drain of the notify group (zone files here) before those that walked
// outside every zone and wait for one, so a user opening new files in a burst does not
// hold up an allowed reader's open behind the drains of every one of them. Observed as
// order, not time: when the zone file's record is handed over (after its answer), no file
// queued ahead of it may have its ignore mark yet (placed just before each "outside"
// answer). Fails when the batch is answered in queue order.
TEST_CASE("fanotify enforcer: a zone file's open is answered before the new files queued ahead of it",
          "[fanotify][host]") {
    REQUIRE_ROOT();
    cgtest::Tmpfs fs;
    REQUIRE(fs.ok());
    fs.mkdir("zone");
    fs.mkdir("out", 0777);
    fs.write("zone/gate.txt");
    fs.write("zone/a.txt");
    constexpr int n_new = 4;
    std::vector<std::string> fresh;
    std::vector<std::uint64_t> fresh_inodes;
    for (int i = 0; i < n_new; ++i) {
        fresh.push_back(fs.path("out/new" + std::to_string(i)));
        // mknod: a new regular file without an open, so nothing has decided it yet.
        REQUIRE(::mknod(fresh.back().c_str(), S_IFREG | 0644, 0) == 0);
        struct stat st {};
        REQUIRE(::stat(fresh.back().c_str(), &st) == 0);
        fresh_inodes.push_back(st.st_ino);
    }
    struct stat gate_st {}, a_st {};
    REQUIRE(::stat(fs.path("zone/gate.txt").c_str(), &gate_st) == 0);
    REQUIRE(::stat(fs.path("zone/a.txt").c_str(), &a_st) == 0);

    FanotifyOptions options;
    options.workers = 1;  // one batch, read by one worker
    options.use_fd_store = false;
    auto e = FanotifyEnforcer::create(std::move(options));
    REQUIRE(e);
    auto enforcer = std::move(*e);
    const int group = enforcer->fd();
    std::mutex mutex;
    std::condition_variable cv;
    bool gate_held = false, gate_open = false, a_recorded = false;
    std::vector<std::uint64_t> marked_at_a;
    REQUIRE(enforcer->start([&](daemon::AccessEvent&& ev) {
        std::unique_lock lk(mutex);
        if (ev.raw.ino == gate_st.st_ino) {
            // Holds the only worker: the next opens queue up behind this one.
            gate_held = true;
            cv.notify_all();
            cv.wait_for(lk, 15s, [&] { return gate_open; });
        } else if (ev.raw.ino == a_st.st_ino) {
            marked_at_a = marked_inodes(group);
            a_recorded = true;
            cv.notify_all();
        }
    }));
    REQUIRE(enforcer->apply(cgtest::one_zone(fs)));

    pid_t gate = fork_open(alice, fs.path("zone/gate.txt"));
    {
        std::unique_lock lk(mutex);
        REQUIRE(cv.wait_for(lk, 10s, [&] { return gate_held; }));
    }
    std::vector<pid_t> openers;
    for (const auto& f : fresh) {
        openers.push_back(fork_open(mallory, f));
        REQUIRE(waits_for_fanotify(openers.back()));
    }
    pid_t reader = fork_open(alice, fs.path("zone/a.txt"));
    REQUIRE(waits_for_fanotify(reader));
    {
        std::lock_guard lk(mutex);
        gate_open = true;
    }
    cv.notify_all();
    auto status_of = [](pid_t p) {
        int st = 0;
        ::waitpid(p, &st, 0);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    };
    CHECK(status_of(gate) == 0);
    CHECK(status_of(reader) == 0);
    for (pid_t p : openers) CHECK(status_of(p) == 0);
    {
        std::unique_lock lk(mutex);
        REQUIRE(cv.wait_for(lk, 5s, [&] { return a_recorded; }));
    }
    // None of the new files queued ahead of the zone file was answered before it ...
    for (auto ino : fresh_inodes) CHECK(std::count(marked_at_a.begin(), marked_at_a.end(), ino) == 0);
    // ... and each was answered "outside" afterwards, with its ignore mark (which the
    // check above would have seen).
    const auto marked_after = marked_inodes(group);
    for (auto ino : fresh_inodes) CHECK(std::count(marked_after.begin(), marked_after.end(), ino) == 1);
    enforcer->stop(true);
}

TEST_CASE("fanotify enforcer: a stopped enforcer leaves opens waiting for its successor", "[fanotify][host]") {
    REQUIRE_ROOT();
    Env env;
    // Stand-in for the fd store: a second reference to the group.
    daemon::UniqueFd kept(::fcntl(env.enforcer->fd(), F_DUPFD_CLOEXEC, 0));
    REQUIRE(kept);
    env.enforcer->stop(false);
    env.enforcer.reset();

    const std::string zone_file = env.fs.path("zone/a.txt");  // the child must not allocate
    pid_t pid = ::fork();
    if (pid == 0) {
        ::alarm(20);
        if (::setresgid(60009, 60009, 60009) || ::setresuid(60009, 60009, 60009)) ::_exit(120);
        ::_exit(cgtest::open_read(zone_file, Via::open));
    }
    std::this_thread::sleep_for(300ms);
    int status = 0;
    CHECK(::waitpid(pid, &status, WNOHANG) == 0);  // blocked: no gap, no answer yet

    FanotifyOptions o;
    o.adopt = std::move(kept);
    o.use_fd_store = false;
    auto e = FanotifyEnforcer::create(std::move(o));
    REQUIRE(e);
    auto successor = std::move(*e);
    CHECK(successor->adopted());
    REQUIRE(successor->start(env.events.handler()));
    REQUIRE(successor->apply(make_policy(env.fs)));
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == EPERM);
    CHECK(cgtest::open_as(alice, env.fs.path("zone/a.txt")) == 0);
    successor->stop(true);
}

TEST_CASE("enforcer selection probes BPF LSM, then fanotify", "[fanotify][host]") {
    REQUIRE_ROOT();
    auto bpf = daemon::probe_bpf_lsm();
    auto fan = daemon::probe_fanotify();
    INFO("bpf-lsm: " << bpf.reason << "; fanotify: " << fan.reason);
    CHECK(fan.available);
    CHECK_FALSE(bpf.reason.empty());
    auto sel = daemon::select_enforcer(policy::EnforcerChoice::automatic);
    REQUIRE(sel);
    INFO(sel->reason);
    if (bpf.available) {
        CHECK(sel->chosen == policy::EnforcerChoice::bpf_lsm);
    } else {
        CHECK(sel->chosen == policy::EnforcerChoice::fanotify);
        CHECK(sel->reason.find("BPF LSM is unavailable") != std::string::npos);
        CHECK_FALSE(daemon::select_enforcer(policy::EnforcerChoice::bpf_lsm));
    }
    auto explicit_fan = daemon::select_enforcer(policy::EnforcerChoice::fanotify);
    REQUIRE(explicit_fan);
    CHECK(explicit_fan->chosen == policy::EnforcerChoice::fanotify);
    auto none = daemon::select_enforcer(policy::EnforcerChoice::none);
    REQUIRE(none);
    CHECK(none->chosen == policy::EnforcerChoice::none);
}

TEST_CASE("fanotify enforcer: adoption answers the events a killed predecessor had read", "[fanotify][host]") {
    REQUIRE_ROOT();
    cgtest::Tmpfs fs;
    REQUIRE(fs.ok());
    fs.mkdir("zone");
    fs.write("zone/a.txt");
    // The predecessor: a group that reads one event and dies before answering it.
    daemon::UniqueFd group(::fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_REPORT_TID, O_RDONLY | O_CLOEXEC));
    REQUIRE(group);
    REQUIRE(::fanotify_mark(group.get(), FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_OPEN_PERM, AT_FDCWD,
                            fs.path().c_str()) == 0);
    const std::string zone_file = fs.path("zone/a.txt");  // the child must not allocate
    pid_t pid = ::fork();
    if (pid == 0) {
        ::close_range(3, ~0u, 0);
        ::alarm(20);
        if (::setresgid(60009, 60009, 60009) || ::setresuid(60009, 60009, 60009)) ::_exit(120);
        ::_exit(cgtest::open_read(zone_file, Via::open));
    }
    alignas(fanotify_event_metadata) char buf[4096];
    ssize_t len = ::read(group.get(), buf, sizeof buf);
    REQUIRE(len >= static_cast<ssize_t>(sizeof(fanotify_event_metadata)));
    auto* md = reinterpret_cast<fanotify_event_metadata*>(buf);
    REQUIRE(md->fd >= 0);
    ::close(md->fd);  // its descriptor is gone, as with kill -9; the event is still pending
    std::this_thread::sleep_for(200ms);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, WNOHANG) == 0);

    FanotifyOptions o;
    o.adopt = std::move(group);
    o.use_fd_store = false;
    auto e = FanotifyEnforcer::create(std::move(o));
    REQUIRE(e);
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == EPERM);  // fail closed: nobody decided it
    CHECK((*e)->stats().stale_answered == 1);
    (*e)->stop(true);
}
