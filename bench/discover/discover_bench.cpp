// Survey benchmark. Prints a table; not a test.
//
//   discover_bench [--size MB (2048)] [--dir DIR (/var/tmp)] [--kinds text,csv,xlsx,pdf[,binary]]
//                  [--keep] [--runs N (1)] [--baseline CUSTGUARDCTL]
//
// Generates a deterministic mixed tree of about SIZE MB in folders of 100 files (shares of
// the size: text 55%, csv 30%, xlsx 10%, pdf 5%; --kinds leaves kinds out, e.g. the PDFs,
// whose reader takes most of the time; binary, 20% more, only when named):
//   text/  UTF-8 prose (Japanese and English) with customer data in some lines, 256 KiB files
//   csv/   customer lists (card, e-mail, phone, address), 64 KiB files
//   xlsx/  workbooks of 300 customer rows (shared strings; ~20 KiB zipped)
//   pdf/   one-page PDFs of the same rows (uncompressed content, ~4 KiB)
//   binary/ copies of this machine's shared libraries (/usr/lib/x86_64-linux-gnu, by name):
//          no format discover knows, so each goes to the sandboxed reader, which reads
//          text behind NULs on disk; rg stops at a file's first NUL
// Then, with a warm page cache and both at nice 19 / idle I/O (what the survey sets for
// itself), measures wall and CPU seconds, MB/s and files/s (per wall and per CPU second) of
//   (a) custguardctl discover --json over each part and the whole tree (fresh store),
//   (b) rg -c with the scanner's candidate patterns (full-width forms spelled out; no
//       check digits, no PDF parsing: on PDFs it greps the raw bytes),
//   (c) discover again after touching 1% of the files (mtime + 1 s), as % of (a) in wall
//       and CPU time, and once more with nothing changed.
// --runs N measures each kind's rows N times, interleaved, and the whole tree's rows N
// times (a fresh store each time, a different 1% touched), and prints the medians: on a
// shared machine the load changes between rows. --baseline names another custguardctl
// (e.g. one built from main) measured in the same runs, so a change is compared with what
// it replaces under the same load.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "scan/office_documents.hpp"
#include "scan/pdf_builder.hpp"
#include "support/exec_plan.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::mt19937_64 rng(20261206);

std::string digits(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += char('0' + rng() % 10);
    return s;
}

std::string luhn_complete(const std::string& prefix) {
    int sum = 0;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        int d = prefix[prefix.size() - 1 - i] - '0';
        if (i % 2 == 0) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
        sum += d;
    }
    return prefix + char('0' + (10 - sum % 10) % 10);
}

const char* const kJa[] = {
    "本日の会議では新製品の販売計画について検討しました。", "来週の出張の日程を調整してください。",
    "見積書を添付いたしますのでご確認ください。", "倉庫の在庫数は先月より一割ほど減っています。",
    "営業部の目標は前年比一〇五パーセントです。", "研修の資料は共有フォルダに置いてあります。",
};
const char* const kEn[] = {
    "The quarterly report is due at the end of the month.", "Please review the attached quotation.",
    "Stock levels fell by about ten percent since last month.", "The new printer supports duplex printing.",
};

std::string customer_row() {
    const std::string c = luhn_complete("4" + digits(14));
    return "顧客" + digits(5) + ", " + c.substr(0, 4) + " " + c.substr(4, 4) + " " + c.substr(8, 4) + " " +
           c.substr(12) + ", user" + digits(6) + "@example.co.jp, 03-" + digits(4) + "-" + digits(4) + ", 〒" +
           digits(3) + "-" + digits(4) + " 東京都千代田区";
}

std::string text_file(std::size_t bytes) {
    std::string out;
    while (out.size() < bytes) {
        const auto pick = rng() % 100;
        if (pick < 50) out += kJa[rng() % std::size(kJa)];
        else if (pick < 95) out += kEn[rng() % std::size(kEn)];
        else out += customer_row();
        out += '\n';
    }
    return out;
}

std::string csv_file(std::size_t bytes) {
    std::string out = "id, card, mail, phone, address\n";
    while (out.size() < bytes) out += customer_row() + "\n";
    return out;
}

std::string pdf_file() {
    // Helvetica cannot show kanji: ASCII rows.
    std::string content = "BT /F2 9 Tf 11 TL 40 800 Td\n";
    for (int i = 0; i < 40; ++i) {
        const std::string c = luhn_complete("4" + digits(14));
        content += "(Customer " + digits(5) + " card " + c + " mail user" + digits(6) + "@example.co.jp tel 03-" +
                   digits(4) + "-" + digits(4) + ") Tj T*\n";
    }
    return scan_test::one_page_pdf(scan_test::kHelvetica, content + "ET\n");
}

std::string xlsx_file() {
    std::string shared, rows;
    for (int r = 0; r < 300; ++r) {
        const std::string c = luhn_complete("4" + digits(14));
        shared += "<si><t>顧客" + digits(5) + "</t></si><si><t>user" + digits(6) + "@example.co.jp</t></si><si><t>03-" +
                  digits(4) + "-" + digits(4) + "</t></si>";
        rows += "<row r=\"" + std::to_string(r + 1) + "\"><c t=\"s\"><v>" + std::to_string(3 * r) + "</v></c><c><v>" + c +
                "</v></c><c t=\"s\"><v>" + std::to_string(3 * r + 1) + "</v></c><c t=\"s\"><v>" + std::to_string(3 * r + 2) +
                "</v></c></row>";
    }
    return scan_test::xlsx(shared, rows);
}

struct Part {
    std::string name;
    std::uint64_t files = 0, bytes = 0;
};

struct Timing {
    double wall = 0, cpu = 0;
    bool ok = false;
};

// Runs argv with stdout to `out` (may be null); wall and CPU (user + sys) seconds.
Timing run(const std::vector<std::string>& argv, std::string* out = nullptr) {
    const cgtest::ExecPlan plan(argv);
    int p[2];
    if (pipe(p) != 0) return {};
    const auto start = Clock::now();
    const pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        plan.exec();
    }
    close(p[1]);
    char buf[65536];
    ssize_t n;
    while ((n = read(p[0], buf, sizeof buf)) > 0)
        if (out) out->append(buf, static_cast<std::size_t>(n));
    close(p[0]);
    int status = 0;
    rusage ru{};
    wait4(pid, &status, 0, &ru);
    Timing t;
    t.wall = std::chrono::duration<double>(Clock::now() - start).count();
    t.cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
            static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    t.ok = WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 1);
    return t;
}

// Medians of wall and CPU seconds; failed if any run failed.
Timing median(std::vector<Timing> runs) {
    Timing m;
    m.ok = !runs.empty() && std::all_of(runs.begin(), runs.end(), [](const Timing& t) { return t.ok; });
    if (!m.ok) return m;
    const auto mid = [&](auto field) {
        std::vector<double> v;
        for (const auto& t : runs) v.push_back(t.*field);
        std::sort(v.begin(), v.end());
        return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
    };
    m.wall = mid(&Timing::wall);
    m.cpu = mid(&Timing::cpu);
    return m;
}

std::vector<std::string> rg_patterns() {
    const std::string d = "[0-9０-９]";
    const std::string sep = "[ ()\\-－ー・‐‑‒–—―−（）　]";
    return {
        d + "(?:" + sep + "?" + d + "){9,}",
        "[A-Za-z0-9._%+\\-ａ-ｚＡ-Ｚ０-９．＿－]+[@＠][A-Za-z0-9\\-ａ-ｚＡ-Ｚ０-９－]+[.．][A-Za-zａ-ｚＡ-Ｚ]",
        "[〒〶][ 　]?" + d + "{3}[-－‐]?" + d + "{4}",
        "顧客|氏名|住所|病歴|診断|生年月日|マイナンバー|個人番号|既往歴|電話番号|口座番号",
    };
}

std::string json_counter(const std::string& json, const std::string& key) {
    auto pos = json.find("\"" + key + "\":");
    if (pos == std::string::npos) return "?";
    pos += key.size() + 3;
    return json.substr(pos, json.find_first_of(",}", pos) - pos);
}

void row(const std::string& what, const Part& p, const Timing& t, const std::string& note = "") {
    if (!t.ok) {
        std::printf("%-34s  failed\n", what.c_str());
        return;
    }
    std::printf("%-34s %8.2f %8.2f %9.1f %10.0f %9.1f %10.0f  %s\n", what.c_str(), t.wall, t.cpu,
                static_cast<double>(p.bytes) / 1e6 / t.wall, static_cast<double>(p.files) / t.wall,
                static_cast<double>(p.bytes) / 1e6 / t.cpu, static_cast<double>(p.files) / t.cpu, note.c_str());
}

}  // namespace

int main(int argc, char** argv) {
    std::uint64_t size_mb = 2048;
    fs::path base = "/var/tmp";
    bool keep = false;
    std::string kinds = "text,csv,xlsx,pdf";
    const char* const usage = "usage: discover_bench [--size MB] [--dir DIR] [--kinds text,csv,xlsx,pdf,binary] [--keep] "
                              "[--runs N] [--baseline CUSTGUARDCTL]\n";
    std::string baseline;
    int runs = 1;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--size" && i + 1 < argc) size_mb = std::strtoull(argv[++i], nullptr, 10);
        else if (a == "--dir" && i + 1 < argc) base = argv[++i];
        else if (a == "--kinds" && i + 1 < argc) kinds = argv[++i];
        else if (a == "--keep") keep = true;
        else if (a == "--runs" && i + 1 < argc) runs = std::max(1, std::atoi(argv[++i]));
        else if (a == "--baseline" && i + 1 < argc) baseline = argv[++i];
        else {
            std::fprintf(stderr, "%s", usage);
            return 2;
        }
    }
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // rows as they are measured
    ::setenv("CUSTGUARD_EXTRACT_HELPER", CG_EXTRACT_HELPER, 0);
    const fs::path root = base / ("cg-discover-bench-" + std::to_string(::getpid()));
    const fs::path tree = root / "tree";
    const std::uint64_t total = size_mb << 20;
    constexpr int k_kinds = 5;
    constexpr int k_binary = 4;
    Part parts[k_kinds] = {{"text"}, {"csv"}, {"xlsx"}, {"pdf"}, {"binary"}};
    const char* const ext[k_kinds] = {".txt", ".csv", ".xlsx", ".pdf", ".so"};
    const std::uint64_t percent[k_kinds] = {55, 30, 10, 5, 20};
    bool wanted[k_kinds] = {};
    std::vector<fs::path> libraries;
    for (const auto& e : fs::directory_iterator("/usr/lib/x86_64-linux-gnu", fs::directory_options::skip_permission_denied))
        if (e.is_regular_file() && !e.is_symlink() && e.path().filename().string().find(".so") != std::string::npos)
            libraries.push_back(e.path());
    std::sort(libraries.begin(), libraries.end());
    std::vector<fs::path> files;
    for (int k = 0; k < k_kinds; ++k) {
        wanted[k] = ("," + kinds + ",").find("," + parts[k].name + ",") != std::string::npos;
        if (!wanted[k]) continue;
        if (k == k_binary && libraries.empty()) {
            std::fprintf(stderr, "discover_bench: no shared libraries in /usr/lib/x86_64-linux-gnu for --kinds binary\n");
            return 2;
        }
        auto& p = parts[k];
        while (p.bytes < total * percent[k] / 100) {
            const fs::path dir = tree / p.name / ("d" + std::to_string(p.files / 100));
            if (p.files % 100 == 0) fs::create_directories(dir);
            std::string body;
            if (k == k_binary) {
                std::ifstream in(libraries[p.files % libraries.size()], std::ios::binary);
                body.assign(std::istreambuf_iterator<char>(in), {});
            } else {
                body = k == 0 ? text_file(256 << 10) : k == 1 ? csv_file(64 << 10) : k == 2 ? xlsx_file() : pdf_file();
            }
            const fs::path f = dir / ("f" + std::to_string(p.files) + ext[k]);
            std::ofstream(f, std::ios::binary) << body;
            files.push_back(f);
            ++p.files;
            p.bytes += body.size();
        }
    }
    Part all{"all"};
    for (const auto& p : parts) all.files += p.files, all.bytes += p.bytes;
    const fs::path policy = root / "policy.toml";
    std::ofstream(policy) << "[print]\nthreshold = 3\n";
    const fs::path patterns = root / "patterns";
    {
        std::ofstream p(patterns);
        for (const auto& pat : rg_patterns()) p << pat << '\n';
    }
    // Warm the page cache: both tools then read from memory.
    run({"rg", "-c", "--no-config", "-f", patterns.string(), tree.string()});

    const std::vector<std::string> idle = {"nice", "-n", "19", "ionice", "-c", "3"};
    auto discover = [&](const fs::path& db, const std::vector<fs::path>& paths, std::string* out,
                        const std::string& ctl = CG_CUSTGUARDCTL) {
        std::vector<std::string> a = {ctl, "discover", "--json", "--db", db.string(), "--policy",
                                      policy.string()};
        for (const auto& p : paths) a.push_back(p.string());
        return run(a, out);
    };
    auto rg = [&](const std::vector<fs::path>& paths) {
        std::vector<std::string> a = idle;
        for (auto s : {"rg", "-c", "--no-config", "-f"}) a.push_back(s);
        a.push_back(patterns.string());
        for (const auto& p : paths) a.push_back(p.string());
        return run(a);
    };

    std::printf("tree: %.1f MB in %llu files (", all.bytes / 1e6, (unsigned long long)all.files);
    for (int k = 0, shown = 0; k < k_kinds; ++k)
        if (wanted[k])
            std::printf("%s%s %.1f MB / %llu", shown++ ? ", " : "", parts[k].name.c_str(), parts[k].bytes / 1e6,
                        (unsigned long long)parts[k].files);
    std::printf("); warm page cache; 2 scanning threads; medians of %d run%s\n\n", runs, runs == 1 ? "" : "s");
    if (!baseline.empty()) std::printf("baseline: %s\n", baseline.c_str());
    // At nice 19 both get what other processes leave: on a busy machine wall time says more
    // about the load than about the tools, CPU time (user + sys, all threads and children)
    // does not.
    std::string load = "?";
    if (std::ifstream l("/proc/loadavg"); l) std::getline(l, load);
    std::printf("load average at start: %s\n", load.c_str());
    std::printf("%-34s %8s %8s %9s %10s %9s %10s\n", "", "wall s", "cpu s", "MB/s", "files/s", "MB/cpu-s",
                "files/cpu-s");
    std::string out;
    Timing per_kind[k_kinds], rg_kind[k_kinds], base_kind[k_kinds];
    for (int k = 0; k < k_kinds; ++k) {
        if (!wanted[k]) continue;
        std::vector<Timing> ours, theirs, grep;
        for (int r = 0; r < runs; ++r) {
            // A fresh store each time: every file is scanned.
            const fs::path db = root / (parts[k].name + std::to_string(r) + ".db");
            out.clear();
            ours.push_back(discover(db, {tree / parts[k].name}, &out));
            if (!baseline.empty()) theirs.push_back(discover(root / (parts[k].name + std::to_string(r) + ".base.db"),
                                                             {tree / parts[k].name}, nullptr, baseline));
            grep.push_back(rg({tree / parts[k].name}));
        }
        per_kind[k] = median(ours);
        row("discover " + parts[k].name, parts[k], per_kind[k],
            "in process " + json_counter(out, "in_process") + ", sandboxed " + json_counter(out, "sandboxed"));
        if (!baseline.empty()) {
            base_kind[k] = median(theirs);
            row("discover " + parts[k].name + " (baseline)", parts[k], base_kind[k]);
        }
        rg_kind[k] = median(grep);
        row("rg -c " + parts[k].name + (k >= 2 ? " (raw bytes)" : ""), parts[k], rg_kind[k],
            k == k_binary ? "stops at each file's first NUL" : "");
        if (runs > 1 && k < 2) {
            // Each run's ratio, for "N runs in a row" claims.
            std::string each = "  rg cpu / discover cpu, each run:";
            for (int r = 0; r < runs; ++r) {
                char v[16];
                std::snprintf(v, sizeof v, " %.2f", grep[r].cpu / ours[r].cpu);
                each += v;
            }
            std::printf("%s\n", each.c_str());
        }
    }
    // The whole tree: a first run into a fresh store, then runs after touching 1% of the
    // files (a different 1% each time) and with nothing changed, each --runs times.
    std::vector<Timing> firsts, seconds, thirds, greps;
    std::string first_out, second_out, third_out;
    std::uint64_t touched = 0;
    for (int r = 0; r < runs; ++r) {
        const fs::path db = root / ("all" + std::to_string(r) + ".db");
        first_out.clear();
        firsts.push_back(discover(db, {tree}, &first_out));
        greps.push_back(rg({tree}));
        touched = 0;
        for (std::size_t i = static_cast<std::size_t>(r) % 100; i < files.size(); i += 100) {
            struct stat st;
            if (::stat(files[i].c_str(), &st) != 0) continue;
            struct timespec times[2] = {st.st_atim, st.st_mtim};
            times[1].tv_sec += 1;
            if (::utimensat(AT_FDCWD, files[i].c_str(), times, 0) == 0) ++touched;
        }
        second_out.clear();
        seconds.push_back(discover(db, {tree}, &second_out));
        third_out.clear();
        thirds.push_back(discover(db, {tree}, &third_out));
    }
    const Timing first = median(firsts), rg_all = median(greps), second = median(seconds), third = median(thirds);
    row("discover all (first run)", all, first, "scanned " + json_counter(first_out, "scanned"));
    row("rg -c all", all, rg_all);
    // On a loaded machine wall time mostly measures the wait for a CPU at nice 19: both
    // shares are printed.
    char note[160];
    std::snprintf(note, sizeof note, "scanned %s of %llu touched; %.1f%% of the first run's wall, %.1f%% of its CPU",
                  json_counter(second_out, "scanned").c_str(), (unsigned long long)touched, 100.0 * second.wall / first.wall,
                  100.0 * second.cpu / first.cpu);
    row("discover all, 1% touched", all, second, note);
    std::snprintf(note, sizeof note, "scanned %s; %.1f%% of the first run's wall, %.1f%% of its CPU",
                  json_counter(third_out, "scanned").c_str(), 100.0 * third.wall / first.wall, 100.0 * third.cpu / first.cpu);
    row("discover all, nothing changed", all, third, note);
    std::printf("\n");
    for (int k = 0; k < 2; ++k)
        if (wanted[k] && per_kind[k].ok && rg_kind[k].ok) {
            std::printf("ratio rg / discover on %s: wall %.2f, cpu %.2f (target >= 1.00)", parts[k].name.c_str(),
                        rg_kind[k].wall / per_kind[k].wall, rg_kind[k].cpu / per_kind[k].cpu);
            if (base_kind[k].ok)
                std::printf("; baseline: wall %.2f, cpu %.2f", rg_kind[k].wall / base_kind[k].wall,
                            rg_kind[k].cpu / base_kind[k].cpu);
            std::printf("\n");
        }
    if (std::ifstream l("/proc/loadavg"); l) std::getline(l, load);
    std::printf("load average at end: %s\n", load.c_str());
    if (!keep) fs::remove_all(root);
    else std::printf("tree kept in %s\n", root.c_str());
    return 0;
}
