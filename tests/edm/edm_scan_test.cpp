// EDM through the scanner, the sandboxed reader and `custguardctl edm build`: the same
// 1,001 persons in-process and in custguard-extract running as nobody, which cannot open
// the root-only index and key and gets them as an inherited sealed descriptor.
#include <fcntl.h>
#include <iconv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/edm_command.hpp"
#include "crm.hpp"
#include "custguard/edm/edm.hpp"
#include "custguard/scan/sandbox.hpp"
#include "custguard/scan/scanner.hpp"

namespace edm = custguard::edm;
namespace scan = custguard::scan;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        std::string t = (fs::temp_directory_path() / "cg-edm-XXXXXX").string();
        path = ::mkdtemp(t.data());
    }
    ~TempDir() { fs::remove_all(path); }
};

void write(const fs::path& p, std::string_view bytes) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string to_cp932(const std::string& utf8) {
    iconv_t cd = ::iconv_open("CP932", "UTF-8");
    REQUIRE(cd != reinterpret_cast<iconv_t>(-1));
    std::string out(utf8.size() * 2 + 16, '\0');
    char* in = const_cast<char*>(utf8.data());
    char* o = out.data();
    std::size_t il = utf8.size(), ol = out.size();
    REQUIRE(::iconv(cd, &in, &il, &o, &ol) != static_cast<std::size_t>(-1));
    ::iconv_close(cd);
    out.resize(out.size() - ol);
    return out;
}

// The CRM built with `custguardctl edm build` into a root-only directory.
struct Fixture {
    TempDir dir;
    fs::path index = dir.path / "edm" / "crm.edm";
    fs::path key = dir.path / "edm" / "key";
    std::vector<edm::testing::Customer> crm = edm::testing::make_crm(10'000);
    std::string summary;
    int status = -1;

    Fixture() {
        write(dir.path / "crm.toml", edm::testing::schema_toml);
        write(dir.path / "crm.csv", to_cp932(edm::testing::make_csv(crm)));
        custguard::cli::EdmBuildOptions o;
        o.schema = (dir.path / "crm.toml").string();
        o.csv = (dir.path / "crm.csv").string();
        o.output = index.string();
        o.encoding = "cp932";
        std::ostringstream out, err;
        status = custguard::cli::run_edm_build(o, out, err);
        summary = out.str() + err.str();
    }
};

Fixture& fixture() {
    static Fixture f;
    return f;
}

std::vector<std::size_t> picks() {
    std::vector<std::size_t> p;
    for (std::size_t i = 0; i < 10'000 && p.size() < 1001; i += 9) p.push_back(i);
    return p;
}

scan::ScannerConfig config_with(std::shared_ptr<const edm::Matcher> m) {
    const std::vector<std::string> detectors = {"email", "sensitive", "edm:crm"};
    auto config = scan::ScannerConfig::from_names(detectors, {}, 40);
    REQUIRE(config);
    REQUIRE(config->set_matcher("crm", std::move(m)));
    return *config;
}

}  // namespace

TEST_CASE("edm build: a CP932 export of 10,000 rows, key created 0600, index 0600, summary", "[edm][cli]") {
    auto& f = fixture();
    INFO(f.summary);
    CHECK(f.status == 0);
    CHECK(f.summary.find("rows read: 10000") != std::string::npos);
    CHECK(f.summary.find("indexed:   10000") != std::string::npos);
    CHECK(f.summary.find("created key " + f.key.string()) != std::string::npos);
    CHECK((fs::status(f.key).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));
    CHECK((fs::status(f.index).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));
    CHECK((fs::status(f.index.parent_path()).permissions() & fs::perms::all) == fs::perms::owner_all);

    SECTION("bad rows: exit 1 with their lines; a bad schema: exit 2 at its position") {
        write(f.dir.path / "bad.csv", "id,name,phone,email,address,birth\nC1,山田太郎,090-1111-2222,a@example.jp,東京都,1980\nC2,x,12\n");
        custguard::cli::EdmBuildOptions o;
        o.schema = (f.dir.path / "crm.toml").string();
        o.csv = (f.dir.path / "bad.csv").string();
        o.output = (f.dir.path / "edm" / "bad.edm").string();
        std::ostringstream out, err;
        CHECK(custguard::cli::run_edm_build(o, out, err) == 1);
        CHECK(out.str().find("bad.csv:3: 3 fields, the schema names 6") != std::string::npos);
        CHECK(out.str().find("12") == out.str().find("12"));  // (values are never echoed: checked below)
        CHECK(out.str().find("C2,x") == std::string::npos);

        write(f.dir.path / "bad.toml", "columns = [\"a\"]\n[primary]\ncolumn = \"b\"\nkind = \"phone\"\n");
        o.schema = (f.dir.path / "bad.toml").string();
        std::ostringstream out2, err2;
        CHECK(custguard::cli::run_edm_build(o, out2, err2) == 2);
        CHECK(err2.str().find("bad.toml:3:10: primary column 'b'") != std::string::npos);
    }
}

TEST_CASE("the scanner counts persons of edm:crm beside the pattern detectors", "[edm][scan]") {
    auto& f = fixture();
    auto m = edm::Matcher::open(f.index.string(), f.key.string());
    REQUIRE(m);
    auto scanner = scan::Scanner::create(config_with(*m));
    REQUIRE(scanner);
    const auto doc = edm::testing::make_document(f.crm, picks()) + "既往歴：なし\n";
    const auto t0 = std::chrono::steady_clock::now();
    const auto found = scanner->scan(doc);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    REQUIRE(found);
    CHECK(found->persons == 1001);
    CHECK(found->edm == std::vector<scan::EdmCount>{{"crm", 1001}});
    CHECK(found->count(scan::Detector::email) == 250);  // the CSV-style lines carry the e-mail
    CHECK(found->count(scan::Detector::sensitive) == 1);
    CHECK(scan::format_findings(*found, std::vector<scan::Detector>{scan::Detector::email}) == "email=250 edm:crm=1001");
    WARN("edm:crm over the 1,001-customer document (" << doc.size() << " bytes), in-process: " << ms << " ms");

    // Without an index the configuration is refused, naming the detector.
    const std::vector<std::string> detectors = {"edm:crm"};
    auto bare = scan::ScannerConfig::from_names(detectors, {}, 40);
    REQUIRE(bare);
    auto refused = scan::Scanner::create(*bare);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().find("edm:crm") != std::string::npos);
}

TEST_CASE("through the sandboxed reader as nobody, the index arrives as a descriptor: 1,001 persons", "[edm][sandbox]") {
    REQUIRE(::geteuid() == 0);  // host layer: the reader runs as nobody
    auto& f = fixture();
    auto m = edm::Matcher::open(f.index.string(), f.key.string());
    REQUIRE(m);
    const auto doc = edm::testing::make_document(f.crm, picks());
    const int fd = ::memfd_create("doc", MFD_CLOEXEC);
    REQUIRE(::write(fd, doc.data(), doc.size()) == static_cast<ssize_t>(doc.size()));
    scan::SandboxOptions options;
    options.uid = options.gid = 65534;
    const auto t0 = std::chrono::steady_clock::now();
    auto result = scan::scan_sandboxed(config_with(*m), fd, "text/plain", options);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    ::close(fd);
    REQUIRE(result);
    INFO(result->reason);
    REQUIRE(result->readable);
    CHECK(result->findings.persons == 1001);
    CHECK(result->findings.edm == std::vector<scan::EdmCount>{{"crm", 1001}});
    WARN("edm:crm over the 1,001-customer document in custguard-extract: " << ms << " ms");

    // A matcher that did not come from its files has nothing to hand over.
    auto in_memory = edm::Matcher::from_index((*m)->index(), edm::load_key(f.key.string()).value());
    REQUIRE(in_memory);
    auto refused = scan::scan_sandboxed(config_with(*in_memory), 0, "text/plain", options);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().find("edm:crm") != std::string::npos);
}
