#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "custguard/scan/extract.hpp"
#include "custguard/scan/scanner.hpp"

using namespace custguard::scan;

namespace {

std::string data_path(const std::string& name) { return std::string(CUSTGUARD_SCAN_DATA) + "/" + name; }

std::string read_data(const std::string& name) {
    std::ifstream in(data_path(name), std::ios::binary);
    REQUIRE(in);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

Findings scan_doc(const Extracted& doc) {
    auto scanner = Scanner::create({});
    REQUIRE(scanner);
    auto f = scanner->scan(doc.text);
    REQUIRE(f);
    return *f;
}

Extracted extract_data(const std::string& name, const ExtractOptions& options = {}) {
    auto doc = extract_file(data_path(name), {}, options);
    INFO(name);
    REQUIRE(doc);
    return *doc;
}

}  // namespace

TEST_CASE("PDF text is extracted and scanned", "[scan][extract][pdf]") {
    const auto doc = extract_data("customer.pdf");
    CHECK(doc.doc_type == DocType::pdf);
    CHECK(doc.readable);
    CHECK(doc.pages == 2);
    CHECK(doc.pages_without_text == 0);
    CHECK_THAT(doc.text, Catch::Contains("顧客名簿"));
    const auto f = scan_doc(doc);
    CHECK(f.count(Detector::credit_card) == 2);
    CHECK(f.count(Detector::my_number) == 2);
    CHECK(f.count(Detector::email) == 2);
    CHECK(f.count(Detector::jp_phone) == 3);
    CHECK(f.count(Detector::jp_address) == 1);
    CHECK(f.count(Detector::keywords) >= 2);

    const auto gs_pdf = extract_data("gs_customer.pdf");  // produced by Ghostscript's pdfwrite
    CHECK(gs_pdf.readable);
    const auto g = scan_doc(gs_pdf);
    CHECK(g.count(Detector::credit_card) == 2);
    CHECK(g.count(Detector::my_number) == 1);
    CHECK(g.count(Detector::email) == 1);
    CHECK(g.count(Detector::jp_phone) == 1);

    const auto clean = extract_data("clean.pdf");
    CHECK(clean.readable);
    CHECK_THAT(clean.text, Catch::Contains("Invoice"));
    CHECK(scan_doc(clean).total() == 0);

    const auto twenty = extract_data("twenty_pages.pdf");
    CHECK(twenty.pages == 20);
    CHECK(scan_doc(twenty).count(Detector::credit_card) == 100);
}

TEST_CASE("PDFs without text are unreadable, not errors", "[scan][extract][pdf]") {
    const auto image = extract_data("image_only.pdf");
    CHECK(image.doc_type == DocType::pdf);
    CHECK_FALSE(image.readable);
    CHECK(image.pages == 1);
    CHECK_THAT(image.reason, Catch::Contains("no text"));

    auto bytes = read_data("customer.pdf");
    auto damaged = extract(bytes.substr(0, 200), "application/pdf");
    REQUIRE(damaged);
    CHECK_FALSE(damaged->readable);
    CHECK(damaged->doc_type == DocType::pdf);

    auto garbage = extract("%PDF-1.7\n" + std::string(5000, '\x07'));
    REQUIRE(garbage);
    CHECK_FALSE(garbage->readable);
}

TEST_CASE("PostScript is extracted with Ghostscript", "[scan][extract][postscript]") {
    const auto doc = extract_data("customer.ps");
    CHECK(doc.doc_type == DocType::postscript);
    REQUIRE(doc.readable);
    CHECK(doc.pages == 2);
    const auto f = scan_doc(doc);
    CHECK(f.count(Detector::credit_card) == 2);
    CHECK(f.count(Detector::my_number) == 1);
    CHECK(f.count(Detector::email) == 1);
    CHECK(f.count(Detector::jp_phone) == 1);

    const auto clean = extract_data("clean.ps");
    CHECK(clean.readable);
    CHECK(scan_doc(clean).total() == 0);

    const auto image = extract_data("image_only.ps");
    CHECK_FALSE(image.readable);
    CHECK(image.doc_type == DocType::postscript);

    // PJL job header in front of the PostScript.
    auto pjl = extract("\x1B%-12345X@PJL JOB\r\n@PJL ENTER LANGUAGE=POSTSCRIPT\r\n" + read_data("customer.ps"));
    REQUIRE(pjl);
    CHECK(pjl->readable);
    CHECK(scan_doc(*pjl).count(Detector::credit_card) == 2);
}

TEST_CASE("Ghostscript is bounded and sandboxed", "[scan][extract][postscript]") {
    ExtractOptions options;
    options.timeout = std::chrono::milliseconds(700);
    const auto start = std::chrono::steady_clock::now();
    auto loop = extract("%!PS\n{ 1 pop } loop\n", {}, options);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    REQUIRE(loop);
    CHECK_FALSE(loop->readable);
    CHECK_THAT(loop->reason, Catch::Contains("did not finish"));
    CHECK(elapsed < std::chrono::seconds(5));

    // -dSAFER: no file access from the job.
    auto peek = extract("%!PS\n/Helvetica findfont 12 scalefont setfont 72 72 moveto\n"
                        "(/etc/passwd) (r) file 100 string readstring pop show showpage\n");
    REQUIRE(peek);
    CHECK(peek->text.find("root") == std::string::npos);

    // PostScript errors: no text, unreadable with the reason.
    auto broken = extract("%!PS\nthis-is-not-an-operator\n");
    REQUIRE(broken);
    CHECK_FALSE(broken->readable);

    ExtractOptions missing;
    missing.ghostscript = "/nonexistent/gs";
    auto err = extract(read_data("customer.ps"), {}, missing);
    REQUIRE_FALSE(err);
    CHECK_THAT(err.error(), Catch::Contains("Ghostscript"));

    ExtractOptions disabled;
    disabled.ghostscript.clear();
    auto off = extract(read_data("customer.ps"), {}, disabled);
    REQUIRE(off);
    CHECK_FALSE(off->readable);
}

TEST_CASE("plain text in Japanese encodings", "[scan][extract][text]") {
    const auto utf8 = extract_data("customer_utf8.txt");
    REQUIRE(utf8.readable);
    CHECK(utf8.encoding == "utf-8");
    CHECK(utf8.doc_type == DocType::text);
    const auto expected = scan_doc(utf8);
    CHECK(expected.count(Detector::credit_card) == 2);
    CHECK(expected.count(Detector::my_number) == 2);
    CHECK(expected.count(Detector::jp_address) == 1);
    for (auto [name, encoding] : {std::pair{"customer_sjis.txt", "cp932"}, std::pair{"customer_eucjp.txt", "euc-jp"},
                                  std::pair{"customer_utf16.txt", "utf-16"}}) {
        INFO(name);
        const auto doc = extract_data(name);
        REQUIRE(doc.readable);
        CHECK(doc.encoding == encoding);
        CHECK(doc.text == utf8.text);
        CHECK(scan_doc(doc) == expected);
    }
    const auto clean = extract_data("clean.txt");
    CHECK(scan_doc(clean).total() == 0);

    auto paged = extract("page one\fpage two\fpage three\n", "text/plain");
    REQUIRE(paged);
    CHECK(paged->pages == 3);
}

TEST_CASE("images and unknown formats are unreadable", "[scan][extract]") {
    const auto png = extract_data("image.png");
    CHECK(png.doc_type == DocType::image);
    CHECK_FALSE(png.readable);
    CHECK_FALSE(png.reason.empty());

    auto raster = extract("RaS2" + std::string(100, '\0'));
    REQUIRE(raster);
    CHECK(raster->doc_type == DocType::image);

    auto jpeg_hint = extract("whatever bytes", "image/jpeg");
    REQUIRE(jpeg_hint);
    CHECK_FALSE(jpeg_hint->readable);

    std::string binary;
    for (int i = 0; i < 4096; ++i) binary += static_cast<char>((i * 37) & 0xFF);
    auto unknown = extract(binary);
    REQUIRE(unknown);
    CHECK(unknown->doc_type == DocType::unknown);
    CHECK_FALSE(unknown->readable);

    auto pcl = extract("\x1B" "E\x1B&l0O some PCL");
    REQUIRE(pcl);
    CHECK_FALSE(pcl->readable);

    auto missing = extract_file(data_path("does-not-exist.pdf"));
    REQUIRE_FALSE(missing);
    CHECK_THAT(missing.error(), Catch::Contains("does-not-exist.pdf"));
}

TEST_CASE("Ghostscript runs as the configured unprivileged user", "[scan][extract][postscript]") {
    if (::geteuid() != 0) {
        WARN("skipped: switching the Ghostscript user needs root");
        return;
    }
    // A stand-in for gs that prints who it runs as; it gets the real arguments and stdin.
    char dir_template[] = "/tmp/custguard-fake-gs-XXXXXX";
    REQUIRE(::mkdtemp(dir_template));
    const std::string dir = dir_template;
    const std::string fake = dir + "/gs";
    {
        std::ofstream script(fake);
        script << "#!/bin/sh\ncat >/dev/null\necho \"uid=$(id -u) gid=$(id -g) groups=$(id -G)\"\n";
    }
    ::chmod(fake.c_str(), 0755);
    ::chmod(dir.c_str(), 0755);
    ExtractOptions options;
    options.ghostscript = fake;
    options.ghostscript_uid = 65534;
    options.ghostscript_gid = 65534;
    auto doc = extract("%!PS\n", {}, options);
    std::remove(fake.c_str());
    ::rmdir(dir.c_str());
    REQUIRE(doc);
    REQUIRE(doc->readable);
    CHECK_THAT(doc->text, Catch::Contains("uid=65534 gid=65534 groups=65534"));
}
