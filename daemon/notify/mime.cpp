#include "daemon/notify/mime.hpp"

#include <ctime>

#include <fmt/format.h>

namespace custguard::notify {

namespace {
constexpr char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

bool plain_ascii(std::string_view s) {
    for (unsigned char c : s)
        if (c < 0x20 || c >= 0x7f || c == '=' || c == '?') return false;
    return true;
}

// Length of the UTF-8 sequence starting with `lead` (1 for stray bytes).
std::size_t utf8_len(unsigned char lead) {
    if (lead < 0xc0) return 1;
    if (lead < 0xe0) return 2;
    if (lead < 0xf0) return 3;
    return 4;
}
}  // namespace

std::string base64_encode(std::string_view data) {
    std::string out;
    out.reserve((data.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < data.size(); i += 3) {
        const std::uint32_t v = (std::uint8_t(data[i]) << 16) | (std::uint8_t(data[i + 1]) << 8) | std::uint8_t(data[i + 2]);
        out += b64[v >> 18];
        out += b64[(v >> 12) & 63];
        out += b64[(v >> 6) & 63];
        out += b64[v & 63];
    }
    if (i + 1 == data.size()) {
        const std::uint32_t v = std::uint8_t(data[i]) << 16;
        out += b64[v >> 18];
        out += b64[(v >> 12) & 63];
        out += "==";
    } else if (i + 2 == data.size()) {
        const std::uint32_t v = (std::uint8_t(data[i]) << 16) | (std::uint8_t(data[i + 1]) << 8);
        out += b64[v >> 18];
        out += b64[(v >> 12) & 63];
        out += b64[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

std::string base64_body(std::string_view data) {
    const std::string flat = base64_encode(data);
    std::string out;
    for (std::size_t i = 0; i < flat.size(); i += 76) {
        out.append(flat, i, 76);
        out += "\r\n";
    }
    return out;
}

std::string sanitize_header(std::string_view text) {
    std::string out;
    for (unsigned char c : text) out += (c < 0x20 || c == 0x7f) ? ' ' : static_cast<char>(c);
    return out;
}

std::string encode_header_word(std::string_view utf8) {
    const std::string clean = sanitize_header(utf8);
    if (plain_ascii(clean) && clean.size() <= 900) return clean;
    // "=?UTF-8?B?" + "?=" is 12 characters: 63 left for base64, i.e. 45 raw bytes per word.
    constexpr std::size_t max_raw = 45;
    std::string out;
    std::size_t i = 0;
    while (i < clean.size()) {
        std::size_t end = i;
        while (end < clean.size()) {
            const std::size_t n = utf8_len(static_cast<unsigned char>(clean[end]));
            if (end + n - i > max_raw) break;
            end += n;
        }
        if (end == i) end = std::min(clean.size(), i + max_raw);
        if (!out.empty()) out += "\r\n ";
        out += "=?UTF-8?B?" + base64_encode(std::string_view(clean).substr(i, end - i)) + "?=";
        i = end;
    }
    return out;
}

std::string rfc5322_date(std::int64_t epoch_seconds) {
    static constexpr const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const std::time_t t = epoch_seconds;
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    return fmt::format("{}, {:02} {} {} {:02}:{:02}:{:02} +0000", days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
                       tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

namespace {
// "部長 <manager@example.co.jp>": headers are ASCII (RFC 5322), so a non-ASCII display
// name goes as encoded words; the address itself stays as written.
std::string mailbox_header(std::string_view mailbox) {
    const std::string clean = sanitize_header(mailbox);
    const auto lt = clean.rfind('<');
    if (lt == std::string::npos || lt == 0) return clean;
    std::string name = clean.substr(0, lt);
    while (!name.empty() && name.back() == ' ') name.pop_back();
    if (plain_ascii(name)) return clean;
    return encode_header_word(name) + " " + clean.substr(lt);
}
}  // namespace

std::string render_mail(const MailMessage& m) {
    std::string to;
    for (const auto& r : m.to) to += (to.empty() ? "" : ", ") + mailbox_header(r);
    std::string body;
    body.reserve(m.body.size() + m.body.size() / 16);
    // Normalise to CRLF before encoding: mail text lines end in CRLF on the wire.
    for (char c : m.body) {
        if (c == '\r') continue;
        if (c == '\n') body += '\r';
        body += c;
    }
    std::string out;
    out += "From: " + mailbox_header(m.from) + "\r\n";
    out += "To: " + to + "\r\n";
    out += "Subject: " + encode_header_word(m.subject) + "\r\n";
    out += "Date: " + rfc5322_date(m.date) + "\r\n";
    if (!m.message_id.empty()) out += "Message-ID: <" + sanitize_header(m.message_id) + ">\r\n";
    out += "MIME-Version: 1.0\r\n";
    out += "Content-Type: text/plain; charset=UTF-8\r\n";
    out += "Content-Transfer-Encoding: base64\r\n";
    out += "Auto-Submitted: auto-generated\r\n";
    out += "X-Mailer: custguardd\r\n";
    out += "\r\n";
    out += base64_body(body);
    return out;
}

}  // namespace custguard::notify
