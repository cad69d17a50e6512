// Exact customer matching: normalisation, schema diagnostics, building from a synthetic
// CRM of 10,000 rows, counting the distinct customers of a document, the index holding no
// clear text, and the bounded reader refusing damaged indexes.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "crm.hpp"
#include "custguard/edm/build.hpp"
#include "custguard/edm/edm.hpp"

namespace edm = custguard::edm;
namespace fs = std::filesystem;
using edm::Kind;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        std::string t = (fs::temp_directory_path() / "cg-edm-XXXXXX").string();
        path = ::mkdtemp(t.data());
    }
    ~TempDir() { fs::remove_all(path); }
};

std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write(const fs::path& p, std::string_view bytes) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

edm::Key test_key() {
    edm::Key k{};
    for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(i * 37 + 11);
    return k;
}

// The CRM, its index, built once for all cases.
struct Built {
    std::vector<edm::testing::Customer> crm = edm::testing::make_crm(10'000);
    edm::Schema schema = *edm::parse_schema(edm::testing::schema_toml, "crm.toml");
    edm::BuildResult result = *edm::build_index(schema, test_key(), edm::testing::make_csv(crm));
};

const Built& built() {
    static const Built b;
    return b;
}

std::shared_ptr<const edm::Matcher> matcher() {
    static const auto m = *edm::Matcher::from_index(built().result.index, test_key());
    return m;
}

}  // namespace

TEST_CASE("normalisation: full-width forms, hyphen variants, ideographic space, case", "[edm]") {
    struct Case {
        std::string in;
        Kind kind;
        std::uint32_t length;
        std::string out;  // empty: refused
    };
    const Case cases[] = {
        {"090-1234-5678", Kind::phone, 0, "09012345678"},
        {"０９０－１２３４－５６７８", Kind::phone, 0, "09012345678"},
        {"090ー1234ー5678", Kind::phone, 0, "09012345678"},
        {"090‐1234‐5678", Kind::phone, 0, "09012345678"},    // U+2010
        {"090−1234−5678", Kind::phone, 0, "09012345678"},    // U+2212
        {"090–1234—5678", Kind::phone, 0, "09012345678"},    // en and em dash
        {"03　1234　5678", Kind::phone, 0, "0312345678"},    // U+3000
        {"(03) 1234-5678", Kind::phone, 0, "0312345678"},
        {"03.1234.5678", Kind::phone, 0, "0312345678"},
        {"+81 90-1234-5678", Kind::phone, 0, "09012345678"},
        {"＋８１３１２３４５６７８", Kind::phone, 0, "0312345678"},
        {"12345", Kind::phone, 0, ""},
        {"+1 212 555 0100", Kind::phone, 0, ""},
        {"090-1234-567x", Kind::phone, 0, ""},
        {"Taro.Yamada@Example.CO.JP", Kind::email, 0, "taro.yamada@example.co.jp"},
        {"ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ", Kind::email, 0, "taro@example.jp"},
        {"taro at example", Kind::email, 0, ""},
        {"0012 3456", Kind::digits, 8, "00123456"},
        {"００１２－３４５６", Kind::digits, 8, "00123456"},
        {"0012-345", Kind::digits, 8, ""},
        {"C-0012-3456", Kind::digits, 8, ""},
        {"Ｃ－００１２／３４", Kind::regex, 0, "c001234"},
        {"山田　太郎", Kind::supporting, 0, "山田太郎"},
        {"山田 太郎", Kind::supporting, 0, "山田太郎"},
        {"ﾔﾏﾀﾞ ﾀﾛｳ", Kind::supporting, 0, "ヤマダタロウ"},
        {"㈱山田商事", Kind::supporting, 0, "(株)山田商事"},
        {"東京都千代田区1ー2ー3", Kind::supporting, 0, "東京都千代田区1-2-3"},
        {"東京都千代田区１－２－３", Kind::supporting, 0, "東京都千代田区1-2-3"},
        {"ヨーコ", Kind::supporting, 0, "ヨーコ"},
        {"ＡＢＣ Corp", Kind::supporting, 0, "abccorp"},
    };
    for (const auto& c : cases) {
        INFO(c.in << " as " << edm::to_string(c.kind));
        const auto r = edm::normalize_value(c.in, c.kind, c.length);
        if (c.out.empty()) {
            CHECK_FALSE(r);
        } else {
            REQUIRE(r);
            CHECK(*r == c.out);
        }
    }
}

TEST_CASE("schema errors name file:line:col", "[edm]") {
    struct Case {
        std::string toml, expect;
    };
    const Case cases[] = {
        {"columns = [\"a\", \"b\"]\n[primary]\ncolumn = \"c\"\nkind = \"phone\"\n", "s.toml:3:10: primary column 'c' is not in 'columns'"},
        {"columns = [\"a\"]\n[primary]\ncolumn = \"a\"\nkind = \"fax\"\n", "s.toml:4:8: 'kind' must be"},
        {"columns = [\"a\"]\n[primary]\ncolumn = \"a\"\nkind = \"digits\"\n", "needs 'length'"},
        {"columns = [\"a\", \"b\"]\n[primary]\ncolumn = \"a\"\nkind = \"phone\"\n[supporting]\ncolumns = [\"b\"]\nmin_supporting = 2\n",
         "'min_supporting' is 2 but only 1"},
        {"columns = [\"a\"]\nnear = 3\n", "s.toml:2:8: unknown key 'near'"},
        {"columns = [\"a\"\n", "s.toml:1:16: Error while parsing array"},
        {"columns = [\"氏名\"]\n", "s.toml:1:13: only ASCII"},
    };
    for (const auto& c : cases) {
        INFO(c.toml);
        const auto r = edm::parse_schema(c.toml, "s.toml");
        REQUIRE_FALSE(r);
        INFO(r.error());
        CHECK(r.error().find(c.expect) != std::string::npos);
    }
}

TEST_CASE("building from a CRM of 10,000 rows indexes every row", "[edm]") {
    const auto& r = built().result;
    CHECK(r.rows == 10'000);
    CHECK(r.indexed == 10'000);
    CHECK(r.skipped == 0);
    CHECK(r.index.entries.size() == 10'000);
}

TEST_CASE("bad rows are skipped and reported by line", "[edm]") {
    const auto schema = *edm::parse_schema(edm::testing::schema_toml, "crm.toml");
    const std::string csv =
        "id,name,phone,email,address,birth\n"
        "C1,山田太郎,090-1111-2222,a@example.jp,東京都,1980-01-01\n"
        "C2,山田次郎,12-34,b@example.jp,東京都,1980-01-01\n"          // line 3: bad phone
        "C3,山田三郎,090-1111-3333\n"                                   // line 4: 3 fields
        "\"C4\",\"\",090-1111-4444,c@example.jp,\"\",1980-01-01\n"      // line 5: no supporting
        "C5,\"複数行\n住所\",090-1111-5555,d@example.jp,東京都,1980-01-01\n"  // lines 6-7: fine
        "C1,山田太郎,090-1111-2222,a@example.jp,東京都,1980-01-01\n";  // line 8: duplicate
    const auto r = edm::build_index(schema, test_key(), csv);
    REQUIRE(r);
    CHECK(r->rows == 6);
    CHECK(r->indexed == 2);
    CHECK(r->skipped == 4);
    REQUIRE(r->skipped_rows.size() == 4);
    CHECK(r->skipped_rows[0].line == 3);
    CHECK(r->skipped_rows[1].line == 4);
    CHECK(r->skipped_rows[2].line == 5);
    CHECK(r->skipped_rows[3].line == 8);
    CHECK(r->skipped_rows[3].reason.find("line 2") != std::string::npos);

    const auto open = edm::build_index(schema, test_key(), "id\n\"C1,unterminated\n");
    REQUIRE_FALSE(open);
    CHECK(open.error().find("line 2") != std::string::npos);
}

TEST_CASE("a CP932 export converts", "[edm]") {
    // "山田" in Shift_JIS.
    const auto r = edm::cp932_to_utf8("\x8E\x52\x93\x63");
    REQUIRE(r);
    CHECK(*r == "山田");
    CHECK_FALSE(edm::cp932_to_utf8("\x81"));
}

TEST_CASE("a document with 1,001 of the customers among other text counts 1,001 persons", "[edm]") {
    std::vector<std::size_t> picks;
    for (std::size_t i = 0; i < 10'000 && picks.size() < 1001; i += 9) picks.push_back(i);
    REQUIRE(picks.size() == 1001);
    auto doc = edm::testing::make_document(built().crm, picks);
    // The same customers twice still count once each.
    doc += edm::testing::make_document(built().crm, {picks[0], picks[1], picks[2]});
    const auto n = matcher()->count_persons(doc);
    REQUIRE(n);
    CHECK(*n == 1001);

    SECTION("fed in small pieces, across segment boundaries") {
        std::string big;
        while (big.size() < 3 * 1024 * 1024) big += edm::testing::filler(big.size() % 7) ;
        const std::string full = big + doc + big;
        edm::Matcher::Session session(*matcher());
        for (std::size_t at = 0; at < full.size(); at += 4093) session.feed(std::string_view(full).substr(at, 4093));
        const auto m = session.finish();
        REQUIRE(m);
        CHECK(*m == 1001);
    }
}

TEST_CASE("valid numbers that are not in the CRM count no person", "[edm]") {
    const auto& crm = built().crm;
    std::string doc;
    for (std::size_t i = 0; i < 500; ++i) {
        // 060 numbers are valid-format but never generated; names and addresses are real.
        const std::string phone = "060-" + edm::testing::pad(2000 + i, 4) + "-" + edm::testing::pad(i * 13, 4);
        doc += "お客様：" + crm[i].name + " 様　電話：" + phone + " 住所 " + crm[i].address + "\n";
    }
    const auto n = matcher()->count_persons(doc);
    REQUIRE(n);
    CHECK(*n == 0);
}

TEST_CASE("a CRM number without its supporting fields nearby counts no person", "[edm]") {
    const auto& crm = built().crm;
    std::string doc;
    for (std::size_t i = 0; i < 200; ++i) doc += "電話：" + crm[i].phone + "\n" + std::string(300, '.') + "\n";
    const auto n = matcher()->count_persons(doc);
    REQUIRE(n);
    CHECK(*n == 0);
    // The name more than `near` (200) characters away does not count either ...
    const auto far = matcher()->count_persons(crm[5].name + std::string(250, ' ') + "x" + std::string(250, ' ') + crm[5].phone);
    REQUIRE(far);
    CHECK(*far == 0);
    // ... within it, it does.
    const auto close = matcher()->count_persons(crm[5].name + std::string(150, 'x') + crm[5].phone);
    REQUIRE(close);
    CHECK(*close == 1);
}

TEST_CASE("the index file holds none of the CRM's clear values", "[edm]") {
    TempDir dir;
    const auto path = (dir.path / "crm.edm").string();
    REQUIRE(edm::write_index(path, built().result.index, test_key()));
    CHECK((fs::status(path).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));
    const std::string bytes = read(path);
    const auto& crm = built().crm;
    std::size_t checked = 0;
    for (std::size_t i = 0; i < crm.size(); i += 20) {
        const auto& c = crm[i];
        for (const auto& v : {c.name, c.phone, c.email, c.address, c.id,
                              *edm::normalize_value(c.phone, Kind::phone), *edm::normalize_value(c.name, Kind::supporting),
                              *edm::normalize_value(c.address, Kind::supporting), *edm::normalize_value(c.email, Kind::email)}) {
            INFO(v);
            CHECK(bytes.find(v) == std::string::npos);
            ++checked;
        }
    }
    CHECK(checked == 500 * 9);
    // And it reads back into the same matcher.
    write(dir.path / "key", std::string_view(reinterpret_cast<const char*>(test_key().data()), edm::key_bytes));
    ::chmod((dir.path / "key").c_str(), 0600);
    const auto m = edm::Matcher::open(path, (dir.path / "key").string());
    REQUIRE(m);
    CHECK((*m)->index().records == 10'000);
    CHECK((*m)->sealed_fd() >= 0);
}

TEST_CASE("a truncated, altered, oversized or foreign index is refused with a message", "[edm]") {
    TempDir dir;
    const auto key_path = (dir.path / "key").string();
    write(key_path, std::string_view(reinterpret_cast<const char*>(test_key().data()), edm::key_bytes));
    ::chmod(key_path.c_str(), 0600);
    const std::string good = edm::serialize_index(built().result.index, test_key());
    struct Case {
        std::string name, bytes, expect;
    };
    std::string flipped = good;
    flipped[good.size() / 2] ^= 0x40;
    std::string version = good;
    version[8] = 9;
    std::string huge_count = good;
    for (int i = 40; i < 48; ++i) huge_count[static_cast<std::size_t>(i)] = '\xff';
    const Case cases[] = {
        {"empty", "", "not an EDM index"},
        {"header only", good.substr(0, 60), "not an EDM index"},
        {"truncated by one byte", good.substr(0, good.size() - 1), "truncated"},
        {"truncated in half", good.substr(0, good.size() / 2), "truncated"},
        {"extra byte", good + "x", "extra bytes"},
        {"a flipped bit", flipped, "corrupted"},
        {"another version", version, "version 9 is not supported"},
        {"a count beyond the size", huge_count, "truncated"},
        {"a text file", "phone,name\n090-1234-5678,山田太郎\n" + std::string(200, 'x'), "not an EDM index"},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        const auto path = dir.path / "bad.edm";
        write(path, c.bytes);
        const auto m = edm::Matcher::open(path.string(), key_path);
        REQUIRE_FALSE(m);
        CHECK(m.error().find(c.expect) != std::string::npos);
        CHECK(m.error().find(path.string()) != std::string::npos);
    }
    SECTION("another key") {
        edm::Key other = test_key();
        other[0] ^= 1;
        write(dir.path / "other.edm", edm::serialize_index(built().result.index, other));
        const auto m = edm::Matcher::open((dir.path / "other.edm").string(), key_path);
        REQUIRE_FALSE(m);
        CHECK(m.error().find("another key") != std::string::npos);
    }
    SECTION("larger than the limit (sparse)") {
        const auto path = dir.path / "huge.edm";
        write(path, good);
        fs::resize_file(path, edm::max_index_bytes + 1);
        const auto m = edm::Matcher::open(path.string(), key_path);
        REQUIRE_FALSE(m);
        CHECK(m.error().find("larger than") != std::string::npos);
    }
    SECTION("a key file readable by others") {
        ::chmod(key_path.c_str(), 0644);
        const auto k = edm::load_key(key_path);
        REQUIRE_FALSE(k);
        CHECK(k.error().find("chmod 600") != std::string::npos);
    }
}

TEST_CASE("a missing key file is created 0600 with 32 random bytes, then reused", "[edm]") {
    TempDir dir;
    const auto path = (dir.path / "edm" / "key").string();
    bool created = false;
    const auto k1 = edm::load_or_create_key(path, &created);
    REQUIRE(k1);
    CHECK(created);
    CHECK((fs::status(path).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));
    CHECK(fs::file_size(path) == edm::key_bytes);
    const auto k2 = edm::load_or_create_key(path, &created);
    REQUIRE(k2);
    CHECK_FALSE(created);
    CHECK(*k1 == *k2);
}

TEST_CASE("e-mail, digits and regex primaries find their values in text", "[edm]") {
    const auto& crm = built().crm;
    struct Case {
        std::string schema, doc;
        std::uint64_t persons;
    };
    auto schema_for = [](const std::string& primary) {
        return "columns = [\"id\", \"name\", \"phone\", \"email\", \"address\", \"birth\"]\n[primary]\n" + primary +
               "\n[supporting]\ncolumns = [\"name\"]\nnear = 50\n";
    };
    const Case cases[] = {
        {schema_for("column = \"email\"\nkind = \"email\""),
         crm[1].name + " <" + "CUSTOMER1@EXAMPLE.CO.JP>\n" + crm[2].name + "　ｃｕｓｔｏｍｅｒ２＠ｅｘａｍｐｌｅ．ｃｏ．ｊｐ\n", 2},
        {schema_for("column = \"id\"\nkind = \"regex\"\npattern = \"c[0-9]{6}\""),
         "顧客番号 Ｃ０００００４ " + crm[3].name + "\n顧客番号 c000005 別人\n", 1},
    };
    for (const auto& c : cases) {
        INFO(c.schema);
        const auto schema = edm::parse_schema(c.schema, "s.toml");
        REQUIRE(schema);
        const auto r = edm::build_index(*schema, test_key(), edm::testing::make_csv(crm));
        REQUIRE(r);
        CHECK(r->indexed == 10'000);
        const auto m = edm::Matcher::from_index(r->index, test_key());
        REQUIRE(m);
        const auto n = (*m)->count_persons(c.doc);
        REQUIRE(n);
        CHECK(*n == c.persons);
    }
}

TEST_CASE("one customer's number repeated without the name stays cheap and still counts once the name is near",
          "[edm][regression]") {
    const auto& crm = built().crm;
    std::string doc;
    for (int i = 0; i < 5000; ++i) doc += crm[7].phone + " " + std::string(20, 'x') + "\n";
    const auto t0 = std::chrono::steady_clock::now();
    const auto alone = matcher()->count_persons(doc);
    const auto took = std::chrono::steady_clock::now() - t0;
    REQUIRE(alone);
    CHECK(*alone == 0);
    CHECK(took < std::chrono::seconds(5));
    // The first 64 neighbourhoods are searched: a name there counts.
    const auto named = matcher()->count_persons(crm[7].name + " " + doc);
    REQUIRE(named);
    CHECK(*named == 1);
}
