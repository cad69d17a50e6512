// Mail text: RFC 5322 headers, RFC 2047 encoded words for non-ASCII headers, a UTF-8
// text/plain body in base64 (safe through every relay, readable in Japanese and English
// mail clients alike).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace custguard::notify {

std::string base64_encode(std::string_view data);
// Wrapped at 76 columns with CRLF, as RFC 2045 asks of a base64 body.
std::string base64_body(std::string_view data);

// `=?UTF-8?B?...?=` words (each at most 75 characters, never splitting a UTF-8 sequence),
// separated by CRLF + space for folding; pure ASCII without specials is returned as is.
std::string encode_header_word(std::string_view utf8);

// Remove CR/LF and other control characters: header values must never break a header.
std::string sanitize_header(std::string_view text);

// RFC 5322 date ("Fri, 27 Nov 2026 17:49:31 +0000") of seconds since the epoch, in UTC.
std::string rfc5322_date(std::int64_t epoch_seconds);

struct MailMessage {
    std::string from;
    std::vector<std::string> to;
    std::string subject;  // UTF-8
    std::string body;     // UTF-8 text, LF line ends
    std::int64_t date = 0;
    std::string message_id;  // without angle brackets
};

// The complete message (headers + body) with CRLF line ends.
std::string render_mail(const MailMessage& message);

}  // namespace custguard::notify
