// Unit tests of the notifier: MIME text, the durable queue, digests and alerts, the
// per-target rate limit, bulk-read windows. No network, no root (delivery is a fake).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "daemon/notify/bulk.hpp"
#include "daemon/notify/digest.hpp"
#include "daemon/notify/mime.hpp"
#include "daemon/notify/notifier.hpp"
#include "daemon/notify/queue.hpp"

using namespace custguard;
using namespace custguard::notify;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace ev = custguard::events;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        char tmpl[] = "/tmp/cgnotify-unit.XXXXXX";
        REQUIRE(::mkdtemp(tmpl));
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

std::string b64decode(std::string_view in) {
    auto val = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    std::string out;
    int bits = 0, acc = 0;
    for (char c : in) {
        const int v = val(c);
        if (v < 0) continue;
        acc = (acc << 6) | v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    return out;
}

ev::Record access(ev::Kind kind, std::string zone, std::string user, std::string uid, std::string path,
                  std::int64_t t_us = 1'700'000'000'000'000, std::string client = {}) {
    ev::Record r;
    r.kind = kind;
    r.realtime_us = t_us;
    r.set(ev::field::event, "access");
    r.set(ev::field::decision, kind == ev::Kind::access_denied ? "deny" : kind == ev::Kind::access_audited ? "audit" : "allow");
    r.set(ev::field::zone, zone);
    r.set(ev::field::path, path);
    r.set(ev::field::uid, uid);
    r.set(ev::field::user, user);
    r.set(ev::field::client, client);
    r.message = "access " + path;
    return r;
}

policy::Policy make_policy() {
    policy::Policy p;
    policy::Zone z;
    z.name = "customers";
    z.sensitivity = policy::Sensitivity::personal;
    z.notify = {"mgr"};
    p.zones.push_back(z);
    z.name = "medical";
    z.sensitivity = policy::Sensitivity::sensitive;
    z.notify = {"mgr", "sec"};
    p.zones.push_back(z);
    policy::NotifyTarget t;
    t.name = "mgr";
    t.mail = {"manager@example.co.jp"};
    t.webhook = "http://127.0.0.1:9/hook";
    t.digest_seconds = 3600;
    p.notify_targets.push_back(t);
    t.name = "sec";
    t.mail = {"sec@example.co.jp"};
    t.webhook.clear();
    p.notify_targets.push_back(t);
    p.print.notify = {"sec"};
    p.bulk.notify = {"sec"};
    p.mail.from = "custguard@fs.example.co.jp";
    return p;
}

// A notifier whose deliveries land in a vector.
struct FakeNotifier {
    TempDir dir;
    std::mutex mu;
    std::vector<Message> delivered;
    std::vector<events::Record> submitted;
    std::vector<Revocation> revoked;
    std::uint64_t lost = 0;
    bool fail = false;
    std::unique_ptr<Notifier> n;

    bool revokes_clients = true;

    explicit FakeNotifier(NotifierOptions o = {}, bool clients = true) : revokes_clients(clients) {
        o.dir = dir.path;
        o.host = "fs1";
        o.retry_initial = 20ms;
        o.retry_max = 100ms;
        start(o);
    }
    void start(NotifierOptions o) {
        NotifierHost h;
        h.deliver = [this](const Message& m) -> tl::expected<void, std::string> {
            std::lock_guard lock(mu);
            if (fail) return tl::make_unexpected(std::string("down"));
            delivered.push_back(m);
            return {};
        };
        h.submit = [this](ev::Record&& r) {
            {
                std::lock_guard lock(mu);
                submitted.push_back(r);
            }
            n->observe(r);  // stands in for the pipeline committing it
        };
        h.revoke = [this](const Revocation& r) {
            std::lock_guard lock(mu);
            revoked.push_back(r);
        };
        h.revokes_clients = [this] { return revokes_clients; };
        h.lost = [this](std::string_view, std::uint64_t c, std::string_view) {
            std::lock_guard lock(mu);
            lost += c;
        };
        h.file_size = [](const std::string&) -> std::uint64_t { return 1000; };
        auto created = Notifier::create(o, std::move(h));
        REQUIRE(created);
        n = std::move(*created);
    }
    std::vector<Message> got() {
        std::lock_guard lock(mu);
        return delivered;
    }
};

}  // namespace

TEST_CASE("base64 and RFC 2047 encoded words", "[notify][unit]") {
    CHECK(base64_encode("") == "");
    CHECK(base64_encode("f") == "Zg==");
    CHECK(base64_encode("fo") == "Zm8=");
    CHECK(base64_encode("foo") == "Zm9v");
    CHECK(base64_encode("foobar") == "Zm9vYmFy");
    CHECK(encode_header_word("plain subject") == "plain subject");
    const std::string jp = "[custguard] アクセス記録 / Access digest: 顧客データ (12 件 / events, 3 件要確認 / flagged)";
    const std::string enc = encode_header_word(jp);
    std::string decoded;
    std::size_t pos = 0;
    while ((pos = enc.find("=?UTF-8?B?", pos)) != std::string::npos) {
        const auto end = enc.find("?=", pos + 10);
        REQUIRE(end != std::string::npos);
        CHECK(end + 2 - pos <= 75);  // RFC 2047: an encoded word is at most 75 characters
        const std::string piece = b64decode(enc.substr(pos + 10, end - pos - 10));
        // Never a split UTF-8 sequence: each word decodes on its own.
        CHECK((static_cast<unsigned char>(piece.front()) & 0xc0) != 0x80);
        decoded += piece;
        pos = end + 2;
    }
    CHECK(decoded == jp);
    CHECK(sanitize_header("a\r\nBcc: x") == "a  Bcc: x");
}

TEST_CASE("a rendered mail has MIME headers and a base64 UTF-8 body", "[notify][unit]") {
    MailMessage m;
    m.from = "custguard@fs.example.co.jp";
    m.to = {"manager@example.co.jp", "b@example.co.jp"};
    m.subject = "警告 / alert";
    m.body = "一行目 line one\n二行目\n";
    m.date = 0;
    m.message_id = "x@y";
    const std::string text = render_mail(m);
    CHECK(text.find("MIME-Version: 1.0\r\n") != std::string::npos);
    CHECK(text.find("Content-Type: text/plain; charset=UTF-8\r\n") != std::string::npos);
    CHECK(text.find("Content-Transfer-Encoding: base64\r\n") != std::string::npos);
    CHECK(text.find("Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n") != std::string::npos);
    CHECK(text.find("To: manager@example.co.jp, b@example.co.jp\r\n") != std::string::npos);
    m.to = {"部長 <manager@example.co.jp>", "Plain Name <p@example.co.jp>"};
    CHECK(render_mail(m).find("To: =?UTF-8?B?6YOo6ZW3?= <manager@example.co.jp>, Plain Name <p@example.co.jp>\r\n") !=
          std::string::npos);
    CHECK(text.find("Subject: =?UTF-8?B?") != std::string::npos);
    const auto body = text.substr(text.find("\r\n\r\n") + 4);
    CHECK(b64decode(body) == "一行目 line one\r\n二行目\r\n");
    for (std::size_t p = 0, e; (e = body.find("\r\n", p)) != std::string::npos; p = e + 2) CHECK(e - p <= 76);
}

TEST_CASE("the durable queue keeps messages across reopen in order and bounded", "[notify][unit]") {
    TempDir d;
    {
        auto q = DurableQueue::open(d.path, 3);
        REQUIRE(q);
        for (int i = 0; i < 4; ++i) {
            Message m;
            m.target = "mgr";
            m.kind = "alert";
            m.subject = "件名 " + std::to_string(i);
            m.body = "body\n" + std::to_string(i) + "\n";
            m.address = "a@example.co.jp";
            auto pushed = q->push(m);
            REQUIRE(pushed);
            CHECK(*pushed == (i < 3));
        }
        CHECK(q->overflow() == 1);
        REQUIRE(q->remove(1));
    }
    std::ofstream(d.path / "00000000000000000099.msg") << "garbage";
    std::ofstream(d.path / ".00000000000000000100.msg.AbCdEf") << "a crashed write";
    auto q = DurableQueue::open(d.path, 3);
    REQUIRE(q);
    CHECK(q->corrupt() == 1);
    const auto left = q->pending();
    REQUIRE(left.size() == 2);
    CHECK(left[0].subject == "件名 1");
    CHECK(left[1].subject == "件名 2");
    CHECK(left[1].body == "body\n2\n");
    CHECK(left[1].address == "a@example.co.jp");
    Message m;
    m.target = "mgr";
    m.address = "x@example.co.jp";
    REQUIRE(q->push(m));
    CHECK(m.id == 4);  // ids continue after the highest one on disk
}

TEST_CASE("a digest lists denials first and then reads by user with counts", "[notify][unit]") {
    ZoneDigest d;
    d.add(access(ev::Kind::access_allowed, "顧客", "alice", "1000", "/srv/顧客/a.csv"));
    d.add(access(ev::Kind::access_allowed, "顧客", "alice", "1000", "/srv/顧客/a.csv"));
    d.add(access(ev::Kind::access_allowed, "顧客", "carol", "1002", "/srv/顧客/b.csv"));
    d.add(access(ev::Kind::access_denied, "顧客", "bob", "1001", "/srv/顧客/c.csv", 1'700'000'000'000'000, "10.0.0.5"));
    const auto r = d.render("顧客", "mgr", "fs1", 1'700'000'000, 1'700'000'900);
    CHECK(r.subject.find("顧客") != std::string::npos);
    CHECK(r.subject.find("4 件 / events, 1 件要確認 / flagged") != std::string::npos);
    const auto denial = r.text.find("拒否 / denied  bob (1001)  /srv/顧客/c.csv  client 10.0.0.5");
    const auto reads = r.text.find("alice (1000): 1 ファイル / files, 2 回 / opens");
    REQUIRE(denial != std::string::npos);
    REQUIRE(reads != std::string::npos);
    CHECK(denial < reads);
    CHECK(r.text.find("/srv/顧客/a.csv (2)") != std::string::npos);
    CHECK(r.text.find("carol (1002): 1 ファイル") != std::string::npos);
    CHECK(r.json.find("\"denied\":1") != std::string::npos);
    CHECK(r.json.find("\"/srv/顧客/a.csv\":2") != std::string::npos);
}

// Regression: a flood of refusals ends in the journal as 10 records and one `repeated`
// record with the count; the manager's digest counted ~10 denials, not the flood.
TEST_CASE("a digest counts the refusals a repeated record stands for", "[notify][unit]") {
    ZoneDigest d;
    d.add(access(ev::Kind::access_denied, "顧客", "bob", "1001", "/srv/顧客/c.csv"));
    auto rep = access(ev::Kind::repeated, "顧客", "bob", "1001", "");
    rep.set(ev::field::repeated, std::string(ev::to_string(ev::Kind::access_denied)));
    rep.set(ev::field::suppressed, std::uint64_t{2990});
    d.add(rep);
    CHECK(d.total() == 2991);
    const auto r = d.render("顧客", "mgr", "fs1", 1'700'000'000, 1'700'000'900);
    CHECK(r.json.find("\"denied\":2991") != std::string::npos);
    CHECK(r.text.find("2990 件 / more, counted") != std::string::npos);
}

TEST_CASE("bulk reads count distinct files and bytes within a sliding window per user and per client", "[notify][unit]") {
    BulkDetector b;
    b.set_limits({3, 0, 2});
    const std::int64_t s = 1'000'000;
    CHECK(b.observe("z", 1000, "alice", "", "/a", 0, 0).empty());
    CHECK(b.observe("z", 1000, "alice", "", "/a", 0, 1 * s).empty());  // same file again
    CHECK(b.observe("z", 1000, "alice", "", "/b", 0, 1 * s).empty());
    CHECK(b.observe("z", 1000, "alice", "", "/c", 0, s + s / 2).empty());
    // /a at 0 s has left the window at 2.5 s, but /a at 1 s is still inside: 3 files.
    CHECK(b.observe("z", 1000, "alice", "", "/c", 0, 2 * s + s / 2).empty());
    auto hit = b.observe("z", 1000, "alice", "", "/d", 0, 2 * s + s / 2 + 1);
    REQUIRE(hit.size() == 1);
    CHECK(hit[0].files == 4);
    CHECK_FALSE(hit[0].by_client);
    // The window starts afresh after an alert.
    CHECK(b.observe("z", 1000, "alice", "", "/e", 0, 3 * s).empty());
    // Other zones and users have their own windows; clients too.
    b.set_limits({2, 0, 2});
    CHECK(b.observe("y", 1, "u1", "10.0.0.9", "/1", 0, 0).empty());
    CHECK(b.observe("y", 2, "u2", "10.0.0.9", "/2", 0, 1).empty());
    auto by_client = b.observe("y", 3, "u3", "10.0.0.9", "/3", 0, 2);
    REQUIRE(by_client.size() == 1);
    CHECK(by_client[0].by_client);
    CHECK(by_client[0].client == "10.0.0.9");
    // Bytes: a file counts once, with its size.
    b.set_limits({0, 2500, 10});
    CHECK(b.observe("x", 7, "u", "", "/big", 1000, 0).empty());
    CHECK(b.observe("x", 7, "u", "", "/big", 1000, 1).empty());
    CHECK(b.observe("x", 7, "u", "", "/big2", 1000, 2).empty());
    auto bytes = b.observe("x", 7, "u", "", "/big3", 1000, 3);
    REQUIRE(bytes.size() == 1);
    CHECK(bytes[0].bytes == 3000);
    b.expire(100 * s);
    CHECK(b.tracked() == 0);
}

TEST_CASE("alerts go at once to the zone's targets and digests collect the rest", "[notify][unit]") {
    FakeNotifier f;
    f.n->apply(make_policy());
    // Personal zone: a denial waits for the digest. Sensitive zone: an alert at once.
    f.n->observe(access(ev::Kind::access_denied, "customers", "bob", "1001", "/srv/c/x"));
    f.n->observe(access(ev::Kind::access_allowed, "customers", "alice", "1000", "/srv/c/y"));
    f.n->observe(access(ev::Kind::access_denied, "medical", "bob", "1001", "/srv/m/x"));
    ev::PrintJob job;
    job.printer = "lobby";
    job.job = "42";
    job.user = "bob";
    f.n->observe(ev::make_print_record(job, ev::PrintDecision::hold));
    f.n->observe(ev::make_print_record(job, ev::PrintDecision::allow));
    REQUIRE(f.n->wait_idle(5s, true));
    auto got = f.got();
    // medical denial: mgr (mail + webhook) and sec (mail); held print job: sec (mail).
    REQUIRE(got.size() == 4);
    int mail = 0, hook = 0;
    for (const auto& m : got) {
        CHECK(m.kind == "alert");
        (m.channel == Channel::mail ? mail : hook) += 1;
        if (m.channel == Channel::webhook) CHECK(m.body.find("\"CUSTGUARD_PATH\":\"/srv/m/x\"") != std::string::npos);
    }
    CHECK(mail == 3);
    CHECK(hook == 1);
    CHECK(f.n->counters().alerts == 4);
    f.n->send_digests_now();
    REQUIRE(f.n->wait_idle(5s, true));
    got = f.got();
    std::vector<std::string> digests;
    for (const auto& m : got)
        if (m.kind == "digest") digests.push_back(m.target + " " + std::string(to_string(m.channel)) + " " + m.subject);
    // mgr: customers + medical, mail + webhook each; sec: medical + print (mail).
    CHECK(digests.size() == 6);
    CHECK(f.n->counters().digests == 6);
}

TEST_CASE("alerts are rate-limited per target and the held-back count is reported", "[notify][unit]") {
    NotifierOptions o;
    o.alert_burst = 2;
    o.alert_period = 3600s;
    FakeNotifier f(o);
    auto p = make_policy();
    p.notify_targets[0].webhook.clear();
    f.n->apply(p);
    for (int i = 0; i < 5; ++i) f.n->observe(access(ev::Kind::access_denied, "medical", "bob", "1001", "/m/" + std::to_string(i)));
    REQUIRE(f.n->wait_idle(5s, true));
    const auto c = f.n->counters();
    CHECK(c.alerts == 4);  // 2 per target
    CHECK(c.alerts_suppressed == 6);
    CHECK(f.got().size() == 4);
}

TEST_CASE("failed deliveries are retried with backoff in order", "[notify][unit]") {
    FakeNotifier f;
    auto p = make_policy();
    p.notify_targets[0].webhook.clear();
    p.zones[1].notify = {"mgr"};
    f.n->apply(p);
    {
        std::lock_guard lock(f.mu);
        f.fail = true;
    }
    for (int i = 0; i < 3; ++i) f.n->observe(access(ev::Kind::access_denied, "medical", "bob", "1001", "/m/" + std::to_string(i)));
    REQUIRE(f.n->wait_idle(5s));
    std::this_thread::sleep_for(300ms);
    auto c = f.n->counters();
    CHECK(c.queued == 3);
    CHECK(c.failed >= 2);
    CHECK(c.sent == 0);
    {
        std::lock_guard lock(f.mu);
        f.fail = false;
    }
    REQUIRE(f.n->wait_idle(5s, true));
    const auto got = f.got();
    REQUIRE(got.size() == 3);
    for (int i = 0; i < 3; ++i) CHECK(got[i].body.find("/m/" + std::to_string(i)) != std::string::npos);
    c = f.n->counters();
    CHECK(c.sent == 3);
    CHECK(c.retries >= 1);
}

TEST_CASE("a bulk read makes a bulk_read record and an alert and a revoke request", "[notify][unit]") {
    FakeNotifier f;
    auto p = make_policy();
    p.bulk.max_files = 3;
    p.bulk.window_seconds = 2;
    p.bulk.action = policy::BulkAction::revoke;
    p.bulk.cooldown_seconds = 2;
    f.n->apply(p);
    const std::int64_t now_us =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    for (int i = 0; i < 4; ++i)
        f.n->observe(access(ev::Kind::access_allowed, "customers", "alice", "1000", "/c/" + std::to_string(i), now_us + i));
    REQUIRE(f.n->wait_idle(5s, true));
    std::lock_guard lock(f.mu);
    REQUIRE(f.submitted.size() == 1);
    CHECK(f.submitted[0].kind == ev::Kind::bulk_read);
    CHECK(*f.submitted[0].get(ev::field::files) == "4");
    CHECK(*f.submitted[0].get(ev::field::action) == "revoke");
    REQUIRE(f.revoked.size() == 1);
    CHECK(f.revoked[0].zone == "customers");
    CHECK(f.revoked[0].uid == 1000);
    CHECK(f.revoked[0].client.empty());  // a user's cool-down
    CHECK(f.revoked[0].until >= now_us / 1'000'000 + 1);
    // bulk.notify (sec) and the zone's notify (mgr: mail + webhook).
    int alerts = 0;
    for (const auto& m : f.delivered)
        if (m.kind == "alert" && m.subject.find("大量閲覧 / bulk read") != std::string::npos) ++alerts;
    CHECK(alerts == 3);
}

// Two users reading from one machine cross the limit together: the machine loses the zone
// (a revoke request naming the client), neither user does; with an enforcer that cannot
// take a client's access away the bulk read is an alert and nothing is requested.
TEST_CASE("a client machine's bulk read requests a client revoke when the enforcer can take it", "[notify][unit]") {
    struct Case {
        const char* label;
        bool revokes_clients;
        const char* action;
        std::size_t revoked;
    };
    const Case cases[] = {{"fanotify: revoke", true, "revoke", 1}, {"BPF LSM: alert only", false, "alert", 0}};
    for (const auto& c : cases) {
        DYNAMIC_SECTION(c.label) {
            FakeNotifier f({}, c.revokes_clients);
            auto p = make_policy();
            p.bulk.max_files = 3;
            p.bulk.window_seconds = 2;
            p.bulk.action = policy::BulkAction::revoke;
            p.bulk.cooldown_seconds = 2;
            f.n->apply(p);
            const std::int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count();
            for (int i = 0; i < 4; ++i)
                f.n->observe(access(ev::Kind::access_allowed, "customers", i % 2 ? "bob" : "alice", i % 2 ? "1001" : "1000",
                                    "/c/" + std::to_string(i), now_us + i, "192.0.2.10"));
            REQUIRE(f.n->wait_idle(5s, true));
            std::lock_guard lock(f.mu);
            REQUIRE(f.submitted.size() == 1);
            CHECK(*f.submitted[0].get("CUSTGUARD_BULK_KEY") == "client");
            CHECK(*f.submitted[0].get(ev::field::action) == c.action);
            REQUIRE(f.revoked.size() == c.revoked);
            if (c.revoked) {
                CHECK(f.revoked[0].zone == "customers");
                CHECK(f.revoked[0].client == "192.0.2.10");
                CHECK(f.revoked[0].until >= now_us / 1'000'000 + 1);
            }
        }
    }
}

TEST_CASE("stopping queues the digests collected so far for the next start", "[notify][unit]") {
    FakeNotifier f;
    f.n->apply(make_policy());
    {
        std::lock_guard lock(f.mu);
        f.fail = true;
    }
    f.n->observe(access(ev::Kind::access_allowed, "customers", "alice", "1000", "/srv/c/kept"));
    REQUIRE(f.n->wait_idle(5s));
    f.n->stop();
    auto q = DurableQueue::open(f.dir.path / "queue", 100);
    REQUIRE(q);
    std::size_t digests = 0;
    for (const auto& m : q->pending())
        if (m.kind == "digest" && m.body.find("/srv/c/kept") != std::string::npos) ++digests;
    CHECK(digests == 2);  // mgr: mail and webhook
}

TEST_CASE("records no notification concerns are not queued, and a digest's records do not wake the intake thread",
          "[notify][unit]") {
    NotifierOptions o;
    o.tick = 3s;  // the digest schedule's resolution: a digest's records wait for it
    FakeNotifier f(o);
    auto p = make_policy();
    policy::Zone quiet;
    quiet.name = "archive";  // no notify targets
    p.zones.push_back(quiet);
    f.n->apply(p);
    REQUIRE(f.n->wait_idle(5s));
    const auto before = f.n->counters().intake_batches;

    // Reads in a zone without targets, and outside every zone: nothing to do, never queued.
    for (int i = 0; i < 200; ++i) {
        f.n->observe(access(ev::Kind::access_allowed, "archive", "alice", "1000", "/srv/a/" + std::to_string(i)));
        f.n->observe(access(ev::Kind::access_allowed, "", "alice", "1000", "/tmp/" + std::to_string(i)));
    }
    // Reads for the customers digest, spread over much less than a tick: one or two batches.
    for (int i = 0; i < 50; ++i) {
        f.n->observe(access(ev::Kind::access_allowed, "customers", "alice", "1000", "/srv/c/" + std::to_string(i)));
        std::this_thread::sleep_for(2ms);
    }
    auto c = f.n->counters();
    CHECK(c.ignored == 400);
    CHECK(c.intake_batches - before <= 2);
    // Nothing is lost: the digest holds all 50 reads (and no archive one).
    f.n->send_digests_now();
    REQUIRE(f.n->wait_idle(5s, true));
    std::vector<Message> digests;
    for (const auto& m : f.got())
        if (m.kind == "digest" && m.channel == Channel::mail) digests.push_back(m);
    REQUIRE(digests.size() == 1);
    CHECK(digests[0].subject.find("50 件 / events") != std::string::npos);
    CHECK(digests[0].body.find("alice (1000): 50 ファイル / files, 50 回 / opens") != std::string::npos);
    CHECK(f.n->counters().alerts == 0);

    // An alert still goes at once, without waiting for the tick (nor for wait_idle, which
    // wakes the thread itself).
    const auto t0 = std::chrono::steady_clock::now();
    f.n->observe(access(ev::Kind::access_denied, "medical", "bob", "1001", "/srv/m/x"));
    while (f.n->counters().alerts < 3 && std::chrono::steady_clock::now() - t0 < 2s) std::this_thread::sleep_for(5ms);
    CHECK(f.n->counters().alerts == 3);
}

TEST_CASE("with [bulk] limits every read in a zone is counted, whatever the zone's targets", "[notify][unit]") {
    FakeNotifier f;
    auto p = make_policy();
    policy::Zone quiet;
    quiet.name = "archive";  // no notify targets: only [bulk] counts its reads
    p.zones.push_back(quiet);
    p.bulk.max_files = 3;
    p.bulk.window_seconds = 60;
    f.n->apply(p);
    const std::int64_t now_us =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    for (int i = 0; i < 4; ++i)
        f.n->observe(access(ev::Kind::access_allowed, "archive", "alice", "1000", "/srv/a/" + std::to_string(i), now_us + i));
    REQUIRE(f.n->wait_idle(5s, true));
    const auto c = f.n->counters();
    CHECK(c.ignored == 0);
    CHECK(c.bulk_reads == 1);
    std::lock_guard lock(f.mu);
    REQUIRE(f.submitted.size() == 1);
    CHECK(f.submitted[0].kind == ev::Kind::bulk_read);
    CHECK(*f.submitted[0].get(ev::field::files) == "4");
}
