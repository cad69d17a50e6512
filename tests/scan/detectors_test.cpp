#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "custguard/scan/normalize.hpp"
#include "custguard/scan/scanner.hpp"
#include "custguard/scan/validate.hpp"
#include "test_support.hpp"

using namespace custguard::scan;
using namespace scan_test;

namespace {

Findings scan_text(const std::string& text, ScannerConfig config) {
    auto scanner = Scanner::create(std::move(config));
    REQUIRE(scanner);
    auto f = scanner->scan(text);
    REQUIRE(f);
    return *f;
}

// The default configuration, compiled once (compiling takes ~0.1 s).
Findings scan_text(const std::string& text) {
    static auto scanner = Scanner::create({});
    REQUIRE(scanner);
    auto f = scanner->scan(text);
    REQUIRE(f);
    return *f;
}

struct Case {
    std::string text;
    Detector detector;
    std::uint64_t count;
};

const std::string kVisa = luhn_complete("411111111111111");
const std::string kMaster = luhn_complete("555555555555444");
const std::string kMaster2 = luhn_complete("222100000000000");
const std::string kAmex = luhn_complete("37828224631000");
const std::string kJcb = luhn_complete("353011133330000");
const std::string kDiners = luhn_complete("3056930902590");
const std::string kDiscover = luhn_complete("601111111111111");
const std::string kVisa19 = luhn_complete("411111111111111111");
const std::string kMyNum = my_number_complete("12345678901");
const std::string kMyNum2 = my_number_complete("50718293640");

}  // namespace

TEST_CASE("check digits agree with the statute and with Luhn", "[scan][validate]") {
    CHECK(my_number_check_digit("12345678901") == 8);  // the commonly cited example 123456789018
    CHECK(my_number_valid("123456789018"));
    CHECK_FALSE(my_number_valid("123456789017"));
    CHECK_FALSE(my_number_valid("000000000000"));
    CHECK_FALSE(my_number_valid("12345678901"));
    CHECK(luhn_valid("4111111111111111"));
    CHECK_FALSE(luhn_valid("4111111111111112"));
    CHECK(card_brand("4111111111111111") == CardBrand::visa);
    CHECK(card_brand(kAmex) == CardBrand::amex);
    CHECK(card_brand(kJcb) == CardBrand::jcb);
    CHECK(card_brand(kMaster2) == CardBrand::mastercard);
    CHECK_FALSE(card_brand(luhn_complete("100000000000000")));
    CHECK_FALSE(credit_card_valid("0000000000000000"));

    std::mt19937_64 rng(42);
    for (int i = 0; i < 500; ++i) {
        const auto first = random_digits(rng, 11);
        INFO(first);
        CHECK(my_number_valid(my_number_complete(first)) != (first == std::string(11, first[0])));
        CHECK_FALSE(my_number_valid(my_number_wrong(first)));
        const auto card = "4" + random_digits(rng, 14);
        CHECK(credit_card_valid(luhn_complete(card)));
        CHECK_FALSE(credit_card_valid(luhn_wrong(card)));
    }
}

TEST_CASE("normalisation maps full-width forms and keeps Japanese words", "[scan][normalize]") {
    CHECK(normalize("０９０ー１２３４ー５６７８") == "090-1234-5678");
    CHECK(normalize("１２３４・５６７８") == "1234-5678");
    CHECK(normalize("マイナンバー") == "マイナンバー");
    CHECK(normalize("ジョン・スミス") == "ジョン・スミス");
    CHECK(normalize("ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ") == "taro@example.jp");
    CHECK(normalize("〒１００‐０００１") == "〒100-0001");
    CHECK(normalize("1\u200b2\u20133") == "12-3");
    CHECK(normalize("a\u3000b\u00a0c") == "a b c");
    CHECK(normalize("\xff\xfe\xe3") == "\xff\xfe\xe3");  // invalid UTF-8 passes through
    CHECK(count_code_points("顧客a") == 3);
}

// Guards the vector paths of the normaliser (16 and 32 bytes at a time, copying as they
// go): a sequence at any offset of long text, in ASCII or Japanese, comes out as the
// byte-at-a-time path (short input) maps it on its own.
TEST_CASE("normalisation of long text equals the byte-at-a-time mapping at every offset", "[scan][normalize]") {
    const std::vector<std::string> pieces = {
        "\u3000", "1ー2", "1・2", "1\u00b72", "a\u00a0b", "1\u00ad2", "1 2", "1  2", "1\n2", "1\r\n2", "1 \n\n2",
        "1\t2", "1 x", "12, 34 yen", "\x01", "\x0b", "\x1f", "ｔａｒｏ＠ｅｘ．ｊｐ", "〶", "〒", "1\u20102", "1\u22122",
        "a\u2000b", "1\u20242", "\ufeff", "\u2060", "1\ufe0f", "１ ２", "１\u3000２", "４１１１\n１１１１", "1ｰ2",
        "1･2", "\u200b", "\u202e", "1\u200b\n2", "\xe3", "\xef\xbc", "9 \xef\xbc\x99",
    };
    const std::string japanese = "本日の会議では新製品の販売計画について検討しました。";
    for (const bool ja : {false, true}) {
        std::string filler;
        while (filler.size() < 160) filler += ja ? japanese : std::string("The quarterly report is due. ");
        for (const auto& piece : pieces) {
            const std::string mapped = normalize(piece);
            // Cut at character boundaries (the filler has no digits: the piece's context stays).
            const auto boundary = [&](std::size_t k) {
                while (k > 0 && (static_cast<unsigned char>(filler[k]) & 0xC0) == 0x80) --k;
                return k;
            };
            // The piece at every offset from the start, and at every distance from the end.
            for (std::size_t k = 0; k < 80; ++k) {
                const std::string prefix = filler.substr(0, boundary(k)), suffix = filler.substr(boundary(k), 90);
                INFO("piece '" << piece << "' " << prefix.size() << " bytes from the start" << (ja ? " in Japanese" : " in ASCII"));
                CHECK(normalize(prefix + piece + suffix) == prefix + mapped + suffix);
            }
            for (std::size_t k = 0; k < 80; ++k) {
                const std::string prefix = filler.substr(0, boundary(70)), suffix = filler.substr(0, boundary(k));
                INFO("piece '" << piece << "' " << suffix.size() << " bytes from the end" << (ja ? " in Japanese" : " in ASCII"));
                CHECK(normalize(prefix + piece + suffix) == prefix + mapped + suffix);
            }
        }
    }
}

TEST_CASE("detectors find synthetic customer data", "[scan][detectors]") {
    const std::vector<Case> cases = {
        // credit_card
        {"card " + kVisa, Detector::credit_card, 1},
        {"card " + group(kVisa, "-", {4, 4, 4, 4}) + ".", Detector::credit_card, 1},
        {"カード番号：" + group(kMaster, " ", {4, 4, 4, 4}) + "です", Detector::credit_card, 1},
        {"カード番号：" + full_width(group(kJcb, "-", {4, 4, 4, 4})), Detector::credit_card, 1},
        {full_width(kJcb.substr(0, 4)) + "ー" + full_width(kJcb.substr(4, 4)) + "ー" + full_width(kJcb.substr(8, 4)) +
             "ー" + full_width(kJcb.substr(12)),
         Detector::credit_card, 1},
        {"AMEX " + group(kAmex, " ", {4, 6, 5}), Detector::credit_card, 1},
        {"diners " + kDiners + ", discover " + kDiscover, Detector::credit_card, 2},
        {"mc2 " + kMaster2 + " / visa19 " + kVisa19, Detector::credit_card, 2},
        {group(kVisa, " ", {4, 4, 4, 4}) + " 12/27", Detector::credit_card, 1},
        {"1 " + group(kVisa, " ", {4, 4, 4, 4}) + " 03/27", Detector::credit_card, 1},  // in a spaced table
        {"4111\u200b1111\u200b1111\u200b1111", Detector::credit_card, 1},            // zero-width evasion
        // my_number
        {"個人番号 " + kMyNum, Detector::my_number, 1},
        {"マイナンバー：" + group(kMyNum2, " ", {4, 4, 4}), Detector::my_number, 1},
        {"マイナンバー：" + group(kMyNum2, "-", {4, 4, 4}), Detector::my_number, 1},
        {"マイナンバー：" + full_width(group(kMyNum, " ", {4, 4, 4})), Detector::my_number, 1},
        {kMyNum + "\n" + kMyNum2 + "\n", Detector::my_number, 2},
        // jp_phone
        {"TEL 03-1234-5678", Detector::jp_phone, 1},
        {"携帯 090-1234-5678", Detector::jp_phone, 1},
        {"携帯：０９０ー１２３４ー５６７８", Detector::jp_phone, 1},
        {"電話：０３－１２３４－５６７８", Detector::jp_phone, 1},
        {"Tel.045-123-4567", Detector::jp_phone, 1},
        {"+81-3-1234-5678", Detector::jp_phone, 1},
        {"+81 90 1234 5678", Detector::jp_phone, 1},
        {"+819012345678", Detector::jp_phone, 1},
        {"03(1234)5678", Detector::jp_phone, 1},
        {"(03)1234-5678", Detector::jp_phone, 1},
        {"フリーダイヤル 0120-123-456", Detector::jp_phone, 1},
        {"09012345678", Detector::jp_phone, 1},
        {"03-1234-5678 090-8765-4321", Detector::jp_phone, 2},
        // email
        {"mail taro@example.co.jp", Detector::email, 1},
        {"メール：ｔａｒｏ．ｙａｍａｄａ＠ｅｘａｍｐｌｅ．ｃｏ．ｊｐです", Detector::email, 1},
        {"<a.b+tag@sub.example.com>, c_d@example.org.", Detector::email, 2},
        {"連絡先...taro@example.com / mailto:hanako@example.jp", Detector::email, 2},
        // jp_address
        {"〒100-0001", Detector::jp_address, 1},
        {"〒 1000001 千代田区", Detector::jp_address, 1},
        {"100-0001 東京都千代田区", Detector::jp_address, 1},
        {"〒100-0001 東京都千代田区", Detector::jp_address, 1},  // one address, not two
        {"５３０－０００１　大阪府大阪市", Detector::jp_address, 1},
        {"〶060-0001 北海道", Detector::jp_address, 1},
        {"住所 999-0001 鹿児島県 / 900-0001 沖縄県", Detector::jp_address, 2},
        // keywords (default list, proximity 40)
        {"氏名：山田太郎　住所：東京", Detector::keywords, 1},
        {"氏名住所生年月日", Detector::keywords, 2},
        {"顧客", Detector::keywords, 0},
        {"氏名 氏名 氏名", Detector::keywords, 0},
        {"氏名" + std::string(41, 'x') + "住所", Detector::keywords, 0},
        {"氏名" + std::string(40, 'x') + "住所", Detector::keywords, 1},
        {"氏名" + std::string(10, 'x') + "氏名 住所", Detector::keywords, 1},
        // sensitive (要配慮個人情報): per occurrence; a term inside a longer one counts once
        {"既往歴：高血圧。服薬中", Detector::sensitive, 2},
        {"精神障害者保健福祉手帳", Detector::sensitive, 1},
        {"身体障害者手帳の交付", Detector::sensitive, 1},
        {"ＨＩＶ検査 陰性、hiv", Detector::sensitive, 2},
        {"前科なし。宗教：なし", Detector::sensitive, 2},
        {"障がいのある方", Detector::sensitive, 1},
    };
    for (const auto& c : cases) {
        INFO(to_string(c.detector) << ": " << c.text);
        const auto f = scan_text(c.text);
        CHECK(f.count(c.detector) == c.count);
        // No detector claims another's data.
        CHECK(f.total() == c.count);
    }
}

TEST_CASE("generated valid numbers are all found", "[scan][detectors]") {
    std::mt19937_64 rng(7);
    std::string text;
    for (int i = 0; i < 200; ++i) {
        text += "カード " + group(luhn_complete("4" + random_digits(rng, 14)), "-", {4, 4, 4, 4}) + "\n";
        auto first = random_digits(rng, 11);
        if (first == std::string(11, first[0])) first[0] = first[0] == '1' ? '2' : '1';
        text += "番号 " + my_number_complete(first) + "\n";
    }
    const auto f = scan_text(text);
    CHECK(f.count(Detector::credit_card) == 200);
    CHECK(f.count(Detector::my_number) == 200);
}

TEST_CASE("the false-positive corpus triggers nothing", "[scan][detectors]") {
    std::vector<std::string> corpus = {
        "Invoice INV-2024-000123, total 1,234,567,890 yen",
        "請求書番号 INV20240115000123",
        "2024-01-15", "2024/01/15 10:30:00", "令和6年1月15日", "20240115 103000",
        "Order 12345678 shipped",
        "123-4567-8901", "090-1234-56789", "03-1234-567", "0000-000-000", "1-800-555-0199", "+1 415 555 0132",
        "+44 20 7946 0958",
        "SKU-4111111111111111", "ID4111111111111111", "4111111111111111X",
        "pi 3.14159265358979323846", "1,2345,6789,0123",
        "0000 0000 0000 0000", "0000000000000000", "000000000000",
        "ISBN 978-4-06-123456-7", "tracking 1234-5678-9012-3456-7890-1234",
        "timestamp 1700000000123",
        "100-0001", "postal code 100-0001 only",
        "user@localhost", "@mention", "a@b.c", "foo@bar", "x@-bad-.com",
        "顧客満足度の向上について",
        "システム障害の復旧報告", "システム診断を実施しました",
        "version 2.14.0-1234567890",
        "0312345678901",
    };
    std::mt19937_64 rng(1234);
    for (int i = 0; i < 100; ++i) {
        auto first = random_digits(rng, 11);
        corpus.push_back("番号 " + my_number_wrong(first));
        corpus.push_back("番号 " + group(my_number_wrong(random_digits(rng, 11)), "-", {4, 4, 4}));
        corpus.push_back("card " + group(luhn_wrong("4" + random_digits(rng, 14)), " ", {4, 4, 4, 4}));
        corpus.push_back("no brand " + luhn_complete("1" + random_digits(rng, 14)));
        corpus.push_back("請求番号 " + random_digits(rng, 4) + "-" + random_digits(rng, 6));
    }
    for (const auto& text : corpus) {
        INFO(text);
        CHECK(scan_text(text).total() == 0);
    }
}

TEST_CASE("scanner configuration", "[scan][config]") {
    const std::vector<std::string> only_email = {"email"};
    auto config = ScannerConfig::from_names(only_email, {}, 40);
    REQUIRE(config);
    const std::string text = "taro@example.jp " + kVisa + " 〒100-0001";
    const auto f = scan_text(text, *config);
    CHECK(f.count(Detector::email) == 1);
    CHECK(f.total() == 1);

    const std::vector<std::string> bad = {"email", "passport"};
    auto err = ScannerConfig::from_names(bad, {}, 40);
    REQUIRE_FALSE(err);
    CHECK_THAT(err.error(), Catch::Contains("passport") && Catch::Contains("credit_card"));

    const std::vector<std::string> keywords = {"Customer", "Diagnosis", "ｓｅｃｒｅｔ"};
    auto kw = ScannerConfig::from_names({}, keywords, 5);
    REQUIRE(kw);
    CHECK(scan_text("customer: diagnosis", *kw).count(Detector::keywords) == 1);
    CHECK(scan_text("customer: 0123456789 diagnosis", *kw).count(Detector::keywords) == 0);
    CHECK(scan_text("SECRET customer", *kw).count(Detector::keywords) == 1);
    CHECK(scan_text("氏名 住所", *kw).count(Detector::keywords) == 0);  // the defaults are replaced

    const std::vector<std::string> empty_kw = {"  "};
    CHECK_FALSE(ScannerConfig::from_names({}, empty_kw, 5));
}

TEST_CASE("threshold and formatting", "[scan][findings]") {
    Findings f;
    f.count(Detector::email) = 2;
    f.count(Detector::my_number) = 1;
    CHECK(f.total() == 3);
    CHECK(is_customer_data(f, 3));
    CHECK_FALSE(is_customer_data(f, 4));
    CHECK_FALSE(is_customer_data(Findings{}, 0));
    CHECK(format_findings(f) == "credit_card=0 my_number=1 email=2 jp_phone=0 jp_address=0 keywords=0 sensitive=0");
    const Detector some[] = {Detector::email};
    CHECK(format_findings(f, some) == "email=2");
    CHECK(parse_detector("jp_phone") == Detector::jp_phone);
    CHECK(parse_detector("sensitive") == Detector::sensitive);
    CHECK(edm_name("edm:crm") == "crm");
    CHECK(edm_name("edm:").empty());
    CHECK(edm_name("email").empty());
    // Persons count toward the threshold, one per customer, and show per EDM detector.
    Findings p;
    p.count(Detector::email) = 1;
    p.edm = {{"crm", 2}};
    p.persons = 2;
    CHECK(p.total() == 3);
    CHECK(is_customer_data(p, 3));
    CHECK(format_findings(p, some) == "email=1 edm:crm=2");
    Findings q = p;
    q += p;
    CHECK(q.persons == 4);
    CHECK(q.edm == std::vector<EdmCount>{{"crm", 4}});
    CHECK_FALSE(parse_detector("phone"));
}

TEST_CASE("scanning is chunked without losing matches or proximity", "[scan][detectors]") {
    // The scanner works in 256 KiB chunks cut at newlines; hits right at a cut must count.
    const std::size_t chunk = 256 * 1024;
    std::string text(chunk - 10, 'x');
    text += "氏名\n住所 " + kVisa + "\n";
    const auto f = scan_text(text);
    CHECK(f.count(Detector::keywords) == 1);
    CHECK(f.count(Detector::credit_card) == 1);

    // Large input: counts add up across many chunks.
    std::string big;
    for (int i = 0; i < 40000; ++i) big += "line " + std::to_string(i) + " mail a" + std::to_string(i) + "@example.com\n";
    CHECK(scan_text(big).count(Detector::email) == 40000);

    // A huge digit run and a line without newlines do not hang or crash.
    CHECK(scan_text(std::string(1 << 20, '7')).total() == 0);
    std::string one_line;
    for (int i = 0; i < 30000; ++i) one_line += kVisa + " x ";
    CHECK(scan_text(one_line).count(Detector::credit_card) == 30000);
}

TEST_CASE("copies of a scanner are independent", "[scan][config]") {
    auto a = Scanner::create({});
    REQUIRE(a);
    Scanner b = *a;
    const std::string text = "taro@example.jp";
    CHECK(a->scan(text)->count(Detector::email) == 1);
    CHECK(b.scan(text)->count(Detector::email) == 1);
}

// The sandboxed reader loads the launcher's compiled patterns instead of compiling its own
// (~30 ms a start): they must find exactly what compiled ones find, and patterns of another
// configuration must never be used for this one.
TEST_CASE("serialised patterns: the same findings, and another configuration's are compiled afresh", "[scanner]") {
    const std::string text = "カード 4111 1111 1111 1111, mail a@example.co.jp, 03-1234-5678, 病歴あり\n";
    auto all = custguard::scan::Scanner::create(custguard::scan::ScannerConfig{});
    REQUIRE(all);
    auto bytes = all->serialized_patterns();
    REQUIRE(bytes);
    REQUIRE(bytes->starts_with("cgpat1:"));
    auto expected = all->scan(text);
    REQUIRE(expected);
    REQUIRE(expected->total() >= 3);

    auto loaded = custguard::scan::Scanner::create(custguard::scan::ScannerConfig{}, *bytes);
    REQUIRE(loaded);
    auto got = loaded->scan(text);
    REQUIRE(got);
    CHECK(*got == *expected);

    // Email only, handed every detector's patterns: the fingerprint differs, so it compiles
    // its own and counts e-mail addresses only.
    const std::vector<std::string> email = {"email"};
    auto config = custguard::scan::ScannerConfig::from_names(email, {}, 40);
    REQUIRE(config);
    auto narrow = custguard::scan::Scanner::create(*config, *bytes);
    REQUIRE(narrow);
    auto counts = narrow->scan(text);
    REQUIRE(counts);
    CHECK(counts->total() == 1);
    CHECK(counts->count(custguard::scan::Detector::email) == 1);

    // Damaged bytes behind a right fingerprint: compiled afresh, same findings.
    std::string damaged = bytes->substr(0, bytes->find('\n') + 1) + "garbage";
    auto fresh = custguard::scan::Scanner::create(custguard::scan::ScannerConfig{}, damaged);
    REQUIRE(fresh);
    auto again = fresh->scan(text);
    REQUIRE(again);
    CHECK(*again == *expected);
}
