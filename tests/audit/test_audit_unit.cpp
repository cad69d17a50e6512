// Parser, assembler, access extraction and cross-check logic, on real records captured
// on this machine (tests/audit/corpus) and on variations of them (interleaved, cut, lost).
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "corpus.hpp"
#include "daemon/audit/access.hpp"
#include "daemon/audit/assembler.hpp"
#include "daemon/audit/cross_check.hpp"
#include "daemon/audit/record.hpp"
#include "daemon/audit/rules.hpp"

using namespace custguard::audit;

namespace {

const std::string corpus_dir = CG_AUDIT_CORPUS;

std::vector<Record> corpus_records() {
    std::vector<Record> out;
    for (auto& m : cgaudit::load_multicast(corpus_dir + "/multicast.txt")) {
        auto r = parse_record(m.type, m.text);
        REQUIRE(r);
        out.push_back(std::move(*r));
    }
    return out;
}

std::vector<Event> assemble(std::vector<Record> records, std::int64_t step_ms = 0, AssemblerOptions opts = {}) {
    std::vector<Event> out;
    Assembler a([&](Event&& e) { out.push_back(std::move(e)); }, opts);
    std::int64_t now = 0;
    for (auto& r : records) {
        a.push(std::move(r), now);
        now += step_ms;
        a.expire(now);
    }
    a.flush();
    return out;
}

const Event* by_serial(const std::vector<Event>& events, std::uint64_t serial) {
    for (const auto& e : events)
        if (e.stamp.serial == serial) return &e;
    return nullptr;
}

}  // namespace

TEST_CASE("every record of the real corpus parses in both spellings", "[audit][parser]") {
    auto msgs = cgaudit::load_multicast(corpus_dir + "/multicast.txt");
    REQUIRE(msgs.size() > 200);
    std::map<std::uint16_t, int> types;
    for (const auto& m : msgs) {
        auto r = parse_record(m.type, m.text);
        INFO(m.text);
        REQUIRE(r);
        ++types[r->type];
        if (r->type != type::eoe) CHECK(r->field_count() > 0);
    }
    CHECK(types[type::syscall] == 41);
    CHECK(types[type::eoe] == 41);
    CHECK(types[type::path] == 34);
    CHECK(types[type::execve] == 1);

    auto lines = cgaudit::load_lines(corpus_dir + "/auditd_raw.log");
    REQUIRE(lines.size() > 50);
    int daemon_records = 0;
    for (const auto& l : lines) {
        auto r = parse_log_line(l);
        INFO(l);
        REQUIRE(r);
        if (r->type == 1200 || r->type == 1201) ++daemon_records;
    }
    CHECK(daemon_records == 2);
}

TEST_CASE("the netlink form and auditd's log form give the same record", "[audit][parser]") {
    auto lines = cgaudit::load_lines(corpus_dir + "/auditd_raw.log");
    std::map<std::uint64_t, std::vector<std::string>> from_log;
    for (const auto& l : lines) {
        auto r = parse_log_line(l);
        REQUIRE(r);
        if (r->type == type::path) from_log[r->stamp.serial].push_back(r->string("name").value_or("?"));
    }
    int compared = 0;
    for (const auto& r : corpus_records()) {
        if (r.type != type::path || !from_log.count(r.stamp.serial)) continue;
        auto& names = from_log[r.stamp.serial];
        CHECK(std::find(names.begin(), names.end(), r.string("name").value_or("?")) != names.end());
        ++compared;
    }
    CHECK(compared >= 15);
}

TEST_CASE("fields: quoted - hex-encoded - (null) - numbers - devices", "[audit][parser]") {
    auto r = parse_record(type::path,
                          "audit(1795800107.677:45): item=0 name=7A6F6E652F776974682073706163652F6220632E747874 "
                          "inode=11092513 dev=fe:00 mode=0100644 nametype=NORMAL");
    REQUIRE(r);
    CHECK(r->stamp == Stamp{1795800107, 677, 45});
    CHECK(r->string("name") == std::optional<std::string>("zone/with space/b c.txt"));
    CHECK(r->number("inode") == std::optional<std::uint64_t>(11092513));
    CHECK(parse_dev(*r->raw("dev")) == std::optional<std::uint64_t>(0xfeull << 20));
    CHECK(parse_dev("103:2") == std::optional<std::uint64_t>((0x103ull << 20) | 2));
    CHECK_FALSE(parse_dev("fe"));
    CHECK_FALSE(r->raw("missing"));

    auto s = parse_record(type::syscall, R"(audit(1.002:3): arch=c000003e syscall=257 success=no exit=-13 a0=ffffff9c comm="cat" key=(null) tty=(none))");
    REQUIRE(s);
    CHECK(s->number("arch", true) == std::optional<std::uint64_t>(0xc000003e));
    CHECK(s->signed_number("exit") == std::optional<std::int64_t>(-13));
    CHECK(s->string("comm") == std::optional<std::string>("cat"));
    CHECK_FALSE(s->string("key"));
    CHECK(s->stamp.realtime_ns() == 1'002'000'000);

    CHECK(decode_hex("E697A5E69CAC") == std::optional<std::string>("\xe6\x97\xa5\xe6\x9c\xac"));
    CHECK_FALSE(decode_hex("ABC"));
    CHECK_FALSE(decode_hex("zz"));
    // Not hex although unquoted: malformed, so no value rather than garbage.
    auto bad = parse_record(type::path, "audit(1.0:1): name=not/hex");
    CHECK_FALSE(bad->string("name"));

    // User-space records nest fields in msg='...'; ENRICHED logs append \x1d and names.
    auto u = parse_record(1105, "audit(5.000:9): pid=1 uid=0 msg='op=PAM:session_open acct=\"root\" res=success'\x1dUID=\"root\"");
    REQUIRE(u);
    CHECK(u->raw("msg") == std::optional<std::string_view>("op=PAM:session_open acct=\"root\" res=success"));
    CHECK(u->encoding(2) == Encoding::single_quoted);
    CHECK_FALSE(u->raw("UID"));
    auto l = parse_log_line("node=fs1 type=SYSCALL msg=audit(7.100:5): syscall=2");
    REQUIRE(l);
    CHECK(l->type == type::syscall);
    CHECK(parse_log_line("type=UNKNOWN[1999] msg=audit(7.100:5): x=1")->type == 1999);
}

TEST_CASE("malformed and cut records", "[audit][parser]") {
    CHECK_FALSE(parse_record(type::syscall, ""));
    CHECK_FALSE(parse_record(type::syscall, "audit(12:34): x=1"));
    CHECK_FALSE(parse_record(type::syscall, "audit(1.2:): x=1"));
    CHECK_FALSE(parse_record(type::syscall, "no stamp"));
    CHECK_FALSE(parse_log_line("type=NOSUCHTYPE msg=audit(1.2:3): a=b"));
    CHECK_FALSE(parse_log_line("msg=audit(1.2:3): a=b"));
    // A record cut in the middle of a quoted value keeps its stamp and the part it has.
    auto cut = parse_record(type::syscall, R"(audit(1.2:3): pid=9 comm="ca)");
    REQUIRE(cut);
    CHECK(cut->number("pid") == std::optional<std::uint64_t>(9));
    CHECK(cut->string("comm") == std::optional<std::string>("ca"));
    // Trailing NUL and newline of a netlink payload.
    auto nul = parse_record(type::cwd, std::string("audit(1.2:3): cwd=\"/x\"\n\0", 24));
    REQUIRE(nul);
    CHECK(nul->string("cwd") == std::optional<std::string>("/x"));
    // Every prefix of a real record parses or is refused; none crashes.
    for (const auto& r : corpus_records()) {
        std::string t(r.text());
        for (std::size_t n = 0; n < t.size(); n += 7) (void)parse_record(r.type, t.substr(0, n));
    }
}

TEST_CASE("assembly of the corpus: one complete event per EOE", "[audit][assembler]") {
    auto events = assemble(corpus_records());
    std::size_t complete = std::count_if(events.begin(), events.end(), [](const Event& e) { return e.complete; });
    CHECK(complete == 41);
    for (const auto& e : events) {
        if (!e.complete) {
            // Records logged inside a syscall that matched no rule: no SYSCALL, no EOE.
            CHECK_FALSE(e.find(type::syscall));
            CHECK(e.records.size() == 1);
        }
    }
    const Event* create = by_serial(events, 57);
    REQUIRE(create);
    CHECK(create->records.size() == 5);  // SYSCALL CWD PATH PATH PROCTITLE
}

TEST_CASE("accesses extracted from real events", "[audit][access]") {
    auto events = assemble(corpus_records());
    auto access = [&](std::uint64_t serial) {
        const Event* e = by_serial(events, serial);
        REQUIRE(e);
        auto a = extract_access(*e);
        REQUIRE(a);
        return *a;
    };
    auto a = access(44);  // cat zone/a.txt from /tmp/cgcap
    CHECK(a.zone_key("") == std::optional<std::string>("corpus"));
    CHECK(classify_syscall(a.arch, a.syscall) == OpenKind::open);
    CHECK(a.success);
    CHECK(a.comm == "cat");
    CHECK(a.exe == "/usr/bin/cat");
    CHECK(a.auid == unset_id);
    CHECK(a.fsuid == 0);
    CHECK(a.target_path() == std::optional<std::string>("/tmp/cgcap/zone/a.txt"));
    CHECK(a.target()->inode == 11076129);
    CHECK(a.target()->dev == (0xfeull << 20));
    CHECK(a.target()->mode == 0100644);
    CHECK(a.proctitle == std::optional<std::string>("cat zone/a.txt"));

    CHECK(access(45).target_path() == std::optional<std::string>("/tmp/cgcap/zone/with space/b c.txt"));
    CHECK(access(46).target_path() == std::optional<std::string>("/tmp/cgcap/zone/sub/\xe6\x97\xa5\xe6\x9c\xac.txt"));
    CHECK(access(47).target_path() == std::optional<std::string>("/tmp/cgcap/link.txt"));  // the name given
    CHECK(access(49).target_path() == std::optional<std::string>("/tmp/cgcap/single.txt"));  // ../ from zone
    CHECK(access(49).zone_key("") == std::optional<std::string>("single"));

    int fd = -1;
    auto rel = access(55);  // openat(dirfd, "sub/日本.txt")
    CHECK_FALSE(rel.target_path(&fd));
    CHECK(fd >= 0);

    auto create = access(57);  // O_CREAT: PARENT + CREATE items; the CREATE one is the target
    CHECK(create.paths.size() == 2);
    CHECK(create.target()->nametype == "CREATE");
    CHECK(create.target_path() == std::optional<std::string>("/tmp/cgcap/zone/new.txt"));

    auto xattr = access(58);  // getxattr is in a watch's read class but is not an open
    CHECK(classify_syscall(xattr.arch, xattr.syscall) == OpenKind::not_open);
    CHECK_FALSE(xattr.success);

    auto login = access(72);  // after writing /proc/self/loginuid
    CHECK(login.auid == 1000);

    // The key with a space was written hex-encoded in CONFIG_CHANGE.
    const Event* cfg = by_serial(events, 42);
    REQUIRE(cfg);
    CHECK(cfg->find(type::config_change)->string("key") == std::optional<std::string>("custguard:space zone"));
    // Multiple keys are joined with \x01 (always hex).
    Event multi;
    multi.records.push_back(*parse_record(type::syscall, "audit(1.0:1): arch=c000003e syscall=2 key=61016375737467756172643A7A"));
    CHECK(extract_access(multi)->zone_key("") == std::optional<std::string>("z"));
}

TEST_CASE("interleaved records of many events assemble to the same events", "[audit][assembler]") {
    auto records = corpus_records();
    auto reference = assemble(records);
    // Group by event, then deal the groups out round-robin (per-event order kept), as
    // records of events on several CPUs arrive.
    std::map<std::uint64_t, std::vector<Record>> groups;
    std::vector<std::uint64_t> order;
    for (auto& r : records) {
        if (!groups.count(r.stamp.serial)) order.push_back(r.stamp.serial);
        groups[r.stamp.serial].push_back(r);
    }
    std::mt19937 rng(42);
    for (int round = 0; round < 5; ++round) {
        std::vector<Record> mixed;
        std::map<std::uint64_t, std::size_t> next;
        std::vector<std::uint64_t> live = order;
        while (!live.empty()) {
            std::size_t window = std::min<std::size_t>(live.size(), 6);
            std::size_t pick = std::uniform_int_distribution<std::size_t>(0, window - 1)(rng);
            auto serial = live[pick];
            mixed.push_back(groups[serial][next[serial]++]);
            if (next[serial] == groups[serial].size()) live.erase(live.begin() + static_cast<long>(pick));
        }
        auto got = assemble(mixed);
        REQUIRE(got.size() == reference.size());
        for (const auto& e : reference) {
            const Event* g = by_serial(got, e.stamp.serial);
            REQUIRE(g);
            CHECK(g->records.size() == e.records.size());
            CHECK(g->complete == e.complete);
        }
    }
}

TEST_CASE("lost and late records: timeouts - overflow - late arrivals", "[audit][assembler]") {
    auto records = corpus_records();
    std::vector<Record> one;  // the records of event 44
    for (auto& r : records)
        if (r.stamp.serial == 44) one.push_back(r);
    REQUIRE(one.size() == 5);
    REQUIRE(one.back().type == type::eoe);

    SECTION("EOE lost: the event comes out incomplete after the timeout, not before") {
        std::vector<Event> out;
        Assembler a([&](Event&& e) { out.push_back(std::move(e)); }, AssemblerOptions{500});
        for (std::size_t i = 0; i + 1 < one.size(); ++i) a.push(Record(one[i]), 1000);
        a.expire(1499);
        CHECK(out.empty());
        CHECK(a.next_deadline() == 1500);
        a.expire(1500);
        REQUIRE(out.size() == 1);
        CHECK_FALSE(out[0].complete);
        CHECK(out[0].records.size() == 4);
        CHECK(a.counters().incomplete == 1);
        auto acc = extract_access(out[0]);
        REQUIRE(acc);  // still usable: SYSCALL and PATH are there
        CHECK_FALSE(acc->complete);
        CHECK(acc->target_path() == std::optional<std::string>("/tmp/cgcap/zone/a.txt"));
        // The EOE turns up late: counted, nothing emitted twice.
        a.push(Record(one.back()), 1600);
        CHECK(out.size() == 1);
        CHECK(a.counters().late == 1);
    }
    SECTION("SYSCALL lost: the event has no access") {
        std::vector<Record> rest(one.begin() + 1, one.end());
        auto events = assemble(rest);
        REQUIRE(events.size() == 1);
        CHECK(events[0].complete);
        CHECK_FALSE(extract_access(events[0]));
    }
    SECTION("PATH lost: an access without a target") {
        std::vector<Record> rest;
        for (auto& r : one)
            if (r.type != type::path) rest.push_back(r);
        auto events = assemble(rest);
        auto acc = extract_access(events.at(0));
        REQUIRE(acc);
        CHECK(acc->target() == nullptr);
        CHECK_FALSE(acc->target_path());
    }
    SECTION("a record after its event completed is late, and forms its own event") {
        std::vector<Record> again = one;
        again.push_back(one[2]);  // the PATH once more
        std::vector<Event> out;
        Assembler a([&](Event&& e) { out.push_back(std::move(e)); }, AssemblerOptions{100});
        for (auto& r : again) a.push(std::move(r), 0);
        CHECK(a.counters().late == 1);
        a.expire(100);
        REQUIRE(out.size() == 2);
        CHECK(out[0].complete);
        CHECK_FALSE(out[1].complete);
    }
    SECTION("too many pending events: the oldest is flushed") {
        std::vector<Event> out;
        Assembler a([&](Event&& e) { out.push_back(std::move(e)); }, AssemblerOptions{100000, 3});
        for (std::uint64_t s = 1; s <= 5; ++s) {
            auto r = parse_record(type::syscall, "audit(9.000:" + std::to_string(s) + "): arch=c000003e syscall=2");
            a.push(std::move(*r), static_cast<std::int64_t>(s));
        }
        CHECK(a.pending() == 3);
        REQUIRE(out.size() == 2);
        CHECK(out[0].stamp.serial == 1);
        CHECK(out[1].stamp.serial == 2);
    }
    SECTION("single-record types complete at once") {
        std::vector<Event> out;
        Assembler a([&](Event&& e) { out.push_back(std::move(e)); });
        a.push(*parse_record(1105, "audit(9.000:77): pid=1 msg='op=x res=success'"), 0);
        REQUIRE(out.size() == 1);
        CHECK(out[0].complete);
    }
}

TEST_CASE("paths and syscalls", "[audit][access]") {
    CHECK(normalize_path("/a/./b/../c//d/") == "/a/c/d");
    CHECK(normalize_path("/../..") == "/");
    CHECK(normalize_path("/srv/share/customers") == "/srv/share/customers");
    int fa = -9;
    CHECK(classify_syscall(0xc000003e, 2, &fa) == OpenKind::open);
    CHECK(fa == 1);
    CHECK(classify_syscall(0xc000003e, 257, &fa) == OpenKind::open);
    CHECK(fa == 2);
    CHECK(classify_syscall(0xc000003e, 437, &fa) == OpenKind::open);
    CHECK(fa == -1);
    CHECK(classify_syscall(0xc000003e, 191) == OpenKind::not_open);  // getxattr
    CHECK(classify_syscall(0x40000003, 5) == OpenKind::open);        // i386 open
    CHECK(classify_syscall(0xc00000b7, 56) == OpenKind::open);       // aarch64 openat
    CHECK(classify_syscall(0xc00000b7, 2) == OpenKind::not_open);
}

TEST_CASE("cross-check logic: matching - bypass - auid", "[audit][crosscheck]") {
    constexpr std::int64_t s = 1'000'000'000;
    CrossCheck cc(CrossCheckOptions{2 * s});
    AuditSighting a;
    a.tgid = 100;
    a.dev = 0xfe00000;
    a.ino = 42;
    a.realtime_ns = 1000 * s;
    a.auid = 1000;
    a.path = "/srv/z/f";
    EnforcerSighting e{100, 0xfe00000, 42, 1000 * s + 3'000'000, 1000, 1};

    SECTION("enforcer first, audit later: matched, nothing reported") {
        cc.enforcer_seen(e, 0);
        cc.audit_seen(a, s / 10);
        CHECK(cc.poll(10 * s).empty());
        CHECK(cc.counters().matched == 1);
    }
    SECTION("audit first, enforcer within the window: matched") {
        cc.audit_seen(a, 0);
        CHECK(cc.poll(s).empty());
        cc.enforcer_seen(e, s);
        CHECK(cc.poll(10 * s).empty());
        CHECK(cc.waiting() == 0);
    }
    SECTION("no enforcer event: a finding once the window passed, not before") {
        cc.audit_seen(a, 0);
        CHECK(cc.poll(2 * s - 1).empty());
        auto f = cc.poll(2 * s);
        REQUIRE(f.size() == 1);
        CHECK(f[0].kind == Finding::Kind::unmatched);
        CHECK(f[0].audit.path == "/srv/z/f");
        CHECK(cc.counters().unmatched == 1);
    }
    SECTION("an event of another process or inode does not count") {
        EnforcerSighting other = e;
        other.tgid = 101;
        cc.enforcer_seen(other, 0);
        other = e;
        other.ino = 43;
        cc.enforcer_seen(other, 0);
        cc.audit_seen(a, 0);
        CHECK(cc.poll(3 * s).size() == 1);
    }
    SECTION("an enforcer event far away in time does not count") {
        EnforcerSighting old = e;
        old.realtime_ns = a.realtime_ns - 5 * s;
        cc.enforcer_seen(old, 0);
        cc.audit_seen(a, 0);
        CHECK(cc.poll(3 * s).size() == 1);
    }
    SECTION("one enforcer event matches one read only") {
        cc.enforcer_seen(e, 0);
        cc.audit_seen(a, 0);
        cc.audit_seen(a, 0);
        auto f = cc.poll(3 * s);
        CHECK(f.size() == 1);
        CHECK(cc.counters().matched == 1);
    }
    SECTION("auid and loginuid disagree: reported at once") {
        EnforcerSighting wrong = e;
        wrong.loginuid = 0xffffffffu;
        cc.enforcer_seen(wrong, 0);
        cc.audit_seen(a, 0);
        auto f = cc.poll(0);
        REQUIRE(f.size() == 1);
        CHECK(f[0].kind == Finding::Kind::auid_mismatch);
        CHECK(f[0].enforcer_loginuid == 0xffffffffu);
        CHECK(f[0].audit.auid == 1000);
    }
    SECTION("a different st_dev (btrfs, overlayfs) still matches by process and inode") {
        EnforcerSighting d = e;
        d.dev = 0x2a;
        cc.enforcer_seen(d, 0);
        cc.audit_seen(a, 0);
        CHECK(cc.poll(3 * s).empty());
    }
}

namespace custguard::audit {
std::ostream& operator<<(std::ostream& os, const WatchSpec& w) {
    return os << w.path << " " << w.zone << (w.dir ? " dir" : " file");
}
}  // namespace custguard::audit

TEST_CASE("watch rules stay within max_watch_rules however many zones: common parents, never /", "[audit][rules]") {
    auto many = [](std::string_view dir, int n, int groups = 1) {
        std::vector<WatchSpec> out;
        for (int i = 0; i < n; ++i)
            out.push_back({std::string(dir) + "/g" + std::to_string(i % groups) + "/z" + std::to_string(i),
                           "z" + std::to_string(i), true});
        return out;
    };
    auto plus = [](std::vector<WatchSpec> a, std::vector<WatchSpec> b) {
        a.insert(a.end(), b.begin(), b.end());
        return a;
    };
    struct Row {
        const char* what;
        std::vector<WatchSpec> exact;
        std::size_t bound;
        std::vector<WatchSpec> want;
    };
    const std::vector<Row> rows = {
        {"within the bound: one exact rule per zone path, nested ones too",
         {{"/srv/a", "a", true}, {"/srv/a/b", "b", true}, {"/srv/f.txt", "f", false}},
         16,
         {{"/srv/a", "a", true}, {"/srv/a/b", "b", true}, {"/srv/f.txt", "f", false}}},
        {"10,000 zones in one directory and one elsewhere: the directory is shared, the other keeps its key",
         plus(many("/srv/zones", 10000), {{"/home/finance", "finance", true}}),
         16,
         {{"/home/finance", "finance", true}, {"/srv/zones/g0", "*", true}}},
        {"10,000 zones in 12 groups: one shared rule per group",
         many("/srv/zones", 10000, 12),
         16,
         [] {
             std::vector<WatchSpec> w;
             for (const char* g : {"g0", "g1", "g10", "g11", "g2", "g3", "g4", "g5", "g6", "g7", "g8", "g9"})
                 w.push_back({std::string("/srv/zones/") + g, "*", true});
             return w;
         }()},
        {"a path under a kept root is covered; /a-b is not under /a",
         {{"/a", "a", true}, {"/a-b", "ab", true}, {"/a/c", "c", true}},
         2,
         {{"/a", "*", true}, {"/a-b", "ab", true}}},
        {"files lift to their directory",
         {{"/srv/x/1.txt", "one", false}, {"/srv/x/2.txt", "two", false}, {"/srv/y", "y", true}},
         2,
         {{"/srv/x", "*", true}, {"/srv/y", "y", true}}},
        {"one file in two zones stays a file watch",
         {{"/srv/f.txt", "a", false}, {"/srv/f.txt", "b", false}, {"/srv/y", "y", true}},
         1,
         {{"/srv", "*", true}}},
        {"one file in two zones, within the bound after merging",
         {{"/srv/f.txt", "a", false}, {"/srv/f.txt", "b", false}, {"/srv/y", "y", true}},
         2,
         {{"/srv/f.txt", "*", false}, {"/srv/y", "y", true}}},
        {"never /: roots right under / stay even beyond the bound",
         {{"/a/x", "a", true}, {"/b/x", "b", true}, {"/c/x", "c", true}},
         2,
         {{"/a", "*", true}, {"/b", "*", true}, {"/c", "*", true}}},
    };
    for (const auto& row : rows) {
        INFO(row.what);
        auto got = bounded_specs(row.exact, row.bound);
        CHECK(got == row.want);
    }
}
