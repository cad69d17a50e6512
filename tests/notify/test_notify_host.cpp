// Host tests of the notifier against real servers on 127.0.0.1, started by the fixtures:
// an SMTP sink (python3-aiosmtpd, tests/notify/smtp_sink.py) and an HTTP sink
// (tests/notify/http_sink.py). Mail is parsed by Python's email package, i.e. as a mail
// client would. The bulk-read test runs the real daemon core in process with the fanotify
// enforcer on a private tmpfs (root).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "daemon/notify/notifier.hpp"
#include "daemon/notify/transport.hpp"
#include "support/exec_plan.hpp"
#include "support/support.hpp"

using namespace custguard;
using namespace custguard::notify;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace ev = custguard::events;
using Clock = std::chrono::steady_clock;

namespace {

using cgtest::can_connect;
using cgtest::free_port;
using cgtest::slurp;

struct TempDir : cgtest::TempDir {
    TempDir() : cgtest::TempDir("cgnotify-host") {}
};

// A sink process (SMTP or HTTP) writing what it receives to `dir`.
class Sink {
public:
    Sink(std::string script, int port, fs::path dir, std::vector<std::string> extra = {})
        : script_(std::move(script)), port_(port), dir_(std::move(dir)), extra_(std::move(extra)) {
        fs::create_directories(dir_);
        start();
    }
    ~Sink() { stop(); }
    void start() {
        std::vector<std::string> args = {"/usr/bin/python3", std::string(CG_NOTIFY_TEST_DIR) + "/" + script_,
                                         "--port", std::to_string(port_), "--dir", dir_.string()};
        args.insert(args.end(), extra_.begin(), extra_.end());
        const cgtest::ExecPlan plan(args);  // the notifier's threads run here
        const std::string log_path = dir_.string() + ".log";
        pid_ = ::fork();
        if (pid_ == 0) {
            ::setpgid(0, 0);
            int null = ::open("/dev/null", O_RDWR);
            ::dup2(null, 0);
            ::dup2(null, 1);
            int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            ::dup2(log, 2);
            plan.exec();
        }
        const auto deadline = Clock::now() + 20s;
        while (Clock::now() < deadline) {
            if (can_connect(port_)) return;
            int st = 0;
            if (::waitpid(pid_, &st, WNOHANG) == pid_) {
                pid_ = -1;
                FAIL("sink " << script_ << " exited: " << slurp(dir_.string() + ".log"));
            }
            std::this_thread::sleep_for(20ms);
        }
        FAIL("sink " << script_ << " did not listen within 20 s");
    }
    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 100; ++i) {
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                return;
            }
            std::this_thread::sleep_for(20ms);
        }
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }
    // Received items (*.json, or *.bad for unparseable webhook bodies), in arrival order.
    std::vector<fs::path> received(const std::string& ext = ".json") const {
        std::vector<fs::path> out;
        for (const auto& e : fs::directory_iterator(dir_))
            if (e.path().extension() == ext && e.path().filename().string()[0] != '.') out.push_back(e.path());
        std::sort(out.begin(), out.end());
        return out;
    }
    bool wait_for(std::size_t n, std::chrono::milliseconds timeout = 15s) const {
        const auto deadline = Clock::now() + timeout;
        while (Clock::now() < deadline) {
            if (received().size() >= n) return true;
            std::this_thread::sleep_for(1ms);
        }
        return false;
    }
    int port() const { return port_; }
    const fs::path& dir() const { return dir_; }

private:
    std::string script_;
    int port_;
    fs::path dir_;
    std::vector<std::string> extra_;
    pid_t pid_ = -1;
};

// Value of "key": "..." in the sink's JSON (flat string values only).
std::string json_value(const std::string& json, const std::string& key) {
    const std::string needle = "\"" + key + "\": ";
    auto p = json.find(needle);
    if (p == std::string::npos) return {};
    p += needle.size();
    if (json[p] != '"') {
        auto e = json.find_first_of(",}", p);
        return json.substr(p, e - p);
    }
    std::string out;
    for (++p; p < json.size() && json[p] != '"'; ++p) {
        if (json[p] == '\\' && p + 1 < json.size()) {
            ++p;
            out += json[p] == 'n' ? '\n' : json[p];
        } else {
            out += json[p];
        }
    }
    return out;
}

ev::Record access(ev::Kind kind, std::string zone, std::string user, std::string uid, std::string path) {
    ev::Record r;
    r.kind = kind;
    r.realtime_us =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    r.set(ev::field::event, "access");
    r.set(ev::field::decision, kind == ev::Kind::access_denied ? "deny" : "allow");
    r.set(ev::field::zone, zone);
    r.set(ev::field::path, path);
    r.set(ev::field::uid, uid);
    r.set(ev::field::user, user);
    r.message = "access " + path;
    return r;
}

policy::Policy one_target(int smtp_port, int http_port, std::uint32_t digest_seconds = 3600) {
    policy::Policy p;
    policy::Zone z;
    z.name = "顧客データ";
    z.sensitivity = policy::Sensitivity::sensitive;
    z.notify = {"mgr"};
    p.zones.push_back(z);
    policy::NotifyTarget t;
    t.name = "mgr";
    if (smtp_port) t.mail = {"部長 <manager@example.co.jp>"};
    if (http_port) t.webhook = fmt::format("http://127.0.0.1:{}/hook", http_port);
    t.digest_seconds = digest_seconds;
    p.notify_targets.push_back(t);
    p.mail.smtp = fmt::format("smtp://127.0.0.1:{}", smtp_port ? smtp_port : 9);
    p.mail.from = "custguard@fs.example.co.jp";
    return p;
}

struct Host {
    std::mutex mu;
    std::uint64_t lost = 0;
    NotifierHost make() {
        NotifierHost h;
        h.lost = [this](std::string_view, std::uint64_t n, std::string_view) {
            std::lock_guard lock(mu);
            lost += n;
        };
        return h;
    }
};

NotifierOptions fast_options(const fs::path& dir) {
    NotifierOptions o;
    o.dir = dir;
    o.host = "fs1.example.co.jp";
    o.retry_initial = 100ms;
    o.retry_max = 500ms;
    o.connect_timeout_ms = 2000;
    o.timeout_ms = 10000;
    return o;
}

}  // namespace

TEST_CASE("a digest arrives as readable Japanese/English UTF-8 mail and as JSON", "[notify][host]") {
    TempDir t;
    Sink smtp("smtp_sink.py", free_port(), t.path() / "smtp");
    Sink http("http_sink.py", free_port(), t.path() / "http");
    Host host;
    auto n = Notifier::create(fast_options(t.path() / "notify"), host.make());
    REQUIRE(n);
    auto p = one_target(smtp.port(), http.port());
    p.zones[0].sensitivity = policy::Sensitivity::personal;  // no alerts: only the digest
    (*n)->apply(p);
    (*n)->observe(access(ev::Kind::access_allowed, "顧客データ", "alice", "1000", "/srv/顧客/名簿.xlsx"));
    (*n)->observe(access(ev::Kind::access_allowed, "顧客データ", "alice", "1000", "/srv/顧客/名簿.xlsx"));
    (*n)->observe(access(ev::Kind::access_denied, "顧客データ", "bob", "1001", "/srv/顧客/健診.pdf"));
    (*n)->send_digests_now();
    REQUIRE(smtp.wait_for(1));
    REQUIRE(http.wait_for(1));
    const std::string mail = slurp(smtp.received()[0]);
    INFO(mail);
    CHECK(json_value(mail, "subject") ==
          "[custguard] アクセス記録 / Access digest: 顧客データ (3 件 / events, 1 件要確認 / flagged)");
    CHECK(json_value(mail, "content_type") == "text/plain");
    CHECK(json_value(mail, "charset") == "utf-8");
    CHECK(json_value(mail, "cte") == "base64");
    CHECK(json_value(mail, "mime_version") == "1.0");
    CHECK(json_value(mail, "mail_from") == "custguard@fs.example.co.jp");
    CHECK(mail.find("\"rcpt_tos\": [\"manager@example.co.jp\"]") != std::string::npos);
    CHECK(json_value(mail, "to") == "部長 <manager@example.co.jp>");
    const std::string body = json_value(mail, "body");
    const auto denied = body.find("拒否 / denied  bob (1001)  /srv/顧客/健診.pdf");
    const auto read = body.find("alice (1000): 1 ファイル / files, 2 回 / opens");
    CHECK(denied != std::string::npos);
    CHECK(read != std::string::npos);
    CHECK(denied < read);
    CHECK(body.find("/srv/顧客/名簿.xlsx (2)") != std::string::npos);
    // The raw message carries only ASCII headers (encoded words), as RFC 5322 wants.
    const std::string raw = json_value(mail, "raw_headers");
    CHECK(raw.find("Subject: =?UTF-8?B?") != std::string::npos);
    CHECK(raw.find("To: =?UTF-8?B?6YOo6ZW3?= <manager@example.co.jp>") != std::string::npos);
    for (unsigned char c : raw) CHECK(c < 0x80);
    const std::string hook = slurp(http.received()[0]);
    CHECK(hook.find("\"type\":\"digest\"") != std::string::npos);
    CHECK(hook.find("\"zone\":\"顧客データ\"") != std::string::npos);
    CHECK(http.received(".bad").empty());
}

TEST_CASE("alert latency: a sensitive-zone denial reaches SMTP and webhook", "[notify][host]") {
    TempDir t;
    Sink smtp("smtp_sink.py", free_port(), t.path() / "smtp");
    Sink http("http_sink.py", free_port(), t.path() / "http");
    Host host;
    auto n = Notifier::create(fast_options(t.path() / "notify"), host.make());
    REQUIRE(n);
    (*n)->apply(one_target(smtp.port(), http.port()));
    std::vector<double> mail_ms, hook_ms;
    for (int i = 0; i < 5; ++i) {
        const auto t0 = Clock::now();
        (*n)->observe(access(ev::Kind::access_denied, "顧客データ", "bob", "1001", "/srv/顧客/" + std::to_string(i)));
        bool got_mail = false, got_hook = false;
        while (!(got_mail && got_hook) && Clock::now() - t0 < 15s) {
            const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
            if (!got_mail && smtp.received().size() > static_cast<std::size_t>(i)) got_mail = true, mail_ms.push_back(ms);
            if (!got_hook && http.received().size() > static_cast<std::size_t>(i)) got_hook = true, hook_ms.push_back(ms);
            std::this_thread::sleep_for(200us);
        }
        REQUIRE(got_mail);
        REQUIRE(got_hook);
    }
    std::sort(mail_ms.begin(), mail_ms.end());
    std::sort(hook_ms.begin(), hook_ms.end());
    std::printf("notify alert latency (observe -> sink wrote it), 5 alerts: SMTP median %.1f ms max %.1f ms; "
                "webhook median %.1f ms max %.1f ms\n",
                mail_ms[2], mail_ms[4], hook_ms[2], hook_ms[4]);
    CHECK(mail_ms[4] < 5000);
    CHECK(hook_ms[4] < 5000);
    const std::string mail = slurp(smtp.received()[0]);
    CHECK(json_value(mail, "subject").find("警告 / ALERT: 拒否 / denied — 顧客データ — bob (1001)") != std::string::npos);
    REQUIRE((*n)->wait_idle(10s, true));  // the sink writes before it answers: the count follows
    CHECK((*n)->counters().sent == 10);
}

TEST_CASE("server down: messages are queued on disk and delivered in order later", "[notify][host]") {
    TempDir t;
    const int smtp_port = free_port(), http_port = free_port();
    Host host;
    auto n = Notifier::create(fast_options(t.path() / "notify"), host.make());
    REQUIRE(n);
    (*n)->apply(one_target(smtp_port, http_port));
    for (int i = 0; i < 5; ++i)
        (*n)->observe(access(ev::Kind::access_denied, "顧客データ", "bob", "1001", "/srv/顧客/order-" + std::to_string(i)));
    REQUIRE((*n)->wait_idle(10s));
    std::this_thread::sleep_for(700ms);
    auto c = (*n)->counters();
    CHECK(c.queued == 10);
    CHECK(c.failed >= 2);
    CHECK(c.sent == 0);
    std::size_t files = 0;
    for (const auto& e : fs::directory_iterator(t.path() / "notify" / "queue")) files += e.path().extension() == ".msg";
    CHECK(files == 10);
    // The servers come up: everything arrives, in the order it was queued.
    Sink smtp("smtp_sink.py", smtp_port, t.path() / "smtp");
    Sink http("http_sink.py", http_port, t.path() / "http");
    REQUIRE(smtp.wait_for(5));
    REQUIRE(http.wait_for(5));
    REQUIRE((*n)->wait_idle(10s, true));
    for (int i = 0; i < 5; ++i) {
        CHECK(json_value(slurp(smtp.received()[i]), "body").find("/srv/顧客/order-" + std::to_string(i)) != std::string::npos);
        CHECK(slurp(http.received()[i]).find("/srv/顧客/order-" + std::to_string(i)) != std::string::npos);
    }
    c = (*n)->counters();
    CHECK(c.sent == 10);
    CHECK(c.retries >= 2);
    CHECK(c.queued == 0);
}

TEST_CASE("restart with a full queue: overflow reported and the rest replayed in order", "[notify][host]") {
    TempDir t;
    const int smtp_port = free_port();
    Host host;
    auto options = fast_options(t.path() / "notify");
    options.queue_max = 4;
    {
        auto n = Notifier::create(options, host.make());
        REQUIRE(n);
        (*n)->apply(one_target(smtp_port, 0));
        for (int i = 0; i < 6; ++i)
            (*n)->observe(access(ev::Kind::access_denied, "顧客データ", "bob", "1001", "/srv/顧客/r-" + std::to_string(i)));
        REQUIRE((*n)->wait_idle(10s));
        const auto c = (*n)->counters();
        CHECK(c.queued == 4);
        CHECK(c.overflow == 2);
        std::lock_guard lock(host.mu);
        CHECK(host.lost == 2);  // reported (the daemon writes a `lost` record)
    }
    Sink smtp("smtp_sink.py", smtp_port, t.path() / "smtp");
    auto n = Notifier::create(options, host.make());
    REQUIRE(n);
    (*n)->apply(one_target(smtp_port, 0));
    CHECK((*n)->counters().replayed == 4);
    REQUIRE(smtp.wait_for(4));
    REQUIRE((*n)->wait_idle(10s, true));
    const auto got = smtp.received();
    REQUIRE(got.size() == 4);
    for (int i = 0; i < 4; ++i)
        CHECK(json_value(slurp(got[i]), "body").find("/srv/顧客/r-" + std::to_string(i)) != std::string::npos);
}

TEST_CASE("SMTP with STARTTLS and AUTH", "[notify][host]") {
    TempDir t;
    // A throwaway self-signed certificate for 127.0.0.1, trusted as the CA by the client.
    const auto cert = t.path() / "cert.pem", key = t.path() / "key.pem";
    const std::string cmd = fmt::format(
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
        "-keyout {} -out {} >/dev/null 2>&1",
        key.string(), cert.string());
    REQUIRE(std::system(cmd.c_str()) == 0);
    Sink smtp("smtp_sink.py", free_port(), t.path() / "smtp",
              {"--cert", cert.string(), "--key", key.string(), "--auth", "cguser:s3cret"});
    std::ofstream(t.path() / "password") << "s3cret\n";
    Host host;
    auto options = fast_options(t.path() / "notify");
    options.smtp_ca_file = cert.string();
    auto n = Notifier::create(options, host.make());
    REQUIRE(n);
    auto p = one_target(smtp.port(), 0);
    p.mail.starttls = true;
    p.mail.username = "cguser";
    p.mail.password_file = (t.path() / "password").string();
    CHECK((*n)->apply(p).empty());
    (*n)->observe(access(ev::Kind::access_denied, "顧客データ", "bob", "1001", "/srv/顧客/tls"));
    REQUIRE(smtp.wait_for(1));
    const std::string mail = slurp(smtp.received()[0]);
    CHECK(json_value(mail, "tls") == "true");
    CHECK(json_value(mail, "auth") == "true");
    // A wrong password is refused by the server: the message stays queued.
    std::ofstream(t.path() / "password") << "wrong\n";
    CHECK((*n)->apply(p).empty());
    (*n)->observe(access(ev::Kind::access_denied, "顧客データ", "bob", "1001", "/srv/顧客/tls2"));
    const auto t0 = Clock::now();
    while ((*n)->counters().failed == 0 && Clock::now() - t0 < 20s) std::this_thread::sleep_for(10ms);
    const auto c = (*n)->counters();
    INFO(c.last_error);
    std::printf("SMTP AUTH refused: first failed attempt after %.0f ms: %s\n",
                std::chrono::duration<double, std::milli>(Clock::now() - t0).count(), c.last_error.c_str());
    CHECK(smtp.received().size() == 1);
    CHECK(c.queued == 1);
    CHECK(c.failed >= 1);
    CHECK(c.last_error.find("smtp") != std::string::npos);
}
