// allow_clients in the kernel, with a real Samba: smbd in a network namespace of its own,
// smbclient from two other namespaces with different TEST-NET addresses, the same user.
// The BPF-LSM enforcer decides the opens smbd makes for each client from the peers its
// socket_recvmsg hook recorded; no user space is asked.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <thread>
#include <string>
#include <vector>

#include <sys/prctl.h>
#include <sys/stat.h>

#include "enforced.hpp"
#include "support/support.hpp"
#include "samba_fixture.hpp"
#include "vm_support.hpp"

using namespace custguard;
using namespace custguard::vmtest;
using custguard::daemon::AccessEvent;
namespace fs = std::filesystem;

namespace {

// smbd's namespace with one veth pair per client namespace, each on its own TEST-NET.
class ClientNets {
public:
    struct Client {
        std::string ns, ip, server_ip;
    };

    ClientNets()
    {
        remove();
        step({"/usr/sbin/ip", "netns", "add", server_});
        step({"/usr/sbin/ip", "-n", server_, "link", "set", "lo", "up"});
        for (std::size_t i = 0; i < clients_.size(); ++i) {
            const auto& c = clients_[i];
            const std::string here = "cgs" + std::to_string(i), there = "cgc" + std::to_string(i);
            step({"/usr/sbin/ip", "netns", "add", c.ns});
            step({"/usr/sbin/ip", "-n", server_, "link", "add", here, "type", "veth", "peer", "name", there,
                  "netns", c.ns});
            step({"/usr/sbin/ip", "-n", server_, "addr", "add", c.server_ip + "/24", "dev", here});
            step({"/usr/sbin/ip", "-n", c.ns, "addr", "add", c.ip + "/24", "dev", there});
            step({"/usr/sbin/ip", "-n", server_, "link", "set", here, "up"});
            step({"/usr/sbin/ip", "-n", c.ns, "link", "set", there, "up"});
            step({"/usr/sbin/ip", "-n", c.ns, "link", "set", "lo", "up"});
        }
    }
    ~ClientNets() { remove(); }

    const std::string& server() const { return server_; }
    const Client& allowed() const { return clients_[0]; }
    const Client& other() const { return clients_[1]; }

private:
    void step(const std::vector<std::string>& argv)
    {
        auto r = cgsmb::run(argv);
        INFO(argv[1] << " " << argv[2] << ": " << r.output);
        REQUIRE(r.status == 0);
    }
    void remove()
    {
        for (const auto& ns : {server_, clients_[0].ns, clients_[1].ns})
            if (fs::exists("/run/netns/" + ns))
                cgsmb::run({"/usr/sbin/ip", "netns", "delete", ns});
    }

    std::string server_ = "cgvm-smb";
    std::vector<Client> clients_ = {{"cgvm-cli-a", "192.0.2.2", "192.0.2.1"},
                                    {"cgvm-cli-b", "198.51.100.2", "198.51.100.1"}};
};

struct SmbScene {
    std::string dir = fresh_dir("smb");
    cgsmb::WritableEtc etc{dir};  // useradd and smbpasswd on the guest's read-only root
    std::string share = dir + "/share";
    std::string zone = share + "/customers";
    std::string zone_file = zone + "/list.csv";
    std::unique_ptr<cgsmb::TestUser> user;
    ClientNets nets;
    std::unique_ptr<cgsmb::ScratchSmbd> smbd;

    SmbScene()
    {
        // smbd's connection processes are orphaned when it stops: ours to reap.
        ::prctl(PR_SET_CHILD_SUBREAPER, 1);
        make_dir(share, 0777);
        make_dir(zone, 0777);
        write_file(zone_file, "name,phone\nYamada Taro,03-1234-5678\n", 0644);
        write_file(share + "/public.txt", "not customer data\n", 0644);
        user = std::make_unique<cgsmb::TestUser>("cgvm-alice", "Alice-pw-1");
        smbd = std::make_unique<cgsmb::ScratchSmbd>(dir + "/samba", nets.server(), share,
                                                    std::vector<const cgsmb::TestUser*>{user.get()});
        // Listening is not serving yet (smbd-notifyd registers later): probe with a
        // listing outside the zone until it answers.
        for (int i = 0;; ++i) {
            auto probe = get(nets.allowed(), "public.txt");
            if (probe.status == 0)
                break;
            INFO(probe.output << "\n" << smbd->log());
            REQUIRE(i < 100);
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
        }
    }

    // smbclient from `client`'s namespace: get `name` (relative to the share).
    cgsmb::Result get(const ClientNets::Client& client, const std::string& name)
    {
        return cgsmb::run({"/usr/bin/smbclient", "//" + client.server_ip + "/share", "-s",
                           smbd->client_conf().string(), "-U", user->name() + "%" + user->password(), "-c",
                           "get " + name + " /dev/null"},
                          {}, client.ns, std::chrono::seconds(120));
    }

    policy::Compiled policy(policy::Violation on_violation, std::vector<policy::ClientRow> clients) const
    {
        auto p = make_policy({ZoneSpec{{zone}, {user->uid()}, {}, {}, on_violation}});
        p.zones[0].clients_required = true;
        for (auto& c : clients)
            c.zone_id = 1;
        p.clients = std::move(clients);
        return p;
    }
};

policy::ClientRow net4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d, std::uint8_t prefix)
{
    return policy::ClientRow{0, 4, prefix, {a, b, c, d}};
}

bool is_smbd_open(const AccessEvent& ev, std::uint32_t uid, std::uint32_t decision, std::uint32_t rule)
{
    return ev.raw.kind == CG_EV_OPEN && ev.raw.uid == uid && ev.raw.decision == decision &&
           ev.raw.rule == rule && std::string(ev.raw.comm).starts_with("smbd");
}

// The real custguardd (BPF LSM, no journal, no audit, no bus), up once its control plane
// gave up on the missing bus, i.e. once the policy is applied.
pid_t start_custguardd(const std::string& dir)
{
    const std::string log = dir + "/custguardd.log";
    cgtest::spit(log, "");
    pid_t pid = cgtest::spawn({CG_CUSTGUARDD, "--policy", dir + "/policy.toml", "--state-dir", dir + "/state",
                               "--enforcer", "bpf-lsm", "--no-journal", "--no-audit", "--bus-address",
                               "unix:path=/nonexistent"},
                              {}, log);
    bool up = false, exited = false;
    for (int i = 0; i < 600 && !up && !exited; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        up = cgtest::slurp(log).find("control plane off") != std::string::npos;
        exited = ::waitpid(pid, nullptr, WNOHANG) == pid;
    }
    INFO(cgtest::slurp(log));
    REQUIRE_FALSE(exited);
    REQUIRE(up);
    return pid;
}

bool denied(const cgsmb::Result& r) { return r.status != 0 && r.output.find("NT_STATUS_ACCESS_DENIED") != std::string::npos; }

}  // namespace

TEST_CASE("clients: smbd serves a zone only to allowed client machines, decided in the kernel", "[vm][clients]")
{
    // One smbd for every step (a boot under TCG is slow); each smbclient run is a new
    // connection and so a new smbd process with peers of its own.
    SmbScene s;
    const auto& a = s.nets.allowed();
    const auto& b = s.nets.other();

    INFO("deny: the allowed network reads, the other address is refused and recorded");
    {
        Enforced e(s.policy(policy::Violation::deny, {net4(192, 0, 2, 0, 24)}));
        auto ok = s.get(a, "customers/list.csv");
        INFO(ok.output);
        CHECK(ok.status == 0);
        CHECK(e.events.wait_for([&](const AccessEvent& ev) {
            return is_smbd_open(ev, s.user->uid(), CG_DECISION_ALLOW, CG_RULE_USER) && ev.client == a.ip;
        }));
        auto no = s.get(b, "customers/list.csv");
        INFO(no.output);
        CHECK(denied(no));
        CHECK(e.events.wait_for([&](const AccessEvent& ev) {
            return is_smbd_open(ev, s.user->uid(), CG_DECISION_DENY, CG_RULE_CLIENT_NOT_ALLOWED) &&
                   ev.client == b.ip;
        }));
        // Outside the zone both clients read; a local reader of the zone is not an smbd.
        CHECK(s.get(b, "public.txt").status == 0);
        CHECK(try_read(Creds{s.user->uid(), s.user->uid(), {}}, s.zone_file) == 0);
    }

    INFO("a single address (/32) allows that host only");
    {
        Enforced e(s.policy(policy::Violation::deny, {net4(198, 51, 100, 2, 32)}));
        CHECK(s.get(b, "customers/list.csv").status == 0);
        CHECK(denied(s.get(a, "customers/list.csv")));
    }

    INFO("audit: the other address reads and is recorded");
    {
        Enforced e(s.policy(policy::Violation::audit, {net4(192, 0, 2, 0, 24)}));
        CHECK(s.get(b, "customers/list.csv").status == 0);
        CHECK(e.events.wait_for([&](const AccessEvent& ev) {
            return is_smbd_open(ev, s.user->uid(), CG_DECISION_AUDIT, CG_RULE_CLIENT_NOT_ALLOWED) &&
                   ev.client == b.ip;
        }));
    }

    INFO("no numeric entry (only an unresolved host name): every client is refused");
    {
        Enforced e(s.policy(policy::Violation::deny, {}));
        CHECK(denied(s.get(a, "customers/list.csv")));
        CHECK(denied(s.get(b, "customers/list.csv")));
    }

    INFO("restart: kill -9 of the daemon and adoption keep deciding clients");
    {
        const auto p = s.policy(policy::Violation::deny, {net4(192, 0, 2, 0, 24)});
        pid_t daemon1 = spawn_enforcer(p, false);
        kill9(daemon1);
        // No daemon runs: the pinned programs and maps decide alone.
        CHECK(denied(s.get(b, "customers/list.csv")));
        CHECK(s.get(a, "customers/list.csv").status == 0);
        pid_t daemon2 = spawn_enforcer(p, true);
        CHECK(denied(s.get(b, "customers/list.csv")));
        CHECK(s.get(a, "customers/list.csv").status == 0);
        kill9(daemon2);
        daemon::bpf_lsm::BpfLsmEnforcer cleanup;
        REQUIRE(cleanup.start([](AccessEvent&&) {}));
        CHECK(cleanup.adopted());
        cleanup.stop(true);
        // Without enforcement the other client reads again: the refusals above were ours.
        CHECK(s.get(b, "customers/list.csv").status == 0);
    }

    INFO("custguardd: allow_clients from the policy file, kill -9 and a restart");
    {
        make_dir(s.dir + "/state", 0700);
        cgtest::spit(s.dir + "/policy.toml", "[[zone]]\nname = \"customers\"\npaths = [\"" + s.zone +
                                                 "\"]\nallow_users = [\"" + s.user->name() +
                                                 "\"]\nallow_clients = [\"192.0.2.0/24\"]\n");
        pid_t d = start_custguardd(s.dir);
        CHECK(denied(s.get(b, "customers/list.csv")));
        CHECK(s.get(a, "customers/list.csv").status == 0);
        kill9(d);
        CHECK(denied(s.get(b, "customers/list.csv")));
        d = start_custguardd(s.dir);
        CHECK(denied(s.get(b, "customers/list.csv")));
        CHECK(s.get(a, "customers/list.csv").status == 0);
        kill9(d);
        daemon::bpf_lsm::BpfLsmEnforcer cleanup;
        REQUIRE(cleanup.start([](AccessEvent&&) {}));
        CHECK(cleanup.adopted());
        cleanup.stop(true);
    }
}
