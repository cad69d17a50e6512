// Issue 15 point 3 end to end: documents that the printer would print differently from
// what the gate reads go through lp → scratch cupsd → custguard backend → custguardd, and
// are held by [print] unreadable = "hold" (or as customer data) instead of printing.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "pdf_builder.hpp"    // tests/scan
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

const std::string kCard = scan_test::luhn_complete("453201511283366");

std::string grouped(const std::string& digits, const std::string& sep) {
    std::string out;
    for (std::size_t i = 0; i < digits.size(); i += 4) out += (i ? sep : "") + digits.substr(i, 4);
    return out;
}

std::string ps_show(const std::string& body) {
    return "%!PS-Adobe-3.0\n/Helvetica findfont 12 scalefont setfont 72 700 moveto\n" + body + "\nshowpage\n%%EOF\n";
}

std::string pdf_text(const std::vector<std::string>& lines) {
    std::string c = "BT /F2 11 Tf 14 TL 60 780 Td\n";
    for (const auto& l : lines) c += "(" + l + ") Tj T*\n";
    return scan_test::one_page_pdf(scan_test::kHelvetica, c + "ET\n");
}

struct Case {
    const char* name;
    std::string bytes;
    const char* reason;  // in the job's record
};

}  // namespace

TEST_CASE("documents the printer would print differently are held, not printed", "[print][host][print-content]") {
    PrintFixture f(k_policy);
    const std::string cards = "Card " + kCard + "\nCard " + kCard + "\nCard " + kCard + "\n";
    const std::string lying_cmap =
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def /CMapName /Lie def /CMapType 2 def\n"
        "1 begincodespacerange <00> <FF> endcodespacerange\n1 beginbfrange <30> <39> <0061> endbfrange\n"
        "endcmap CMapName currentdict /CMap defineresource pop end end\n";
    scan_test::PdfBuilder lying;
    const int cmap = lying.add_stream(lying_cmap);
    std::string shown;
    for (int i = 0; i < 3; ++i) shown += "(" + grouped(kCard, " ") + ") Tj T*\n";
    const std::string lying_pdf = scan_test::one_page_pdf(
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding /ToUnicode " +
            std::to_string(cmap) + " 0 R >>",
        "BT /F1 12 Tf 14 TL 60 700 Td " + shown + "ET\nBT /F2 11 Tf 60 780 Td (Invoice) Tj ET\n", "", &lying);

    std::string ps_cards;
    for (int i = 0; i < 3; ++i) ps_cards += "72 " + std::to_string(600 - 20 * i) + " moveto (Card " + kCard + ") show\n";
    const std::vector<Case> cases = {
        {"PostScript/PDF polyglot", ps_show(ps_cards) + pdf_text({"Invoice 2024"}), "in front of the %PDF- header"},
        {"PostScript that shows txtwrite a decoy",
         ps_show("currentpagedevice /OutputDevice get /txtwrite eq { (Invoice 2024) show } { " + ps_cards + " } ifelse"),
         "depends on the output device"},
        {"PCL cursor moves between digits",
         "\x1B" "E" + grouped(kCard, "\x1B*p+40X") + "\r\n" + grouped(kCard, "\x1B*p+40X") + "\x1B" "E",
         "PCL page description"},
        {"text with ESC sequences between digits", "Cards\n" + grouped(kCard, "\x1B[1C") + "\n", "printer control codes"},
        {"PDF whose ToUnicode maps digits to letters", lying_pdf, "ToUnicode"},
    };
    int printed = 0;
    for (const auto& c : cases) {
        INFO(c.name);
        const int id = f.lp("office", f.document("doc.bin", c.bytes), c.name, accounts().other);
        const auto s = f.wait_settled(id);
        INFO(s.message);
        CHECK(s.state == k_held);
        REQUIRE(f.wait_records(id, 1));
        const auto recs = f.print_records(id);
        REQUIRE(recs.size() == 1);
        INFO(recs[0]);
        CHECK(contains(recs[0], "\"decision\":\"hold\""));
        CHECK(contains(recs[0], c.reason));
        if (s.state == k_completed) ++printed;
    }
    CHECK(printed == 0);

    {  // Numbers with separators are customer data.
        const std::string hidden = "Card " + grouped(kCard, "\xC2\xAD") + "\nCard " + grouped(kCard, ".") +
                                   "\nCard " + grouped(kCard, "  ") + "\nCard " + grouped(kCard, "\n") + "\n";
        const int id = f.lp("office", f.document("hidden.txt", hidden), "separators", accounts().other);
        const auto s = f.wait_settled(id);
        CHECK(s.state == k_held);
        REQUIRE(f.wait_records(id, 1));
        const auto recs = f.print_records(id);
        REQUIRE(recs.size() == 1);
        INFO(recs[0]);
        CHECK(contains(recs[0], "credit_card:4"));
    }
    std::this_thread::sleep_for(300ms);
    CHECK(f.office().received().empty());
}

TEST_CASE("ordinary PDF, PostScript and text still print", "[print][host][print-content]") {
    PrintFixture f(k_policy);
    {
        const std::string pdf = pdf_text({"Invoice INV-2024-000123", "Total 1,234 yen"});
        const std::string ps = ps_show("/setpagedevice where { pop currentpagedevice /PageSize get pop } if (Invoice 2024) show");
        int n = 0;
        for (const auto& doc : {pdf, ps, std::string("Name\tAmount\r\nTaro\t1,234\r\n\f")}) {
            const int id = f.lp("office", f.document("ok.bin", doc), "ok", accounts().other);
            const auto s = f.wait_settled(id);
            INFO(s.message);
            CHECK(s.state == k_completed);
            auto out = f.office().wait_job(++n, 10s);
            REQUIRE(out);
            CHECK(*out == doc);
        }
    }
}
