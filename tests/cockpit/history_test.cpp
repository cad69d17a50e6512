// GetHistory (daemon/dbus/history.cpp), which the page's history and "recent changes" read:
// the real custguardd on a private bus, writing to a scratch journald namespace. Guards its
// bounds (rows, window, event names) and that a line another user writes to the journal
// with custguardd's MESSAGE_ID and fields is not taken for a record (the trusted _UID).
#include <catch2/catch.hpp>

#include <string>

#include "page_session.hpp"

using namespace std::chrono_literals;
using cgprint::accounts;
using cgprint::contains;

namespace {

cgtest::RunResult get_history(const cgprint::PrintFixture& f, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"busctl", "--address=" + f.bus_address(), "--json=short", "call",
                                     "org.custguard1", "/org/custguard1", "org.custguard1", "GetHistory", "ssssttu"};
    argv.insert(argv.end(), args.begin(), args.end());
    return cgtest::run(argv);
}

}  // namespace

TEST_CASE("GetHistory: custguardd's own records only, bounded by rows and window", "[cockpit][host][dbus]") {
    cgprint::PrintFixture f("action = \"hold\"\nthreshold = 3\n", /*journal=*/true);
    // Two print records, and the journald namespace they went to.
    const auto notes = f.document("notes.txt", "Meeting notes\n");
    REQUIRE(f.wait_settled(f.lp("office", notes, "notes", accounts().other)).state == cgprint::k_completed);
    const int id = f.lp("office", notes, "notes again", accounts().other);
    REQUIRE(f.wait_settled(id).state == cgprint::k_completed);
    std::vector<custguard::events::testing::JournalEntry> recs;
    for (int i = 0; i < 100 && recs.empty(); ++i) {
        recs = f.journal_records(id);
        if (recs.empty()) std::this_thread::sleep_for(100ms);
    }
    REQUIRE(!recs.empty());
    const std::string name_space = recs[0]["_NAMESPACE"];
    const std::string socket = "/run/systemd/journal." + name_space + "/socket";

    // Another user writes a line that looks like custguardd's (journald's native protocol).
    const auto forged = cgtest::run(
        {"/usr/bin/python3", "-c",
         "import socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.connect(sys.argv[1]); "
         "s.send(b'MESSAGE_ID=af36e5e89027472db73bb8be382ec767\\nSYSLOG_IDENTIFIER=custguardd\\n"
         "CUSTGUARD_EVENT=access\\nCUSTGUARD_USER=forged-user\\nMESSAGE=forged denial\\n')",
         socket},
        {}, accounts().other);
    INFO(forged.err);
    REQUIRE(forged.rc == 0);
    // journald kept it, with the writer's uid as _UID.
    std::string kept;
    for (int i = 0; i < 50 && !contains(kept, "forged denial"); ++i) {
        std::this_thread::sleep_for(100ms);
        kept = cgtest::run({"journalctl", "--namespace=" + name_space, "-o", "json", "CUSTGUARD_USER=forged-user"}).out;
    }
    INFO(kept);
    REQUIRE(contains(kept, "forged denial"));
    CHECK(contains(kept, "\"_UID\":\"" + std::to_string(accounts().other.uid) + "\""));

    const auto all = get_history(f, {"", "", "", "", "0", "0", "0"});
    INFO(all.out << all.err);
    REQUIRE(all.rc == 0);
    CHECK(contains(all.out, "\"print\""));
    CHECK(contains(all.out, accounts().other.name));
    CHECK_FALSE(contains(all.out, "forged"));

    // Filters: an event and a user that match nothing give no rows.
    const auto denials = get_history(f, {"", "", "", "access_denied", "0", "0", "0"});
    CHECK(denials.rc == 0);
    CHECK(contains(denials.out, "\"data\":[[],false]"));
    const auto nobody = get_history(f, {"", "nobody-at-all", "", "", "0", "0", "0"});
    CHECK(contains(nobody.out, "\"data\":[[],false]"));
    // A limit of 1 with more records: truncated.
    const auto one = get_history(f, {"", "", "", "", "0", "0", "1"});
    CHECK(contains(one.out, "],true]"));

    struct Refused {
        const char* what;
        std::vector<std::string> args;
        const char* says;
    };
    for (const auto& c : std::vector<Refused>{
             {"more rows than 10000", {"", "", "", "", "0", "0", "10001"}, "above 10000 rows"},
             {"a window over 92 days", {"", "", "", "", "1", "9000000000000", "0"}, "longer than 92 days"},
             {"since after until", {"", "", "", "", "2000", "1000", "0"}, "since is after until"},
             {"an unknown event", {"", "", "", "reads", "0", "0", "0"}, "unknown event 'reads'"},
         }) {
        INFO(c.what);
        const auto r = get_history(f, c.args);
        INFO(r.out << r.err);
        CHECK(r.rc != 0);
        CHECK(contains(r.err, c.says));
    }
}
