// Helpers shared by the EDM sources (not installed).
#pragma once

#include <string>
#include <string_view>

namespace custguard::edm::detail {

bool is_space(char32_t c);
bool is_hyphen(char32_t c);
// Dropped from phone numbers, ids and regex matches: blanks, hyphens, . ( ) / ・
bool is_separator(char32_t c);
bool is_email_char(char32_t c);
bool valid_email(std::string_view folded);
void append_utf8(std::string& out, char32_t c);
std::string utf8(std::u32string_view s);

}  // namespace custguard::edm::detail
