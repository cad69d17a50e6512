// The two scan modes (ScanMode): a print job with NULs or control codes stays unreadable
// (a printer acts on them), a file on disk is read past them. Regression (issue 17, the
// watcher's hostile routes): one NUL in front of a CSV, or the NUL gap an ftruncate and a
// pwrite at an offset leave, hid a whole customer list from the watcher and discover.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <iconv.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "cli/scan_command.hpp"
#include "custguard/scan/document.hpp"
#include "custguard/scan/extract.hpp"
#include "custguard/scan/sandbox.hpp"
#include "test_support.hpp"

using namespace custguard::scan;

namespace {

constexpr int kRows = 5;

// kRows customers: a Japanese name, an e-mail address and a card number each.
std::string customer_csv() {
    std::string csv = "氏名,メール,カード\n";
    for (int i = 0; i < kRows; ++i)
        csv += "山田太郎" + std::to_string(i) + ",taro" + std::to_string(i) + "@example.co.jp," +
               scan_test::luhn_complete("41111111111111" + std::to_string(i)) + "\n";
    return csv;
}

std::string convert(const char* to, const std::string& utf8) {
    iconv_t cd = ::iconv_open(to, "UTF-8");
    REQUIRE(cd != reinterpret_cast<iconv_t>(-1));
    std::string out(utf8.size() * 4 + 16, '\0');
    char* in = const_cast<char*>(utf8.data());
    std::size_t in_left = utf8.size(), out_left = out.size();
    char* dst = out.data();
    const auto rc = ::iconv(cd, &in, &in_left, &dst, &out_left);
    ::iconv_close(cd);
    REQUIRE(rc != static_cast<std::size_t>(-1));
    out.resize(out.size() - out_left);
    return out;
}

// `s` with a NUL after every `every` bytes.
std::string sprinkled(const std::string& s, std::size_t every) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        out += s[i];
        if ((i + 1) % every == 0) out += '\0';
    }
    return out;
}

// Deterministic binary junk: every byte value, control codes and invalid UTF-8 included.
std::string junk(std::size_t n, std::uint32_t seed) {
    std::string out(n, '\0');
    for (auto& c : out) {
        seed = seed * 1664525u + 1013904223u;
        c = static_cast<char>(seed >> 24);
    }
    return out;
}

struct Case {
    std::string name;
    std::string bytes;
    std::string encoding;  // how the on-disk mode read it (a prefix)
    bool names = true;     // the Japanese names survive (the e-mails and cards always must)
};

std::vector<Case> cases() {
    const std::string csv = customer_csv();
    const std::string notes = std::string("meeting at ten, nothing else\n") + std::string(1400, 'x') + "\n";
    std::string gap = notes;  // ftruncate to 64 KiB, pwrite at 32 KiB
    gap.resize(32768, '\0');
    gap += csv;
    gap.resize(65536, '\0');
    std::string sparse(std::size_t{8} << 20, '\0');  // a sparse 8 MiB file with the list in it
    sparse.replace(std::size_t{5} << 20, csv.size(), csv);
    return {
        {"one NUL in front of a CSV", std::string(1, '\0') + csv, "utf-8, controls as separators"},
        {"ftruncate and pwrite at an offset (NUL gap)", gap, "utf-8, controls as separators"},
        {"a customer list behind 64 KiB of NULs", std::string(65536, '\0') + csv, "utf-8, controls as separators"},
        {"a sparse 8 MiB file with the list in the middle", sparse, "utf-8, controls as separators"},
        {"UTF-16LE without BOM (NULs interleaved)", convert("UTF-16LE", csv), "utf-16le without BOM"},
        {"UTF-16BE without BOM", convert("UTF-16BE", csv), "utf-16be without BOM"},
        {"a NUL every 3 bytes", sprinkled(csv, 3), "utf-8"},
        {"two NULs every 5 bytes", sprinkled(sprinkled(csv, 5), 6), "utf-8"},
        {"control codes between the rows", "\x1B" "E" + csv.substr(0, 40) + "\x07\x08" + csv.substr(40), "utf-8, controls as separators"},
        {"a CP932 CSV behind a NUL", std::string(1, '\0') + convert("CP932", csv), "cp932, controls as separators"},
        {"binary junk with a CSV embedded", junk(4096, 7) + "\n" + csv + junk(4096, 11), "text runs in binary", false},
    };
}

DocumentScan scan_bytes(const std::string& bytes, ScanMode mode) {
    static auto scanner = Scanner::create({});
    REQUIRE(scanner);
    ExtractOptions options;
    options.mode = mode;
    auto d = scan_document(*scanner, bytes, {}, options);
    REQUIRE(d);
    return *d;
}

}  // namespace

TEST_CASE("files on disk are read past NULs and control codes, while print jobs with them stay unreadable",
          "[scan][disk-mode]") {
    for (const auto& c : cases()) {
        INFO(c.name);
        const auto print = scan_bytes(c.bytes, ScanMode::print_job);
        CHECK_FALSE(print.readable);
        CHECK_FALSE(print.reason.empty());

        const auto disk = scan_bytes(c.bytes, ScanMode::file_on_disk);
        REQUIRE(disk.readable);
        CHECK_THAT(disk.encoding, Catch::StartsWith(c.encoding));
        CHECK(disk.findings.count(Detector::email) == kRows);
        CHECK(disk.findings.count(Detector::credit_card) == kRows);

        ExtractOptions options;
        options.mode = ScanMode::file_on_disk;
        auto text = extract(c.bytes, {}, options);
        REQUIRE(text);
        CHECK(text->text.find('\0') == std::string::npos);
        if (c.names) CHECK(text->text.find("山田太郎4") != std::string::npos);
        // Bounded: decoding makes at most 3 bytes of UTF-8 of one (CP932 half-width kana).
        CHECK(text->text.size() <= 3 * c.bytes.size());

        // The same through the streaming file path the watcher's reader takes.
        scan_test::TempFile f(c.bytes);
        static auto scanner = Scanner::create({});
        auto streamed = scan_file(*scanner, f.path, {}, options);
        REQUIRE(streamed);
        CHECK(streamed->readable);
        CHECK(streamed->findings.count(Detector::email) == kRows);
        ExtractOptions print_options;
        auto streamed_print = scan_file(*scanner, f.path, {}, print_options);
        REQUIRE(streamed_print);
        CHECK_FALSE(streamed_print->readable);
    }
}

TEST_CASE("on disk, NULs separate: numbers split by a long NUL run are not joined", "[scan][disk-mode]") {
    // Four NULs and more are a gap (padding, a sparse hole), not an interleave: what stands
    // on either side of one is not read as one value.
    const std::string card = scan_test::luhn_complete("411111111111111");
    const std::string split = "card " + card.substr(0, 8) + std::string(4, '\0') + card.substr(8) + "\n";
    CHECK(scan_bytes(split, ScanMode::file_on_disk).findings.count(Detector::credit_card) == 0);
    const std::string joined = "card " + card.substr(0, 8) + std::string(3, '\0') + card.substr(8) + "\n";
    CHECK(scan_bytes(joined, ScanMode::file_on_disk).findings.count(Detector::credit_card) == 1);
}

TEST_CASE("a file of NULs only is readable on disk, with no text", "[scan][disk-mode]") {
    const auto d = scan_bytes(std::string(std::size_t{4} << 20, '\0'), ScanMode::file_on_disk);
    CHECK(d.readable);
    CHECK(d.findings.total() == 0);
}

TEST_CASE("the sandboxed reader gets the mode with its request", "[scan][disk-mode][sandbox]") {
    const auto bytes = std::string(1, '\0') + customer_csv();
    scan_test::TempFile f(bytes);
    const auto config = ScannerConfig::from_names({}, {}, 40);
    REQUIRE(config);
    SandboxOptions sandbox;
    auto print = scan_file_sandboxed(*config, f.path, "", sandbox);
    REQUIRE(print);
    CHECK_FALSE(print->readable);
    sandbox.extract.mode = ScanMode::file_on_disk;
    auto disk = scan_file_sandboxed(*config, f.path, "", sandbox);
    REQUIRE(disk);
    CHECK(disk->readable);
    CHECK(disk->findings.count(Detector::email) == kRows);
    // And the batch reader the watcher and discover use, which must not mix the modes.
    SandboxedReader reader;
    const int fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    auto batch_disk = reader.scan(*config, fd, "", sandbox);
    sandbox.extract.mode = ScanMode::print_job;
    auto batch_print = reader.scan(*config, fd, "", sandbox);
    ::close(fd);
    REQUIRE(batch_disk);
    REQUIRE(batch_print);
    CHECK(batch_disk->readable);
    CHECK_FALSE(batch_print->readable);
}

TEST_CASE("custguardctl scan --mode disk says how it read each file", "[scan][cli][disk-mode]") {
    scan_test::TempFile nul(std::string(1, '\0') + customer_csv());
    scan_test::TempFile utf16(convert("UTF-16LE", customer_csv()));
    custguard::cli::ScanOptions options;
    options.files = {nul.path, utf16.path};
    options.mode = "disk";
    std::ostringstream out, err;
    CHECK(custguard::cli::run_scan(options, out, err) == 1);
    CHECK(err.str().empty());
    CHECK_THAT(out.str(), Catch::Contains(nul.path + ": csv (utf-8, controls as separators), 1 page: CUSTOMER DATA"));
    CHECK_THAT(out.str(), Catch::Contains(utf16.path + ": csv (utf-16le without BOM), 1 page: CUSTOMER DATA"));

    options.mode = "print";
    std::ostringstream out2, err2;
    CHECK(custguard::cli::run_scan(options, out2, err2) == 2);
    CHECK_THAT(out2.str(), Catch::Contains("UNREADABLE"));
}
