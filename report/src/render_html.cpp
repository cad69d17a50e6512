// The manager's report: one HTML file, no scripts, no external resources; charts are
// inline SVG; Japanese headings with English alongside; print CSS for paper.
#include <algorithm>
#include <cstdio>
#include <set>
#include <sstream>

#include "custguard/report/render.hpp"

namespace custguard::report {

namespace {

std::string h(std::string_view v) {
    std::string out;
    for (char c : v) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&#39;"; break;
        default:
            if (static_cast<unsigned char>(c) < 0x20 && c != '\t') out += "&#xFFFD;";
            else out += c;
        }
    }
    return out;
}

std::string when(std::uint64_t usec, const Scope& s) { return usec ? local_time(usec, s.filter) : std::string(); }

// A horizontal bar chart: one bar per label.
std::string bar_chart(const char* id, const std::string& title, const std::vector<std::pair<std::string, std::uint64_t>>& rows) {
    std::ostringstream o;
    const int row_h = 22, label_w = 260, bar_w = 380;
    const int height = static_cast<int>(rows.size()) * row_h + 30;
    std::uint64_t max = 1;
    for (const auto& r : rows) max = std::max(max, r.second);
    o << "<figure><svg id=\"" << id << "\" class=\"chart\" role=\"img\" aria-label=\"" << h(title)
      << "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << label_w + bar_w + 60 << "\" height=\"" << height
      << "\" viewBox=\"0 0 " << label_w + bar_w + 60 << " " << height << "\">\n";
    o << "<text x=\"0\" y=\"16\" class=\"ct\">" << h(title) << "</text>\n";
    int y = 28;
    for (const auto& [label, n] : rows) {
        int w = static_cast<int>(static_cast<double>(n) / static_cast<double>(max) * bar_w);
        std::string shown = label.size() > 40 ? "…" + label.substr(label.size() - 39) : label;
        o << "<text x=\"" << label_w - 6 << "\" y=\"" << y + 14 << "\" text-anchor=\"end\">" << h(shown) << "</text>"
          << "<rect x=\"" << label_w << "\" y=\"" << y + 2 << "\" width=\"" << std::max(w, 1) << "\" height=\""
          << row_h - 6 << "\" class=\"bar\"/>"
          << "<text x=\"" << label_w + std::max(w, 1) + 4 << "\" y=\"" << y + 14 << "\">" << n << "</text>\n";
        y += row_h;
    }
    if (rows.empty()) o << "<text x=\"0\" y=\"44\">(none / なし)</text>\n";
    o << "</svg></figure>\n";
    return o.str();
}

// Events on a time axis, one lane per kind.
std::string timeline_chart(const Scope& s) {
    const std::vector<std::string> lanes = {"access_allowed", "access_audited", "access_denied", "print",
                                            "customer_data_found", "bulk_read", "repeated", "zone_integrity"};
    const int left = 170, width = 560, lane_h = 20;
    const int height = static_cast<int>(lanes.size()) * lane_h + 50;
    std::ostringstream o;
    o << "<figure><svg id=\"chart-timeline\" class=\"chart\" role=\"img\" aria-label=\"timeline\" "
         "xmlns=\"http://www.w3.org/2000/svg\" width=\""
      << left + width + 20 << "\" height=\"" << height << "\" viewBox=\"0 0 " << left + width + 20 << " " << height
      << "\">\n<text x=\"0\" y=\"16\" class=\"ct\">時系列 Timeline</text>\n";
    std::uint64_t lo = s.first_usec, hi = std::max(s.last_usec, s.first_usec + 1);
    for (std::size_t i = 0; i < lanes.size(); ++i) {
        int y = 30 + static_cast<int>(i) * lane_h;
        o << "<text x=\"" << left - 6 << "\" y=\"" << y + 13 << "\" text-anchor=\"end\">" << lanes[i] << "</text>"
          << "<line x1=\"" << left << "\" y1=\"" << y + 9 << "\" x2=\"" << left + width << "\" y2=\"" << y + 9
          << "\" class=\"axis\"/>\n";
    }
    // One dot per lane and pixel column: the page stays small however many events there are.
    std::set<std::pair<std::size_t, int>> dots;
    auto dot = [&](const std::string& event, std::uint64_t t) {
        auto lane = std::find(lanes.begin(), lanes.end(), event);
        if (lane == lanes.end()) return;
        const auto i = static_cast<std::size_t>(lane - lanes.begin());
        const double at = static_cast<double>(std::clamp(t, lo, hi) - lo) / static_cast<double>(hi - lo);
        const int x = left + static_cast<int>(at * width);
        if (!dots.emplace(i, x).second) return;
        o << "<circle cx=\"" << x << "\" cy=\"" << 30 + static_cast<int>(i) * lane_h + 9 << "\" r=\"4\" class=\"ev-"
          << event << "\"/>\n";
    };
    for (const auto& t : s.timeline) dot(t.event, t.time_usec);
    // Allowed reads are counted per hour: a dot at the hour (or the first record, if later).
    for (const auto& r : s.hourly_reads) dot("access_allowed", std::max(r.hour_usec, lo));
    int y = 30 + static_cast<int>(lanes.size()) * lane_h + 12;
    o << "<text x=\"" << left << "\" y=\"" << y << "\">" << h(when(lo, s)) << "</text><text x=\"" << left + width
      << "\" y=\"" << y << "\" text-anchor=\"end\">" << h(when(s.last_usec, s)) << "</text>\n</svg></figure>\n";
    return o.str();
}

std::string persons_cell(const Persons& p) {
    if (p.exact) return std::to_string(*p.exact) + " (EDM)";
    if (p.basis == "none") return "? (未スキャン / no scan)";
    return std::to_string(p.min) + "–" + (p.max ? std::to_string(*p.max) : "?");
}

std::string join(const std::set<std::string>& items) {
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
    return out;
}

}  // namespace

std::string render_html(const Scope& s, Kind kind, std::string_view version) {
    std::ostringstream o;
    const bool leak = kind == Kind::leak_scope;
    const std::string title = leak ? "漏えい等 調査報告 / Leak-scope report" : "アクセス報告 / Access report";
    o << "<!DOCTYPE html>\n<html lang=\"ja\">\n<head>\n<meta charset=\"utf-8\">\n<title>" << h(title)
      << "</title>\n<style>\n"
         "body{font-family:'Noto Sans CJK JP','IPAexGothic',sans-serif;margin:2em;color:#111;font-size:11pt}\n"
         "h1{font-size:18pt}h2{font-size:14pt;border-bottom:1px solid #888;margin-top:1.5em}\n"
         "table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border:1px solid #999;padding:2px 6px;"
         "text-align:left;vertical-align:top}th{background:#eee}\n"
         ".chart text{font-size:11px;fill:#111}.chart .ct{font-size:13px;font-weight:bold}.bar{fill:#3465a4}"
         ".axis{stroke:#bbb}\n"
         ".ev-access_allowed{fill:#3465a4}.ev-access_audited{fill:#c4a000}.ev-access_denied{fill:#cc0000}"
         ".ev-print{fill:#75507b}.ev-customer_data_found{fill:#ce5c00}.ev-bulk_read{fill:#000}"
         ".ev-repeated{fill:#a40000}.ev-zone_integrity{fill:#4e9a06}\n"
         ".yes{color:#a40000;font-weight:bold}.note{color:#555;font-size:9pt}\n"
         "@media print{body{margin:0;font-size:9pt}h2{page-break-after:avoid}table,figure{page-break-inside:avoid}"
         "@page{size:A4;margin:15mm}}\n"
         "</style>\n</head>\n<body>\n<h1>"
      << h(title) << "</h1>\n";

    o << "<h2>概要 Summary</h2>\n<table>\n";
    auto row = [&](const std::string& k, const std::string& v) { o << "<tr><th>" << k << "</th><td>" << v << "</td></tr>\n"; };
    row("期間 Window", h((s.filter.since_usec ? local_time(*s.filter.since_usec, s.filter) : "(start)") + " .. " +
                         (s.filter.until_usec ? local_time(*s.filter.until_usec, s.filter) : "(end)")));
    if (!s.filter.user.empty()) row("利用者 User", h(s.filter.user));
    if (!s.filter.client.empty()) row("端末 Client", h(s.filter.client));
    if (!s.filter.zone.empty()) row("ゾーン Zone", h(s.filter.zone));
    if (!s.filter.path.empty()) row("パス Path", h(s.filter.path));
    row("サーバ Servers", h(join(s.servers)));
    row("閲覧 Reads", std::to_string(s.reads));
    row("拒否 Denials", std::to_string(s.denials));
    row("印刷 Prints", std::to_string(s.prints));
    row("ゾーン外へのコピー Copies out of zones", std::to_string(s.copies));
    row("本人の数 Persons", h(std::to_string(s.persons.min) + " – " +
                                (s.persons.max ? std::to_string(*s.persons.max) : "?") +
                                (s.persons.exact ? " (exact)" : "")) +
                                "<br><span class=\"note\">" + h(s.persons_basis) + "</span>");
    o << "</table>\n";

    if (leak) {
        o << "<h2>報告対象の要件 Reporting triggers</h2>\n<table><tr><th>要件 Trigger</th><th>判定 Status</th>"
             "<th>根拠 Basis</th></tr>\n";
        for (const auto& t : s.triggers)
            o << "<tr><td>" << h(t.name) << "</td><td class=\"" << (t.status == "yes" ? "yes" : "") << "\">"
              << h(t.status) << "</td><td>" << h(t.basis) << "</td></tr>\n";
        o << "</table>\n";
        o << "<h2>報告期限 Deadlines</h2>\n";
        if (s.deadlines) {
            const auto& d = *s.deadlines;
            o << "<table>\n";
            row("発覚日 Discovered", d.discovered.iso());
            row("速報 Preliminary", d.preliminary.iso() + " (遅くとも latest " + d.preliminary_latest.iso() + ")");
            row("確報 Final", d.final.iso() + " (不正の目的の恐れ: possibly deliberate: " + d.final_if_deliberate.iso() + ")");
            o << "</table>\n<p class=\"note\">" << h(d.rule) << "</p>\n";
        } else {
            o << "<p>--discovered-at が指定されていません / not computed: give --discovered-at.</p>\n";
        }
    }

    o << "<h2>グラフ Charts</h2>\n";
    std::vector<std::pair<std::string, std::uint64_t>> per_day(s.reads_per_day.begin(), s.reads_per_day.end());
    o << bar_chart("chart-reads-per-day", "日別の閲覧 Reads per day", per_day);
    std::vector<std::pair<std::string, std::uint64_t>> per_user;
    for (const auto& u : s.users) per_user.emplace_back(u.user, u.reads);
    o << bar_chart("chart-reads-per-user", "利用者別の閲覧 Reads per user", per_user);
    std::vector<std::pair<std::string, std::uint64_t>> per_file;
    for (const auto& f : s.files)
        if (f.persons.max || f.persons.exact) per_file.emplace_back(f.path, f.persons.exact ? *f.persons.exact : *f.persons.max);
    o << bar_chart("chart-persons-per-file", "ファイル別の本人の数 (上限) Persons per file (upper bound)", per_file);
    o << timeline_chart(s);

    if (!leak) {
        o << "<h2>利用者別 Per user</h2>\n<table><tr><th>利用者 User</th><th>閲覧 Reads</th><th>ファイル Files</th>"
             "<th>拒否 Denials</th><th>印刷 Prints</th><th>コピー Copies</th><th>時間外 Off hours</th></tr>\n";
        for (const auto& u : s.users)
            o << "<tr><td>" << h(u.user) << "</td><td>" << u.reads << "</td><td>" << u.files << "</td><td>" << u.denials
              << "</td><td>" << u.prints << "</td><td>" << u.copies << "</td><td>" << u.off_hours << "</td></tr>\n";
        o << "</table>\n";
    }

    o << "<h2>ファイル Files</h2>\n<table><tr><th>サーバ Server</th><th>パス Path</th><th>ゾーン Zone</th>"
         "<th>閲覧者 Readers (client, count, first–last)</th><th>種類 Categories</th><th>本人の数 Persons</th></tr>\n";
    for (const auto& f : s.files) {
        o << "<tr><td>" << h(f.server) << "</td><td>" << h(f.path) << "</td><td>"
          << h(f.zone.empty() ? (f.copy_out ? "(ゾーン外 outside zones)" : "") : f.zone) << "</td><td>";
        for (const auto& r : f.readers)
            o << h(r.user) << " @ " << h(r.client.empty() ? "local" : r.client) << " ×" << r.count << " "
              << h(when(r.first_usec, s)) << " – " << h(when(r.last_usec, s)) << "<br>";
        if (f.denials) o << "拒否 denials: " << f.denials;
        o << "</td><td>" << h(join(f.categories)) << " <span class=\"note\">("
          << (f.categories_basis == "recorded" ? "記録時のスキャン"
              : f.categories_basis == "today"  ? "現在のファイルのスキャン"
                                               : "スキャンなし")
          << " " << h(basis_text(f)) << ")</span></td><td>" << h(persons_cell(f.persons)) << "</td></tr>\n";
    }
    o << "</table>\n";

    if (leak) {
        o << "<h2>不正の目的を示しうる事実 Indicators (listed, not judged)</h2>\n<table><tr><th>時刻 Time</th>"
             "<th>種類 Kind</th><th>サーバ Server</th><th>利用者 User</th><th>内容 Detail</th></tr>\n";
        for (const auto& i : s.indicators)
            o << "<tr><td>" << h(when(i.time_usec, s)) << "</td><td>" << h(i.kind) << "</td><td>" << h(i.server)
              << "</td><td>" << h(i.user) << "</td><td>" << h(i.detail) << "</td></tr>\n";
        o << "</table>\n";
    }

    o << "<h2>流出先 Where the data went</h2>\n<h3>印刷 Print jobs</h3>\n<table><tr><th>時刻 Time</th><th>サーバ Server</th>"
         "<th>プリンタ Printer:job</th><th>利用者 User</th><th>判定 Decision</th><th>承認者 Decided by</th>"
         "<th>本人の数 Persons</th></tr>\n";
    for (const auto& p : s.print_jobs)
        o << "<tr><td>" << h(when(p.first_usec, s)) << "</td><td>" << h(p.server) << "</td><td>"
          << h(p.printer + ":" + p.job) << "</td><td>" << h(p.user) << "</td><td>"
          << h(p.first_decision + (p.final_decision != p.first_decision ? " → " + p.final_decision : "")) << "</td><td>"
          << h(p.decided_by) << "</td><td>" << h(persons_cell(p.persons)) << "</td></tr>\n";
    o << "</table>\n<h3>ゾーン外のコピー Copies outside zones</h3>\n<table><tr><th>時刻 Time</th><th>サーバ Server</th>"
         "<th>パス Path</th><th>コピー元 Copy of</th><th>利用者 User</th><th>処置 Action</th><th>本人の数 Persons</th></tr>\n";
    for (const auto& c : s.copies_out)
        o << "<tr><td>" << h(when(c.time_usec, s)) << "</td><td>" << h(c.server) << "</td><td>" << h(c.path)
          << "</td><td>" << h(c.copy_of) << "</td><td>" << h(c.user) << "</td><td>" << h(c.action) << "</td><td>"
          << h(persons_cell(c.persons)) << "</td></tr>\n";
    o << "</table>\n";

    o << "<h2>証跡 Evidence</h2>\n<p>custguardctl " << h(version) << ", " << s.records << " records / 件";
    if (s.duplicates) o << " (" << s.duplicates << " 重複 repeated records ignored)";
    o << ".</p>\n<table><tr><th>ジャーナルファイル Journal file</th><th>サーバ Servers</th><th>件数 Cursors</th>"
         "<th>最初と最後 First and last cursor</th><th>SHA-256</th></tr>\n";
    for (const auto& e : s.evidence)
        o << "<tr><td>" << h(e.file) << "</td><td>" << h(join(e.servers)) << "</td><td>" << e.count << "</td><td><code>"
          << h(e.first) << "</code><br><code>" << h(e.last) << "</code></td><td><code>" << h(e.sha256)
          << "</code></td></tr>\n";
    o << "</table>\n<p class=\"note\">" << h(evidence_hash_text()) << "</p>\n</body>\n</html>\n";
    return o.str();
}

}  // namespace custguard::report
