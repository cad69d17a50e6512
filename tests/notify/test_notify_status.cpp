// `custguardctl status` shows the notifier's counters and bulk-read cool-downs: the real
// custguardd (fanotify, private tmpfs) and custguardctl over a private dbus-daemon, with
// the control-plane tests' fixture (tests/dbus/fixture.hpp). Needs root.
#include <catch2/catch.hpp>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <thread>

#include "fixture.hpp"

using namespace std::chrono_literals;
using cgdbus::contains;

TEST_CASE("custguardctl status lists a bulk-read cool-down and the notification counters", "[notify][host]") {
    cgdbus::Fixture f;
    const auto& acc = cgdbus::accounts();
    const std::string d = f.data().string();
    for (int i = 2; i <= 4; ++i) std::ofstream(f.data() / "customers" / ("c" + std::to_string(i) + ".txt")) << "x\n";
    std::ofstream(f.policy_file()) << "[daemon]\nenforcer = \"fanotify\"\n\n"
                                      "[[zone]]\n"
                                      "name = \"customers\"\n"
                                      "paths = [\"" + d + "/customers\"]\n"
                                      "record_allowed = true\n"
                                      "allow_users = [\"cgdbus-reader\"]\n"
                                      "notify = [\"sec\"]\n\n"
                                      "[notify.sec]\n"
                                      "webhook = \"http://127.0.0.1:9/hook\"\n\n"  // discard port: nobody answers
                                      "[bulk]\n"
                                      "max_files = 2\n"
                                      "window = \"1m\"\n"
                                      "action = \"revoke\"\n"
                                      "cooldown = \"10m\"\n";
    auto rl = f.ctl({"policy", "reload"});
    INFO(rl.out << rl.err << f.daemon_log());
    REQUIRE(rl.rc == 0);
    for (int i = 1; i <= 3; ++i) CHECK(cgdbus::Fixture::read_as(acc.reader, f.data() / "customers" / ("c" + std::to_string(i) + ".txt")) == 0);
    bool shown = false;
    cgdbus::CtlResult st;
    for (int i = 0; i < 50 && !shown; ++i) {
        st = f.ctl({"status"});
        shown = contains(st.out, "revoked:");
        if (!shown) std::this_thread::sleep_for(100ms);
    }
    INFO(st.out << st.err);
    REQUIRE(shown);
    std::printf("custguardctl status:\n%s", st.out.c_str());
    CHECK(contains(st.out, "cgdbus-reader (" + std::to_string(acc.reader.uid) + ") in zone customers until "));
    CHECK(contains(st.out, "notifications:"));
    CHECK(contains(st.out, "1 bulk reads"));
    const auto js = f.ctl({"status", "--json"});
    CHECK(contains(js.out, "\"revoked\""));
    CHECK(contains(js.out, "\"bulk_reads\": 1"));
    // The notifier's intake: with [bulk] limits every read wakes it, so it took batches.
    CHECK(contains(st.out, "notify intake: "));
    CHECK(contains(js.out, "\"intake_batches\": "));
    CHECK(!contains(js.out, "\"intake_batches\": 0"));
    CHECK(contains(js.out, "\"ignored\": "));
    const int during = cgdbus::Fixture::read_as(acc.reader, f.data() / "customers" / "c4.txt");
    CHECK((during == EPERM || during == EACCES));
}
