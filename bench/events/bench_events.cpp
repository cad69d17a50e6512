// custguard_bench_events [--events N] [--pace-us U] [--shapes]: a burst of N recorded opens through
// the event pipeline into a real systemd-journald (a private namespace instance), against
// a baseline of the same number of pre-encoded records sent raw to the same journald.
// Prints a table: wall time, records in the journal, lost (0 or accounted for in `lost`
// records), CPU seconds and peak RSS of this process (= the pipeline), journald's CPU.
// --pace-us U: one event (or raw record) every U microseconds instead of a burst, as an
// SMB client's reads come: each record then wakes the pipeline's threads and journald on
// its own, which a burst shares out. Runs in the VM of tests/vm/cg-vm-run too.
// Two more rows put custguardd's notifier on the pipeline as its observer, as the daemon
// does: once for a zone without notify targets (the default: no record is its business),
// once for a zone with a digest target; "csw/ev" is the process's voluntary context
// switches per event (the sleeping submitter's own included), the threads' wake-ups.
// --shapes: instead, what one record costs journald by its shape. The record custguardd
// writes for an allowed read by smbd (enriched as the pipeline does it, this process in
// smbd's place) is sent raw, N times, then the same less fields (see shapes()), each to the
// same journald in turn, two rounds; prints journald's CPU per record of each shape.
#include <sys/resource.h>
#include <sys/wait.h>
#include <signal.h>
#include <tuple>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "custguard/events/enrich.hpp"
#include "custguard/events/journal.hpp"
#include "custguard/events/pipeline.hpp"
#include "daemon/notify/notifier.hpp"
#include "common/cpu_ticks.hpp"
#include "common/vm_journald.hpp"
#include "scratch_journald.hpp"
#include "support/exec_plan.hpp"

using namespace custguard::events;
using Clock = std::chrono::steady_clock;

namespace {

double cpu_seconds_self() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

long voluntary_switches_self() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    return ru.ru_nvcsw;
}

double cpu_seconds_of(pid_t pid) {
    return static_cast<double>(custguard::bench::cpu_ticks(pid)) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

long status_kb(const char* key) {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(key, 0) == 0) return std::stol(line.substr(std::strlen(key)));
    return 0;
}

custguard::daemon::AccessEvent event(std::uint64_t i) {
    custguard::daemon::AccessEvent ev;
    ev.raw.abi_version = CG_ABI_VERSION;
    ev.raw.kind = CG_EV_OPEN;
    ev.raw.pid = ev.raw.tgid = static_cast<std::uint32_t>(::getpid());
    ev.raw.uid = 1000 + static_cast<std::uint32_t>(i % 50);  // 50 users: NSS cache
    ev.raw.gid = 100;
    ev.raw.loginuid = 1000;
    ev.raw.zone_id = 1;
    ev.raw.decision = CG_DECISION_ALLOW;
    ev.raw.rule = CG_RULE_USER;
    ev.raw.ino = 100000 + i;
    std::strncpy(ev.raw.comm, "smbd", sizeof ev.raw.comm);
    ev.path = fmt::format("/srv/share/customers/2026/11/顧客台帳-{:06}.xlsx", i);
    ev.realtime_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::system_clock::now().time_since_epoch()).count();
    return ev;
}

// Runs `phase` in a child process so that each phase's CPU time and peak RSS are its
// own; the child sends back a fixed-size result struct. The phase allocates: safe only
// while this process has no other thread (see tests/support/exec_plan.hpp).
template <typename Result, typename Fn>
Result in_child(Fn phase) {
    if (const auto n = cgtest::thread_count(); n != 1) {
        std::fprintf(stderr, "benchmark: %zu threads at fork; a phase runs in a child only from a single thread\n", n);
        std::exit(1);
    }
    int fds[2];
    if (::pipe(fds) != 0) std::exit(1);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::close(fds[0]);
        Result r = phase();
        (void)!::write(fds[1], &r, sizeof r);
        ::_exit(0);
    }
    ::close(fds[1]);
    Result r{};
    if (::read(fds[0], &r, sizeof r) != static_cast<ssize_t>(sizeof r)) {
        std::fprintf(stderr, "benchmark phase failed\n");
        std::exit(1);
    }
    ::close(fds[0]);
    ::waitpid(pid, nullptr, 0);
    return r;
}

struct PhaseResult {
    double wall = 0;
    double cpu = 0;
    double rss_mb = 0;
    double journald_cpu = 0;
    double switches = 0;
    std::uint64_t failed = 0;
    std::uint64_t submitted = 0, dropped = 0, written = 0, spooled = 0, replayed = 0, lost = 0, seq = 0;
    char run_id[40] = {};
    char error[200] = {};
};

struct Row {
    std::string name;
    std::uint64_t events = 0;
    double wall = 0;
    std::uint64_t in_journal = 0;
    std::string lost;
    double cpu = 0;
    double rss_mb = 0;
    double journald_cpu = 0;
    double switches = -1;  // voluntary context switches of the process; -1: not measured
};

// journald's CPU since `since` once it has read every datagram and stopped working on them.
double journald_cpu_until_idle(pid_t jd_pid, const JournalSocket& sock, double since) {
    while (!sock.drained()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    custguard::bench::settle({jd_pid});
    return cpu_seconds_of(jd_pid) - since;
}

// The fields of DESIGN.md's journald contract (kept by every shape but "MESSAGE only").
constexpr std::string_view contract_fields[] = {
    field::event, field::decision, field::zone, field::path,     field::uid,      field::user,      field::auid,
    field::pid,   field::exe,      field::client, field::printer, field::job,     field::detectors, field::seq};

bool in_contract(std::string_view name) {
    return std::find(std::begin(contract_fields), std::end(contract_fields), name) != std::end(contract_fields);
}

// Shapes of one record, each sent `n` times to journald; journald's CPU per record of each.
// The record is the pipeline's own for an allowed read through smbd: Enricher::enrich, then
// the fields commit() adds (time, run, sequence number). Fields the shape leaves out:
// - "no MESSAGE": MESSAGE (journald then forwards nothing to syslog either);
// - "no same-valued extras": the fields beyond the contract whose value is the same in
//   every record (one data object in the journal each, which every entry links to);
// - "no unique extras": the fields beyond the contract whose value differs per record (a
//   new data object per entry each);
// - "DESIGN.md fields only", "MESSAGE only": what the names say.
int shapes(std::uint64_t n) {
    testing::ScratchJournald jd(testing::unique_namespace("shapes"));
    custguard::bench::prepare_vm_for_journald();
    jd.start();
    Enricher enricher;
    const std::vector<std::string> zones = {"customers"};
    auto record = [&](std::uint64_t i) {
        custguard::daemon::AccessEvent ev = event(i);
        ev.raw.uid = 1000;
        ev.raw.loginuid = 1000;
        ev.sensor = custguard::daemon::Sensor::bpf_lsm;
        ev.client = "192.168.10.21";
        Record r = enricher.enrich(ev, zones);
        r.set(field::time_usec, static_cast<std::uint64_t>(r.realtime_us));
        r.set(field::run, "5f0c3a9d2b7e4c1a8e6d0b9f3a2c1d4e");
        r.set(field::seq, i + 1);
        return r;
    };
    // Which fields beyond the contract repeat their value from one record to the next.
    const Record first = record(0), second = record(1);
    std::set<std::string> same_valued, unique;
    for (const auto& f : first.fields) {
        if (in_contract(f.name)) continue;
        const std::string* other = second.get(f.name);
        (other && *other == f.value ? same_valued : unique).insert(f.name);
    }
    struct Shape {
        std::string name;
        std::function<std::string(Record)> encode;
        std::size_t fields = 0, bytes = 0;
        std::vector<double> us;
    };
    auto without = [](std::set<std::string> drop) {
        return [drop = std::move(drop)](Record r) {
            std::erase_if(r.fields, [&](const Field& f) { return drop.contains(f.name); });
            return encode_native(r);
        };
    };
    std::vector<Shape> shapes;
    shapes.push_back({"as custguardd writes it", [](Record r) { return encode_native(r); }});
    shapes.push_back({"no MESSAGE", [](Record r) {
                          std::string d = encode_native(r);
                          const auto at = d.find("\nMESSAGE=");  // escaped: one line
                          d.erase(at + 1, d.find('\n', at + 1) - at);
                          return d;
                      }});
    shapes.push_back({fmt::format("no same-valued extras ({})", same_valued.size()), without(same_valued)});
    shapes.push_back({fmt::format("no unique extras ({})", unique.size()), without(unique)});
    std::set<std::string> extras = same_valued;
    extras.insert(unique.begin(), unique.end());
    shapes.push_back({"DESIGN.md fields only", without(extras)});
    shapes.push_back({"MESSAGE only", [](Record r) {
                          r.fields.clear();
                          return encode_native(r);
                      }});
    auto sock = JournalSocket::open(jd.socket_path());
    if (!sock) {
        std::fprintf(stderr, "%s\n", sock.error().c_str());
        return 1;
    }
    std::vector<std::string> datagrams;
    for (std::uint64_t i = 0; i < 2000; ++i) datagrams.push_back(encode_native(record(1000000 + i)));  // warm-up
    for (const auto& d : datagrams) (void)sock->send(d, 10000);
    (void)journald_cpu_until_idle(jd.pid(), *sock, 0);
    std::uint64_t next = 0;
    for (int round = 0; round < 2; ++round) {
        for (auto& s : shapes) {
            datagrams.clear();
            for (std::uint64_t i = 0; i < n; ++i) datagrams.push_back(s.encode(record(next++)));
            s.bytes = datagrams.front().size();
            s.fields = static_cast<std::size_t>(std::count(datagrams.front().begin(), datagrams.front().end(), '\n'));
            const double cpu0 = cpu_seconds_of(jd.pid());
            std::uint64_t failed = 0;
            for (const auto& d : datagrams)
                if (sock->send(d, 10000) != SendStatus::sent) ++failed;
            if (failed) std::fprintf(stderr, "%s: %llu sends failed\n", s.name.c_str(), static_cast<unsigned long long>(failed));
            s.us.push_back(journald_cpu_until_idle(jd.pid(), *sock, cpu0) * 1e6 / static_cast<double>(n));
        }
    }
    std::printf("journald's CPU per record by the record's shape (%llu records per shape and round, 2 rounds)\n",
                static_cast<unsigned long long>(n));
    std::printf("same-valued extras: %s\nunique extras: %s\n\n", fmt::format("{}", fmt::join(same_valued, " ")).c_str(),
                fmt::format("{}", fmt::join(unique, " ")).c_str());
    std::printf("| %-34s | %6s | %5s | %17s | %9s |\n", "shape", "fields", "bytes", "jd CPU us/record", "of first");
    std::printf("|%s|\n", std::string(86, '-').c_str());
    const double full = std::min(shapes.front().us[0], shapes.front().us[1]);
    for (const auto& s : shapes) {
        const double best = std::min(s.us[0], s.us[1]);
        std::printf("| %-34s | %6zu | %5zu | %7.1f (%7.1f) | %8.0f%% |\n", s.name.c_str(), s.fields, s.bytes, best,
                    std::max(s.us[0], s.us[1]), 100.0 * best / full);
    }
    std::printf("(jd CPU: the lower round, the other in parentheses; fields: of the datagram, with MESSAGE_ID, "
                "PRIORITY, SYSLOG_IDENTIFIER)\n");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::uint64_t n = 100000;
    std::chrono::microseconds pace{0};
    bool by_shape = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--events" && i + 1 < argc) {
            n = std::stoull(argv[++i]);
        } else if (arg == "--pace-us" && i + 1 < argc) {
            pace = std::chrono::microseconds(std::stoull(argv[++i]));
        } else if (arg == "--shapes") {
            by_shape = true;
        } else {
            std::fprintf(stderr, "usage: custguard_bench_events [--events N] [--pace-us U] [--shapes]\n");
            return 2;
        }
    }
    if (::geteuid() != 0) {
        std::fprintf(stderr, "custguard_bench_events: needs root (starts a journald namespace instance)\n");
        return 2;
    }
    if (by_shape) return shapes(n);
    char tmpl[] = "/tmp/cgev-bench-XXXXXX";
    const std::string state = ::mkdtemp(tmpl);
    testing::ScratchJournald jd(testing::unique_namespace("bench"));
    custguard::bench::prepare_vm_for_journald();  // in the VM: journald needs cgroup2
    jd.start();

    // Baseline: the same number of typical records, encoded up front, sent raw.
    Row base{"baseline: raw sendto of pre-encoded records"};
    const pid_t jd_pid = jd.pid();
    const std::string socket_path = jd.socket_path();
    {
        auto r = in_child<PhaseResult>([&] {
            PhaseResult out;
            Record rec;
            rec.kind = Kind::access_allowed;
            rec.message = "alice (uid 1000) opened /srv/share/customers/2026/11/x.xlsx in zone customers via /usr/sbin/smbd: allowed";
            rec.set(field::event, "access").set(field::decision, "allow").set(field::zone, "customers");
            rec.set(field::path, "/srv/share/customers/2026/11/顧客台帳-000000.xlsx").set(field::uid, 1000).set(field::user, "alice");
            rec.set(field::exe, "/usr/sbin/smbd").set(field::cmdline, "/usr/sbin/smbd --foreground --no-process-group");
            rec.set(field::run, "baseline");
            auto sock = JournalSocket::open(socket_path);
            if (!sock) std::exit(1);
            std::vector<std::string> datagrams;
            datagrams.reserve(n);
            for (std::uint64_t i = 0; i < n; ++i) {
                rec.set(field::seq, i + 1);
                datagrams.push_back(encode_native(rec));
            }
            const double jd0 = cpu_seconds_of(jd_pid), cpu0 = cpu_seconds_self();
            const auto t0 = Clock::now();
            for (const auto& d : datagrams) {
                if (sock->send(d, 10000) != SendStatus::sent) ++out.failed;
                if (pace.count() > 0) std::this_thread::sleep_for(pace);
            }
            while (!sock->drained()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
            out.wall = std::chrono::duration<double>(Clock::now() - t0).count();
            out.cpu = cpu_seconds_self() - cpu0;
            out.journald_cpu = cpu_seconds_of(jd_pid) - jd0;
            return out;
        });
        base.wall = r.wall;
        base.cpu = r.cpu;
        base.journald_cpu = r.journald_cpu;
        base.events = n;
        base.lost = fmt::format("{} failed sends", r.failed);
    }

    // The pipeline: enrichment (this process stands in for smbd), numbering, journald.
    // With `outage`, journald is frozen (SIGSTOP) for a second in the middle of the burst:
    // records go to the spool and are replayed when it continues.
    enum class Notify { none, no_targets, digest };
    auto run_pipeline = [&](bool outage, Notify notify = Notify::none) {
        return in_child<PhaseResult>([&] {
            PhaseResult out;
            PipelineConfig cfg;
            cfg.state_dir = state + (outage ? "/outage" : "/plain") + std::to_string(static_cast<int>(notify));
            cfg.journal_socket = socket_path;
            cfg.send_timeout_ms = 200;
            auto p = Pipeline::create(cfg);
            if (!p) std::exit(1);
            (*p)->set_zone_names({"customers"});
            std::unique_ptr<custguard::notify::Notifier> notifier;
            if (notify != Notify::none) {
                custguard::notify::NotifierOptions no;
                no.dir = cfg.state_dir / "notify";
                no.host = "bench";
                custguard::notify::NotifierHost nh;
                nh.deliver = [](const custguard::notify::Message&) -> tl::expected<void, std::string> { return {}; };
                auto created = custguard::notify::Notifier::create(no, std::move(nh));
                if (!created) std::exit(1);
                notifier = std::move(*created);
                custguard::policy::Policy pol;
                custguard::policy::Zone z;
                z.name = "customers";
                if (notify == Notify::digest) {
                    z.notify = {"mgr"};
                    custguard::policy::NotifyTarget t;
                    t.name = "mgr";
                    t.mail = {"manager@example.co.jp"};
                    pol.notify_targets.push_back(t);
                }
                pol.zones.push_back(z);
                notifier->apply(pol);
                (*p)->add_observer([n = notifier.get()](const Record& r) { n->observe(r); });
            }
            const long csw0 = voluntary_switches_self();
            const double jd0 = cpu_seconds_of(jd_pid), cpu0 = cpu_seconds_self();
            const auto t0 = Clock::now();
            Clock::time_point stopped_at;
            for (std::uint64_t i = 0; i < n; ++i) {
                if (outage && i == n * 3 / 10) {
                    ::kill(jd_pid, SIGSTOP);
                    stopped_at = Clock::now();
                }
                if (outage && i == n * 6 / 10) {
                    std::this_thread::sleep_until(stopped_at + std::chrono::seconds(1));
                    ::kill(jd_pid, SIGCONT);
                }
                (*p)->submit(event(i));
                if (pace.count() > 0) std::this_thread::sleep_for(pace);
            }
            auto flushed = (*p)->flush(std::chrono::minutes(5));
            if (notifier && !notifier->wait_idle(std::chrono::minutes(1))) std::exit(1);
            out.wall = std::chrono::duration<double>(Clock::now() - t0).count();
            out.cpu = cpu_seconds_self() - cpu0;
            out.switches = static_cast<double>(voluntary_switches_self() - csw0);
            out.journald_cpu = cpu_seconds_of(jd_pid) - jd0;
            out.rss_mb = static_cast<double>(status_kb("VmHWM:")) / 1024.0;
            const auto c = (*p)->counters();
            (*p)->stop();
            out.submitted = c.submitted;
            out.dropped = c.dropped_queue_full;
            out.written = c.journal_written;
            out.spooled = c.spooled;
            out.replayed = c.replayed;
            out.lost = c.lost;
            out.seq = c.seq;
            std::snprintf(out.run_id, sizeof out.run_id, "%s", c.run_id.c_str());
            if (!flushed) std::snprintf(out.error, sizeof out.error, "%s", flushed.error().c_str());
            return out;
        });
    };
    const PhaseResult plain = run_pipeline(false);
    const PhaseResult outage = run_pipeline(true);
    const PhaseResult quiet_notifier = run_pipeline(false, Notify::no_targets);
    const PhaseResult digest_notifier = run_pipeline(false, Notify::digest);

    // Read back (only now: the children must not inherit a big parent).
    base.in_journal = jd.read("CUSTGUARD_RUN=baseline").size();
    // Every event is in the journal, or accounted for in a lost record; seq has no gaps.
    struct Check {
        std::uint64_t access = 0, lost = 0, gaps = 0, duplicates = 0;
    };
    auto check = [&](const PhaseResult& r) {
        Check k;
        std::set<std::uint64_t> seen;
        std::uint64_t expected_seq = 1;
        for (const auto& e : jd.read(std::string("CUSTGUARD_RUN=") + r.run_id)) {
            std::uint64_t seq = std::stoull(e.at("CUSTGUARD_SEQ"));
            if (!seen.insert(seq).second) {
                ++k.duplicates;  // a re-delivery
                continue;
            }
            if (seq != expected_seq) ++k.gaps;
            expected_seq = seq + 1;
            if (e.at("CUSTGUARD_EVENT") == "access") ++k.access;
            if (e.at("CUSTGUARD_EVENT") == "lost") k.lost += std::stoull(e.at("CUSTGUARD_LOST"));
        }
        return k;
    };
    auto row = [&](const char* name, const PhaseResult& r, const Check& k) {
        if (r.error[0]) std::fprintf(stderr, "flush: %s\n", r.error);
        Row out{name};
        out.events = n;
        out.wall = r.wall;
        out.cpu = r.cpu;
        out.journald_cpu = r.journald_cpu;
        out.rss_mb = r.rss_mb;
        out.switches = r.switches;
        out.in_journal = k.access;
        out.lost = fmt::format("{} ({})", k.lost, k.access + k.lost == n ? "accounted" : "UNACCOUNTED");
        return out;
    };
    const Check plain_check = check(plain), outage_check = check(outage);
    const Row pipe = row("pipeline: submit(AccessEvent) -> enrich -> journald", plain, plain_check);
    const Row pipe_outage = row("same, journald frozen 1 s mid-burst (spool+replay)", outage, outage_check);
    const Check quiet_check = check(quiet_notifier), digest_check = check(digest_notifier);
    const Row pipe_quiet = row("same + notifier, zone without notify targets", quiet_notifier, quiet_check);
    const Row pipe_digest = row("same + notifier, zone with a digest target", digest_notifier, digest_check);

    auto print_row = [](const Row& r) {
        std::printf("| %-52s | %7llu | %7.2f | %8.0f | %10llu | %-18s | %6.2f | %7.1f | %6s | %7.2f | %6s |\n", r.name.c_str(),
                    static_cast<unsigned long long>(r.events), r.wall, r.events / r.wall,
                    static_cast<unsigned long long>(r.in_journal), r.lost.c_str(), r.cpu,
                    r.cpu * 1e6 / static_cast<double>(r.events), r.rss_mb > 0 ? fmt::format("{:.1f}", r.rss_mb).c_str() : "-",
                    r.journald_cpu,
                    r.switches >= 0 ? fmt::format("{:.2f}", r.switches / static_cast<double>(r.events)).c_str() : "-");
    };
    if (pace.count() > 0)
        std::printf("one event (baseline: one record) every %lld us\n\n", static_cast<long long>(pace.count()));
    else
        std::printf("events in a burst\n\n");
    std::printf("| %-52s | %7s | %7s | %8s | %10s | %-18s | %6s | %7s | %6s | %7s | %6s |\n", "run", "events", "wall s",
                "events/s", "in journal", "lost", "CPU s", "CPU us/ev", "RSS MB", "jd CPU s", "csw/ev");
    std::printf("|%s|\n", std::string(169, '-').c_str());
    print_row(base);
    print_row(pipe);
    print_row(pipe_outage);
    print_row(pipe_quiet);
    print_row(pipe_digest);
    std::printf("\nratio pipeline/baseline: wall %.2fx, process CPU %.2fx\n", pipe.wall / base.wall,
                pipe.cpu / std::max(base.cpu, 1e-9));
    for (const auto& [name, r, k] : {std::tuple{"pipeline", plain, plain_check}, std::tuple{"outage", outage, outage_check}})
        std::printf("%-8s counters: submitted %llu, dropped (queue full) %llu, journal_written %llu, spooled %llu, "
                    "replayed %llu, lost %llu, seq %llu; journal: seq gaps %llu, re-deliveries %llu\n",
                    name, static_cast<unsigned long long>(r.submitted), static_cast<unsigned long long>(r.dropped),
                    static_cast<unsigned long long>(r.written), static_cast<unsigned long long>(r.spooled),
                    static_cast<unsigned long long>(r.replayed), static_cast<unsigned long long>(r.lost),
                    static_cast<unsigned long long>(r.seq), static_cast<unsigned long long>(k.gaps),
                    static_cast<unsigned long long>(k.duplicates));
    const bool rss_ok = plain.rss_mb <= 30.0 && outage.rss_mb <= 30.0;
    std::printf("peak RSS target <= 30 MB: %s\n", rss_ok ? "met" : "MISSED");
    std::error_code ec;
    std::filesystem::remove_all(state, ec);
    const bool ok = plain_check.access + plain_check.lost == n && outage_check.access + outage_check.lost == n &&
                    quiet_check.access + quiet_check.lost == n && digest_check.access + digest_check.lost == n &&
                    plain_check.gaps == 0 && outage_check.gaps == 0 && rss_ok;
    return ok ? 0 : 1;
}
