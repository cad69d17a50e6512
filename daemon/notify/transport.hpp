// Delivery over the network: SMTP (libcurl; smtp:// with optional STARTTLS, smtps://,
// optional AUTH) and webhooks (HTTP(S) POST of JSON). One blocking attempt per call with
// bounded timeouts; retrying is the queue's business.
#pragma once

#include <atomic>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include "daemon/notify/mime.hpp"

namespace custguard::notify {

struct SmtpConfig {
    std::string url = "smtp://127.0.0.1:25";  // smtp://host[:port] or smtps://host[:port]
    bool starttls = false;  // smtp://: require STARTTLS (refuse to send in clear)
    std::string username;   // empty: no AUTH
    std::string password;
    std::string ca_file;    // empty: the system's CA store
    long connect_timeout_ms = 5000;
    long timeout_ms = 30000;
    const std::atomic<bool>* cancel = nullptr;  // set: abort the transfer (shutdown)
};

struct WebhookConfig {
    std::string url;
    std::string ca_file;
    long connect_timeout_ms = 5000;
    long timeout_ms = 15000;
    const std::atomic<bool>* cancel = nullptr;
};

// Process-wide libcurl set-up; idempotent and thread-safe.
void curl_global();

tl::expected<void, std::string> send_mail(const SmtpConfig& config, const MailMessage& message);
// 2xx is success; anything else (including redirects, which we do not follow) fails.
tl::expected<void, std::string> post_json(const WebhookConfig& config, std::string_view json);

// The address inside "Name <addr>" (or the text itself).
std::string bare_address(std::string_view mailbox);

}  // namespace custguard::notify
