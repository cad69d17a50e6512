// SMB read throughput through a real smbd with and without custguardd (fanotify enforcer on
// the host, bpf-lsm in the VM through tests/vm/cg-vm-run): smbclient in a client network
// namespace reads, from a scratch smbd in a server namespace,
// 1,000 files of 8 KiB (files/s), one 512 MiB file (MB/s) and copies a folder of 1,000
// files both ways (mget to the client, mput to a new folder in the share) out of a share that is one
// zone whose policy lists the reader in allow_users and the client's address in
// allow_clients, so every read is allowed. Configurations alternate in rounds on the same
// smbd and share; prints median, spread and ratio. A benchmark (prints a table), not a test.
// Root; its own process (unshares the mount namespace). See bench/samba/README.md.
#include <sys/mount.h>
#include <sys/prctl.h>
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
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "common/bare_responder.hpp"
#include "common/cpu_ticks.hpp"
#include "common/shipped_daemon.hpp"
#include "common/stats.hpp"
#include "samba_fixture.hpp"
#include "scratch_journald.hpp"
#include "support/support.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using custguard::bench::cpu_ticks;
using custguard::bench::settle;
using custguard::events::testing::ScratchJournald;
namespace cgbench = custguard::bench;

namespace {

struct Options {
    int rounds = 6;
    int files = 1000;
    int file_kib = 8;
    int big_mib = 512;
    std::string enforcer = "fanotify";
    bool also_audit = false;
    bool also_no_records = false;
    bool floor = true;  // fanotify only: a turn with a bare listener
    bool folder = true;  // the folder copies (mget, mput)
};

[[noreturn]] void usage(int status) {
    std::fprintf(status ? stderr : stdout,
                 "usage: custguard_bench_samba [--quick] [--enforcer fanotify|bpf-lsm] [--rounds N] [--files N]\n"
                 "                             [--big-mib N] [--also-audit] [--also-no-record-allowed] [--no-floor]\n"
                 "                             [--no-folder-copy]\n"
                 "  --quick          --rounds 3 --big-mib 64 (a short run)\n"
                 "  --enforcer MODE  custguardd's enforcer: fanotify (default, the host) or bpf-lsm\n"
                 "                   (inside the VM: tests/vm/cg-vm-run -- custguard_bench_samba ...)\n"
                 "  --rounds N       interleaved rounds, order alternating (default 6)\n"
                 "  --files N        number of 8 KiB files (default 1000)\n"
                 "  --big-mib N      size of the large file in MiB (default 512)\n"
                 "  --also-audit     one more configuration, custguardd --audit (what the opt-in audit cross-check costs)\n"
                 "  --also-no-record-allowed  one more, the zone with record_allowed = false\n"
                 "                   (what recording every allowed read costs)\n"
                 "  --no-floor       fanotify: leave out the turn with a bare fanotify listener that allows\n"
                 "                   every open at once (the floor of any fanotify enforcer on this workload)\n"
                 "  --no-folder-copy leave out the folder copies (smbclient mget of the N files to the client,\n"
                 "                   mput of N files to a new folder in the share)\n"
                 "Root. Starts smbd and custguardd of its own; see bench/samba/README.md.\n");
    std::exit(status);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h") usage(0);
        if (a == "--also-audit") {
            o.also_audit = true;
            continue;
        }
        if (a == "--also-no-record-allowed") {
            o.also_no_records = true;
            continue;
        }
        if (a == "--no-floor") {
            o.floor = false;
            continue;
        }
        if (a == "--no-folder-copy") {
            o.folder = false;
            continue;
        }
        if (a == "--quick") {
            o.rounds = 3;
            o.big_mib = 64;
            continue;
        }
        if (i + 1 >= argc) usage(2);
        if (a == "--enforcer") {
            o.enforcer = argv[++i];
            if (o.enforcer != "fanotify" && o.enforcer != "bpf-lsm") usage(2);
            continue;
        }
        const int v = std::atoi(argv[++i]);
        if (v <= 0) usage(2);
        if (a == "--rounds")
            o.rounds = v;
        else if (a == "--files")
            o.files = v;
        else if (a == "--big-mib")
            o.big_mib = v;
        else
            usage(2);
    }
    return o;
}

// Is BPF among the active LSMs? Only then can custguardd --enforcer bpf-lsm start.
bool bpf_lsm_active() {
    std::ifstream in("/sys/kernel/security/lsm");
    std::string list;
    std::getline(in, list);
    return ("," + list + ",").find(",bpf,") != std::string::npos;
}

std::string joined(const std::vector<std::string>& argv) {
    std::string out;
    for (const auto& a : argv) out += (out.empty() ? "" : " ") + a;
    return out;
}

std::string loadavg() {
    std::ifstream in("/proc/loadavg");
    std::string a, b, c;
    in >> a >> b >> c;
    return a + " " + b + " " + c;
}

void write_file(const fs::path& path, std::size_t bytes, std::mt19937_64& rng) {
    std::vector<std::uint64_t> chunk(1 << 17);  // 1 MiB
    std::ofstream out(path, std::ios::binary);
    while (bytes > 0) {
        for (auto& w : chunk) w = rng();
        const std::size_t n = std::min(bytes, chunk.size() * sizeof chunk[0]);
        out.write(reinterpret_cast<const char*>(chunk.data()), static_cast<std::streamsize>(n));
        bytes -= n;
    }
    if (!out) throw std::runtime_error("cannot write " + path.string());
    ::chmod(path.c_str(), 0644);
}

// The shipped custguardd with its default flags but for the enforcer (fanotify on the host,
// bpf-lsm in the VM) and the scratch places a benchmark needs: state directory, journald
// namespace, and the control plane on a private dbus-daemon (cgtest::PrivateBus, with the
// shipped org.custguard1.conf), as a user's custguardd has it on the system bus.
class Daemon {
public:
    Daemon(std::vector<std::string> argv, std::vector<std::string> env, fs::path log)
        : argv_(std::move(argv)), env_(std::move(env)), log_(std::move(log)) {}
    ~Daemon() { stop(); }
    void start() {
        std::error_code ec;
        fs::remove(log_, ec);
        pid_ = cgtest::spawn(argv_, env_, log_);
        // Under TCG in the VM loading the BPF programs alone takes seconds.
        const auto deadline = Clock::now() + 120s;
        // The last start-up step: everything else (enforcer, audit, tracker) runs by then.
        while (cgtest::slurp(log_).find("control plane on the bus") == std::string::npos) {
            if (cgtest::slurp(log_).find("control plane off") != std::string::npos) {
                stop();
                throw std::runtime_error("custguardd did not reach its private bus:\n" + cgtest::slurp(log_));
            }
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                throw std::runtime_error("custguardd exited during start:\n" + cgtest::slurp(log_));
            }
            if (Clock::now() > deadline) {
                stop();
                throw std::runtime_error("custguardd did not come up within 120 s:\n" + cgtest::slurp(log_));
            }
            std::this_thread::sleep_for(20ms);
        }
    }
    void stop() { cgtest::kill_and_reap(pid_); }
    std::string log() const { return cgtest::slurp(log_); }
    const std::vector<std::string>& argv() const { return argv_; }
    pid_t pid() const { return pid_; }

private:
    std::vector<std::string> argv_, env_;
    fs::path log_;
    pid_t pid_ = -1;
};

struct Stats {
    double median, min, max;
};

Stats stats(const std::vector<double>& v) {
    if (v.empty()) return {-1, -1, -1};
    const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    return {custguard::bench::median(v), *lo, *hi};
}

}  // namespace

int main(int argc, char** argv) {
    const Options opt = parse(argc, argv);
    if (::geteuid() != 0) {
        std::fprintf(stderr, "custguard_bench_samba: needs root (namespaces, users, fanotify)\n");
        return 2;
    }
    const bool in_vm = cgbench::in_vm();
    if (opt.enforcer == "bpf-lsm" && !bpf_lsm_active()) {
        std::fprintf(stderr, "custguard_bench_samba: BPF LSM is not active here (/sys/kernel/security/lsm); run "
                             "it in the VM: tests/vm/cg-vm-run --smp 2 --mem 2048 --timeout 2400 -- %s --enforcer bpf-lsm "
                             "(bench/samba/README.md)\n",
                     argv[0]);
        return 2;
    }
    if (!cgsmb::enter_private_mounts()) {
        std::fprintf(stderr, "custguard_bench_samba: cannot make a private mount namespace\n");
        return 2;
    }
    // smbd's connection children are orphaned when it stops: make them ours to reap.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    char tmpl[] = "/tmp/cgsmb-bench.XXXXXX";
    if (!::mkdtemp(tmpl)) {
        std::perror("mkdtemp");
        return 1;
    }
    const fs::path dir = tmpl;
    ::chmod(dir.c_str(), 0755);
    const fs::path share = dir / "share";
    int status = 0;
    bool mounted = false;
    try {
        // The share on a tmpfs of its own: no disk in the figures, and the fanotify
        // enforcer's filesystem mark covers this filesystem only.
        fs::create_directories(share);
        const std::size_t file_bytes = static_cast<std::size_t>(opt.file_kib) * 1024;
        const std::size_t big_bytes = static_cast<std::size_t>(opt.big_mib) << 20;
        const std::string size_opt =
            fmt::format("mode=0755,size={}m", opt.big_mib + 2 * opt.files * opt.file_kib / 1024 + 64);
        if (::mount("cgsmb-bench", share.c_str(), "tmpfs", 0, size_opt.c_str()) != 0)
            throw std::runtime_error(std::string("mount tmpfs: ") + std::strerror(errno));
        mounted = true;
        std::mt19937_64 rng(42);
        fs::create_directories(share / "small");
        ::chmod((share / "small").c_str(), 0755);
        std::string small_cmds;  // one smbclient session reads them all
        for (int i = 0; i < opt.files; ++i) {
            const std::string name = fmt::format("small/f{:04}", i);
            write_file(share / name, file_bytes, rng);
            small_cmds += "get " + name + " /dev/null; ";
        }
        write_file(share / "big.bin", big_bytes, rng);
        const std::string big_cmds = "get big.bin /dev/null";
        // The folder copies: mget of small/ into a fresh client directory (off the share's
        // filesystem), and mput of a client folder of as many files into a new folder
        // up/<turn> of the share (new files in the zone, written by the allowed reader).
        const fs::path copy_to = dir / "copy-to", copy_from = dir / "copy-from";
        fs::create_directories(copy_from);
        for (int i = 0; i < opt.files; ++i) write_file(copy_from / fmt::format("p{:04}", i), file_bytes, rng);
        fs::create_directories(share / "up");
        const std::string get_folder_cmds =
            "prompt off; recurse on; lcd " + copy_to.string() + "; cd small; mget *";
        auto put_folder_cmds = [&](int turn) {
            return fmt::format("prompt off; recurse on; lcd {}; mkdir up/u{}; cd up/u{}; mput *", copy_from.string(),
                               turn, turn);
        };

        // The VM's root is the host's, read-only: the users go to a copy of /etc; and
        // journald needs a cgroup filesystem there (common/shipped_daemon.hpp).
        std::optional<cgsmb::WritableEtc> etc;
        if (in_vm) etc.emplace(dir);
        cgbench::prepare_vm_for_journald();
        cgsmb::TestUser reader("cgsmb-bench", "Bench-pw-1");
        if (::chown((share / "up").c_str(), reader.uid(), static_cast<gid_t>(-1)) != 0)  // mput's folders go here
            throw std::runtime_error(std::string("chown up: ") + std::strerror(errno));
        cgsmb::TestUser outsider("cgsmb-bench-x", "Bench-pw-2");  // proves the enforcer is in the path
        cgsmb::NetnsPair net("b" + std::to_string(::getpid()));
        ScratchJournald journald(custguard::events::testing::unique_namespace("smbbench"));
        journald.start();
        const fs::path policy = dir / "policy.toml";
        const std::string policy_text = fmt::format(R"([daemon]
enforcer = "{}"

[[zone]]
name = "share"
paths = ["{}"]
sensitivity = "personal"
on_violation = "deny"
allow_users = ["{}"]
allow_clients = ["{}"]
allow_programs = ["/usr/sbin/smbd"]
)",
                                                    opt.enforcer, share.string(), reader.name(), net.client_ip());
        cgtest::spit(policy, policy_text);
        const fs::path policy_no_records = dir / "policy-no-record-allowed.toml";
        cgtest::spit(policy_no_records, policy_text + "record_allowed = false\n");
        fs::create_directories(dir / "state");
        // The configurations: no custguardd first, the default custguardd second.
        struct Config {
            std::string name;
            std::unique_ptr<Daemon> daemon;
            bool floor = false;  // a bare fanotify listener instead of custguardd
            std::vector<double> files_s, mb_s;
            std::size_t records = 0;  // allowed-read records a turn must leave in the journal
            std::vector<bool> valid;  // per round: every read succeeded and reached the journal
            std::vector<double> get_s, put_s;  // folder copies, files/s
        };
        // Reads by smbd: the files, the large file and, with the folder copy, the files again.
        const std::size_t expected_records = static_cast<std::size_t>(opt.files) * (opt.folder ? 2 : 1) + 1;
        std::vector<Config> configs;
        configs.push_back({"none", nullptr, false, {}, {}, 0, {}});
        const std::vector<std::string> daemon_argv = {CG_CUSTGUARDD, "--policy", policy.string(), "--state-dir",
                                                      (dir / "state").string(), "--enforcer", opt.enforcer,
                                                      "--journal-namespace", journald.name_space()};
        const cgtest::PrivateBus bus(dir);
        const std::vector<std::string> daemon_env = {bus.env()};
        auto add_daemon = [&](std::string name, std::vector<std::string> argv, std::size_t records) {
            auto daemon = std::make_unique<Daemon>(std::move(argv), daemon_env, dir / "custguardd.log");
            configs.push_back({std::move(name), std::move(daemon), false, {}, {}, records, {}});
        };
        add_daemon("custguardd", daemon_argv, expected_records);
        if (opt.also_audit) {
            auto argv = daemon_argv;
            argv.push_back("--audit");
            add_daemon("cg --audit", argv, expected_records);
        }
        if (opt.also_no_records) {
            auto argv = daemon_argv;
            argv[2] = policy_no_records.string();  // the value of --policy
            add_daemon("cg no-record", argv, 0);
        }
        // The floor of any fanotify enforcer on this workload: a listener on the share's
        // filesystem that allows every open at once, looking at nothing.
        if (opt.enforcer == "fanotify" && opt.floor) configs.push_back({"fanotify floor", nullptr, true, {}, {}, 0, {}});
        cgsmb::ScratchSmbd smbd(dir / "samba", net.server_ns(), share,
                                std::vector<const cgsmb::TestUser*>{&reader, &outsider});

        auto smbclient_argv = [&](const cgsmb::TestUser& user, const std::string& cmds) {
            return std::vector<std::string>{"/usr/bin/smbclient", "//" + net.server_ip() + "/share", "-s",
                                            smbd.client_conf().string(), "-U", user.name() + "%" + user.password(),
                                            "-c", cmds};
        };
        // Seconds for one smbclient session; throws unless every get succeeded.
        // One smbclient session, timed. A failure is kept: a line for the table and the
        // whole story (client, custguardd, smbd) in a file that outlives the scratch dir.
        struct Timed {
            double seconds = 0;
            std::string failure;
        };
        int failures = 0;
        auto timed = [&](const std::string& cmds, int expect_gets, const char* marker = "getting file") {
            const auto t0 = Clock::now();
            auto r = cgsmb::run(smbclient_argv(reader, cmds), {}, net.client_ns(), 600s);
            const std::chrono::duration<double> s = Clock::now() - t0;
            std::size_t gets = 0;
            for (std::size_t at = 0; (at = r.output.find(marker, at)) != std::string::npos; ++at) ++gets;
            Timed out{s.count(), {}};
            if (r.status == 0 && r.output.find("NT_STATUS_") == std::string::npos &&
                gets == static_cast<std::size_t>(expect_gets))
                return out;
            std::string server = smbd.log();
            for (const auto& f : fs::directory_iterator(dir / "samba/log"))
                server += "--- " + f.path().string() + "\n" + cgtest::slurp(f.path());
            const auto first = r.output.find("NT_STATUS_");
            const std::string first_error = first == std::string::npos
                                                ? "no NT_STATUS"
                                                : r.output.substr(first, r.output.find('\n', first) - first);
            const fs::path report = fmt::format("/tmp/cgsmb-bench-failure.{}.{}.txt", ::getpid(), ++failures);
            const std::string story = fmt::format(
                "smbclient exit {} after {:.1f} s, {} of {} files\n--- smbclient\n{}\n--- custguardd\n{}\n--- smbd\n{}\n",
                r.status, s.count(), gets, expect_gets, r.output, cgtest::slurp(dir / "custguardd.log"), server);
            cgtest::spit(report, story);
            // The VM's /tmp goes with it: the story goes to stderr, which cg-vm-run shows.
            if (in_vm) std::fprintf(stderr, "=== %s\n%s=== end of %s\n", report.c_str(), story.c_str(), report.c_str());
            out.failure = fmt::format("FAILED after {:.1f} s, {} of {} files, first: {} (see {}{})", s.count(), gets,
                                      expect_gets, first_error, report.string(), in_vm ? ", on stderr" : "");
            return out;
        };

        // One smbclient run for a check (a listing, the outsider's read): under TCG on a
        // busy host a session alone can take longer than cgsmb::run's default 30 s.
        constexpr auto check_timeout = 300s;
        // Listening is not serving (smbd-notifyd registers late): wait for a listing.
        for (const auto deadline = Clock::now() + 20s;;) {
            auto probe = cgsmb::run(smbclient_argv(reader, "ls big.bin"), {}, net.client_ns(), check_timeout);
            if (probe.status == 0) break;
            if (Clock::now() > deadline) throw std::runtime_error("smbd does not serve the share: " + probe.output);
            std::this_thread::sleep_for(100ms);
        }

        std::printf("# custguard SMB read benchmark (%s enforcer, %s)\n", opt.enforcer.c_str(),
                    in_vm ? "in the qemu VM under TCG: only the ratios mean something" : "host");
        std::printf("# %d rounds, configurations interleaved (order alternates per round); "
                    "load average at start %s (%ld CPUs%s)\n",
                    opt.rounds, loadavg().c_str(), ::sysconf(_SC_NPROCESSORS_ONLN),
                    in_vm ? ", guest's own" : ", shared with other work");
        std::printf("# share: tmpfs %s = zone \"share\"; server %s (netns %s), client %s (netns %s)\n",
                    share.c_str(), net.server_ip().c_str(), net.server_ns().c_str(), net.client_ip().c_str(),
                    net.client_ns().c_str());
        std::printf("# policy %s:\n", policy.c_str());
        {
            std::istringstream in(cgtest::slurp(policy));
            for (std::string line; std::getline(in, line);) std::printf("#   %s\n", line.c_str());
        }
        if (opt.also_no_records)
            std::printf("# policy %s: the same with record_allowed = false in the zone\n", policy_no_records.c_str());
        for (const auto& c : configs)
            if (c.daemon) std::printf("# %s: %s\n", c.name.c_str(), joined(c.daemon->argv()).c_str());
        std::printf("#   env %s (a private dbus-daemon with the shipped org.custguard1.conf: control plane on)\n",
                    bus.env().c_str());
        std::printf("# smbd: /usr/sbin/smbd --foreground --debug-stdout -s %s (in netns %s)\n",
                    (dir / "samba/smb.conf").c_str(), net.server_ns().c_str());
        std::printf("# files: ip netns exec %s /usr/bin/smbclient //%s/share -s %s -U %s%%*** -c "
                    "'get small/f0000 /dev/null; ... get small/f%04d /dev/null; ' (%d gets of %d KiB, one session)\n",
                    net.client_ns().c_str(), net.server_ip().c_str(), smbd.client_conf().c_str(), reader.name().c_str(),
                    opt.files - 1, opt.files, opt.file_kib);
        std::printf("# large: ip netns exec %s /usr/bin/smbclient //%s/share -s %s -U %s%%*** -c '%s' (%d MiB)\n",
                    net.client_ns().c_str(), net.server_ip().c_str(), smbd.client_conf().c_str(), reader.name().c_str(),
                    big_cmds.c_str(), opt.big_mib);
        if (opt.folder) {
            std::printf("# folder mget: ... -c '%s' (%d files to the client, off the share)\n", get_folder_cmds.c_str(),
                        opt.files);
            std::printf("# folder mput: ... -c '%s' (%d new files in the share's zone, up/<turn> removed after the turn)\n",
                        put_folder_cmds(0).c_str(), opt.files);
        }
        std::printf(
            "# times are wall clock of the whole smbclient run (connect, session, reads); MB = 10^6 bytes;\n"
            "# before each timed run custguardd and journald are left to finish recording (no CPU for 300 ms);\n"
            "# CPU ms: what custguardd and the scratch journald used for a workload, until done with it\n");
        std::fflush(stdout);

        // Warm-up: smbd, smbclient and the page cache, untimed.
        for (const auto& warm : {timed(small_cmds, opt.files), timed(big_cmds, 1)})
            if (!warm.failure.empty()) throw std::runtime_error("warm-up without custguardd: " + warm.failure);
        int put_turn = 0;
        // One folder copy each way, timed; the copies are removed afterwards (untimed).
        auto folder_copies = [&]() -> std::pair<Timed, Timed> {
            std::error_code ec;
            fs::remove_all(copy_to, ec);
            fs::create_directories(copy_to);
            Timed get = timed(get_folder_cmds, opt.files);
            const int turn = ++put_turn;
            Timed put = timed(put_folder_cmds(turn), opt.files, "putting file");
            return {get, put};
        };
        if (opt.folder) {
            const auto [get, put] = folder_copies();
            for (const Timed* warm : {&get, &put})
                if (!warm->failure.empty()) throw std::runtime_error("warm-up without custguardd: " + warm->failure);
            std::error_code ec;
            fs::remove_all(share / "up" / fmt::format("u{}", put_turn), ec);
        }

        // Allowed reads are recorded (record_allowed defaults to true): count them.
        struct Counts {
            std::size_t allowed = 0, with_client = 0;
        };
        auto count_records = [&] {
            Counts c;
            for (const auto& e : journald.read("CUSTGUARD_ZONE=share")) {
                auto get = [&](const char* k) {
                    auto it = e.find(k);
                    return it == e.end() ? std::string() : it->second;
                };
                if (get("CUSTGUARD_DECISION") != "allow") continue;
                ++c.allowed;
                c.with_client += get("CUSTGUARD_CLIENT") == net.client_ip();
            }
            return c;
        };
        int denials_seen = 0, guarded_runs = 0, journald_restarts = 0, outsider_reads = 0;
        std::printf("\n%-6s %-14s %10s %10s %10s %10s   %-25s %-25s   %s\n", "round", "config", "files/s", "MB/s",
                    "mget f/s", "mput f/s",
                    "CPU ms files: cg, journald", "CPU ms large: cg, journald", "allowed records; failures");
        for (int round = 0; round < opt.rounds; ++round) {
            // Forward in even rounds, backward in odd ones: each configuration runs as often
            // early as late in a round.
            for (std::size_t k = 0; k < configs.size(); ++k) {
                Config& c = configs[round % 2 ? configs.size() - 1 - k : k];
                const std::size_t records_before = c.daemon ? count_records().allowed : 0;
                if (c.daemon) c.daemon->start();
                std::unique_ptr<cgbench::BareResponder> floor;
                if (c.floor) {
                    floor = std::make_unique<cgbench::BareResponder>();
                    if (!floor->start(cgbench::BareResponder::Mode::filesystem, share.string()))
                        throw std::runtime_error(std::string("cannot start the bare fanotify listener: ") +
                                                 std::strerror(errno));
                }
                std::vector<pid_t> recorders = {journald.pid()};
                if (c.daemon) recorders.push_back(c.daemon->pid());
                // CPU of custguardd and journald for a workload, until they are done with it.
                const double ms_per_tick = 1000.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
                auto cpu_ms = [&](pid_t pid, long since) {
                    return pid > 0 ? (cpu_ticks(pid) - since) * ms_per_tick : 0.0;
                };
                const pid_t cg = c.daemon ? c.daemon->pid() : -1;
                settle(recorders);
                long cg0 = cg > 0 ? cpu_ticks(cg) : 0, jd0 = cpu_ticks(journald.pid());
                const Timed files_run = timed(small_cmds, opt.files);
                const double files_per_s = opt.files / files_run.seconds;
                settle(recorders);
                const double cg_files = cpu_ms(cg, cg0), jd_files = cpu_ms(journald.pid(), jd0);
                cg0 = cg > 0 ? cpu_ticks(cg) : 0;
                jd0 = cpu_ticks(journald.pid());
                const Timed big_run = timed(big_cmds, 1);
                const double mbs = static_cast<double>(big_bytes) / 1e6 / big_run.seconds;
                settle(recorders);
                const double cg_big = cpu_ms(cg, cg0), jd_big = cpu_ms(journald.pid(), jd0);
                Timed get_run, put_run;
                if (opt.folder) {
                    std::tie(get_run, put_run) = folder_copies();
                    settle(recorders);
                }
                if (c.daemon) {
                    // The enforcer was in the path: a user not listed is refused.
                    ++guarded_runs;
                    auto r = cgsmb::run(smbclient_argv(outsider, "get small/f0000 /dev/null"), {}, net.client_ns(),
                                        check_timeout);
                    if (r.output.find("NT_STATUS_ACCESS_DENIED") == std::string::npos)
                        throw std::runtime_error("custguardd did not refuse a user not allowed: " + r.output + "\n" +
                                                 c.daemon->log());
                    ++denials_seen;
                    c.daemon->stop();
                    if (opt.enforcer == "bpf-lsm") cgbench::remove_bpf_pins();
                } else if (floor) {
                    // The listener was asked for every file read (smbd opens each once).
                    const std::uint64_t asked = floor->answered.load();
                    floor.reset();
                    if (asked < static_cast<std::uint64_t>(opt.files) + 1)
                        throw std::runtime_error(fmt::format("the bare fanotify listener answered {} opens, fewer than "
                                                             "the {} files read: it was not in the path",
                                                             asked, opt.files + 1));
                } else {
                    // And nothing is left in the path once custguardd has stopped: the same
                    // user reads the file.
                    auto r = cgsmb::run(smbclient_argv(outsider, "get small/f0000 /dev/null"), {}, net.client_ns(),
                                        check_timeout);
                    if (r.status != 0)
                        throw std::runtime_error("without custguardd a user not in the zone cannot read: " + r.output);
                    ++outsider_reads;
                }
                if (opt.folder) {  // the uploaded folder, with nothing in the path any more
                    std::error_code ec;
                    fs::remove_all(share / "up" / fmt::format("u{}", put_turn), ec);
                }
                // Under a burst of records the scratch journald can stop reading its socket
                // ("Got invalid event from epoll for datagram fd"); custguardd then runs
                // without its journal. Such a turn is marked, left out of the summary, and
                // journald is started afresh for the next one.
                std::string records;
                bool recorded = true;
                if (c.daemon) {
                    settle({journald.pid()});
                    const std::size_t got = count_records().allowed - records_before;
                    recorded = got >= c.records;
                    records = fmt::format("{}/{}", got, c.records);
                    if (!recorded) {
                        records += " journald restarted";
                        ++journald_restarts;
                        journald.stop(true);
                        journald.start();
                    }
                }
                for (const Timed* t : {&files_run, &big_run, static_cast<const Timed*>(&get_run), static_cast<const Timed*>(&put_run)})
                    if (!t->failure.empty()) records += (records.empty() ? "" : "; ") + t->failure;
                c.valid.push_back(recorded && files_run.failure.empty() && big_run.failure.empty() &&
                                  get_run.failure.empty() && put_run.failure.empty());
                c.files_s.push_back(files_per_s);
                c.mb_s.push_back(mbs);
                c.get_s.push_back(opt.folder ? opt.files / get_run.seconds : 0);
                c.put_s.push_back(opt.folder ? opt.files / put_run.seconds : 0);
                std::printf("%-6d %-14s %10.1f %10.1f %10.1f %10.1f   %8.0f %8.0f %8s %8.0f %8.0f   %s\n", round + 1,
                            c.name.c_str(), files_per_s, mbs, c.get_s.back(), c.put_s.back(), cg_files, jd_files, "",
                            cg_big, jd_big, records.c_str());
                std::fflush(stdout);
            }
        }

        const Counts total = count_records();
        std::printf("\n%-22s %-14s %10s %10s %10s\n", "workload", "config", "median", "min", "max");
        auto block = [&](const std::string& name, std::vector<double> Config::*series, double target) {
            const auto& none = configs[0].*series;
            std::vector<double> none_valid;
            for (std::size_t i = 0; i < none.size(); ++i)
                if (configs[0].valid[i]) none_valid.push_back(none[i]);
            if (none_valid.empty()) {
                std::printf("%-22s no valid round without custguardd\n", name.c_str());
                return;
            }
            const Stats base = stats(none_valid);
            std::printf("%-22s %-14s %10.1f %10.1f %10.1f\n", name.c_str(), "none", base.median, base.min, base.max);
            for (std::size_t k = 1; k < configs.size(); ++k) {
                // Only rounds where both turns worked and every record reached the journal.
                std::vector<double> with, paired;
                for (std::size_t i = 0; i < none.size(); ++i) {
                    if (!configs[k].valid[i] || !configs[0].valid[i]) continue;
                    with.push_back((configs[k].*series)[i]);
                    paired.push_back(with.back() / none[i]);
                }
                if (with.empty()) {
                    std::printf("%-22s %-14s no valid round\n", "", configs[k].name.c_str());
                    continue;
                }
                const Stats st = stats(with);
                const Stats p = stats(paired);
                const double ratio = st.median / base.median;
                std::printf("%-22s %-14s %10.1f %10.1f %10.1f   ratio %.3f (%+.1f %%; per round %.3f..%.3f, "
                            "median %.3f; target >= %.2f: %s; %zu of %zu turns)\n",
                            "", configs[k].name.c_str(), st.median, st.min, st.max, ratio, (ratio - 1) * 100, p.min,
                            p.max, p.median, target, ratio >= target ? "met" : "NOT met", with.size(), none.size());
            }
        };
        block(fmt::format("{} x {} KiB files/s", opt.files, opt.file_kib), &Config::files_s, 0.97);
        block(fmt::format("{} MiB file MB/s", opt.big_mib), &Config::mb_s, 0.99);
        // The folder copies: time at most 1.10x that of no enforcer, so files/s >= 1 / 1.10.
        if (opt.folder) {
            block(fmt::format("folder mget {} files/s", opt.files), &Config::get_s, 1 / 1.10);
            block(fmt::format("folder mput {} files/s", opt.files), &Config::put_s, 1 / 1.10);
        }
        std::printf("\nallowed-read records in the journal: %zu (%zu with CUSTGUARD_CLIENT=%s); "
                    "user not in the zone refused in %d of %d custguardd turns, and reads in %d of %d turns without\n",
                    total.allowed, total.with_client, net.client_ip().c_str(), denials_seen, guarded_runs,
                    outsider_reads, opt.rounds);
        std::printf("scratch journald restarted after %d custguardd turn(s) whose records it did not all take\n",
                    journald_restarts);
        std::printf("load average at end %s\n", loadavg().c_str());
        std::printf("custguardd log of the last run (warnings show what was off):\n");
        std::istringstream in(cgtest::slurp(dir / "custguardd.log"));
        for (std::string line; std::getline(in, line);) std::printf("  %s\n", line.c_str());
        std::fflush(stdout);  // before the scratch daemons stop and say so on the same stdout
    } catch (const std::exception& e) {
        std::fprintf(stderr, "custguard_bench_samba: %s\n", e.what());
        status = 1;
    }
    if (mounted) ::umount2(share.c_str(), MNT_DETACH);
    std::error_code ec;
    fs::remove_all(dir, ec);
    return status;
}
