// Held print jobs across a crash of custguardd (root): lp → scratch cupsd → custguard
// backend → custguardd, which is killed with SIGKILL and started again. A held job stays
// held (not scanned again, not released), an approval prints it exactly once and is not
// accepted twice, and decisions written before a crash are finished, never made again.
#include <catch2/catch.hpp>

#include <sstream>
#include <thread>

#include "print_fixture.hpp"
#include "test_support.hpp"  // tests/scan: check-digit generators

using namespace cgprint;
using namespace std::chrono_literals;

namespace {

// cgprint-other is not in allow_users: customer data from them is held.
const char* k_policy =
    "action = \"hold\"\n"
    "allow_printers = [\"secure\"]\n"
    "allow_users = [\"%cgprint-customers\"]\n"
    "threshold = 3\n";

// Synthetic customer data with valid check digits (generated, never real people).
std::string customer_list(const std::string& tag) {
    return "Customer list " + tag + " (synthetic)\nTaro Yamada  card " + scan_test::luhn_complete("453201511283366") +
           "\nHanako Suzuki  card " + scan_test::luhn_complete("555555555555444") + "\nMy Number " +
           scan_test::my_number_complete("31415926535") + "\n";
}

std::filesystem::path held_file(const PrintFixture& f) { return f.dir() / "cg-state" / "print" / "held-jobs"; }

std::string line_of(const PrintFixture& f, int id) {
    std::istringstream in(cgtest::slurp(held_file(f)));
    for (std::string line; std::getline(in, line);)
        if (line.rfind("id=" + std::to_string(id) + " ", 0) == 0) return line;
    return {};
}

bool listed(const PrintFixture& f, int id) {
    auto r = f.ctl({"print", "held", "--json"});
    if (r.rc != 0) throw std::runtime_error("custguardctl print held: " + r.err);
    return contains(r.out, "\"job\": \"" + std::to_string(id) + "\"");
}

// A job held for an administrator, its hold on disk.
int held_job(PrintFixture& f, const std::string& name, const std::string& doc) {
    const int id = f.lp("secure", f.document(name + ".txt", doc), name, accounts().other);
    auto s = f.wait_settled(id);
    INFO(s.message << "\n" << f.daemon_log());
    REQUIRE(s.state == k_held);
    REQUIRE(contains(s.message, "custguard: job held for an administrator"));
    REQUIRE(contains(line_of(f, id), " state=held "));
    return id;
}

// Replaces the job's state in the file, as a crash right after writing that decision
// (before CUPS heard of it) leaves it.
void write_state(const PrintFixture& f, int id, const std::string& state) {
    auto text = cgtest::slurp(held_file(f));
    const auto line = line_of(f, id);
    REQUIRE(!line.empty());
    auto pos = text.find(line);
    auto changed = line;
    changed.replace(changed.find(" state=held "), std::string(" state=held ").size(), " state=" + state + " ");
    text.replace(pos, line.size(), changed);
    cgtest::spit(held_file(f), text);
}

}  // namespace

// Regression (issue 18): held jobs lived in memory only; after a restart the daemon
// released them in CUPS to be scanned and decided again.
TEST_CASE("held job + SIGKILL + restart: still held, approved prints once", "[print][host][held]") {
    PrintFixture f(k_policy);
    const std::string doc = customer_list("A");
    const int id = held_job(f, "a", doc);
    REQUIRE(f.wait_records(id, 1));

    f.kill_daemon();
    f.start_daemon();
    // The start-up check of CUPS holds would have released it by now.
    std::this_thread::sleep_for(5s);
    {
        const auto s = f.job(id);
        INFO(s.message << "\n" << f.daemon_log());
        CHECK(s.state == k_held);
        CHECK(listed(f, id));
        CHECK(f.print_records(id).size() == 1);  // not scanned, not decided again
        CHECK(f.secure().received().empty());
    }

    auto approve = f.ctl({"print", "approve", std::to_string(id), "-c", "after the crash"});
    INFO(approve.out << approve.err << "\n" << f.daemon_log());
    REQUIRE(approve.rc == 0);
    CHECK(f.wait_state(id, k_completed).state == k_completed);
    auto printed = f.secure().wait_job(1, 10s);
    REQUIRE(printed);
    CHECK(*printed == doc);
    // Approving again is refused: the approval was used.
    auto again = f.ctl({"print", "approve", std::to_string(id)});
    CHECK(again.rc != 0);
    CHECK(contains(again.err, "no held print job '" + std::to_string(id) + "'"));
    CHECK(line_of(f, id).empty());

    // A second crash and restart brings nothing back and prints nothing more.
    f.kill_daemon();
    f.start_daemon();
    std::this_thread::sleep_for(3s);
    CHECK_FALSE(listed(f, id));
    CHECK(f.job(id).state == k_completed);
    CHECK(f.secure().received().size() == 1);
    auto recs = f.print_records(id);
    REQUIRE(recs.size() == 2);  // the hold and the approval
    CHECK(contains(recs[0], "\"decision\":\"hold\""));
    CHECK(contains(recs[1], "approved by root: after the crash"));
}

TEST_CASE("a decision written just before a crash is finished at start, not made again", "[print][host][held]") {
    PrintFixture f(k_policy);
    const std::string doc_a = customer_list("approved"), doc_r = customer_list("rejected");
    const int approved = held_job(f, "approved", doc_a);
    const int rejected = held_job(f, "rejected", doc_r);
    REQUIRE(f.wait_records(rejected, 1));
    // SIGKILL after the decision was written, before CUPS was told: the jobs are still
    // held in CUPS and the file has the decisions.
    f.kill_daemon();
    write_state(f, approved, "approved");
    write_state(f, rejected, "rejected");
    f.start_daemon();

    CHECK(f.wait_state(approved, k_completed).state == k_completed);
    CHECK(f.wait_state(rejected, k_canceled).state == k_canceled);
    auto printed = f.secure().wait_job(1, 10s);
    REQUIRE(printed);
    CHECK(*printed == doc_a);
    std::this_thread::sleep_for(2s);
    INFO(f.daemon_log());
    CHECK(f.secure().received().size() == 1);
    // Neither was scanned again: one record each, the hold.
    CHECK(f.print_records(approved).size() == 1);
    CHECK(f.print_records(rejected).size() == 1);
    CHECK(line_of(f, approved).empty());
    CHECK(line_of(f, rejected).empty());
    CHECK(contains(f.daemon_log(), "print job " + std::to_string(approved) + " on secure approved earlier: released"));
    CHECK(contains(f.daemon_log(), "print job " + std::to_string(rejected) + " on secure rejected earlier: cancelled"));
    CHECK_FALSE(listed(f, approved));
    CHECK_FALSE(listed(f, rejected));
}

TEST_CASE("a held job cancelled in CUPS while custguardd was down is dropped with a log line",
          "[print][host][held]") {
    PrintFixture f(k_policy);
    const int id = held_job(f, "cancelled", customer_list("cancelled"));
    f.kill_daemon();
    REQUIRE(run({"cancel", std::to_string(id)}, f.client_env()).rc == 0);
    REQUIRE(f.wait_state(id, k_canceled).state == k_canceled);
    f.start_daemon();
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (listed(f, id) && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(100ms);
    INFO(f.daemon_log());
    CHECK_FALSE(listed(f, id));
    CHECK(line_of(f, id).empty());
    CHECK(contains(f.daemon_log(), "print job " + std::to_string(id) +
                                       " on secure is no longer in CUPS (cancelled or finished meanwhile)"));
}

TEST_CASE("a held job resumed in CUPS after a restart is held again without a scan", "[print][host][held]") {
    PrintFixture f(k_policy);
    const int id = held_job(f, "resumed", customer_list("resumed"));
    REQUIRE(f.wait_records(id, 1));
    f.kill_daemon();
    f.start_daemon();
    // Someone resumes it behind the administrator's back: the backend asks again.
    REQUIRE(run({"lp", "-i", std::to_string(id), "-H", "resume"}, f.client_env()).rc == 0);
    std::this_thread::sleep_for(1s);
    auto s = f.wait_settled(id);
    INFO(s.message << "\n" << f.daemon_log());
    CHECK(s.state == k_held);
    CHECK(contains(s.message, "still held for an administrator (not scanned again)"));
    CHECK(f.print_records(id).size() == 1);
    CHECK(f.secure().received().empty());
    CHECK(listed(f, id));
}

// Upgrade: custguard before held-jobs kept only jobs whose scan failed, in print/held.toml.
TEST_CASE("a job held by an earlier custguard (print/held.toml) is imported, still held, and approved once",
          "[print][host][held]") {
    PrintFixture f(k_policy);
    const std::string doc = customer_list("legacy");
    const int id = held_job(f, "legacy", doc);
    REQUIRE(f.wait_records(id, 1));
    f.kill_daemon();
    // What the earlier version left: its file, no held-jobs.
    const auto legacy = held_file(f).parent_path() / "held.toml";
    cgtest::spit(legacy, "[[job]]\nid = \"" + std::to_string(id) +
                             "\"\nprinter = \"secure\"\nuser = \"cgprint-other\"\npages = 1\nheld_at = 1765000000\n");
    std::filesystem::remove(held_file(f));
    f.start_daemon();
    std::this_thread::sleep_for(3s);
    INFO(f.daemon_log());
    CHECK(listed(f, id));
    CHECK(f.job(id).state == k_held);
    CHECK(contains(line_of(f, id), " state=held "));
    CHECK_FALSE(std::filesystem::exists(legacy));
    CHECK(std::filesystem::exists(std::filesystem::path(legacy).concat(".imported")));
    CHECK(contains(f.daemon_log(), "1 of 1 imported from " + legacy.string()));
    auto approve = f.ctl({"print", "approve", std::to_string(id)});
    REQUIRE(approve.rc == 0);
    CHECK(f.wait_state(id, k_completed).state == k_completed);
    auto printed = f.secure().wait_job(1, 10s);
    REQUIRE(printed);
    CHECK(*printed == doc);
}
