#include <catch2/catch.hpp>

#include <string>

#include "custguard/common/json_string.hpp"

using custguard::common::json_string;

TEST_CASE("json strings stay valid for any bytes", "[common][unit]") {
    struct Case {
        const char* name;
        std::string in;
        std::string out;
    };
    const Case cases[] = {
        {"quotes, backslash, newline", "a\"b\\c\n", "\"a\\\"b\\\\c\\n\""},
        {"tab and carriage return", "\t\r", "\"\\t\\r\""},
        {"UTF-8 kept", "顧客", "\"顧客\""},
        {"control byte", "\x01", "\"\\u0001\""},
        {"DEL", "\x7f", "\"\\u007f\""},
        {"NUL inside", std::string("a\0b", 3), "\"a\\u0000b\""},
        {"invalid bytes", "\xff\xc3", "\"\xef\xbf\xbd\xef\xbf\xbd\""},
        {"surrogate", "\xed\xa0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""},
        {"overlong slash", "\xc0\xaf", "\"\xef\xbf\xbd\xef\xbf\xbd\""},
        {"beyond U+10FFFF", "\xf4\x90\x80\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""},
        {"4-byte kept", "\xf0\x9f\x93\x84", "\"\xf0\x9f\x93\x84\""},
        {"truncated at end", "ok\xe9\xa1", "\"ok\xef\xbf\xbd\xef\xbf\xbd\""},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        CHECK(json_string(c.in) == c.out);
    }
}
