// A print job whose document defeats the sandboxed reader, end to end through CUPS (root):
// lp → scratch cupsd → custguard backend → custguardd. The job is held, and stays held
// across a daemon restart: it is never released to be scanned again on its own.
#include <catch2/catch.hpp>

#include <thread>

#include "hostile_documents.hpp"  // tests/scan
#include "print_fixture.hpp"

using namespace cgprint;
using namespace std::chrono_literals;

// Regression: after custguardd died on such a document, the next start released the
// held job, the backend asked again, and the same document was scanned again.
TEST_CASE("a job whose scan failed stays held in CUPS across a daemon restart", "[print][host][sandbox]") {
    PrintFixture f("action = \"hold\"\nallow_printers = [\"secure\"]\nunreadable = \"hold\"\nscan_timeout = \"2s\"\n");
    const int id = f.lp("office", f.document("fanout.pdf", cgscan::time_bomb_pdf()), "fan-out", accounts().other);
    auto s = f.wait_settled(id, 30s);
    INFO(s.message << "\n" << f.daemon_log());
    REQUIRE(s.state == k_held);
    CHECK(contains(s.message, "custguard: job held for an administrator"));
    REQUIRE(f.wait_records(id, 1));
    CHECK(contains(f.print_records(id)[0], "could not be read safely"));

    f.stop_daemon();
    f.start_daemon();
    // The start-up check of CUPS holds would have released it by now.
    std::this_thread::sleep_for(5s);
    const auto after = f.job(id);
    INFO(after.message << "\n" << f.daemon_log());
    CHECK(after.state == k_held);
    CHECK(f.print_records(id).size() == 1);  // not decided again
    CHECK(f.office().received().empty());
    CHECK(contains(f.ctl({"print", "held", "--json"}).out, "\"job\": \"" + std::to_string(id) + "\""));
}
