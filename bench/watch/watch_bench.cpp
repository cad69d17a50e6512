// The [watch] watcher of the shipped custguardd (fanotify enforcer, default flags, scratch
// journald, private bus; common/shipped_daemon.hpp), on a private tmpfs:
//   1. a storm of new 8 KiB files written outside zones into the watched tree (most of them
//      business text without customer data, every 10th a CSV and every 50th an xlsx with
//      customer rows): custguardd's CPU (its own and its reaped readers'), journald's, the
//      time until the last customer_data_found record and the latency per file from the
//      writer's close to the record's journal timestamp;
//   2. the enforcer's permission path, open+read(4 KiB)+close by the allowed user of files
//      outside zones (in the watched tree) and of zone files, with 1, 100 and 10,000 zones,
//      [watch] off and on, in a quiet run and while a writer storms the watched tree; ratios
//      to no custguardd measured right after (with the same storm running).
// Exits 1 when a configuration did not run (custguardd exited, did not enforce, or records
// are missing). Needs root; creates the user cgfan-bench (kept).
//
//   3. with --idle SECONDS (instead of 1 and 2): custguardd's CPU on an idle machine with
//      [watch] off and on, processes added up to --idle-processes (the sweep of shared
//      mappings reads every process's maps).
//
//   bench_watch [--files N] [--zones 1,100,10000] [--ops N] [--rounds N] [--epochs N]
//               [--storm-rate FILES_PER_S] [--no-storm-files] [--no-permission]
//               [--idle SECONDS [--idle-processes N]]
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <tuple>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/cpu_ticks.hpp"
#include "common/shipped_daemon.hpp"
#include "common/stats.hpp"
#include "support/support.hpp"
#include "scan/office_documents.hpp"

using Clock = std::chrono::steady_clock;

namespace {

uid_t bench_uid = 60001;  // the allowed user (cgfan-bench, set in main)
gid_t bench_gid = 60001;
constexpr uid_t other_uid = 60009;  // in no allow list
int ops = 5000;
int read_files = 256;
int rounds = 3;
int epochs = 1;
int storm_rate = 1000;  // files per second written during the permission-path storm

using cgtest::spit;  // throws when a file cannot be written

// CPU ticks of `pid` including its children (the sandboxed readers): utime, stime, cutime
// and cstime, and the utime and stime of children still running (a batch reader lives on
// for many files).
long cpu_ticks_with_children(pid_t pid) {
    if (pid <= 0) return 0;
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat;
    std::getline(in, stat);
    const auto paren = stat.rfind(')');
    if (paren == std::string::npos) return 0;
    std::istringstream fields(stat.substr(paren + 2));
    std::string skip;
    for (int i = 3; i < 14; ++i) fields >> skip;
    long v[4] = {};
    for (long& x : v) fields >> x;
    long running = 0;
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
        const std::string name = e.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::ifstream child(e.path() / "stat");
        std::string line;
        std::getline(child, line);
        const auto close = line.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream f(line.substr(close + 2));
        std::string state;
        long ppid = 0;
        f >> state >> ppid;
        if (ppid == pid) running += custguard::bench::cpu_ticks(static_cast<pid_t>(std::stol(name)));
    }
    return v[0] + v[1] + v[2] + v[3] + running;
}
double ticks_s(long t) { return static_cast<double>(t) / static_cast<double>(::sysconf(_SC_CLK_TCK)); }

std::string loadavg() {
    std::ifstream in("/proc/loadavg");
    std::string a, b, c;
    in >> a >> b >> c;
    return a + " " + b + " " + c;
}

std::uint64_t realtime_us() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000u + static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
}

// The generated files: 8 KiB each; kind 0 text without customer data, 1 a CSV and 2 an
// xlsx with customer rows.
std::mt19937_64 rng(20261206);
std::string digits(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += char('0' + rng() % 10);
    return s;
}
const char* const kText[] = {
    "本日の会議では新製品の販売計画について検討しました。", "来週の出張の日程を調整してください。",
    "見積書を添付いたしますのでご確認ください。", "倉庫の在庫数は先月より一割ほど減っています。",
    "The quarterly report is due at the end of the month.", "Please review the attached quotation.",
    "Stock levels fell by about ten percent since last month.", "The new printer supports duplex printing.",
};
std::string customer_row() {
    return "顧客" + digits(5) + ",user" + digits(6) + "@example.co.jp,03-" + digits(4) + "-" + digits(4) + ",〒" +
           digits(3) + "-" + digits(4) + " 東京都千代田区";
}
int kind_of(int i) { return i % 50 == 5 ? 2 : i % 10 == 0 ? 1 : 0; }
const char* const kExt[] = {".txt", ".csv", ".xlsx"};
std::string content_of(int kind) {
    constexpr std::size_t size = 8192;
    std::string out;
    if (kind == 0) {
        while (out.size() < size) out += std::string(kText[rng() % std::size(kText)]) + "\n";
    } else if (kind == 1) {
        out = "customer,mail,phone,address\n";
        while (out.size() < size) out += customer_row() + "\n";
    } else {
        std::string shared, rows;
        for (int r = 0; r < 60; ++r) {
            shared += "<si><t>user" + digits(6) + "@example.co.jp</t></si><si><t>03-" + digits(4) + "-" + digits(4) + "</t></si>";
            rows += "<row r=\"" + std::to_string(r + 1) + "\"><c t=\"s\"><v>" + std::to_string(2 * r) +
                    "</v></c><c t=\"s\"><v>" + std::to_string(2 * r + 1) + "</v></c></row>";
        }
        out = scan_test::xlsx(shared, rows);
    }
    if (kind != 2) out.resize(size);
    return out;
}

using custguard::bench::median;
using custguard::bench::quantile;

// customer_data_found records in the namespace: path -> journal receive time (us, realtime).
std::map<std::string, std::uint64_t> finds(const std::string& name_space) {
    std::map<std::string, std::uint64_t> out;
    sd_journal* j = nullptr;
    if (sd_journal_open_namespace(&j, name_space.c_str(), SD_JOURNAL_LOCAL_ONLY) < 0) return out;
    sd_journal_add_match(j, "CUSTGUARD_EVENT=customer_data_found", 0);
    while (sd_journal_next(j) > 0) {
        const void* data = nullptr;
        std::size_t len = 0;
        std::uint64_t t = 0;
        if (sd_journal_get_data(j, "CUSTGUARD_PATH", &data, &len) < 0 || sd_journal_get_realtime_usec(j, &t) < 0) continue;
        const std::string_view kv(static_cast<const char*>(data), len);
        out.emplace(std::string(kv.substr(kv.find('=') + 1)), t);
    }
    sd_journal_close(j);
    return out;
}

struct Reads {
    double wall_ns = -1;  // per operation, best round
    double cpu_ns = -1;   // CPU of the reading process per operation, in that round
};

// open+read+close of `dir`/f<i> as bench_uid in a child; best of `rounds`.
Reads measure(const std::string& dir) {
    std::vector<std::string> paths;
    for (int i = 0; i < read_files; ++i) paths.push_back(dir + "/f" + std::to_string(i));
    int p[2];
    if (::pipe(p) != 0) return {};
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::close(p[0]);
        if (::setgroups(0, nullptr) || ::setresgid(bench_gid, bench_gid, bench_gid) ||
            ::setresuid(bench_uid, bench_uid, bench_uid))
            ::_exit(1);
        char buf[4096];
        auto pass = [&](int n) {
            int failures = 0;
            for (int i = 0; i < n; ++i) {
                const int fd = ::open(paths[static_cast<std::size_t>(i % read_files)].c_str(), O_RDONLY | O_CLOEXEC);
                if (fd < 0) {
                    ++failures;
                    continue;
                }
                (void)!::read(fd, buf, sizeof buf);
                ::close(fd);
            }
            return failures;
        };
        pass(read_files * 2);  // warm: caches, ignore marks
        Reads best;
        for (int r = 0; r < rounds; ++r) {
            timespec c0{}, c1{};
            ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
            const auto t0 = Clock::now();
            if (pass(ops) != 0) ::_exit(2);
            const double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / ops;
            ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
            if (best.wall_ns < 0 || ns < best.wall_ns) {
                best.wall_ns = ns;
                best.cpu_ns = (static_cast<double>(c1.tv_sec - c0.tv_sec) * 1e9 + static_cast<double>(c1.tv_nsec - c0.tv_nsec)) / ops;
            }
        }
        (void)!::write(p[1], &best, sizeof best);
        ::_exit(0);
    }
    ::close(p[1]);
    Reads result;
    if (::read(p[0], &result, sizeof result) != sizeof result) result = {};
    ::close(p[0]);
    int st = 0;
    ::waitpid(pid, &st, 0);
    return result;
}

bool can_open_as(uid_t uid, const std::string& path) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        if (::setgroups(0, nullptr) || ::setresgid(uid, uid, uid) || ::setresuid(uid, uid, uid)) ::_exit(3);
        ::_exit(::open(path.c_str(), O_RDONLY | O_CLOEXEC) < 0 ? 1 : 0);
    }
    int st = 0;
    ::waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

// A writer process that writes new files of the mix into `dir` at `storm_rate` per second
// until killed. Contents are made before the fork: the child only makes system calls.
class Storm {
public:
    explicit Storm(const std::string& dir) {
        ::mkdir(dir.c_str(), 01777);
        std::vector<std::string> contents;
        for (int k = 0; k < 3; ++k) contents.push_back(content_of(k));
        std::vector<std::string> names;
        const int max_files = storm_rate * 60;
        for (int i = 0; i < max_files; ++i) names.push_back(dir + "/s" + std::to_string(i) + kExt[kind_of(i)]);
        pid_ = ::fork();
        if (pid_ == 0) {
            const auto t0 = Clock::now();
            for (int i = 0; i < max_files; ++i) {
                const int fd = ::open(names[static_cast<std::size_t>(i)].c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd >= 0) {
                    const std::string& c = contents[static_cast<std::size_t>(kind_of(i))];
                    (void)!::write(fd, c.data(), c.size());
                    ::close(fd);
                }
                const auto due = t0 + std::chrono::microseconds(1000000LL * (i + 1) / storm_rate);
                const auto now = Clock::now();
                if (due > now) {
                    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(due - now).count();
                    timespec ts{static_cast<time_t>(us / 1000000), static_cast<long>(us % 1000000) * 1000};
                    ::nanosleep(&ts, nullptr);
                }
            }
            ::_exit(0);
        }
    }
    ~Storm() {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    Storm(const Storm&) = delete;
    Storm& operator=(const Storm&) = delete;

private:
    pid_t pid_ = -1;
};

std::string policy_text(const std::string& fs, const std::string& zone, int zones, bool watch) {
    std::string text = "[daemon]\nenforcer = \"fanotify\"\n\n[[zone]]\nname = \"customers\"\npaths = [\"" + zone +
                       "\"]\nsensitivity = \"personal\"\non_violation = \"deny\"\nallow_users = [\"cgfan-bench\"]\n";
    for (int i = 1; i < zones; ++i)
        text += "\n[[zone]]\nname = \"z" + std::to_string(i) + "\"\npaths = [\"" + fs + "/zones/g" + std::to_string(i % 12) +
                "/z" + std::to_string(i) + "\"]\nallow_users = [\"root\"]\n";
    if (watch) text += "\n[watch]\npaths = [\"" + fs + "/public\"]\non_customer_data = \"record\"\n";
    return text;
}

// Part 1. Returns 1 when it did not run.
int storm_files(const std::string& work, const std::string& fs, const std::string& zone, int files) {
    const std::string policy = work + "/policy-storm.toml";
    spit(policy, policy_text(fs, zone, 1, true));
    const std::string dir = fs + "/public/storm-files";
    ::mkdir(dir.c_str(), 0755);
    std::vector<std::string> names, contents;
    int expected = 0, per_kind[3] = {};
    for (int i = 0; i < files; ++i) {
        names.push_back(dir + "/d" + std::to_string(i / 500) + "/n" + std::to_string(i) + kExt[kind_of(i)]);
        contents.push_back(content_of(kind_of(i)));
        expected += kind_of(i) != 0;
        ++per_kind[kind_of(i)];
    }
    for (int d = 0; d <= files / 500; ++d) ::mkdir((dir + "/d" + std::to_string(d)).c_str(), 0755);
    try {
        custguard::bench::ShippedDaemon daemon(work + "/custguardd-storm");
        const double start_ms = daemon.start(policy);
        if (can_open_as(other_uid, zone + "/f0")) throw std::runtime_error("custguardd does not enforce the zone");
        daemon.settle();
        const std::string load0 = loadavg();
        const long cg0 = cpu_ticks_with_children(daemon.pid());
        const long jd0 = cpu_ticks_with_children(daemon.journald().pid());
        std::vector<std::uint64_t> closed(static_cast<std::size_t>(files));
        const auto t0 = Clock::now();
        for (int i = 0; i < files; ++i) {
            const int fd = ::open(names[static_cast<std::size_t>(i)].c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd < 0 || ::write(fd, contents[static_cast<std::size_t>(i)].data(), contents[static_cast<std::size_t>(i)].size()) < 0)
                throw std::runtime_error("cannot write " + names[static_cast<std::size_t>(i)]);
            ::close(fd);
            closed[static_cast<std::size_t>(i)] = realtime_us();
        }
        const double write_s = std::chrono::duration<double>(Clock::now() - t0).count();
        // Wait for every find; a slow watcher gets 100 ms a file and a minute more.
        const auto deadline = t0 + std::chrono::milliseconds(100LL * files) + std::chrono::seconds(60);
        std::map<std::string, std::uint64_t> found;
        double last_s = -1;
        while (Clock::now() < deadline) {
            found = finds(daemon.journald().name_space());
            std::size_t ours = 0;
            for (const auto& [path, t] : found) ours += path.rfind(dir, 0) == 0;
            if (static_cast<int>(ours) >= expected) {
                last_s = std::chrono::duration<double>(Clock::now() - t0).count();
                break;
            }
            if (!daemon.running()) throw std::runtime_error("custguardd exited:\n" + cgtest::slurp(daemon.log()));
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
        daemon.settle();  // the clean files after the last find, if any, are scanned too
        const double busy_s = std::chrono::duration<double>(Clock::now() - t0).count();
        const long cg1 = cpu_ticks_with_children(daemon.pid());
        const long jd1 = cpu_ticks_with_children(daemon.journald().pid());
        const std::string load1 = loadavg();
        if (!daemon.running()) throw std::runtime_error("custguardd exited:\n" + cgtest::slurp(daemon.log()));
        const std::string log = cgtest::slurp(daemon.log());
        std::vector<double> lat_ms;
        std::uint64_t last_record = 0;
        int missing = 0, false_finds = 0;
        for (int i = 0; i < files; ++i) {
            const auto it = found.find(names[static_cast<std::size_t>(i)]);
            if (kind_of(i) == 0) {
                false_finds += it != found.end();
                continue;
            }
            if (it == found.end()) {
                ++missing;
                continue;
            }
            lat_ms.push_back(static_cast<double>(static_cast<std::int64_t>(it->second - closed[static_cast<std::size_t>(i)])) / 1000.0);
            last_record = std::max(last_record, it->second);
        }
        std::printf("\n1. Storm of new files outside zones into the watched tree (custguardd start %.0f ms; load %s -> %s)\n"
                    "   %d files of 8 KiB: %d text without customer data, %d CSV and %d xlsx with customer rows\n\n",
                    start_ms, load0.c_str(), load1.c_str(), files, per_kind[0], per_kind[1], per_kind[2]);
        std::printf("| measure | value |\n|---|---:|\n");
        std::printf("| writing all files (s, wall) | %.2f |\n", write_s);
        if (last_s < 0) std::printf("| first write to last customer_data_found record (s) | not reached |\n");
        else std::printf("| first write to last customer_data_found record (s) | %.2f |\n",
                         static_cast<double>(last_record - closed[0]) / 1e6);
        std::printf("| last write to last record (s) | %.2f |\n",
                    last_record ? static_cast<double>(static_cast<std::int64_t>(last_record - closed.back())) / 1e6 : -1.0);
        std::printf("| until custguardd idle again (s) | %.2f |\n", busy_s);
        std::printf("| custguardd CPU s (own + its readers) | %.2f |\n", ticks_s(cg1 - cg0));
        std::printf("| custguardd CPU ms per file written | %.2f |\n", ticks_s(cg1 - cg0) * 1000 / files);
        std::printf("| journald CPU s | %.2f |\n", ticks_s(jd1 - jd0));
        std::printf("| records: found / expected (missing; false finds in text) | %zu / %d (%d; %d) |\n", lat_ms.size(),
                    expected, missing, false_finds);
        std::printf("| latency close -> record p50 / p95 / max (ms) | %.0f / %.0f / %.0f |\n", quantile(lat_ms, 0.5),
                    quantile(lat_ms, 0.95), quantile(lat_ms, 1.0));
        if (log.find("overflow") != std::string::npos || log.find("not scanned") != std::string::npos)
            std::printf("custguardd reported lost events:\n%s\n", log.c_str());
        daemon.stop();
        if (missing > 0) {
            std::fprintf(stderr, "bench_watch: %d of %d finds were not recorded\n", missing, expected);
            return 1;
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_watch: the storm did not run: %s\n", e.what());
        return 1;
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    return 0;
}

// Part 2. Returns 1 when a configuration did not run.
int permission_path(const std::string& work, const std::string& fs, const std::string& zone, const std::string& out,
                    const std::vector<int>& zone_counts) {
    struct Cell {
        std::vector<double> out, in, out_cpu, in_cpu;
    };
    // [zones][watch][storm] -> custguardd and its baseline.
    std::map<std::tuple<int, bool, bool>, std::pair<Cell, Cell>> cells;
    std::map<std::pair<int, bool>, std::vector<double>> start_ms;
    const std::string load0 = loadavg();
    int storm_no = 0;
    try {
        custguard::bench::ShippedDaemon daemon(work + "/custguardd");
        for (int epoch = 0; epoch < epochs; ++epoch) {
            for (int n : zone_counts)
                for (bool watch : {false, true}) {
                    const std::string policy = work + "/policy-" + std::to_string(n) + (watch ? "-watch" : "") + ".toml";
                    spit(policy, policy_text(fs, zone, n, watch));
                    start_ms[{n, watch}].push_back(daemon.start(policy));
                    if (can_open_as(other_uid, zone + "/f0") || !can_open_as(bench_uid, zone + "/f0"))
                        throw std::runtime_error("custguardd with " + std::to_string(n) + " zones does not enforce:\n" +
                                                 cgtest::slurp(daemon.log()));
                    auto run = [&](Cell& c, bool storm) {
                        auto one = [&](const std::string& dir, std::vector<double>& wall, std::vector<double>& cpu) {
                            std::unique_ptr<Storm> s;
                            if (storm) s = std::make_unique<Storm>(fs + "/public/storm" + std::to_string(storm_no++));
                            const Reads r = measure(dir);
                            wall.push_back(r.wall_ns);
                            cpu.push_back(r.cpu_ns);
                        };
                        one(out, c.out, c.out_cpu);
                        if (!storm) daemon.settle();
                        one(zone, c.in, c.in_cpu);
                    };
                    for (bool storm : {false, true}) {
                        daemon.settle();
                        run(cells[{n, watch, storm}].first, storm);
                    }
                    if (!daemon.running())
                        throw std::runtime_error("custguardd exited while measured:\n" + cgtest::slurp(daemon.log()));
                    daemon.stop();
                    if (!can_open_as(other_uid, zone + "/f0")) throw std::runtime_error("still refused after the stop");
                    for (bool storm : {false, true}) {
                        daemon.settle();
                        run(cells[{n, watch, storm}].second, storm);
                    }
                    for (int k = 0; k < storm_no; ++k) {
                        std::error_code ec;
                        std::filesystem::remove_all(fs + "/public/storm" + std::to_string(k), ec);
                    }
                    std::fprintf(stderr, "epoch %d: %d zones, watch %s done\n", epoch + 1, n, watch ? "on" : "off");
                }
        }
        std::size_t allowed = 0;
        for (const auto& e : daemon.journald().read("CUSTGUARD_ZONE=customers"))
            if (auto it = e.find("CUSTGUARD_DECISION"); it != e.end() && it->second == "allow") ++allowed;
        if (allowed == 0) throw std::runtime_error("no allowed-read record reached the journal");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_watch: the permission path did not run: %s\n", e.what());
        return 1;
    }
    auto ratio = [](const std::vector<double>& cfg, const std::vector<double>& none) {
        std::vector<double> r;
        for (std::size_t i = 0; i < cfg.size() && i < none.size(); ++i)
            if (cfg[i] > 0 && none[i] > 0) r.push_back(cfg[i] / none[i]);
        return median(r);
    };
    std::printf("\n2. Permission path: open+read(4 KiB)+close as the allowed user, %d epochs x best of %d rounds x %d ops;\n"
                "   outside = files outside zones in the watched tree; storm = a writer adds %d files/s (the mix above) to the\n"
                "   watched tree meanwhile, the baseline (no custguardd) with the same storm. us per operation (wall; CPU of\n"
                "   the reading process in brackets), medians over epochs; ratio = custguardd / no custguardd of the same epoch.\n"
                "   Target: watch on / watch off = 1.00 within noise. Load %s -> %s.\n\n",
                epochs, rounds, ops, storm_rate, load0.c_str(), loadavg().c_str());
    std::printf("| zones | run | watch | start ms | none outside | outside | ratio wall (cpu) | none zone | zone file | ratio wall (cpu) |\n"
                "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
    struct Ratios {
        double out, in, out_cpu, in_cpu;
    };
    std::map<std::tuple<int, bool>, Ratios> on_off[2];
    for (int n : zone_counts)
        for (bool storm : {false, true})
            for (bool watch : {false, true}) {
                const auto& [c, b] = cells[{n, watch, storm}];
                const double ro = ratio(c.out, b.out), ri = ratio(c.in, b.in);
                const double roc = ratio(c.out_cpu, b.out_cpu), ric = ratio(c.in_cpu, b.in_cpu);
                on_off[watch][{n, storm}] = {ro, ri, roc, ric};
                std::printf("| %d | %s | %s | %.0f | %.2f (%.2f) | %.2f (%.2f) | %.2f (%.2f) | %.2f (%.2f) | %.2f (%.2f) | %.2f (%.2f) |\n", n,
                            storm ? "storm" : "quiet", watch ? "on" : "off", median(start_ms[{n, watch}]),
                            median(b.out) / 1000, median(b.out_cpu) / 1000, median(c.out) / 1000,
                            median(c.out_cpu) / 1000, ro, roc, median(b.in) / 1000, median(b.in_cpu) / 1000,
                            median(c.in) / 1000, median(c.in_cpu) / 1000, ri, ric);
            }
    // The reading process's CPU is what the kernel's permission path costs it (ignore marks,
    // the enforcer's replies arrive while it sleeps); on a loaded machine wall time mostly says
    // how long it waited for a core.
    std::printf("\nwatch on / watch off, of the ratios above (1.00: the watcher adds nothing)\n\n"
                "| zones | run | outside wall | outside cpu | zone file wall | zone file cpu |\n|---:|---|---:|---:|---:|---:|\n");
    for (int n : zone_counts)
        for (bool storm : {false, true}) {
            const auto on = on_off[1][{n, storm}], off = on_off[0][{n, storm}];
            std::printf("| %d | %s | %.2f | %.2f | %.2f | %.2f |\n", n, storm ? "storm" : "quiet", on.out / off.out,
                        on.out_cpu / off.out_cpu, on.in / off.in, on.in_cpu / off.in_cpu);
        }
    return 0;
}

std::vector<int> parse_list(const std::string& s) {
    std::vector<int> out;
    for (std::string list = s; !list.empty();) {
        const auto comma = list.find(',');
        out.push_back(std::max(1, std::atoi(list.substr(0, comma).c_str())));
        list = comma == std::string::npos ? "" : list.substr(comma + 1);
    }
    return out;
}

}  // namespace

// CPU time of every thread of `pid` in ns (schedstat: exact, where /proc/PID/stat counts
// 10 ms ticks, too coarse for an idle daemon's few milliseconds every 2 s).
std::uint64_t runtime_ns(pid_t pid) {
    std::uint64_t sum = 0;
    std::error_code ec;
    for (const auto& t : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
        std::ifstream in(t.path() / "schedstat");
        std::uint64_t ns = 0;
        if (in >> ns) sum += ns;
    }
    return sum;
}

// Part 3 (--idle): custguardd's CPU on an idle machine, [watch] on and off, with sleeping
// python3 processes added until /proc lists `processes` (the sweep of shared mappings
// reads every process's maps each 2 s). Returns 1 when it did not run.
int idle_cost(const std::string& work, const std::string& fs, const std::string& zone, int seconds, int processes) {
    const auto count = [] {
        int n = 0;
        for (const auto& e : std::filesystem::directory_iterator("/proc"))
            n += e.path().filename().string().find_first_not_of("0123456789") == std::string::npos;
        return n;
    };
    std::vector<pid_t> sleepers;
    const int before = count();
    for (int i = before; i < processes; ++i) {
        const pid_t pid = ::fork();
        if (pid == 0) {
            ::execl("/usr/bin/python3", "python3", "-c", "import time; time.sleep(100000)", static_cast<char*>(nullptr));
            ::_exit(127);
        }
        if (pid > 0) sleepers.push_back(pid);
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));  // the interpreters are up
    int status = 0;
    std::printf("\nidle: custguardd CPU (its own and its readers'), %d s each, %d processes (%zu python3 sleepers added)\n",
                seconds, count(), sleepers.size());
    std::printf("| [watch] | CPU s (ticks, with readers) | CPU s (schedstat, threads) | schedstat s per hour | load before | load after |\n"
                "|---|---:|---:|---:|---|---|\n");
    for (const bool watch : {false, true}) {
        try {
            const std::string policy = work + "/policy-idle.toml";
            spit(policy, policy_text(fs, zone, 1, watch));
            custguard::bench::ShippedDaemon daemon(work + "/custguardd-idle");
            daemon.start(policy);
            daemon.settle();
            std::this_thread::sleep_for(std::chrono::seconds(3));  // the sweep's first look at every file
            const std::string load0 = loadavg();
            const long cg0 = cpu_ticks_with_children(daemon.pid());
            const std::uint64_t ns0 = runtime_ns(daemon.pid());
            std::this_thread::sleep_for(std::chrono::seconds(seconds));
            const long cg1 = cpu_ticks_with_children(daemon.pid());
            const std::uint64_t ns1 = runtime_ns(daemon.pid());
            if (!daemon.running()) throw std::runtime_error("custguardd exited:\n" + cgtest::slurp(daemon.log()));
            const double exact = static_cast<double>(ns1 - ns0) / 1e9;
            std::printf("| %s | %.2f | %.3f | %.2f | %s | %s |\n", watch ? "on" : "off", ticks_s(cg1 - cg0), exact,
                        exact * 3600.0 / seconds, load0.c_str(), loadavg().c_str());
        } catch (const std::exception& e) {
            std::printf("| %s | did not run: %s | | | | |\n", watch ? "on" : "off", e.what());
            status = 1;
        }
    }
    for (const pid_t pid : sleepers) ::kill(pid, SIGKILL);
    for (const pid_t pid : sleepers) ::waitpid(pid, nullptr, 0);
    return status;
}

int main(int argc, char** argv) {
    int files = 500;
    int idle_seconds = 0, idle_processes = 300;
    bool with_storm_files = true, with_permission = true;
    std::vector<int> zone_counts = {1, 100, 10000};
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--files" && i + 1 < argc) files = std::max(10, std::atoi(argv[++i]));
        else if (a == "--zones" && i + 1 < argc) zone_counts = parse_list(argv[++i]);
        else if (a == "--ops" && i + 1 < argc) ops = std::atoi(argv[++i]);
        else if (a == "--rounds" && i + 1 < argc) rounds = std::atoi(argv[++i]);
        else if (a == "--epochs" && i + 1 < argc) epochs = std::atoi(argv[++i]);
        else if (a == "--storm-rate" && i + 1 < argc) storm_rate = std::max(1, std::atoi(argv[++i]));
        else if (a == "--no-storm-files") with_storm_files = false;
        else if (a == "--no-permission") with_permission = false;
        else if (a == "--idle" && i + 1 < argc) idle_seconds = std::max(1, std::atoi(argv[++i]));
        else if (a == "--idle-processes" && i + 1 < argc) idle_processes = std::atoi(argv[++i]);
        else {
            std::fprintf(stderr,
                         "usage: bench_watch [--files N] [--zones 1,100,10000] [--ops N] [--rounds N] [--epochs N]\n"
                         "                   [--storm-rate FILES_PER_S] [--no-storm-files] [--no-permission]\n"
                         "                   [--idle SECONDS [--idle-processes N]]\n"
                         "  defaults: --files 500 --ops 5000 --rounds 3 --epochs 1 --storm-rate 1000 (the issue's run: --files 10000)\n"
                         "  --idle: only custguardd's CPU at idle, [watch] off and on, with N processes (default 300)\n");
            return 2;
        }
    }
    if (::geteuid() != 0) {
        std::fprintf(stderr, "bench_watch: needs root\n");
        return 1;
    }
    ::setenv("CUSTGUARD_EXTRACT_HELPER", CG_EXTRACT_HELPER, 1);  // the build tree's reader
    const cgtest::Cred user = cgtest::ensure_user("cgfan-bench");
    bench_uid = user.uid;
    bench_gid = user.gid;
    if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
        std::fprintf(stderr, "bench_watch: private mount namespace: %s\n", std::strerror(errno));
        return 1;
    }
    char tmpl[] = "/tmp/cgwatch-bench.XXXXXX";
    const std::string work = ::mkdtemp(tmpl);
    ::chmod(work.c_str(), 0755);
    const std::string fs = work + "/fs";
    ::mkdir(fs.c_str(), 0755);
    if (::mount("tmpfs", fs.c_str(), "tmpfs", 0, "size=2g,mode=0755") != 0) {
        std::fprintf(stderr, "bench_watch: mount tmpfs: %s\n", std::strerror(errno));
        return 1;
    }
    const std::string zone = fs + "/zone", pub = fs + "/public", out = pub + "/read";
    for (const auto& d : {zone, pub, out}) ::mkdir(d.c_str(), 0755);
    ::chmod(pub.c_str(), 01777);
    const std::string block(4096, 'x');
    for (int i = 0; i < read_files; ++i) {
        spit(zone + "/f" + std::to_string(i), block);
        spit(out + "/f" + std::to_string(i), block);
    }
    const int max_zones = *std::max_element(zone_counts.begin(), zone_counts.end());
    ::mkdir((fs + "/zones").c_str(), 0755);
    for (int g = 0; g < 12; ++g) ::mkdir((fs + "/zones/g" + std::to_string(g)).c_str(), 0755);
    for (int i = 1; i < max_zones; ++i) {
        const std::string z = fs + "/zones/g" + std::to_string(i % 12) + "/z" + std::to_string(i);
        ::mkdir(z.c_str(), 0755);
        spit(z + "/c.txt", "customer");
    }
    std::printf("bench_watch: shipped custguardd %s (fanotify enforcer, default flags), reader %s; %ld CPUs; load %s\n",
                CG_CUSTGUARDD, CG_EXTRACT_HELPER, ::sysconf(_SC_NPROCESSORS_ONLN), loadavg().c_str());
    int status = 0;
    if (idle_seconds > 0) {
        status |= idle_cost(work, fs, zone, idle_seconds, idle_processes);
    } else {
        if (with_storm_files) status |= storm_files(work, fs, zone, files);
        if (with_permission) status |= permission_path(work, fs, zone, out, zone_counts);
    }
    ::umount2(fs.c_str(), MNT_DETACH);
    std::error_code ec;
    std::filesystem::remove_all(work, ec);
    return status;
}
