#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "cli/scan_command.hpp"
#include "hostile_documents.hpp"
#include "office_documents.hpp"
#include "test_support.hpp"

using custguard::cli::run_scan;
using custguard::cli::ScanOptions;

namespace {

std::string data_path(const std::string& name) { return std::string(CUSTGUARD_SCAN_DATA) + "/" + name; }

struct Run {
    int status;
    std::string out, err;
};

Run run(ScanOptions options) {
    std::ostringstream out, err;
    const int status = run_scan(options, out, err);
    return {status, out.str(), err.str()};
}

}  // namespace

TEST_CASE("scan reports customer data per file and says so in the exit status", "[scan][cli]") {
    ScanOptions options;
    options.files = {data_path("customer.pdf"), data_path("clean.pdf")};
    const auto r = run(options);
    CHECK(r.status == 1);
    CHECK(r.err.empty());
    CHECK_THAT(r.out, Catch::Contains("customer.pdf: pdf, 2 pages: CUSTOMER DATA"));
    CHECK_THAT(r.out, Catch::Contains("clean.pdf: pdf, 1 page: not customer data (0 hits < threshold 3)"));
    CHECK_THAT(r.out, Catch::Contains("credit_card") && Catch::Contains("jp_address"));
    // Never the matched data itself.
    for (const char* secret : {"4111", "3530", "taro", "1234-5678", "123456789018"}) {
        INFO(secret);
        CHECK(r.out.find(secret) == std::string::npos);
    }

    ScanOptions clean;
    clean.files = {data_path("clean.txt"), data_path("clean.ps")};
    CHECK(run(clean).status == 0);

    ScanOptions high;
    high.files = {data_path("customer.pdf")};
    high.threshold = 100;
    CHECK(run(high).status == 0);
}

TEST_CASE("scan honours the policy's detectors, keywords and proximity", "[scan][cli]") {
    ScanOptions options;
    options.files = {data_path("customer_utf8.txt")};
    options.detectors = {"email"};
    options.threshold = 2;
    const auto r = run(options);
    CHECK(r.status == 1);
    CHECK_THAT(r.out, Catch::Contains("email"));
    CHECK(r.out.find("credit_card") == std::string::npos);

    options.detectors = {"keywords"};
    options.keywords = {"Customer", "Name"};
    options.keyword_proximity = 40;
    options.threshold = 1;
    CHECK(run(options).status == 1);
    options.keyword_proximity = 0;
    CHECK(run(options).status == 0);
}

TEST_CASE("scan errors name the file and what to do", "[scan][cli]") {
    ScanOptions missing;
    missing.files = {data_path("customer.pdf"), "/nonexistent/report.pdf"};
    const auto r = run(missing);
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("/nonexistent/report.pdf") && Catch::Contains("check the path"));
    CHECK_THAT(r.out, Catch::Contains("CUSTOMER DATA"));  // the other file is still reported
    CHECK_THAT(r.out, Catch::Contains("/nonexistent/report.pdf: ERROR"));

    ScanOptions image;
    image.files = {data_path("image_only.pdf")};
    image.unreadable_action = "deny";
    const auto u = run(image);
    CHECK(u.status == 2);
    CHECK_THAT(u.err, Catch::Contains("image_only.pdf") && Catch::Contains("unreadable = \"deny\""));
    CHECK_THAT(u.out, Catch::Contains("image_only.pdf: pdf: UNREADABLE (no text layer"));

    ScanOptions bad;
    bad.files = {data_path("clean.txt")};
    bad.detectors = {"passport"};
    const auto b = run(bad);
    CHECK(b.status == 2);
    CHECK_THAT(b.err, Catch::Contains("unknown detector 'passport'"));

    CHECK(run(ScanOptions{}).status == 2);
}

TEST_CASE("scan --json", "[scan][cli]") {
    ScanOptions options;
    options.files = {data_path("customer.ps"), data_path("image.png"), data_path("nope\"file")};
    options.json = true;
    const auto r = run(options);
    CHECK(r.status == 2);
    CHECK_THAT(r.out, Catch::StartsWith("{\"threshold\":3,\"files\":[{\"file\":"));
    CHECK_THAT(r.out, Catch::Contains("\"doc_type\":\"postscript\",\"pages\":2,\"members\":0,\"members_without_text\":0,\"readable\":true,\"findings\":{"
                                      "\"credit_card\":2,\"my_number\":1,\"email\":1,\"jp_phone\":1,"
                                      "\"jp_address\":0,\"keywords\":0,\"sensitive\":0},\"persons\":0,\"total\":5,\"customer_data\":true}"));
    CHECK_THAT(r.out, Catch::Contains("\"doc_type\":\"image\",\"pages\":0,\"members\":0,\"members_without_text\":0,\"readable\":false,\"error\":"));
    CHECK_THAT(r.out, Catch::Contains("nope\\\"file"));
    CHECK_THAT(r.out, Catch::EndsWith("\"customer_data\":true}\n"));
}

// Regression: custguardctl scan parsed documents in its own process, without limits.
TEST_CASE("scan reads documents in the sandboxed reader: a hostile PDF is unreadable within the timeout",
          "[scan][cli][sandbox]") {
    char path[] = "/tmp/cgscan-fanout.XXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    const auto pdf = cgscan::time_bomb_pdf();
    REQUIRE(::write(fd, pdf.data(), pdf.size()) == static_cast<ssize_t>(pdf.size()));
    ::close(fd);
    ScanOptions options;
    options.files = {path};
    options.timeout = std::chrono::seconds(2);
    const auto start = std::chrono::steady_clock::now();
    const auto r = run(options);
    const auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ::unlink(path);
    INFO(r.out << r.err);
    CHECK(r.status == 2);
    CHECK_THAT(r.out, Catch::Contains("UNREADABLE (the document could not be read safely: reading it took longer than 2 s"));
    CHECK(took < 2.0 + 3.0);  // the timeout, plus building the detectors first
}

// Issue 17: per file the format, what it holds and, when unreadable, why; through the
// sandboxed reader, so its seccomp filter and limits allow libzip, expat, zlib and iconv.
TEST_CASE("scan names the format, sheets and members, and why an archive is unreadable", "[scan][cli][formats]") {
    char dir[] = "/tmp/cgscan-formats.XXXXXX";
    REQUIRE(::mkdtemp(dir));
    const std::string base = dir;
    const std::string my_number = scan_test::my_number_complete("12345678901");
    const std::string xlsx = scan_test::xlsx(
        "<si><t>taro@example.jp</t></si><si><t>03-1234-5678</t></si>",
        "<row><c t=\"s\"><v>0</v></c><c t=\"s\"><v>1</v></c><c><v>" + my_number + "</v></c></row>");
    const std::vector<std::pair<std::string, std::string>> files = {
        {"book.xlsx", xlsx},
        {"list.csv.gz", scan_test::gzip("name,phone\n山田,03-1234-5678\n佐藤,03-1234-5679\n")},
        {"bundle.zip", scan_test::ZipBuilder().add("book.xlsx", xlsx).add("photo.png", "\x89PNG").bytes()},
        {"bomb.zip", scan_test::ZipBuilder().add_zeros("zeros.txt", 1024).bytes()},
    };
    ScanOptions options;
    for (const auto& [name, bytes] : files) {
        const std::string path = base + "/" + name;
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        REQUIRE(fd >= 0);
        REQUIRE(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
        ::close(fd);
        options.files.push_back(path);
    }
    const auto start = std::chrono::steady_clock::now();
    const auto r = run(options);
    const auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (const auto& f : options.files) ::unlink(f.c_str());
    ::rmdir(dir);
    INFO(r.out << r.err);
    CHECK(r.status == 2);  // the bomb
    CHECK_THAT(r.out, Catch::Contains("book.xlsx: xlsx, 1 sheet: CUSTOMER DATA (3 hits >= threshold 3)"));
    CHECK_THAT(r.out, Catch::Contains("list.csv.gz: gzip, 1 member: not customer data (2 hits < threshold 3)"));
    CHECK_THAT(r.out, Catch::Contains("bundle.zip: zip, 2 members (1 without text): CUSTOMER DATA (3 hits"));
    CHECK_THAT(r.out, Catch::Contains("bomb.zip: zip: UNREADABLE (zip bomb: member 'zeros.txt' expands more than 200-fold"));
    CHECK_THAT(r.err, Catch::Contains("bomb.zip") && Catch::Contains("zip bomb"));
    CHECK(took < 10.0);
}
