// Authorisation with polkit: a private system bus with the real polkitd (Debian's 122), the
// shipped actions (polkit/org.custguard1.policy) and admin rule, the example manager rule
// (examples/polkit), the real custguardd and custguardctl run as test users.
//
// polkitd reads /usr/share/polkit-1/actions, /usr/share/polkit-1/rules.d and
// /etc/polkit-1/rules.d: the test mounts directories holding only the shipped files over
// them, in this process's private mount namespace (have_root()), so nothing on the host
// changes and the host's own rules play no part.
#include <grp.h>
#include <pwd.h>
#include <sys/wait.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "daemon/dbus/json.hpp"
#include "checks.hpp"
#include "support/exec_plan.hpp"
#include "fixture.hpp"

using cgdbus::accounts;
using cgdbus::contains;
using cgdbus::describe;
using cgdbus::parse;
using cgdbus::CtlResult;
using cgdbus::Fixture;
using custguard::dbus::Json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr const char* k_polkit_bus_policy = "/usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf";
constexpr const char* k_denied = "org.custguard1.Error.AccessDenied";

// polkit's three directories replaced by ones holding `files` (source, directory, name).
class PolkitFiles {
public:
    struct File {
        fs::path source;
        fs::path dir;  // one of the three below
        std::string name;
    };
    static constexpr const char* k_actions = "/usr/share/polkit-1/actions";
    static constexpr const char* k_rules = "/usr/share/polkit-1/rules.d";
    static constexpr const char* k_local_rules = "/etc/polkit-1/rules.d";

    PolkitFiles(const fs::path& scratch, const std::vector<File>& files) {
        const passwd* pk = ::getpwnam("polkitd");
        if (!pk) throw std::runtime_error("no user polkitd: install the polkitd package (scripts/bootstrap)");
        int i = 0;
        for (const char* target : {k_actions, k_rules, k_local_rules}) {
            const fs::path dir = scratch / ("polkit" + std::to_string(i++));
            fs::create_directories(dir);
            for (const auto& f : files)
                if (f.dir == target) fs::copy_file(f.source, dir / f.name);
            // polkitd reads them as its own user.
            for (const auto& e : fs::directory_iterator(dir)) REQUIRE(::chown(e.path().c_str(), pk->pw_uid, 0) == 0);
            REQUIRE(::chown(dir.c_str(), pk->pw_uid, 0) == 0);
            REQUIRE(::mount(dir.c_str(), target, nullptr, MS_BIND, nullptr) == 0);
            mounted_.push_back(target);
        }
    }
    ~PolkitFiles() {
        for (const auto& t : mounted_) ::umount2(t.c_str(), MNT_DETACH);
    }
    PolkitFiles(const PolkitFiles&) = delete;
    PolkitFiles& operator=(const PolkitFiles&) = delete;

private:
    std::vector<fs::path> mounted_;
};

// The real polkitd on the fixture's bus. It starts as root and switches to user polkitd.
class Polkitd {
public:
    explicit Polkitd(const Fixture& f)
        : pid_(cgtest::spawn({"/usr/lib/polkit-1/polkitd"}, {"DBUS_SYSTEM_BUS_ADDRESS=" + f.bus_address()},
                             f.dir() / "polkitd.log")) {}
    ~Polkitd() { cgtest::kill_and_reap(pid_); }
    Polkitd(const Polkitd&) = delete;
    Polkitd& operator=(const Polkitd&) = delete;

private:
    pid_t pid_;
};

// custguardd's own view of who decides (custguardctl status --json, "authorization").
std::string authorization_mode(const Fixture& f) {
    auto r = f.ctl({"status", "--json"});
    if (r.rc != 0) return "status failed: " + describe(r);
    return parse(r.out)["authorization"]["mode"].as_string();
}

bool wait_mode(const Fixture& f, const std::string& mode) {
    for (auto deadline = std::chrono::steady_clock::now() + 15s; std::chrono::steady_clock::now() < deadline;) {
        if (authorization_mode(f) == mode) return true;
        std::this_thread::sleep_for(100ms);
    }
    return false;
}

// The id of the held job of `user`.
std::string held_job_of(const Fixture& f, const std::string& user) {
    auto r = f.ctl({"print", "held", "--json"});
    INFO(describe(r));
    REQUIRE(r.rc == 0);
    const Json jobs = parse(r.out);
    for (const auto& j : jobs.as_array())
        if (j["user"].as_string() == user) return j["job"].as_string();
    FAIL("no held job of " << user << " in " << r.out);
    return {};
}

// custguardctl ARGS --json as `cred` must be refused with AccessDenied naming `action`.
void expect_not_authorized(const Fixture& f, std::vector<std::string> args, const cgtest::Cred& cred,
                           const std::string& action) {
    args.push_back("--json");
    auto r = f.ctl(args, cred);
    INFO(args[0] << " " << args[1] << " as uid " << cred.uid << "\n" << describe(r));
    CHECK(r.rc != 0);
    auto j = parse(r.out);
    CHECK(j["error"].as_string() == k_denied);
    CHECK(contains(j["message"].as_string(), action));
}

// A child that connects as `cred`, calls Subscribe and writes what it gets to a file:
// "subscribed" or "refused NAME", then "JOB USER" per JobHeld, for 8 s or until told to stop.
class JobHeldListener {
public:
    JobHeldListener(const Fixture& f, const cgtest::Cred& cred, const std::string& name)
        : out_(f.dir() / "jobheld" / name), stop_(f.dir() / "jobheld" / (name + ".stop")) {
        fs::create_directories(out_.parent_path());
        ::chmod(out_.parent_path().c_str(), 0777);  // the child writes as `cred`
        REQUIRE(cgtest::thread_count() == 1);  // the child allocates (sd-bus)
        pid_ = ::fork();
        if (pid_ == 0) ::_exit(run(f, cred));
        REQUIRE(pid_ > 0);
        for (int i = 0; i < 200 && !fs::exists(out_); ++i) std::this_thread::sleep_for(50ms);
        REQUIRE(fs::exists(out_));
    }
    ~JobHeldListener() {
        if (pid_ > 0) cgtest::kill_and_reap(pid_);
    }
    JobHeldListener(const JobHeldListener&) = delete;
    JobHeldListener& operator=(const JobHeldListener&) = delete;

    // Waits 1 s for late signals, stops the child; what it wrote.
    std::string finish() {
        std::this_thread::sleep_for(1s);
        cgtest::spit(stop_, "1");
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return cgtest::slurp(out_);
    }

private:
    int run(const Fixture& f, const cgtest::Cred& cred) {
        if (::setgroups(cred.groups.size(), cred.groups.data()) != 0 || ::setresgid(cred.gid, cred.gid, cred.gid) != 0 ||
            ::setresuid(cred.uid, cred.uid, cred.uid) != 0)
            return 120;
        auto bus = f.connect_bus();
        if (!bus) return 121;
        std::string text;
        sd_bus_slot* slot = nullptr;
        if (sd_bus_match_signal(bus.get(), &slot, nullptr, "/org/custguard1", "org.custguard1", "JobHeld",
                                [](sd_bus_message* m, void* u, sd_bus_error*) {
                                    const char *job = nullptr, *printer = nullptr, *user = nullptr;
                                    if (sd_bus_message_enter_container(m, 'r', "sssususta{su}") > 0 &&
                                        sd_bus_message_read(m, "sss", &job, &printer, &user) >= 0)
                                        *static_cast<std::string*>(u) += std::string(job) + " " + user + "\n";
                                    return 0;
                                },
                                &text) < 0)
            return 122;
        sd_bus_error err = SD_BUS_ERROR_NULL;
        sd_bus_message* reply = nullptr;
        text = sd_bus_call_method(bus.get(), "org.custguard1", "/org/custguard1", "org.custguard1", "Subscribe", &err,
                                  &reply, "") >= 0
                   ? "subscribed\n"
                   : std::string("refused ") + (err.name ? err.name : "?") + "\n";
        sd_bus_message_unref(reply);
        sd_bus_error_free(&err);
        cgtest::spit(out_, text);
        const auto until = std::chrono::steady_clock::now() + 20s;
        while (std::chrono::steady_clock::now() < until && !fs::exists(stop_)) {
            while (sd_bus_process(bus.get(), nullptr) > 0) {
            }
            cgtest::spit(out_, text);
            sd_bus_wait(bus.get(), 100'000);
        }
        cgtest::spit(out_, text);
        return 0;
    }

    fs::path out_, stop_;
    pid_t pid_ = -1;
};

}  // namespace

TEST_CASE("polkit: a zone's manager approves its held prints only, root and custguard-admin keep every right, "
          "each answer is recorded with the caller",
          "[dbus][polkit][host]") {
    REQUIRE_ROOT();
    const auto manager = cgtest::ensure_user("cgpolkit-manager", {"customers-managers"});
    cgtest::ensure_user("cgpolkit-clerk");
    cgtest::ensure_user("cgpolkit-nurse");
    const auto& admin = accounts().admin;  // in custguard-admin
    const auto& plain = accounts().user;

    Fixture f(Fixture::Options{.bus_includes = {k_polkit_bus_policy}});
    // Without polkitd on the bus custguardd decides as before polkit, and says so.
    CHECK(authorization_mode(f) == "fallback");
    CHECK(f.ctl({"status"}, admin).rc == 0);
    expect_not_authorized(f, {"print", "held"}, manager, "org.custguard1.read-history");

    PolkitFiles files(f.dir(), {{CG_SOURCE_DIR "/polkit/org.custguard1.policy", PolkitFiles::k_actions,
                                 "org.custguard1.policy"},
                                {CG_SOURCE_DIR "/polkit/60-custguard-admin.rules", PolkitFiles::k_rules,
                                 "60-custguard-admin.rules"},
                                {CG_SOURCE_DIR "/examples/polkit/50-custguard-managers.rules",
                                 PolkitFiles::k_local_rules, "50-custguard-managers.rules"}});
    Polkitd polkitd(f);
    INFO("polkitd.log:\n" << cgtest::slurp(f.dir() / "polkitd.log"));
    REQUIRE(wait_mode(f, "polkit"));

    // The clerk works in zone customers, the nurse in medical: their jobs' zones.
    REQUIRE(f.ctl({"user", "allow", "customers", "cgpolkit-clerk"}).rc == 0);
    REQUIRE(f.ctl({"user", "allow", "medical", "cgpolkit-nurse"}).rc == 0);
    const std::string doc = CG_SOURCE_DIR "/tests/scan/data/customer_utf8.txt";
    // The manager, and a user in no rule, subscribe to JobHeld (in children, as themselves).
    JobHeldListener manager_jobs(f, manager, "manager"), plain_jobs(f, plain, "plain");
    for (auto [job, user] : {std::pair{"61", "cgpolkit-clerk"}, {"62", "cgpolkit-nurse"}, {"63", "cgpolkit-nurse"}}) {
        auto [action, reason, hold] = cgdbus::check_print_job(f, job, doc, user);
        INFO(reason);
        REQUIRE(action == "hold");
    }
    const std::string clerk_job = held_job_of(f, "cgpolkit-clerk");
    const std::string nurse_job = held_job_of(f, "cgpolkit-nurse");
    // The manager of customers received the clerk's job, not the nurse's two (medical); the
    // plain user could not subscribe.
    CHECK(manager_jobs.finish() == "subscribed\n" + clerk_job + " cgpolkit-clerk\n");
    CHECK(contains(plain_jobs.finish(), "refused org.custguard1.Error.AccessDenied"));
    // ListHeldJobs with the manager's zone lists the clerk's job only.
    auto zone_jobs = f.ctl({"print", "held", "customers", "--json"}, manager);
    INFO(describe(zone_jobs));
    REQUIRE(zone_jobs.rc == 0);
    REQUIRE(parse(zone_jobs.out).as_array().size() == 1);
    CHECK(parse(zone_jobs.out).as_array().front()["job"].as_string() == clerk_job);

    // The manager of customers lists held jobs, approves the clerk's, and nothing else.
    auto held = f.ctl({"print", "held"}, manager);
    INFO(describe(held));
    CHECK(held.rc == 0);
    auto approved = f.ctl({"print", "approve", clerk_job, "--comment", "manager checked"}, manager);
    INFO(describe(approved));
    CHECK(approved.rc == 0);
    CHECK(contains(approved.out, "released"));
    expect_not_authorized(f, {"print", "approve", nurse_job}, manager, "org.custguard1.approve-print");
    expect_not_authorized(f, {"print", "reject", nurse_job, "--reason", "x"}, manager, "org.custguard1.approve-print");
    expect_not_authorized(f, {"policy", "reload"}, manager, "org.custguard1.manage-policy");
    expect_not_authorized(f, {"user", "allow", "customers", "cgdbus-user"}, manager, "org.custguard1.manage-zones");
    // A user in no rule is refused even a read.
    expect_not_authorized(f, {"status"}, plain, "org.custguard1.read-status");

    // custguard-admin keeps today's rights through the shipped rule; root through polkit's
    // own rule (uid 0 is always authorised).
    auto by_admin = f.ctl({"print", "approve", nurse_job, "--comment", "admin checked"}, admin);
    INFO(describe(by_admin));
    CHECK(by_admin.rc == 0);
    CHECK(f.ctl({"policy", "reload"}, admin).rc == 0);
    CHECK(f.ctl({"user", "allow", "customers", "cgdbus-user"}, admin).rc == 0);
    const std::string last_job = held_job_of(f, "cgpolkit-nurse");
    auto by_root = f.ctl({"print", "approve", last_job, "--comment", "root checked"});
    INFO(describe(by_root));
    CHECK(by_root.rc == 0);
    CHECK(f.ctl({"policy", "reload"}).rc == 0);

    // Every answer names the caller: user, bus name, action and who decided.
    auto exported = [&] {
        std::string out;
        for (const auto& l : f.exported()) out += l + "\n";
        return out;
    };
    INFO("exported:\n" << exported());
    CHECK(f.wait_exported({"\"admin_action\":\"print.approve\"", "cgpolkit-manager", "\"bus_name\":\":1.",
                           "\"polkit_action\":\"org.custguard1.approve-print\"", "\"authorized_by\":\"polkit\"",
                           "\"decision\":\"allow\""}));
    CHECK(f.wait_exported({"\"admin_action\":\"access_denied\"", "cgpolkit-manager", "\"bus_name\":\":1.",
                           "org.custguard1.ApproveJob", "\"polkit_action\":\"org.custguard1.approve-print\"",
                           "\"authorized_by\":\"polkit\"", "\"decision\":\"deny\""}));
    CHECK(f.wait_exported({"\"admin_action\":\"access_denied\"", "cgpolkit-manager", "org.custguard1.ReloadPolicy",
                           "\"polkit_action\":\"org.custguard1.manage-policy\"", "\"decision\":\"deny\""}));
    CHECK(f.wait_exported({"\"admin_action\":\"access_denied\"", "cgpolkit-manager", "org.custguard1.AllowUser",
                           "\"polkit_action\":\"org.custguard1.manage-zones\"", "\"decision\":\"deny\""}));
    CHECK(f.wait_exported({"\"admin_action\":\"access_denied\"", "cgdbus-user", "org.custguard1.GetStatus",
                           "\"polkit_action\":\"org.custguard1.read-status\"", "\"decision\":\"deny\""}));
    CHECK(f.wait_exported({"\"admin_action\":\"print.approve\"", "cgdbus-admin", "admin checked",
                           "\"authorized_by\":\"polkit\"", "\"decision\":\"allow\""}));
    CHECK(f.wait_exported({"\"admin_action\":\"policy.reload\"", "cgdbus-admin", "\"authorized_by\":\"polkit\"",
                           "\"polkit_action\":\"org.custguard1.manage-policy\""}));
    CHECK(f.wait_exported({"\"admin_action\":\"print.approve\"", "root checked", "\"authorized_by\":\"root\"",
                           "\"polkit_action\":\"org.custguard1.approve-print\""}));
    CHECK(f.wait_exported({"\"admin_action\":\"policy.reload\"", "\"authorized_by\":\"root\""}));
}

// Regression (issue 20): custguardd asked polkitd synchronously on its bus thread, so one
// caller's slow answer (up to the 3 s timeout) held up every other caller.
TEST_CASE("polkit: a slow polkitd does not hold up another caller's GetStatus", "[dbus][polkit][host]") {
    REQUIRE_ROOT();
    const auto slow = cgtest::ensure_user("cgpolkit-slow");
    Fixture f(Fixture::Options{.bus_includes = {k_polkit_bus_policy}});
    // polkitd takes 4 s to decide one question: a rule that runs sleep (polkit.spawn).
    const fs::path rule = f.dir() / "40-slow.rules";
    cgtest::spit(rule, "polkit.addRule(function(action, subject) {\n"
                       "    if (action.id == \"org.custguard1.manage-policy\" && subject.user == \"cgpolkit-slow\") {\n"
                       "        polkit.spawn([\"/bin/sleep\", \"4\"]);\n"
                       "        return polkit.Result.NO;\n"
                       "    }\n"
                       "    return polkit.Result.NOT_HANDLED;\n"
                       "});\n");
    PolkitFiles files(f.dir(), {{CG_SOURCE_DIR "/polkit/org.custguard1.policy", PolkitFiles::k_actions,
                                 "org.custguard1.policy"},
                                {rule, PolkitFiles::k_local_rules, "40-slow.rules"}});
    Polkitd polkitd(f);
    INFO("polkitd.log:\n" << cgtest::slurp(f.dir() / "polkitd.log"));
    REQUIRE(wait_mode(f, "polkit"));

    CtlResult reload;
    std::thread slow_call([&] { reload = f.ctl({"policy", "reload", "--json"}, slow); });
    // polkitd is deciding once its sleep runs.
    const auto sleeping = [] {
        for (const auto& e : fs::directory_iterator("/proc")) {
            std::ifstream in(e.path() / "cmdline");
            const std::string cmdline((std::istreambuf_iterator<char>(in)), {});
            if (cmdline == std::string("/bin/sleep\0" "4\0", 13)) return true;
        }
        return false;
    };
    bool deciding = false;
    for (auto deadline = std::chrono::steady_clock::now() + 10s; !deciding && std::chrono::steady_clock::now() < deadline;)
        if (!(deciding = sleeping())) std::this_thread::sleep_for(10ms);
    const auto t0 = std::chrono::steady_clock::now();
    const auto status = f.ctl({"status"});  // root: custguardd asks nobody
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    const bool still_deciding = sleeping();
    slow_call.join();
    INFO(describe(status) << "\nGetStatus took " << took.count() << " ms; the slow call: " << describe(reload));
    REQUIRE(deciding);
    CHECK(status.rc == 0);
    CHECK(still_deciding);  // answered while the other caller still waited for polkitd
    CHECK(took < 1500ms);
    CHECK(reload.rc != 0);  // refused: polkitd's "no", or no answer within custguardd's 3 s
}
