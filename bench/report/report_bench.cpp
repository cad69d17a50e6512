// `custguardctl report leak-scope --format json` over a journal of custguard records that
// this program writes through a real journald (a scratch namespace instance): wall and CPU
// time and peak memory of the report (its own, and the journal pages it maps), for the whole
// journal and for a window of the last records, at each journal size. Target (issue 19): 10 million records in <= 60 s and <= 200 MB, time
// growing with the records in the window, not with the journal.
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <systemd/sd-id128.h>

#include "custguard/events/journal.hpp"
#include "custguard/events/record.hpp"
#include "scratch_journald.hpp"

extern char** environ;

namespace {

using namespace custguard::events;
using Clock = std::chrono::steady_clock;

std::vector<std::uint64_t> parse_list(const std::string& s) {
    std::vector<std::uint64_t> out;
    std::size_t start = 0;
    while (start < s.size()) {
        auto end = s.find(',', start);
        if (end == std::string::npos) end = s.size();
        out.push_back(std::stoull(s.substr(start, end - start)));
        start = end + 1;
    }
    return out;
}

// Record i of a deterministic mix: reads of 20,000 files by 50 users from 20 clients; every
// 100th a denial, every 5,000th a held print with detector hits, every 10,000th a copy
// found outside the zones, every 20,000th a bulk read.
Record make(std::uint64_t i) {
    Record r;
    const std::string user = fmt::format("user{:02}", i % 50);
    const std::string client = fmt::format("10.0.0.{}", 10 + i % 20);
    r.realtime_us = 0;
    if (i % 20000 == 19999) {
        r.kind = Kind::access_denied;
        r.message = "bulk read";
        r.set(field::event, "bulk_read").set(field::user, user).set(field::uid, 2000 + i % 50)
            .set(field::files, 500).set(field::window, 60).set(field::action, "record");
    } else if (i % 10000 == 9999) {
        r.message = "customer data outside every zone";
        r.set(field::event, "customer_data_found").set(field::user, user).set(field::uid, 2000 + i % 50)
            .set(field::path, fmt::format("/srv/share/public/copy-{}.csv", i)).set(field::copy_of, "customers")
            .set(field::detectors, "email:12,jp_phone:3").set(field::categories, "contact").set(field::action, "record");
    } else if (i % 5000 == 4999) {
        r.message = "print held";
        r.set(field::event, "print").set(field::decision, "hold").set(field::user, user).set(field::uid, 2000 + i % 50)
            .set(field::client, client).set(field::printer, "office").set(field::job, i).set(field::title, "list")
            .set(field::pages, 3).set(field::detectors, "credit_card:4");
    } else {
        const bool deny = i % 100 == 50;
        r.kind = deny ? Kind::access_denied : Kind::access_allowed;
        r.message = deny ? "open refused" : "open allowed";
        r.set(field::event, "access").set(field::decision, deny ? "deny" : "allow").set(field::zone, "customers")
            .set(field::path, fmt::format("/srv/share/customers/{:03}/顧客台帳-{:05}.xlsx", i % 200, i % 20000))
            .set(field::uid, 2000 + i % 50).set(field::user, user).set(field::client, client)
            .set(field::exe, "/usr/sbin/smbd");
    }
    r.set(field::run, "bench").set(field::seq, i + 1);
    return r;
}

// The local time text --since accepts ("2026-12-06 05:30:00").
std::string local_text(std::time_t t) {
    std::tm tm{};
    localtime_r(&t, &tm);
    char b[32];
    std::strftime(b, sizeof b, "%Y-%m-%d %H:%M:%S", &tm);
    return b;
}

// Waits until journald has read every datagram, then for the next whole second: records
// sent afterwards are received at or after the returned time, earlier ones before it.
std::time_t boundary(const JournalSocket& sock) {
    while (!sock.drained()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // journald writes what it read
    const std::time_t next = std::time(nullptr) + 1;
    while (std::time(nullptr) < next) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return next;
}

struct Run {
    double seconds = 0, cpu_seconds = 0;
    // Peaks of the child's own memory (RssAnon) and of the journal files it maps
    // (RssFile: page cache shared with journald, which sd-journal maps in 8 MiB windows),
    // sampled from /proc every 20 ms.
    long anon_kb = 0, file_kb = 0;
    // Peak RSS as getrusage reports it (ru_maxrss, what /usr/bin/time -v prints): the
    // issue's figure. A spawned child starts from this program's own peak, printed beside.
    long maxrss_kb = 0;
    int status = -1;
    std::uintmax_t output_bytes = 0;
    std::uint64_t records = 0;  // evidence.records: the records the report used
};

// evidence.records of a JSON report, read in pieces (a report of the old format lists
// every cursor after it: hundreds of MB this program must not hold).
std::uint64_t records_used(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    const std::string key = "\"records\": ";
    std::string window;
    bool in_evidence = false;
    char buf[1 << 16];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        window.append(buf, static_cast<std::size_t>(in.gcount()));
        if (!in_evidence) {
            auto ev = window.find("\"evidence\": {");
            if (ev != std::string::npos) in_evidence = true, window.erase(0, ev);
        }
        if (in_evidence) {
            auto at = window.find(key);
            if (at != std::string::npos && window.find_first_of(",\n", at + key.size()) != std::string::npos)
                return std::strtoull(window.c_str() + at + key.size(), nullptr, 10);
        }
        if (window.size() > 64) window.erase(0, window.size() - 64);  // a key split across pieces
    }
    return 0;
}

// RssAnon and RssFile of a process, in kB.
std::pair<long, long> rss_kb(pid_t pid) {
    std::ifstream status(fmt::format("/proc/{}/status", pid));
    long anon = 0, file = 0;
    for (std::string line; std::getline(status, line);) {
        if (line.rfind("RssAnon:", 0) == 0) anon = std::strtol(line.c_str() + 8, nullptr, 10);
        if (line.rfind("RssFile:", 0) == 0) file = std::strtol(line.c_str() + 8, nullptr, 10);
    }
    return {anon, file};
}

// `source`: where the journal is, as custguardctl's options ({"--namespace", NS} or
// {"--directory", DIR}).
Run report(const std::string& ctl, const std::vector<std::string>& source, const std::string& since,
           const std::string& out_path) {
    std::vector<std::string> args = {ctl, "report", "leak-scope", "--format", "json", "--output", out_path};
    args.insert(args.begin() + 3, source.begin(), source.end());
    if (!since.empty()) args.insert(args.end(), {"--since", since});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    Run run;
    const auto t0 = Clock::now();
    pid_t pid = -1;
    if (posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return run;
    int status = 0;
    rusage ru{};
    for (;;) {
        const auto [anon, file] = rss_kb(pid);
        run.anon_kb = std::max(run.anon_kb, anon);
        run.file_kb = std::max(run.file_kb, file);
        const pid_t done = ::wait4(pid, &status, WNOHANG, &ru);
        if (done == pid) break;
        if (done < 0) return run;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    run.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    run.cpu_seconds = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                      static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    run.maxrss_kb = ru.ru_maxrss;
    run.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::error_code ec;
    run.output_bytes = std::filesystem::file_size(out_path, ec);
    if (!ec && run.status == 0) run.records = records_used(out_path);
    return run;
}

// The top-level "servers" of a JSON report (near its start, before the files).
std::vector<std::string> servers_named(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::string head(1 << 16, '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<std::size_t>(in.gcount()));
    std::vector<std::string> out;
    auto at = head.find("\"servers\": [");
    auto end = at == std::string::npos ? at : head.find(']', at);
    if (end == std::string::npos) return out;
    for (auto q = head.find('"', at + 12); q < end; q = head.find('"', q + 1)) {
        auto close = head.find('"', q + 1);
        out.push_back(head.substr(q + 1, close - q - 1));
        q = close;
    }
    return out;
}

// A collector's journal directory as systemd-journal-remote writes it: `servers` journal
// files (remote-fsNN.journal), each from its server's export stream (the format
// systemd-journal-upload sends, systemd.journal-export-formats(7)) with its own _HOSTNAME
// and boot id. Record i of the benchmark's mix goes to server i % servers, one per
// millisecond from `start_usec`. False (and a message) when journal-remote failed.
bool write_collector(const std::string& dir, unsigned servers, std::uint64_t records, std::uint64_t start_usec) {
    std::filesystem::create_directories(dir);
    for (unsigned h = 0; h < servers; ++h) {
        const std::string host = fmt::format("fs{:02}", h + 1);
        const std::string command =
            fmt::format("/lib/systemd/systemd-journal-remote --output={0}/remote-{1}.journal - 2>{0}/{1}.log", dir, host);
        FILE* pipe = ::popen(command.c_str(), "w");
        if (!pipe) return std::fprintf(stderr, "bench_report: %s: %s\n", command.c_str(), std::strerror(errno)), false;
        std::string entry;
        for (std::uint64_t i = h; i < records; i += servers) {
            entry = fmt::format("__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID={:032x}\n_HOSTNAME={}\n",
                                start_usec + i * 1000, i + 1, h + 1, host);
            entry += encode_native(make(i));
            entry += '\n';  // an empty line ends the entry
            std::fwrite(entry.data(), 1, entry.size(), pipe);
        }
        if (const int status = ::pclose(pipe); status != 0) {
            std::ifstream log(fmt::format("{}/{}.log", dir, host));
            const std::string messages{std::istreambuf_iterator<char>(log), {}};
            std::fprintf(stderr, "bench_report: %s exited with status %d:\n%s", command.c_str(), status, messages.c_str());
            return false;
        }
        std::filesystem::remove(fmt::format("{}/{}.log", dir, host));
    }
    return true;
}

// The fleet figure: the same records as one server's journal file and as a collector of
// `servers` servers' files, `report leak-scope --directory` over each; every server must be
// named in the report and every record used.
int fleet_run(unsigned servers, std::uint64_t records, const std::string& ctl, const std::string& out_dir) {
    double load[3] = {};
    ::getloadavg(load, 3);
    fmt::print("bench_report --fleet: {} records from {} servers in one collector directory (systemd-journal-remote), "
               "against the same records from 1 server (load {:.1f})\n",
               records, servers, load[0]);
    fmt::print("{:>8} {:>10} {:>12} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12} {:>8} {:>6}\n", "servers",
               "records", "write s", "seconds", "cpu s", "peak RSS", "anon MB", "mapped MB", "json MB", "records used",
               "named", "exit");
    // A day ago: inside any window a report takes by default.
    const std::uint64_t start = (static_cast<std::uint64_t>(std::time(nullptr)) - 86'400) * 1'000'000;
    int rc = 0;
    double cpu_one = 0;
    for (unsigned n : {1u, servers}) {
        const std::string dir = fmt::format("{}/collector-{}", out_dir, n);
        const auto t0 = Clock::now();
        if (!write_collector(dir, n, records, start)) return 1;
        const double write_s = std::chrono::duration<double>(Clock::now() - t0).count();
        const std::string json = out_dir + "/fleet.json";
        const Run r = report(ctl, {"--directory", dir}, "", json);
        const auto named = servers_named(json);
        unsigned expected_named = 0;
        for (unsigned h = 0; h < n; ++h)
            expected_named += std::find(named.begin(), named.end(), fmt::format("fs{:02}", h + 1)) != named.end();
        ::getloadavg(load, 3);
        fmt::print("{:>8} {:>10} {:>12.1f} {:>10.2f} {:>10.2f} {:>10.1f} {:>10.1f} {:>10.1f} {:>10.2f} {:>12} {:>8} {:>6}  "
                   "load {:.1f}\n",
                   n, records, write_s, r.seconds, r.cpu_seconds, r.maxrss_kb / 1024.0, r.anon_kb / 1024.0,
                   r.file_kb / 1024.0, r.output_bytes / 1e6, r.records, fmt::format("{}/{}", expected_named, n),
                   r.status, load[0]);
        std::fflush(stdout);
        if (r.status != 0 || r.records != records || expected_named != n || named.size() != n) rc = 1;
        if (n == 1) cpu_one = r.cpu_seconds;
        else if (cpu_one > 0) fmt::print("CPU of {} servers / 1 server, same records: {:.2f}x\n", n, r.cpu_seconds / cpu_one);
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    return rc;
}

// Hard links of the namespace's journal files in `dir`: journald writes no more to them
// (every record is in), and marks them offline when it stops, through the same inodes.
bool keep_journal(const std::string& ns, const std::string& dir) {
    sd_id128_t id;
    char text[SD_ID128_STRING_MAX];
    if (sd_id128_get_machine(&id) < 0) return std::fprintf(stderr, "bench_report: no machine id\n"), false;
    const std::filesystem::path from = fmt::format("/var/log/journal/{}.{}", sd_id128_to_string(id, text), ns);
    std::error_code ec;
    if (!std::filesystem::create_directory(dir, ec)) {
        std::fprintf(stderr, "bench_report: --keep %s: %s\n", dir.c_str(), ec ? ec.message().c_str() : "exists");
        return false;
    }
    for (const auto& e : std::filesystem::directory_iterator(from, ec)) {
        std::filesystem::create_hard_link(e.path(), std::filesystem::path(dir) / e.path().filename(), ec);
        if (ec) break;
    }
    if (ec) std::fprintf(stderr, "bench_report: --keep %s: %s\n", dir.c_str(), ec.message().c_str());
    else fmt::print("journal kept in {} (hard links of {})\n", dir, from.string());
    return !ec;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::uint64_t> sizes = {100'000, 1'000'000};
    std::vector<std::uint64_t> windows = {100'000};
    // The whole journal is reported at every size unless this is lower.
    std::uint64_t all_up_to = UINT64_MAX;
    // Another custguardctl (an earlier build) timed on the same journal, for before/after
    // figures from one run; only up to baseline_up_to records.
    std::string baseline;
    std::uint64_t baseline_up_to = 1'000'000;
    // Where to keep the generated journal (hard links of its files), for runs of the report
    // by hand (e.g. under /usr/bin/time -v) without generating it again.
    std::string keep;
    // The fleet figure: a collector of this many servers' journals (0: not run).
    unsigned fleet = 0;
    std::uint64_t fleet_records = 1'000'000;
    bool records_given = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if ((a == "--records" || a == "--window" || a == "--all-up-to" || a == "--baseline-up-to") && i + 1 < argc) {
            auto v = parse_list(argv[++i]);
            if (a == "--records") sizes = v, records_given = true;
            else if (a == "--window") windows = v;
            else if (a == "--all-up-to") all_up_to = v.at(0);
            else baseline_up_to = v.at(0);
        } else if (a == "--baseline" && i + 1 < argc) {
            baseline = argv[++i];
        } else if (a == "--keep" && i + 1 < argc) {
            keep = argv[++i];
        } else if ((a == "--fleet" || a == "--fleet-records") && i + 1 < argc) {
            const auto v = std::strtoull(argv[++i], nullptr, 10);
            if (a == "--fleet" && (v < 2 || v > 99)) {
                std::fprintf(stderr, "bench_report: --fleet %s: give 2 to 99 servers\n", argv[i]);
                return 2;
            }
            if (a == "--fleet") fleet = static_cast<unsigned>(v);
            else fleet_records = v;
        } else {
            std::fprintf(stderr,
                         "usage: bench_report [--records N[,N...]] [--window N[,N...]] [--all-up-to N]\n"
                         "                    [--baseline CUSTGUARDCTL [--baseline-up-to N]] [--keep DIR]\n"
                         "                    [--fleet SERVERS [--fleet-records N]]\n"
                         "  --records  journal sizes, ascending (default 100000,1000000; the issue's: 10000000)\n"
                         "  --window   sizes of recent windows timed at each journal size (default 100000)\n"
                         "  --all-up-to  time the whole journal only up to this size (default: every size)\n"
                         "  --baseline  also time this custguardctl (e.g. an earlier build) on the same journal,\n"
                         "              at sizes up to --baseline-up-to (default 1000000)\n"
                         "  --keep     hard-link the journal files of the largest size into DIR (made; must not\n"
                         "             exist), for `report leak-scope --directory DIR` by hand\n"
                         "  --fleet    also a collector directory of SERVERS (2-99) servers' journal files written by\n"
                         "             systemd-journal-remote, --fleet-records records in all (default 1000000),\n"
                         "             against the same records from one server; alone unless --records is given\n");
            return 2;
        }
    }
    std::sort(sizes.begin(), sizes.end());
    if (::geteuid() != 0) {
        std::fprintf(stderr, "bench_report: needs root (starts a journald namespace instance)\n");
        return 2;
    }
    if (fleet > 0 && fleet_records < fleet) {
        std::fprintf(stderr, "bench_report: --fleet-records %llu: at least one record per server\n",
                     static_cast<unsigned long long>(fleet_records));
        return 2;
    }
    if (fleet > 0 && !records_given) {
        char fleet_tmpl[] = "/var/tmp/cg-bench-fleet-XXXXXX";  // GBs for millions of records: not tmpfs
        const std::string dir = ::mkdtemp(fleet_tmpl);
        const int rc = fleet_run(fleet, fleet_records, CG_CUSTGUARDCTL, dir);
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
        return rc;
    }
    const std::string ns = testing::unique_namespace("report");
    // No rate limit and room for every record: journald's defaults would drop or vacuum some.
    const std::string conf = fmt::format("/etc/systemd/journald@{}.conf", ns);
    {
        std::ofstream c(conf);
        c << "[Journal]\nStorage=persistent\nRateLimitIntervalSec=0\nRateLimitBurst=0\nSystemMaxUse=50G\n"
             "SystemKeepFree=2G\nSystemMaxFileSize=1G\n";
    }
    struct Remove {  // also on an early return; journald (below) stops first
        std::string path;
        ~Remove() {
            std::error_code ec;
            std::filesystem::remove_all(path, ec);
        }
    } remove_conf{conf};
    testing::ScratchJournald jd(ns);
    jd.start();
    auto sock = JournalSocket::open(jd.socket_path());
    if (!sock) {
        std::fprintf(stderr, "bench_report: %s\n", sock.error().c_str());
        return 1;
    }
    char tmpl[] = "/tmp/cg-bench-report-XXXXXX";
    const std::string out_dir = ::mkdtemp(tmpl);
    Remove remove_out{out_dir};
    double load[3] = {};
    ::getloadavg(load, 3);
    fmt::print("bench_report: custguardctl report leak-scope --format json over journald namespace {} (load {:.1f})\n",
               ns, load[0]);
    fmt::print("{:>12} {:>10} {:>9} {:>14} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12} {:>6}\n", "journal",
               "gen rec/s", "ctl", "window", "seconds", "cpu s", "peak RSS", "anon MB", "mapped MB", "json MB",
               "records used", "exit");
    int rc = 0;
    std::uint64_t written = 0;
    for (auto size : sizes) {
        // Each window is the last W records: --since is the second after record size-W-1
        // was received (the report's replay slack reads to the journal's end anyway).
        std::map<std::uint64_t, std::string> since;  // first record -> --since
        for (auto w : windows)
            if (w < size && size - w >= written) since[size - w];
        const std::uint64_t first = written;
        const auto t0 = Clock::now();
        for (; written < size; ++written) {
            if (auto it = since.find(written); it != since.end()) it->second = local_text(boundary(*sock));
            if (sock->send(encode_native(make(written)), 10000) != SendStatus::sent) {
                std::fprintf(stderr, "bench_report: journald did not take record %llu\n",
                             static_cast<unsigned long long>(written));
                return 1;
            }
        }
        while (!sock->drained()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        // The rate includes the pause at the window's boundary (about a second).
        const double gen = std::chrono::duration<double>(Clock::now() - t0).count();
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        if (!keep.empty() && size == sizes.back() && !keep_journal(ns, keep)) return 1;
        // Every generated record is one the report uses: a run that used another number did
        // not measure what it claims, and fails the benchmark.
        std::vector<std::pair<std::string, std::string>> ctls = {{"this", CG_CUSTGUARDCTL}};
        if (!baseline.empty() && size <= baseline_up_to) ctls.emplace_back("baseline", baseline);
        for (const auto& [label, ctl] : ctls) {
            auto print = [&](const std::string& what, std::uint64_t expected, const Run& r) {
                double load_now[3] = {};
                ::getloadavg(load_now, 3);
                fmt::print(
                    "{:>12} {:>10.0f} {:>9} {:>14} {:>10.2f} {:>10.2f} {:>10.1f} {:>10.1f} {:>10.1f} {:>10.2f} {:>12} {:>6}  "
                    "load {:.1f}\n",
                    size, static_cast<double>(size - first) / gen, label, what, r.seconds, r.cpu_seconds,
                    r.maxrss_kb / 1024.0, r.anon_kb / 1024.0, r.file_kb / 1024.0, r.output_bytes / 1e6, r.records,
                    r.status, load_now[0]);
                std::fflush(stdout);
                if (r.status != 0 || r.records != expected) rc = 1;
            };
            if (size <= all_up_to) print(fmt::format("all {}", size), size, report(ctl, {"--namespace", ns}, "", out_dir + "/all.json"));
            else fmt::print("{:>12} {:>10} {:>9} {:>14} not timed (--all-up-to {})\n", size, "", label, "all", all_up_to);
            for (auto it = since.rbegin(); it != since.rend(); ++it)
                print(fmt::format("last {}", size - it->first), size - it->first,
                      report(ctl, {"--namespace", ns}, it->second, out_dir + "/window.json"));
        }
    }
    rusage self{};
    ::getrusage(RUSAGE_SELF, &self);
    fmt::print("peak RSS (MB): ru_maxrss of each report, never below this program's own peak of {:.1f} MB\n",
               self.ru_maxrss / 1024.0);
    fmt::print("target: 10,000,000 records <= 60 s and <= 200 MB; a window's time independent of the journal size\n");
    if (fleet > 0 && fleet_run(fleet, fleet_records, CG_CUSTGUARDCTL, out_dir) != 0) rc = 1;
    return rc;
}
