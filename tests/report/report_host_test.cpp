// `custguardctl report` on real journals (host, root):
// - journal files from two servers, written by systemd-journal-remote from an export
//   stream with fixed timestamps (the collector's format), read with --directory and
//   --file: the golden text report, JSON values, two runs byte-identical;
// - a scratch journald filled by the real custguardd (fanotify enforcer and [watch]) with
//   an allowed read, a denied read and a copy out of the zone, read with --namespace: the
//   report names them, and no value of the customer document appears in any format.
#include <catch2/catch.hpp>

#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "fleet_fixture.hpp"
#include "scratch_journald.hpp"
#include "support/support.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

const std::string k_tz = "TZ=Asia/Tokyo";

// The sandboxed reader of today's files (--no-rescan leaves it out) is the build's.
cgtest::RunResult ctl(std::vector<std::string> args, std::chrono::seconds timeout = std::chrono::seconds(60)) {
    args.insert(args.begin(), CG_CUSTGUARDCTL);
    return cgtest::run(args, {k_tz, "CUSTGUARD_EXTRACT_HELPER=" CG_EXTRACT_HELPER}, std::nullopt, timeout);
}

// CG_UPDATE_GOLDEN=1 rewrites the golden files instead of comparing (review the diff).
void check_golden(const std::string& actual, const char* name) {
    const std::string path = std::string(CG_GOLDEN_DIR) + "/" + name;
    if (const char* update = std::getenv("CG_UPDATE_GOLDEN"); update && std::string(update) == "1")
        cgtest::spit(path, actual);
    CHECK(actual == cgtest::slurp(path));
}

// journal-remote draws new file ids (the cursors' s=) each run: cursors, file ids and the
// hashes over the cursors are masked.
std::string without_cursors(const std::string& report) {
    auto out = std::regex_replace(report, std::regex("s=[0-9a-f]{32};[^\"\n]*"), "CURSOR");
    out = std::regex_replace(out, std::regex("\\b[0-9a-f]{64}\\b"), "SHA256");
    return std::regex_replace(out, std::regex("\\b[0-9a-f]{32}\\b"), "FILE");
}

// The evidence's files and hashes: ("file id", "sha256") in the JSON's order.
std::vector<std::pair<std::string, std::string>> evidence_hashes(const std::string& json) {
    std::vector<std::pair<std::string, std::string>> out;
    const std::regex file("\"file\": \"([0-9a-f]+)\",[^}]*?\"sha256\": \"([0-9a-f]{64})\"");
    for (auto it = std::sregex_iterator(json.begin(), json.end(), file); it != std::sregex_iterator(); ++it)
        out.emplace_back((*it)[1], (*it)[2]);
    return out;
}

}  // namespace

TEST_CASE("report: leak-scope over two servers' journal files (systemd-journal-remote)", "[report][host]") {
    cgtest::TempDir tmp("cgreport");
    const fs::path dir = tmp.path() / "remote";
    fs::create_directories(dir);
    cgtest::report::write_fleet(dir);
    const std::vector<std::string> window = {"--since", "2026-10-01", "--until", "2026-11-01", "--discovered-at",
                                             "2026-10-07 09:00"};
    auto args = [&](std::vector<std::string> head, const std::string& format) {
        head.insert(head.end(), window.begin(), window.end());
        head.insert(head.end(), {"--format", format});
        return head;
    };

    auto json1 = ctl(args({"report", "leak-scope", "--directory", dir.string()}, "json"));
    INFO(json1.err);
    REQUIRE(json1.rc == 0);
    auto json2 = ctl(args({"report", "leak-scope", "--directory", dir.string()}, "json"));
    CHECK(json2.out == json1.out);  // byte-identical, cursors included
    auto by_file = ctl(args({"report", "leak-scope", "--file", (dir / "fs1.journal").string(), "--file",
                             (dir / "fs2.journal").string()},
                            "json"));
    CHECK(by_file.out == json1.out);

    const std::string& j = json1.out;
    for (const char* expected : {
             "\"servers\": [\n    \"fs1\",\n    \"fs2\"\n  ]",
             "\"reads\": 4,\n    \"denials\": 1,\n    \"prints\": 1,\n    \"copies_out_of_zones\": 1",
             "\"path\": \"/srv/share/customers/list.csv\",\n      \"server\": \"fs1\"",
             "\"path\": \"/srv/share/customers/list.csv\",\n      \"server\": \"fs2\"",
             "\"user\": \"alice\",\n          \"client\": \"192.0.2.10\",\n          \"first\": "
             "\"2026-10-05T09:00:00+09:00\",\n          \"last\": \"2026-10-05T09:05:00+09:00\",\n          \"count\": 2",
             "\"approved_by\": \"alice\"",
             "\"copy_of\": \"customers\"",
             "\"min\": 120,\n        \"max\": 120,\n        \"exact\": 120,\n        \"basis\": \"edm\"",
             "\"financial_harm\": {\n      \"status\": \"yes\"",
             "\"over_1000_persons\": {\n      \"status\": \"unknown\"",
             "\"kind\": \"bulk_read\"",
             "\"kind\": \"off_hours\"",
             "\"kind\": \"held_print\"",
             "\"preliminary\": \"2026-10-09\"",
             "\"final\": \"2026-11-05\"",
             "\"final_if_deliberate\": \"2026-12-07\"",  // day 60 is a Saturday
             "\"records\": 11,\n    \"duplicates_ignored\": 1",  // the duplicate's cursor is evidence too
             "\"categories_basis\": \"none\",\n      \"categories_note\": \"the file is on fs2, not on this host",
         })
        CHECK(j.find(expected) != std::string::npos);
    CHECK(j.find("old.csv") == std::string::npos);  // before --since
    CHECK(j.find("record text not used") == std::string::npos);
    CHECK(j.find("policy_reload") == std::string::npos);
    // Every record used is named by its cursor in --evidence, and the hash per journal file
    // is checked by the shell, as custguardctl(8) says.
    const auto evidence = tmp.path() / "evidence";
    auto with_evidence = ctl(args({"report", "leak-scope", "--directory", dir.string(), "--evidence", evidence.string()}, "json"));
    REQUIRE(with_evidence.rc == 0);
    CHECK(with_evidence.out == json1.out);
    const auto lines = cgtest::slurp(evidence);
    CHECK(std::count(lines.begin(), lines.end(), '\n') == 11);
    const auto hashes = evidence_hashes(j);
    REQUIRE(hashes.size() == 2);  // fs1's file and fs2's
    for (const auto& [file, sha] : hashes) {
        INFO(file);
        int status = -1;
        auto sum = cgtest::shell_out("grep '^s=" + file + ";' " + evidence.string() + " | sha256sum", &status);
        CHECK(status == 0);
        CHECK(sum.substr(0, 64) == sha);
    }
    CHECK(j.find("\"count\": 8,\n        \"late\": 0,") != std::string::npos);  // fs1: 8 records in the window
    CHECK(j.find("\"count\": 3,\n        \"late\": 0,") != std::string::npos);  // fs2: 2 reads (one twice), a bulk read

    SECTION("the text report is the golden one") {
        auto text = ctl(args({"report", "leak-scope", "--directory", dir.string()}, "text"));
        REQUIRE(text.rc == 0);
        check_golden(without_cursors(text.out), "leak_scope.txt");
    }
    SECTION("the JSON report is the golden one (cursors masked: journal-remote draws new file ids)") {
        check_golden(without_cursors(j), "leak_scope.json");
    }
    SECTION("csv and html, also written with --output") {
        auto csv = ctl(args({"report", "leak-scope", "--directory", dir.string()}, "csv"));
        REQUIRE(csv.rc == 0);
        CHECK(csv.out.rfind("kind,server,path,zone,user,client,first,last,count,categories,categories_basis,", 0) == 0);
        CHECK(csv.out.find("read,fs1,/srv/share/customers/list.csv,customers,alice,192.0.2.10,") != std::string::npos);
        CHECK(csv.out.find("print,fs1,office:7,,bob,192.0.2.20,") != std::string::npos);
        const auto out = tmp.path() / "report.html";
        auto html = ctl(args({"report", "leak-scope", "--directory", dir.string(), "--output", out.string()}, "html"));
        REQUIRE(html.rc == 0);
        CHECK(html.out.empty());
        auto page = cgtest::slurp(out);
        for (const char* part : {"<!DOCTYPE html>", "chart-reads-per-day", "chart-reads-per-user",
                                 "chart-persons-per-file", "chart-timeline", "@media print", "速報 Preliminary"})
            CHECK(page.find(part) != std::string::npos);
        CHECK(page.find("<script") == std::string::npos);
        CHECK(page.find("http://") == page.find("http://www.w3.org/2000/svg"));  // no external resources
    }
    SECTION("the HTML report renders in a headless chromium and prints with its charts") {
        const auto page = tmp.path() / "leak.html";
        auto html = ctl(args({"report", "leak-scope", "--directory", dir.string(), "--output", page.string()}, "html"));
        REQUIRE(html.rc == 0);
        const auto pdf = tmp.path() / "leak.pdf";
        auto browser = cgtest::run({"chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                                    "--user-data-dir=" + (tmp.path() / "chromium").string(), "--no-pdf-header-footer",
                                    "--print-to-pdf=" + pdf.string(), "file://" + page.string()},
                                   {}, std::nullopt, std::chrono::seconds(120));
        INFO(browser.err);
        REQUIRE(browser.rc == 0);
        CHECK(browser.err.find("CONSOLE") == std::string::npos);  // no page errors, no failed resources
        REQUIRE(fs::exists(pdf));
        CHECK(fs::file_size(pdf) > 20'000);
        auto text = cgtest::run({"pdftotext", "-layout", pdf.string(), "-"});
        REQUIRE(text.rc == 0);
        for (const char* part : {"Reads per day", "Reads per user", "Persons per file", "Timeline", "速報 Preliminary",
                                 "2026-10-09", "/srv/share/public/list-copy.csv"}) {
            INFO(part);
            CHECK(text.out.find(part) != std::string::npos);
        }
        // The bars are drawn: pixels of their colour on the printed pages (50 dpi).
        auto raster = cgtest::run({"pdftoppm", "-r", "50", pdf.string(), (tmp.path() / "page").string()});
        REQUIRE(raster.rc == 0);
        std::vector<std::string> count = {CG_PPM_COLOURS, "3465a4"};
        for (const auto& e : fs::directory_iterator(tmp.path()))
            if (e.path().extension() == ".ppm") count.push_back(e.path().string());
        REQUIRE(count.size() > 2);
        auto bars = cgtest::run(count);
        INFO(bars.err);
        REQUIRE(bars.rc == 0);
        CHECK(std::stoul(bars.out) > 500);
    }
    SECTION("access: per user, without deadlines") {
        auto access = ctl({"report", "access", "--directory", dir.string(), "--since", "2026-10-01", "--until",
                           "2026-11-01", "--format", "json"});
        REQUIRE(access.rc == 0);
        CHECK(access.out.find("\"report\": \"access\"") != std::string::npos);
        CHECK(access.out.find("\"user\": \"bob\",\n      \"reads\": 1,\n      \"files\": 1,\n      \"denials\": 1,\n"
                              "      \"prints\": 1,\n      \"copies\": 1,\n      \"off_hours_reads\": 1") != std::string::npos);
        CHECK(access.out.find("\"deadlines\"") == std::string::npos);
    }
    SECTION("access without --since and --until covers the previous calendar month") {
        auto access = ctl({"report", "access", "--directory", dir.string(), "--format", "json"});
        REQUIRE(access.rc == 0);
        const time_t tokyo_now = ::time(nullptr) + 9 * 3600;  // ctl() runs with TZ=Asia/Tokyo
        tm now{};
        ::gmtime_r(&tokyo_now, &now);
        int year = now.tm_year + 1900, month = now.tm_mon + 1;
        int prev_year = month == 1 ? year - 1 : year, prev_month = month == 1 ? 12 : month - 1;
        char since[64], until[64];
        std::snprintf(since, sizeof since, "\"since\": \"%04d-%02d-01T00:00:00+09:00\"", prev_year, prev_month);
        std::snprintf(until, sizeof until, "\"until\": \"%04d-%02d-01T00:00:00+09:00\"", year, month);
        CHECK(access.out.find(since) != std::string::npos);
        CHECK(access.out.find(until) != std::string::npos);
    }
    SECTION("filters: --user bob, --client, --zone, --path") {
        auto bob = ctl(args({"report", "leak-scope", "--directory", dir.string(), "--user", "bob"}, "json"));
        CHECK(bob.out.find("\"reads\": 1,\n    \"denials\": 1,\n    \"prints\": 1,\n    \"copies_out_of_zones\": 1") !=
              std::string::npos);
        CHECK(bob.out.find("\"approved_by\": \"alice\"") != std::string::npos);
        auto client = ctl(args({"report", "leak-scope", "--directory", dir.string(), "--client", "192.0.2.30"}, "json"));
        CHECK(client.out.find("\"reads\": 1,\n    \"denials\": 0,") != std::string::npos);
        CHECK(client.out.find("\"servers\": [\n    \"fs2\"\n  ]") != std::string::npos);
        auto zone = ctl(args({"report", "leak-scope", "--directory", dir.string(), "--zone", "customers"}, "json"));
        CHECK(zone.out.find("\"reads\": 4,\n    \"denials\": 1,\n    \"prints\": 0,\n    \"copies_out_of_zones\": 1") !=
              std::string::npos);  // the print job names no zone
        auto other = ctl(args({"report", "leak-scope", "--directory", dir.string(), "--zone", "hr"}, "json"));
        CHECK(other.out.find("\"reads\": 0,\n    \"denials\": 0,\n    \"prints\": 0,\n    \"copies_out_of_zones\": 0") !=
              std::string::npos);
        auto path = ctl(args({"report", "leak-scope", "--directory", dir.string(), "--path", "/srv/share/public/"}, "json"));
        CHECK(path.out.find("\"reads\": 0,\n    \"denials\": 0,\n    \"prints\": 0,\n    \"copies_out_of_zones\": 1") !=
              std::string::npos);
    }
}

// Regression test of the reopening (custguardctl(8): the report closes and reopens the
// journal every 50,000 records and goes on after the last record's cursor): a record
// skipped or read twice at a reopen changes the evidence.
TEST_CASE("report: over 50,000 records the journal is reopened and every record is used once", "[report][host]") {
    cgtest::TempDir tmp("cgreport");
    const fs::path dir = tmp.path() / "remote";
    fs::create_directories(dir);
    constexpr std::uint64_t n1 = 40'000, n2 = 40'001;  // interleaved: one reopen, at 50,000 records
    cgtest::report::write_reads(dir / "fs1.journal", "fs1", "89abcdef0123456789abcdef01234561", n1, 0);
    cgtest::report::write_reads(dir / "fs2.journal", "fs2", "89abcdef0123456789abcdef01234562", n2, 1);
    // Opens of fs1.journal by the reports below: more when the report reopens the journal.
    const int watch = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    REQUIRE(watch >= 0);
    REQUIRE(::inotify_add_watch(watch, dir.c_str(), IN_OPEN) >= 0);
    auto opens = [&] {
        int n = 0;
        alignas(inotify_event) char buf[4096];
        for (ssize_t got; (got = ::read(watch, buf, sizeof buf)) > 0;)
            for (char* p = buf; p < buf + got;) {
                const auto* e = reinterpret_cast<const inotify_event*>(p);
                n += e->len > 0 && std::string(e->name) == "fs1.journal";
                p += sizeof(inotify_event) + e->len;
            }
        return n;
    };

    // The cursors of every record, walked in one pass by sd-journal.
    std::multiset<std::string> all;
    {
        sd_journal* j = nullptr;
        REQUIRE(sd_journal_open_directory(&j, dir.c_str(), 0) == 0);
        while (sd_journal_next(j) > 0) {
            char* c = nullptr;
            REQUIRE(sd_journal_get_cursor(j, &c) == 0);
            all.insert(c);
            std::free(c);
        }
        sd_journal_close(j);
    }
    REQUIRE(all.size() == n1 + n2);
    opens();  // the walk's

    auto cursors = [](const fs::path& file) {
        std::multiset<std::string> out;
        std::istringstream in(cgtest::slurp(file));
        for (std::string line; std::getline(in, line);) out.insert(line);
        return out;
    };
    const auto evidence = tmp.path() / "evidence";
    auto whole = ctl({"report", "leak-scope", "--directory", dir.string(), "--format", "json", "--no-rescan",
                      "--evidence", evidence.string()},
                     300s);  // a debug build (sanitizers) on a loaded machine
    INFO(whole.err);
    REQUIRE(whole.rc == 0);
    CHECK(whole.out.find("\"reads\": " + std::to_string(n1 + n2) + ",") != std::string::npos);
    CHECK(whole.out.find("\"records\": " + std::to_string(n1 + n2) + ",\n    \"duplicates_ignored\": 0") !=
          std::string::npos);
    const auto used_whole = cursors(evidence);
    CHECK(used_whole.size() == all.size());
    CHECK((used_whole == all));  // not printed when it fails: 80,001 cursors
    const int opens_whole = opens();

    // A window from second 10,000: the records from then on, each once.
    auto window = ctl({"report", "leak-scope", "--directory", dir.string(), "--format", "json", "--no-rescan",
                       "--since", "2026-10-05 11:46:40", "--evidence", evidence.string()},
                      300s);
    INFO(window.err);
    REQUIRE(window.rc == 0);
    const auto used = cursors(evidence);
    const std::uint64_t expected = (n1 - 5'000) + (n2 - 5'000);  // from second 10,000 on (TZ=Asia/Tokyo)
    CHECK(used.size() == expected);
    CHECK(std::set<std::string>(used.begin(), used.end()).size() == expected);
    CHECK(std::includes(all.begin(), all.end(), used.begin(), used.end()));
    const int opens_window = opens();
    // The last 20,001 records (from second 60,000): no reopening, the opens of one pass.
    auto last = ctl({"report", "leak-scope", "--directory", dir.string(), "--format", "json", "--no-rescan",
                     "--since", "2026-10-06 01:40:00"},
                    300s);
    REQUIRE(last.rc == 0);
    const int opens_once = opens();
    INFO("opens of fs1.journal: whole " << opens_whole << ", window " << opens_window << ", last " << opens_once);
    CHECK(opens_once >= 1);
    CHECK(opens_whole >= 2 * opens_once);   // 80,001 records: reopened at 50,000
    CHECK(opens_window >= 2 * opens_once);  // 70,001 records: likewise
    ::close(watch);
}

TEST_CASE("report: usage errors say what to write", "[report][host]") {
    struct Case {
        std::vector<std::string> args;
        std::string message;
    };
    const std::vector<Case> cases = {
        {{"report", "leak-scope", "--since", "2026-13-01"},
         "--since '2026-13-01': write a date (2026-10-01), a date and time (\"2026-10-01 09:00\" or 2026-10-01T09:00:00"},
        {{"report", "leak-scope", "--discovered-at", "last week"}, "--discovered-at 'last week': write a date"},
        {{"report", "access", "--until", "yesterday at noon"}, "--until 'yesterday at noon': write a date"},
        {{"report", "leak-scope", "--format", "pdf"}, "--format 'pdf': write text, json, csv or html"},
        {{"report", "leak-scope", "--path", "customers"}, "--path 'customers': give an absolute path"},
        {{"report", "leak-scope", "--since", "2026-10-02", "--until", "2026-10-01"}, "--until must be later than --since"},
        {{"report"}, "A subcommand is required"},
    };
    for (const auto& c : cases) {
        auto r = ctl(c.args);
        INFO(r.out << r.err);
        CHECK(r.rc == 2);
        CHECK(r.err.find(c.message) != std::string::npos);
    }
    auto missing = ctl({"report", "leak-scope", "--directory", "/nonexistent/cg-report"});
    INFO(missing.err);
    CHECK(missing.rc == 1);
    CHECK(missing.err.find("cannot open the journal") != std::string::npos);
}

namespace {

bool private_mounts() {
    static const bool ok = ::geteuid() == 0 && ::unshare(CLONE_NEWNS) == 0 &&
                           ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
    return ok;
}

// Customer rows whose every value is distinctive, so that any of them in a report is found.
std::string customer_csv() {
    std::ostringstream out;
    out << "customer_id,name,phone,mail,card\n";
    for (int i = 0; i < 30; ++i)
        out << 7700 + i << ",顧客" << i << ",03-" << 5100 + i << "-" << 2200 + i << ",cgreport" << i
            << "@example.co.jp,4111 1111 1111 1111\n";
    return out.str();
}

}  // namespace

TEST_CASE("report: the real custguardd's records of a read, a denial and a copy out of the zone", "[report][host]") {
    REQUIRE(private_mounts());
    auto alice = cgtest::ensure_user("cgreport-alice");
    auto bob = cgtest::ensure_user("cgreport-bob");
    cgtest::TempDir tmp("cgreport");
    ::chmod(tmp.path().c_str(), 0755);
    const fs::path data = tmp.path() / "data";
    fs::create_directories(data);
    REQUIRE(::mount("cgreport", data.c_str(), "tmpfs", 0, "mode=0755,size=16m") == 0);
    struct Unmount {
        fs::path p;
        ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
    } unmount{data};
    const fs::path zone = data / "customers", pub = data / "public", hr = data / "hr";
    fs::create_directories(zone);
    fs::create_directories(hr);
    fs::create_directories(pub);
    fs::create_directories(tmp.path() / "state");
    ::chmod(pub.c_str(), 01777);
    const std::string document = customer_csv();
    cgtest::spit(zone / "list.csv", document);
    cgtest::spit(hr / "staff.csv", document);
    cgtest::spit(hr / "staff2.csv", document);
    // root may read the customers zone (the report's scans of today's files run as root),
    // not the hr zone.
    cgtest::spit(tmp.path() / "policy.toml",
                 "[daemon]\nenforcer = \"fanotify\"\n\n[[zone]]\nname = \"customers\"\npaths = [\"" + zone.string() +
                     "\"]\nallow_users = [\"cgreport-alice\", \"root\"]\nrecord_allowed = true\n\n[[zone]]\nname = "
                     "\"hr\"\npaths = [\"" + hr.string() +
                     "\"]\nallow_users = [\"cgreport-alice\"]\nrecord_allowed = true\n\n[watch]\npaths = [\"" +
                     pub.string() + "\"]\non_customer_data = \"record\"\n");
    custguard::events::testing::ScratchJournald journald(custguard::events::testing::unique_namespace("report"));
    journald.start();
    const auto log = tmp.path() / "custguardd.log";
    pid_t daemon = cgtest::spawn({CG_CUSTGUARDD, "--policy", (tmp.path() / "policy.toml").string(), "--state-dir",
                                  (tmp.path() / "state").string(), "--enforcer", "fanotify", "--no-audit",
                                  "--journal-namespace", journald.name_space()},
                                 {"DBUS_SYSTEM_BUS_ADDRESS=unix:path=" + (tmp.path() / "no-bus").string(),
                                  "CUSTGUARD_EXTRACT_HELPER=" CG_EXTRACT_HELPER},
                                 log);
    struct Stop {
        pid_t& pid;
        ~Stop() { cgtest::kill_and_reap(pid); }
    } stop{daemon};
    auto deadline = std::chrono::steady_clock::now() + 15s;
    while (cgtest::slurp(log).find("control plane off") == std::string::npos) {
        REQUIRE(std::chrono::steady_clock::now() < deadline);
        REQUIRE(::waitpid(daemon, nullptr, WNOHANG) == 0);
        std::this_thread::sleep_for(50ms);
    }

    CHECK(cgtest::read_as(alice, zone / "list.csv") == 0);
    CHECK(cgtest::read_as(alice, hr / "staff.csv") == 0);
    CHECK(cgtest::read_as(alice, hr / "staff2.csv") == 0);
    const int refused = cgtest::read_as(bob, zone / "list.csv");
    CHECK((refused == EPERM || refused == EACCES));
    auto cp = cgtest::run({"/bin/cp", (zone / "list.csv").string(), (pub / "copy.csv").string()}, {}, alice);
    REQUIRE(cp.rc == 0);
    deadline = std::chrono::steady_clock::now() + 10s;
    while (journald.read("CUSTGUARD_EVENT=customer_data_found").empty()) {
        REQUIRE(std::chrono::steady_clock::now() < deadline);
        std::this_thread::sleep_for(100ms);
    }

    // An absolute window: a relative one ("-1h") moves between the runs compared below.
    char since[32];
    const time_t hour_ago_in_tokyo = ::time(nullptr) - 3600 + 9 * 3600;  // ctl() runs with TZ=Asia/Tokyo
    tm local{};
    ::gmtime_r(&hour_ago_in_tokyo, &local);
    std::strftime(since, sizeof since, "%Y-%m-%d %H:%M:%S", &local);
    // Until the next second: the reports' own reads of today's files (root's, recorded by
    // custguardd like any other) fall after the window.
    std::this_thread::sleep_for(1s);
    char until[32];
    const time_t now_in_tokyo = ::time(nullptr) + 9 * 3600;
    ::gmtime_r(&now_in_tokyo, &local);
    std::strftime(until, sizeof until, "%Y-%m-%d %H:%M:%S", &local);
    const std::vector<std::string> base = {"report", "leak-scope", "--namespace", journald.name_space(),
                                           "--since", since, "--until", until, "--discovered-at", "today"};
    auto run = [&](const std::string& format) {
        auto a = base;
        a.insert(a.end(), {"--format", format});
        auto r = ctl(a);
        INFO(r.err);
        REQUIRE(r.rc == 0);
        return r.out;
    };
    const auto json = run("json");
    INFO(json);
    char host[256] = "";
    ::gethostname(host, sizeof host - 1);
    CHECK(json.find("\"servers\": [\n    \"" + std::string(host) + "\"\n  ]") != std::string::npos);
    CHECK(json.find("\"path\": \"" + (zone / "list.csv").string() + "\"") != std::string::npos);
    CHECK(json.find("\"user\": \"cgreport-alice\"") != std::string::npos);
    CHECK(json.find("\"denials\": 0,") != std::string::npos);  // the copy's own entry
    CHECK(std::regex_search(json, std::regex("\"denials\": [1-9]")));
    CHECK(json.find("\"copy_of\": \"customers\"") != std::string::npos);
    CHECK(json.find("\"path\": \"" + (pub / "copy.csv").string() + "\"") != std::string::npos);
    CHECK(run("json") == json);

    // The zone file's read recorded no scan: the report scans today's file (in the
    // sandboxed custguard-extract) and says so; --no-rescan says there is none.
    const std::string list_entry = "\"path\": \"" + (zone / "list.csv").string() + "\"";
    auto entry = [&](const std::string& report) {
        auto at = report.find(list_entry);
        REQUIRE(at != std::string::npos);
        return report.substr(at, report.find("\n    }", at) - at);
    };
    const auto today = entry(json);
    CHECK(today.find("\"categories\": [\n        \"contact\",\n        \"payment_card\"\n      ]") != std::string::npos);
    CHECK(today.find("\"categories_basis\": \"today\"") != std::string::npos);
    CHECK(today.find("\"categories_note\": \"scanned when this report was made (" + std::to_string(document.size()) +
                     " bytes, modified ") != std::string::npos);
    CHECK(today.find("\"basis\": \"detector_hits\"") != std::string::npos);
    CHECK(json.find("\"financial_harm\": {\n      \"status\": \"yes\"") != std::string::npos);
    // custguardd refuses root the hr zone: no scan, the report says why and what to do,
    // and tries no other file of the zone (each try is a recorded denial).
    {
        auto refused_note = [&](const fs::path& file) {
            const std::string staff = "\"path\": \"" + file.string() + "\"";
            const auto at = json.find(staff);
            REQUIRE(at != std::string::npos);
            const auto entry = json.substr(at, json.find("\n    }", at) - at);
            CHECK(entry.find("\"categories\": [],\n      \"categories_basis\": \"none\",") != std::string::npos);
            const std::string key = "\"categories_note\": \"";
            const auto note = entry.find(key);
            REQUIRE(note != std::string::npos);
            return entry.substr(note + key.size(), entry.find('"', note + key.size()) - note - key.size());
        };
        const std::string what_to_do =
            "run the report as a user the zone allows and who may read the journal (a member of the group "
            "systemd-journal or adm), or give --no-rescan";
        CHECK(refused_note(hr / "staff.csv") ==
              "not scanned: custguardd refused root today's file (zone hr does not allow root; the refusal is recorded "
              "as a denial); " + what_to_do);
        CHECK(refused_note(hr / "staff2.csv") ==
              "not scanned: custguardd refused root " + (hr / "staff.csv").string() +
                  " of zone hr during this report, so no other file of the zone is tried (each refusal is recorded as "
                  "a denial); " + what_to_do);
        // The refusal was custguardd's, and recorded: root's denied open of the first file.
        bool recorded = false;
        for (const auto& e : journald.read("CUSTGUARD_PATH=" + (hr / "staff.csv").string()))
            recorded |= e.count("CUSTGUARD_UID") && e.at("CUSTGUARD_UID") == "0" && e.count("CUSTGUARD_DECISION") &&
                        e.at("CUSTGUARD_DECISION") == "deny";
        CHECK(recorded);
    }
    auto off = base;
    off.insert(off.end(), {"--format", "json", "--no-rescan"});
    auto no_rescan = ctl(off);
    REQUIRE(no_rescan.rc == 0);
    const auto none = entry(no_rescan.out);
    CHECK(none.find("\"categories\": []") != std::string::npos);
    CHECK(none.find("\"categories_basis\": \"none\",\n      \"categories_note\": \"--no-rescan") != std::string::npos);

    // No value of the document in any report: names, phone numbers, mail addresses, cards.
    for (const char* format : {"json", "text", "csv", "html"}) {
        auto out = run(format);
        for (const char* needle : {"顧客", "03-5101-2201", "cgreport1@", "@example.co.jp", "4111 1111"}) {
            INFO(format << ": " << needle);
            CHECK(out.find(needle) == std::string::npos);
        }
    }

    // A file that is gone is not guessed at.
    fs::remove(zone / "list.csv");
    const auto gone = entry(run("json"));
    CHECK(gone.find("\"categories_basis\": \"none\",\n      \"categories_note\": \"the file no longer exists on this host\"") !=
          std::string::npos);
}
