// Check-digit and format validators used on the candidates the pattern matcher finds.
// Exposed for tests and for tools that want to explain a single number.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace custguard::scan {

// Luhn (mod 10) over ASCII digits; false on any non-digit or on an empty string.
bool luhn_valid(std::string_view digits);

enum class CardBrand { visa, mastercard, amex, jcb, diners, discover, unionpay };
// The brand whose IIN prefix and length fit `digits`; nullopt when none does.
std::optional<CardBrand> card_brand(std::string_view digits);
// Brand match, length 13–19, Luhn-valid, not a single repeated digit.
bool credit_card_valid(std::string_view digits);

// My Number (個人番号) check digit for the first 11 digits: weights n+1 (n = 1..6) and n−5
// (n = 7..11), n counted from the digit left of the check digit; r = sum mod 11; check
// digit 0 if r <= 1 else 11 − r. nullopt unless `first11` is 11 ASCII digits.
std::optional<int> my_number_check_digit(std::string_view first11);
// 12 digits, correct check digit, not a single repeated digit.
bool my_number_valid(std::string_view digits);

// A domestic Japanese phone number as digits (leading 0, 10 or 11 digits) and its group
// lengths as written (one group when written without separators).
bool jp_phone_valid(std::string_view digits, std::span<const std::uint8_t> groups);

}  // namespace custguard::scan
