// `custguardctl report leak-scope` over what the real components recorded about a print
// (host, root), with the print gate's fixture (tests/print): a scratch cupsd with the
// custguard backend, a private dbus-daemon, the real custguardd (fanotify enforcer) and a
// scratch journald namespace. A clerk allowed in the zone reads a customer file, someone
// else is refused it, the clerk prints the customer data through the gated queue, the job
// is held, root approves it with custguardctl over the private bus and it prints. The
// report over that journal must show the file with its reader and the refusal, the print
// job with its categories and who approved it under where the data went, the triggers, the
// deadlines and the counts, in JSON (checked by meaning, not by layout), CSV and HTML
// (both parsed). No value of the document appears in any format.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <set>
#include <sstream>
#include <thread>

#include "custguard/common/json.hpp"
#include "print_fixture.hpp"
#include "scratch_mounts.hpp"
#include "test_support.hpp"  // tests/scan: check-digit generators

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using custguard::common::Json;
using cgprint::accounts;
using cgprint::contains;

namespace {

// Synthetic customer data with valid check digits (generated, never real people): card
// numbers and a My Number, so the print is held and its categories are known.
const std::string& customer_list() {
    static const std::string text = "Customer list (synthetic)\nTaro Yamada  card " +
                                    scan_test::luhn_complete("453201511283366") + "\nHanako Suzuki  card " +
                                    scan_test::luhn_complete("555555555555444") + "\nMy Number " +
                                    scan_test::my_number_complete("31415926535") + "\n";
    return text;
}

std::set<std::string> strings(const Json& array) {
    std::set<std::string> out;
    for (const auto& v : array.as_array()) out.insert(v.as_string());
    return out;
}

// The rows report_tables.py finds in a rendered report (`kind`: html or csv).
std::vector<std::vector<std::string>> table_rows(const std::string& kind, const fs::path& file) {
    auto r = cgtest::run({"python3", CG_REPORT_TABLES, kind, file.string()});
    INFO(kind << ": " << r.err);
    REQUIRE(r.rc == 0);
    std::vector<std::vector<std::string>> rows;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
        auto j = Json::parse(line);
        REQUIRE(j);
        std::vector<std::string> row;
        for (const auto& cell : j->as_array()) row.push_back(cell.as_string());
        rows.push_back(std::move(row));
    }
    return rows;
}

// Today in Tokyo as days since 1970-01-01, and a date of the report as the same.
std::int64_t tokyo_today() { return (::time(nullptr) + 9 * 3600) / 86400; }
std::int64_t days_of(const std::string& iso) {
    tm t{};
    REQUIRE(strptime(iso.c_str(), "%Y-%m-%d", &t) != nullptr);
    return static_cast<std::int64_t>(::timegm(&t)) / 86400;
}

}  // namespace

TEST_CASE("report: a zone file read, its customer data printed, held and approved, reported from the real "
          "daemon's journal",
          "[report][host][print]") {
    // Before the fixture's threads: the zone's tmpfs stays ours.
    REQUIRE(cgtest::report::private_mounts());
    cgtest::TempDir tmp("cgreport");
    const cgtest::report::Tmpfs zone_fs(tmp.path() / "data");
    const fs::path zone = zone_fs.path() / "customers", list = zone / "list.csv";
    fs::create_directories(zone);
    cgtest::spit(list, customer_list());

    // The clerk (cgprint-other) may read the zone but may not print customer data: only
    // %cgprint-customers may, so the clerk's job is held for an administrator.
    const auto& clerk = accounts().other;
    cgprint::PrintFixture f("action = \"hold\"\n"
                            "allow_printers = [\"secure\"]\n"
                            "allow_users = [\"%cgprint-customers\"]\n"
                            "threshold = 3\n\n"
                            "[[zone]]\nname = \"customers\"\npaths = [\"" + zone.string() + "\"]\n"
                            "allow_users = [\"" + clerk.name + "\"]\nrecord_allowed = true\n",
                            /*journal=*/true);

    REQUIRE(cgtest::read_as(clerk, list) == 0);
    const int refused = cgtest::read_as(accounts().allowed, list);
    CHECK((refused == EPERM || refused == EACCES));

    const int id = f.lp("secure", f.document("list.txt", customer_list()), "customer list", clerk);
    {
        auto s = f.wait_settled(id);
        INFO(s.message << "\n" << f.daemon_log());
        REQUIRE(s.state == cgprint::k_held);
    }
    auto approve = f.ctl({"print", "approve", std::to_string(id), "-c", "checked with the customer"});
    INFO(approve.out << approve.err << "\n" << f.daemon_log());
    REQUIRE(approve.rc == 0);
    REQUIRE(f.wait_state(id, cgprint::k_completed).state == cgprint::k_completed);
    REQUIRE(f.secure().wait_job(1, 10s) == customer_list());
    // The hold and the release, both in the journal.
    std::vector<custguard::events::testing::JournalEntry> job_records;
    for (int i = 0; i < 100 && job_records.size() < 2; ++i) {
        job_records = f.journal_records(id);
        if (job_records.size() < 2) std::this_thread::sleep_for(100ms);
    }
    REQUIRE(job_records.size() == 2);
    const std::string name_space = job_records[0]["_NAMESPACE"];
    REQUIRE(!name_space.empty());

    auto report = [&](const std::string& format) {
        auto r = cgtest::run({CG_CUSTGUARDCTL, "report", "leak-scope", "--namespace", name_space, "--since", "-1h",
                              "--discovered-at", "today", "--format", format},
                             {"TZ=Asia/Tokyo"});
        INFO(format << ": " << r.err);
        REQUIRE(r.rc == 0);
        return r.out;
    };
    // One run of the components, several checks: no SECTIONs, which would run it all again.
    const std::string json_text = report("json");
    INFO(json_text);
    auto parsed = Json::parse(json_text);
    REQUIRE(parsed);
    const Json& j = *parsed;
    char host[256] = "";
    ::gethostname(host, sizeof host - 1);

    {  // json: the file read and by whom, the print and who approved it, categories, counts
        CHECK(strings(j["servers"]) == std::set<std::string>{host});
        CHECK(!j["window"]["since"].as_string().empty());
        CHECK(j["summary"]["reads"].as_int() == 1);
        CHECK(j["summary"]["denials"].as_int() == 1);
        CHECK(j["summary"]["prints"].as_int() == 1);
        CHECK(j["summary"]["copies_out_of_zones"].as_int() == 0);

        const auto& files = j["files"].as_array();
        REQUIRE(files.size() == 1);
        const Json& file = files[0];
        CHECK(file["path"].as_string() == list.string());
        CHECK(file["server"].as_string() == host);
        CHECK(file["zone"].as_string() == "customers");
        CHECK(file["denials"].as_int() == 1);
        const auto& readers = file["readers"].as_array();
        REQUIRE(readers.size() == 1);
        CHECK(readers[0]["user"].as_string() == clerk.name);
        CHECK(readers[0]["count"].as_int() == 1);
        CHECK(!readers[0]["first"].as_string().empty());
        CHECK(readers[0]["last"].as_string() == readers[0]["first"].as_string());

        // Where the data went next: the print job, held, released by root.
        const auto& prints = j["destinations"]["print_jobs"].as_array();
        REQUIRE(prints.size() == 1);
        const Json& job = prints[0];
        CHECK(job["server"].as_string() == host);
        CHECK(job["printer"].as_string() == "secure");
        CHECK(job["job"].as_string() == std::to_string(id));
        CHECK(job["user"].as_string() == clerk.name);
        CHECK(job["first_decision"].as_string() == "hold");
        CHECK(job["final_decision"].as_string() == "allow");
        CHECK(job["approved_by"].as_string() == "root");
        const auto job_categories = strings(job["categories"]);
        CHECK(job_categories.count("payment_card"));
        CHECK(job_categories.count("my_number"));
        CHECK(job["persons"]["min"].as_int() >= 1);

        // Totals and triggers follow from the printed job's categories.
        const auto totals = strings(j["totals"]["categories"]);
        CHECK(totals.count("payment_card"));
        CHECK(totals.count("my_number"));
        CHECK(j["totals"]["prints"].as_int() == 1);
        CHECK(j["triggers"]["financial_harm"]["status"].as_string() == "yes");
        std::set<std::string> indicators;
        for (const auto& i : j["triggers"]["possibly_deliberate"]["indicators"].as_array())
            indicators.insert(i["kind"].as_string() + ":" + i["user"].as_string());
        CHECK(indicators.count("held_print:" + clerk.name));
        CHECK(indicators.count("earlier_denials:" + accounts().allowed.name));

        // Deadlines from --discovered-at today: 速報 on day 3, 確報 by day 30 (later only
        // when day 30 is not a working day: at most past a weekend or the year-end closure).
        const std::int64_t today = tokyo_today();
        CHECK(days_of(j["deadlines"]["discovered"].as_string()) == today);
        CHECK(days_of(j["deadlines"]["preliminary"].as_string()) == today + 2);
        const auto final_day = days_of(j["deadlines"]["final"].as_string());
        CHECK(final_day >= today + 29);
        CHECK(final_day <= today + 29 + 6);
    }
    {  // csv: the read and the print rows parse
        const auto file = tmp.path() / "scope.csv";
        cgtest::spit(file, report("csv"));
        const auto rows = table_rows("csv", file);
        REQUIRE(rows.size() >= 3);
        const auto& header = rows[0];
        auto col = [&](const std::string& name) {
            auto it = std::find(header.begin(), header.end(), name);
            REQUIRE(it != header.end());
            return static_cast<std::size_t>(it - header.begin());
        };
        const std::size_t kind = col("kind"), path = col("path"), user = col("user"), categories = col("categories"),
                          detail = col("detail");
        int reads = 0, prints = 0;
        for (const auto& row : rows) {
            REQUIRE(row.size() == header.size());
            if (row[kind] == "read") {
                ++reads;
                CHECK(row[path] == list.string());
                CHECK(row[user] == clerk.name);
            } else if (row[kind] == "print") {
                ++prints;
                CHECK(row[path] == "secure:" + std::to_string(id));
                CHECK(row[user] == clerk.name);
                CHECK(contains(row[categories], "payment_card"));
                CHECK(contains(row[detail], "hold"));
                CHECK(contains(row[detail], "allow"));
                CHECK(contains(row[detail], "root"));
            }
        }
        CHECK(reads == 1);
        CHECK(prints == 1);
    }
    {  // html: the page parses and its print table names the job, the clerk and root
        const auto file = tmp.path() / "scope.html";
        cgtest::spit(file, report("html"));
        const auto rows = table_rows("html", file);
        int found = 0;
        for (const auto& row : rows) {
            bool job = std::find(row.begin(), row.end(), "secure:" + std::to_string(id)) != row.end();
            if (!job) continue;
            ++found;
            CHECK(std::find(row.begin(), row.end(), clerk.name) != row.end());
            CHECK(std::find(row.begin(), row.end(), "root") != row.end());
        }
        CHECK(found == 1);
    }
    {  // no value of the document in any format
        for (const char* format : {"json", "text", "csv", "html"}) {
            const auto out = report(format);
            for (const std::string& value : {scan_test::luhn_complete("453201511283366"),
                                             scan_test::luhn_complete("555555555555444"),
                                             scan_test::my_number_complete("31415926535"), std::string("Taro Yamada")}) {
                INFO(format << ": " << value);
                CHECK(out.find(value) == std::string::npos);
            }
        }
    }
}
