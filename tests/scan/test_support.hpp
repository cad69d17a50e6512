// Independent check-digit generators for synthetic test data (not the library's code, so
// a wrong validator fails the tests), and a temporary file.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>

namespace scan_test {

inline int luhn_digit(const std::string& prefix) {
    int sum = 0;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        int d = prefix[prefix.size() - 1 - i] - '0';
        if (i % 2 == 0) d = d * 2 > 9 ? d * 2 - 9 : d * 2;  // doubled once the check digit follows
        sum += d;
    }
    return (10 - sum % 10) % 10;
}
inline std::string luhn_complete(const std::string& prefix) { return prefix + char('0' + luhn_digit(prefix)); }
inline std::string luhn_wrong(const std::string& prefix) {
    return prefix + char('0' + (luhn_digit(prefix) + 1) % 10);
}

// Statutory My Number check digit (weights n+1 for n=1..6, n-5 for n=7..11).
inline int my_number_digit(const std::string& first11) {
    int sum = 0;
    for (int n = 1; n <= 11; ++n) sum += (first11[11 - n] - '0') * (n <= 6 ? n + 1 : n - 5);
    const int r = sum % 11;
    return r <= 1 ? 0 : 11 - r;
}
inline std::string my_number_complete(const std::string& first11) {
    return first11 + char('0' + my_number_digit(first11));
}
inline std::string my_number_wrong(const std::string& first11) {
    return first11 + char('0' + (my_number_digit(first11) + 1) % 10);
}

inline std::string random_digits(std::mt19937_64& rng, std::size_t n) {
    std::string s;
    std::uniform_int_distribution<int> d(0, 9);
    for (std::size_t i = 0; i < n; ++i) s += char('0' + d(rng));
    return s;
}

// Full-width digits (U+FF10..FF19).
inline std::string full_width(const std::string& ascii) {
    std::string out;
    for (char c : ascii) {
        if (c >= '0' && c <= '9') {
            out += "\xEF\xBC";
            out += char(0x90 + (c - '0'));
        } else if (c == '-') {
            out += "－";
        } else if (c == ' ') {
            out += "　";
        } else {
            out += c;
        }
    }
    return out;
}

inline std::string group(const std::string& d, const std::string& sep, std::initializer_list<int> sizes) {
    std::string out;
    std::size_t i = 0;
    for (int s : sizes) {
        if (!out.empty()) out += sep;
        out += d.substr(i, static_cast<std::size_t>(s));
        i += static_cast<std::size_t>(s);
    }
    return out;
}

// A temporary file with `contents`, removed at scope exit.
struct TempFile {
    std::string path;
    explicit TempFile(const std::string& contents) {
        char tmpl[] = "/tmp/custguard-scan-test-XXXXXX";
        const int fd = ::mkstemp(tmpl);
        if (fd < 0) throw std::runtime_error("mkstemp failed");
        ::close(fd);
        path = tmpl;
        std::ofstream(path, std::ios::binary) << contents;
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    ~TempFile() { std::remove(path.c_str()); }
};

}  // namespace scan_test
