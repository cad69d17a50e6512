// Unit tests of the event pipeline: no root, no journald.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <optional>
#include <thread>
#include <tuple>

#include <fmt/format.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>

#include "custguard/events/enrich.hpp"
#include "custguard/events/export.hpp"
#include "custguard/events/journal.hpp"
#include "custguard/events/pipeline.hpp"
#include "multichannel_smbd.hpp"

using namespace custguard::events;
using custguard::events::testing::MultichannelSmbd;
using namespace std::chrono_literals;

namespace {

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        char tmpl[] = "/tmp/cgev-unit-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

custguard::daemon::AccessEvent self_event(std::uint32_t decision, std::uint32_t kind = CG_EV_OPEN) {
    custguard::daemon::AccessEvent ev;
    ev.raw.kind = kind;
    ev.raw.pid = ev.raw.tgid = static_cast<std::uint32_t>(::getpid());
    ev.raw.uid = ::getuid();
    ev.raw.gid = ::getgid();
    ev.raw.loginuid = 0xffffffffu;
    ev.raw.zone_id = 1;
    ev.raw.decision = decision;
    ev.raw.rule = CG_RULE_NOT_ALLOWED;
    ev.raw.open_flags = 0;  // O_RDONLY
    std::strncpy(ev.raw.comm, "tester", sizeof ev.raw.comm);
    std::strncpy(ev.raw.path, "/srv/share/customers/raw.csv", sizeof ev.raw.path);
    ev.realtime_ns = 1'700'000'000'123'456'000;
    return ev;
}

// A stand-in for an smbd connection process: a child named `name` accepts one loopback
// connection on an ephemeral port (playing the SMB port) and holds it until destroyed.
class FakeSmbd {
public:
    explicit FakeSmbd(const char* name) {
        listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(listener_ >= 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(listener_, 1) == 0);
        socklen_t len = sizeof addr;
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
        port = ntohs(addr.sin_port);
        REQUIRE(::pipe(ready_) == 0);
        REQUIRE(::pipe(done_) == 0);
        pid = ::fork();
        if (pid == 0) {
            ::prctl(PR_SET_NAME, name);
            int conn = ::accept(listener_, nullptr, nullptr);
            char c = conn >= 0 ? 'y' : 'n';
            (void)::write(ready_[1], &c, 1);
            (void)::read(done_[0], &c, 1);
            ::_exit(0);
        }
        client_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(::connect(client_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        char c = 0;
        REQUIRE(::read(ready_[0], &c, 1) == 1);
        REQUIRE(c == 'y');
    }
    ~FakeSmbd() {
        (void)::write(done_[1], "x", 1);
        ::waitpid(pid, nullptr, 0);
        for (int fd : {listener_, client_, ready_[0], ready_[1], done_[0], done_[1]})
            if (fd >= 0) ::close(fd);
    }
    // The client hangs up (like `smbclient -c` once its command is done): the connection
    // process still holds its socket, now in CLOSE_WAIT.
    void hang_up() {
        ::close(client_);
        client_ = -1;
        std::this_thread::sleep_for(50ms);  // the FIN crosses loopback at once; be generous
    }
    EnrichConfig config() const {
        EnrichConfig cfg;
        cfg.samba_ports = {port};
        return cfg;
    }
    std::uint16_t port = 0;
    pid_t pid = -1;

private:
    int listener_ = -1, client_ = -1;
    int ready_[2] = {-1, -1}, done_[2] = {-1, -1};
};

}  // namespace

TEST_CASE("message ids: one fixed 128-bit id per kind, all in the catalog", "[unit]") {
    std::set<std::string_view> ids;
    const std::regex hex("[0-9a-f]{32}");
    for (const auto& k : all_kinds()) {
        CHECK(std::regex_match(std::string(k.message_id), hex));
        ids.insert(k.message_id);
        CHECK(kind_from_message_id(k.message_id) == k.kind);
        CHECK(&info(k.kind) == &k);
    }
    CHECK(ids.size() == all_kinds().size());  // no two kinds share an id
    const std::string catalog = slurp(CUSTGUARD_SOURCE_DIR "/systemd/custguard.catalog");
    for (const auto& k : all_kinds()) {
        INFO(to_string(k.kind));
        CHECK(catalog.find(fmt::format("-- {}\n", k.message_id)) != std::string::npos);
    }
}

TEST_CASE("the catalog compiles with journalctl and lists every id", "[unit]") {
    TempDir root;
    std::filesystem::create_directories(root.path / "usr/lib/systemd/catalog");
    std::filesystem::copy_file(CUSTGUARD_SOURCE_DIR "/systemd/custguard.catalog",
                               root.path / "usr/lib/systemd/catalog/custguard.catalog");
    const std::string out = (root.path / "list").string();
    const std::string cmd = fmt::format("journalctl --root={0} --update-catalog 2>{1}.err && "
                                        "journalctl --root={0} --list-catalog >{1} 2>>{1}.err",
                                        root.path.string(), out);
    REQUIRE(std::system(cmd.c_str()) == 0);
    const std::string listed = slurp(out);
    CHECK(slurp(out + ".err").empty());
    for (const auto& k : all_kinds()) CHECK(listed.find(k.message_id) != std::string::npos);
}

TEST_CASE("native protocol encoding", "[unit]") {
    Record r;
    r.kind = Kind::access_denied;
    r.message = "hello";
    r.set("CUSTGUARD_PATH", "/srv/a\nb.csv");
    r.set("CUSTGUARD_USER", "alice");
    r.set("bad name", "x");
    r.set("_PID", "1");  // trusted fields cannot be set by clients
    const std::string d = encode_native(r);
    CHECK(d.starts_with("MESSAGE_ID=af36e5e89027472db73bb8be382ec767\nPRIORITY=4\nSYSLOG_IDENTIFIER=custguardd\nMESSAGE=hello\n"));
    const std::string binary = std::string("CUSTGUARD_PATH\n") + std::string("\x0c\0\0\0\0\0\0\0", 8) + "/srv/a\nb.csv\n";
    CHECK(d.find(binary) != std::string::npos);
    CHECK(d.find("CUSTGUARD_USER=alice\n") != std::string::npos);
    CHECK(d.find("bad name") == std::string::npos);
    CHECK(d.find("_PID") == std::string::npos);
    CHECK(journal_socket_for_namespace("") == "/run/systemd/journal/socket");
    CHECK(journal_socket_for_namespace("x") == "/run/systemd/journal.x/socket");
}

TEST_CASE("record fields: set replaces, empty removes", "[unit]") {
    Record r;
    r.set(field::path, "/a").set(field::path, "/b").set(field::user, "bob").set(field::user, "");
    REQUIRE(r.fields.size() == 1);
    CHECK(*r.get(field::path) == "/b");
    CHECK(r.get(field::user) == nullptr);
    CHECK(valid_field_name("CUSTGUARD_X1"));
    CHECK_FALSE(valid_field_name("_X"));
    CHECK_FALSE(valid_field_name("1X"));
    CHECK_FALSE(valid_field_name("lower"));
}

TEST_CASE("an access event is enriched from /proc and NSS", "[unit]") {
    Enricher e;
    const std::vector<std::string> zones = {"customers", "medical"};
    SECTION("decision and kind") {
        CHECK(e.enrich(self_event(CG_DECISION_ALLOW), zones).kind == Kind::access_allowed);
        CHECK(e.enrich(self_event(CG_DECISION_AUDIT), zones).kind == Kind::access_audited);
        CHECK(e.enrich(self_event(CG_DECISION_DENY), zones).kind == Kind::access_denied);
        CHECK(e.enrich(self_event(CG_DECISION_DENY, CG_EV_UNLINK), zones).kind == Kind::zone_integrity);
        CHECK(e.enrich(self_event(CG_DECISION_ALLOW, CG_EV_LINK), zones).kind == Kind::zone_integrity);
    }
    SECTION("fields of a live process") {
        auto ev = self_event(CG_DECISION_DENY);
        ev.raw.loginuid = 0;
        ev.raw.ino = 99;
        ev.raw.dev = (8u << 20) | 1;  // 8:1 in the kernel's internal encoding... see device_text
        Record r = e.enrich(ev, zones);
        CHECK(*r.get(field::event) == "access");
        CHECK(*r.get(field::decision) == "deny");
        CHECK(*r.get(field::zone) == "customers");
        CHECK(*r.get(field::zone_id) == "1");
        CHECK(*r.get(field::path) == "/srv/share/customers/raw.csv");  // from raw when path is empty
        CHECK(*r.get(field::uid) == std::to_string(::getuid()));
        CHECK(*r.get(field::user) == e.user_name(::getuid()));
        CHECK(*r.get(field::group) == e.group_name(::getgid()));
        CHECK(*r.get(field::auid) == "0");
        CHECK(*r.get(field::auid_user) == "root");
        CHECK(*r.get(field::pid) == std::to_string(::getpid()));
        CHECK(*r.get(field::exe) == std::filesystem::read_symlink("/proc/self/exe").string());
        CHECK(r.get(field::cmdline)->find("custguard_events_unit_tests") != std::string::npos);
        CHECK(*r.get(field::ppid) == std::to_string(::getppid()));
        CHECK_FALSE(r.get(field::parent_comm)->empty());
        CHECK(*r.get(field::access) == "read");
        CHECK(*r.get(field::inode) == "99");
        CHECK(r.get(field::process_exited) == nullptr);
        CHECK(r.realtime_us == 1'700'000'000'123'456);
        CHECK(r.message.find("/srv/share/customers/raw.csv") != std::string::npos);
        CHECK(r.message.find("denied") != std::string::npos);
    }
    SECTION("client_not_allowed names the client, or says it could not be established") {
        auto ev = self_event(CG_DECISION_DENY);
        ev.raw.rule = CG_RULE_CLIENT_NOT_ALLOWED;
        ev.client = "198.51.100.2";
        Record named = e.enrich(ev, zones);
        CHECK(*named.get(field::rule) == "client_not_allowed");
        CHECK(*named.get(field::client) == "198.51.100.2");
        CHECK(named.message.find("from 198.51.100.2: denied") != std::string::npos);
        ev.client.clear();
        Record unknown = e.enrich(ev, zones);  // this test process is no Samba: no address found
        CHECK(unknown.get(field::client) == nullptr);
        CHECK(unknown.message.find("from a client that could not be established: denied") != std::string::npos);
    }
    SECTION("zone ids beyond the current policy and zone 0") {
        auto ev = self_event(CG_DECISION_ALLOW);
        ev.raw.zone_id = 9;
        CHECK(*e.enrich(ev, zones).get(field::zone) == "zone#9");
        ev.raw.zone_id = 0;
        CHECK(e.enrich(ev, zones).get(field::zone) == nullptr);
    }
    SECTION("a process that already exited") {
        pid_t child = ::fork();
        if (child == 0) ::_exit(0);
        ::waitpid(child, nullptr, 0);
        auto ev = self_event(CG_DECISION_DENY);
        ev.raw.pid = ev.raw.tgid = static_cast<std::uint32_t>(child);
        ev.raw.loginuid = 1000;
        Record r = e.enrich(ev, zones);
        CHECK(*r.get(field::process_exited) == "1");
        CHECK(*r.get(field::comm) == "tester");
        CHECK(*r.get(field::auid) == "1000");
        CHECK(r.get(field::exe) == nullptr);
        CHECK(*r.get(field::pid) == std::to_string(child));
        CHECK(e.stats().exited == 1);
    }
    SECTION("cmdline is bounded") {
        EnrichConfig cfg;
        cfg.cmdline_max = 8;
        Enricher small(cfg);
        auto info = small.process(static_cast<std::uint32_t>(::getpid()), 0, 0);
        CHECK(info.cmdline.size() == 8 + 3);
        CHECK(info.cmdline.ends_with("..."));
    }
    SECTION("process data is cached") {
        e.process(static_cast<std::uint32_t>(::getpid()), 0, 0);
        e.process(static_cast<std::uint32_t>(::getpid()), 0, 0);
        CHECK(e.stats().process_cache_hits >= 1);
    }
}

TEST_CASE("cgroup paths and /proc/net addresses", "[unit]") {
    CHECK(unit_from_cgroup("/system.slice/smbd.service") == "smbd.service");
    CHECK(unit_from_cgroup("/user.slice/user-1000.slice/session-3.scope") == "session-3.scope");
    CHECK(unit_from_cgroup("/system.slice/foo.service/payload") == "foo.service");
    CHECK(unit_from_cgroup("/") == "");
    CHECK(proc_net_address("0100007F:01BD") == "127.0.0.1");
    CHECK(proc_net_address("0700000A:1F90") == "10.0.0.7");
    CHECK(proc_net_address("0000000000000000FFFF00000700000A:01BD") == "10.0.0.7");
    CHECK(proc_net_address("B80D0120000000000000000001000000:01BD") == "2001:db8::1");
    CHECK(proc_net_address("zz") == "");
}

TEST_CASE("the client address of an smbd process comes from its TCP socket", "[unit]") {
    FakeSmbd smbd("smbd");
    const EnrichConfig cfg = smbd.config();
    Enricher e(cfg);
    auto info = e.process(static_cast<std::uint32_t>(smbd.pid), 0, 0);
    CHECK(info.comm == "smbd");
    CHECK(info.client == "127.0.0.1");
    CHECK(e.stats().client_lookups == 1);
    // Not an smbd: no lookup.
    auto self = e.process(static_cast<std::uint32_t>(::getpid()), 0, 0);
    CHECK(self.client.empty());
    CHECK(e.stats().client_lookups == 1);
    // Wrong port: nothing found.
    const std::uint16_t other[] = {static_cast<std::uint16_t>(smbd.port + 1)};
    CHECK(find_tcp_peer(cfg, static_cast<std::uint32_t>(smbd.pid), other).empty());
}

// Guards the cost of a record of an SMB read: the enforcers name the client of every
// smbd open, and enrichment searched smbd's descriptors and TCP tables again all the same
// (under the VM's TCG a large part of the enrichment thread's CPU in
// custguard_bench_samba). The sensor's client is used without a search; an event without
// one still gets the search, once per cached process.
TEST_CASE("an event that names its Samba client spares the search of smbd's sockets", "[unit]") {
    FakeSmbd smbd("smbd");
    Enricher e(smbd.config());
    const std::vector<std::string> zones = {"customers"};
    auto ev = self_event(CG_DECISION_ALLOW);
    ev.raw.pid = ev.raw.tgid = static_cast<std::uint32_t>(smbd.pid);
    std::strncpy(ev.raw.comm, "smbd", sizeof ev.raw.comm);
    ev.client = "192.0.2.9";
    for (int i = 0; i < 3; ++i) {
        const Record r = e.enrich(ev, zones);
        REQUIRE(r.get(field::client));
        CHECK(*r.get(field::client) == "192.0.2.9");
    }
    CHECK(e.stats().client_lookups == 0);
    ev.client.clear();
    for (int i = 0; i < 2; ++i) {
        const Record r = e.enrich(ev, zones);
        REQUIRE(r.get(field::client));
        CHECK(*r.get(field::client) == "127.0.0.1");
    }
    CHECK(e.stats().client_lookups == 1);
    CHECK(e.stats().process_lookups == 1);  // one /proc read for all five
}

// Regression: with a real smbd, `smbclient -c 'get file /dev/null'` produced records
// without CUSTGUARD_CLIENT. The client hangs up right after its request; the socket smbd
// still held was in CLOSE_WAIT (no longer ESTABLISHED) when the pipeline enriched, or
// smbd had exited altogether. tests/samba has the end-to-end case.
TEST_CASE("a Samba client that already hung up is still found while smbd holds the socket", "[unit]") {
    FakeSmbd smbd("smbd");
    smbd.hang_up();
    const std::uint16_t ports[] = {smbd.port};
    auto peer = find_tcp_peer_socket(smbd.config(), static_cast<std::uint32_t>(smbd.pid), ports);
    CHECK(peer.address == "127.0.0.1");
    CHECK(peer.fd >= 0);
    CHECK(peer.inode != 0);
}

TEST_CASE("Samba processes are recognised by comm, executable, or smbd[CLIENT]", "[unit]") {
    const EnrichConfig cfg;
    struct Case {
        const char* comm;
        const char* exe;
        bool samba;
    };
    const Case cases[] = {
        {"smbd", "", true},
        {"smbd", "/usr/sbin/smbd", true},
        {"whatever", "/usr/sbin/smbd", true},  // comm changed by the process itself
        {"smbd[10.66.1.2]", "", true},         // newer Samba names connection processes so
        {"smbd[10.66.123.", "", true},         // ... cut to 15 bytes in comm
        {"smbd-notifyd", "", false},           // holds no client connection
        {"smbdx", "", false},
        {"cat", "/usr/bin/cat", false},
        {"", "", false},
    };
    for (const auto& c : cases) {
        INFO(c.comm << " " << c.exe);
        CHECK(is_samba_program(cfg, c.comm, c.exe) == c.samba);
    }
}

TEST_CASE("SambaClients: one lookup per connection process, then a readlink", "[unit]") {
    FakeSmbd smbd("smbd");
    SambaClients clients(smbd.config());
    const auto pid = static_cast<std::uint32_t>(smbd.pid);
    CHECK(clients.client(pid, "smbd") == "127.0.0.1");
    CHECK(clients.lookups() == 1);
    CHECK(clients.client(pid, "smbd") == "127.0.0.1");
    CHECK(clients.lookups() == 1);
    CHECK(clients.hits() == 1);
    // Not a Samba program: nothing, and no lookup.
    CHECK(clients.client(static_cast<std::uint32_t>(::getpid()), "tester").empty());
    CHECK(clients.lookups() == 1);
    // A process without a client connection: looked up, nothing found, nothing cached.
    CHECK(clients.client(static_cast<std::uint32_t>(::getpid()), "smbd").empty());
    CHECK(clients.lookups() == 2);
}

TEST_CASE("SambaClients: a cached pid whose socket is gone is looked up again", "[unit]") {
    auto first = std::make_unique<FakeSmbd>("smbd");
    const auto pid = static_cast<std::uint32_t>(first->pid);
    SambaClients clients(first->config());
    CHECK(clients.client(pid, "smbd") == "127.0.0.1");
    first.reset();  // the process exited: its pid may come back as another smbd
    CHECK(clients.client(pid, "smbd").empty());
    CHECK(clients.lookups() == 2);
}

// allow_clients needs every address an smbd serves, including a channel handed to it after
// the last look: the answer is cached only for the same set of sockets.
TEST_CASE("SambaClients::served lists every client address of a process, also one that joined later", "[unit]") {
    MultichannelSmbd smbd;
    const auto pid = static_cast<std::uint32_t>(smbd.pid);
    SambaClients clients(smbd.config());
    auto none = clients.served(pid);
    CHECK(none.addresses.empty());
    CHECK(none.why == "it holds no client connection");
    smbd.next("127.0.0.2");
    CHECK(clients.served(pid).addresses == std::vector<std::string>{"127.0.0.2"});
    CHECK(clients.served(pid).addresses == std::vector<std::string>{"127.0.0.2"});
    CHECK(clients.hits() == 1);  // same sockets: the TCP tables were not read again
    smbd.next("127.0.0.3");
    CHECK(clients.served(pid).addresses == std::vector<std::string>{"127.0.0.2", "127.0.0.3"});
    // A process that is gone: nothing established, and it says why.
    auto gone = clients.served(0x7ffffff0u);
    CHECK(gone.addresses.empty());
    CHECK(gone.why.find("could not be read") != std::string::npos);
}

// The watcher reads its notifications after the fact: a short session's smbd has exited
// by then, and what a lookup said while it lived is all there is (regression: the client
// of files smbd wrote was left out).
TEST_CASE("SambaClients::recent names what the last lookup of a process found, for a while after it exited",
          "[unit]") {
    std::uint32_t pid = 0;
    std::optional<SambaClients> clients;
    {
        MultichannelSmbd smbd;
        pid = static_cast<std::uint32_t>(smbd.pid);
        clients.emplace(smbd.config());
        CHECK(clients->recent(pid, 30s).empty());  // never looked up
        smbd.next("127.0.0.2");
        smbd.next("127.0.0.3");
        CHECK(clients->served(pid).addresses.size() == 2);
    }
    CHECK(clients->served(pid).addresses.empty());  // gone: nothing more to look up
    CHECK(clients->recent(pid, 30s) == std::vector<std::string>{"127.0.0.2", "127.0.0.3"});
    std::this_thread::sleep_for(5ms);
    CHECK(clients->recent(pid, 1ms).empty());  // too old
    CHECK(clients->recent(pid + 1, 30s).empty());

    // The BPF socket iterator's answers are remembered too.
    EnrichConfig cfg;
    cfg.held_sockets = [](std::uint32_t) {
        return std::optional<std::vector<HeldTcpSocket>>{{{445, 1, "192.0.2.2"}, {445, 8, "192.0.2.9"}}};
    };
    SambaClients listed(cfg);
    CHECK(listed.served(4242).addresses.size() == 2);
    CHECK(listed.recent(4242, 30s) == std::vector<std::string>{"192.0.2.2", "192.0.2.9"});
}

// What the exec tracker read in the fork of an smbd (bpf/cg_exec.bpf.c, cg_exec_peer):
// the client of a session that was over before anyone looked (a put that hangs up at once).
TEST_CASE("SambaClients::held_at_fork names the client connections an smbd held from birth, once it has exited",
          "[unit]") {
    SambaClients clients;
    const std::uint32_t pid = 0x7ffffff1u;  // no such process: nothing is looked up
    struct Row {
        const char* what;
        HeldTcpSocket socket;
        bool kept;
    };
    const Row rows[] = {
        {"established on 445", {445, 1, "192.0.2.2"}, true},
        {"closing (CLOSE_WAIT) on 139", {139, 8, "192.0.2.3"}, true},
        {"another port", {8080, 1, "192.0.2.4"}, false},
        {"listening", {445, 10, ""}, false},
        {"no peer", {445, 1, ""}, false},
    };
    for (const auto& r : rows) {
        INFO(r.what);
        SambaClients one;
        one.held_at_fork(pid, 100, r.socket);
        CHECK(one.recent(pid, 30s) == (r.kept ? std::vector<std::string>{r.socket.peer} : std::vector<std::string>{}));
    }
    // The connections of one fork add up; a later fork of the same pid replaces them.
    clients.held_at_fork(pid, 100, {445, 1, "192.0.2.9"});
    clients.held_at_fork(pid, 100, {445, 1, "192.0.2.2"});
    clients.held_at_fork(pid, 100, {445, 1, "192.0.2.2"});
    CHECK(clients.recent(pid, 30s) == std::vector<std::string>{"192.0.2.2", "192.0.2.9"});
    clients.held_at_fork(pid, 200, {445, 1, "192.0.2.5"});
    CHECK(clients.recent(pid, 30s) == std::vector<std::string>{"192.0.2.5"});
    // The age counts from the exit: the pid cannot come back before it.
    std::this_thread::sleep_for(20ms);
    CHECK(clients.recent(pid, 10ms).empty());
    clients.exited(pid);
    CHECK(clients.recent(pid, 10ms) == std::vector<std::string>{"192.0.2.5"});
    clients.exited(pid + 1);  // never seen: nothing made up
    CHECK(clients.recent(pid + 1, 30s).empty());
}

// Regression: with a real smbd, records of short sessions had an empty CUSTGUARD_EXE and
// no CUSTGUARD_PROCESS_EXITED: the connection process was a zombie (exited, not yet reaped
// by the main smbd), whose comm and status can still be read but not its exe.
TEST_CASE("a zombie process is reported as exited, with what is left of it", "[unit]") {
    pid_t child = ::fork();
    if (child == 0) {
        ::prctl(PR_SET_NAME, "smbd");
        ::_exit(0);
    }
    // Not reaped yet: wait until it is a zombie.
    bool zombie = false;
    for (int i = 0; i < 500 && !zombie; ++i) {
        zombie = slurp(fmt::format("/proc/{}/status", child)).find("State:\tZ") != std::string::npos;
        if (!zombie) std::this_thread::sleep_for(2ms);
    }
    REQUIRE(zombie);
    Enricher e;
    auto info = e.process(static_cast<std::uint32_t>(child), 0, 0);
    CHECK(info.exited);
    CHECK(info.comm == "smbd");
    CHECK(info.ppid == static_cast<std::uint32_t>(::getpid()));
    CHECK(info.exe.empty());
    CHECK(e.stats().exited == 1);
    auto ev = self_event(CG_DECISION_DENY);
    ev.raw.pid = ev.raw.tgid = static_cast<std::uint32_t>(child);
    const std::vector<std::string> zones = {"customers"};
    CHECK(*e.enrich(ev, zones).get(field::process_exited) == "1");
    ::waitpid(child, nullptr, 0);
    // A live process is not.
    CHECK_FALSE(e.process(static_cast<std::uint32_t>(::getpid()), 0, 0).exited);
}

// Regression: one more window, seen once in tests/samba: in exit() the process has
// released its memory (no exe any more) but is not a zombie yet; PF_EXITING tells.
TEST_CASE("an exiting process is told by PF_EXITING in /proc/PID/stat", "[unit]") {
    struct Case {
        const char* stat;
        bool exiting;
    };
    const Case cases[] = {
        {"4242 (smbd) R 4200 4200 4200 0 -1 4194372 0 0", true},           // 0x400044: PF_EXITING set
        {"4242 (smbd) S 4200 4200 4200 0 -1 4194624 0 0", false},          // 0x400140
        {"4242 (smbd) Z 4200 4200 4200 0 -1 4228108 0 0", true},           // a zombie: 0x40840c
        {"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0", false},                  // PF_KTHREAD only
        {"77 (a) b (c) R 1 77 77 0 -1 4 0 0", true},                       // comm with ") ("
        {"77 (x) R 1 77", false},                                          // cut short
        {"garbage", false},
    };
    for (const auto& c : cases) {
        INFO(c.stat);
        CHECK(process_exiting(c.stat) == c.exiting);
    }
    CHECK_FALSE(process_exiting(slurp("/proc/self/stat")));
}

// Regression (same as above): the client the sensor found while smbd waited for the answer
// is what the record carries, even when smbd has exited by the time it is enriched.
TEST_CASE("the record carries the client the sensor found, though smbd is gone", "[unit]") {
    pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    ::waitpid(child, nullptr, 0);
    auto ev = self_event(CG_DECISION_DENY);
    ev.raw.pid = ev.raw.tgid = static_cast<std::uint32_t>(child);
    std::strncpy(ev.raw.comm, "smbd", sizeof ev.raw.comm);
    ev.client = "10.66.1.2";
    Enricher e;
    const std::vector<std::string> zones = {"customers"};
    Record r = e.enrich(ev, zones);
    CHECK(*r.get(field::process_exited) == "1");
    CHECK(*r.get(field::client) == "10.66.1.2");
    CHECK(r.message.find("from 10.66.1.2") != std::string::npos);
}

// An allow_clients refusal by the BPF-LSM enforcer: the rule's name and the client the
// kernel recorded (rule 10 is shared with the fanotify enforcer).
TEST_CASE("a client_not_allowed denial names its rule and the client", "[unit]") {
    auto ev = self_event(CG_DECISION_DENY);
    ev.raw.rule = CG_RULE_CLIENT_NOT_ALLOWED;
    ev.client = "198.51.100.2";
    Enricher e;
    Record r = e.enrich(ev, std::vector<std::string>{"customers"});
    CHECK(*r.get(field::rule) == "client_not_allowed");
    CHECK(*r.get(field::client) == "198.51.100.2");
}

TEST_CASE("builders never carry matched data: names and counts only", "[unit]") {
    PrintJob job;
    job.printer = "secure-3f";
    job.job = "42";
    job.user = "alice";
    job.detector_hits = {{"my_number", 2}, {"credit_card", 5}, {"email", 0}};
    Record r = make_print_record(job, PrintDecision::deny, "customer data");
    CHECK(r.kind == Kind::print);
    CHECK(*r.get(field::detectors) == "credit_card:5,my_number:2");
    CHECK(*r.get(field::hits) == "7");
    CHECK(*r.get(field::decision) == "deny");
    CHECK(r.message == "print job 42 on secure-3f by alice: deny (7 detector hits): customer data");

    Record lost = make_lost_record("bpf_lsm", 12, "ring buffer full");
    CHECK(*lost.get(field::lost_count) == "12");
    CHECK(lost.message == "12 events lost (bpf_lsm): ring buffer full");

    Record reload = make_policy_reload_record({true, "/etc/custguard/policy.toml", "abc", 3, 0, 1, ""});
    CHECK(*reload.get(field::policy_result) == "accepted");
    CHECK(reload.get(field::diagnostics) == nullptr);

    Record bulk = make_bulk_read_record({1000, "alice", "customers", 201, 600, "revoke", ""});
    CHECK(bulk.kind == Kind::bulk_read);
    CHECK(*bulk.get(field::action) == "revoke");
    CHECK(bulk.get(field::client) == nullptr);
}

TEST_CASE("JSON lines with the ECS mapping", "[unit]") {
    Enricher e;
    auto ev = self_event(CG_DECISION_DENY);
    ev.path = "/srv/share/customers/\xe9\xa1\xa7\xe5\xae\xa2\n\xff.csv";  // 顧客, newline, invalid byte
    Record r = e.enrich(ev, std::vector<std::string>{"customers"});
    r.set(field::seq, 5);
    r.set(field::run, "0123");
    r.set("CUSTGUARD_SOMETHING_NEW", "x\"y");
    const std::string j = to_json_line(r);
    INFO(j);
    CHECK(j.starts_with("{\"@timestamp\":\"2023-11-14T22:13:20.123456Z\","));
    CHECK(j.find("\"file\":{\"inode\"") == std::string::npos);  // ino 0 is not written
    CHECK(j.find("\"path\":\"/srv/share/customers/\xe9\xa1\xa7\xe5\xae\xa2\\n\xef\xbf\xbd.csv\"") != std::string::npos);
    CHECK(j.find("\"sequence\":5") != std::string::npos);
    CHECK(j.find("\"outcome\":\"failure\"") != std::string::npos);
    CHECK(j.find("\"code\":\"af36e5e89027472db73bb8be382ec767\"") != std::string::npos);
    CHECK(j.find("\"category\":[\"file\"]") != std::string::npos);
    CHECK(j.find("\"pid\":" + std::to_string(::getpid())) != std::string::npos);
    CHECK(j.find("\"zone\":{\"id\":1,\"name\":\"customers\"}") != std::string::npos);
    CHECK(j.find("\"something_new\":\"x\\\"y\"") != std::string::npos);
    CHECK(j.find("\"user\":{\"id\":\"" + std::to_string(::getuid()) + "\"") != std::string::npos);
    CHECK(j.find('\n') == std::string::npos);
    CHECK(ecs_name("CUSTGUARD_CLIENT") == "client.ip");
    CHECK(ecs_name("CUSTGUARD_AUID") == "user.audit.id");
    CHECK(ecs_name("CUSTGUARD_PRINTER") == "custguard.printer");

    const std::string line = format_line(r);
    CHECK(line.starts_with("DENIED    "));
    CHECK(line.find("seq=5") != std::string::npos);
    CHECK(line.find('\n') == std::string::npos);
}

// Regression guard: the ECS table of custguard.journal(7) and export.cpp's table drift apart
// silently (a SIEM mapping written from the man page then misses or misnames fields).
TEST_CASE("the ECS table of custguard.journal(7) and the export's table agree, both ways", "[unit]") {
    const std::string page = slurp(CUSTGUARD_SOURCE_DIR "/man/custguard.journal.7");
    const auto section = page.find(".SH JSON LINES EXPORT");
    REQUIRE(section != std::string::npos);
    const auto ts = page.find(".TS\n", section);
    const auto te = page.find(".TE\n", ts);
    REQUIRE(ts != std::string::npos);
    REQUIRE(te != std::string::npos);

    // Rows "ecs.key<TAB>CUSTGUARD_FIELD" or "... (number)"; the other rows (event.kind,
    // @timestamp from CUSTGUARD_TIME_USEC, ...) are not taken from one field as is.
    const std::regex row(R"(^([a-z_.@]+)\t(CUSTGUARD_[A-Z0-9_]+)( \(number\))?$)");
    std::set<std::tuple<std::string, std::string, bool>> in_page;
    std::istringstream table(page.substr(ts, te - ts));
    for (std::string l; std::getline(table, l);) {
        std::smatch m;
        if (std::regex_match(l, m, row)) in_page.emplace(m[2].str(), m[1].str(), m[3].matched);
    }
    std::set<std::tuple<std::string, std::string, bool>> in_code;
    for (const auto& m : ecs_mappings()) in_code.emplace(std::string(m.journald), std::string(m.ecs), m.number);

    REQUIRE(in_code.size() == ecs_mappings().size());
    for (const auto& [field, key, number] : in_code) {
        INFO("export.cpp maps " << field << " -> " << key << (number ? " (number)" : "") << "; the man page does not");
        CHECK(in_page.contains({field, key, number}));
    }
    for (const auto& [field, key, number] : in_page) {
        INFO("the man page maps " << field << " -> " << key << (number ? " (number)" : "") << "; export.cpp does not");
        CHECK(in_code.contains({field, key, number}));
    }
}

TEST_CASE("spool: bounded, ordered, persistent, torn tails cut off", "[unit]") {
    TempDir dir;
    const auto path = dir.path / "s" / "journal.spool";
    {
        auto s = Spool::open(path, 200);
        REQUIRE(s);
        CHECK(s->empty());
        CHECK(*s->append(std::string(50, 'a')) == true);
        CHECK(*s->append(std::string(50, 'b')) == true);
        CHECK(*s->append(std::string(50, 'c')) == true);
        CHECK(*s->append(std::string(50, 'd')) == false);  // 16 + 3 * 54 + 54 > 200
        CHECK(s->pending_records() == 3);
        auto f = s->read_at(s->begin());
        REQUIRE(f);
        REQUIRE(*f);
        CHECK((*f)->datagram == std::string(50, 'a'));
        REQUIRE(s->commit((*f)->next, 1));
        CHECK(s->pending_records() == 2);
    }
    {
        auto s = Spool::open(path, 200);  // reopened: offset persisted
        REQUIRE(s);
        CHECK(s->pending_records() == 2);
        auto f = s->read_at(s->begin());
        CHECK((*f)->datagram == std::string(50, 'b'));
        auto g = s->read_at((*f)->next);
        CHECK((*g)->datagram == std::string(50, 'c'));
        CHECK_FALSE(*s->read_at((*g)->next));
        REQUIRE(s->commit((*g)->next, 2));
        CHECK(s->empty());
        CHECK(s->size_bytes() == 16);  // compacted
        CHECK(*s->append("e") == true);
    }
    {
        // A crash in the middle of an append leaves half a frame.
        std::ofstream(path, std::ios::app) << std::string("\x40\0\0\0abc", 7);
        auto s = Spool::open(path, 200);
        REQUIRE(s);
        CHECK(s->pending_records() == 1);
        CHECK(s->corrupt_bytes() == 7);
        CHECK((*s->read_at(s->begin()))->datagram == "e");
    }
    {
        std::ofstream(path, std::ios::trunc) << "garbage";
        auto s = Spool::open(path, 200);
        REQUIRE(s);
        CHECK(s->empty());
        CHECK(s->corrupt_bytes() == 7);
    }
}

TEST_CASE("pipeline without journald: JSONL export, gap-free seq, counters", "[unit]") {
    TempDir dir;
    PipelineConfig cfg;
    cfg.journal = false;
    cfg.state_dir = dir.path;
    cfg.jsonl_path = dir.path / "events.jsonl";
    auto p = Pipeline::create(cfg);
    REQUIRE(p);
    (*p)->set_zone_names({"customers"});
    for (int i = 0; i < 100; ++i) REQUIRE((*p)->submit(self_event(CG_DECISION_ALLOW)));
    REQUIRE((*p)->submit(make_admin_change_record("root", 0, "allow-user", "bob")));
    (*p)->report_lost("fanotify", 3, "queue overflow");
    REQUIRE((*p)->flush(10s));
    const auto c = (*p)->counters();
    (*p)->stop();
    CHECK(c.submitted == 101);
    CHECK(c.seq == 102);
    CHECK(c.lost == 3);
    CHECK(c.jsonl_written == 102);
    CHECK(c.jsonl_errors == 0);
    CHECK(c.run_id.size() == 32);
    std::ifstream in(*cfg.jsonl_path);
    std::string line;
    std::uint64_t n = 0;
    while (std::getline(in, line)) {
        ++n;
        REQUIRE(line.find(fmt::format("\"sequence\":{},", n)) != std::string::npos);
    }
    CHECK(n == 102);
}

namespace {

// Voluntary context switches of this process's threads, by thread id.
std::map<std::string, long> voluntary_switches_by_thread() {
    std::map<std::string, long> out;
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
        std::ifstream in(task.path() / "status");
        std::string line;
        while (std::getline(in, line))
            if (line.starts_with("voluntary_ctxt_switches:")) out[task.path().filename()] = std::stol(line.substr(24));
    }
    return out;
}

}  // namespace

TEST_CASE("records a few ms apart wake the pipeline's threads once each, also while journald reads late", "[unit]") {
    // A journald stand-in that reads what queued every 4 ms, later than the writer looks
    // right after a send: each record is still unread then. Records come every 5 ms, as an
    // SMB client's reads do. The enricher wakes once per event and the writer once per
    // record; it used to wake a second time 2 ms after each send to see whether journald
    // had read it, and each thread often a third time, for the queue's lock that its waker
    // still held.
    TempDir dir;
    const std::string path = (dir.path / "journal.socket").string();
    const int server = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    REQUIRE(server >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    std::atomic<bool> reading{true};
    std::atomic<int> received{0};
    std::thread reader([&] {
        char buf[65536];
        while (reading) {
            std::this_thread::sleep_for(4ms);
            while (::recv(server, buf, sizeof buf, 0) > 0) ++received;
        }
    });
    const auto before = voluntary_switches_by_thread();
    PipelineConfig cfg;
    cfg.state_dir = dir.path;
    cfg.journal_socket = path;
    auto p = Pipeline::create(cfg);
    REQUIRE(p);
    (*p)->set_zone_names({"customers"});
    REQUIRE((*p)->submit(self_event(CG_DECISION_ALLOW)));  // the first /proc reads and NSS lookups
    REQUIRE((*p)->flush(10s));
    std::this_thread::sleep_for(100ms);  // past the writer's look after the first record
    const auto start = voluntary_switches_by_thread();
    constexpr int records = 60;
    for (int i = 0; i < records; ++i) {
        REQUIRE((*p)->submit(self_event(CG_DECISION_ALLOW)));
        std::this_thread::sleep_for(5ms);
    }
    const auto end = voluntary_switches_by_thread();
    REQUIRE((*p)->flush(10s));
    const auto c = (*p)->counters();
    (*p)->stop();
    reading = false;
    reader.join();
    ::close(server);
    CHECK(c.journal_written == records + 1);
    CHECK(c.spooled == 0);
    CHECK(received == records + 1);
    // The pipeline's threads: the ones that started with it.
    long switches = 0;
    int threads = 0;
    for (const auto& [tid, n] : end)
        if (!before.contains(tid) && start.contains(tid)) {
            switches += n - start.at(tid);
            ++threads;
        }
    CHECK(threads == 2);
    INFO("voluntary switches of the enricher and the writer: " << switches << " for " << records << " records");
    // Once each per record: 2 (and a few for the scheduler's whims); it was 3 to 4.
    CHECK(switches <= records * 5 / 2);
}

TEST_CASE("a full input queue drops, counts and reports the loss in a lost record", "[unit]") {
    TempDir dir;
    PipelineConfig cfg;
    cfg.journal = false;
    cfg.state_dir = dir.path;
    cfg.jsonl_path = dir.path / "events.jsonl";
    cfg.input_capacity = 4;
    cfg.submit_wait = 0ms;
    cfg.repeats.burst = 0;  // every accepted event is a record here: this is about the queue
    auto p = Pipeline::create(cfg);
    REQUIRE(p);
    std::uint64_t refused = 0;
    for (int i = 0; i < 5000; ++i)
        if (!(*p)->submit(self_event(CG_DECISION_DENY))) ++refused;
    REQUIRE((*p)->flush(10s));
    const auto c = (*p)->counters();
    (*p)->stop();
    REQUIRE(refused > 0);  // 5000 events into a queue of 4 without waiting
    CHECK(c.dropped_queue_full == refused);
    CHECK(c.lost == refused);
    CHECK(c.submitted == 5000 - refused);
    CHECK(c.seq == c.submitted + c.lost_records);
    const std::string text = slurp(*cfg.jsonl_path);
    CHECK(text.find("\"lost_source\":\"pipeline-queue\"") != std::string::npos);
}

TEST_CASE("foreground lines go through spdlog at the record's level", "[unit]") {
    std::ostringstream out;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
    auto logger = std::make_shared<spdlog::logger>("events-test", sink);
    logger->set_pattern("%l %v");
    Record denied = make_lost_record("fanotify", 2, "queue overflow");
    denied.set(field::seq, 9);
    log_record(*logger, denied);
    Record print = make_print_record({"p1", "3", "bob"}, PrintDecision::allow);
    log_record(*logger, print);
    logger->flush();
    CHECK(out.str() == "error LOST      2 events lost (fanotify): queue overflow seq=9\n"
                       "info PRINT     print job 3 on p1 by bob: allow\n");
}

TEST_CASE("spool: the bound is on unreplayed bytes, replayed blocks are freed while draining", "[unit]") {
    TempDir dir;
    const auto path = dir.path / "journal.spool";
    auto s = Spool::open(path, 4u << 20);
    REQUIRE(s);
    const std::string record(1000, 'r');
    std::uint64_t appended = 0;
    while (*s->append(record)) ++appended;
    CHECK(appended == ((4u << 20) - 16) / 1004);
    // Replay half of it, then the freed room takes new records although the file grows.
    std::uint64_t cursor = s->begin();
    for (std::uint64_t i = 0; i < appended / 2; ++i) cursor = (*s->read_at(cursor))->next;
    REQUIRE(s->commit(cursor, appended / 2));
    std::uint64_t more = 0;
    while (*s->append(record)) ++more;
    CHECK(more == appended / 2);
    CHECK(s->pending_records() == appended);
    CHECK(s->size_bytes() <= (4u << 20));
    struct stat st{};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK(static_cast<std::uint64_t>(st.st_size) > (4u << 20));                 // offsets keep growing,
    CHECK(static_cast<std::uint64_t>(st.st_blocks) * 512 <= (4u << 20) + 8192);  // the disk use does not
    // Everything still comes out in order.
    std::uint64_t n = 0;
    for (auto f = s->read_at(s->begin()); *f; f = s->read_at((**f).next)) {
        CHECK((**f).datagram == record);
        ++n;
    }
    CHECK(n == appended);
}

// Regression: seen in tests/samba under load: the smbd connection process was reaped between
// the enricher's reads (comm still read, then exe, status and stat gone), and the record
// showed a live process without exe or parent instead of CUSTGUARD_PROCESS_EXITED=1.
TEST_CASE("a process that vanishes between the reads is reported as exited", "[unit]") {
    namespace fs = std::filesystem;
    char tmpl[] = "/tmp/cgproc.XXXXXX";
    REQUIRE(::mkdtemp(tmpl));
    const fs::path root = tmpl;
    fs::create_directories(root / "4242");
    std::ofstream(root / "4242" / "comm") << "smbd\n";  // only what was read before it went
    EnrichConfig config;
    config.proc_root = root.string();
    Enricher e(config);
    auto info = e.process(4242, 0, 0);
    CHECK(info.exited);
    CHECK(info.comm == "smbd");
    // With its stat file there (alive, not exiting) it is not.
    std::ofstream(root / "4242" / "stat") << "4242 (smbd) S 1 4242 4242 0 -1 4194560 0 0\n";
    Enricher alive(config);
    CHECK_FALSE(alive.process(4242, 0, 0).exited);
    fs::remove_all(root);
}
