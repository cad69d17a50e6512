// The formats customers keep data in (issue 17, point 1): CSV/TSV, xlsx, docx, pptx, ods,
// odt, zip, gzip and mail, each built here at run time, extracted by the real libraries
// (libzip, expat, zlib, iconv) and scanned by the real detectors; and the container
// bounds: zip bombs, deep nesting and damaged files are unreadable with a reason, fast.
#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <string>

#include "custguard/scan/document.hpp"
#include "office_documents.hpp"
#include "test_support.hpp"

namespace {

using namespace custguard::scan;
using scan_test::ZipBuilder;

Scanner& scanner() {
    static Scanner s = *Scanner::create({});
    return s;
}

const std::string kMyNumber = scan_test::my_number_complete("12345678901");
const std::string kMyNumber2 = scan_test::my_number_complete("98765432109");

// A customer table: a name, a phone, a My Number and an e-mail per row, phones and
// addresses in quoted cells, numbers in cells next to each other.
std::string customer_csv(char sep) {
    const std::string s(1, sep);
    return "氏名" + s + "電話" + s + "個人番号" + s + "メール" + s + "住所\r\n" +
           "山田太郎" + s + "\"03-1234-5678\"" + s + kMyNumber + s + "taro@example.jp" + s +
           "\"〒100-0001 東京都千代田区千代田1-1, 101号\"\r\n" +
           "佐藤花子" + s + "=\"0312345679\"" + s + kMyNumber2 + s + "\"hanako@example.co.jp\"" + s +
           "\"530-0001 大阪府大阪市北区梅田1-2-3\"\r\n";
}

std::map<Detector, std::uint64_t> counts_of(const Findings& f) {
    std::map<Detector, std::uint64_t> out;
    for (auto d : all_detectors())
        if (f.count(d)) out[d] = f.count(d);
    return out;
}

struct Case {
    std::string name;
    std::string bytes;
    DocType type;
    std::map<Detector, std::uint64_t> counts;  // detectors not named must count 0 (keywords ignored)
    std::uint32_t pages = 0;
    std::uint32_t members = 0;
};

std::string eml_with_attachment() {
    const std::string body = scan_test::convert("お客様 山田太郎様の電話は 03-1234-5678 です。\r\n", "ISO-2022-JP");
    const std::string csv = scan_test::convert(customer_csv(','), "CP932");
    return "From: sales@example.jp\r\n"
           "To: boss@example.jp\r\n"
           "Subject: =?ISO-2022-JP?B?" + scan_test::base64(scan_test::convert("顧客リスト", "ISO-2022-JP")) + "?=\r\n"
           "Date: Sun, 6 Dec 2026 10:00:00 +0900\r\n"
           "MIME-Version: 1.0\r\n"
           "Content-Type: multipart/mixed; boundary=\"XyZ\"\r\n"
           "\r\n"
           "This is a multi-part message in MIME format.\r\n"
           "--XyZ\r\n"
           "Content-Type: text/plain; charset=ISO-2022-JP\r\n"
           "Content-Transfer-Encoding: 7bit\r\n"
           "\r\n" + body + "\r\n"
           "--XyZ\r\n"
           "Content-Type: text/csv; name=\"list.csv\"\r\n"
           "Content-Transfer-Encoding: base64\r\n"
           "Content-Disposition: attachment; filename=\"list.csv\"\r\n"
           "\r\n" + scan_test::base64(csv) + "\r\n"
           "--XyZ\r\n"
           "Content-Type: image/png\r\n"
           "Content-Transfer-Encoding: base64\r\n"
           "\r\n" + scan_test::base64("\x89PNG\r\n\x1a\n not text") + "\r\n"
           "--XyZ--\r\n";
}

std::string nested_zip(int levels, const std::string& inner) {
    std::string doc = inner;
    for (int i = 0; i < levels; ++i) doc = ZipBuilder().add("level" + std::to_string(i) + ".zip", doc).bytes();
    return doc;
}

}  // namespace

TEST_CASE("customer data is counted in CSV, Office files, archives and mail", "[scan][formats]") {
    const std::map<Detector, std::uint64_t> csv_counts = {
        {Detector::jp_phone, 2}, {Detector::my_number, 2}, {Detector::email, 2}, {Detector::jp_address, 2}};
    const std::string xlsx = scan_test::xlsx(
        "<si><t>山田太郎</t><rPh><t>ヤマダタロウ</t></rPh></si>"
        "<si><t>taro@example.jp</t></si>"
        "<si><r><t>03-1234-</t></r><r><t>5678</t></r></si>"
        "<si><t>never referenced: hanako@example.jp</t></si>",
        "<row r=\"1\"><c r=\"A1\" t=\"s\"><v>0</v></c><c r=\"B1\" t=\"s\"><v>2</v></c><c r=\"C1\"><v>" + kMyNumber +
            "</v></c><c r=\"D1\" t=\"s\"><v>1</v></c></row>"
            "<row r=\"2\"><c r=\"A2\" t=\"inlineStr\"><is><t>090-1234-5678</t></is></c><c r=\"B2\"><f>A1</f><v>" +
            kMyNumber2 + "</v></c></row>");
    const std::string docx = scan_test::docx(
        "<w:p><w:r><w:t>電話 03-</w:t></w:r><w:r><w:t>1234-5678</w:t></w:r></w:p>"
        "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>taro@example.jp</w:t></w:r></w:p></w:tc>"
        "<w:tc><w:p><w:r><w:t>" + kMyNumber + "</w:t></w:r></w:p></w:tc></w:tr></w:tbl>",
        "hanako@example.jp", "090-1111-2222");
    const std::string ods = scan_test::opendocument(
        "application/vnd.oasis.opendocument.spreadsheet",
        "<office:spreadsheet><table:table table:name=\"顧客\"><table:table-row>"
        "<table:table-cell><text:p>03-1234-5678</text:p></table:table-cell>"
        "<table:table-cell><text:p>" + kMyNumber + "</text:p></table:table-cell>"
        "<table:table-cell><text:p>taro@example.jp</text:p></table:table-cell>"
        "</table:table-row></table:table></office:spreadsheet>");
    const std::string odt = scan_test::opendocument(
        "application/vnd.oasis.opendocument.text",
        "<office:text><text:p>連絡先<text:s/>taro@example.jp</text:p><text:p>03-1234-5678</text:p></office:text>");

    const std::vector<Case> cases = {
        {"UTF-8 CSV, quoted cells, numbers side by side", customer_csv(','), DocType::csv, csv_counts, 1},
        {"CP932 CSV as Excel saves it", scan_test::convert(customer_csv(','), "CP932"), DocType::csv, csv_counts, 1},
        {"TSV", customer_csv('\t'), DocType::tsv, csv_counts, 1},
        {"UTF-16 TSV as Excel's \"Unicode text\" saves it", scan_test::convert(customer_csv('\t'), "UTF-16"), DocType::tsv,
         csv_counts, 1},
        {"xlsx: shared strings, rich text, inline strings, numbers",
         xlsx, DocType::xlsx, {{Detector::jp_phone, 2}, {Detector::my_number, 2}, {Detector::email, 1}}, 1},
        {"docx: body, table, header, footer", docx, DocType::docx,
         {{Detector::jp_phone, 2}, {Detector::my_number, 1}, {Detector::email, 2}}},
        {"pptx", scan_test::pptx({"taro@example.jp", "03-1234-5678"}), DocType::pptx,
         {{Detector::jp_phone, 1}, {Detector::email, 1}}, 2},
        {"ods", ods, DocType::ods, {{Detector::jp_phone, 1}, {Detector::my_number, 1}, {Detector::email, 1}}},
        {"odt", odt, DocType::odt, {{Detector::jp_phone, 1}, {Detector::email, 1}}},
        {"gzip'd CSV", scan_test::gzip(customer_csv(',')), DocType::gzip, csv_counts, 0, 1},
        {"zip of a CSV, an xlsx and a photo",
         ZipBuilder().add("list.csv", customer_csv(',')).add("book.xlsx", xlsx, false).add("photo.png", "\x89PNG...").bytes(),
         DocType::zip, {{Detector::jp_phone, 4}, {Detector::my_number, 4}, {Detector::email, 3}, {Detector::jp_address, 2}},
         0, 3},
        {"zip within zip within zip (depth 3)", nested_zip(3, customer_csv(',')), DocType::zip, csv_counts, 0, 1},
        {"mail: ISO-2022-JP body, base64 CP932 CSV attachment, a picture", eml_with_attachment(), DocType::eml,
         {{Detector::jp_phone, 3}, {Detector::my_number, 2}, {Detector::email, 2}, {Detector::jp_address, 2}}, 0, 2},
    };
    for (const auto& c : cases) {
        SECTION(c.name) {
            auto d = scan_document(scanner(), c.bytes);
            REQUIRE(d);
            INFO("reason: " << d->reason << "; found " << format_findings(d->findings));
            CHECK(d->readable);
            CHECK(to_string(d->doc_type) == to_string(c.type));
            auto got = counts_of(d->findings);
            got.erase(Detector::keywords);
            CHECK(got == c.counts);
            CHECK(d->pages == c.pages);
            CHECK(d->members == c.members);
        }
    }
}

TEST_CASE("hostile and damaged containers are unreadable with a reason, quickly", "[scan][formats]") {
    const std::string sheet_rows = "<row><c t=\"inlineStr\"><is><t>03-1234-5678</t></is></c></row>";
    ExtractOptions small_total;
    small_total.max_expanded_bytes = 1 << 20;
    struct Hostile {
        std::string name;
        std::function<std::string()> build;  // only the section's own input is built
        std::string reason;
        ExtractOptions options = {};
    };
    const std::vector<Hostile> cases = {
        {"one member of 1 GiB of zeros", [] { return ZipBuilder().add_zeros("zeros.txt", 1024).bytes(); },
         "zip bomb: member 'zeros.txt' expands more than 200-fold"},
        {"a member that declares 10 bytes and holds 1 GiB",
         [] { return ZipBuilder().add_zeros("small.txt", 1024, 10).bytes(); }, "member 'small.txt'"},
        {"members beyond the expanded-size bound",
         [] {
             // Noise does not compress, so only the total bound can stop it.
             std::string noise(400 * 1024, '\0');
             std::uint64_t x = 88172645463325252ull;
             for (auto& c : noise) x ^= x << 13, x ^= x >> 7, x ^= x << 17, c = static_cast<char>(x);
             ZipBuilder z;
             for (int i = 0; i < 4; ++i) z.add("noise" + std::to_string(i) + ".bin", noise, false);
             return z.bytes();
         },
         "zip bomb: expands beyond 1 MiB (max_expanded_bytes), at member 'noise2.bin'", small_total},
        {"10,001 members",
         [] {
             ZipBuilder z;
             for (int i = 0; i <= 10'000; ++i) z.add("f" + std::to_string(i) + ".txt", "", false);
             return z.bytes();
         },
         "zip bomb: more than 10000 members (max_members)"},
        {"gzip of 1 GiB of zeros", [] { return scan_test::gzip_zeros(1024); }, "gzip bomb: the gzip's content expands more than 200-fold"},
        {"zip nested four deep", [] { return nested_zip(4, "03-1234-5678\n"); }, "nested too deep"},
        {"truncated xlsx",
         [&] {
             const auto x = scan_test::xlsx("<si><t>x</t></si>", sheet_rows);
             return x.substr(0, x.size() / 2);
         },
         "damaged zip archive"},
        {"xlsx with malformed sheet XML", [] { return scan_test::xlsx("<si><t>x</t></si>", "<row><c><v>1</c></row>"); },
         "damaged XML in 'xl/worksheets/sheet1.xml' (line 1"},
        {"xlsx with a DTD",
         [] {
             return ZipBuilder()
                 .add("[Content_Types].xml", scan_test::kContentTypes)
                 .add("xl/workbook.xml", "<workbook/>")
                 .add("xl/sharedStrings.xml", "<?xml version=\"1.0\"?><!DOCTYPE sst [<!ENTITY a \"x\">]><sst><si><t>&a;</t></si></sst>")
                 .bytes();
         },
         "XML with a document type declaration in 'xl/sharedStrings.xml'"},
        {"xlsx with entity expansion (billion laughs)",
         [] {
             std::string dtd = "<!ENTITY e0 \"0123456789\">";
             for (int i = 1; i < 10; ++i)
                 dtd += "<!ENTITY e" + std::to_string(i) + " \"" + [&] {
                     std::string r;
                     for (int k = 0; k < 10; ++k) r += "&e" + std::to_string(i - 1) + ";";
                     return r;
                 }() + "\">";
             return ZipBuilder()
                 .add("[Content_Types].xml", scan_test::kContentTypes)
                 .add("xl/workbook.xml", "<workbook/>")
                 .add("xl/sharedStrings.xml", "<?xml version=\"1.0\"?><!DOCTYPE sst [" + dtd + "]><sst><si><t>&e9;</t></si></sst>")
                 .bytes();
         },
         "document type declaration in 'xl/sharedStrings.xml'"},
        {"zip with an encrypted member",
         [] {
             auto z = ZipBuilder().add("secret.csv", "a,b\n1,2\n", false).bytes();
             z[6] = 1;                         // general purpose flag: encrypted, in the local header ...
             z[z.find("PK\x01\x02") + 8] = 1;  // ... and in the central directory
             return z;
         },
         "encrypted member 'secret.csv'"},
        {"gzip cut short", [] { return scan_test::gzip(customer_csv(',')).substr(0, 40); }, "damaged gzip data"},
    };
    for (const auto& c : cases) {
        SECTION(c.name) {
            const auto bytes = c.build();
            const auto start = std::chrono::steady_clock::now();
            auto d = scan_document(scanner(), bytes, {}, c.options);
            const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            REQUIRE(d);
            INFO("reason: " << d->reason << " (" << seconds << " s)");
            CHECK_FALSE(d->readable);
            CHECK_THAT(d->reason, Catch::Contains(c.reason));
            CHECK(d->findings.total() == 0);
            CHECK(seconds < 5.0);
        }
    }
}

TEST_CASE("a container of pictures only has no text, a mail with only pictures attached has its body",
          "[scan][formats]") {
    auto pictures = scan_document(scanner(), ZipBuilder().add("a.png", "\x89PNG 1").add("b.jpg", "\xFF\xD8\xFF 2").bytes());
    REQUIRE(pictures);
    CHECK_FALSE(pictures->readable);
    CHECK(pictures->reason == "no member holds text (2 images or files of unknown format)");
    CHECK(pictures->members == 2);
    CHECK(pictures->members_without_text == 2);

    // A legacy .xls inside an archive is not silently skipped: it cannot be judged.
    auto legacy = scan_document(scanner(), ZipBuilder().add("old.xls", std::string("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", 8) + "x").bytes());
    REQUIRE(legacy);
    CHECK_FALSE(legacy->readable);
    CHECK_THAT(legacy->reason, Catch::StartsWith("member 'old.xls': legacy Office file"));
}

TEST_CASE("sniff tells Office files, OpenDocument, archives, mail and tables apart", "[scan][formats]") {
    CHECK(sniff(scan_test::xlsx("", "")) == DocType::xlsx);
    CHECK(sniff(scan_test::docx("", "", "")) == DocType::docx);
    CHECK(sniff(scan_test::pptx({"x"})) == DocType::pptx);
    CHECK(sniff(scan_test::opendocument("application/vnd.oasis.opendocument.text", "")) == DocType::odt);
    CHECK(sniff(ZipBuilder().add("a.txt", "x").bytes()) == DocType::zip);
    CHECK(sniff(scan_test::gzip("x")) == DocType::gzip);
    CHECK(sniff("From: a@example.jp\nSubject: hi\n\nbody\n") == DocType::eml);
    CHECK(sniff("a,b,c\n1,2,3\n") == DocType::csv);
    CHECK(sniff("a\tb\n1\t2\n") == DocType::tsv);
    // Prose with commas is text: the lines do not agree on a field count.
    CHECK(sniff("Dear customer, thank you.\nWe called 03-1234-5678, then wrote, twice.\n") == DocType::text);
    CHECK(sniff("Subject: one header line is a note, not a mail\n\ntext\n") == DocType::text);
}

TEST_CASE("a text file shaped like a mail still may not hide printer commands", "[scan][formats]") {
    auto d = scan_document(scanner(), "From: a@example.jp\nSubject: x\n\n\x1B" "E\x1B&l0O 03-1234-5678\n");
    REQUIRE(d);
    CHECK_FALSE(d->readable);
    CHECK_THAT(d->reason, Catch::Contains("printer control codes"));
    // ISO-2022-JP shifts are not printer commands.
    auto jis = scan_document(scanner(), "From: a@example.jp\nSubject: x\n\n" +
                                            scan_test::convert("山田 03-1234-5678\n", "ISO-2022-JP"));
    REQUIRE(jis);
    CHECK(jis->readable);
    CHECK(jis->findings.count(Detector::jp_phone) == 1);
}

// Regression guard of the CSV conversion: read as plain text, a comma glued to the next
// cell's digits makes both numbers look like parts of one identifier.
TEST_CASE("numbers in neighbouring CSV cells are counted, which plain text reading misses", "[scan][formats]") {
    const std::string csv = "山田,0312345678," + kMyNumber + ",x\n佐藤,0312345679," + kMyNumber2 + ",y\n";
    auto as_text = scanner().scan(csv);
    REQUIRE(as_text);
    CHECK(as_text->count(Detector::jp_phone) + as_text->count(Detector::my_number) < 4);
    auto d = scan_document(scanner(), csv);
    REQUIRE(d);
    CHECK(d->doc_type == DocType::csv);
    CHECK(d->findings.count(Detector::jp_phone) == 2);
    CHECK(d->findings.count(Detector::my_number) == 2);
}
