// A synthetic CRM for the EDM tests and benchmark: names in kanji without spaces, unique
// mobile numbers, e-mail addresses and addresses; and documents that hold some of its
// customers among other text.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace custguard::edm::testing {

struct Customer {
    std::string id, name, phone, email, address, birth;
};

inline std::string pad(std::uint64_t v, int width) {
    std::string s = std::to_string(v);
    return std::string(s.size() < static_cast<std::size_t>(width) ? width - s.size() : 0, '0') + s;
}

inline std::vector<Customer> make_crm(std::size_t rows) {
    static const char* family[] = {"佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤",
                                   "吉田", "山田", "佐々木", "山口", "松本", "井上", "木村", "林", "斎藤", "清水"};
    static const char* given[] = {"太郎", "花子", "一郎", "美咲", "翔太", "陽菜", "大輔", "由美", "健一", "さくら",
                                  "直樹", "恵子", "拓也", "彩", "浩二", "明美", "悠斗", "結衣", "誠", "洋子"};
    static const char* place[] = {"東京都千代田区丸の内", "大阪府大阪市北区梅田", "愛知県名古屋市中区栄",
                                  "福岡県福岡市博多区博多駅前", "北海道札幌市中央区北一条西", "神奈川県横浜市西区みなとみらい"};
    std::vector<Customer> crm;
    std::uint64_t x = 88172645463325252ull;  // xorshift: the same CRM on every run
    auto next = [&] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return x;
    };
    for (std::size_t i = 0; i < rows; ++i) {
        Customer c;
        c.id = "C" + pad(i + 1, 6);
        c.name = std::string(family[next() % 20]) + given[next() % 20];
        // Unique: 090/080/070 and a number derived from i (never 0000-0000).
        const std::uint64_t n = 10000000 + i * 7919 % 89990000;
        const char* prefix[] = {"090", "080", "070"};
        c.phone = std::string(prefix[i % 3]) + "-" + pad(n / 10000, 4) + "-" + pad(n % 10000, 4);
        c.email = "customer" + std::to_string(i) + "@example.co.jp";
        c.address = std::string(place[next() % 6]) + std::to_string(1 + next() % 9) + "-" + std::to_string(1 + next() % 30) +
                    "-" + std::to_string(1 + next() % 20);
        c.birth = std::to_string(1940 + next() % 60) + "-" + pad(1 + next() % 12, 2) + "-" + pad(1 + next() % 28, 2);
        crm.push_back(std::move(c));
    }
    return crm;
}

inline std::string csv_field(const std::string& v) {
    if (v.find_first_of(",\"\n") == std::string::npos) return v;
    std::string out = "\"";
    for (char c : v) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

inline std::string make_csv(const std::vector<Customer>& crm) {
    std::string csv = "顧客ID,氏名,電話番号,メール,住所,生年月日\r\n";
    for (const auto& c : crm)
        csv += c.id + "," + csv_field(c.name) + "," + c.phone + "," + c.email + "," + csv_field(c.address) + "," + c.birth + "\r\n";
    return csv;
}

inline constexpr const char* schema_toml = R"(
columns = ["id", "name", "phone", "email", "address", "birth"]
header = true

[primary]
column = "phone"
kind = "phone"

[supporting]
columns = ["name", "address"]
min_supporting = 1
near = 200
)";

// Full-width digits and hyphens, as Japanese word processors write them.
inline std::string full_width(const std::string& ascii) {
    std::string out;
    for (char c : ascii) {
        if (c >= '0' && c <= '9') out += std::string("\xEF\xBC") + static_cast<char>(0x90 + (c - '0'));
        else if (c == '-') out += "－";
        else out += c;
    }
    return out;
}

inline std::string filler(std::size_t i) {
    static const char* lines[] = {
        "本日の営業会議では第3四半期の売上見込みについて議論した。\n",
        "請求書番号 INV-2024-0001 の支払期日は月末です。\n",
        "The quarterly report is attached; see page 12 for details.\n",
        "会議室Bは14:00から16:00まで予約済み。参加者は8名。\n",
    };
    return lines[i % 4];
}

// A document holding the customers at `picks` in varied layouts, with other text between.
inline std::string make_document(const std::vector<Customer>& crm, const std::vector<std::size_t>& picks) {
    std::string doc = "顧客対応記録\n\n";
    for (std::size_t k = 0; k < picks.size(); ++k) {
        const auto& c = crm[picks[k]];
        switch (k % 4) {
        case 0: doc += "お客様：" + c.name + " 様　電話：" + full_width(c.phone) + "\n"; break;
        case 1:
            doc += "TEL (" + c.phone.substr(0, 3) + ") " + c.phone.substr(4) + "　ご住所 " + c.address + "\n";
            break;
        case 2: doc += c.id + "," + c.name.substr(0, 3) + " " + c.name.substr(3) + "," + c.phone + "," + c.email + "\n"; break;
        case 3: doc += "連絡先 " + c.phone.substr(0, 3) + c.phone.substr(4, 4) + c.phone.substr(9) + "（" + c.name + "）\n"; break;
        }
        doc += filler(k);
    }
    return doc;
}

}  // namespace custguard::edm::testing
