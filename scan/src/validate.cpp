#include "custguard/scan/validate.hpp"

#include <algorithm>

namespace custguard::scan {

namespace {

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "0000 0000 0000 0000" and friends pass Luhn and check digits; no real number looks so.
bool single_repeated_digit(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [&](char c) { return c == s.front(); });
}

int prefix_value(std::string_view digits, std::size_t n) {
    int v = 0;
    for (std::size_t i = 0; i < n && i < digits.size(); ++i) v = v * 10 + (digits[i] - '0');
    return v;
}

}  // namespace

bool luhn_valid(std::string_view digits) {
    if (!all_digits(digits)) return false;
    int sum = 0;
    bool dbl = false;
    for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
        int d = *it - '0';
        if (dbl) {
            d *= 2;
            if (d > 9) d -= 9;
        }
        sum += d;
        dbl = !dbl;
    }
    return sum % 10 == 0;
}

std::optional<CardBrand> card_brand(std::string_view d) {
    if (!all_digits(d)) return std::nullopt;
    const auto len = d.size();
    const int p1 = prefix_value(d, 1), p2 = prefix_value(d, 2), p3 = prefix_value(d, 3),
              p4 = prefix_value(d, 4), p6 = prefix_value(d, 6);
    if (p1 == 4 && (len == 13 || len == 16 || len == 19)) return CardBrand::visa;
    if (((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) && len == 16) return CardBrand::mastercard;
    if ((p2 == 34 || p2 == 37) && len == 15) return CardBrand::amex;
    if (p4 >= 3528 && p4 <= 3589 && len >= 16 && len <= 19) return CardBrand::jcb;
    if (((p3 >= 300 && p3 <= 305) || p4 == 3095 || p2 == 36 || p2 == 38 || p2 == 39) && len >= 14 &&
        len <= 19)
        return CardBrand::diners;
    if ((p4 == 6011 || (p3 >= 644 && p3 <= 649) || p2 == 65 || (p6 >= 622126 && p6 <= 622925)) &&
        len >= 16 && len <= 19)
        return CardBrand::discover;
    if (p2 == 62 && len >= 16 && len <= 19) return CardBrand::unionpay;
    return std::nullopt;
}

bool credit_card_valid(std::string_view digits) {
    return digits.size() >= 13 && digits.size() <= 19 && card_brand(digits) && luhn_valid(digits) &&
           !single_repeated_digit(digits);
}

std::optional<int> my_number_check_digit(std::string_view first11) {
    if (first11.size() != 11 || !all_digits(first11)) return std::nullopt;
    int sum = 0;
    for (int n = 1; n <= 11; ++n) {
        const int p = first11[11 - n] - '0';  // n = 1 is the digit left of the check digit
        const int q = n <= 6 ? n + 1 : n - 5;
        sum += p * q;
    }
    const int r = sum % 11;
    return r <= 1 ? 0 : 11 - r;
}

bool my_number_valid(std::string_view digits) {
    if (digits.size() != 12 || !all_digits(digits) || single_repeated_digit(digits)) return false;
    auto check = my_number_check_digit(digits.substr(0, 11));
    return check && *check == digits[11] - '0';
}

bool jp_phone_valid(std::string_view d, std::span<const std::uint8_t> groups) {
    if (!all_digits(d) || d[0] != '0' || d.size() < 10 || d.size() > 11) return false;
    if (d[1] == '0') return false;  // 00x: international call prefixes, not numbers
    auto grouped = [&](std::initializer_list<std::uint8_t> want) {
        return std::equal(groups.begin(), groups.end(), want.begin(), want.end());
    };
    const bool contiguous = groups.size() == 1;
    if (!contiguous && groups.size() != 3) return false;
    const auto p4 = d.substr(0, 4);
    if (d.size() == 11) {
        // Mobile, IP phone, M2M: 0X0-XXXX-XXXX; free dial 0800-XXX-XXXX.
        if (d[2] == '0' && d[1] != '1') return contiguous || grouped({3, 4, 4});
        if (p4 == "0800") return contiguous || grouped({4, 3, 4});
        return false;
    }
    // 10 digits. Free dial, navi dial etc.: 0120-XXX-XXX.
    if (p4 == "0120" || p4 == "0570" || p4 == "0990" || p4 == "0180")
        return contiguous || grouped({4, 3, 3});
    // Fixed lines: area code (2–5 digits with the 0) + local exchange, then 4 digits.
    if (contiguous) return true;
    return groups[0] >= 2 && groups[0] <= 5 && groups[1] >= 1 && groups[2] == 4;
}

}  // namespace custguard::scan
