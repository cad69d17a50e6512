// Host tests of the audit observer against the real kernel audit (root): watch rules via
// libaudit as auditctl sees them, records through the multicast group with and without a
// running auditd, observe-only records, cross-check findings, and custguardd itself.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "custguard/common/nss_resolver.hpp"
#include "custguard/policy/compile.hpp"
#include "custguard/policy/load.hpp"
#include "daemon/audit/netlink.hpp"
#include "daemon/audit/observer.hpp"
#include "daemon/audit/rules.hpp"
#include "daemon/fanotify/fanotify_enforcer.hpp"
#include "support/support.hpp"

using namespace custguard;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// These tests need root (CAP_AUDIT_CONTROL, CAP_AUDIT_READ). CI runs them as root, where
// they must never skip.
#define REQUIRE_ROOT()                                              \
    do {                                                            \
        if (::geteuid() != 0) {                                     \
            WARN("skipped: needs root for the kernel audit");       \
            return;                                                 \
        }                                                           \
    } while (0)

std::string run(const std::string& cmd) {
    std::string out;
    FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
    if (!p) return out;
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    ::pclose(p);
    return out;
}

struct TempDir {
    fs::path path;
    TempDir() {
        char tmpl[] = "/tmp/cg-audit-XXXXXX";
        REQUIRE(::mkdtemp(tmpl));
        path = tmpl;
        fs::permissions(path, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                  fs::perms::others_read | fs::perms::others_exec);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

void write_file(const fs::path& p, const std::string& text, mode_t mode = 0644) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    ::chmod(p.c_str(), mode);
}

policy::Policy load_policy(const std::string& toml) {
    policy::LoadInput in;
    in.main = {"test.toml", toml};
    in.now = static_cast<std::uint64_t>(::time(nullptr));
    auto loaded = policy::load(in, common::NssResolver{});
    if (!loaded) {
        for (const auto& d : loaded.error()) UNSCOPED_INFO(d.format());
    }
    REQUIRE(loaded);
    return loaded->policy;
}

// Read `path` in a child as uid/gid (with loginuid set first when given); returns the
// child's pid once it exited, or -1 when the read failed.
// The observer's thread runs in this process: the child only makes system calls.
pid_t read_as(const fs::path& path, uid_t uid, gid_t gid, std::optional<std::uint32_t> loginuid = std::nullopt) {
    const std::string v = loginuid ? std::to_string(*loginuid) : std::string();
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (loginuid) {
            int fd = ::open("/proc/self/loginuid", O_WRONLY);
            if (fd < 0 || ::write(fd, v.data(), v.size()) != static_cast<ssize_t>(v.size())) ::_exit(3);
            ::close(fd);
        }
        if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) ::_exit(4);
        int fd = ::open(path.c_str(), O_RDONLY);
        if (fd < 0) ::_exit(5);
        char buf[64];
        (void)!::read(fd, buf, sizeof buf);
        ::close(fd);
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? pid : -1;
}

struct Collector {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<events::Record> records;
    std::vector<std::string> lost;
    std::vector<std::string> warnings;

    audit::ObserverCallbacks callbacks() {
        audit::ObserverCallbacks cb;
        cb.record = [this](events::Record&& r) {
            std::lock_guard lock(mu);
            records.push_back(std::move(r));
            cv.notify_all();
        };
        cb.lost = [this](std::string_view s, std::uint64_t n, std::string_view reason) {
            std::lock_guard lock(mu);
            lost.push_back(std::string(s) + ":" + std::to_string(n) + ":" + std::string(reason));
        };
        cb.warning = [this](const std::string& w) {
            std::lock_guard lock(mu);
            warnings.push_back(w);
        };
        return cb;
    }

    // The first record for which `pred` holds, waiting up to `timeout`.
    std::optional<events::Record> wait_for(const std::function<bool(const events::Record&)>& pred,
                                           std::chrono::milliseconds timeout = 5s) {
        std::unique_lock lock(mu);
        std::optional<events::Record> found;
        cv.wait_for(lock, timeout, [&] {
            for (const auto& r : records)
                if (pred(r)) {
                    found = r;
                    return true;
                }
            return false;
        });
        return found;
    }
    std::size_t count(const std::function<bool(const events::Record&)>& pred) {
        std::lock_guard lock(mu);
        return static_cast<std::size_t>(std::count_if(records.begin(), records.end(), pred));
    }
};

std::string field(const events::Record& r, std::string_view name) {
    auto* v = r.get(name);
    return v ? *v : std::string();
}

auto with_pid(pid_t pid) {
    return [pid](const events::Record& r) { return field(r, events::field::pid) == std::to_string(pid); };
}

std::string zone_policy(const fs::path& zone, const std::string& extra = {}) {
    return "[[zone]]\nname = \"customers\"\npaths = [\"" + zone.string() +
           "\"]\nsensitivity = \"personal\"\non_violation = \"deny\"\nrecord_allowed = true\nallow_users = [\"root\"]\n" +
           extra;
}

struct AuditdProcess {
    pid_t pid = -1;
    fs::path log;
    explicit AuditdProcess(const fs::path& dir) {
        log = dir / "audit.log";
        write_file(dir / "auditd.conf",
                   "local_events = yes\nwrite_logs = yes\nlog_file = " + log.string() +
                       "\nlog_format = RAW\nflush = SYNC\nmax_log_file = 100\nnum_logs = 2\n"
                       "max_log_file_action = IGNORE\nspace_left = 2\nspace_left_action = IGNORE\n"
                       "admin_space_left = 1\nadmin_space_left_action = IGNORE\ndisk_full_action = IGNORE\n"
                       "disk_error_action = IGNORE\nq_depth = 2000\noverflow_action = IGNORE\nplugin_dir = " +
                       (dir / "plugins.d").string() + "\nend_of_event_timeout = 2\n",
                   0640);
        fs::create_directories(dir / "plugins.d");
        pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            int null = ::open("/dev/null", O_RDWR);
            ::dup2(null, 1);
            ::dup2(null, 2);
            ::execl("/usr/sbin/auditd", "auditd", "-n", "-c", dir.c_str(), nullptr);
            ::_exit(127);
        }
    }
    ~AuditdProcess() { stop(); }
    void stop() {
        if (pid <= 0) return;
        ::kill(pid, SIGTERM);
        ::waitpid(pid, nullptr, 0);
        pid = -1;
    }
};

std::uint32_t kernel_audit_pid() {
    auto c = audit::AuditControl::open();
    REQUIRE(c);
    auto st = c->status();
    REQUIRE(st);
    return st->pid;
}

std::string our_rules() {
    std::string out;
    std::istringstream in(run("auditctl -l"));
    std::string line;
    while (std::getline(in, line))
        if (line.find("custguard:") != std::string::npos) out += line + "\n";
    return out;
}

}  // namespace

TEST_CASE("watch rules: one per zone root via libaudit as auditctl lists them - others untouched and ours gone after stop",
          "[audit][host]") {
    REQUIRE_ROOT();
    TempDir t;
    write_file(t.path / "zone/a.txt", "a");
    write_file(t.path / "single.txt", "s");
    write_file(t.path / "other/x", "x");
    const std::string foreign = "-w " + (t.path / "other").string() + " -p w -k other-tool";
    REQUIRE(run("auditctl " + foreign).empty());

    auto obs = audit::AuditObserver::create({});
    REQUIRE(obs);
    auto pol = load_policy(zone_policy(t.path / "zone") + "[[zone]]\nname = \"single-file\"\npaths = [\"" +
                           (t.path / "single.txt").string() + "\", \"" + (t.path / "missing").string() +
                           "\"]\nallow_users = [\"root\"]\n");
    auto w = (*obs)->apply(pol);
    REQUIRE(w);
    REQUIRE(w->size() == 1);  // the missing path
    CHECK(w->front().find("does not exist") != std::string::npos);

    std::string listed = run("auditctl -l");
    INFO(listed);
    CHECK(listed.find("-w " + (t.path / "zone").string() + " -p r -k custguard:customers") != std::string::npos);
    CHECK(listed.find("-w " + (t.path / "single.txt").string() + " -p r -k custguard:single-file") != std::string::npos);
    CHECK(listed.find(foreign) != std::string::npos);
    CHECK((*obs)->counters().rules == 2);

    // Applying the same policy again changes nothing; a policy without the second zone
    // takes its rule away.
    REQUIRE((*obs)->apply(pol));
    CHECK(run("auditctl -l") == listed);
    REQUIRE((*obs)->apply(load_policy(zone_policy(t.path / "zone"))));
    std::string after = our_rules();
    INFO(after);
    CHECK(after.find("custguard:customers") != std::string::npos);
    CHECK(after.find("single") == std::string::npos);

    (*obs)->stop(true);
    CHECK(our_rules().find(t.path.string()) == std::string::npos);
    CHECK(run("auditctl -l").find(foreign) != std::string::npos);
    run("auditctl -W " + (t.path / "other").string() + " -p w -k other-tool");
}

TEST_CASE("stale custguard rules of a killed daemon are reconciled away at start", "[audit][host]") {
    REQUIRE_ROOT();
    TempDir t;
    write_file(t.path / "old/f", "o");
    write_file(t.path / "zone/f", "z");
    REQUIRE(run("auditctl -w " + (t.path / "old").string() + " -p r -k custguard:old").empty());
    // Our key but a different permission: not what we would add, so replaced too.
    REQUIRE(run("auditctl -w " + (t.path / "zone").string() + " -p rw -k custguard:customers").empty());
    auto obs = audit::AuditObserver::create({});
    REQUIRE(obs);
    REQUIRE((*obs)->apply(load_policy(zone_policy(t.path / "zone"))));
    std::string rules;  // ours for this test's paths (other custguardd instances may run)
    {
        std::istringstream in(our_rules());
        std::string line;
        while (std::getline(in, line))
            if (line.find(t.path.string()) != std::string::npos) rules += line + "\n";
    }
    INFO(rules);
    CHECK(rules.find("custguard:old") == std::string::npos);
    CHECK(rules == "-w " + (t.path / "zone").string() + " -p r -k custguard:customers\n");
    (*obs)->stop(true);
    CHECK(our_rules().find(t.path.string()) == std::string::npos);
}

TEST_CASE("observe-only: reads come through the multicast group and are decided by the policy", "[audit][host]") {
    REQUIRE_ROOT();
    TempDir t;
    write_file(t.path / "zone/sub/c.txt", "customer");
    write_file(t.path / "outside.txt", "o");
    audit::ObserverOptions o;
    o.mode = audit::ObserverMode::observe;
    auto obs = audit::AuditObserver::create(o);
    REQUIRE(obs);
    REQUIRE((*obs)->apply(load_policy(zone_policy(t.path / "zone"))));
    Collector c;
    REQUIRE((*obs)->start(c.callbacks()));
    REQUIRE(kernel_audit_pid() == 0);  // no auditd: multicast only

    pid_t nobody = read_as(t.path / "zone/sub/c.txt", 65534, 65534);
    REQUIRE(nobody > 0);
    auto r = c.wait_for(with_pid(nobody));
    REQUIRE(r);
    CHECK(r->kind == events::Kind::access_audited);  // would be denied, but nothing enforces
    CHECK(field(*r, events::field::decision) == "deny");
    CHECK(field(*r, events::field::sensor) == "audit");
    CHECK(field(*r, "CUSTGUARD_ENFORCED") == "0");
    CHECK(field(*r, events::field::path) == (t.path / "zone/sub/c.txt").string());
    CHECK(field(*r, events::field::uid) == "65534");
    CHECK(field(*r, events::field::zone) == "customers");
    CHECK(field(*r, events::field::exe).empty() == false);
    CHECK(r->message.find("would be denied") != std::string::npos);
    CHECK_FALSE(field(*r, "CUSTGUARD_AUDIT_EVENT").empty());

    pid_t root = read_as(t.path / "zone/sub/c.txt", 0, 0);
    auto allowed = c.wait_for(with_pid(root));
    REQUIRE(allowed);
    CHECK(allowed->kind == events::Kind::access_allowed);
    CHECK(field(*allowed, events::field::rule) == "allowed_user");

    // A read outside every zone produces nothing.
    pid_t out = read_as(t.path / "outside.txt", 65534, 65534);
    std::this_thread::sleep_for(1500ms);
    CHECK(c.count(with_pid(out)) == 0);
    CHECK((*obs)->counters().recorded == 2);
    (*obs)->stop(true);
    CHECK(our_rules().find(t.path.string()) == std::string::npos);
}

TEST_CASE("observe-only: a deny in the policy overrides a %group allow until it expires", "[audit][host]") {
    REQUIRE_ROOT();
    TempDir t;
    write_file(t.path / "zone/c.txt", "customer");
    audit::ObserverOptions o;
    o.mode = audit::ObserverMode::observe;
    auto obs = audit::AuditObserver::create(o);
    REQUIRE(obs);
    // nobody reads only through %nogroup; the daemon adds the deny for a bulk-read cool-down.
    auto pol = load_policy("[[zone]]\nname = \"customers\"\npaths = [\"" + (t.path / "zone").string() +
                           "\"]\nrecord_allowed = true\nallow_users = [\"%nogroup\"]\n");
    const auto now = static_cast<std::uint64_t>(::time(nullptr));
    pol.denies = {{"customers", 65534, now + 600}};
    REQUIRE((*obs)->apply(pol));
    Collector c;
    REQUIRE((*obs)->start(c.callbacks()));

    pid_t during = read_as(t.path / "zone/c.txt", 65534, 65534);
    auto r = c.wait_for(with_pid(during));
    REQUIRE(r);
    CHECK(r->kind == events::Kind::access_audited);  // nothing enforces in observe-only
    CHECK(field(*r, events::field::decision) == "deny");
    CHECK(field(*r, events::field::rule) == "revoked");
    CHECK(r->message.find("would be denied") != std::string::npos);

    pol.denies = {{"customers", 65534, now - 1}};
    REQUIRE((*obs)->apply(pol));
    pid_t after = read_as(t.path / "zone/c.txt", 65534, 65534);
    auto a = c.wait_for(with_pid(after));
    REQUIRE(a);
    CHECK(a->kind == events::Kind::access_allowed);
    CHECK(field(*a, events::field::rule) == "allowed_group");
    (*obs)->stop(true);
}

TEST_CASE("observe-only with auditd -n running: both get every record and auditd keeps the unicast channel",
          "[audit][host]") {
    REQUIRE_ROOT();
    TempDir t;
    write_file(t.path / "zone/c.txt", "customer");
    REQUIRE(kernel_audit_pid() == 0);
    audit::ObserverOptions o;
    o.mode = audit::ObserverMode::observe;
    auto obs = audit::AuditObserver::create(o);
    REQUIRE(obs);
    REQUIRE((*obs)->apply(load_policy(zone_policy(t.path / "zone"))));
    Collector c;
    REQUIRE((*obs)->start(c.callbacks()));

    TempDir d;
    AuditdProcess auditd(d.path);
    for (int i = 0; i < 50 && kernel_audit_pid() != static_cast<std::uint32_t>(auditd.pid); ++i)
        std::this_thread::sleep_for(100ms);
    REQUIRE(kernel_audit_pid() == static_cast<std::uint32_t>(auditd.pid));

    pid_t reader = read_as(t.path / "zone/c.txt", 65534, 65534);
    REQUIRE(reader > 0);
    REQUIRE(c.wait_for(with_pid(reader)));
    // auditd wrote the same event to its log: we did not take the records from it.
    std::string needle = "pid=" + std::to_string(reader) + " ";
    bool in_log = false;
    for (int i = 0; i < 50 && !in_log; ++i) {
        std::ifstream in(auditd.log);
        std::string line;
        while (std::getline(in, line))
            if (line.find(needle) != std::string::npos && line.find("key=\"custguard:customers\"") != std::string::npos)
                in_log = true;
        if (!in_log) std::this_thread::sleep_for(100ms);
    }
    CHECK(in_log);
    CHECK(kernel_audit_pid() == static_cast<std::uint32_t>(auditd.pid));

    // auditd goes away (and may turn audit off as it exits): the observer keeps reading.
    auditd.stop();
    std::this_thread::sleep_for(1200ms);
    pid_t later = read_as(t.path / "zone/c.txt", 65534, 65534);
    REQUIRE(later > 0);
    auto got = c.wait_for(with_pid(later));
    {
        std::lock_guard lock(c.mu);
        for (const auto& w : c.warnings) UNSCOPED_INFO("warning: " << w);
    }
    auto n = (*obs)->counters();
    INFO("records " << n.records << " events " << n.events << " accesses " << n.accesses << " reenabled " << n.reenabled
                    << " ignored " << n.ignored << " overruns " << n.overruns << " kernel_lost " << n.kernel_lost
                    << " incomplete " << n.incomplete << "\n"
                    << run("auditctl -s") << run("auditctl -l"));
    CHECK(got);
    (*obs)->stop(true);
}

TEST_CASE("cross-check: a read seen by audit but not by the enforcer raises sensor_mismatch", "[audit][host]") {
    REQUIRE_ROOT();
    TempDir t;
    write_file(t.path / "zone/c.txt", "customer");
    fs::create_directories(t.path / "elsewhere");
    audit::ObserverOptions o;
    o.mode = audit::ObserverMode::cross_check;
    o.enforcer_name = "fanotify";
    o.cross_check_window_ms = 500;
    auto obs = audit::AuditObserver::create(o);
    REQUIRE(obs);
    REQUIRE((*obs)->apply(load_policy(zone_policy(t.path / "zone"))));
    Collector c;
    REQUIRE((*obs)->start(c.callbacks()));

    SECTION("a read by its path") {
        pid_t bypass = read_as(t.path / "zone/c.txt", 65534, 65534);
        REQUIRE(bypass > 0);
        auto m = c.wait_for(with_pid(bypass));
        REQUIRE(m);
        CHECK(m->kind == events::Kind::sensor_mismatch);
        CHECK(field(*m, events::field::sensors) == "audit,fanotify");
        CHECK(field(*m, "CUSTGUARD_MISMATCH") == "unmatched");
        CHECK(field(*m, events::field::path) == (t.path / "zone/c.txt").string());
        CHECK(field(*m, events::field::zone) == "customers");
    }
    // Regression: the watch fires on the inode, but the observer judged the record's path,
    // which names the file in the reader's own mount namespace; a read through a bind
    // mount there was "in none of our zones" and ignored, so the route raised no mismatch.
    SECTION("a read through a bind mount in another mount namespace") {
        const fs::path seen = t.path / "elsewhere/c.txt";  // the name in the reader's namespace
        const fs::path zone = t.path / "zone", elsewhere = t.path / "elsewhere";  // the child must not allocate
        pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
                ::mount(zone.c_str(), elsewhere.c_str(), nullptr, MS_BIND, nullptr) != 0)
                ::_exit(3);
            if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(4);
            int fd = ::open(seen.c_str(), O_RDONLY);
            if (fd < 0) ::_exit(5);
            char buf[64];
            (void)!::read(fd, buf, sizeof buf);
            ::_exit(0);
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
        REQUIRE(WIFEXITED(status));
        REQUIRE(WEXITSTATUS(status) == 0);
        auto m = c.wait_for(with_pid(pid));
        REQUIRE(m);
        CHECK(m->kind == events::Kind::sensor_mismatch);
        CHECK(field(*m, events::field::zone) == "customers");
    }
    CHECK((*obs)->counters().mismatches == 1);
    (*obs)->stop(true);
}

TEST_CASE("cross-check: the enforcer event matches and its loginuid is confirmed by the audit auid", "[audit][host]") {
    REQUIRE_ROOT();
    TempDir t;
    write_file(t.path / "zone/c.txt", "customer");
    struct stat st {};
    REQUIRE(::stat((t.path / "zone/c.txt").c_str(), &st) == 0);
    audit::ObserverOptions o;
    o.mode = audit::ObserverMode::cross_check;
    o.enforcer_name = "fanotify";
    o.cross_check_window_ms = 1000;
    auto obs = audit::AuditObserver::create(o);
    REQUIRE(obs);
    REQUIRE((*obs)->apply(load_policy(zone_policy(t.path / "zone"))));
    Collector c;
    REQUIRE((*obs)->start(c.callbacks()));

    // What the enforcer would have delivered for the child's open (as fanotify fills it).
    auto enforcer_event = [&](pid_t pid, std::uint32_t loginuid) {
        daemon::AccessEvent ev;
        ev.sensor = daemon::Sensor::fanotify;
        timespec ts{};
        ::clock_gettime(CLOCK_REALTIME, &ts);
        ev.realtime_ns = ts.tv_sec * 1'000'000'000ll + ts.tv_nsec;
        ev.raw.kind = CG_EV_OPEN;
        ev.raw.pid = ev.raw.tgid = static_cast<std::uint32_t>(pid);
        ev.raw.dev = (std::uint64_t{major(st.st_dev)} << 20) | minor(st.st_dev);
        ev.raw.ino = st.st_ino;
        ev.raw.loginuid = loginuid;
        ev.raw.decision = CG_DECISION_DENY;
        return ev;
    };
    pid_t ok = read_as(t.path / "zone/c.txt", 65534, 65534, 1234);
    REQUIRE(ok > 0);
    (*obs)->observe_enforcer_event(enforcer_event(ok, 1234));
    pid_t wrong = read_as(t.path / "zone/c.txt", 65534, 65534, 1234);
    REQUIRE(wrong > 0);
    (*obs)->observe_enforcer_event(enforcer_event(wrong, 4321));

    auto m = c.wait_for(with_pid(wrong));
    REQUIRE(m);
    CHECK(m->kind == events::Kind::sensor_mismatch);
    CHECK(field(*m, "CUSTGUARD_MISMATCH") == "auid");
    CHECK(field(*m, events::field::auid) == "1234");
    CHECK(field(*m, "CUSTGUARD_ENFORCER_LOGINUID") == "4321");
    std::this_thread::sleep_for(2s);  // past the window: the matched read stays quiet
    CHECK(c.count(with_pid(ok)) == 0);
    CHECK((*obs)->counters().matched == 2);
    CHECK((*obs)->counters().mismatches == 0);
    (*obs)->stop(true);
}

TEST_CASE("custguardd --enforcer none records reads via audit and removes its rules at exit", "[audit][host]") {
    REQUIRE_ROOT();
    TempDir t;
    write_file(t.path / "zone/c.txt", "customer");
    write_file(t.path / "policy.toml", "[daemon]\nenforcer = \"none\"\n\n" + zone_policy(t.path / "zone"));
    fs::path jsonl = t.path / "out.jsonl";
    const std::string export_arg = "jsonl:" + jsonl.string();  // the child must not allocate
    const std::string state = (t.path / "state").string();
    const std::string pol = (t.path / "policy.toml").string();
    pid_t d = ::fork();
    REQUIRE(d >= 0);
    if (d == 0) {
        int null = ::open("/dev/null", O_RDWR);
        ::dup2(null, 1);
        ::dup2(null, 2);
        ::execl(CG_CUSTGUARDD, "custguardd", "--policy", pol.c_str(), "--state-dir", state.c_str(), "--enforcer", "none",
                "--no-journal", "--export", export_arg.c_str(), nullptr);
        ::_exit(127);
    }
    const std::string mine = "-w " + (t.path / "zone").string() + " -p r -k custguard:" +
                             audit::instance_tag(fs::weakly_canonical(state).string()) + ":customers\n";
    std::string rules;
    for (int i = 0; i < 100 && rules.find(mine) == std::string::npos; ++i) {
        std::this_thread::sleep_for(100ms);
        rules = our_rules();
    }
    REQUIRE(rules.find(mine) != std::string::npos);
    pid_t reader = read_as(t.path / "zone/c.txt", 65534, 65534);
    REQUIRE(reader > 0);
    std::string line;
    for (int i = 0; i < 100; ++i) {
        std::ifstream in(jsonl);
        std::string l;
        while (std::getline(in, l))
            if (l.find("\"pid\":" + std::to_string(reader)) != std::string::npos ||
                l.find("\"pid\":\"" + std::to_string(reader) + "\"") != std::string::npos)
                line = l;
        if (!line.empty()) break;
        std::this_thread::sleep_for(100ms);
    }
    INFO(line);
    REQUIRE_FALSE(line.empty());
    CHECK(line.find("\"sensor\":\"audit\"") != std::string::npos);
    CHECK(line.find("would be denied") != std::string::npos);
    ::kill(d, SIGTERM);
    int status = 0;
    ::waitpid(d, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(our_rules().find(mine) == std::string::npos);
}

namespace {

// A tmpfs in a private mount namespace: the fanotify enforcer marks the whole filesystem
// holding a zone root, which must not be a filesystem other work on this host uses.
struct PrivateTmpfs {
    fs::path path;
    bool ok = false;
    PrivateTmpfs() {
        static const bool ns = ::unshare(CLONE_NEWNS) == 0 && ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
        char tmpl[] = "/tmp/cg-audit-fan-XXXXXX";
        if (!ns || !::mkdtemp(tmpl)) return;
        path = tmpl;
        ok = ::mount("tmpfs", tmpl, "tmpfs", 0, "size=16m,mode=0755") == 0;
    }
    ~PrivateTmpfs() {
        if (ok) ::umount2(path.c_str(), MNT_DETACH);
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

}  // namespace

TEST_CASE("cross-check with the real fanotify enforcer: its events match and a read it no longer sees is reported",
          "[audit][host]") {
    REQUIRE_ROOT();
    PrivateTmpfs t;
    REQUIRE(t.ok);
    write_file(t.path / "zone/c.txt", "customer");
    auto pol = load_policy(zone_policy(t.path / "zone"));

    audit::ObserverOptions o;
    o.mode = audit::ObserverMode::cross_check;
    o.enforcer_name = "fanotify";
    o.cross_check_window_ms = 1000;
    auto obs = audit::AuditObserver::create(o);
    REQUIRE(obs);
    REQUIRE((*obs)->apply(pol));
    Collector c;
    REQUIRE((*obs)->start(c.callbacks()));

    daemon::FanotifyOptions fo;
    fo.use_fd_store = false;
    auto enforcer = daemon::FanotifyEnforcer::create(std::move(fo));
    REQUIRE(enforcer);
    std::atomic<int> enforcer_events{0};
    auto* observer = obs->get();
    REQUIRE((*enforcer)->start([&](daemon::AccessEvent&& ev) {
        observer->observe_enforcer_event(ev);
        ++enforcer_events;
    }));
    auto applied = (*enforcer)->apply(policy::compile(pol));
    INFO((applied ? "" : applied.error()));
    REQUIRE(applied);

    pid_t denied = read_as(t.path / "zone/c.txt", 65534, 65534);
    CHECK(denied == -1);  // the enforcer refused it
    pid_t allowed = read_as(t.path / "zone/c.txt", 0, 0);
    REQUIRE(allowed > 0);
    pid_t listing = read_as(t.path / "zone", 0, 0);  // a directory open: no file read
    REQUIRE(listing > 0);
    std::this_thread::sleep_for(2500ms);
    auto is_mismatch = [](const events::Record& r) { return r.kind == events::Kind::sensor_mismatch; };
    {
        std::lock_guard lock(c.mu);
        for (const auto& r : c.records) UNSCOPED_INFO(r.message);
    }
    CHECK(c.count(is_mismatch) == 0);
    CHECK(enforcer_events.load() >= 2);
    CHECK((*obs)->counters().matched >= 2);

    // The enforcer goes away (as if detached by someone): the next read is audit's alone.
    (*enforcer)->stop(true);
    pid_t unseen = read_as(t.path / "zone/c.txt", 0, 0);
    REQUIRE(unseen > 0);
    auto m = c.wait_for(with_pid(unseen), 4s);
    REQUIRE(m);
    CHECK(m->kind == events::Kind::sensor_mismatch);
    CHECK(field(*m, "CUSTGUARD_MISMATCH") == "unmatched");
    (*obs)->stop(true);
}

TEST_CASE("the kernel's lost counter becomes a lost report", "[audit][host]") {
    REQUIRE_ROOT();
    TempDir t;
    write_file(t.path / "zone/c.txt", "customer");
    audit::ObserverOptions o;
    o.mode = audit::ObserverMode::observe;
    o.status_interval_ms = 100;
    auto obs = audit::AuditObserver::create(o);
    REQUIRE(obs);
    REQUIRE((*obs)->apply(load_policy(zone_policy(t.path / "zone"))));
    Collector c;
    REQUIRE((*obs)->start(c.callbacks()));

    // A rate limit of 5 records/s makes the kernel drop (and count) the rest of a burst.
    std::string status = run("auditctl -s");
    auto pos = status.find("rate_limit ");
    REQUIRE(pos != std::string::npos);
    const std::string old_limit = status.substr(pos + 11, status.find('\n', pos) - pos - 11);
    struct Restore {
        std::string limit;
        ~Restore() { run("auditctl -r " + limit); }
    } restore{old_limit};
    REQUIRE(run("auditctl -r 5").find("rate_limit 5") != std::string::npos);
    for (int i = 0; i < 200; ++i) {
        int fd = ::open((t.path / "zone/c.txt").c_str(), O_RDONLY);
        if (fd >= 0) ::close(fd);
    }
    run("auditctl -r " + old_limit);
    bool reported = false;
    for (int i = 0; i < 40 && !reported; ++i) {
        std::this_thread::sleep_for(100ms);
        std::lock_guard lock(c.mu);
        for (const auto& l : c.lost)
            if (l.starts_with("audit-kernel:")) reported = true;
    }
    CHECK(reported);
    CHECK((*obs)->counters().kernel_lost > 0);
    (*obs)->stop(true);
}

TEST_CASE("the kernel's default backlog of 64 is raised while custguard's rules are in place and put back at stop",
          "[audit][host]") {
    // Regression: with the default limit smbd waited in audit_log_start for kauditd past
    // its clients' 20 s timeout (NT_STATUS_IO_TIMEOUT in bench/samba on a loaded machine).
    REQUIRE_ROOT();
    auto c = audit::AuditControl::open();
    REQUIRE(c);
    auto before = c->status();
    REQUIRE(before);
    const std::uint32_t original = before->backlog_limit;
    struct Row {
        std::uint32_t set, running, after;
    };
    for (const Row& row : {Row{64, 8192, 64}, Row{20000, 20000, 20000}}) {
        INFO("limit before " << row.set);
        REQUIRE(c->set_backlog_limit(row.set));
        auto obs = audit::AuditObserver::create({});
        REQUIRE(obs);
        CHECK(c->status()->backlog_limit == row.running);
        (*obs)->stop(true);
        CHECK(c->status()->backlog_limit == row.after);
    }
    REQUIRE(c->set_backlog_limit(original));
}

namespace {

// A custguardd observing with audit (--enforcer none), its output in dir/log.
struct ObserveDaemon {
    pid_t pid = -1;
    ObserveDaemon(const fs::path& policy, const fs::path& state, const fs::path& log,
                  const std::string& bus = "unix:path=/nonexistent") {
        // Built before fork: the child only makes system calls.
        std::vector<std::string> args = {"custguardd", "--policy", policy.string(), "--state-dir", state.string(),
                                         "--enforcer", "none", "--no-journal", "--export",
                                         "jsonl:" + (state.parent_path() / (state.filename().string() + ".jsonl")).string(),
                                         "--bus-address", bus};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        const std::string log_path = log.string();
        pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            ::execv(CG_CUSTGUARDD, argv.data());
            ::_exit(127);
        }
    }
    int stop(int sig) {
        int status = 0;
        ::kill(pid, sig);
        ::waitpid(pid, &status, 0);
        pid = -1;
        return status;
    }
    ~ObserveDaemon() {
        if (pid > 0) stop(SIGKILL);
    }
};

std::string slurp_file(const fs::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

std::size_t rules_with_key_prefix(const std::string& prefix) {
    std::size_t n = 0;
    std::istringstream in(run("auditctl -l"));
    std::string line;
    while (std::getline(in, line))
        if (line.find(" -k " + prefix) != std::string::npos) ++n;
    return n;
}

// Waits up to `limit` for exactly `want` rules of `prefix`; returns the count seen last.
// Waits up to `limit` until custguardd's log says its audit observer runs.
bool wait_started(const fs::path& log, std::chrono::seconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (slurp_file(log).find("audit observer: ") == std::string::npos) {
        if (std::chrono::steady_clock::now() >= until) return false;
        std::this_thread::sleep_for(100ms);
    }
    return true;
}

std::size_t wait_rules(const std::string& prefix, std::size_t want, std::chrono::seconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    std::size_t n = rules_with_key_prefix(prefix);
    while (n != want && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(1s);  // listing thousands of rules costs the kernel too
        n = rules_with_key_prefix(prefix);
    }
    return n;
}

}  // namespace

TEST_CASE("10,000 zones: a bounded number of rules, a stop removes its own only, a restart after SIGKILL its stale "
          "ones, a second instance keeps its own, reads under a shared root are decided by path",
          "[audit][host]") {
    REQUIRE_ROOT();
    // A tmpfs: creating and removing 10,000 directories on the shared disk took half a
    // minute on a loaded machine.
    PrivateTmpfs t;
    REQUIRE(t.ok);
    // 10,000 zone directories in 12 group directories: 12 shared rules (custguard:<a>:*),
    // not 10,000 (which cost every system call of the machine; see custguardd(8) AUDIT).
    constexpr int zones = 10000, groups = 12;
    std::string big;
    for (int i = 0; i < zones; ++i) {
        const fs::path z = t.path / ("g" + std::to_string(i % groups)) / ("z" + std::to_string(i));
        fs::create_directories(z);
        big += "[[zone]]\nname = \"z" + std::to_string(i) + "\"\npaths = [\"" + z.string() +
               "\"]\nallow_users = [\"root\"]\nrecord_allowed = true\n";
    }
    write_file(t.path / "g3/z3/c.txt", "customer");
    write_file(t.path / "g3/plain/p.txt", "not in any zone, under a shared root");
    write_file(t.path / "big.toml", "[daemon]\nenforcer = \"none\"\n\n" + big);
    fs::create_directories(t.path / "other");
    write_file(t.path / "other.toml", "[daemon]\nenforcer = \"none\"\n\n" + zone_policy(t.path / "other"));
    const fs::path state_a = t.path / "a", state_b = t.path / "b";
    const std::string tag_a = audit::instance_tag(fs::weakly_canonical(state_a).string());
    const std::string tag_b = audit::instance_tag(fs::weakly_canonical(state_b).string());
    REQUIRE(tag_a != tag_b);
    const std::string mine = "custguard:" + tag_a + ":", other = "custguard:" + tag_b + ":";
    auto logs = [&] { return slurp_file(t.path / "a.log") + "\n--- b\n" + slurp_file(t.path / "b.log"); };
    auto ms_since = [](auto t0) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    };

    ObserveDaemon b(t.path / "other.toml", state_b, t.path / "b.log");
    REQUIRE(wait_rules(other, 1, 30s) == 1);
    {
        const cgtest::PrivateBus bus(t.path);
        ObserveDaemon a(t.path / "big.toml", state_a, t.path / "a.log", bus.address());
        const auto t0 = std::chrono::steady_clock::now();
        const std::size_t n = wait_rules(mine, groups, 60s);
        INFO(logs());
        REQUIRE(n == groups);
        CHECK(rules_with_key_prefix(mine + "*") == groups);
        WARN(zones << " zones: " << n << " rules in place after " << ms_since(t0) << " ms");
        // custguardctl status: the mode and the rule count.
        REQUIRE(wait_started(t.path / "a.log", 30s));
        std::string status;
        for (int i = 0; i < 50 && status.find("audit") == std::string::npos; ++i) {
            std::this_thread::sleep_for(100ms);
            status = run(bus.env() + " " CG_CUSTGUARDCTL " status");
        }
        INFO(status);
        CHECK(status.find("observe, " + std::to_string(groups) + " rules (key custguard:" + tag_a) != std::string::npos);

        // Observe mode under a shared root: the zone file's read is recorded with its zone,
        // the read beside the zones is filtered out.
        const pid_t plain = read_as(t.path / "g3/plain/p.txt", 65534, 65534);
        const pid_t reader = read_as(t.path / "g3/z3/c.txt", 65534, 65534);
        REQUIRE(plain > 0);
        REQUIRE(reader > 0);
        const fs::path jsonl = t.path / "a.jsonl";
        auto line_of = [&](pid_t pid) {
            std::ifstream in(jsonl);
            std::string l;
            while (std::getline(in, l))
                if (l.find("\"pid\":" + std::to_string(pid)) != std::string::npos ||
                    l.find("\"pid\":\"" + std::to_string(pid) + "\"") != std::string::npos)
                    return l;
            return std::string();
        };
        std::string line;
        for (int i = 0; i < 100 && line.empty(); ++i) {
            std::this_thread::sleep_for(100ms);
            line = line_of(reader);
        }
        INFO(line);
        REQUIRE_FALSE(line.empty());
        CHECK(line.find("\"sensor\":\"audit\"") != std::string::npos);
        CHECK(line.find("\"z3\"") != std::string::npos);
        CHECK(line.find("/g3/z3/c.txt") != std::string::npos);
        CHECK(line.find("would be denied") != std::string::npos);
        CHECK(line_of(plain).empty());
        // The read beside the zones is not counted as a zone read.
        status = run(bus.env() + " " CG_CUSTGUARDCTL " status");
        INFO(status);
        CHECK(status.find(", 1 zone reads seen") != std::string::npos);

        a.stop(SIGKILL);
        CHECK(rules_with_key_prefix(mine) == groups);  // stale: nobody removed them
    }
    CHECK(rules_with_key_prefix(other) == 1);
    // A rule of this instance for a zone the policy no longer has, as a killed daemon
    // with an older policy leaves it: the restart removes it.
    const std::string gone = "-w " + (t.path / "other").string() + " -p r -k " + mine + "gone";
    REQUIRE(run("auditctl " + gone).empty());
    {
        // The same instance (state directory) with the 10,000 zones again: its stale rules
        // are reconciled (the same 12 kept, the old one removed); a clean stop removes all.
        ObserveDaemon a(t.path / "big.toml", state_a, t.path / "a2.log");
        const auto t0 = std::chrono::steady_clock::now();
        INFO(logs() + "\n--- a2\n" + slurp_file(t.path / "a2.log"));
        REQUIRE(wait_started(t.path / "a2.log", 60s));
        WARN("restart after SIGKILL with " << zones << " zones: started after " << ms_since(t0) << " ms");
        CHECK(rules_with_key_prefix(mine) == groups);
        CHECK(rules_with_key_prefix(mine + "gone") == 0);
        CHECK(rules_with_key_prefix(other) == 1);
        const auto t1 = std::chrono::steady_clock::now();
        const int status = a.stop(SIGTERM);
        CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
        WARN("clean stop: " << ms_since(t1) << " ms");
        CHECK(rules_with_key_prefix(mine) == 0);
        CHECK(rules_with_key_prefix(other) == 1);  // a clean stop took only its own
    }
    const int status = b.stop(SIGTERM);
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    CHECK(rules_with_key_prefix(other) == 0);
}
