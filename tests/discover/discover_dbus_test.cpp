// `custguardctl discover --notify`: the summary reaches the notify targets through the
// real custguardd (fanotify, private tmpfs) over a private dbus-daemon (SendReport), as a
// webhook to the notify tests' HTTP sink. Needs root (the control-plane fixture).
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <thread>

#include "daemon/dbus/json.hpp"
#include "fixture.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using cgdbus::contains;

namespace {

class HttpSink {
public:
    explicit HttpSink(fs::path dir) : dir_(std::move(dir)), port_(cgtest::free_port()) {
        fs::create_directories(dir_);
        pid_ = cgtest::spawn({"/usr/bin/python3", CG_HTTP_SINK, "--port", std::to_string(port_), "--dir", dir_.string()},
                             {}, dir_.string() + ".log");
        for (int i = 0; i < 200 && !cgtest::can_connect(port_); ++i) std::this_thread::sleep_for(50ms);
        REQUIRE(cgtest::can_connect(port_));
    }
    ~HttpSink() { cgtest::kill_and_reap(pid_); }
    int port() const { return port_; }
    // The webhook documents received so far.
    std::vector<custguard::dbus::Json> received() const {
        std::vector<custguard::dbus::Json> out;
        std::vector<fs::path> files;
        for (const auto& e : fs::directory_iterator(dir_))
            if (e.path().extension() == ".json" && e.path().filename().string()[0] != '.') files.push_back(e.path());
        std::sort(files.begin(), files.end());
        for (const auto& f : files)
            if (auto j = custguard::dbus::Json::parse(cgtest::slurp(f))) out.push_back(*j);
        return out;
    }

private:
    fs::path dir_;
    int port_;
    pid_t pid_ = -1;
};

}  // namespace

TEST_CASE("discover --notify sends the summary to the notify targets through custguardd (SendReport)") {
    cgdbus::Fixture f;
    HttpSink sink(f.dir() / "http");
    const std::string d = f.data().string();
    fs::create_directories(f.data() / "public");
    cgtest::spit(f.data() / "public" / "export.csv",
                 "mail a@example.co.jp, b@example.co.jp, c@example.co.jp; 03-1234-5678\n");
    cgtest::spit(f.policy_file(), "[daemon]\nenforcer = \"fanotify\"\n\n[[zone]]\nname = \"customers\"\npaths = [\"" + d +
                                      "/customers\"]\nallow_users = [\"root\"]\n\n[print]\nnotify = [\"sec\"]\n\n"
                                      "[notify.sec]\nwebhook = \"http://127.0.0.1:" + std::to_string(sink.port()) +
                                      "/hook\"\n\n[notify.other]\nwebhook = \"http://127.0.0.1:" +
                                      std::to_string(sink.port()) + "/other\"\n");
    auto rl = f.ctl({"policy", "reload"});
    INFO(rl.out << rl.err << f.daemon_log());
    REQUIRE(rl.rc == 0);
    const std::string db = (f.dir() / "discover.db").string();

    auto r = f.ctl({"discover", "--notify", "--db", db, "--policy", f.policy_file().string(), d});
    INFO(r.out << r.err);
    REQUIRE(r.rc == 0);
    CHECK(contains(r.err, "report queued for delivery (1 message)"));
    std::vector<custguard::dbus::Json> got;
    for (int i = 0; i < 100 && got.empty(); ++i) {
        got = sink.received();
        if (got.empty()) std::this_thread::sleep_for(100ms);
    }
    REQUIRE(got.size() == 1);
    CHECK(got[0]["type"].as_string() == "report");
    CHECK(contains(got[0]["subject"].as_string(), "1 file with customer data outside zones in 1 folder"));
    CHECK(contains(got[0]["text"].as_string(), (f.data() / "public").string()));
    CHECK(contains(got[0]["text"].as_string(), "[[zone]]"));
    // Recorded like every administrative call.
    CHECK(f.wait_exported({"report.send", "[print] notify"}));

    // A named target instead of [print] notify; an unknown one is refused with the names.
    r = f.ctl({"discover", "--notify", "--notify-target", "other", "--db", db, "--policy", f.policy_file().string(), d});
    CHECK(r.rc == 0);
    r = f.ctl({"discover", "--notify", "--notify-target", "nosuch", "--db", db, "--policy", f.policy_file().string(), d});
    CHECK(r.rc == 1);
    CHECK(contains(r.err, "unknown notify target 'nosuch'; the policy has: other, sec"));
    // Not an administrator: refused by the daemon (and the survey itself still ran).
    const auto& acc = cgdbus::accounts();
    fs::permissions(f.dir(), fs::perms::others_exec, fs::perm_options::add);
    const std::string user_db = "/tmp/cgdiscover-user-" + std::to_string(::getpid()) + ".db";
    r = f.ctl({"discover", "--notify", "--db", user_db, "--policy", f.policy_file().string(), d}, acc.user);
    fs::remove(user_db), fs::remove(user_db + "-wal"), fs::remove(user_db + "-shm");
    INFO(r.out << r.err);
    CHECK(r.rc == 4);
    CHECK(contains(r.err, "custguard-admin"));
    for (int i = 0; i < 20; ++i) std::this_thread::sleep_for(50ms);
    CHECK(sink.received().size() == 2);
}

TEST_CASE("SendReport refuses a title that would forge mail headers and bodies beyond its bound") {
    cgdbus::Fixture f;
    auto call = [&](const std::string& title, std::size_t body_bytes) {
        return cgtest::run({"busctl", "--address=" + f.bus_address(), "call", "org.custguard1", "/org/custguard1",
                            "org.custguard1", "SendReport", "ssas", title, std::string(body_bytes, 'x'), "0"});
    };
    auto forged = call("weekly\nBcc: someone@example.com", 10);
    CHECK(forged.rc != 0);
    CHECK(contains(forged.err, "one line without control characters"));
    auto big = call("weekly", 64 * 1024 + 1);
    CHECK(big.rc != 0);
    CHECK(contains(big.err, "at most 65536 bytes"));
    // Within bounds, but the fixture's policy names no target: said so.
    auto none = call("weekly", 10);
    CHECK(none.rc != 0);
    CHECK(contains(none.err, "no notify target"));
}
