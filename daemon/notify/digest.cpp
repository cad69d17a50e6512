#include <cstdlib>

#include "daemon/notify/digest.hpp"

#include <ctime>

#include <fmt/format.h>

#include "custguard/common/json_string.hpp"

namespace custguard::notify {

namespace ev = custguard::events;
using common::json_string;

namespace {

std::string field_or(const ev::Record& r, std::string_view name, std::string_view fallback = {}) {
    const std::string* v = r.get(name);
    return v ? *v : std::string(fallback);
}

std::string who(const ev::Record& r) {
    const std::string user = field_or(r, ev::field::user), uid = field_or(r, ev::field::uid);
    if (user.empty()) return uid.empty() ? "?" : "uid " + uid;
    return uid.empty() ? user : user + " (" + uid + ")";
}

std::int64_t seconds_of(const ev::Record& r) { return r.realtime_us / 1000000; }

std::string clock_text(std::int64_t epoch_seconds) {
    const std::time_t t = epoch_seconds;
    std::tm tm{};
    ::localtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
    return buf;
}

// What happened, in both languages.
std::string what_of(const ev::Record& r) {
    const std::string d = field_or(r, ev::field::decision);
    switch (r.kind) {
    case ev::Kind::access_denied: return "拒否 / denied";
    case ev::Kind::access_audited: return "許可外・記録のみ / not allowed, audited";
    case ev::Kind::access_allowed: return "閲覧 / read";
    case ev::Kind::zone_integrity:
        return "ゾーン外への移動・削除 / zone integrity (" + field_or(r, ev::field::operation, "?") + ")";
    case ev::Kind::print:
        if (d == "hold") return "印刷保留 / print job held";
        if (d == "deny") return "印刷拒否 / print job blocked";
        return "印刷 / print job (" + d + ")";
    case ev::Kind::bulk_read: return "大量閲覧 / bulk read";
    case ev::Kind::customer_data_found:
        return "ゾーン外の顧客データ / customer data outside zones" +
               (r.get(ev::field::copy_of) ? " (copy of zone " + field_or(r, ev::field::copy_of, "?") + ")" : std::string());
    case ev::Kind::repeated:
        return "同一拒否の繰り返し / repeated refusals (" + field_or(r, ev::field::suppressed, "?") +
               " " + "件 / more, counted)";
    case ev::Kind::sensor_mismatch: return "センサー不一致 / sensor mismatch";
    case ev::Kind::lost: return "記録の欠落 / events lost";
    default: return std::string(ev::to_string(r.kind));
    }
}

void append_details(std::string& out, const ev::Record& r, std::string_view indent) {
    struct Item {
        std::string_view field, label;
    };
    static constexpr Item items[] = {
        {ev::field::zone, "ゾーン / zone"},        {ev::field::path, "ファイル / file"},
        {ev::field::user, "ユーザー / user"},      {ev::field::uid, "UID"},
        {ev::field::auid_user, "ログインユーザー / login user"},
        {ev::field::client, "クライアント / client"}, {ev::field::exe, "プログラム / program"},
        {ev::field::printer, "プリンター / printer"}, {ev::field::job, "ジョブ / job"},
        {ev::field::pages, "ページ / pages"},      {ev::field::detectors, "検出 / detectors"},
        {ev::field::hits, "検出数 / hits"},        {ev::field::files, "ファイル数 / files"},
        {"CUSTGUARD_BYTES", "バイト数 / bytes"},    {ev::field::window, "期間(秒) / window (s)"},
        {ev::field::action, "措置 / action"},      {"CUSTGUARD_UNTIL", "解除予定 / revoked until"},
        {ev::field::sensors, "センサー / sensors"}, {ev::field::lost_count, "欠落数 / lost"},
        {ev::field::lost_source, "欠落元 / source"}, {ev::field::seq, "記録番号 / CUSTGUARD_SEQ"},
    };
    for (const auto& it : items)
        if (const std::string* v = r.get(it.field)) out += fmt::format("{}{}: {}\n", indent, it.label, *v);
}

}  // namespace

std::string local_time_text(std::int64_t epoch_seconds) {
    const std::time_t t = epoch_seconds;
    std::tm tm{};
    ::localtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %z", &tm);
    return buf;
}

void ZoneDigest::add(const ev::Record& r) {
    ++total_;
    Line line{seconds_of(r), field_or(r, ev::field::user), field_or(r, ev::field::uid), field_or(r, ev::field::path),
              field_or(r, ev::field::client), field_or(r, ev::field::exe), what_of(r)};
    switch (r.kind) {
    case ev::Kind::access_allowed: {
        ++allowed_;
        auto& u = reads_[who(r)];
        ++u.opens;
        auto it = u.paths.find(line.path);
        if (it != u.paths.end()) ++it->second;
        else if (read_paths_ < max_read_paths) {
            u.paths.emplace(line.path, 1);
            ++read_paths_;
        } else {
            ++u.paths_not_listed;
        }
        return;
    }
    case ev::Kind::access_denied: ++denied_; break;
    case ev::Kind::access_audited: ++audited_; break;
    case ev::Kind::zone_integrity: ++integrity_; break;
    case ev::Kind::repeated: {
        // Refusals the journal counted instead of writing one by one: the digest counts
        // them all, and lists the aggregate once.
        std::uint64_t n = 0;
        if (const auto* v = r.get(ev::field::suppressed)) n = std::strtoull(v->c_str(), nullptr, 10);
        if (n == 0) n = 1;
        if (field_or(r, ev::field::repeated) == ev::to_string(ev::Kind::access_audited)) audited_ += n;
        else denied_ += n;
        total_ += n - 1;
        break;
    }
    case ev::Kind::print:
        ++print_;
        line.path = field_or(r, ev::field::printer, "?") + " job " + field_or(r, ev::field::job, "?");
        if (const auto* d = r.get(ev::field::detectors)) line.path += " [" + *d + "]";
        break;
    default: ++other_; break;
    }
    if (denials_.size() < max_denial_lines) denials_.push_back(std::move(line));
    else ++denials_not_listed_;
}

Rendered ZoneDigest::render(std::string_view zone, std::string_view target, std::string_view host, std::int64_t from,
                            std::int64_t to) const {
    Rendered out;
    const std::uint64_t flagged = denied_ + audited_ + integrity_ + print_ + other_;
    out.subject = fmt::format("[custguard] アクセス記録 / Access digest: {} ({} 件 / events, {} 件要確認 / flagged)",
                              zone, total_, flagged);
    std::string& t = out.text;
    t += "custguard アクセス記録 / access digest\n\n";
    t += fmt::format("ゾーン / zone: {}\n", zone);
    t += fmt::format("サーバー / server: {}\n", host);
    t += fmt::format("宛先 / notify target: {}\n", target);
    t += fmt::format("期間 / period: {} – {}\n\n", local_time_text(from), local_time_text(to));
    t += fmt::format("拒否 / denied: {}   許可外・記録のみ / audited: {}   移動・削除 / integrity: {}   印刷 / print: {}   閲覧 / reads: {}\n\n",
                     denied_, audited_, integrity_, print_, allowed_);
    if (!denials_.empty()) {
        t += "■ 要確認 / needs attention (拒否が先 / denials first)\n";
        for (const auto& l : denials_) {
            t += fmt::format("  {}  {}  {}  {}", clock_text(l.time), l.what,
                             l.user.empty() ? (l.uid.empty() ? "?" : "uid " + l.uid) : l.user + (l.uid.empty() ? "" : " (" + l.uid + ")"),
                             l.path);
            if (!l.client.empty()) t += "  client " + l.client;
            if (!l.exe.empty()) t += "  " + l.exe;
            t += "\n";
        }
        if (denials_not_listed_) t += fmt::format("  … ほか {} 件 / {} more not listed\n", denials_not_listed_, denials_not_listed_);
        t += "\n";
    }
    if (!reads_.empty()) {
        t += "■ 閲覧 / reads (ユーザー別 / by user)\n";
        for (const auto& [user, u] : reads_) {
            t += fmt::format("  {}: {} ファイル / files, {} 回 / opens\n", user, u.paths.size() + u.paths_not_listed, u.opens);
            for (const auto& [path, n] : u.paths) t += fmt::format("    {} ({})\n", path, n);
            if (u.paths_not_listed) t += fmt::format("    … ほか {} ファイル / {} more files\n", u.paths_not_listed, u.paths_not_listed);
        }
        t += "\n";
    }
    t += "-- \ncustguardd: この通知は自動送信です / this message was sent automatically.\n";

    std::string& j = out.json;
    j = fmt::format("{{\"type\":\"digest\",\"host\":{},\"target\":{},\"zone\":{},\"from\":{},\"to\":{},", json_string(host),
                    json_string(target), json_string(zone), from, to);
    j += fmt::format("\"counts\":{{\"denied\":{},\"audited\":{},\"integrity\":{},\"print\":{},\"allowed\":{},\"other\":{}}},",
                     denied_, audited_, integrity_, print_, allowed_, other_);
    j += "\"flagged\":[";
    for (std::size_t i = 0; i < denials_.size(); ++i) {
        const auto& l = denials_[i];
        j += fmt::format("{}{{\"time\":{},\"what\":{},\"user\":{},\"uid\":{},\"path\":{},\"client\":{},\"exe\":{}}}", i ? "," : "",
                         l.time, json_string(l.what), json_string(l.user), json_string(l.uid), json_string(l.path),
                         json_string(l.client), json_string(l.exe));
    }
    j += fmt::format("],\"flagged_not_listed\":{},\"reads\":[", denials_not_listed_);
    bool first = true;
    for (const auto& [user, u] : reads_) {
        j += fmt::format("{}{{\"user\":{},\"opens\":{},\"files\":{{", first ? "" : ",", json_string(user), u.opens);
        first = false;
        bool f2 = true;
        for (const auto& [path, n] : u.paths) {
            j += fmt::format("{}{}:{}", f2 ? "" : ",", json_string(path), n);
            f2 = false;
        }
        j += fmt::format("}},\"files_not_listed\":{}}}", u.paths_not_listed);
    }
    j += "]}";
    return out;
}

Rendered render_alert(const ev::Record& r, std::string_view target, std::string_view host, std::uint64_t suppressed) {
    Rendered out;
    const std::string zone = field_or(r, ev::field::zone);
    out.subject = fmt::format("[custguard] 警告 / ALERT: {}{}{}", what_of(r), zone.empty() ? "" : " — " + zone,
                              r.get(ev::field::user) ? " — " + who(r) : "");
    std::string& t = out.text;
    t += fmt::format("custguard 警告 / alert: {}\n\n", what_of(r));
    t += fmt::format("日時 / time: {}\n", local_time_text(seconds_of(r)));
    t += fmt::format("サーバー / server: {}\n", host);
    t += fmt::format("宛先 / notify target: {}\n", target);
    append_details(t, r, "");
    t += fmt::format("\n記録 / record: {}\n", r.message);
    if (suppressed)
        t += fmt::format("\n前回の警告以降、送信制限により {} 件の警告を省略しました(ダイジェストに記載)。\n"
                         "{} alerts were held back by the rate limit since the previous one (they appear in the digest).\n",
                         suppressed, suppressed);
    t += "\n-- \ncustguardd: この通知は自動送信です / this message was sent automatically.\n";

    std::string& j = out.json;
    j = fmt::format("{{\"type\":\"alert\",\"host\":{},\"target\":{},\"event\":{},\"what\":{},\"time_usec\":{},\"message\":{},"
                    "\"suppressed_before\":{},\"fields\":{{",
                    json_string(host), json_string(target), json_string(ev::to_string(r.kind)), json_string(what_of(r)),
                    r.realtime_us, json_string(r.message), suppressed);
    bool first = true;
    for (const auto& f : r.fields) {
        if (f.name == ev::field::cmdline) continue;  // arguments may carry more than the journal's summary needs
        j += fmt::format("{}{}:{}", first ? "" : ",", json_string(f.name), json_string(f.value));
        first = false;
    }
    j += "}}";
    return out;
}

}  // namespace custguard::notify
