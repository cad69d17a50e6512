// custguard's Cockpit page in a real browser, against real components: see CMakeLists.txt.
// Guards issue 20, point 3: a manager logs in on Cockpit's login page with a password
// (PAM, cockpit-session) and a wrong password is refused there; held jobs arrive by signal
// without a reload and show no document content; approving prints the job; the history
// charts are drawn from GetHistory; a zone change shows who made it; the content security
// policy holds; the page speaks Japanese.
#include <catch2/catch.hpp>

#include <cerrno>
#include <cstdio>
#include <string>

#include "page_session.hpp"

using namespace std::chrono_literals;
using cgprint::accounts;
using cgprint::contains;

TEST_CASE("cockpit page: login with a password through PAM, a held job appears without reload and prints once approved, history charts, zones, Japanese",
          "[cockpit][host][print]") {
    // Before any thread: the zone's tmpfs stays in this process's mount namespace.
    REQUIRE(cgtest::report::private_mounts());
    cgcockpit::Scene s;
    auto& page = s.page;
    const auto shots = cgcockpit::artefacts();

    // Records for the history: a read the zone allows, one it refuses.
    REQUIRE(cgtest::read_as(accounts().other, s.zone_file) == 0);
    const int refused = cgtest::read_as(accounts().allowed, s.zone_file);
    CHECK((refused == EPERM || refused == EACCES));

    CHECK(page.ask("text held-empty") == "No print job is held.");
    // The page is open; the job is held afterwards, so only the signal can bring its row.
    const int id = s.print.lp("office", s.print.document("list.txt", cgcockpit::customer_list()), "Tanaka list",
                              accounts().other);
    {
        auto st = s.print.wait_settled(id);
        INFO(st.message << "\n" << s.print.daemon_log());
        REQUIRE(st.state == cgprint::k_held);
    }
    page.ask("wait_row " + std::to_string(id) + " 10000");
    const std::string row = page.ask("row_text " + std::to_string(id));
    INFO(row);
    CHECK(contains(row, accounts().other.name));
    CHECK(contains(row, "office"));
    CHECK(contains(row, "credit_card: 2"));
    CHECK(contains(row, "my_number: 1"));
    CHECK(contains(row, "email: 1"));
    // Categories and counts, never contents nor the title.
    CHECK_FALSE(contains(row, "Tanaka"));
    CHECK_FALSE(contains(row, "40128888888818"));
    CHECK_FALSE(contains(row, "example.co.jp"));
    page.ask("screenshot " + (shots / "held-job.png").string());

    page.ask("approve " + std::to_string(id) + " checked with the customer");
    page.ask("wait_gone " + std::to_string(id) + " 10000");
    CHECK(s.print.wait_state(id, cgprint::k_completed).state == cgprint::k_completed);
    CHECK(s.print.office().wait_job(1, 10s) == cgcockpit::customer_list());

    // A second job, rejected with a reason: cancelled, nothing printed.
    const int second = s.print.lp("office", s.print.document("list2.txt", cgcockpit::customer_list()), "again",
                                  accounts().other);
    REQUIRE(s.print.wait_settled(second).state == cgprint::k_held);
    page.ask("wait_row " + std::to_string(second) + " 10000");
    page.ask("reject " + std::to_string(second) + " not for this printer");
    page.ask("wait_gone " + std::to_string(second) + " 10000");
    CHECK(s.print.wait_state(second, cgprint::k_canceled).state == cgprint::k_canceled);
    CHECK(s.print.office().received().size() == 1);

    // History: the allowed read and the refusal, as charts.
    const std::string bars = page.ask("history");
    INFO("bars (reads per day, per user, denials per day), rows: " << bars);
    int days = 0, users = 0, denial_days = 0, rows = 0;
    REQUIRE(std::sscanf(bars.c_str(), "%d %d %d %d", &days, &users, &denial_days, &rows) == 4);
    CHECK(days == 1);
    CHECK(users == 1);
    CHECK(denial_days == 1);
    CHECK(rows >= 3);  // the read, the refusal, the hold, the approval, ...
    CHECK(contains(page.ask("text chart-users"), accounts().other.name));
    page.ask("screenshot " + (shots / "history.png").string());

    // A zone change through the page, and who made it.
    page.ask("allow customers " + accounts().allowed.name);
    page.ask("wait_text zones " + accounts().allowed.name + " 10000");
    const std::string change = page.ask("table_row changes " + accounts().allowed.name + " 10000");
    INFO(change);
    CHECK(contains(change, "cgcockpit-admin"));  // who made it
    page.ask("screenshot " + (shots / "zones.png").string());

    CHECK(page.ask("csp") == "0");

    page.ask("lang ja");
    CHECK(page.ask("text held-title") == "保留中の印刷ジョブ");
    page.ask("screenshot " + (shots / "japanese.png").string());

    // The login was PAM's: the same account with a wrong password is refused.
    CHECK_THROWS_WITH(page.ask("login " + s.ws.login_url() + " " + s.admin.cred.name + " not-" + s.admin.password),
                      Catch::Contains("Wrong user name or password"));
    page.ask("screenshot " + (shots / "login-refused.png").string());
}
