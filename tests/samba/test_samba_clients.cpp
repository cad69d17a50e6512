// allow_clients with a real Samba: smbd in its own network namespace, smbclient (and
// smbtorture) from client namespaces with different TEST-NET addresses, the real
// custguardd (fanotify enforcer) and a scratch journald. Proves the decision as each
// client machine sees it and the record (CUSTGUARD_CLIENT, CUSTGUARD_RULE) as a SIEM sees it.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "samba_fixture.hpp"
#include "support/support.hpp"

using cgsmb::ExtraClient;
using cgsmb::Scene;
using custguard::events::testing::JournalEntry;
using Clock = std::chrono::steady_clock;

namespace {

bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

const std::string get_zone_file = "get customers/list.csv /dev/null";

// The access record of `user` for the zone file with this decision and client, waited for.
std::optional<JournalEntry> wait_client_record(Scene& scene, const std::string& decision, const std::string& client,
                                               std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
    const auto deadline = Clock::now() + timeout;
    do {
        for (auto& e : scene.records_for(scene.zone_file))
            if (e["CUSTGUARD_USER"] == scene.alice->name() && e["CUSTGUARD_DECISION"] == decision &&
                e["CUSTGUARD_CLIENT"] == client && e["CUSTGUARD_OPERATION"] == "open")
                return e;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    } while (Clock::now() < deadline);
    return std::nullopt;
}

void check_refused(Scene& scene, const cgsmb::Result& r, const std::string& client) {
    INFO("smbclient from " << client << ": exit " << r.status << "\n" << r.output);
    CHECK(r.status != 0);
    CHECK(contains(r.output, "NT_STATUS_ACCESS_DENIED"));
    auto rec = wait_client_record(scene, "deny", client);
    INFO(scene.diagnostics());
    REQUIRE(rec);
    CHECK((*rec)["CUSTGUARD_RULE"] == "client_not_allowed");
    CHECK((*rec)["CUSTGUARD_EVENT"] == "access");
    CHECK((*rec)["CUSTGUARD_SENSOR"] == "fanotify");
    CHECK((*rec)["CUSTGUARD_COMM"] == "smbd");
    CHECK(contains((*rec)["MESSAGE"], "from " + client));
}

void check_allowed(Scene& scene, const cgsmb::Result& r, const std::string& client) {
    INFO("smbclient from " << client << ": exit " << r.status << "\n" << r.output);
    CHECK(r.status == 0);
    CHECK_FALSE(contains(r.output, "NT_STATUS_"));
    auto rec = wait_client_record(scene, "allow", client);
    INFO(scene.diagnostics());
    REQUIRE(rec);
    CHECK((*rec)["CUSTGUARD_RULE"] == "allowed_user");
}

}  // namespace

TEST_CASE("samba: allow_clients lets the listed machine read the zone and refuses another with the same user",
          "[samba][host][e2e][clients]") {
    REQUIRE(::geteuid() == 0);
    REQUIRE(cgsmb::enter_private_mounts());
    // 192.0.2.2 is the scene's client machine; 198.51.100.2 a second one.
    Scene scene(cgsmb::Backing::tmpfs, true, R"(allow_clients = ["192.0.2.2", "203.0.113.0/24"])");
    ExtraClient other(*scene.net, "b", "cgsmbb", "198.51.100.1", {"198.51.100.2"});
    ExtraClient network(*scene.net, "c", "cgsmbn", "203.0.113.1", {"203.0.113.9"});
    struct Case {
        const char* label;
        std::string ns, server, client;
        bool allowed;
    };
    const Case cases[] = {
        {"listed address", scene.net->client_ns(), scene.net->server_ip(), scene.net->client_ip(), true},
        {"address in a listed network", network.ns(), network.server_ip(), network.ip(), true},
        {"address not listed, same user and password", other.ns(), other.server_ip(), other.ip(), false},
    };
    for (const auto& c : cases) {
        SECTION(c.label) {
            auto r = scene.smbclient_from(c.ns, c.server, *scene.alice, get_zone_file);
            if (c.allowed)
                check_allowed(scene, r, c.client);
            else
                check_refused(scene, r, c.client);
        }
    }
    // Outside the zone the client list changes nothing.
    auto pub = scene.smbclient_from(other.ns(), other.server_ip(), *scene.alice, "get public.txt /dev/null");
    INFO(pub.output);
    CHECK(pub.status == 0);
}

TEST_CASE("samba: a host name in allow_clients is resolved forward at load and reload, never from what the client calls itself",
          "[samba][host][e2e][clients]") {
    REQUIRE(::geteuid() == 0);
    REQUIRE(cgsmb::enter_private_mounts());
    char tmpl[] = "/tmp/cgsmb-hosts.XXXXXX";
    REQUIRE(::mkdtemp(tmpl));
    const std::filesystem::path hosts_dir = tmpl;
    {
        // In this test's own mount namespace only (custguardd inherits it).
        cgsmb::HostsFile hosts(hosts_dir, "127.0.0.1 localhost\n198.51.100.2 laptop-b.example\n");
        Scene scene(cgsmb::Backing::tmpfs, true, R"(allow_clients = ["laptop-b.example"])");
        ExtraClient laptop(*scene.net, "b", "cgsmbb", "198.51.100.1", {"198.51.100.2"});
        check_allowed(scene, scene.smbclient_from(laptop.ns(), laptop.server_ip(), *scene.alice, get_zone_file),
                      laptop.ip());
        // The scene's client announces the listed name as its NetBIOS name: still refused.
        auto r = cgsmb::run({"/usr/bin/smbclient", "//" + scene.net->server_ip() + "/share", "-s",
                             scene.smbd->client_conf().string(), "-n", "laptop-b", "-U",
                             scene.alice->name() + "%" + scene.alice->password(), "-c", get_zone_file},
                            {}, scene.net->client_ns(), std::chrono::seconds(60));
        check_refused(scene, r, scene.net->client_ip());
        // The name moves to the other machine: resolved again at the reload.
        hosts.rewrite("127.0.0.1 localhost\n192.0.2.2 laptop-b.example\n");
        REQUIRE(scene.daemon->reload());
        check_allowed(scene, scene.smbclient(*scene.alice, get_zone_file), scene.net->client_ip());
        check_refused(scene, scene.smbclient_from(laptop.ns(), laptop.server_ip(), *scene.alice, get_zone_file),
                      laptop.ip());
    }
    std::error_code ec;
    std::filesystem::remove_all(hosts_dir, ec);
}

TEST_CASE("samba: a reload that removes a client address closes access within a second",
          "[samba][host][e2e][clients]") {
    REQUIRE(::geteuid() == 0);
    REQUIRE(cgsmb::enter_private_mounts());
    Scene scene(cgsmb::Backing::tmpfs, true, R"(allow_clients = ["192.0.2.2", "198.51.100.2"])");
    ExtraClient other(*scene.net, "b", "cgsmbb", "198.51.100.1", {"198.51.100.2"});
    check_allowed(scene, scene.smbclient_from(other.ns(), other.server_ip(), *scene.alice, get_zone_file), other.ip());

    scene.write_policy(R"(allow_clients = ["192.0.2.2"])");
    const auto t0 = Clock::now();
    REQUIRE(scene.daemon->reload());
    const auto applied = Clock::now() - t0;
    auto r = scene.smbclient_from(other.ns(), other.server_ip(), *scene.alice, get_zone_file);
    const auto refused = Clock::now() - t0;
    const auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
    std::printf("reload removing 198.51.100.2: applied %lld ms after SIGHUP, next read refused %lld ms after it\n",
                static_cast<long long>(ms(applied)), static_cast<long long>(ms(refused)));
    CHECK(applied < std::chrono::seconds(1));
    check_refused(scene, r, other.ip());
    // The machine still listed is unaffected.
    check_allowed(scene, scene.smbclient(*scene.alice, get_zone_file), scene.net->client_ip());
}

// custguardctl device allow|revoke client: in force when the command returns (well within a
// second), and recorded as an admin change naming the client, like a user change.
TEST_CASE("samba: custguardctl device allow and revoke of a client take effect within a second and are recorded",
          "[samba][host][e2e][clients]") {
    REQUIRE(::geteuid() == 0);
    REQUIRE(cgsmb::enter_private_mounts());
    Scene scene(cgsmb::Backing::tmpfs, true, R"(allow_clients = ["192.0.2.2"])", true);
    ExtraClient other(*scene.net, "b", "cgsmbb", "198.51.100.1", {"198.51.100.2"});
    auto read_from_other = [&] { return scene.smbclient_from(other.ns(), other.server_ip(), *scene.alice, get_zone_file); };
    check_refused(scene, read_from_other(), other.ip());
    const auto ms = [](auto d) { return static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()); };

    struct Step {
        const char* verb;
        bool then_allowed;
    };
    for (const Step step : {Step{"allow", true}, Step{"revoke", false}}) {
        INFO("device " << step.verb);
        const auto t0 = Clock::now();
        auto r = scene.ctl({"device", step.verb, "client", "customers", other.ip()});
        const auto took = Clock::now() - t0;
        INFO(r.out << r.err << scene.diagnostics());
        REQUIRE(r.rc == 0);
        std::printf("custguardctl device %s client %s: in force after %lld ms\n", step.verb, other.ip().c_str(),
                    ms(took));
        CHECK(took < std::chrono::seconds(1));
        auto read = read_from_other();
        if (step.then_allowed) {
            check_allowed(scene, read, other.ip());
        } else {
            INFO(read.output);
            CHECK(contains(read.output, "NT_STATUS_ACCESS_DENIED"));
        }
        // The admin change record, as a SIEM sees it.
        const std::string action = std::string("device.") + step.verb;
        std::optional<JournalEntry> change;
        for (const auto deadline = Clock::now() + std::chrono::seconds(10); !change && Clock::now() < deadline;) {
            for (auto& e : scene.journald->read("CUSTGUARD_ADMIN_ACTION=" + action)) change = e;
            if (!change) std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        REQUIRE(change);
        CHECK((*change)["CUSTGUARD_ZONE"] == "customers");
        CHECK(contains((*change)["CUSTGUARD_TARGET"], other.ip()));
        CHECK(contains((*change)["CUSTGUARD_AFTER"], other.ip()) == step.then_allowed);
    }
    // The client listed in the policy file was never affected.
    check_allowed(scene, scene.smbclient(*scene.alice, get_zone_file), scene.net->client_ip());
}

// custguardctl grant add ZONE --client: the machine counts as listed at once and until the
// grant expires; then it is refused again, and the daemon drops the grant from the state
// and records its expiry naming the client (fanotify enforcer).
TEST_CASE("samba: a client grant lets an unlisted machine read until it expires", "[samba][host][e2e][clients]") {
    REQUIRE(::geteuid() == 0);
    REQUIRE(cgsmb::enter_private_mounts());
    Scene scene(cgsmb::Backing::tmpfs, true, R"(allow_clients = ["192.0.2.2"])", true);
    ExtraClient other(*scene.net, "b", "cgsmbb", "198.51.100.1", {"198.51.100.2"});
    auto read_from_other = [&] { return scene.smbclient_from(other.ns(), other.server_ip(), *scene.alice, get_zone_file); };
    auto denials = [&] {
        std::size_t n = 0;
        for (auto& e : scene.records_for(scene.zone_file))
            if (e["CUSTGUARD_DECISION"] == "deny" && e["CUSTGUARD_CLIENT"] == other.ip() &&
                e["CUSTGUARD_RULE"] == "client_not_allowed")
                ++n;
        return n;
    };
    const auto ms = [](auto d) { return static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()); };
    check_refused(scene, read_from_other(), other.ip());

    const auto t0 = Clock::now();
    auto add = scene.ctl({"grant", "add", "customers", "--client", other.ip(), "--duration", "10s", "--reason",
                          "visiting auditor", "--json"});
    const auto took = Clock::now() - t0;
    INFO(add.out << add.err << scene.diagnostics());
    REQUIRE(add.rc == 0);
    const auto pos = add.out.find("\"expires_at\":");
    REQUIRE(pos != std::string::npos);
    const long long expires_at = std::stoll(add.out.substr(pos + 13));
    std::printf("custguardctl grant add --client %s --duration 10s: in force after %lld ms\n", other.ip().c_str(),
                ms(took));
    auto listed = scene.ctl({"grant", "list"});
    INFO("grant list: " << listed.out << listed.err);
    CHECK(contains(listed.out, "client " + other.ip()));
    // At once: the next read from the machine is served.
    check_allowed(scene, read_from_other(), other.ip());

    // After the expiry it is refused again.
    while (::time(nullptr) <= expires_at) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const auto before = denials();
    auto late = read_from_other();
    INFO(late.output);
    CHECK(late.status != 0);
    CHECK(contains(late.output, "NT_STATUS_ACCESS_DENIED"));
    bool recorded = false;
    for (const auto deadline = Clock::now() + std::chrono::seconds(10); !recorded && Clock::now() < deadline;) {
        recorded = denials() > before;
        if (!recorded) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    CHECK(recorded);

    // The daemon removed it from the state and recorded the expiry, naming the client.
    std::optional<JournalEntry> expired;
    for (const auto deadline = Clock::now() + std::chrono::seconds(10); !expired && Clock::now() < deadline;) {
        for (auto& e : scene.journald->read("CUSTGUARD_ADMIN_ACTION=grant.expire")) expired = e;
        if (!expired) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    REQUIRE(expired);
    CHECK((*expired)["CUSTGUARD_ZONE"] == "customers");
    CHECK((*expired)["CUSTGUARD_CLIENT"] == other.ip());
    CHECK(contains((*expired)["CUSTGUARD_TARGET"], other.ip()));
    auto after = scene.ctl({"grant", "list", "--json"});
    INFO(after.out << after.err);
    CHECK(after.rc == 0);
    CHECK_FALSE(contains(after.out, other.ip()));
    // The machine listed in the policy file was never affected.
    check_allowed(scene, scene.smbclient(*scene.alice, get_zone_file), scene.net->client_ip());
}

namespace {

// A client machine with two addresses whose connections to the server take their source
// address by a counter (SNAT): the first two from ips[0], the third from ips[1], then again.
void alternate_source(const ExtraClient& machine) {
    const std::string rules = "table ip cgsmb\ndelete table ip cgsmb\ntable ip cgsmb {\n chain post {\n"
                              "  type nat hook postrouting priority srcnat; policy accept;\n  ip daddr " +
                              machine.server_ip() + " tcp dport 445 snat to numgen inc mod 3 map { 0 : " +
                              machine.ips()[0] + ", 1 : " + machine.ips()[0] + ", 2 : " + machine.ips()[1] +
                              " }\n }\n}\n";
    auto r = cgsmb::run({"/usr/sbin/nft", "-f", "-"}, rules, machine.ns());
    INFO(r.output);
    REQUIRE(r.status == 0);
}

}  // namespace

// Samba hands a client's further connections (same client GUID: multichannel) to the smbd
// process that owns its session. smbtorture's smb2.multichannel.oplocks.test1 makes a
// first connection (its own smbd), then channels 2A and 2B of a second client GUID (one
// smbd for both), and opens files in the zone through them. The laptop's connections take
// their source address by a counter: the first connection and 2A come from .2, 2B from
// .3. With .3 not listed, 2A's open, carried by the .2 connection, is refused: its smbd
// also serves .3 (custguardd(8): every address an smbd serves must be listed).
TEST_CASE("samba: one smbd serving an allowed and a not-allowed address (multichannel) is refused",
          "[samba][host][e2e][clients]") {
    REQUIRE(::geteuid() == 0);
    REQUIRE(cgsmb::enter_private_mounts());
    REQUIRE(std::filesystem::exists("/usr/bin/smbtorture"));
    REQUIRE(std::filesystem::exists("/usr/sbin/nft"));
    Scene scene(cgsmb::Backing::tmpfs, true, R"(allow_clients = ["203.0.113.2"])");
    ExtraClient laptop(*scene.net, "m", "cgsmbm", "203.0.113.1", {"203.0.113.2", "203.0.113.3"});
    auto torture = [&] {
        alternate_source(laptop);  // the counter starts again: first connection from .2
        return cgsmb::run({"/usr/bin/smbtorture", "//" + laptop.server_ip() + "/customers", "-s",
                           scene.smbd->client_conf().string(), "-U",
                           scene.alice->name() + "%" + scene.alice->password(), "smb2.multichannel.oplocks.test1"},
                          {}, laptop.ns(), std::chrono::seconds(180));
    };
    auto records = [&](const std::string& filter) { return scene.journald->read(filter); };

    // Control first: both addresses listed, the run passes; the opens were made by two smbd
    // processes (the first connection's, and the one serving channels 2A and 2B).
    scene.write_policy(R"(allow_clients = ["203.0.113.2", "203.0.113.3"])");
    REQUIRE(scene.daemon->reload());
    auto both = torture();
    INFO("smbtorture with both listed: exit " << both.status << "\n" << both.output);
    CHECK(contains(both.output, "success: test1"));
    std::set<std::string> pids;
    for (auto& e : records("CUSTGUARD_ZONE=customers"))
        if (e["CUSTGUARD_OPERATION"] == "open" && e["CUSTGUARD_USER"] == scene.alice->name()) pids.insert(e["CUSTGUARD_PID"]);
    INFO(scene.diagnostics());
    CHECK(pids.size() == 2);

    // .3 no longer listed: the same run is refused, recorded with the address not listed.
    scene.write_policy(R"(allow_clients = ["203.0.113.2"])");
    REQUIRE(scene.daemon->reload());
    auto shared = torture();
    INFO("smbtorture with .3 not listed: exit " << shared.status << "\n" << shared.output);
    CHECK_FALSE(contains(shared.output, "success: test1"));
    CHECK(contains(shared.output, "NT_STATUS_ACCESS_DENIED"));
    std::optional<JournalEntry> rec;
    for (int i = 0; i < 200 && !rec; ++i) {
        for (auto& e : records("CUSTGUARD_RULE=client_not_allowed"))
            if (e["CUSTGUARD_CLIENT"] == "203.0.113.3" && e["CUSTGUARD_USER"] == scene.alice->name()) rec = e;
        if (!rec) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    REQUIRE(rec);
    CHECK((*rec)["CUSTGUARD_DECISION"] == "deny");
    CHECK((*rec)["CUSTGUARD_COMM"] == "smbd");
    // 2A's open of file1, the first open the shared smbd makes.
    CHECK(contains((*rec)["CUSTGUARD_PATH"], "oplock_break_test1.dat"));
    CHECK(contains(shared.output, "client2 opens fname1 via session 2A"));
    CHECK_FALSE(contains(shared.output, "client2 opens fname2 via session 2B"));
}

// [bulk] action = "revoke" keyed by client machine (issue 16 point 4): bob and alice open
// one zone file each from machine A, so A crosses max_files = 1 while neither user does. A
// loses the zone for the cool-down (rule revoked, the record names A), alice from listed
// machine B still reads, and A reads again once the cool-down has ended.
TEST_CASE("samba: a client machine that crosses the bulk-read limit is refused for the cool-down while another machine still reads",
          "[samba][host][e2e][clients]") {
    REQUIRE(::geteuid() == 0);
    REQUIRE(cgsmb::enter_private_mounts());
    Scene scene(cgsmb::Backing::tmpfs, true, R"(allow_clients = ["192.0.2.2", "198.51.100.2"]

[bulk]
max_files = 1
window = "10m"
action = "revoke"
cooldown = "8s"
)",
                true);
    ExtraClient other(*scene.net, "b", "cgsmbb", "198.51.100.1", {"198.51.100.2"});
    const std::string a_ip = scene.net->client_ip();
    auto journal = [&](const std::string& filter, auto pred, std::chrono::seconds timeout) {
        std::optional<JournalEntry> found;
        for (const auto deadline = Clock::now() + timeout; !found && Clock::now() < deadline;) {
            for (auto& e : scene.journald->read(filter))
                if (pred(e)) found = e;
            if (!found) std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return found;
    };
    {
        auto r = scene.ctl({"user", "allow", "customers", scene.bob->name()});
        INFO(r.out << r.err);
        REQUIRE(r.rc == 0);
    }
    // A second zone file, written by bob from machine A: the open that creates it counts
    // as a read of that file (bob's one file; A's first).
    const auto src = scene.dir / "second.csv";
    {
        std::FILE* f = std::fopen(src.c_str(), "w");
        REQUIRE(f);
        std::fputs("name,phone\nSato Hanako,06-1234-5678\n", f);
        std::fclose(f);
    }
    auto put = scene.smbclient(*scene.bob, "put " + src.string() + " customers/second.csv");
    INFO(put.output);
    REQUIRE(put.status == 0);

    // Alice's one file, A's second: A crosses the limit.
    check_allowed(scene, scene.smbclient(*scene.alice, get_zone_file), a_ip);
    const auto crossed = Clock::now();

    // The bulk_read record: keyed by the client, action revoke.
    auto bulk = journal("CUSTGUARD_EVENT=bulk_read", [&](JournalEntry& e) { return e["CUSTGUARD_CLIENT"] == a_ip; },
                        std::chrono::seconds(10));
    INFO(scene.diagnostics());
    REQUIRE(bulk);
    CHECK((*bulk)["CUSTGUARD_BULK_KEY"] == "client");
    CHECK((*bulk)["CUSTGUARD_ACTION"] == "revoke");
    CHECK((*bulk)["CUSTGUARD_FILES"] == "2");
    CHECK(journal("CUSTGUARD_EVENT=bulk_read", [&](JournalEntry& e) { return e["CUSTGUARD_BULK_KEY"] == "user"; },
                  std::chrono::seconds(0)) == std::nullopt);
    // The cool-down, as an admin change naming the client.
    auto revoke = journal("CUSTGUARD_ADMIN_ACTION=bulk.revoke", [](JournalEntry&) { return true; }, std::chrono::seconds(10));
    REQUIRE(revoke);
    const auto applied = Clock::now() - crossed;
    CHECK((*revoke)["CUSTGUARD_ZONE"] == "customers");
    CHECK((*revoke)["CUSTGUARD_CLIENT"] == a_ip);
    CHECK(contains((*revoke)["CUSTGUARD_TARGET"], a_ip));
    std::printf("client %s crossed the bulk-read limit: cool-down recorded %lld ms after the read\n", a_ip.c_str(),
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(applied).count()));
    {
        auto status = scene.ctl({"status"});
        INFO(status.out << status.err);
        CHECK(contains(status.out, "client " + a_ip + " in zone customers"));
    }

    // Machine A is refused, for alice as for anyone; the record names A and says revoked.
    auto refused = scene.smbclient(*scene.alice, get_zone_file);
    {
        INFO(refused.output);
        CHECK(refused.status != 0);
        CHECK(contains(refused.output, "NT_STATUS_ACCESS_DENIED"));
        auto rec = wait_client_record(scene, "deny", a_ip);
        REQUIRE(rec);
        CHECK((*rec)["CUSTGUARD_RULE"] == "revoked");
        CHECK((*rec)["CUSTGUARD_COMM"] == "smbd");
        CHECK(contains((*rec)["MESSAGE"], "from " + a_ip));
    }
    // Machine B, same user, same cool-down: still reads.
    check_allowed(scene, scene.smbclient_from(other.ns(), other.server_ip(), *scene.alice, get_zone_file), other.ip());

    // The cool-down ends (8 s): recorded, and A reads again.
    auto expire = journal("CUSTGUARD_ADMIN_ACTION=bulk.revoke.expire", [](JournalEntry&) { return true; },
                          std::chrono::seconds(20));
    REQUIRE(expire);
    CHECK((*expire)["CUSTGUARD_CLIENT"] == a_ip);
    // Only A crossed: one cool-down in all.
    CHECK(scene.journald->read("CUSTGUARD_ADMIN_ACTION=bulk.revoke").size() == 1);
    CHECK(scene.journald->read("CUSTGUARD_EVENT=bulk_read").size() == 1);
    auto again = scene.smbclient(*scene.alice, get_zone_file);
    INFO(again.output);
    CHECK(again.status == 0);
}
