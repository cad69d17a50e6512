// The fleet of custguard.fleet(7) with a real custguardd on every server (host, root): a
// collector in a network namespace of its own runs systemd-journal-remote over HTTPS (the
// shipped journal-remote.conf); three file servers, each in a network namespace and a UTS
// namespace of its own (the hostname is the server's name), are joined to it through a
// bridge in the collector's namespace. Each server has its own tmpfs holding a zone, its
// own scratch journald namespace and its own custguardd (fanotify enforcer), and uploads
// with systemd-journal-upload (the shipped journal-upload.conf, a client certificate
// each). Reads are recorded before the collector restarts and while it is down; then the
// collector holds every record of every server (nothing lost), `report leak-scope
// --directory` over it counts each read once (nothing twice) and names each record's
// server. The assertions are on the meaning of the JSON (window, servers, files, readers,
// summary), not on its layout.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <tuple>

#include "custguard/common/errno_text.hpp"
#include "custguard/common/json.hpp"
#include "custguard/common/unique_fd.hpp"
#include "fleet_fixture.hpp"
#include "scratch_journald.hpp"
#include "scratch_mounts.hpp"
#include "support/support.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using custguard::common::Json;

namespace {

// TEST-NET-2 (RFC 5737): these addresses exist only inside the test's namespaces.
const std::string k_collector_ip = "198.51.100.1";
constexpr int k_port = 19532;  // journal-remote's port; the namespace is the test's own
constexpr int k_servers = 3;

// Runs `fn` on a thread of its own inside network namespace `netns` and, when `hostname`
// is given, a new UTS namespace with that hostname: processes `fn` starts stay there
// (a journald started there stamps its records with _HOSTNAME=hostname).
template <class F>
void in_namespaces(const std::string& netns, const std::string& hostname, F&& fn) {
    std::exception_ptr failure;
    std::thread t([&] {
        try {
            custguard::common::UniqueFd ns(::open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC));
            if (!ns || ::setns(ns.get(), CLONE_NEWNET) != 0)
                throw std::runtime_error("cannot enter network namespace " + netns + ": " +
                                         custguard::common::errno_text(errno));
            if (!hostname.empty() &&
                (::unshare(CLONE_NEWUTS) != 0 || ::sethostname(hostname.data(), hostname.size()) != 0))
                throw std::runtime_error("cannot set hostname " + hostname + ": " + custguard::common::errno_text(errno));
            fn();
        } catch (...) {
            failure = std::current_exception();
        }
    });
    t.join();
    if (failure) std::rethrow_exception(failure);
}

void ip(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/sbin/ip"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = cgtest::run(argv);
    if (r.rc != 0) {
        std::string cmd;
        for (const auto& a : argv) cmd += a + " ";
        throw std::runtime_error(cmd + "failed: " + r.err);
    }
}

// The collector's namespace holds a bridge with the collector's address; each server's
// namespace is joined to the bridge by a veth pair. Nothing is added to the host's
// namespace. The destructor deletes the namespaces (and with them every interface).
class FleetNet {
public:
    explicit FleetNet(int servers) : prefix_("cgfl" + std::to_string(::getpid())) {
        for (int i = 1; i <= servers; ++i) servers_.push_back(prefix_ + "-s" + std::to_string(i));
        remove();
        try {
            ip({"netns", "add", collector()});
            ip({"-n", collector(), "link", "set", "lo", "up"});
            ip({"-n", collector(), "link", "add", "cgflbr", "type", "bridge"});
            ip({"-n", collector(), "addr", "add", k_collector_ip + "/24", "dev", "cgflbr"});
            ip({"-n", collector(), "link", "set", "cgflbr", "up"});
            for (int i = 1; i <= servers; ++i) {
                const auto& ns = servers_[i - 1];
                const std::string port = "cgfl" + std::to_string(i);
                ip({"netns", "add", ns});
                ip({"-n", ns, "link", "set", "lo", "up"});
                ip({"-n", collector(), "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns});
                ip({"-n", collector(), "link", "set", port, "master", "cgflbr", "up"});
                ip({"-n", ns, "addr", "add", server_ip(i) + "/24", "dev", "eth0"});
                ip({"-n", ns, "link", "set", "eth0", "up"});
            }
        } catch (...) {
            remove();
            throw;
        }
    }
    ~FleetNet() { remove(); }
    FleetNet(const FleetNet&) = delete;
    FleetNet& operator=(const FleetNet&) = delete;

    std::string collector() const { return prefix_ + "-col"; }
    const std::string& server(int i) const { return servers_.at(i - 1); }
    static std::string server_ip(int i) { return "198.51.100." + std::to_string(10 + i); }

private:
    void remove() {
        std::vector<std::string> all = servers_;
        all.push_back(collector());
        for (const auto& ns : all)
            if (fs::exists("/run/netns/" + ns)) cgtest::run({"/usr/sbin/ip", "netns", "delete", ns});
    }
    std::string prefix_;
    std::vector<std::string> servers_;
};

// One file server: its tmpfs (the zone "customers" and its files), its journald namespace
// and its custguardd, all started in its network and UTS namespaces.
struct Server {
    std::string name;  // its hostname
    std::string netns;
    std::unique_ptr<cgtest::report::Tmpfs> root;  // unmounted last, after the daemon stopped
    std::unique_ptr<custguard::events::testing::ScratchJournald> journald;
    pid_t daemon = -1;
    fs::path log;

    Server() = default;
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;
    ~Server() {
        cgtest::kill_and_reap(daemon);
        journald.reset();
    }

    fs::path zone() const { return root->path() / "customers"; }
    // Where the namespace's journald keeps its files (persistent when /var/log/journal exists).
    fs::path journal_dir() const {
        std::string id = cgtest::slurp("/etc/machine-id");
        id.erase(id.find_last_not_of(" \n") + 1);
        for (const char* base : {"/var/log/journal", "/run/log/journal"}) {
            fs::path p = fs::path(base) / (id + "." + journald->name_space());
            if (fs::exists(p)) return p;
        }
        throw std::runtime_error("no journal directory of namespace " + journald->name_space());
    }
};

void start_server(Server& s, const fs::path& tmp, const std::string& allowed) {
    s.root = std::make_unique<cgtest::report::Tmpfs>(tmp / s.name);
    fs::create_directories(s.zone());
    // No document is parsed by these tests: the files only need to be there.
    cgtest::spit(s.zone() / "list.csv", "customer_id,name\n1,synthetic\n");
    cgtest::spit(s.zone() / "orders.csv", "order_id,customer_id\n1,1\n");
    const fs::path state = tmp / (s.name + "-state"), policy = tmp / (s.name + ".toml");
    fs::create_directories(state);
    cgtest::spit(policy, "[daemon]\nenforcer = \"fanotify\"\n\n[[zone]]\nname = \"customers\"\npaths = [\"" +
                             s.zone().string() + "\"]\nallow_users = [\"" + allowed + "\"]\nrecord_allowed = true\n");
    s.log = tmp / (s.name + ".log");
    in_namespaces(s.netns, s.name, [&] {
        s.journald = std::make_unique<custguard::events::testing::ScratchJournald>(
            custguard::events::testing::unique_namespace("fl" + s.name.substr(s.name.size() - 1)));
        s.journald->start();
        s.daemon = cgtest::spawn({CG_CUSTGUARDD, "--policy", policy.string(), "--state-dir", state.string(), "--enforcer",
                                  "fanotify", "--no-audit", "--journal-namespace", s.journald->name_space()},
                                 {"DBUS_SYSTEM_BUS_ADDRESS=unix:path=" + (tmp / "no-bus").string(),
                                  "CUSTGUARD_EXTRACT_HELPER=" CG_EXTRACT_HELPER},
                                 s.log);
    });
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (cgtest::slurp(s.log).find("control plane off") == std::string::npos) {
        INFO(cgtest::slurp(s.log));
        REQUIRE(::waitpid(s.daemon, nullptr, WNOHANG) == 0);
        REQUIRE(std::chrono::steady_clock::now() < deadline);
        std::this_thread::sleep_for(50ms);
    }
}

// custguardd's records in a journal, as journalctl reads them: (_HOSTNAME, CUSTGUARD_RUN,
// CUSTGUARD_SEQ) -> how many times the record is there.
std::map<std::tuple<std::string, std::string, std::string>, int> records(const std::vector<std::string>& source) {
    std::vector<std::string> argv = {"journalctl", "--no-pager", "-o", "json",
                                     "--output-fields=_HOSTNAME,CUSTGUARD_RUN,CUSTGUARD_SEQ"};
    argv.insert(argv.end(), source.begin(), source.end());
    argv.push_back("SYSLOG_IDENTIFIER=custguardd");
    auto r = cgtest::run(argv);
    INFO(r.err);
    REQUIRE(r.rc == 0);
    std::map<std::tuple<std::string, std::string, std::string>, int> out;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
        auto j = Json::parse(line);
        REQUIRE(j);
        ++out[{(*j)["_HOSTNAME"].as_string(), (*j)["CUSTGUARD_RUN"].as_string(), (*j)["CUSTGUARD_SEQ"].as_string()}];
    }
    return out;
}

// Waits until `n` records of allowed or denied reads are in the server's journal.
void wait_reads(const Server& s, std::size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (s.journald->read("CUSTGUARD_EVENT=access").size() < n) {
        INFO(s.name << ": " << cgtest::slurp(s.log));
        REQUIRE(std::chrono::steady_clock::now() < deadline);
        std::this_thread::sleep_for(50ms);
    }
}

}  // namespace

TEST_CASE("report: three servers in network namespaces, each with a real custguardd, upload to a collector "
          "that restarts: leak-scope over the collector names each record's server, nothing lost or twice",
          "[report][host][fleet]") {
    // Before any thread: the tmpfs mounts and the netns bind mounts stay ours.
    REQUIRE(cgtest::report::private_mounts());
    const auto started = std::chrono::steady_clock::now();
    const auto alice = cgtest::ensure_user("cgfleet-alice");
    const auto bob = cgtest::ensure_user("cgfleet-bob");
    cgtest::TempDir tmp("cgfleet");
    const fs::path d = tmp.path(), collected = d / "collected";
    fs::create_directories(collected);

    FleetNet net(k_servers);
    std::vector<std::string> names;
    for (int i = 1; i <= k_servers; ++i) names.push_back("cgfleet-fs" + std::to_string(i));
    cgtest::report::make_certificates(d, k_collector_ip, names);

    // The collector, in its namespace: `ip netns exec` execs the program, so the pid is its.
    const auto remote = [&] {
        auto argv = cgtest::report::collector_argv(CG_FLEET_DIR, d, std::to_string(k_port), collected);
        argv.insert(argv.begin(), {"/usr/sbin/ip", "netns", "exec", net.collector()});
        return argv;
    }();
    auto start_collector = [&] {
        pid_t pid = cgtest::spawn(remote, {}, d / "remote.log");
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        for (bool up = false; !up;) {
            in_namespaces(net.collector(), "", [&] { up = cgtest::can_connect(k_port); });
            INFO(cgtest::slurp(d / "remote.log"));
            REQUIRE(::waitpid(pid, nullptr, WNOHANG) == 0);
            REQUIRE(std::chrono::steady_clock::now() < deadline);
            if (!up) std::this_thread::sleep_for(50ms);
        }
        return pid;
    };
    pid_t collector = start_collector();
    struct StopCollector {
        pid_t& pid;
        ~StopCollector() { cgtest::kill_and_reap(pid); }
    } stop_collector{collector};

    std::vector<std::unique_ptr<Server>> servers;
    for (int i = 1; i <= k_servers; ++i) {
        auto s = std::make_unique<Server>();
        s->name = names[i - 1];
        s->netns = net.server(i);
        start_server(*s, d, alice.name);
        servers.push_back(std::move(s));
    }
    // Each server's uploader, from the server's namespace over the bridge.
    auto upload = [&](const Server& s) {
        std::vector<std::string> argv = {"/usr/sbin/ip", "netns", "exec", s.netns};
        auto up = cgtest::report::uploader_argv(CG_FLEET_DIR, d, s.name,
                                                "https://" + k_collector_ip + ":" + std::to_string(k_port),
                                                "--directory=" + s.journal_dir().string(), d / (s.name + ".state"));
        argv.insert(argv.end(), up.begin(), up.end());
        return cgtest::run(argv, {}, std::nullopt, 30s);
    };

    // Before the restart: server i's allowed user reads list.csv i times; on the first
    // server the other user is refused once.
    for (int i = 1; i <= k_servers; ++i) {
        auto& s = *servers[i - 1];
        for (int n = 0; n < i; ++n) REQUIRE(cgtest::read_as(alice, s.zone() / "list.csv") == 0);
        if (i == 1) {
            const int refused = cgtest::read_as(bob, s.zone() / "list.csv");
            CHECK((refused == EPERM || refused == EACCES));
        }
        wait_reads(s, static_cast<std::size_t>(i + (i == 1)));
        auto r = upload(s);
        INFO(s.name << ": " << r.out << r.err);
        REQUIRE(r.rc == 0);
    }

    // The collector goes down; the servers keep recording and cannot upload.
    cgtest::kill_and_reap(collector);
    for (auto& sp : servers) {
        REQUIRE(cgtest::read_as(alice, sp->zone() / "orders.csv") == 0);
        auto r = upload(*sp);
        INFO(sp->name << ": " << r.out << r.err);
        CHECK(r.rc != 0);
    }
    // It comes back; each uploader continues from its saved state.
    collector = start_collector();
    for (int i = 1; i <= k_servers; ++i) {
        auto& s = *servers[i - 1];
        wait_reads(s, static_cast<std::size_t>(i + (i == 1) + 1));
        auto r = upload(s);
        INFO(s.name << ": " << r.out << r.err);
        REQUIRE(r.rc == 0);
    }
    cgtest::kill_and_reap(collector);

    // Nothing lost: every record of every server's own journal is at the collector, under
    // that server's name.
    const auto at_collector = records({"--directory=" + collected.string()});
    std::size_t resent = 0;
    for (const auto& [key, n] : at_collector) resent += static_cast<std::size_t>(n - 1);
    for (const auto& sp : servers) {
        const auto own = records({"--namespace=" + sp->journald->name_space()});
        REQUIRE(own.size() >= 3);
        for (const auto& [key, n] : own) {
            INFO(sp->name << " record run " << std::get<1>(key) << " seq " << std::get<2>(key));
            CHECK(std::get<0>(key) == sp->name);
            CHECK(at_collector.count(key) == 1);
        }
    }

    auto report = cgtest::run({CG_CUSTGUARDCTL, "report", "leak-scope", "--directory", collected.string(), "--since",
                               "-1h", "--format", "json"});
    INFO(report.err);
    REQUIRE(report.rc == 0);
    auto parsed = Json::parse(report.out);
    INFO(report.out);
    REQUIRE(parsed);
    const Json& j = *parsed;

    std::set<std::string> reported_servers;
    for (const auto& s : j["servers"].as_array()) reported_servers.insert(s.as_string());
    CHECK(reported_servers == std::set<std::string>(names.begin(), names.end()));
    CHECK(!j["window"]["since"].as_string().empty());
    // Nothing twice: the resent records (systemd-journal-upload sends the record at its
    // saved cursor again) count once.
    CHECK(j["summary"]["reads"].as_int() == 1 + 2 + 3 + k_servers);
    CHECK(j["summary"]["denials"].as_int() == 1);

    // Each file under the server whose tmpfs holds it, read by whom and how often there.
    std::map<std::pair<std::string, std::string>, const Json*> files;  // (server, path)
    for (const auto& f : j["files"].as_array()) files[{f["server"].as_string(), f["path"].as_string()}] = &f;
    CHECK(files.size() == 2 * k_servers);
    for (int i = 1; i <= k_servers; ++i) {
        const auto& s = *servers[i - 1];
        for (const auto& [file, reads] : {std::pair{"list.csv", i}, std::pair{"orders.csv", 1}}) {
            INFO(s.name << " " << file);
            auto it = files.find({s.name, (s.zone() / file).string()});
            REQUIRE(it != files.end());
            const Json& f = *it->second;
            CHECK(f["zone"].as_string() == "customers");
            const auto& readers = f["readers"].as_array();
            REQUIRE(readers.size() == 1);
            CHECK(readers[0]["user"].as_string() == alice.name);
            CHECK(readers[0]["count"].as_int() == reads);
            CHECK(!readers[0]["first"].as_string().empty());
            CHECK(readers[0]["last"].as_string() >= readers[0]["first"].as_string());
            CHECK(f["denials"].as_int() == (i == 1 && std::string(file) == "list.csv" ? 1 : 0));
        }
    }
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    WARN("fleet of " << k_servers << " servers: " << took.count() << " ms; records the uploaders sent twice: " << resent);
}
