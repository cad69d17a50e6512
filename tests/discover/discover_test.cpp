// `custguardctl discover` end to end: a tree with customer data in some folders, none in
// others and one zone; the incremental store across runs; the JSON shape; the priority it
// runs at; what the walk must not enter.
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "custguard/common/policy_files.hpp"
#include "custguard/discover/db.hpp"
#include "custguard/discover/survey.hpp"
#include "daemon/dbus/json.hpp"
#include "edm/crm.hpp"
#include "scan/office_documents.hpp"
#include "scan/pdf_builder.hpp"
#include "scan/test_support.hpp"
#include "support/support.hpp"

namespace fs = std::filesystem;
using custguard::dbus::Json;

namespace {

const std::string kCard = scan_test::luhn_complete("411111111111111");
const std::string kMyNumber = scan_test::my_number_complete("12345678901");

// `n` customers: each line a card, an e-mail address and a phone number (3 hits). The
// fields are separated by ", ": the card detector wants a blank before a number.
std::string customers(int n, int seed = 0) {
    std::string s = "name, card, mail, phone\n";
    for (int i = 0; i < n; ++i)
        s += "customer" + std::to_string(i) + ", " + kCard + ", user" + std::to_string(seed * 1000 + i) +
             "@example.co.jp, 03-1234-" + std::to_string(1000 + i) + "\n";
    return s;
}

struct Tree {
    cgtest::TempDir dir{"cgdiscover"};
    fs::path root() const { return dir.path() / "share"; }
    fs::path db() const { return dir.path() / "discover.db"; }
    fs::path policy() const { return dir.path() / "policy.toml"; }

    Tree() {
        for (auto sub : {"sales", "sales/2024", "hr", "public", "customers", "docs"}) fs::create_directories(root() / sub);
        // sales: 3 files, 10 + 5 + 1 customers; sales/2024: 1 file.
        cgtest::spit(root() / "sales/list.csv", customers(10, 1));
        cgtest::spit(root() / "sales/export.txt", customers(5, 2));
        cgtest::spit(root() / "sales/one.txt", customers(1, 3));
        cgtest::spit(root() / "sales/2024/q1.csv", customers(2, 4));
        // hr: My Number and sensitive words, 1 file.
        cgtest::spit(root() / "hr/staff.txt", "マイナンバー " + kMyNumber + "\nmail hr@example.co.jp\n電話 03-5555-1234\n");
        // public: no customer data, and a file below the threshold (2 hits).
        cgtest::spit(root() / "public/minutes.txt", "Meeting at 10:00 about the new printer.\n");
        cgtest::spit(root() / "public/contact.txt", "support@example.co.jp 03-1111-2222\n");
        // the zone: 2 files with customer data, counted apart.
        cgtest::spit(root() / "customers/a.csv", customers(20, 5));
        cgtest::spit(root() / "customers/b.csv", customers(3, 6));
        // docs: a PDF (the sandboxed reader) with a card and two addresses (3 hits).
        cgtest::spit(root() / "docs/statement.pdf",
                     scan_test::one_page_pdf(scan_test::kHelvetica,
                                             "BT /F2 11 Tf 14 TL 60 780 Td\n(Card " + kCard +
                                                 ") Tj T*\n(mail pdf1@example.co.jp pdf2@example.co.jp) Tj T*\nET\n"));
        write_policy("threshold = 3\n");
    }

    void write_policy(const std::string& print) {
        cgtest::spit(policy(), "[[zone]]\nname = \"customers\"\npaths = [\"" + root().string() +
                                   "/customers\"]\nallow_users = [\"root\"]\n\n[print]\n" + print);
    }

    cgtest::RunResult run(std::vector<std::string> extra = {}) const {
        std::vector<std::string> argv = {CG_CUSTGUARDCTL, "discover", "--json", "--db", db().string(), "--policy",
                                         policy().string()};
        argv.insert(argv.end(), extra.begin(), extra.end());
        if (std::find(extra.begin(), extra.end(), "--") == extra.end()) argv.push_back(root().string());
        return cgtest::run(argv);
    }

    Json survey(std::vector<std::string> extra = {}) const {
        auto r = run(std::move(extra));
        INFO(r.err);
        REQUIRE(r.rc == 0);
        auto j = Json::parse(r.out);
        INFO(r.out);
        REQUIRE(j);
        return *j;
    }
};

std::int64_t counter(const Json& j, const char* name) { return j["counters"][name].as_int(-1); }

const Json* folder(const Json& j, const fs::path& path) {
    for (const auto& f : j["outside_zones"].as_array())
        if (f["folder"].as_string() == path.string()) return &f;
    return nullptr;
}

// A file's mtime one second later, as an editor saving it would leave it.
void touch(const fs::path& p) {
    struct stat st;
    REQUIRE(::stat(p.c_str(), &st) == 0);
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    times[1].tv_sec += 1;
    REQUIRE(::utimensat(AT_FDCWD, p.c_str(), times, 0) == 0);
}

// The first column of the first row of `sql` on the store.
std::int64_t store_count(const fs::path& db_path, const char* sql) {
    auto db = custguard::discover::Database::open(db_path.string());
    REQUIRE(db);
    auto st = db->prepare(sql);
    REQUIRE(st);
    REQUIRE(st->step().value());
    const auto n = st->int64(0);
    st->reset();
    return n;
}

}  // namespace

TEST_CASE("the report lists folders with customer data outside zones, largest first, with files and categories") {
    Tree t;
    const auto j = t.survey();
    CHECK(counter(j, "files") == 10);
    CHECK(counter(j, "scanned") == 10);
    CHECK(counter(j, "sandboxed") >= 1);  // the PDF went to the reader
    const auto& outside = j["outside_zones"].as_array();
    REQUIRE(outside.size() == 4);
    // Largest first: sales (16 customers, 48 hits), sales/2024 (6), then hr and docs (3
    // hits each).
    CHECK(outside[0]["folder"].as_string() == (t.root() / "sales").string());
    CHECK(outside[1]["folder"].as_string() == (t.root() / "sales/2024").string());
    const auto* sales = folder(j, t.root() / "sales");
    REQUIRE(sales);
    CHECK((*sales)["files"].as_int() == 3);
    CHECK((*sales)["persons_estimate"].as_int() == 48);
    CHECK((*sales)["categories"]["payment_card"].as_int() == 16);
    CHECK((*sales)["categories"]["contact"].as_int() == 32);
    CHECK((*sales)["categories"]["my_number"].as_int() == 0);
    const auto* hr = folder(j, t.root() / "hr");
    REQUIRE(hr);
    CHECK((*hr)["files"].as_int() == 1);
    CHECK((*hr)["categories"]["my_number"].as_int() == 1);
    CHECK((*hr)["categories"]["contact"].as_int() == 2);
    const auto* docs = folder(j, t.root() / "docs");
    REQUIRE(docs);  // found by the sandboxed reader
    CHECK((*docs)["categories"]["payment_card"].as_int() == 1);
    CHECK((*docs)["categories"]["contact"].as_int() == 2);
    // No data, or below the threshold: not listed. The zone: counted apart.
    CHECK(!folder(j, t.root() / "public"));
    CHECK(!folder(j, t.root() / "customers"));
    CHECK(j["outside_files"].as_int() == 6);
    CHECK(j["inside_zones"]["files"].as_int() == 2);
    CHECK(j["inside_zones"]["zones"]["customers"].as_int() == 2);
}

TEST_CASE("the policy snippet parses with the policy loader and makes exactly the outside folders zones") {
    Tree t;
    const auto j = t.survey();
    const auto snippet = j["policy_snippet"].as_string();
    REQUIRE(!snippet.empty());
    // As an administrator would: the snippet as a drop-in beside the policy.
    fs::create_directories(t.dir.path() / "policy.d");
    cgtest::spit(t.dir.path() / "policy.d/50-discovered.toml", snippet);
    auto loaded = custguard::common::load_policy(t.policy(), std::nullopt, custguard::common::now_seconds());
    if (!loaded)
        for (const auto& d : loaded.error()) UNSCOPED_INFO(d.format());
    REQUIRE(loaded);
    std::vector<std::string> zone_paths;
    for (const auto& z : loaded->policy.zones)
        if (z.name != "customers")
            for (const auto& p : z.paths) zone_paths.push_back(p.path);
    std::sort(zone_paths.begin(), zone_paths.end());
    // sales/2024 joins sales (a zone covers its tree).
    CHECK(zone_paths == std::vector<std::string>{(t.root() / "docs").string(), (t.root() / "hr").string(),
                                                 (t.root() / "sales").string()});
    // And custguardctl policy check agrees.
    auto check = cgtest::run({CG_CUSTGUARDCTL, "policy", "check", t.policy().string()});
    INFO(check.out << check.err);
    CHECK(check.rc == 0);
}

TEST_CASE("a second run rescans exactly the file that changed") {
    Tree t;
    // More files, so "exactly one" means something.
    for (int i = 0; i < 40; ++i) cgtest::spit(t.root() / "public" / ("note" + std::to_string(i) + ".txt"), "nothing here " + std::to_string(i) + "\n");
    auto first = t.survey();
    CHECK(counter(first, "scanned") == 50);
    auto second = t.survey();
    CHECK(counter(second, "scanned") == 0);
    CHECK(counter(second, "unchanged") == 50);
    touch(t.root() / "public/note7.txt");
    auto third = t.survey();
    CHECK(counter(third, "scanned") == 1);
    CHECK(counter(third, "unchanged") == 49);
    // Content changed in place (same size, mtime kept): ctime still tells.
    {
        struct stat st;
        REQUIRE(::stat((t.root() / "hr/staff.txt").c_str(), &st) == 0);
        std::ofstream(t.root() / "hr/staff.txt", std::ios::in | std::ios::out) << "x";
        struct timespec times[2] = {st.st_atim, st.st_mtim};
        REQUIRE(::utimensat(AT_FDCWD, (t.root() / "hr/staff.txt").c_str(), times, 0) == 0);
    }
    auto fourth = t.survey();
    CHECK(counter(fourth, "scanned") == 1);
    // The report is the same from the store as from a full scan.
    CHECK(third["outside_zones"].dump() == first["outside_zones"].dump());
    auto forced = t.survey({"--rescan"});
    CHECK(counter(forced, "scanned") == 50);
}

TEST_CASE("a changed detector configuration rescans every file and a changed threshold rescans none") {
    Tree t;
    t.survey();
    t.write_policy("threshold = 50\n");
    auto higher = t.survey();
    CHECK(counter(higher, "scanned") == 0);
    // Files are judged one by one: no file outside the zone has 50 hits, a.csv (60) has.
    CHECK(higher["outside_zones"].as_array().empty());
    CHECK(higher["inside_zones"]["files"].as_int() == 1);
    t.write_policy("detectors = [\"credit_card\", \"email\"]\n");
    auto fewer = t.survey();
    CHECK(counter(fewer, "scanned") == 10);
    const auto* hr = folder(fewer, t.root() / "hr");
    CHECK(!hr);  // 1 e-mail address is below the threshold without my_number and jp_phone
    t.write_policy("keywords = [\"顧客\", \"氏名\"]\n");
    CHECK(counter(t.survey(), "scanned") == 10);
}

TEST_CASE("a deleted file is dropped from the store and from the report") {
    Tree t;
    t.survey();
    fs::remove(t.root() / "hr/staff.txt");
    auto j = t.survey();
    CHECK(counter(j, "removed") == 1);
    CHECK(counter(j, "files") == 9);
    CHECK(!folder(j, t.root() / "hr"));
    CHECK(store_count(t.db(), "SELECT count(*) FROM files") == 9);
    // A survey of another tree keeps what it did not walk.
    cgtest::TempDir other("cgdiscover-other");
    cgtest::spit(other.path() / "x.txt", "x\n");
    auto o = cgtest::run({CG_CUSTGUARDCTL, "discover", "--json", "--db", t.db().string(), "--policy", t.policy().string(),
                          other.path().string()});
    REQUIRE(o.rc == 0);
    CHECK(counter(*Json::parse(o.out), "removed") == 0);
    CHECK(store_count(t.db(), "SELECT count(*) FROM files") == 10);
}

// Guards the cost of incremental runs: unchanged files are not written back to the store
// (marking each one rewrote the whole store every run), yet files gone are still dropped.
TEST_CASE("a run writes only the files it scanned to the store, and still drops the ones gone") {
    Tree t;
    t.survey();
    const auto rows_of_run = [&] {
        return store_count(t.db(), "SELECT count(*) FROM files WHERE seen = "
                                   "(SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'run')");
    };
    CHECK(rows_of_run() == 10);
    touch(t.root() / "public/minutes.txt");
    fs::remove(t.root() / "sales/one.txt");
    const auto j = t.survey();
    CHECK(counter(j, "scanned") == 1);
    CHECK(counter(j, "unchanged") == 8);
    CHECK(counter(j, "removed") == 1);
    CHECK(rows_of_run() == 1);
    CHECK(store_count(t.db(), "SELECT count(*) FROM files") == 9);
    CHECK(counter(t.survey(), "removed") == 0);
}

TEST_CASE("the JSON report (--json) has a stable shape") {
    Tree t;
    const auto j = t.survey();
    CHECK(j["version"].as_int() == 1);
    REQUIRE(j["roots"].as_array().size() == 1);
    CHECK(j["roots"].as_array()[0].as_string() == t.root().string());
    CHECK(j["threshold"].as_int() == 3);
    CHECK(j["fingerprint"].is_string());
    for (auto key : {"files", "scanned", "unchanged", "removed", "unreadable", "bytes_scanned", "in_process", "sandboxed",
                     "skipped"})
        CHECK(j["counters"][key].is_int());
    CHECK(j["persons_basis"].as_string() == "detector hits");
    for (const auto& f : j["outside_zones"].as_array()) {
        CHECK(f["folder"].is_string());
        CHECK(f["files"].is_int());
        CHECK(f["persons_estimate"].is_int());
        std::vector<std::string> keys;
        for (const auto& [k, _] : f["categories"].as_object()) keys.push_back(k);
        CHECK(keys == std::vector<std::string>{"sensitive", "payment_card", "my_number", "contact"});
        CHECK(f["detectors"].is_object());
    }
    CHECK(j["inside_zones"]["files"].is_int());
    CHECK(j["unreadable"].is_array());
    CHECK(j["warnings"].is_array());
    CHECK(j["policy_snippet"].is_string());
}

TEST_CASE("the survey runs at idle I/O priority and nice 19") {
    Tree t;
    const auto j = t.survey();
    CHECK(j["io_priority_class"].as_int() == 3);  // IOPRIO_CLASS_IDLE, read back with ioprio_get
    CHECK(j["nice"].as_int() == 19);
    // The library call itself, read back independently in /proc.
    std::thread([] {
        REQUIRE(custguard::discover::lower_priority());
        CHECK(custguard::discover::io_priority_class() == 3);
        const auto stat = cgtest::slurp("/proc/self/task/" + std::to_string(::syscall(SYS_gettid)) + "/stat");
        // Field 19 (nice) follows the command in parentheses.
        auto rest = stat.substr(stat.rfind(')') + 2);
        std::istringstream in(rest);
        std::string field;
        for (int i = 3; i <= 19; ++i) in >> field;
        CHECK(field == "19");
    }).join();
}

TEST_CASE("the walk follows no symbolic link and stays on one file system unless asked") {
    Tree t;
    cgtest::TempDir outside("cgdiscover-link");
    cgtest::spit(outside.path() / "leak.csv", customers(50, 9));
    fs::create_directory_symlink(outside.path(), t.root() / "public/link");
    fs::create_symlink(outside.path() / "leak.csv", t.root() / "public/leak.csv");
    fs::create_directories(t.root() / "mnt");
    REQUIRE(::mount("tmpfs", (t.root() / "mnt").c_str(), "tmpfs", 0, "size=4m") == 0);
    struct Unmount {
        fs::path p;
        ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
    } unmount{t.root() / "mnt"};
    cgtest::spit(t.root() / "mnt/other.csv", customers(4, 8));
    auto j = t.survey();
    CHECK(counter(j, "files") == 10);
    CHECK(counter(j, "skipped") == 1);
    CHECK(!folder(j, outside.path()));
    CHECK(!folder(j, t.root() / "mnt"));
    CHECK(j["warnings"].dump().find("another file system") != std::string::npos);
    auto crossed = t.survey({"--cross-filesystems"});
    CHECK(counter(crossed, "files") == 11);
    CHECK(folder(crossed, t.root() / "mnt"));
}

TEST_CASE("legacy encodings go to the reader, images are unreadable with a reason") {
    Tree t;
    // CP932 (Shift_JIS) customer list: not UTF-8, decoded in the sandbox.
    cgtest::spit(t.root() / "public/sjis.csv",
                 "\x8c\xda\x8b\x71, " + kCard + ", sjis@example.co.jp, 03-2222-3333\n");  // 顧客
    cgtest::spit(t.root() / "public/photo.png", std::string("\x89PNG\r\n\x1a\n", 8) + std::string(64, '\0'));
    auto j = t.survey();
    const auto* pub = folder(j, t.root() / "public");
    REQUIRE(pub);
    CHECK((*pub)["files"].as_int() == 1);
    CHECK(counter(j, "unreadable") == 1);
    REQUIRE(j["unreadable"].as_array().size() == 1);
    CHECK(j["unreadable"].as_array()[0]["path"].as_string() == (t.root() / "public/photo.png").string());
    CHECK(j["unreadable"].as_array()[0]["reason"].as_string().find("image") != std::string::npos);
}

// Regression (issue 17, hostile routes): a NUL byte in front of a CSV, or the NUL gap of a
// sparse file, made the file "unknown format" and the survey passed it by. Files on disk
// are read past NULs (ScanMode::file_on_disk); only the image stays unreadable.
TEST_CASE("a customer list behind a NUL byte or a sparse gap is found") {
    Tree t;
    cgtest::spit(t.root() / "public/nul.csv", std::string(1, '\0') + customers(3, 21));
    cgtest::spit(t.root() / "public/gap.txt", "minutes\n" + std::string(65536, '\0') + customers(3, 22));
    cgtest::spit(t.root() / "public/photo.png", std::string("\x89PNG\r\n\x1a\n", 8) + std::string(64, '\0'));
    auto j = t.survey();
    const auto* pub = folder(j, t.root() / "public");
    REQUIRE(pub);
    CHECK((*pub)["files"].as_int() == 2);
    CHECK(counter(j, "unreadable") == 1);
}

TEST_CASE("text longer than one read block: characters and numbers across the block boundary are found in process") {
    // Regression guard for the streamed UTF-8 path: the survey reads 1 MiB blocks, checks
    // them with the SIMD UTF-8 validator and feeds them to the scanner in pieces.
    Tree t;
    CHECK(counter(t.survey(), "scanned") == 10);  // the store holds the tree: the run below scans only big/
    constexpr std::size_t block = 1 << 20;
    for (auto sub : {"kana", "number", "invalid"}) fs::create_directories(t.root() / "big" / sub);
    // One line of three-byte characters: the one at 1,048,575 spans the block boundary
    // (and the scanner's chunks are cut inside such a line at character boundaries).
    std::string kana;
    const std::string words = "会議の日程と資料の置き場所を確認してください";
    while (kana.size() < block + 64) kana += words;
    cgtest::spit(t.root() / "big/kana/minutes.txt", kana + "\n" + customers(3, 7));
    // A card number whose digits lie on both sides of the boundary.
    const std::string line = "name, " + kCard + ", edge@example.co.jp, 03-1234-5678\n";
    std::string ascii;
    while (ascii.size() < block) ascii += "The quarterly report is due at the end of the month.\n";
    ascii.resize(block - 6 - 8);  // the card's first 8 digits before the boundary
    ascii.back() = '\n';
    REQUIRE((ascii + line).substr(block - 8, 16) == kCard);
    cgtest::spit(t.root() / "big/number/report.txt", ascii + line);
    // Valid in the first block, not UTF-8 in the second: the whole file goes to the reader.
    cgtest::spit(t.root() / "big/invalid/eucjp.txt", ascii + "\n" + customers(2, 8) + "\xb8\xdc\xb5\xd2\n");  // 顧客
    const auto j = t.survey();
    CHECK(counter(j, "scanned") == 3);
    CHECK(counter(j, "in_process") == 2);
    CHECK(counter(j, "sandboxed") == 1);  // eucjp.txt
    const auto* kana_dir = folder(j, t.root() / "big/kana");
    REQUIRE(kana_dir);
    CHECK((*kana_dir)["detectors"]["credit_card"].as_int() == 3);
    CHECK((*kana_dir)["detectors"]["email"].as_int() == 3);
    CHECK((*kana_dir)["detectors"]["jp_phone"].as_int() == 3);
    const auto* number = folder(j, t.root() / "big/number");
    REQUIRE(number);
    CHECK((*number)["detectors"]["credit_card"].as_int() == 1);
    CHECK((*number)["detectors"]["email"].as_int() == 1);
    CHECK((*number)["detectors"]["jp_phone"].as_int() == 1);
    const auto* invalid = folder(j, t.root() / "big/invalid");
    REQUIRE(invalid);  // decoded by the reader as EUC-JP, customers still counted
    CHECK((*invalid)["detectors"]["credit_card"].as_int() == 2);
}

TEST_CASE("overlapping PATHs are walked once") {
    Tree t;
    // Sorted, "share-x" falls between "share" and "share/sales": each nested root must
    // still be recognised as inside "share".
    fs::create_directories(t.dir.path() / "share-x");
    cgtest::spit(t.dir.path() / "share-x" / "one.txt", "x\n");
    auto j = t.survey({"--", t.root().string(), (t.dir.path() / "share-x").string(), (t.root() / "sales").string(),
                       (t.root() / "sales/2024").string()});
    CHECK(counter(j, "files") == 11);
    CHECK(j["roots"].as_array().size() == 2);
}

TEST_CASE("a store of another schema version is refused with what to do") {
    Tree t;
    {
        auto db = custguard::discover::Database::open(t.db().string());
        REQUIRE(db);
        REQUIRE(db->exec("PRAGMA user_version=99"));
    }
    auto r = t.run();
    CHECK(r.rc == 1);
    CHECK(r.err.find("schema version 99") != std::string::npos);
    CHECK(r.err.find("remove the file") != std::string::npos);
    // And the store is readable by its owner only: it names the files with customer data.
    fs::remove(t.db());
    REQUIRE(t.run().rc == 0);
    struct stat st;
    REQUIRE(::stat(t.db().c_str(), &st) == 0);
    CHECK((st.st_mode & 0077) == 0);
}

namespace {

std::string stored_patterns(const fs::path& db_path) {
    auto db = custguard::discover::Database::open(db_path.string());
    REQUIRE(db);
    auto get = db->prepare("SELECT value FROM meta WHERE key = 'patterns'");
    REQUIRE(get);
    auto row = get->step();
    REQUIRE(row);
    std::string out = *row ? std::string(get->blob(0)) : std::string();
    get->reset();
    return out;
}

void store_patterns(const fs::path& db_path, const std::string& blob) {
    auto db = custguard::discover::Database::open(db_path.string());
    REQUIRE(db);
    auto put = db->prepare("INSERT OR REPLACE INTO meta(key, value) VALUES('patterns', ?1)");
    REQUIRE(put);
    REQUIRE(put->bind_blob(1, blob).step());
}

}  // namespace

// Guards the pattern cache of the store: runs after the first do not compile the patterns
// again, and a serialised database is only taken from a store no other user can write.
TEST_CASE("the compiled patterns are kept in the store, and only a private store is trusted with them") {
    Tree t;
    const auto first = t.survey();
    const std::string cached = stored_patterns(t.db());
    REQUIRE(cached.starts_with("cgpat1:"));
    const auto header = cached.substr(0, cached.find('\n') + 1);

    // Patterns of an e-mail-only configuration under the full configuration's fingerprint:
    // a survey that takes them finds no card, phone or My Number.
    Tree mail;
    mail.write_policy("threshold = 3\ndetectors = [\"email\"]\n");
    mail.survey();
    const std::string mail_patterns = stored_patterns(mail.db());
    REQUIRE(mail_patterns.starts_with("cgpat1:"));
    const std::string forged = header + mail_patterns.substr(mail_patterns.find('\n') + 1);
    store_patterns(t.db(), forged);

    SECTION("a private store: the stored patterns are used") {
        const auto again = t.survey({"--rescan"});
        CHECK(counter(again, "scanned") == 10);
        CHECK(again["outside_zones"].dump() != first["outside_zones"].dump());
        CHECK(stored_patterns(t.db()) == forged);
    }
    SECTION("a store others may write: compiled afresh, nothing read or written") {
        REQUIRE(::chmod(t.db().c_str(), 0620) == 0);
        const auto again = t.survey({"--rescan"});
        CHECK(again["outside_zones"].dump() == first["outside_zones"].dump());
        CHECK(stored_patterns(t.db()) == forged);
    }
    SECTION("patterns that do not load (damaged) are compiled afresh and replaced") {
        store_patterns(t.db(), header + "damaged");
        const auto again = t.survey({"--rescan"});
        CHECK(again["outside_zones"].dump() == first["outside_zones"].dump());
        CHECK(stored_patterns(t.db()) == cached);
    }
}

TEST_CASE("the text report names the folders and the progress bar stays off a non-terminal") {
    Tree t;
    auto r = cgtest::run({CG_CUSTGUARDCTL, "discover", "--db", t.db().string(), "--policy", t.policy().string(),
                          t.root().string()});
    REQUIRE(r.rc == 0);
    CHECK(r.err.empty());
    CHECK(r.out.find("customer data OUTSIDE zones") != std::string::npos);
    CHECK(r.out.find((t.root() / "sales").string()) != std::string::npos);
    CHECK(r.out.find("payment cards 16, contact data 32") != std::string::npos);
    CHECK(r.out.find("customer data inside zones: 2 files (customers 2)") != std::string::npos);
    CHECK(r.out.find("[[zone]]") != std::string::npos);
}

// Issue 17: the survey reads the formats customers use (through the sandboxed reader) and,
// with an edm: detector, counts distinct customers of the CRM rather than hits.
TEST_CASE("Office files and archives are surveyed, and an edm: detector counts distinct CRM customers") {
    Tree t;
    const auto crm = custguard::edm::testing::make_crm(200);
    cgtest::spit(t.dir.path() / "crm.toml", custguard::edm::testing::schema_toml);
    cgtest::spit(t.dir.path() / "crm.csv", custguard::edm::testing::make_csv(crm));
    const fs::path index = t.dir.path() / "edm" / "crm.edm";
    auto built = cgtest::run({CG_CUSTGUARDCTL, "edm", "build", "--schema", (t.dir.path() / "crm.toml").string(),
                              "--output", index.string(), (t.dir.path() / "crm.csv").string()});
    INFO(built.out << built.err);
    REQUIRE(built.rc == 0);

    // 7 customers of the CRM in an xlsx, 5 in a zip, none (only patterns) in the rest.
    fs::create_directories(t.root() / "exports");
    std::string shared, rows;
    for (std::size_t i = 0; i < 7; ++i) {
        const auto& c = crm[i * 3];
        shared += "<si><t>" + c.name + " " + c.phone + " " + c.address + "</t></si>";
        rows += "<row r=\"" + std::to_string(i + 1) + "\"><c t=\"s\"><v>" + std::to_string(i) + "</v></c></row>";
    }
    cgtest::spit(t.root() / "exports/crm.xlsx", scan_test::xlsx(shared, rows));
    std::vector<std::size_t> picks = {100, 110, 120, 130, 140};
    cgtest::spit(t.root() / "exports/mail.zip",
                 scan_test::ZipBuilder().add("list.txt", custguard::edm::testing::make_document(crm, picks)).bytes());

    t.write_policy("threshold = 3\ndetectors = [\"credit_card\", \"email\", \"jp_phone\", \"edm:crm\"]\n\n[edm.crm]\nindex = \"" +
                   index.string() + "\"\n");
    auto j = t.survey();
    CHECK(j["persons_basis"].as_string() == "exact matching");
    const auto* exports = folder(j, t.root() / "exports");
    REQUIRE(exports);
    CHECK((*exports)["files"].as_int() == 2);
    CHECK((*exports)["persons_estimate"].as_int() == 12);
    CHECK((*exports)["detectors"]["edm:crm"].as_int() == 12);
    // Pattern-only folders still count hits, and no distinct customers.
    const auto* sales = folder(j, t.root() / "sales");
    REQUIRE(sales);
    CHECK((*sales)["persons_estimate"].as_int() == 0);
    CHECK(counter(j, "sandboxed") >= 3);  // the xlsx, the zip and the PDF

    // An index that is not there refuses the survey rather than leaving the detector out.
    fs::remove(index);
    auto r = t.run({"--rescan"});
    CHECK(r.rc != 0);
    CHECK(r.err.find("[edm.crm]") != std::string::npos);
}
