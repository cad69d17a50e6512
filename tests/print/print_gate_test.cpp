// The print gate end to end on this host (root): lp → scratch cupsd → custguard backend →
// custguardd (private bus) → real socket backend → AppSocket listener run by the test.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "print_fixture.hpp"
#include "test_support.hpp"  // tests/scan: independent check-digit generators

using namespace cgprint;
using namespace std::chrono_literals;

namespace {

const char* k_policy =
    "action = \"hold\"\n"
    "allow_printers = [\"secure\"]\n"
    "allow_users = [\"%cgprint-customers\"]\n"
    "threshold = 3\n"
    "unreadable = \"hold\"\n";

// Synthetic customer data with valid check digits (generated, never real people).
struct CustomerData {
    std::string card1 = scan_test::luhn_complete("453201511283366");
    std::string card2 = scan_test::luhn_complete("555555555555444");
    std::string my_number = scan_test::my_number_complete("31415926535");
    std::string email = "taro.yamada@example.co.jp";
    std::vector<std::string> lines() const {
        return {"Customer list (synthetic)", "Taro Yamada  card " + card1, "Hanako Suzuki  card " + card2,
                "My Number " + my_number, "Contact " + email};
    }
    std::vector<std::string> secrets() const { return {card1, card2, my_number, email}; }
};

std::vector<std::string> false_positive_lines() {
    return {"Invoice INV-2024-000123 dated 2024-11-27, order 20241127-0001",
            "Order number " + scan_test::luhn_wrong("411111111111111"),
            "Reference " + scan_test::my_number_wrong("12345678901"),
            "Total 1,234,567 JPY, build 10.4.3.2, ticket #88231"};
}

std::string ps_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '(' || c == ')' || c == '\\') out += '\\';
        out += c;
    }
    return out;
}

// A PostScript document: `lines` on the first page, `pages` pages in all.
std::string postscript(const std::vector<std::string>& lines, int pages = 1) {
    std::string ps = "%!PS-Adobe-3.0\n%%Pages: " + std::to_string(pages) + "\n%%EndComments\n";
    for (int p = 1; p <= pages; ++p) {
        ps += "%%Page: " + std::to_string(p) + " " + std::to_string(p) + "\n/Helvetica findfont 12 scalefont setfont\n";
        int y = 720;
        if (p == 1)
            for (const auto& l : lines) {
                ps += "72 " + std::to_string(y) + " moveto (" + ps_escape(l) + ") show\n";
                y -= 16;
            }
        ps += "72 100 moveto (page " + std::to_string(p) + ") show\nshowpage\n";
    }
    return ps + "%%EOF\n";
}

std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string pdf(const PrintFixture& f, const std::string& name, const std::vector<std::string>& lines) {
    auto ps = f.document(name + ".ps", postscript(lines));
    auto out = f.dir() / "docs" / (name + ".pdf");
    auto r = run({"gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pdfwrite", "-sOutputFile=" + out.string(),
                  ps.string()});
    REQUIRE(r.rc == 0);
    return slurp(out);
}

std::string text(const std::vector<std::string>& lines) {
    std::string s;
    for (const auto& l : lines) s += l + "\n";
    return s;
}

std::string japanese_customer_text(const CustomerData& d) {
    return "顧客名簿\n氏名：山田　太郎　住所：〒100-0001 東京都千代田区千代田1-1\n"
           "電話：03-1234-5678　メール：" + d.email + "\nカード番号：" + scan_test::full_width(d.card1) +
           "\nマイナンバー：" + d.my_number + "\n";
}

// custguardctl --json indents; compare without blanks.
std::string squeeze(const std::string& s) {
    std::string out;
    for (char c : s)
        if (c != ' ' && c != '\n') out += c;
    return out;
}

// Queue "driver": a PPD with filters (text is turned into PostScript) in front of the
// custguard backend and `printer`.
void add_driver_queue(const PrintFixture& f, const AppSocketPrinter& printer) {
    auto added = run({"lpadmin", "-p", "driver", "-E", "-v", "custguard:socket://127.0.0.1:" + std::to_string(printer.port()),
                      "-m", "drv:///sample.drv/generic.ppd"},
                     f.client_env());
    INFO(added.err);
    REQUIRE(added.rc == 0);
}

void check_no_secrets(const PrintFixture& f, const CustomerData& d) {
    for (const auto& line : f.records())
        for (const auto& s : d.secrets()) {
            INFO(line);
            CHECK_FALSE(contains(line, s));
        }
}

}  // namespace

TEST_CASE("clean and false-positive documents print unchanged for anyone on any queue", "[print][host]") {
    PrintFixture f(k_policy);
    const auto& other = accounts().other;
    const std::string clean = "Meeting notes\nThe new printer is on the third floor.\n";
    const std::string fp_text = text(false_positive_lines()) + "請求書番号 2024-001234 発行日 2024年11月27日\n";
    const std::string fp_pdf = pdf(f, "fp", false_positive_lines());
    const std::string fp_ps = postscript(false_positive_lines(), 3);

    int n = 0;
    for (const auto& [name, bytes] : std::vector<std::pair<std::string, std::string>>{
             {"clean.txt", clean}, {"fp.txt", fp_text}, {"fp-doc.pdf", fp_pdf}, {"fp-doc.ps", fp_ps}}) {
        INFO(name);
        int id = f.lp("office", f.document(name, bytes), "doc " + name, other);
        auto s = f.wait_settled(id);
        INFO(s.message);
        CHECK(s.state == k_completed);
        auto printed = f.office().wait_job(++n, 10s);
        REQUIRE(printed);
        CHECK(*printed == bytes);  // the real backend got the job unchanged
        REQUIRE(f.wait_records(id, 1));
        auto recs = f.print_records(id);
        REQUIRE(recs.size() == 1);
        CHECK(contains(recs[0], "\"decision\":\"allow\""));
        CHECK_FALSE(contains(recs[0], "\"detectors\""));  // no detector hit at all
        CHECK(contains(recs[0], "\"customer_data\":\"no\""));
        CHECK(contains(recs[0], "\"name\":\"cgprint-other\""));
        CHECK(contains(recs[0], "\"printer\":\"office\""));
        CHECK(contains(recs[0], "\"title\":\"doc " + name + "\""));
    }
}

TEST_CASE("customer data from an allowed user on an allowed printer prints", "[print][host]") {
    PrintFixture f(k_policy, /*journal=*/true);
    CustomerData d;
    const std::string doc = pdf(f, "cust", d.lines());
    int id = f.lp("secure", f.document("cust.pdf", doc), "customers", accounts().allowed);
    CHECK(f.wait_settled(id).state == k_completed);
    auto printed = f.secure().wait_job(1, 10s);
    REQUIRE(printed);
    CHECK(*printed == doc);
    REQUIRE(f.wait_records(id, 1));
    auto recs = f.print_records(id);
    REQUIRE(recs.size() == 1);
    INFO(recs[0]);
    CHECK(contains(recs[0], "\"decision\":\"allow\""));
    CHECK(contains(recs[0], "credit_card:2"));
    CHECK(contains(recs[0], "my_number:1"));
    CHECK(contains(recs[0], "\"doc_type\":\"pdf\""));
    CHECK(contains(recs[0], "\"pages\":1"));
    CHECK(contains(recs[0], "\"copies\":\"1\""));
    CHECK(contains(recs[0], "%cgprint-customers"));
    check_no_secrets(f, d);

    // The same one record in the journal, with the documented fields.
    std::vector<custguard::events::testing::JournalEntry> journal;
    for (int i = 0; i < 50 && journal.empty(); ++i) {
        journal = f.journal_records(id);
        if (journal.empty()) std::this_thread::sleep_for(100ms);
    }
    REQUIRE(journal.size() == 1);
    auto& e = journal[0];
    CHECK(e["CUSTGUARD_EVENT"] == "print");
    CHECK_FALSE(e["MESSAGE_ID"].empty());
    CHECK(e["CUSTGUARD_DECISION"] == "allow");
    CHECK(e["CUSTGUARD_PRINTER"] == "secure");
    CHECK(e["CUSTGUARD_USER"] == "cgprint-ok");
    CHECK(e["CUSTGUARD_UID"] == std::to_string(accounts().allowed.uid));
    CHECK(e["CUSTGUARD_TITLE"] == "customers");
    CHECK(e["CUSTGUARD_PAGES"] == "1");
    CHECK(e["CUSTGUARD_COPIES"] == "1");
    CHECK(e["CUSTGUARD_DOC_TYPE"] == "pdf");
    CHECK(contains(e["CUSTGUARD_DETECTORS"], "credit_card:2"));
    CHECK(contains(e["CUSTGUARD_REASON"], "allow_printers"));
    for (const auto& [name, value] : e)
        for (const auto& s : d.secrets()) {
            INFO(name << "=" << value);
            CHECK_FALSE(contains(value, s));
        }
}

TEST_CASE("customer data from another user is held and approve releases it to the printer", "[print][host]") {
    PrintFixture f(k_policy);
    CustomerData d;
    const std::string doc = japanese_customer_text(d);
    int id = f.lp("secure", f.document("names.txt", doc), "顧客名簿", accounts().other);
    auto s = f.wait_settled(id);
    REQUIRE(s.state == k_held);
    CHECK(contains(s.message, "custguard: job held for an administrator"));
    CHECK(contains(s.message, "cgprint-other is not in [print] allow_users"));
    auto lpstat = f.lpstat({"-l", "-o", "secure"});
    CHECK(contains(lpstat.out, "job held for an administrator"));
    CHECK(f.secure().received().empty());

    auto held = f.ctl({"print", "held", "--json"});
    REQUIRE(held.rc == 0);
    CHECK(contains(squeeze(held.out), "\"job\":\"" + std::to_string(id) + "\""));
    auto approve = f.ctl({"print", "approve", std::to_string(id), "-c", "checked with the customer"});
    INFO(approve.err);
    REQUIRE(approve.rc == 0);
    CHECK(f.wait_state(id, k_completed).state == k_completed);
    auto printed = f.secure().wait_job(1, 10s);
    REQUIRE(printed);
    CHECK(*printed == doc);
    // The hold and the approval; the approved re-run adds none.
    REQUIRE(f.wait_records(id, 2));
    std::this_thread::sleep_for(300ms);
    auto recs = f.print_records(id);
    REQUIRE(recs.size() == 2);
    CHECK(contains(recs[0], "\"decision\":\"hold\""));
    CHECK(contains(recs[0], "\"doc_type\":\"text\""));
    CHECK(contains(recs[0], "jp_address:1"));
    CHECK(contains(recs[1], "\"decision\":\"allow\""));
    CHECK(contains(recs[1], "approved by root"));
    check_no_secrets(f, d);
}

TEST_CASE("a held job that is rejected is cancelled and never printed", "[print][host]") {
    PrintFixture f(k_policy);
    CustomerData d;
    int id = f.lp("office", f.document("c.ps", postscript(d.lines(), 2)), "ps", accounts().allowed);
    auto s = f.wait_settled(id);
    REQUIRE(s.state == k_held);  // allowed user, but office is not an allowed printer
    CHECK(contains(s.message, "queue office is not in [print] allow_printers"));
    REQUIRE(f.ctl({"print", "reject", std::to_string(id), "-r", "not on this floor"}).rc == 0);
    CHECK(f.wait_state(id, k_canceled).state == k_canceled);
    std::this_thread::sleep_for(500ms);
    CHECK(f.office().received().empty());
    auto recs = f.print_records(id);
    REQUIRE(recs.size() == 2);
    CHECK(contains(recs[0], "\"doc_type\":\"postscript\""));
    CHECK(contains(recs[1], "\"decision\":\"deny\""));
    check_no_secrets(f, d);
}

TEST_CASE("deny cancels the job and lpstat shows why", "[print][host]") {
    PrintFixture f(std::string(k_policy).replace(0, std::string("action = \"hold\"").size(), "action = \"deny\""));
    CustomerData d;
    int id = f.lp("office", f.document("c.txt", text(d.lines())), "list", accounts().other);
    auto s = f.wait_settled(id);
    CHECK(s.state == k_canceled);
    auto lpstat = f.lpstat({"-l", "-W", "completed", "-o", "office"});
    INFO(lpstat.out);
    CHECK(contains(lpstat.out, "custguard: job cancelled: customer data"));
    CHECK(contains(lpstat.out, "cgprint-other is not in [print] allow_users"));
    std::this_thread::sleep_for(500ms);
    CHECK(f.office().received().empty());
    REQUIRE(f.wait_records(id, 1));
    CHECK(contains(f.print_records(id)[0], "\"decision\":\"deny\""));
    check_no_secrets(f, d);
}

TEST_CASE("daemon down: the job is held and printed once the daemon is back", "[print][host]") {
    PrintFixture f(k_policy);
    f.stop_daemon();
    const std::string doc = "Meeting notes while the daemon is away\n";
    int id = f.lp("office", f.document("away.txt", doc), "away", accounts().other);
    auto s = f.wait_settled(id);
    REQUIRE(s.state == k_held);
    CHECK(contains(s.message, "custguard: daemon unreachable, job held"));
    std::this_thread::sleep_for(300ms);
    CHECK(f.office().received().empty());
    f.start_daemon();
    CHECK(f.wait_state(id, k_completed).state == k_completed);
    auto printed = f.office().wait_job(1, 10s);
    REQUIRE(printed);
    CHECK(*printed == doc);
    CHECK(f.print_records(id).size() == 1);
}

TEST_CASE("printer protect and unprotect rewrite the queue and status reports unprotected queues", "[print][host]") {
    PrintFixture f(k_policy);
    AppSocketPrinter plain;
    const std::string uri = "socket://127.0.0.1:" + std::to_string(plain.port());
    REQUIRE(run({"lpadmin", "-p", "plain", "-E", "-v", uri}, f.client_env()).rc == 0);
    REQUIRE(f.ctl({"policy", "reload"}).rc == 0);
    bool reported = false;
    for (int i = 0; i < 50 && !reported; ++i) {
        reported = contains(squeeze(f.ctl({"status", "--json"}).out), "\"unprotected_queues\":[\"plain\"]");
        if (!reported) std::this_thread::sleep_for(100ms);
    }
    CHECK(reported);
    CHECK(contains(f.ctl({"printer", "list"}).out, "plain  UNPROTECTED  " + uri));

    auto p = f.ctl({"printer", "protect", "plain"});
    INFO(p.err);
    REQUIRE(p.rc == 0);
    CHECK(contains(f.lpstat({"-v", "plain"}).out, "custguard:" + uri));
    CustomerData d;
    int id = f.lp("plain", f.document("c.txt", text(d.lines())), "list", accounts().other);
    CHECK(f.wait_settled(id).state == k_held);  // now checked
    CHECK(plain.received().empty());

    REQUIRE(f.ctl({"printer", "unprotect", "plain"}).rc == 0);
    auto v = f.lpstat({"-v", "plain"}).out;
    CHECK(contains(v, uri));
    CHECK_FALSE(contains(v, "custguard:"));
    CHECK(f.ctl({"printer", "protect", "no-such-queue"}).rc == 1);
}

TEST_CASE("on a queue with a driver the backend scans the original document", "[print][host]") {
    PrintFixture f(k_policy);
    AppSocketPrinter printer;
    add_driver_queue(f, printer);
    // Clean text: filtered to PostScript for the printer, decided on the original text.
    int clean = f.lp("driver", f.document("clean.txt", "Meeting notes\n"), "clean", accounts().other);
    auto s = f.wait_settled(clean, std::chrono::seconds(60));
    INFO(s.message);
    CHECK(s.state == k_completed);
    auto printed = printer.wait_job(1, 10s);
    REQUIRE(printed);
    CHECK(printed->rfind("%!PS", 0) == 0);
    REQUIRE(f.wait_records(clean, 1));
    CHECK(contains(f.print_records(clean)[0], "\"doc_type\":\"text\""));
    // Customer data: held, and the record names the original's type.
    CustomerData d;
    int id = f.lp("driver", f.document("c.txt", text(d.lines())), "list", accounts().other);
    CHECK(f.wait_settled(id, std::chrono::seconds(60)).state == k_held);
    REQUIRE(f.wait_records(id, 1));
    auto rec = f.print_records(id)[0];
    CHECK(contains(rec, "\"doc_type\":\"text\""));
    CHECK(contains(rec, "credit_card:2"));
    check_no_secrets(f, d);
}

TEST_CASE("a job of several documents is decided on every document", "[print][host]") {
    // Customer data only in the second document of one job: on a raw queue and on a queue
    // with a driver (where the backend fetches the originals from cupsd).
    PrintFixture f(k_policy);
    AppSocketPrinter printer;
    add_driver_queue(f, printer);
    CustomerData d;
    const auto clean = f.document("first.txt", "Meeting notes\n");
    const auto names = f.document("second.txt", japanese_customer_text(d));
    for (const char* queue : {"secure", "driver"}) {
        INFO(queue);
        int id = f.lp(queue, {clean, names}, "two documents", accounts().other);
        auto s = f.wait_settled(id, std::chrono::seconds(60));
        INFO(s.message);
        CHECK(s.state == k_held);
        REQUIRE(f.wait_records(id, 1));
        CHECK(contains(f.print_records(id)[0], "jp_address:1"));
    }
    CHECK(f.secure().received().empty());
    CHECK_FALSE(printer.wait_job(1, 2s));
    check_no_secrets(f, d);
}

TEST_CASE("the backend lists no devices and refuses a URI that wraps nothing", "[print][host]") {
    auto r = run({CG_BACKEND});
    CHECK(r.rc == 0);
    CHECK(r.out.empty());
    auto bad = run({CG_BACKEND, "1", "root", "t", "1", ""}, {"DEVICE_URI=custguard:", "TMPDIR=/tmp"});
    CHECK(bad.rc == 3);  // held: nothing printed, nothing lost
    CHECK(contains(bad.err, "ERROR: custguard: the device URI"));
}

TEST_CASE("exact customer matching: the record carries CUSTGUARD_PERSONS and edm:crm, persons reach the threshold",
          "[print][host][edm]") {
    // The CRM index, built with custguardctl edm build before the daemon starts.
    char tmpl[] = "/tmp/cg-print-edm-XXXXXX";
    const std::filesystem::path crm_dir = ::mkdtemp(tmpl);
    {
        std::ofstream(crm_dir / "crm.toml") << "columns = [\"id\", \"name\", \"phone\", \"address\"]\n"
                                                "[primary]\ncolumn = \"phone\"\nkind = \"phone\"\n"
                                                "[supporting]\ncolumns = [\"name\", \"address\"]\nnear = 100\n";
        std::ofstream(crm_dir / "crm.csv") << "id,name,phone,address\nC1,山田太郎,090-1111-2222,東京都千代田区1-1\n"
                                              "C2,鈴木花子,03-3333-4444,大阪府大阪市北区2-2\nC3,佐藤一郎,080-5555-6666,福岡県福岡市3-3\n";
    }
    const auto index = (crm_dir / "edm" / "crm.edm").string();
    auto built = run({CG_CUSTGUARDCTL, "edm", "build", "--schema", (crm_dir / "crm.toml").string(), "--output", index,
                      (crm_dir / "crm.csv").string()});
    INFO(built.out << built.err);
    REQUIRE(built.rc == 0);

    PrintFixture f("action = \"hold\"\nallow_printers = [\"secure\"]\nallow_users = [\"%cgprint-customers\"]\n"
                   "detectors = [\"jp_address\", \"edm:crm\"]\nthreshold = 2\n\n[edm.crm]\nindex = \"" + index + "\"\n",
                   /*journal=*/true);
    // Two of the three customers, written as people write them; the third's number alone.
    const std::string doc = "お客様 山田 太郎 様　電話 ０９０－１１１１－２２２２\n鈴木花子 03(3333)4444\n"
                            "折り返し 080-5555-6666 まで\n";
    int id = f.lp("secure", f.document("persons.txt", doc), "persons", accounts().other);
    CHECK(f.wait_settled(id).state == k_held);
    REQUIRE(f.wait_records(id, 1));
    const auto rec = f.print_records(id)[0];
    INFO(rec);
    CHECK(contains(rec, "edm:crm:2"));
    std::vector<custguard::events::testing::JournalEntry> journal;
    for (int i = 0; i < 50 && journal.empty(); ++i) {
        journal = f.journal_records(id);
        if (journal.empty()) std::this_thread::sleep_for(100ms);
    }
    REQUIRE(journal.size() == 1);
    CHECK(journal[0]["CUSTGUARD_PERSONS"] == "2");
    CHECK(contains(journal[0]["CUSTGUARD_DETECTORS"], "edm:crm:2"));
    CHECK(contains(journal[0]["CUSTGUARD_REASON"], "edm:crm=2"));
    for (const auto& [name, value] : journal[0]) {
        INFO(name << "=" << value);
        CHECK_FALSE(contains(value, "山田"));
        CHECK_FALSE(contains(value, "1111"));
    }
    std::filesystem::remove_all(crm_dir);
}
