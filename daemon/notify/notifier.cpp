#include "daemon/notify/notifier.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "custguard/common/json_string.hpp"
#include "custguard/common/policy_files.hpp"
#include "daemon/notify/bulk.hpp"
#include "daemon/notify/digest.hpp"
#include "daemon/notify/transport.hpp"

namespace custguard::notify {

namespace ev = custguard::events;
using SteadyClock = std::chrono::steady_clock;

namespace {

std::int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now().time_since_epoch()).count();
}
std::int64_t wall_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}
std::int64_t wall_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string hostname() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
    return buf;
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : std::string(sep)) + s;
    return out;
}

std::vector<std::string> split_addresses(const std::string& s) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= s.size()) {
        const auto comma = s.find(',', start);
        const auto piece = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (!piece.empty()) out.push_back(piece);
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return out;
}

constexpr std::string_view print_zone = "印刷 / print";

// The policy as the notifier needs it.
struct Config {
    std::map<std::string, policy::NotifyTarget> targets;
    struct ZoneInfo {
        policy::Sensitivity sensitivity = policy::Sensitivity::personal;
        std::vector<std::string> notify;
    };
    std::map<std::string, ZoneInfo> zones;
    std::vector<std::string> print_notify;
    std::vector<std::string> watch_notify;
    policy::BulkPolicy bulk;
    SmtpConfig smtp;
    std::string from;
};

// The notify targets whose digest counts `r` under the name `zone`, or null.
const std::vector<std::string>* digest_targets(const Config& cfg, const ev::Record& r, std::string_view& zone) {
    if (r.kind == ev::Kind::print) {
        zone = print_zone;
        return &cfg.print_notify;
    }
    if (r.kind == ev::Kind::access_allowed || r.kind == ev::Kind::access_audited || r.kind == ev::Kind::access_denied ||
        r.kind == ev::Kind::zone_integrity || r.kind == ev::Kind::bulk_read || r.kind == ev::Kind::repeated) {
        const std::string* z = r.get(ev::field::zone);
        if (!z) return nullptr;
        auto it = cfg.zones.find(*z);
        if (it == cfg.zones.end()) return nullptr;
        zone = *z;
        return &it->second.notify;
    }
    return nullptr;
}

std::vector<std::string> alert_targets(const Config& cfg, const ev::Record& r) {
    const std::string* zone_name = r.get(ev::field::zone);
    const Config::ZoneInfo* zone = nullptr;
    if (zone_name) {
        auto it = cfg.zones.find(*zone_name);
        if (it != cfg.zones.end()) zone = &it->second;
    }
    std::vector<std::string> out;
    auto add = [&](const std::vector<std::string>& v) {
        for (const auto& s : v)
            if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
    };
    switch (r.kind) {
    case ev::Kind::access_denied:
    case ev::Kind::access_audited:
        // Not-allowed reads in a sensitive zone: at once. Elsewhere the digest tells.
        if (zone && zone->sensitivity == policy::Sensitivity::sensitive) add(zone->notify);
        break;
    case ev::Kind::zone_integrity:
        if (zone) add(zone->notify);
        break;
    case ev::Kind::print: {
        const std::string* d = r.get(ev::field::decision);
        if (d && (*d == "deny" || *d == "hold")) add(cfg.print_notify);
        break;
    }
    case ev::Kind::customer_data_found: {
        // [watch] on_customer_data = notify or protect: a copy tells its zone's targets,
        // and every find the watch's own.
        const std::string* action = r.get(ev::field::action);
        if (!action || *action == "recorded") break;
        if (const std::string* copy = r.get(ev::field::copy_of))
            if (auto it = cfg.zones.find(*copy); it != cfg.zones.end()) add(it->second.notify);
        add(cfg.watch_notify);
        break;
    }
    case ev::Kind::bulk_read:
    case ev::Kind::sensor_mismatch:
        add(cfg.bulk.notify);
        if (zone) add(zone->notify);
        if (out.empty() && r.kind == ev::Kind::sensor_mismatch)
            for (const auto& [name, _] : cfg.targets) out.push_back(name);
        break;
    default: break;
    }
    return out;
}

// Whether a read counts towards the [bulk] limits (BulkDetector::observe).
bool bulk_candidate(const ev::Record& r) {
    if (r.kind != ev::Kind::access_allowed && r.kind != ev::Kind::access_audited) return false;
    if (const std::string* a = r.get(ev::field::access); a && *a == "write") return false;
    return r.get(ev::field::zone) && r.get(ev::field::path) && r.get(ev::field::uid);
}

// What the intake thread must do with a record: nothing (no target would hear of it and
// no [bulk] limit counts it: not queued at all); add it to a digest (queued without a
// wake-up: the thread looks at its inbox every tick, the digest schedule's resolution);
// or look at once (an alert, or a [bulk] count that may take access away).
enum class Need { none, digest, now };

Need need_of(const Config& cfg, const ev::Record& r) {
    const bool bulk_on = cfg.bulk.max_files > 0 || cfg.bulk.max_bytes > 0;
    if (bulk_on && bulk_candidate(r)) return Need::now;
    for (const auto& t : alert_targets(cfg, r))
        if (cfg.targets.count(t)) return Need::now;
    std::string_view zone;
    if (const auto* targets = digest_targets(cfg, r, zone))
        for (const auto& t : *targets)
            if (cfg.targets.count(t)) return Need::digest;
    return Need::none;
}

}  // namespace

struct Notifier::Impl {
    NotifierOptions options;
    NotifierHost host;

    mutable std::mutex config_mu;
    std::shared_ptr<const Config> config = std::make_shared<Config>();
    std::atomic<std::uint64_t> config_generation{0};

    // Inbox (observer → intake thread).
    std::mutex in_mu;
    std::condition_variable in_cv, idle_cv;
    std::deque<ev::Record> inbox;
    bool intake_busy = false;
    std::atomic<std::uint64_t> inbox_dropped{0};
    std::atomic<std::uint64_t> ignored{0};
    std::uint64_t intake_batches = 0;
    std::uint64_t inbox_dropped_reported = 0;
    std::atomic<bool> digests_now{false};

    // Queue (intake → sender).
    mutable std::mutex q_mu;
    std::condition_variable q_cv, q_idle_cv;
    std::optional<DurableQueue> queue;
    bool sending = false;

    mutable std::mutex counters_mu;
    NotifyCounters counters;

    std::atomic<bool> stopping{false};
    std::thread intake_thread, sender_thread;
    bool stopped = false;

    // Intake-thread state.
    BulkDetector bulk;
    std::uint64_t bulk_generation = ~0ull;
    struct TargetState {
        std::int64_t last_digest = 0;
        std::map<std::string, ZoneDigest> zones;
        std::deque<std::int64_t> alert_times;  // steady ms of recent alerts
        std::uint64_t suppressed = 0;
    };
    std::map<std::string, TargetState> target_state;

    std::shared_ptr<const Config> snapshot() const {
        std::lock_guard lock(config_mu);
        return config;
    }

    void set_error(std::string e) {
        std::lock_guard lock(counters_mu);
        counters.last_error = std::move(e);
    }

    // --- intake -------------------------------------------------------------------------

    // Returns the messages queued.
    std::size_t enqueue(const Config& cfg, const std::string& target_name, std::string_view kind, const Rendered& r) {
        auto t = cfg.targets.find(target_name);
        if (t == cfg.targets.end()) return 0;
        std::vector<Message> out;
        if (!t->second.mail.empty()) {
            Message m;
            m.target = target_name;
            m.channel = Channel::mail;
            m.kind = kind;
            m.created = wall_seconds();
            m.subject = r.subject;
            m.body = r.text;
            m.address = join(t->second.mail, ",");
            out.push_back(std::move(m));
        }
        if (!t->second.webhook.empty()) {
            Message m;
            m.target = target_name;
            m.channel = Channel::webhook;
            m.kind = kind;
            m.created = wall_seconds();
            m.subject = r.subject;
            m.body = r.json;
            m.address = t->second.webhook;
            out.push_back(std::move(m));
        }
        std::uint64_t overflow = 0, queued = 0;
        {
            std::lock_guard lock(q_mu);
            for (auto& m : out) {
                auto pushed = queue->push(m);
                if (!pushed) {
                    set_error("notify queue: " + pushed.error());
                    ++overflow;
                } else if (!*pushed) {
                    ++overflow;
                } else {
                    ++queued;
                }
            }
            q_cv.notify_all();
        }
        {
            std::lock_guard lock(counters_mu);
            counters.enqueued += queued;
            counters.overflow += overflow;
            if (kind == "alert") counters.alerts += queued;
            if (kind == "digest") counters.digests += queued;
        }
        if (overflow && host.lost)
            host.lost("notify", overflow, fmt::format("notification queue full ({} messages) for target {}",
                                                      options.queue_max, target_name));
        return queued;
    }

    void alert(const Config& cfg, const ev::Record& r) {
        for (const auto& target : alert_targets(cfg, r)) {
            if (!cfg.targets.count(target)) continue;
            TargetState& ts = target_state[target];
            const std::int64_t now = steady_ms();
            const std::int64_t period = std::chrono::duration_cast<std::chrono::milliseconds>(options.alert_period).count();
            while (!ts.alert_times.empty() && ts.alert_times.front() <= now - period) ts.alert_times.pop_front();
            if (ts.alert_times.size() >= options.alert_burst) {
                ++ts.suppressed;
                std::lock_guard lock(counters_mu);
                ++counters.alerts_suppressed;
                continue;
            }
            ts.alert_times.push_back(now);
            enqueue(cfg, target, "alert", render_alert(r, target, options.host, ts.suppressed));
            ts.suppressed = 0;
        }
    }

    void digest_add(const Config& cfg, const ev::Record& r) {
        std::string_view zone;
        const std::vector<std::string>* targets = digest_targets(cfg, r, zone);
        if (!targets) return;
        for (const auto& t : *targets)
            if (cfg.targets.count(t)) target_state[t].zones[std::string(zone)].add(r);
    }

    void detect_bulk(const Config& cfg, const ev::Record& r) {
        if (!bulk_candidate(r)) return;
        const std::string* zone = r.get(ev::field::zone);
        const std::string* path = r.get(ev::field::path);
        const std::string* uid_text = r.get(ev::field::uid);
        std::uint32_t uid = 0;
        try {
            uid = static_cast<std::uint32_t>(std::stoul(*uid_text));
        } catch (const std::exception&) {
            return;
        }
        const std::string user = r.get(ev::field::user) ? *r.get(ev::field::user) : std::string();
        const std::string client = r.get(ev::field::client) ? *r.get(ev::field::client) : std::string();
        const std::uint64_t bytes = cfg.bulk.max_bytes > 0 && host.file_size ? host.file_size(*path) : 0;
        const std::int64_t t = r.realtime_us ? r.realtime_us : wall_us();
        for (auto& hit : bulk.observe(*zone, uid, user, client, *path, bytes, t)) {
            {
                std::lock_guard lock(counters_mu);
                ++counters.bulk_reads;
            }
            const bool revoke = cfg.bulk.action == policy::BulkAction::revoke &&
                                (!hit.by_client || (host.revokes_clients && host.revokes_clients()));
            const std::int64_t until = wall_seconds() + cfg.bulk.cooldown_seconds;
            ev::BulkRead b;
            b.uid = hit.uid;
            b.user = hit.user;
            b.zone = hit.zone;
            b.files = hit.files;
            b.window_seconds = cfg.bulk.window_seconds;
            b.action = revoke ? "revoke" : "alert";
            b.client = hit.client;
            ev::Record rec = ev::make_bulk_read_record(b);
            rec.set("CUSTGUARD_BULK_KEY", hit.by_client ? "client" : "user");
            if (hit.bytes) rec.set("CUSTGUARD_BYTES", hit.bytes);
            if (revoke) {
                rec.set("CUSTGUARD_UNTIL", static_cast<std::uint64_t>(until));
                rec.set("CUSTGUARD_COOLDOWN_SEC", cfg.bulk.cooldown_seconds);
            }
            if (revoke && host.revoke)
                host.revoke(Revocation{hit.zone, hit.uid, hit.user, until, hit.by_client ? hit.client : std::string()});
            // The alert follows when the committed bulk_read record comes back to observe().
            if (host.submit) host.submit(std::move(rec));
        }
    }

    void send_due_digests(const Config& cfg, bool force) {
        const std::int64_t now = wall_seconds();
        for (auto& [name, ts] : target_state) {
            auto t = cfg.targets.find(name);
            if (t == cfg.targets.end()) {
                ts.zones.clear();
                continue;
            }
            if (ts.last_digest == 0) ts.last_digest = now;
            if (!force && now - ts.last_digest < static_cast<std::int64_t>(t->second.digest_seconds)) continue;
            for (auto& [zone, d] : ts.zones)
                if (!d.empty()) enqueue(cfg, name, "digest", d.render(zone, name, options.host, ts.last_digest, now));
            ts.zones.clear();
            ts.last_digest = now;
        }
    }

    void intake_loop() {
        std::int64_t last_expire = steady_ms();
        for (;;) {
            std::deque<ev::Record> batch;
            bool force_digests = false;
            {
                std::unique_lock lock(in_mu);
                intake_busy = false;
                idle_cv.notify_all();
                in_cv.wait_for(lock, options.tick, [&] { return !inbox.empty() || stopping || digests_now; });
                batch.swap(inbox);
                // Taken with the batch: every record observed before send_digests_now() is
                // in this batch or an earlier one, so the forced digest includes it.
                force_digests = digests_now.exchange(false);
                intake_busy = true;
                if (!batch.empty()) ++intake_batches;
            }
            auto cfg = snapshot();
            if (const auto g = config_generation.load(); g != bulk_generation) {
                bulk.set_limits({cfg->bulk.max_files, cfg->bulk.max_bytes, cfg->bulk.window_seconds});
                bulk_generation = g;
            }
            for (const auto& r : batch) {
                digest_add(*cfg, r);
                alert(*cfg, r);
                if (bulk.enabled()) detect_bulk(*cfg, r);
            }
            send_due_digests(*cfg, force_digests);
            if (const auto d = inbox_dropped.load(); d > inbox_dropped_reported) {
                if (host.lost) host.lost("notify-inbox", d - inbox_dropped_reported, "notifier inbox full: records not examined for alerts");
                inbox_dropped_reported = d;
            }
            if (steady_ms() - last_expire > 10000) {
                bulk.expire(wall_us());
                last_expire = steady_ms();
            }
            if (stopping) {
                std::unique_lock lock(in_mu);
                if (inbox.empty()) {
                    lock.unlock();
                    // What was collected goes into the durable queue now rather than be
                    // lost with the process: sent on the next start.
                    send_due_digests(*cfg, true);
                    break;
                }
            }
        }
        std::lock_guard lock(in_mu);
        intake_busy = false;
        idle_cv.notify_all();
    }

    // --- sender -------------------------------------------------------------------------

    tl::expected<void, std::string> deliver(const Config& cfg, const Message& m) {
        if (host.deliver) return host.deliver(m);
        if (m.channel == Channel::webhook) {
            WebhookConfig wc;
            wc.url = m.address;
            wc.connect_timeout_ms = options.connect_timeout_ms;
            wc.timeout_ms = options.timeout_ms;
            wc.cancel = &stopping;
            return post_json(wc, m.body);
        }
        MailMessage mail;
        mail.from = cfg.from;
        mail.to = split_addresses(m.address);
        mail.subject = m.subject;
        mail.body = m.body;
        mail.date = m.created;
        mail.message_id = fmt::format("custguard.{}.{}.{}@{}", m.created, m.id, ::getpid(), options.host);
        SmtpConfig smtp = cfg.smtp;
        smtp.cancel = &stopping;
        return send_mail(smtp, mail);
    }

    std::chrono::milliseconds backoff(std::uint32_t attempts) const {
        auto d = options.retry_initial;
        for (std::uint32_t i = 1; i < attempts && d < options.retry_max; ++i) d *= 2;
        return std::min(d, options.retry_max);
    }

    void sender_loop() {
        for (;;) {
            std::vector<Message> due;
            {
                std::unique_lock lock(q_mu);
                sending = false;
                q_idle_cv.notify_all();
                std::int64_t wait_ms = 1000;
                for (;;) {
                    if (stopping) return;
                    // The head of each (target, channel, address) group, if its time has come.
                    const std::int64_t now = steady_ms();
                    std::set<std::string> seen;
                    due.clear();
                    wait_ms = 1000;
                    for (const auto& [id, m] : queue->messages()) {
                        const std::string group = m.target + '\n' + std::string(to_string(m.channel)) + '\n' + m.address;
                        if (!seen.insert(group).second) continue;
                        if (m.next_attempt_ms <= now) due.push_back(m);
                        else wait_ms = std::min(wait_ms, m.next_attempt_ms - now);
                    }
                    if (!due.empty()) break;
                    q_cv.wait_for(lock, std::chrono::milliseconds(std::max<std::int64_t>(wait_ms, 1)));
                }
                sending = true;
            }
            auto cfg = snapshot();
            for (const auto& m : due) {
                if (stopping) break;
                auto r = deliver(*cfg, m);
                std::lock_guard lock(q_mu);
                if (r) {
                    auto removed = queue->remove(m.id);
                    std::lock_guard c(counters_mu);
                    ++counters.sent;
                    if (m.attempts) ++counters.retries;
                    if (!removed) counters.last_error = removed.error();
                } else {
                    if (Message* q = queue->find(m.id)) {
                        ++q->attempts;
                        q->next_attempt_ms = steady_ms() + backoff(q->attempts).count();
                    }
                    std::lock_guard c(counters_mu);
                    ++counters.failed;
                    if (m.attempts) ++counters.retries;
                    counters.last_error = r.error();
                }
            }
        }
    }
};

Notifier::Notifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

tl::expected<std::unique_ptr<Notifier>, std::string> Notifier::create(NotifierOptions options, NotifierHost host) {
    auto impl = std::make_unique<Impl>();
    if (options.host.empty()) options.host = hostname();
    impl->options = std::move(options);
    impl->host = std::move(host);
    auto q = DurableQueue::open(impl->options.dir / "queue", impl->options.queue_max);
    if (!q) return tl::make_unexpected("notify queue: " + q.error());
    impl->queue.emplace(std::move(*q));
    impl->counters.replayed = impl->queue->replayed();
    impl->counters.corrupt = impl->queue->corrupt();
    curl_global();
    Impl& i = *impl;
    i.intake_thread = std::thread([&i] { i.intake_loop(); });
    i.sender_thread = std::thread([&i] { i.sender_loop(); });
    return std::unique_ptr<Notifier>(new Notifier(std::move(impl)));
}

Notifier::~Notifier() { stop(); }

std::vector<std::string> Notifier::apply(const policy::Policy& p) {
    std::vector<std::string> warnings;
    auto cfg = std::make_shared<Config>();
    for (const auto& t : p.notify_targets) cfg->targets.emplace(t.name, t);
    for (const auto& z : p.zones) cfg->zones[z.name] = Config::ZoneInfo{z.sensitivity, z.notify};
    cfg->print_notify = p.print.notify;
    cfg->watch_notify = p.watch.notify;
    cfg->bulk = p.bulk;
    cfg->smtp.url = p.mail.smtp;
    cfg->smtp.starttls = p.mail.starttls;
    cfg->smtp.username = p.mail.username;
    cfg->smtp.ca_file = impl_->options.smtp_ca_file;
    cfg->smtp.connect_timeout_ms = impl_->options.connect_timeout_ms;
    cfg->smtp.timeout_ms = impl_->options.timeout_ms;
    if (!p.mail.password_file.empty()) {
        auto text = common::read_file(p.mail.password_file);
        if (!text) {
            warnings.push_back("[mail] password_file: " + text.error() + " (mail is sent without AUTH until it is readable)");
            cfg->smtp.username.clear();
        } else {
            std::string pw = *text;
            while (!pw.empty() && (pw.back() == '\n' || pw.back() == '\r')) pw.pop_back();
            cfg->smtp.password = std::move(pw);
        }
    }
    cfg->from = p.mail.from.empty() ? "custguard@" + impl_->options.host : p.mail.from;
    {
        std::lock_guard lock(impl_->config_mu);
        impl_->config = std::move(cfg);
    }
    impl_->config_generation.fetch_add(1);
    return warnings;
}

void Notifier::observe(const events::Record& record) {
    Impl& i = *impl_;
    const Need need = need_of(*i.snapshot(), record);
    if (need == Need::none) {
        i.ignored.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    std::lock_guard lock(i.in_mu);
    if (i.inbox.size() >= i.options.inbox_max) {
        i.inbox_dropped.fetch_add(1);
        return;
    }
    i.inbox.push_back(record);
    // A digest's records wait for the tick, unless they would fill the inbox before it.
    if (need == Need::now || i.inbox.size() >= i.options.inbox_max / 2) i.in_cv.notify_one();
}

NotifyCounters Notifier::counters() const {
    NotifyCounters c;
    {
        std::lock_guard lock(impl_->counters_mu);
        c = impl_->counters;
    }
    c.inbox_dropped = impl_->inbox_dropped.load();
    c.ignored = impl_->ignored.load();
    {
        std::lock_guard lock(impl_->in_mu);
        c.intake_batches = impl_->intake_batches;
    }
    std::lock_guard lock(impl_->q_mu);
    c.queued = impl_->queue->size();
    return c;
}

tl::expected<std::size_t, std::string> Notifier::send_report(const std::vector<std::string>& targets,
                                                            const std::string& subject, const std::string& text) {
    Impl& i = *impl_;
    const auto cfg = i.snapshot();
    const auto& names = targets.empty() ? cfg->print_notify : targets;
    if (names.empty())
        return tl::unexpected(std::string("no notify target: name one (--notify-target) or set [print] notify"));
    for (const auto& n : names)
        if (!cfg->targets.count(n)) {
            std::vector<std::string> known;
            for (const auto& [name, _] : cfg->targets) known.push_back(name);
            return tl::unexpected(fmt::format("unknown notify target '{}'; the policy has: {}", n,
                                              known.empty() ? std::string("(none)") : join(known, ", ")));
        }
    Rendered r;
    r.subject = subject;
    r.text = text;
    r.json = "{\"type\":\"report\",\"host\":" + common::json_string(i.options.host) +
             ",\"subject\":" + common::json_string(subject) + ",\"text\":" + common::json_string(text) + "}";
    std::size_t queued = 0;
    for (const auto& n : names) queued += i.enqueue(*cfg, n, "report", r);
    if (queued == 0) return tl::unexpected(std::string("no message was queued: the notification queue is full (see custguardctl status)"));
    return queued;
}

void Notifier::send_digests_now() {
    std::lock_guard lock(impl_->in_mu);
    impl_->digests_now = true;
    impl_->in_cv.notify_all();
}

bool Notifier::wait_idle(std::chrono::milliseconds timeout, bool delivered) {
    Impl& i = *impl_;
    const auto deadline = SteadyClock::now() + timeout;
    {
        std::unique_lock lock(i.in_mu);
        i.in_cv.notify_all();
        if (!i.idle_cv.wait_until(lock, deadline, [&] { return i.inbox.empty() && !i.intake_busy && !i.digests_now; }))
            return false;
    }
    if (!delivered) return true;
    std::unique_lock lock(i.q_mu);
    i.q_cv.notify_all();
    return i.q_idle_cv.wait_until(lock, deadline, [&] { return i.queue->size() == 0 && !i.sending; });
}

void Notifier::stop() {
    Impl& i = *impl_;
    if (i.stopped) return;
    {
        std::lock_guard lock(i.in_mu);
        i.stopping = true;
        i.in_cv.notify_all();
    }
    if (i.intake_thread.joinable()) i.intake_thread.join();
    {
        std::lock_guard lock(i.q_mu);
        i.q_cv.notify_all();
    }
    if (i.sender_thread.joinable()) i.sender_thread.join();
    i.stopped = true;
}

}  // namespace custguard::notify
