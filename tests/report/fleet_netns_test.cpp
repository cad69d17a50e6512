// The fleet of custguard.fleet(7) with a real custguardd on every server (host, root): a
// collector in a network namespace of its own runs the shipped collector: stunnel
// (stunnel-collector.conf) on the fleet's port, requiring a client certificate of the
// fleet's CA, in front of systemd-journal-remote on the loopback address (the shipped
// journal-remote drop-ins and journal-remote.conf). Three file servers, each in a network namespace and a UTS
// namespace of its own (the hostname is the server's name), are joined to it through a
// bridge in the collector's namespace. Each server has its own tmpfs holding a zone, its
// own scratch journald namespace and its own custguardd (fanotify enforcer), and uploads
// with systemd-journal-upload (the shipped journal-upload.conf, a client certificate
// each). Reads are recorded before the collector restarts and while it is down; then the
// collector holds every record of every server (nothing lost), `report leak-scope
// --directory` over it counts each read once (nothing twice) and names each record's
// server. The assertions are on the meaning of the JSON (window, servers, files, readers,
// summary), not on its layout. A second case: uploads without a client certificate, with
// one of another CA, or around the proxy leave nothing at the collector.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <fmt/format.h>

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
constexpr int k_port = 19532;  // the fleet's port (stunnel-collector.conf); the namespace is the test's own
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

// A process the test started, stopped when the test leaves, REQUIREs included.
struct Child {
    pid_t pid = -1;
    ~Child() { cgtest::kill_and_reap(pid); }
};

// Starts `argv` as `child` and waits until something listens on `port` in network
// namespace `netns`.
void start_listening(Child& child, const std::string& netns, const std::vector<std::string>& argv, int port,
                     const fs::path& log) {
    child.pid = cgtest::spawn(argv, {}, log);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    for (bool up = false; !up;) {
        in_namespaces(netns, "", [&] { up = cgtest::can_connect(port); });
        INFO(cgtest::slurp(log));
        REQUIRE(::waitpid(child.pid, nullptr, WNOHANG) == 0);
        REQUIRE(std::chrono::steady_clock::now() < deadline);
        if (!up) std::this_thread::sleep_for(50ms);
    }
}

// The collector in its namespace as the shipped files run it: stunnel on the fleet's port
// (stunnel-collector.conf, only the certificate paths moved into `dir`) and
// systemd-journal-remote behind it on the loopback address of journal-remote.socket.conf,
// writing into `output`. `ip netns exec` execs the program, so each pid is the program's.
class Collector {
public:
    Collector(std::string netns, const fs::path& dir, const fs::path& output)
        : netns_(std::move(netns)), dir_(dir), remote_(in_netns(cgtest::report::collector_argv(
                                                    CG_FLEET_DIR, cgtest::report::shipped_backend(CG_FLEET_DIR), output))) {
        start_listening(proxy_, netns_,
                        in_netns(cgtest::report::proxy_argv(CG_FLEET_DIR, dir_, "", "", dir_ / "stunnel.conf")), k_port,
                        proxy_log_path());
        start_remote();
    }
    // journal-remote alone restarts; the proxy stays.
    void start_remote() { start_listening(remote_pid_, netns_, remote_, backend_port(), dir_ / "remote.log"); }
    void stop_remote() { cgtest::kill_and_reap(remote_pid_.pid); }
    std::string proxy_log() const { return cgtest::slurp(proxy_log_path()); }
    static int backend_port() {
        const auto backend = cgtest::report::shipped_backend(CG_FLEET_DIR);
        return std::stoi(backend.substr(backend.rfind(':') + 1));
    }

private:
    std::vector<std::string> in_netns(const std::vector<std::string>& argv) const {
        std::vector<std::string> out = {"/usr/sbin/ip", "netns", "exec", netns_};
        out.insert(out.end(), argv.begin(), argv.end());
        return out;
    }
    fs::path proxy_log_path() const { return dir_ / "proxy.log"; }
    std::string netns_;
    fs::path dir_;
    std::vector<std::string> remote_;
    Child proxy_, remote_pid_;  // destroyed first: journal-remote, then the proxy
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

TEST_CASE("report: three servers in network namespaces, each with a real custguardd, upload through the "
          "collector's TLS proxy to a journal-remote that restarts: leak-scope over the collector names each "
          "record's server, nothing lost or twice",
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

    Collector collector(net.collector(), d, collected);

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
        INFO(s.name << ": " << r.out << r.err << collector.proxy_log());
        REQUIRE(r.rc == 0);
    }

    // journal-remote goes down behind the proxy; the servers keep recording and cannot
    // upload (the proxy admits them, then finds nothing to forward to).
    collector.stop_remote();
    for (auto& sp : servers) {
        REQUIRE(cgtest::read_as(alice, sp->zone() / "orders.csv") == 0);
        auto r = upload(*sp);
        INFO(sp->name << ": " << r.out << r.err);
        CHECK(r.rc != 0);
    }
    // It comes back; each uploader continues from its saved state.
    collector.start_remote();
    for (int i = 1; i <= k_servers; ++i) {
        auto& s = *servers[i - 1];
        wait_reads(s, static_cast<std::size_t>(i + (i == 1) + 1));
        auto r = upload(s);
        INFO(s.name << ": " << r.out << r.err);
        REQUIRE(r.rc == 0);
    }
    collector.stop_remote();

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

TEST_CASE("report: the collector's TLS proxy admits only file servers with a client certificate of the fleet's "
          "CA: uploads with no certificate, another CA's, or around the proxy leave nothing at the collector",
          "[report][host][fleet]") {
    REQUIRE(cgtest::report::private_mounts());
    cgtest::TempDir tmp("cgfleet");
    const fs::path d = tmp.path(), collected = d / "collected", other = d / "other";
    fs::create_directories(collected);
    fs::create_directories(other);
    cgtest::report::make_certificates(d, k_collector_ip, {"cgfleet-member"});
    // Another CA, whose client certificate looks like the fleet's in all but its signer.
    cgtest::report::make_certificates(other, k_collector_ip, {"cgfleet-intruder"});

    struct Case {
        const char* what;
        std::string host;  // the uploaded records' _HOSTNAME
        std::string url;
        fs::path certs;    // where the uploader's NAME.crt and NAME.key are
        bool certificate;  // whether it presents one
        bool admitted;
    };
    const std::string https = "https://" + k_collector_ip + ":" + std::to_string(k_port);
    const std::vector<Case> cases = {
        {"a client certificate of the fleet's CA", "cgfleet-member", https, d, true, true},
        {"no client certificate", "cgfleet-anonymous", https, d, false, false},
        {"a client certificate of another CA", "cgfleet-intruder", https, other, true, false},
        {"plain HTTP to journal-remote's own port, around the proxy", "cgfleet-around",
         "http://" + k_collector_ip + ":" + std::to_string(Collector::backend_port()), d, false, false},
    };
    FleetNet net(static_cast<int>(cases.size()));
    Collector collector(net.collector(), d, collected);

    constexpr std::uint64_t k_records = 5;
    for (std::size_t i = 0; i < cases.size(); ++i) {
        const auto& c = cases[i];
        const fs::path journal = d / (c.host + ".journal");
        cgtest::report::write_reads(journal, c.host, fmt::format("{:032x}", i + 1), k_records, 0);
        auto up = cgtest::report::uploader_argv(CG_FLEET_DIR, c.certs, c.host, c.url, "--file=" + journal.string(),
                                                d / (c.host + ".state"));
        for (auto& a : up) {
            if (!c.certificate && (a.rfind("--key=", 0) == 0 || a.rfind("--cert=", 0) == 0))
                a = a.substr(0, a.find('=') + 1) + "-";
            // Every uploader checks the collector against the fleet's CA: the refusal is the collector's.
            if (a.rfind("--trust=", 0) == 0) a = "--trust=" + (d / "ca.crt").string();
        }
        std::vector<std::string> argv = {"/usr/sbin/ip", "netns", "exec", net.server(static_cast<int>(i) + 1)};
        argv.insert(argv.end(), up.begin(), up.end());
        auto r = cgtest::run(argv, {}, std::nullopt, 30s);
        INFO(c.what << ": " << r.out << r.err << collector.proxy_log());
        CHECK((r.rc == 0) == c.admitted);
    }
    collector.stop_remote();

    std::map<std::string, std::uint64_t> arrived;  // _HOSTNAME -> records at the collector
    for (const auto& [key, n] : records({"--directory=" + collected.string()})) arrived[std::get<0>(key)] += 1;
    for (const auto& c : cases) {
        INFO(c.what);
        CHECK(arrived[c.host] == (c.admitted ? k_records : 0));
    }
    // The proxy, not journal-remote, refused: it says why (OpenSSL's words).
    const auto log = collector.proxy_log();
    INFO(log);
    CHECK(log.find("Certificate accepted at depth=0: CN=cgfleet-member") != std::string::npos);
    CHECK(log.find("peer did not return a certificate") != std::string::npos);
    CHECK(log.find("Rejected by CERT at depth=0: CN=cgfleet-intruder") != std::string::npos);
}
