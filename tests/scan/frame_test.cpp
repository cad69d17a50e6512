// The reader's result framing (scan/src/frame.hpp): what a compromised reader could send
// must never decode into a clean, readable scan.
#include <catch2/catch.hpp>

#include <string>

#include "frame.hpp"

namespace {

namespace scan = custguard::scan;
namespace frame = custguard::scan::frame;

scan::DocumentScan sample() {
    scan::DocumentScan d;
    d.doc_type = scan::DocType::pdf;
    d.pages = 3;
    d.pages_without_text = 1;
    d.readable = true;
    d.encoding = "utf-8";
    d.text_bytes = 1234;
    d.findings.count(scan::Detector::email) = 2;
    d.findings.count(scan::Detector::my_number) = 1;
    d.findings.count(scan::Detector::sensitive) = 4;
    d.findings.edm = {{"crm", 1001}, {"members", 7}};
    d.findings.persons = 1008;
    return d;
}

std::string record(std::uint8_t tag, const std::string& value) {
    std::string out(1, static_cast<char>(tag));
    for (int i = 0; i < 4; ++i) out += static_cast<char>((value.size() >> (8 * i)) & 0xFF);
    return out + value;
}

}  // namespace

TEST_CASE("a result survives the framing unchanged", "[scan][frame]") {
    auto decoded = frame::decode(frame::encode(sample()));
    REQUIRE(decoded);
    REQUIRE(*decoded);
    const auto& d = **decoded;
    CHECK(d.doc_type == scan::DocType::pdf);
    CHECK(d.pages == 3);
    CHECK(d.pages_without_text == 1);
    CHECK(d.readable);
    CHECK(d.encoding == "utf-8");
    CHECK(d.text_bytes == 1234);
    CHECK(d.findings == sample().findings);

    auto error = frame::decode(frame::encode(frame::Result(tl::unexpect, "Ghostscript ('gs') not found")));
    REQUIRE(error);
    REQUIRE_FALSE(*error);
    CHECK(error->error() == "Ghostscript ('gs') not found");
}

TEST_CASE("a container's type and members survive the framing, a document without them reads 0", "[scan][frame][formats]") {
    auto zip = sample();
    zip.doc_type = scan::DocType::eml;  // the last type: the frame carries all of them
    zip.members = 70'000;
    zip.members_without_text = 3;
    auto decoded = frame::decode(frame::encode(zip));
    REQUIRE(decoded);
    REQUIRE(*decoded);
    CHECK((*decoded)->doc_type == scan::DocType::eml);
    CHECK((*decoded)->members == 70'000);
    CHECK((*decoded)->members_without_text == 3);

    auto plain = frame::decode(frame::encode(sample()));
    REQUIRE(plain);
    REQUIRE(*plain);
    CHECK((*plain)->members == 0);
}

TEST_CASE("malformed results are refused", "[scan][frame]") {
    const std::string good = frame::encode(sample());
    const std::string end = record(0xFF, "");
    auto plain = sample();
    plain.findings.edm.clear();
    plain.findings.persons = 0;
    const std::string without_edm = frame::encode(plain);
    struct Case {
        const char* what;
        std::string bytes;
        const char* reason;
    };
    const Case cases[] = {
        {"empty", "", "no result header"},
        {"other version", std::string("CGX\x03", 4) + end, "format version 3"},
        {"cut short", good.substr(0, good.size() - 3), "truncated"},
        {"no end record", good.substr(0, good.size() - 5), "no end record"},
        {"data after the end", good + "x", "after the end"},
        {"record twice", good.substr(0, good.size() - 5) + record(2, std::string(4, '\0')) + end, "twice"},
        {"unknown record", std::string("CGX\x02", 4) + record(77, "") + end, "unknown record 77"},
        {"missing records", std::string("CGX\x02", 4) + record(4, std::string(1, '\1')) + end, "missing"},
        {"bad members", std::string("CGX\x02", 4) + record(10, std::string(2, '\1')) + end, "bad members"},
        {"unknown document type", std::string("CGX\x02", 4) + record(1, std::string(1, '\x3F')) + end, "bad doc_type"},
        {"bad readable flag", std::string("CGX\x02", 4) + record(4, std::string(1, '\7')) + end, "bad readable"},
        {"invalid UTF-8 reason", std::string("CGX\x02", 4) + record(5, "\xff\xfe") + end, "bad reason"},
        {"oversized reason", std::string("CGX\x02", 4) + record(5, std::string(frame::max_text_field + 1, 'a')) + end,
         "bad reason"},
        {"huge length", std::string("CGX\x02", 4) + std::string("\x05\xff\xff\xff\x7f", 5), "truncated record"},
        {"too large", std::string("CGX\x02", 4) + std::string(frame::max_frame_bytes, 'a'), "larger than allowed"},
        {"edm entry with an empty name", without_edm.substr(0, without_edm.size() - 5) + record(12, std::string("\x01\x00", 2) + std::string(8, '\0')) + end, "bad edm"},
        {"error mixed with a result", std::string("CGX\x02", 4) + record(9, "oops") + record(4, std::string(1, '\1')) + end,
         "mixed"},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        auto r = frame::decode(c.bytes);
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error(), Catch::Contains(c.reason));
    }
}
