#include "custguard/report/render.hpp"

#include <algorithm>
#include <ostream>
#include <sstream>

#include "custguard/common/json_string.hpp"
#include "custguard/common/text_escape.hpp"
#include "custguard/common/json.hpp"

namespace custguard::report {


namespace {

using JsonValue = common::Json;

// An empty string as null: absent values stay visible as keys.
JsonValue or_null(const std::string& s) { return s.empty() ? JsonValue() : JsonValue(s); }
JsonValue or_null(std::optional<std::uint64_t> n) { return n ? JsonValue(*n) : JsonValue(); }
using common::escape_text;


const char* kind_name(Kind k) { return k == Kind::leak_scope ? "leak-scope" : "access"; }

std::string join(const std::set<std::string>& items, const char* sep = ",") {
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : sep) + i;
    return out;
}

std::string when(std::uint64_t usec, const Scope& s) { return usec ? local_time(usec, s.filter) : std::string(); }

std::string window_text(const Scope& s) {
    std::string since = s.filter.since_usec ? local_time(*s.filter.since_usec, s.filter) : "(start of the journal)";
    std::string until = s.filter.until_usec ? local_time(*s.filter.until_usec, s.filter) : "(end of the journal)";
    return since + " .. " + until;
}

JsonValue persons_json(const Persons& p) {
    auto o = JsonValue::object();
    o.set("min", JsonValue(p.min)).set("max", or_null(p.max));
    if (p.exact) o.set("exact", JsonValue(*p.exact));
    o.set("basis", p.basis);
    return o;
}

JsonValue strings(const std::set<std::string>& items) {
    auto a = JsonValue::array();
    for (const auto& i : items) a.push(i);
    return a;
}

JsonValue file_json(const File& f, const Scope& s) {
    auto readers = JsonValue::array();
    for (const auto& r : f.readers)
        readers.push(JsonValue::object()
                         .set("user", r.user)
                         .set("client", or_null(r.client))
                         .set("first", when(r.first_usec, s))
                         .set("last", when(r.last_usec, s))
                         .set("count", r.count));
    return JsonValue::object()
        .set("path", f.path)
        .set("server", f.server)
        .set("zone", or_null(f.zone))
        .set("copy_out_of_zones", f.copy_out)
        .set("reads", f.reads)
        .set("denials", f.denials)
        .set("readers", std::move(readers))
        .set("categories", strings(f.categories))
        .set("categories_basis", f.categories_basis)
        .set("categories_note", or_null(f.categories_note))
        .set("persons", persons_json(f.persons));
}

JsonValue print_json(const PrintJob& p, const Scope& s) {
    return JsonValue::object()
        .set("server", p.server)
        .set("printer", p.printer)
        .set("job", p.job)
        .set("user", p.user)
        .set("client", or_null(p.client))
        .set("title", p.title)
        .set("pages", p.pages)
        .set("first", when(p.first_usec, s))
        .set("last", when(p.last_usec, s))
        .set("first_decision", p.first_decision)
        .set("final_decision", p.final_decision)
        .set("approved_by", or_null(p.final_decision == "allow" ? p.decided_by : ""))
        .set("decided_by", or_null(p.decided_by))
        .set("categories", strings(p.categories))
        .set("persons", persons_json(p.persons));
}

JsonValue copy_json(const Copy& c, const Scope& s) {
    return JsonValue::object()
        .set("server", c.server)
        .set("path", c.path)
        .set("copy_of", or_null(c.copy_of))
        .set("user", c.user)
        .set("client", or_null(c.client))
        .set("time", when(c.time_usec, s))
        .set("action", or_null(c.action))
        .set("categories", strings(c.categories))
        .set("persons", persons_json(c.persons));
}

JsonValue window_json(const Scope& s) {
    return JsonValue::object()
        .set("since", or_null(s.filter.since_usec ? local_time(*s.filter.since_usec, s.filter) : ""))
        .set("until", or_null(s.filter.until_usec ? local_time(*s.filter.until_usec, s.filter) : ""))
        .set("first_record", or_null(when(s.first_usec, s)))
        .set("last_record", or_null(when(s.last_usec, s)))
        .set("time_basis", "CUSTGUARD_TIME_USEC (when the event happened), else the journal's timestamp");
}

JsonValue filter_json(const Scope& s) {
    return JsonValue::object()
        .set("user", or_null(s.filter.user))
        .set("client", or_null(s.filter.client))
        .set("zone", or_null(s.filter.zone))
        .set("path", or_null(s.filter.path));
}

JsonValue evidence_json(const Scope& s, std::string_view version) {
    auto files = JsonValue::array();
    for (const auto& e : s.evidence)
        files.push(JsonValue::object()
                       .set("file", e.file)
                       .set("servers", strings(e.servers))
                       .set("first", e.first)
                       .set("last", e.last)
                       .set("count", e.count)
                       .set("late", e.late)
                       .set("sha256", e.sha256));
    return JsonValue::object()
        .set("tool", "custguardctl")
        .set("version", std::string(version))
        .set("records", s.records)
        .set("duplicates_ignored", s.duplicates)
        .set("hash", evidence_hash_text())
        .set("files", std::move(files));
}

// `v` pretty-printed as it stands `depth` levels deep (its strings hold no raw newline).
void append_at(std::string& out, const JsonValue& v, int depth) {
    const std::string pad(static_cast<std::size_t>(depth) * 2, ' ');
    for (char c : v.dump(2)) {
        out += c;
        if (c == '\n') out += pad;
    }
}

// Text on its way to a stream, handed over in pieces so that a long report is never held whole.
struct Piecewise {
    std::string text;
    std::ostream& to;
    void hand_over(std::size_t at_least = 1 << 16) {
        if (text.size() < at_least) return;
        to.write(text.data(), static_cast<std::streamsize>(text.size()));
        text.clear();
    }
};

// A top-level member's array, as Json::dump(2) writes it, one item's tree at a time.
template <class T, class ToJson>
void append_array(Piecewise& out, const std::vector<T>& items, ToJson to_json) {
    out.text += '[';
    for (std::size_t i = 0; i < items.size(); ++i) {
        out.text += i ? ",\n    " : "\n    ";
        append_at(out.text, to_json(items[i]), 2);
        out.hand_over();
    }
    if (!items.empty()) out.text += "\n  ";
    out.text += ']';
}

JsonValue users_json(const Scope& s) {
    auto a = JsonValue::array();
    for (const auto& u : s.users)
        a.push(JsonValue::object()
                   .set("user", u.user)
                   .set("reads", u.reads)
                   .set("files", u.files)
                   .set("denials", u.denials)
                   .set("prints", u.prints)
                   .set("copies", u.copies)
                   .set("off_hours_reads", u.off_hours));
    return a;
}

}  // namespace

const char* evidence_hash_text() {
    return "SHA-256 over the cursors of the records used from each journal file (s=FILE), each followed by a newline, "
           "in the file's order (late ones last); custguardctl report --evidence EVIDENCE writes them: "
           "grep '^s=FILE;' EVIDENCE | sha256sum";
}

std::optional<Format> parse_format(std::string_view name) {
    if (name == "text") return Format::text;
    if (name == "json") return Format::json;
    if (name == "csv") return Format::csv;
    if (name == "html") return Format::html;
    return std::nullopt;
}

std::string render_json(const Scope& s, Kind kind, std::string_view version) {
    std::ostringstream out;
    write_json(s, kind, version, out);
    return std::move(out).str();
}

void write_json(const Scope& s, Kind kind, std::string_view version, std::ostream& to) {
    auto root = JsonValue::object();
    root.set("report", kind_name(kind));
    root.set("window", window_json(s));
    root.set("filter", filter_json(s));
    root.set("servers", strings(s.servers));
    root.set("summary", JsonValue::object()
                            .set("reads", s.reads)
                            .set("denials", s.denials)
                            .set("prints", s.prints)
                            .set("copies_out_of_zones", s.copies));
    if (kind == Kind::access) root.set("users", users_json(s));
    root.set("files", JsonValue());  // written below, one entry at a time
    auto prints = JsonValue::array();
    for (const auto& p : s.print_jobs) prints.push(print_json(p, s));
    auto copies = JsonValue::array();
    for (const auto& c : s.copies_out) copies.push(copy_json(c, s));
    root.set("destinations", JsonValue::object().set("print_jobs", std::move(prints)).set("copies", std::move(copies)));
    auto totals = JsonValue::object()
                      .set("files", static_cast<std::uint64_t>(s.files.size()))
                      .set("users", static_cast<std::uint64_t>(s.users.size()))
                      .set("reads", s.reads)
                      .set("denials", s.denials)
                      .set("prints", s.prints)
                      .set("copies_out_of_zones", s.copies)
                      .set("categories", strings(s.categories));
    auto persons = persons_json(s.persons);
    persons.set("explanation", s.persons_basis);
    totals.set("persons", std::move(persons));
    root.set("totals", std::move(totals));
    if (kind == Kind::leak_scope) {
        auto triggers = JsonValue::object();
        for (const auto& t : s.triggers) {
            auto o = JsonValue::object().set("status", t.status).set("basis", t.basis);
            if (t.name == "possibly_deliberate") {
                auto inds = JsonValue::array();
                for (const auto& i : s.indicators)
                    inds.push(JsonValue::object()
                                  .set("kind", i.kind)
                                  .set("server", i.server)
                                  .set("user", i.user)
                                  .set("time", when(i.time_usec, s))
                                  .set("count", i.count)
                                  .set("detail", i.detail));
                o.set("indicators", std::move(inds));
            }
            triggers.set(t.name, std::move(o));
        }
        root.set("triggers", std::move(triggers));
        if (s.deadlines)
            root.set("deadlines", JsonValue::object()
                                      .set("discovered", s.deadlines->discovered.iso())
                                      .set("preliminary", s.deadlines->preliminary.iso())
                                      .set("preliminary_latest", s.deadlines->preliminary_latest.iso())
                                      .set("final", s.deadlines->final.iso())
                                      .set("final_if_deliberate", s.deadlines->final_if_deliberate.iso())
                                      .set("rule", s.deadlines->rule));
        else
            root.set("deadlines", JsonValue());
        root.set("timeline", JsonValue());        // written below, one entry at a time
        root.set("reads_per_hour", JsonValue());  // likewise
    }
    root.set("evidence", evidence_json(s, version));
    // As root.dump(2), but the long lists are written entry by entry rather than held as
    // one JSON tree (a timeline of 100,000 denials, 20,000 files).
    Piecewise out{"{", to};
    bool first = true;
    for (const auto& [key, value] : root.as_object()) {
        out.text += first ? "\n  " : ",\n  ";
        first = false;
        common::append_json_string(out.text, key);
        out.text += ": ";
        if (key == "files")
            append_array(out, s.files, [&](const File& f) { return file_json(f, s); });
        else if (key == "timeline")
            append_array(out, s.timeline, [&](const TimelineEntry& t) {
                return JsonValue::object()
                    .set("time", when(t.time_usec, s))
                    .set("server", t.server)
                    .set("event", t.event)
                    .set("decision", or_null(t.decision))
                    .set("user", or_null(t.user))
                    .set("client", or_null(t.client))
                    .set("what", or_null(t.what));
            });
        else if (key == "reads_per_hour")
            append_array(out, s.hourly_reads, [&](const HourlyReads& h) {
                return JsonValue::object()
                    .set("hour", when(h.hour_usec, s))
                    .set("server", h.server)
                    .set("user", or_null(h.user))
                    .set("reads", h.count);
            });
        else
            append_at(out.text, value, 1);
    }
    out.text += "\n}\n";
    out.hand_over(0);
}

namespace {

std::string persons_text(const Persons& p) {
    if (p.exact) return std::to_string(*p.exact) + " (exact, EDM index)";
    if (p.basis == "none") return "unknown (no scan)";
    return std::to_string(p.min) + ".." + (p.max ? std::to_string(*p.max) : "?") + " (bounds from detector hits)";
}

}  // namespace

std::string basis_text(const File& f) {
    if (f.categories_basis == "recorded") return "scan recorded with the event";
    if (f.categories_basis == "today") return "scan of today's file: " + escape_text(f.categories_note);
    return "not available: " + escape_text(f.categories_note);
}

std::string render_text(const Scope& s, Kind kind, std::string_view version) {
    std::ostringstream o;
    auto e = [](const std::string& v) { return escape_text(v); };
    o << (kind == Kind::leak_scope ? "custguard leak-scope report / 漏えい等 調査報告\n"
                                   : "custguard access report / アクセス報告\n");
    o << "\n概要 Summary\n";
    o << "  Window 期間:            " << window_text(s) << "\n";
    if (!s.filter.user.empty()) o << "  User 利用者:            " << e(s.filter.user) << "\n";
    if (!s.filter.client.empty()) o << "  Client 端末:            " << e(s.filter.client) << "\n";
    if (!s.filter.zone.empty()) o << "  Zone ゾーン:            " << e(s.filter.zone) << "\n";
    if (!s.filter.path.empty()) o << "  Path パス:              " << e(s.filter.path) << "\n";
    o << "  Servers サーバ:         " << (s.servers.empty() ? "(none)" : e(join(s.servers, ", "))) << "\n";
    o << "  Reads 閲覧:             " << s.reads << "\n";
    o << "  Denials 拒否:           " << s.denials << "\n";
    o << "  Prints 印刷:            " << s.prints << "\n";
    o << "  Copies out of zones ゾーン外へのコピー: " << s.copies << "\n";

    if (kind == Kind::access) {
        o << "\n利用者別 Per user\n";
        if (s.users.empty()) o << "  (none)\n";
        for (const auto& u : s.users)
            o << "  " << e(u.user) << ": " << u.reads << " reads of " << u.files << " files, " << u.denials
              << " denials, " << u.prints << " prints, " << u.copies << " copies, " << u.off_hours
              << " reads off hours\n";
    }

    o << "\nファイル Files\n";
    if (s.files.empty()) o << "  (none)\n";
    for (const auto& f : s.files) {
        o << "  " << e(f.server) << ":" << e(f.path);
        if (!f.zone.empty()) o << "  [zone " << e(f.zone) << "]";
        if (f.copy_out) o << "  [outside zones]";
        o << "\n    reads " << f.reads << ", denials " << f.denials << "\n";
        o << "    categories 種類: " << (f.categories.empty() ? "-" : join(f.categories, ", ")) << " ("
          << basis_text(f) << ")\n";
        o << "    persons 人数: " << persons_text(f.persons) << "\n";
        for (const auto& r : f.readers)
            o << "    " << e(r.user) << " from " << (r.client.empty() ? "(local)" : e(r.client)) << ": " << r.count
              << "x, " << when(r.first_usec, s) << " .. " << when(r.last_usec, s) << "\n";
    }

    o << "\n合計 Totals\n";
    o << "  Files " << s.files.size() << ", users " << s.users.size() << ", categories "
      << (s.categories.empty() ? "-" : join(s.categories, ", ")) << "\n";
    o << "  Persons 本人の数: " << s.persons.min << ".." << (s.persons.max ? std::to_string(*s.persons.max) : "?");
    if (s.persons.exact) o << " (exact " << *s.persons.exact << ")";
    o << "\n    " << s.persons_basis << "\n";

    if (kind == Kind::leak_scope) {
        o << "\n報告対象の要件 Reporting triggers\n";
        for (const auto& t : s.triggers) o << "  " << t.name << ": " << t.status << " — " << t.basis << "\n";
        o << "\n不正の目的を示しうる事実 Indicators of a possibly deliberate leak (listed, not judged)\n";
        if (s.indicators.empty()) o << "  (none)\n";
        for (const auto& i : s.indicators)
            o << "  " << when(i.time_usec, s) << "  " << i.kind << "  " << e(i.server) << "  " << e(i.user) << ": "
              << e(i.detail) << "\n";
    }

    o << "\n流出先 Where the data went\n";
    o << "  Print jobs 印刷:\n";
    if (s.print_jobs.empty()) o << "    (none)\n";
    for (const auto& p : s.print_jobs) {
        o << "    " << when(p.first_usec, s) << "  " << e(p.server) << "  " << e(p.printer) << ":" << e(p.job) << "  "
          << e(p.user) << " \"" << e(p.title) << "\" " << p.pages << " pages: " << p.first_decision;
        if (p.final_decision != p.first_decision) o << " -> " << p.final_decision;
        if (!p.decided_by.empty()) o << " by " << e(p.decided_by);
        o << "; persons " << persons_text(p.persons) << "\n";
    }
    o << "  Copies outside zones ゾーン外のコピー:\n";
    if (s.copies_out.empty()) o << "    (none)\n";
    for (const auto& c : s.copies_out)
        o << "    " << when(c.time_usec, s) << "  " << e(c.server) << ":" << e(c.path) << "  by " << e(c.user)
          << (c.copy_of.empty() ? "" : ", copy of zone " + e(c.copy_of)) << ", " << (c.action.empty() ? "-" : e(c.action))
          << "; persons " << persons_text(c.persons) << "\n";

    if (kind == Kind::leak_scope) {
        o << "\n報告期限 Deadlines\n";
        if (!s.deadlines) {
            o << "  (give --discovered-at to compute them)\n";
        } else {
            const auto& d = *s.deadlines;
            o << "  Discovered 発覚:          " << d.discovered.iso() << "\n";
            o << "  速報 Preliminary:         " << d.preliminary.iso() << " (latest " << d.preliminary_latest.iso()
              << ")\n";
            o << "  確報 Final:               " << d.final.iso() << " (" << d.final_if_deliberate.iso()
              << " if possibly deliberate)\n";
            o << "  Rule: " << d.rule << "\n";
        }
    }

    o << "\n証跡 Evidence\n";
    o << "  custguardctl " << version << ", " << s.records << " records";
    if (s.duplicates) o << " (" << s.duplicates << " repeated records ignored)";
    o << "\n";
    for (const auto& ev : s.evidence) {
        o << "  journal file " << e(ev.file) << " of " << e(join(ev.servers, ", ")) << ": " << ev.count << " cursors";
        if (ev.late) o << " (" << ev.late << " late)";
        o << ", sha256 " << ev.sha256 << "\n    first " << e(ev.first) << "\n    last  " << e(ev.last) << "\n";
    }
    o << "  " << evidence_hash_text() << "\n";
    return o.str();
}

namespace {

// RFC 4180 quoting; a cell that a spreadsheet would run as a formula is prefixed with '.
std::string csv_cell(const std::string& v) {
    std::string cell = v;
    if (!cell.empty() && (cell[0] == '=' || cell[0] == '+' || cell[0] == '-' || cell[0] == '@')) cell.insert(0, "'");
    if (cell.find_first_of(",\"\r\n") == std::string::npos) return cell;
    std::string out = "\"";
    for (char c : cell) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

}  // namespace

std::string render_csv(const Scope& s, Kind) {
    std::string out =
        "kind,server,path,zone,user,client,first,last,count,categories,categories_basis,persons_min,persons_max,persons_exact,"
        "persons_basis,detail\r\n";
    auto row = [&](std::initializer_list<std::string> cells) {
        bool first = true;
        for (const auto& c : cells) {
            if (!first) out += ',';
            out += csv_cell(c);
            first = false;
        }
        out += "\r\n";
    };
    auto n = [](std::optional<std::uint64_t> v) { return v ? std::to_string(*v) : std::string(); };
    auto recorded = [](const Persons& p) { return std::string(p.basis == "none" ? "none" : "recorded"); };
    for (const auto& f : s.files) {
        std::string cats = join(f.categories);
        if (f.readers.empty())
            row({f.copy_out ? "file_outside_zones" : "file", f.server, f.path, f.zone, "", "", "", "", "0", cats, f.categories_basis,
                 std::to_string(f.persons.min), n(f.persons.max), n(f.persons.exact), f.persons.basis,
                 std::to_string(f.denials) + " denials"});
        for (const auto& r : f.readers)
            row({"read", f.server, f.path, f.zone, r.user, r.client, when(r.first_usec, s), when(r.last_usec, s),
                 std::to_string(r.count), cats, f.categories_basis, std::to_string(f.persons.min), n(f.persons.max), n(f.persons.exact),
                 f.persons.basis, std::to_string(f.denials) + " denials"});
    }
    for (const auto& p : s.print_jobs)
        row({"print", p.server, p.printer + ":" + p.job, "", p.user, p.client, when(p.first_usec, s),
             when(p.last_usec, s), "1", join(p.categories), recorded(p.persons), std::to_string(p.persons.min), n(p.persons.max),
             n(p.persons.exact), p.persons.basis,
             p.first_decision + (p.final_decision != p.first_decision ? "->" + p.final_decision : "") +
                 (p.decided_by.empty() ? "" : " by " + p.decided_by)});
    for (const auto& c : s.copies_out)
        row({"copy", c.server, c.path, c.copy_of, c.user, c.client, when(c.time_usec, s), when(c.time_usec, s), "1",
             join(c.categories), recorded(c.persons), std::to_string(c.persons.min), n(c.persons.max), n(c.persons.exact), c.persons.basis,
             c.action});
    return out;
}

void render(const Scope& s, Kind kind, Format format, std::string_view version, std::ostream& out) {
    if (format == Format::json) write_json(s, kind, version, out);
    else out << render(s, kind, format, version);
}

std::string render(const Scope& s, Kind kind, Format format, std::string_view version) {
    switch (format) {
    case Format::text: return render_text(s, kind, version);
    case Format::json: return render_json(s, kind, version);
    case Format::csv: return render_csv(s, kind);
    case Format::html: return render_html(s, kind, version);
    }
    return {};
}

}  // namespace custguard::report
