#include "postscript_device.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

namespace custguard::scan::detail {

namespace {

// Names that identify or describe the output device. Matched as whole names.
constexpr std::array<std::string_view, 17> kDeviceNames = {
    "currentdevice",  ".devicename",      "getdeviceprops", ".getdeviceparams", "getdeviceparams",
    ".currentoutputdevice", "OutputDevice", "TextFormat",   "statusdict",       "serverdict",
    "product",        "serialnumber",     "revision",       "version",          "deviceinfo",
    ".getdevice",     "finddevice",
};
// Of those, the ones that also occur as glyph names or ordinary words; checked only as
// executable names, not as literals or inside strings.
constexpr std::array<std::string_view, 3> kExecutableOnly = {"product", "revision", "version"};
// currentpagedevice may be followed by one of these keys (optionally after dup).
constexpr std::array<std::string_view, 2> kPageDeviceKeys = {"PageSize", ".HWMargins"};

constexpr int kMaxDepth = 3;  // eexec sections inside decrypted sections

bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == 0; }
bool is_delim(unsigned char c) {
    return c == '(' || c == ')' || c == '<' || c == '>' || c == '[' || c == ']' || c == '{' || c == '}' || c == '/' ||
           c == '%';
}

bool device_name(std::string_view n, bool executable) {
    if (std::find(kDeviceNames.begin(), kDeviceNames.end(), n) == kDeviceNames.end()) return false;
    return executable || std::find(kExecutableOnly.begin(), kExecutableOnly.end(), n) == kExecutableOnly.end();
}

// A device name inside decoded string contents (constructed names: (currentdevice) cvn).
std::optional<std::string_view> name_in_string(std::string_view s) {
    for (auto n : kDeviceNames) {
        if (std::find(kExecutableOnly.begin(), kExecutableOnly.end(), n) != kExecutableOnly.end()) continue;
        if (s.find(n.front() == '.' ? n.substr(1) : n) != std::string_view::npos) return n;
    }
    if (s.find("currentpagedevice") != std::string_view::npos) return "currentpagedevice";
    return std::nullopt;
}

int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Type 1 eexec decryption (key 55665); the first four plain bytes are random.
std::string eexec_decrypt(std::string_view cipher) {
    std::vector<unsigned char> bytes;
    bytes.reserve(cipher.size());
    std::size_t probe = 0, hex_digits = 0;
    for (std::size_t i = 0; i < cipher.size() && probe < 4; ++i) {
        if (is_space(static_cast<unsigned char>(cipher[i]))) continue;
        ++probe;
        hex_digits += hex_value(static_cast<unsigned char>(cipher[i])) >= 0;
    }
    if (probe == 4 && hex_digits == 4) {
        int hi = -1;
        for (unsigned char c : cipher) {
            const int v = hex_value(c);
            if (v < 0) continue;
            if (hi < 0) hi = v;
            else {
                bytes.push_back(static_cast<unsigned char>(hi * 16 + v));
                hi = -1;
            }
        }
    } else {
        bytes.assign(cipher.begin(), cipher.end());
    }
    std::string plain;
    plain.reserve(bytes.size());
    std::uint16_t r = 55665;
    for (unsigned char c : bytes) {
        plain += static_cast<char>(c ^ (r >> 8));
        r = static_cast<std::uint16_t>((c + r) * 52845u + 22719u);
    }
    return plain.size() > 4 ? plain.substr(4) : std::string();
}

std::string ascii85_decode(std::string_view s) {
    std::string out;
    std::uint32_t tuple = 0;
    int n = 0;
    for (unsigned char c : s) {
        if (c == 'z' && n == 0) {
            out.append(4, '\0');
            continue;
        }
        if (c < '!' || c > 'u') continue;
        tuple = tuple * 85 + (c - '!');
        if (++n == 5) {
            for (int k = 3; k >= 0; --k) out += static_cast<char>((tuple >> (8 * k)) & 0xFF);
            tuple = 0;
            n = 0;
        }
    }
    if (n > 1) {
        for (int k = n; k < 5; ++k) tuple = tuple * 85 + 84;
        for (int k = 3; k > 3 - (n - 1); --k) out += static_cast<char>((tuple >> (8 * k)) & 0xFF);
    }
    return out;
}

struct Token {
    enum Kind { executable, immediate, literal, string, open, close } kind;
    std::string_view name;  // names
    std::string text;       // decoded strings
};

class Scan {
public:
    Scan(std::string_view p, int depth) : p_(p), depth_(depth) {}

    std::optional<std::string> run() {
        while (auto t = next()) {
            if (auto why = check(*t)) return why;
            if (t->kind == Token::executable && t->name == "eexec" && depth_ < kMaxDepth) {
                // The encrypted section runs to the font's cleartomark.
                const auto end = p_.find("cleartomark", i_);
                const auto section = p_.substr(i_, end == std::string_view::npos ? std::string_view::npos : end - i_);
                if (auto why = Scan(eexec_decrypt(section), depth_ + 1).run())
                    return *why + " (in an eexec-encrypted section)";
                i_ = end == std::string_view::npos ? p_.size() : end;
            }
            push(std::move(*t));
        }
        return std::nullopt;
    }

private:
    std::string_view p_;
    int depth_;
    std::size_t i_ = 0;
    std::vector<Token> recent_;  // the last few tokens, newest last

    void push(Token t) {
        if (recent_.size() == 6) recent_.erase(recent_.begin());
        recent_.push_back(std::move(t));
    }
    const Token* back(std::size_t k) const { return k < recent_.size() ? &recent_[recent_.size() - 1 - k] : nullptr; }

    std::optional<std::string> check(const Token& t) {
        if (t.kind == Token::string) {
            if (auto n = name_in_string(t.text))
                return "uses the device-introspection name " + std::string(*n) + " (in a string)";
            return std::nullopt;
        }
        if (t.kind != Token::executable && t.kind != Token::immediate && t.kind != Token::literal) {
            return pending_page_device(t);
        }
        if (auto why = pending_page_device(t)) return why;
        const bool exec = t.kind != Token::literal;
        if (device_name(t.name, exec)) return "uses the device-introspection name " + std::string(t.name);
        if (t.name == "currentpagedevice") {
            if (!exec) return std::string("uses the device-introspection name currentpagedevice");
            page_device_ = 1;
            return std::nullopt;
        }
        if (!exec) return std::nullopt;
        if (t.name == "token") return std::string("builds code at run time (token), which a scan cannot see");
        if (t.name == "cvn") {
            const Token* arg = back(0);
            if (!arg || arg->kind != Token::string)
                return std::string("builds names at run time (cvn of a computed string), which a scan cannot see");
        }
        if (t.name == "cvx") {
            for (std::size_t k = 0; k < 4; ++k)
                if (const Token* b = back(k); b && b->kind == Token::executable && b->name == "filter")
                    return std::string("runs decoded data as code (filter … cvx), which a scan cannot see");
        }
        return std::nullopt;
    }

    // After currentpagedevice: [dup] /PageSize or /.HWMargins.
    int page_device_ = 0;  // 0: none pending, 1: just seen, 2: seen dup after it
    std::optional<std::string> pending_page_device(const Token& t) {
        if (page_device_ == 0) return std::nullopt;
        if (page_device_ == 1 && t.kind == Token::executable && t.name == "dup") {
            page_device_ = 2;
            return std::nullopt;
        }
        page_device_ = 0;
        if (t.kind == Token::literal &&
            std::find(kPageDeviceKeys.begin(), kPageDeviceKeys.end(), t.name) != kPageDeviceKeys.end())
            return std::nullopt;
        return std::string("reads the page device (currentpagedevice) beyond its paper size");
    }

    std::optional<Token> next() {
        const std::size_t n = p_.size();
        while (i_ < n) {
            const auto c = static_cast<unsigned char>(p_[i_]);
            if (is_space(c)) {
                ++i_;
                continue;
            }
            if (c == '%') {  // comment: not executed
                while (i_ < n && p_[i_] != '\n' && p_[i_] != '\r') ++i_;
                continue;
            }
            if (c == '(') return Token{Token::string, {}, literal_string()};
            if (c == '<') {
                if (i_ + 1 < n && p_[i_ + 1] == '<') {
                    i_ += 2;
                    return Token{Token::open, {}, {}};
                }
                if (i_ + 1 < n && p_[i_ + 1] == '~') {
                    const auto end = p_.find("~>", i_ + 2);
                    const auto body = p_.substr(i_ + 2, end == std::string_view::npos ? std::string_view::npos : end - i_ - 2);
                    i_ = end == std::string_view::npos ? n : end + 2;
                    return Token{Token::string, {}, ascii85_decode(body)};
                }
                return Token{Token::string, {}, hex_string()};
            }
            if (c == '>') {
                i_ += (i_ + 1 < n && p_[i_ + 1] == '>') ? 2 : 1;
                return Token{Token::close, {}, {}};
            }
            if (c == '[' || c == '{') {
                ++i_;
                return Token{Token::open, {}, {}};
            }
            if (c == ']' || c == '}' || c == ')') {
                ++i_;
                return Token{Token::close, {}, {}};
            }
            Token::Kind kind = Token::executable;
            if (c == '/') {
                ++i_;
                kind = Token::literal;
                if (i_ < n && p_[i_] == '/') {
                    ++i_;
                    kind = Token::immediate;
                }
            }
            const std::size_t start = i_;
            while (i_ < n && !is_space(static_cast<unsigned char>(p_[i_])) && !is_delim(static_cast<unsigned char>(p_[i_]))) ++i_;
            return Token{kind, p_.substr(start, i_ - start), {}};
        }
        return std::nullopt;
    }

    std::string literal_string() {
        std::string out;
        int depth = 0;
        const std::size_t n = p_.size();
        ++i_;  // '('
        while (i_ < n) {
            const char c = p_[i_++];
            if (c == '(') ++depth;
            else if (c == ')') {
                if (depth-- == 0) break;
            } else if (c == '\\' && i_ < n) {
                const char e = p_[i_++];
                switch (e) {
                case 'n': out += '\n'; continue;
                case 'r': out += '\r'; continue;
                case 't': out += '\t'; continue;
                case 'b': out += '\b'; continue;
                case 'f': out += '\f'; continue;
                case '\r':
                    if (i_ < n && p_[i_] == '\n') ++i_;
                    continue;
                case '\n': continue;
                default: break;
                }
                if (e >= '0' && e <= '7') {
                    int v = e - '0';
                    for (int k = 0; k < 2 && i_ < n && p_[i_] >= '0' && p_[i_] <= '7'; ++k) v = v * 8 + (p_[i_++] - '0');
                    out += static_cast<char>(v & 0xFF);
                } else {
                    out += e;
                }
                continue;
            }
            out += c;
        }
        return out;
    }

    std::string hex_string() {
        std::string out;
        int hi = -1;
        ++i_;  // '<'
        while (i_ < p_.size() && p_[i_] != '>') {
            const int v = hex_value(static_cast<unsigned char>(p_[i_++]));
            if (v < 0) continue;
            if (hi < 0) hi = v;
            else {
                out += static_cast<char>(hi * 16 + v);
                hi = -1;
            }
        }
        if (hi >= 0) out += static_cast<char>(hi * 16);
        if (i_ < p_.size()) ++i_;
        return out;
    }
};

}  // namespace

std::optional<std::string> device_dependence(std::string_view program) {
    if (auto why = Scan(program, 0).run()) return "PostScript that depends on the output device: " + *why;
    return std::nullopt;
}

}  // namespace custguard::scan::detail
