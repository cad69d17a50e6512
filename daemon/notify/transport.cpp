#include "daemon/notify/transport.hpp"

#include <cstring>
#include <mutex>

#include <fmt/format.h>

#include "daemon/notify/curl_handle.hpp"

namespace custguard::notify {

namespace {

struct Upload {
    std::string_view data;
    std::size_t pos = 0;
};

std::size_t read_upload(char* buffer, std::size_t size, std::size_t n, void* user) {
    auto* u = static_cast<Upload*>(user);
    const std::size_t len = std::min(size * n, u->data.size() - u->pos);
    std::memcpy(buffer, u->data.data() + u->pos, len);
    u->pos += len;
    return len;
}

std::size_t discard(char*, std::size_t size, std::size_t n, void*) { return size * n; }

std::string curl_error(CURLcode code, const char* detail) {
    return fmt::format("{}{}{}", curl_easy_strerror(code), detail[0] ? ": " : "", detail);
}

int progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    const auto* cancel = static_cast<const std::atomic<bool>*>(user);
    return cancel && cancel->load() ? 1 : 0;  // non-zero aborts the transfer
}

void common_options(CURL* c, long connect_timeout_ms, long timeout_ms, const std::string& ca_file, char* errbuf,
                    const std::atomic<bool>* cancel) {
    if (cancel) {
        // A stopping daemon must not wait for a slow server's timeout.
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(cancel));
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    }
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // we run on worker threads
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    if (!ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, ca_file.c_str());
}

}  // namespace

void curl_global() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string bare_address(std::string_view mailbox) {
    const auto lt = mailbox.rfind('<');
    const auto gt = mailbox.rfind('>');
    if (lt != std::string_view::npos && gt != std::string_view::npos && gt > lt)
        return std::string(mailbox.substr(lt + 1, gt - lt - 1));
    return std::string(mailbox);
}

tl::expected<void, std::string> send_mail(const SmtpConfig& config, const MailMessage& message) {
    if (message.to.empty()) return tl::make_unexpected(std::string("no recipients"));
    if (config.url.rfind("smtp://", 0) != 0 && config.url.rfind("smtps://", 0) != 0)
        return tl::make_unexpected("not an smtp:// or smtps:// URL: " + config.url);
    curl_global();
    CurlEasy c(curl_easy_init());
    if (!c) return tl::make_unexpected(std::string("curl_easy_init failed"));
    char errbuf[CURL_ERROR_SIZE] = {};
    common_options(c.get(), config.connect_timeout_ms, config.timeout_ms, config.ca_file, errbuf, config.cancel);
    curl_easy_setopt(c.get(), CURLOPT_URL, config.url.c_str());
    if (config.starttls) curl_easy_setopt(c.get(), CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
    if (!config.username.empty()) {
        curl_easy_setopt(c.get(), CURLOPT_USERNAME, config.username.c_str());
        curl_easy_setopt(c.get(), CURLOPT_PASSWORD, config.password.c_str());
    }
    const std::string from = "<" + bare_address(message.from) + ">";
    curl_easy_setopt(c.get(), CURLOPT_MAIL_FROM, from.c_str());
    CurlSlist rcpt;
    for (const auto& to : message.to)
        if (!rcpt.append(("<" + bare_address(to) + ">").c_str())) return tl::make_unexpected(std::string("out of memory"));
    curl_easy_setopt(c.get(), CURLOPT_MAIL_RCPT, rcpt.get());
    const std::string text = render_mail(message);
    Upload up{text};
    curl_easy_setopt(c.get(), CURLOPT_READFUNCTION, read_upload);
    curl_easy_setopt(c.get(), CURLOPT_READDATA, &up);
    curl_easy_setopt(c.get(), CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c.get(), CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(text.size()));
    const CURLcode rc = curl_easy_perform(c.get());
    if (rc != CURLE_OK) return tl::make_unexpected(fmt::format("smtp {}: {}", config.url, curl_error(rc, errbuf)));
    return {};
}

tl::expected<void, std::string> post_json(const WebhookConfig& config, std::string_view json) {
    if (config.url.rfind("http://", 0) != 0 && config.url.rfind("https://", 0) != 0)
        return tl::make_unexpected("not an http:// or https:// URL: " + config.url);
    curl_global();
    CurlEasy c(curl_easy_init());
    if (!c) return tl::make_unexpected(std::string("curl_easy_init failed"));
    char errbuf[CURL_ERROR_SIZE] = {};
    common_options(c.get(), config.connect_timeout_ms, config.timeout_ms, config.ca_file, errbuf, config.cancel);
    curl_easy_setopt(c.get(), CURLOPT_URL, config.url.c_str());
    curl_easy_setopt(c.get(), CURLOPT_PROTOCOLS_STR, "http,https");
    CurlSlist headers;
    headers.append("Content-Type: application/json; charset=utf-8");
    headers.append("User-Agent: custguardd");
    headers.append("Expect:");  // no 100-continue round trip
    curl_easy_setopt(c.get(), CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(c.get(), CURLOPT_POST, 1L);
    curl_easy_setopt(c.get(), CURLOPT_POSTFIELDS, json.data());
    curl_easy_setopt(c.get(), CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(json.size()));
    curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, discard);
    const CURLcode rc = curl_easy_perform(c.get());
    if (rc != CURLE_OK) return tl::make_unexpected(fmt::format("webhook {}: {}", config.url, curl_error(rc, errbuf)));
    long status = 0;
    curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299) return tl::make_unexpected(fmt::format("webhook {}: HTTP {}", config.url, status));
    return {};
}

}  // namespace custguard::notify
