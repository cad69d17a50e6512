#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>
#include <string>

#include "custguard/scan/document.hpp"
#include "test_support.hpp"

using namespace custguard::scan;

namespace {

std::string data_path(const std::string& name) { return std::string(CUSTGUARD_SCAN_DATA) + "/" + name; }

Scanner& default_scanner() {
    static auto scanner = Scanner::create({});
    REQUIRE(scanner);
    return *scanner;
}

using scan_test::TempFile;

std::string mixed_text(std::size_t lines) {
    std::mt19937_64 rng(99);
    std::string text;
    for (std::size_t i = 0; i < lines; ++i) {
        text += "氏名：山田" + std::to_string(i) + "　住所：〒100-" + scan_test::random_digits(rng, 4) + " 東京都\n";
        text += "card " + scan_test::luhn_complete("4" + scan_test::random_digits(rng, 14)) + " mail u" +
                std::to_string(i) + "@example.jp 携帯 ０９０ー" + scan_test::full_width(scan_test::random_digits(rng, 4)) +
                "ー１２３４\n";
    }
    return text;
}

}  // namespace

TEST_CASE("feeding pieces of any size gives the findings of one scan", "[scan][stream]") {
    const std::string text = mixed_text(20000);  // ~2.5 MB: many chunks
    auto& scanner = default_scanner();
    const auto whole = scanner.scan(text);
    REQUIRE(whole);
    CHECK(whole->count(Detector::credit_card) == 20000);
    CHECK(whole->count(Detector::jp_address) == 20000);
    CHECK(whole->count(Detector::jp_phone) == 20000);
    CHECK(whole->count(Detector::keywords) == 20000);

    std::mt19937_64 rng(5);
    for (std::size_t max_piece : {1ul, 7ul, 4096ul, 300000ul, 3000000ul}) {
        INFO("pieces up to " << max_piece);
        scanner.begin();
        std::size_t pos = 0;
        while (pos < text.size()) {
            const std::size_t n = std::min(text.size() - pos, 1 + rng() % max_piece);
            scanner.feed(std::string_view(text).substr(pos, n));
            pos += n;
        }
        const auto pieces = scanner.finish();
        REQUIRE(pieces);
        CHECK(*pieces == *whole);
    }
}

TEST_CASE("scan_file streams UTF-8 and falls back for other encodings", "[scan][stream]") {
    auto& scanner = default_scanner();
    const std::string text = mixed_text(12000);  // > 1 MiB: several read blocks
    const auto expected = scanner.scan(text);
    REQUIRE(expected);

    TempFile utf8(text + "\f");
    auto d = scan_file(scanner, utf8.path);
    REQUIRE(d);
    CHECK(d->readable);
    CHECK(d->encoding == "utf-8");
    CHECK(d->doc_type == DocType::text);
    CHECK(d->pages == 1);
    CHECK(d->findings == *expected);

    // Shift_JIS bytes after the first MiB: the streamed attempt is abandoned, the file decoded.
    std::ifstream sjis_in(data_path("customer_sjis.txt"), std::ios::binary);
    std::stringstream sjis;
    sjis << sjis_in.rdbuf();
    const std::string ascii_head(1 << 21, 'a');
    TempFile late_sjis(ascii_head + "\n" + sjis.str());
    auto late = scan_file(scanner, late_sjis.path);
    REQUIRE(late);
    CHECK(late->encoding == "cp932");
    auto sjis_doc = scan_file(scanner, data_path("customer_sjis.txt"));
    REQUIRE(sjis_doc);
    CHECK(late->findings == sjis_doc->findings);
    CHECK(late->findings.count(Detector::credit_card) == 2);

    // Every fixture gives the same result through scan_file and scan_document.
    for (const char* name : {"customer.pdf", "customer.ps", "customer_eucjp.txt", "customer_utf16.txt", "image.png",
                             "clean.txt", "image_only.pdf"}) {
        INFO(name);
        std::ifstream in(data_path(name), std::ios::binary);
        std::stringstream bytes;
        bytes << in.rdbuf();
        auto a = scan_file(scanner, data_path(name));
        auto b = scan_document(scanner, bytes.str());
        REQUIRE(a);
        REQUIRE(b);
        CHECK(a->findings == b->findings);
        CHECK(a->readable == b->readable);
        CHECK(a->doc_type == b->doc_type);
        CHECK(a->pages == b->pages);
    }

    auto missing = scan_file(scanner, "/nonexistent/x.txt");
    REQUIRE_FALSE(missing);
    CHECK_THAT(missing.error(), Catch::Contains("/nonexistent/x.txt"));
}

TEST_CASE("scan_file reads standard input, also when it must fall back", "[scan][stream]") {
    // The CUPS backend gets the document on stdin when cupsd passes no file name.
    auto& scanner = default_scanner();
    std::ifstream sjis_in(data_path("customer_sjis.txt"), std::ios::binary);
    std::stringstream sjis;
    sjis << sjis_in.rdbuf();
    const std::string utf8 = mixed_text(100);
    const std::string late_sjis = std::string((1 << 20) + 5, 'b') + "\n" + sjis.str();  // past the first block

    for (const std::string* input : {&utf8, &late_sjis}) {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        const int saved = ::dup(0);
        REQUIRE(::dup2(fds[0], 0) == 0);
        ::close(fds[0]);
        std::thread writer([&, fd = fds[1]] {
            std::size_t done = 0;
            while (done < input->size()) {
                const auto n = ::write(fd, input->data() + done, input->size() - done);
                if (n <= 0) break;
                done += static_cast<std::size_t>(n);
            }
            ::close(fd);
        });
        auto d = scan_file(scanner, "-");
        writer.join();
        ::dup2(saved, 0);
        ::close(saved);
        REQUIRE(d);
        CHECK(d->readable);
        if (input == &utf8) {
            CHECK(d->encoding == "utf-8");
            CHECK(d->findings == *scanner.scan(utf8));
        } else {
            CHECK(d->encoding == "cp932");
            CHECK(d->findings.count(Detector::credit_card) == 2);
            CHECK(d->findings.count(Detector::my_number) == 2);
        }
    }
}
