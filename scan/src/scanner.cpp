#include "custguard/scan/scanner.hpp"

#include <hs/hs.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "custguard/edm/edm.hpp"
#include "custguard/scan/normalize.hpp"
#include "custguard/scan/validate.hpp"

namespace custguard::scan {

namespace {

// Pattern ids. Keyword k has id kKeywordBase + k.
enum : unsigned {
    kDigits = 1,        // runs of >= 10 digits with single separators: cards, My Number, phones
    kEmail = 2,         // local@domain.t — reported once the first TLD character is seen
    kPostalMark = 3,    // 〒123-4567
    kPostalPref = 4,    // 123-4567 東京都
    kKeywordBase = 100,
    kSensitiveBase = 100'000,  // term t has id kSensitiveBase + t
};

// Separators inside numbers after normalisation (which turns blank runs between digits into
// one space). Must match the class in kDigitsPattern.
inline bool is_sep(char c) { return c == '-' || c == ' ' || c == '.' || c == '(' || c == ')'; }
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool is_alnum(char c) { return is_digit(c) || is_alpha(c); }
inline bool is_email_local(char c) {
    return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}
inline bool is_email_domain(char c) { return is_alnum(c) || c == '.' || c == '-'; }

constexpr const char* kDigitsPattern = "[0-9](?:[ ().\\-]?[0-9]){9,}";
constexpr const char* kEmailPattern = "[A-Za-z0-9._%+\\-]@[A-Za-z0-9\\-]+\\.[A-Za-z]";

// All 47 prefectures: a postal code followed by one of them is an address.
constexpr std::string_view kPrefectures[] = {
    "北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県", "茨城県", "栃木県",
    "群馬県", "埼玉県", "千葉県", "東京都", "神奈川県", "新潟県", "富山県", "石川県", "福井県",
    "山梨県", "長野県", "岐阜県", "静岡県", "愛知県", "三重県", "滋賀県", "京都府", "大阪府",
    "兵庫県", "奈良県", "和歌山県", "鳥取県", "島根県", "岡山県", "広島県", "山口県", "徳島県",
    "香川県", "愛媛県", "高知県", "福岡県", "佐賀県", "長崎県", "熊本県", "大分県", "宮崎県",
    "鹿児島県", "沖縄県",
};

// Hyperscan patterns are byte regexes; literals are spelled byte by byte so keywords can
// hold any character.
std::string hex_escape(std::string_view literal) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(literal.size() * 4);
    for (unsigned char c : literal) {
        out += "\\x";
        out += kHex[c >> 4];
        out += kHex[c & 15];
    }
    return out;
}

// 16 hex digits (FNV-1a 64) and a newline: which patterns a serialised database holds.
std::string fingerprint_of(std::string_view text) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
    std::string out = "cgpat1:";
    for (int shift = 60; shift >= 0; shift -= 4) out += "0123456789abcdef"[(h >> shift) & 15];
    return out + '\n';
}

struct DatabaseDeleter {
    void operator()(hs_database_t* db) const { hs_free_database(db); }
};

constexpr std::size_t kChunk = 256 * 1024;

}  // namespace

struct Scanner::Database {
    std::unique_ptr<hs_database_t, DatabaseDeleter> db;
    std::vector<std::size_t> keyword_bytes;  // normalised keyword lengths
    std::vector<std::uint64_t> keyword_chars;
    std::vector<std::size_t> sensitive_bytes;  // normalised term lengths
    bool digits = false, email = false, postal = false, keywords = false;
    std::string fingerprint;  // of the compiled patterns (serialized_patterns)
};

tl::expected<std::string, std::string> Scanner::serialized_patterns() const {
    if (!db_->db) return std::string();
    char* bytes = nullptr;
    std::size_t length = 0;
    if (hs_serialize_database(db_->db.get(), &bytes, &length) != HS_SUCCESS)
        return tl::unexpected(std::string("cannot serialise the scanner patterns"));
    std::string out = db_->fingerprint;
    out.append(bytes, length);
    std::free(bytes);  // Hyperscan's default allocator
    return out;
}

void Scanner::ScratchDeleter::operator()(hs_scratch* s) const { hs_free_scratch(s); }

std::vector<std::string> default_keywords() {
    return {"顧客", "氏名", "住所", "病歴", "診断", "生年月日", "マイナンバー", "個人番号",
            "既往歴", "電話番号", "口座番号"};
}

std::vector<std::string> sensitive_terms() {
    // Not "障害" or "診断" alone: システム障害 and システム診断 are everyday IT words.
    return {"病歴", "病名", "既往歴", "診断書", "診断名", "診療", "病状", "服薬", "投薬", "処方箋", "通院", "入院",
            "手術", "障がい", "障害者", "身体障害", "精神障害", "知的障害", "遺伝情報", "遺伝子検査", "HIV", "エイズ",
            "妊娠", "犯罪歴", "前科", "逮捕", "刑事事件", "犯罪被害", "思想信条", "信条", "宗教", "信仰", "人種", "民族",
            "社会的身分", "門地", "本籍"};
}

bool ScannerConfig::set_matcher(std::string_view name, std::shared_ptr<const edm::Matcher> matcher) {
    for (auto& e : edm)
        if (e.name == name) {
            e.matcher = std::move(matcher);
            return true;
        }
    return false;
}

bool ScannerConfig::enabled(Detector d) const {
    return std::find(detectors.begin(), detectors.end(), d) != detectors.end();
}

tl::expected<ScannerConfig, std::string> ScannerConfig::from_names(
    std::span<const std::string> detectors, std::span<const std::string> keywords,
    std::uint32_t keyword_proximity) {
    ScannerConfig config;
    if (!detectors.empty()) {
        config.detectors.clear();
        for (const auto& name : detectors) {
            if (const auto e = edm_name(name); !e.empty()) {
                if (std::none_of(config.edm.begin(), config.edm.end(), [&](const EdmDetector& x) { return x.name == e; }))
                    config.edm.push_back({std::string(e), nullptr});
                continue;
            }
            auto d = parse_detector(name);
            if (!d) {
                return tl::unexpected("unknown detector '" + name + "' (known: " +
                                      known_detector_names() + ")");
            }
            if (!config.enabled(*d)) config.detectors.push_back(*d);
        }
    }
    if (!keywords.empty()) {
        config.keywords.clear();
        for (const auto& k : keywords) {
            if (normalize(k).find_first_not_of(" \t\r\n") == std::string::npos) {
                return tl::unexpected(std::string("empty keyword in the keyword list"));
            }
            if (std::find(config.keywords.begin(), config.keywords.end(), k) == config.keywords.end())
                config.keywords.push_back(k);
        }
    }
    config.keyword_proximity = keyword_proximity;
    return config;
}

tl::expected<void, std::string> platform_supported() {
    if (hs_valid_platform() != HS_SUCCESS)
        return tl::unexpected(std::string("this CPU lacks SSSE3, which Hyperscan needs"));
    return {};
}

tl::expected<Scanner, std::string> Scanner::create(ScannerConfig config) { return create(std::move(config), {}); }

tl::expected<Scanner, std::string> Scanner::create(ScannerConfig config, std::string_view serialized) {
    auto db = std::make_shared<Database>();
    std::vector<std::string> patterns;
    std::vector<unsigned> ids, flags;
    auto add = [&](std::string p, unsigned id, unsigned f) {
        patterns.push_back(std::move(p));
        ids.push_back(id);
        flags.push_back(f);
    };
    if (config.enabled(Detector::credit_card) || config.enabled(Detector::my_number) ||
        config.enabled(Detector::jp_phone)) {
        add(kDigitsPattern, kDigits, 0);
        db->digits = true;
    }
    if (config.enabled(Detector::email)) {
        add(kEmailPattern, kEmail, 0);
        db->email = true;
    }
    if (config.enabled(Detector::jp_address)) {
        add(hex_escape("〒") + " ?[0-9]{3}-?[0-9]{4}", kPostalMark, 0);
        std::string prefs;
        for (auto p : kPrefectures) {
            if (!prefs.empty()) prefs += '|';
            prefs += hex_escape(p);
        }
        add("[0-9]{3}-[0-9]{4} {0,2}(?:" + prefs + ")", kPostalPref, 0);
        db->postal = true;
    }
    if (config.enabled(Detector::keywords)) {
        for (std::size_t k = 0; k < config.keywords.size(); ++k) {
            const auto norm = normalize(config.keywords[k]);
            if (norm.empty()) return tl::unexpected(std::string("empty keyword in the keyword list"));
            add(hex_escape(norm), kKeywordBase + static_cast<unsigned>(k), HS_FLAG_CASELESS);
            db->keyword_bytes.push_back(norm.size());
            db->keyword_chars.push_back(count_code_points(norm));
        }
        db->keywords = !config.keywords.empty();
    }

    if (config.enabled(Detector::sensitive)) {
        const auto terms = sensitive_terms();
        for (std::size_t t = 0; t < terms.size(); ++t) {
            const auto norm = normalize(terms[t]);
            add(hex_escape(norm), kSensitiveBase + static_cast<unsigned>(t), HS_FLAG_CASELESS);
            db->sensitive_bytes.push_back(norm.size());
        }
    }
    for (const auto& e : config.edm)
        if (!e.matcher)
            return tl::unexpected("detector '" + std::string(edm_prefix) + e.name +
                                  "' has no index loaded (its [edm." + e.name + "] index must be opened first)");

    hs_scratch_t* scratch = nullptr;
    if (!patterns.empty()) {
        std::vector<const char*> cpatterns;
        for (const auto& p : patterns) cpatterns.push_back(p.c_str());
        hs_database_t* raw = nullptr;
        hs_compile_error_t* error = nullptr;
        // The fingerprint of exactly these patterns, ids and flags heads the serialised form.
        std::string print;
        for (std::size_t i = 0; i < patterns.size(); ++i)
            print += std::to_string(ids[i]) + ':' + std::to_string(flags[i]) + ':' + patterns[i] + '\n';
        db->fingerprint = fingerprint_of(print);
        if (serialized.size() > db->fingerprint.size() && serialized.starts_with(db->fingerprint)) {
            serialized.remove_prefix(db->fingerprint.size());
            if (hs_deserialize_database(serialized.data(), serialized.size(), &raw) != HS_SUCCESS) raw = nullptr;
        }
        if (!raw && hs_compile_multi(cpatterns.data(), flags.data(), ids.data(),
                             static_cast<unsigned>(cpatterns.size()), HS_MODE_BLOCK, nullptr, &raw,
                             &error) != HS_SUCCESS) {
            std::string message = "cannot compile the scanner patterns: ";
            message += error && error->message ? error->message : "unknown Hyperscan error";
            hs_free_compile_error(error);
            return tl::unexpected(message);
        }
        db->db.reset(raw);
        if (hs_alloc_scratch(raw, &scratch) != HS_SUCCESS) {
            return tl::unexpected(std::string("cannot allocate Hyperscan scratch space"));
        }
    }
    return Scanner(std::move(config), std::move(db), std::unique_ptr<hs_scratch, ScratchDeleter>(scratch));
}

Scanner::Scanner(ScannerConfig config, std::shared_ptr<const Database> db,
                 std::unique_ptr<hs_scratch, ScratchDeleter> scratch)
    : config_(std::move(config)), db_(std::move(db)), scratch_(std::move(scratch)) {}

Scanner::Scanner(const Scanner& other) : config_(other.config_), db_(other.db_) {
    if (other.scratch_) {
        hs_scratch_t* s = nullptr;
        // Cloning only fails on allocation failure; treat it like any bad_alloc.
        if (hs_clone_scratch(other.scratch_.get(), &s) != HS_SUCCESS) throw std::bad_alloc();
        scratch_.reset(s);
    }
}

Scanner& Scanner::operator=(const Scanner& other) {
    if (this != &other) *this = Scanner(other);
    return *this;
}

namespace detail {

// State of one scan. Offsets are into the current normalised chunk unless noted.
struct ScanState {
    const Scanner::Database* db = nullptr;
    const ScannerConfig* config = nullptr;
    const char* data = nullptr;
    std::size_t size = 0;
    Findings findings;

    std::size_t digits_end = 0;  // end of the last digit token handled
    std::size_t email_end = 0;
    std::size_t postal_end = std::numeric_limits<std::size_t>::max();  // last counted postal code
    std::size_t sensitive_end = 0;  // end of the last counted sensitive term

    struct Group {
        std::uint32_t start, len;
    };
    std::vector<Group> groups;  // reused per token
    std::string digits;         // reused per window

    // Keyword proximity, in code points from the start of the whole text.
    std::uint64_t chunk_chars = 0;   // code points before this chunk
    std::size_t counted_byte = 0;    // code points counted up to this byte of the chunk ...
    std::uint64_t counted_chars = 0; // ... are this many (within the chunk)
    struct Hit {
        std::size_t keyword;
        std::uint64_t start, end;
    };
    bool has_last = false, has_other = false;
    Hit last{}, other{};  // last hit, and the last hit of a different keyword than `last`

    void reset_chunk(const char* d, std::size_t n) {
        data = d;
        size = n;
        digits_end = email_end = 0;
        postal_end = std::numeric_limits<std::size_t>::max();
        sensitive_end = 0;
        counted_byte = 0;
        counted_chars = 0;
    }

    std::uint64_t chars_at(std::size_t byte) {
        if (byte > counted_byte) {
            counted_chars += count_code_points(std::string_view(data + counted_byte, byte - counted_byte));
            counted_byte = byte;
        }
        return chunk_chars + counted_chars;
    }
};

}  // namespace detail

struct Scanner::Session {
    detail::ScanState state;
    std::vector<edm::Matcher::Session> edm;  // one per ScannerConfig::edm
    std::string pending;  // raw text not yet cut into a chunk
    std::string error;
};

Scanner::Scanner(Scanner&&) noexcept = default;
Scanner& Scanner::operator=(Scanner&&) noexcept = default;
Scanner::~Scanner() = default;

namespace {

using detail::ScanState;

// Left context of a number: letters or digits glued on (INV-2024…, ID12…, 1.5…) make it
// part of something else.
bool bad_left(const ScanState& s, std::size_t b) {
    if (b == 0) return false;
    const char c = s.data[b - 1];
    if (is_alnum(c)) return true;
    if (b >= 2) {
        const char c2 = s.data[b - 2];
        if ((c == '-' || c == '/' || c == '_') && is_alnum(c2)) return true;
        if ((c == '.' || c == ',') && is_digit(c2)) return true;
    }
    return false;
}

bool bad_right(const ScanState& s, std::size_t e) {
    if (e >= s.size) return false;
    const char c = s.data[e];
    if (is_alnum(c)) return true;
    if (e + 1 < s.size) {
        const char c2 = s.data[e + 1];
        if ((c == '-' || c == '/' || c == '_') && is_alnum(c2)) return true;
        if ((c == '.' || c == ',') && is_digit(c2)) return true;
    }
    return false;
}

class Token {
public:
    Token(ScanState& s, std::size_t b, std::size_t e) : s_(s), b_(b) {
        s.groups.clear();
        std::size_t i = b;
        while (i < e) {
            std::size_t j = i;
            while (j < e && is_digit(s.data[j])) ++j;
            s.groups.push_back({static_cast<std::uint32_t>(i - b), static_cast<std::uint32_t>(j - i)});
            i = j + 1;  // skip the single separator
        }
        left_ok_ = !bad_left(s, b);
        right_ok_ = !bad_right(s, e);
        plus_ = b > 0 && s.data[b - 1] == '+';
    }

    std::size_t size() const { return s_.groups.size(); }
    std::uint32_t len(std::size_t g) const { return s_.groups[g].len; }
    // The separator after group g.
    char sep(std::size_t g) const { return s_.data[b_ + s_.groups[g].start + s_.groups[g].len]; }

    // A window of groups [i, j) may stand alone: its ends are the token's ends (with good
    // context) or a space; a hyphenated chain is one identifier and is never cut.
    bool boundary_ok(std::size_t i, std::size_t j) const {
        if (i == 0 ? !left_ok_ : sep(i - 1) != ' ') return false;
        if (j == size() ? !right_ok_ : sep(j - 1) != ' ') return false;
        return true;
    }
    // All separators inside [i, j) equal and from `allowed`.
    bool uniform_sep(std::size_t i, std::size_t j, std::string_view allowed) const {
        if (j - i < 2) return true;
        const char first = sep(i);
        if (allowed.find(first) == std::string_view::npos) return false;
        for (std::size_t g = i + 1; g + 1 < j; ++g)
            if (sep(g) != first) return false;
        return true;
    }
    const std::string& digits(std::size_t i, std::size_t j) const {
        auto& d = s_.digits;
        d.clear();
        for (std::size_t g = i; g < j; ++g) d.append(s_.data + b_ + s_.groups[g].start, s_.groups[g].len);
        return d;
    }
    std::size_t digit_count(std::size_t i, std::size_t j) const {
        std::size_t n = 0;
        for (std::size_t g = i; g < j; ++g) n += s_.groups[g].len;
        return n;
    }
    bool plus() const { return plus_; }
    // A space-separated group of `len` digits right next to [i, j): the window is then a
    // slice of a longer grouped number (a 16-digit number holds two 4-4-4 slices), not one.
    bool neighbor_group(std::size_t i, std::size_t j, std::uint32_t len) const {
        return (i > 0 && sep(i - 1) == ' ' && this->len(i - 1) == len) ||
               (j < size() && sep(j - 1) == ' ' && this->len(j) == len);
    }

private:
    ScanState& s_;
    std::size_t b_;
    bool left_ok_ = true, right_ok_ = true, plus_ = false;
};

// Each try_* returns the number of groups of a valid number starting at group i, or 0.
std::size_t try_card(const Token& t, std::size_t i) {
    if (i == 0 && t.plus()) return 0;
    const std::size_t n = t.size();
    // Grouped forms, longest first: 4-4-4-4[-1..4], 4-4-4-1..4, Amex 4-6-5, Diners 4-6-4.
    for (std::size_t k = std::min<std::size_t>(5, n - i); k >= 3; --k) {
        const std::size_t j = i + k;
        if (!t.uniform_sep(i, j, "- .") || !t.boundary_ok(i, j)) continue;
        bool fours = true;
        for (std::size_t g = i; g + 1 < j; ++g) fours &= t.len(g) == 4;
        fours &= t.len(j - 1) >= 1 && t.len(j - 1) <= 4;
        const bool amex_like = k == 3 && t.len(i) == 4 && t.len(i + 1) == 6 &&
                               (t.len(i + 2) == 5 || t.len(i + 2) == 4);
        if (!fours && !amex_like) continue;
        if (t.neighbor_group(i, j, 4)) continue;
        const auto count = t.digit_count(i, j);
        if (count < 13 || count > 19) continue;
        if (credit_card_valid(t.digits(i, j))) return k;
    }
    if (t.len(i) >= 13 && t.len(i) <= 19 && t.boundary_ok(i, i + 1) && credit_card_valid(t.digits(i, i + 1)))
        return 1;
    return 0;
}

std::size_t try_my_number(const Token& t, std::size_t i) {
    if (i == 0 && t.plus()) return 0;
    if (t.len(i) == 12 && t.boundary_ok(i, i + 1) && my_number_valid(t.digits(i, i + 1))) return 1;
    if (i + 3 <= t.size() && t.len(i) == 4 && t.len(i + 1) == 4 && t.len(i + 2) == 4 &&
        t.uniform_sep(i, i + 3, "- .") && t.boundary_ok(i, i + 3) && !t.neighbor_group(i, i + 3, 4) &&
        my_number_valid(t.digits(i, i + 3)))
        return 3;
    return 0;
}

// Phone separators: hyphens, dots and parentheses may mix (03(1234)5678, (03)1234-5678,
// 03.1234.5678); spaces only with spaces.
bool phone_seps(const Token& t, std::size_t i, std::size_t j) {
    if (j - i < 2) return true;
    if (t.uniform_sep(i, j, " ")) return true;
    for (std::size_t g = i; g + 1 < j; ++g)
        if (t.sep(g) == ' ') return false;
    return true;
}

std::size_t try_phone(const Token& t, std::size_t i) {
    std::uint8_t lens[3];
    if (i == 0 && t.plus()) {
        // +81 forms: +81-3-1234-5678, +81 90 1234 5678, +81312345678; the trunk 0 is dropped.
        if (t.len(0) == 2 && t.digits(0, 1) == "81") {
            for (std::size_t k : {4, 2}) {
                if (k > t.size() || !t.boundary_ok(0, k) || !phone_seps(t, 1, k)) continue;
                std::string d = "0" + t.digits(1, k);
                for (std::size_t g = 1; g < k; ++g) lens[g - 1] = static_cast<std::uint8_t>(t.len(g) + (g == 1));
                if (jp_phone_valid(d, std::span<const std::uint8_t>(lens, k - 1))) return k;
            }
        } else if ((t.len(0) == 11 || t.len(0) == 12) && t.boundary_ok(0, 1)) {
            const auto& all = t.digits(0, 1);
            if (all.starts_with("81")) {
                std::string d = "0" + all.substr(2);
                lens[0] = static_cast<std::uint8_t>(d.size());
                if (jp_phone_valid(d, std::span<const std::uint8_t>(lens, 1))) return 1;
            }
        }
        return 0;
    }
    for (std::size_t k : {3, 1}) {
        const std::size_t j = i + k;
        if (j > t.size() || !t.boundary_ok(i, j) || !phone_seps(t, i, j)) continue;
        const auto count = t.digit_count(i, j);
        if (count < 10 || count > 11) continue;
        for (std::size_t g = i; g < j; ++g) lens[g - i] = static_cast<std::uint8_t>(t.len(g));
        if (jp_phone_valid(t.digits(i, j), std::span<const std::uint8_t>(lens, k))) return k;
    }
    return 0;
}

void on_digits(ScanState& s, std::size_t to) {
    if (to <= s.digits_end) return;  // Hyperscan reports every end inside a run
    const char* d = s.data;
    std::size_t b = to;
    while (b > 0) {
        if (is_digit(d[b - 1])) --b;
        else if (b >= 2 && is_sep(d[b - 1]) && is_digit(d[b - 2])) --b;
        else break;
    }
    std::size_t e = to;
    while (e < s.size) {
        if (is_digit(d[e])) ++e;
        else if (e + 1 < s.size && is_sep(d[e]) && is_digit(d[e + 1])) ++e;
        else break;
    }
    s.digits_end = e;

    const Token t(s, b, e);
    const auto& cfg = *s.config;
    const bool card = cfg.enabled(Detector::credit_card), mynum = cfg.enabled(Detector::my_number),
               phone = cfg.enabled(Detector::jp_phone);
    std::size_t i = 0;
    while (i < t.size()) {
        std::size_t used = 0;
        if (i == 0 || t.sep(i - 1) == ' ') {
            if (card && (used = try_card(t, i))) ++s.findings.count(Detector::credit_card);
            else if (mynum && (used = try_my_number(t, i))) ++s.findings.count(Detector::my_number);
            else if (phone && (used = try_phone(t, i))) ++s.findings.count(Detector::jp_phone);
        }
        i += used ? used : 1;
    }
}

bool valid_domain(std::string_view dom) {
    std::size_t labels = 0, pos = 0;
    std::string_view last;
    while (pos <= dom.size()) {
        auto dot = dom.find('.', pos);
        if (dot == std::string_view::npos) dot = dom.size();
        auto label = dom.substr(pos, dot - pos);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
        last = label;
        ++labels;
        pos = dot + 1;
    }
    return labels >= 2 && last.size() >= 2 && std::all_of(last.begin(), last.end(), is_alpha);
}

void on_email(ScanState& s, std::size_t to) {
    if (to <= s.email_end) return;
    const char* d = s.data;
    std::size_t at = to - 1;
    while (at > 0 && d[at] != '@') --at;
    std::size_t ls = at;
    while (ls > 0 && is_email_local(d[ls - 1])) --ls;
    while (ls < at && d[ls] == '.') ++ls;  // "…taro@…": the dots are punctuation
    std::size_t de = at + 1;
    while (de < s.size && is_email_domain(d[de])) ++de;
    s.email_end = de;
    while (de > at + 1 && (d[de - 1] == '.' || d[de - 1] == '-')) --de;  // "… foo@bar.com."
    const std::string_view local(d + ls, at - ls), domain(d + at + 1, de - at - 1);
    if (local.empty() || local.size() > 64 || local.front() == '.' || local.back() == '.' ||
        local.find("..") != std::string_view::npos)
        return;
    if (!valid_domain(domain)) return;
    ++s.findings.count(Detector::email);
}

bool postal_right_ok(const ScanState& s, std::size_t e) {
    if (e >= s.size) return true;
    if (is_digit(s.data[e])) return false;
    return !(s.data[e] == '-' && e + 1 < s.size && is_digit(s.data[e + 1]));
}

void on_postal_mark(ScanState& s, std::size_t to) {
    if (!postal_right_ok(s, to)) return;
    s.postal_end = to;
    ++s.findings.count(Detector::jp_address);
}

void on_postal_pref(ScanState& s, std::size_t to) {
    std::size_t p = std::string_view::npos;
    for (auto pref : kPrefectures) {
        if (to >= pref.size() && std::memcmp(s.data + to - pref.size(), pref.data(), pref.size()) == 0) {
            p = to - pref.size();
            break;
        }
    }
    if (p == std::string_view::npos) return;
    while (p > 0 && s.data[p - 1] == ' ') --p;
    if (p == s.postal_end || p < 8) return;  // already counted as 〒…
    const std::size_t b = p - 8;
    if (b > 0 && (is_digit(s.data[b - 1]) || s.data[b - 1] == '-')) return;
    s.postal_end = p;
    ++s.findings.count(Detector::jp_address);
}

void on_keyword(ScanState& s, std::size_t k, std::size_t to) {
    const std::uint64_t end = s.chars_at(to);
    const std::uint64_t start = end - s.db->keyword_chars[k];
    if (s.has_last && start < s.last.end) return;  // overlaps the previous hit (nested keywords)
    const ScanState::Hit* other = nullptr;
    if (s.has_last && s.last.keyword != k) other = &s.last;
    else if (s.has_other) other = &s.other;
    if (other && start - other->end <= s.config->keyword_proximity) ++s.findings.count(Detector::keywords);
    if (s.has_last && s.last.keyword != k) {
        s.other = s.last;
        s.has_other = true;
    }
    s.last = {k, start, end};
    s.has_last = true;
}

void on_sensitive(ScanState& s, std::size_t t, std::size_t to) {
    const std::size_t len = s.db->sensitive_bytes[t];
    if (to < len || to - len < s.sensitive_end) return;  // inside a counted term (障害 in 精神障害)
    s.sensitive_end = to;
    ++s.findings.count(Detector::sensitive);
}

int on_match(unsigned id, unsigned long long /*from*/, unsigned long long to, unsigned /*flags*/,
             void* ctx) {
    auto& s = *static_cast<ScanState*>(ctx);
    switch (id) {
    case kDigits: on_digits(s, to); break;
    case kEmail: on_email(s, to); break;
    case kPostalMark: on_postal_mark(s, to); break;
    case kPostalPref: on_postal_pref(s, to); break;
    default:
        if (id >= kSensitiveBase) on_sensitive(s, id - kSensitiveBase, to);
        else if (id >= kKeywordBase) on_keyword(s, id - kKeywordBase, to);
    }
    return 0;
}

// A cut after text[p] could split a number that normalisation joins across blanks: a
// digit (or full-width digit's last byte) within the 4 bytes before, and a digit or blank
// right after. Looks at most one byte past p, so feed() and scan() cut alike.
bool inside_number(std::string_view text, std::size_t begin, std::size_t p) {
    const auto at = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    const auto digitish = [](unsigned char c) { return (c >= '0' && c <= '9') || (c >= 0x90 && c <= 0x99); };
    if (p + 1 >= text.size()) return false;
    const unsigned char next = at(p + 1);
    if (!digitish(next) && next != ' ' && next != '\t' && next != '\r' && next != '\n' && next != 0xEF) return false;
    for (std::size_t k = p; k + 4 >= p + 1 && k > begin; --k)
        if (digitish(at(k - 1))) return true;
    return false;
}

// Where to end a chunk starting at `begin`: after a newline that does not break a number
// (no detector spans other line breaks), else after such a space, else at a UTF-8
// character boundary.
std::size_t chunk_end(std::string_view text, std::size_t begin) {
    if (text.size() - begin <= kChunk) return text.size();
    const std::size_t limit = begin + kChunk;
    for (char c : {'\n', ' '}) {
        std::size_t len = kChunk;
        while (const void* hit = memrchr(text.data() + begin, c, len)) {
            const std::size_t p = static_cast<std::size_t>(static_cast<const char*>(hit) - text.data());
            if (!inside_number(text, begin, p)) return p + 1;
            len = p - begin;
        }
    }
    std::size_t e = limit;
    while (e > begin + 1 && (static_cast<unsigned char>(text[e]) & 0xC0) == 0x80) --e;
    return e;
}

}  // namespace

void Scanner::begin() {
    if (!session_) session_ = std::make_unique<Session>();
    session_->state = detail::ScanState{};
    session_->state.db = db_.get();
    session_->state.config = &config_;
    session_->pending.clear();
    session_->error.clear();
    session_->edm.clear();
    for (const auto& e : config_.edm) session_->edm.emplace_back(*e.matcher);
}

void Scanner::process_chunk(std::string_view raw) {
    auto& s = session_->state;
    if (!db_->db || !session_->error.empty() || raw.empty()) return;
    if (buffer_.size() < raw.size()) buffer_.resize(std::max(raw.size(), kChunk + 1));
    const std::size_t n = normalize_into(raw, buffer_.data());
    s.reset_chunk(buffer_.data(), n);
    const auto rc =
        hs_scan(db_->db.get(), buffer_.data(), static_cast<unsigned>(n), 0, scratch_.get(), on_match, &s);
    if (rc != HS_SUCCESS) {
        session_->error = "content scan failed (Hyperscan error " + std::to_string(rc) +
                          (rc == HS_SCRATCH_IN_USE ? ": scanner used from two threads" : "") + ")";
        return;
    }
    if (db_->keywords) s.chunk_chars += s.chars_at(n) - s.chunk_chars;
}

void Scanner::feed(std::string_view data) {
    if (!session_) begin();
    for (auto& e : session_->edm) e.feed(data);
    auto& pending = session_->pending;
    while (!data.empty()) {
        if (pending.empty() && data.size() > kChunk) {
            // Large pieces are cut in place, without copying.
            const std::size_t end = chunk_end(data, 0);
            process_chunk(data.substr(0, end));
            data.remove_prefix(end);
            continue;
        }
        const std::size_t take = std::min(data.size(), kChunk + 1 - pending.size());
        pending.append(data.substr(0, take));
        data.remove_prefix(take);
        if (pending.size() > kChunk) {
            const std::size_t end = chunk_end(pending, 0);
            process_chunk(std::string_view(pending).substr(0, end));
            pending.erase(0, end);
        }
    }
}

tl::expected<Findings, std::string> Scanner::finish() {
    if (!session_) begin();
    auto& pending = session_->pending;
    while (!pending.empty()) {
        const std::size_t end = chunk_end(pending, 0);
        process_chunk(std::string_view(pending).substr(0, end));
        pending.erase(0, end);
    }
    auto findings = session_->state.findings;
    for (std::size_t i = 0; i < session_->edm.size(); ++i) {
        auto persons = session_->edm[i].finish();
        if (!persons) {
            if (session_->error.empty()) session_->error = "detector edm:" + config_.edm[i].name + ": " + persons.error();
            continue;
        }
        findings.edm.push_back({config_.edm[i].name, *persons});
        findings.persons += *persons;
    }
    auto error = std::move(session_->error);
    begin();
    if (!error.empty()) return tl::unexpected(std::move(error));
    return findings;
}

tl::expected<Findings, std::string> Scanner::scan(std::string_view text) {
    begin();
    feed(text);
    return finish();
}

}  // namespace custguard::scan
