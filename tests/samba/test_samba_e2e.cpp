// End to end with a real Samba: smbclient in one network namespace reads a zone file from a
// scratch smbd in another, through the real custguardd (fanotify enforcer) that records to
// a scratch journald. Proves the decision as the SMB client sees it and the journal record
// as a SIEM sees it, with the client's address found from the smbd connection process.
// Needs root (namespaces, users, fanotify); its own process (unshares the mount namespace).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <map>
#include <sstream>
#include <thread>

#include "daemon/dbus/json.hpp"
#include "samba_fixture.hpp"
#include "support/support.hpp"

using cgsmb::Scene;
using cgsmb::TestUser;

namespace {

bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

struct Case {
    const char* label;
    bool allowed_user;     // alice (in allow_users) or bob (not)
    const char* file;      // relative to the share
    bool expect_success;   // smbclient's get succeeds
    const char* event;     // CUSTGUARD_EVENT of the expected record, "" for none
    const char* decision;
    const char* rule;
};

// The zone is share/customers; public.txt is outside every zone.
const Case cases[] = {
    {"allowed user reads a zone file", true, "customers/list.csv", true, "access", "allow", "allowed_user"},
    {"not allowed user is refused a zone file", false, "customers/list.csv", false, "access", "deny", "not_allowed"},
    {"not allowed user reads outside every zone", false, "public.txt", true, "", "", ""},
};

// The fields of an access record made for an smbd connection process.
void check_smbd_record(Scene& scene, custguard::events::testing::JournalEntry& e, const TestUser& user,
                       const std::string& decision, const std::string& rule, const char* label) {
    CHECK(e["CUSTGUARD_DECISION"] == decision);
    CHECK(e["CUSTGUARD_RULE"] == rule);
    CHECK(e["CUSTGUARD_ZONE"] == "customers");
    CHECK(e["CUSTGUARD_OPERATION"] == "open");
    CHECK(e["CUSTGUARD_ACCESS"] == "read");
    CHECK(e["CUSTGUARD_SENSOR"] == "fanotify");
    CHECK(e["CUSTGUARD_UID"] == std::to_string(user.uid()));
    CHECK(e["CUSTGUARD_USER"] == user.name());
    // The program is smbd: the connection process smbd forked for this client (not the
    // main smbd, which holds no connection). comm comes from the sensor; what the pipeline
    // reads from /proc later (exe, parent) only while the process lives: smbclient -c
    // hangs up at once, and its smbd often exits before the record is enriched
    // (CUSTGUARD_PROCESS_EXITED=1, as custguard.journal(7) says).
    CHECK(e["CUSTGUARD_COMM"] == "smbd");
    CHECK(e["CUSTGUARD_PID"] != std::to_string(scene.smbd->pid()));
    const bool exited = e["CUSTGUARD_PROCESS_EXITED"] == "1";
    std::printf("%s: smbd connection process %s when the record was enriched\n", label,
                exited ? "had exited" : "was alive");
    if (!exited) {
        CHECK(e["CUSTGUARD_EXE"] == "/usr/sbin/smbd");
        CHECK(e["CUSTGUARD_PPID"] == std::to_string(scene.smbd->pid()));
    }
    // The client: the address of the SMB client, from smbd's connection on port 445,
    // looked up while smbd waited for the decision, so also when it has exited since.
    CHECK(e["CUSTGUARD_CLIENT"] == scene.net->client_ip());
    CHECK(contains(e["MESSAGE"], "from " + scene.net->client_ip()));
}

}  // namespace

TEST_CASE("samba: smbclient get through a real smbd, decided by custguardd and recorded with the client address",
          "[samba][host][e2e]") {
    REQUIRE(::geteuid() == 0);
    REQUIRE(cgsmb::enter_private_mounts());
    const Case& c = GENERATE(Catch::Generators::from_range(std::begin(cases), std::end(cases)));
    Scene scene;
    const TestUser& user = c.allowed_user ? *scene.alice : *scene.bob;
    INFO(c.label << " (" << user.name() << ", " << c.file << ")");

    const auto r = scene.smbclient(user, std::string("get ") + c.file + " /dev/null");
    INFO("smbclient exit " << r.status << ":\n" << r.output);
    if (c.expect_success) {
        CHECK(r.status == 0);
        CHECK(contains(r.output, "getting file"));
        CHECK_FALSE(contains(r.output, "NT_STATUS_"));
    } else {
        CHECK(r.status != 0);
        CHECK(contains(r.output, "NT_STATUS_ACCESS_DENIED"));
    }

    const auto path = scene.share / c.file;
    if (*c.event == '\0') {
        // Nothing outside a zone is recorded (give the pipeline time to show a wrong one).
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        CHECK(scene.records_for(path).empty());
        return;
    }
    auto rec = scene.wait_record(path, user.name(), c.event);
    INFO(scene.diagnostics());
    REQUIRE(rec);
    check_smbd_record(scene, *rec, user, c.decision, c.rule, c.label);
}

// What the fanotify enforcer promises for renames (daemon/fanotify/README.md): a file moved
// into a zone is protected from then on, also when it had an ignore mark from before; a
// zone file moved out by someone not allowed cannot be refused (no permission event for
// renames; the BPF-LSM enforcer refuses it) but stays in its zone and is recorded.
TEST_CASE("samba: a file moved into the zone through smbd is refused to a user not allowed from then on",
          "[samba][host][e2e]") {
    REQUIRE(::geteuid() == 0);
    REQUIRE(cgsmb::enter_private_mounts());
    Scene scene;
    // Outside every zone: bob may read it (and the enforcer ignores that inode from now on).
    auto before = scene.smbclient(*scene.bob, "get public.txt /dev/null");
    INFO("bob before the move: " << before.output);
    CHECK(before.status == 0);
    auto moved = scene.smbclient(*scene.alice, "rename public.txt customers/public.txt");
    INFO("alice's rename: " << moved.output);
    REQUIRE(moved.status == 0);
    REQUIRE(std::filesystem::exists(scene.zone / "public.txt"));
    // The move is seen asynchronously (no permission event for renames; see README): wait
    // for the flush rather than a fixed time (regression: 200 ms was too short under load).
    cgsmb::Result after;
    int early = 0;  // reads inside the window
    for (; early < 50; ++early) {
        after = scene.smbclient(*scene.bob, "get customers/public.txt /dev/null");
        if (after.status != 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::printf("moved into the zone: %d read(s) by bob before the move was seen\n", early);
    INFO("bob after the move: exit " << after.status << ": " << after.output);
    CHECK(after.status != 0);
    CHECK(contains(after.output, "NT_STATUS_ACCESS_DENIED"));
    auto rec = scene.wait_record(scene.zone / "public.txt", scene.bob->name(), "access");
    INFO(scene.diagnostics());
    REQUIRE(rec);
    check_smbd_record(scene, *rec, *scene.bob, "deny", "not_allowed", "moved into the zone");
}

TEST_CASE("samba: a zone file moved out of the zone through smbd by a user not allowed stays protected, recorded",
          "[samba][host][e2e]") {
    REQUIRE(::geteuid() == 0);
    REQUIRE(cgsmb::enter_private_mounts());
    Scene scene;
    auto moved = scene.smbclient(*scene.bob, "rename customers/list.csv moved.csv");
    INFO("bob's rename: " << moved.output);
    REQUIRE(moved.status == 0);
    REQUIRE(std::filesystem::exists(scene.share / "moved.csv"));

    // The integrity record: the move happened (audit), by someone not allowed.
    std::optional<custguard::events::testing::JournalEntry> rec;
    for (int i = 0; i < 200 && !rec; ++i) {
        for (auto& e : scene.records_for("list.csv"))
            if (e["CUSTGUARD_OPERATION"] == "rename") rec = e;
        if (!rec) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    INFO(scene.diagnostics());
    REQUIRE(rec);
    CHECK((*rec)["CUSTGUARD_EVENT"] == "zone_integrity");
    CHECK((*rec)["CUSTGUARD_DECISION"] == "audit");
    CHECK((*rec)["CUSTGUARD_RULE"] == "not_allowed");
    CHECK((*rec)["CUSTGUARD_ZONE"] == "customers");
    CHECK((*rec)["CUSTGUARD_SENSOR"] == "fanotify");
    // Judged after the move, smbd is root again (regression: the record said uid 0), so the
    // mover is unknown and counts as not allowed.
    CHECK((*rec)["CUSTGUARD_UID"] == "4294967295");

    auto after = scene.smbclient(*scene.bob, "get moved.csv /dev/null");
    INFO("bob after the move: exit " << after.status << ": " << after.output);
    CHECK(after.status != 0);
    CHECK(contains(after.output, "NT_STATUS_ACCESS_DENIED"));
    auto alice = scene.smbclient(*scene.alice, "get moved.csv /dev/null");
    INFO("alice after the move: " << alice.output);
    CHECK(alice.status == 0);
}

// Regression (inode numbers poisoned by deleted zone files): the enforcer knew zone files
// by inode number alone, ext4 reuses a deleted file's number at once, and new files outside
// the zone on those numbers were refused as zone files: Office's temporary files on a
// share made unrelated files (smbd's own among them) unreadable at random.
TEST_CASE("samba: zone files created, read and deleted by an allowed user leave no trace on new files",
          "[samba][host][e2e]") {
    REQUIRE(::geteuid() == 0);
    REQUIRE(cgsmb::enter_private_mounts());
    Scene scene(cgsmb::Backing::ext4);
    const auto src = scene.dir / "upload.txt";
    cgtest::spit(src, "some text\n");
    constexpr int n = 60;
    std::string work, cleanup;
    for (int i = 0; i < n; ++i) {
        work += "put " + src.string() + " customers/~tmp" + std::to_string(i) + ".tmp; get customers/~tmp" +
                std::to_string(i) + ".tmp /dev/null; ";
        cleanup += "del customers/~tmp" + std::to_string(i) + ".tmp; ";
    }
    auto made = scene.smbclient(*scene.alice, work + cleanup);
    INFO("alice: " << made.output);
    REQUIRE(made.status == 0);
    REQUIRE_FALSE(contains(made.output, "NT_STATUS_"));

    std::string fresh;
    for (int i = 0; i < 2 * n; ++i)
        fresh += "put " + src.string() + " new" + std::to_string(i) + ".txt; get new" + std::to_string(i) +
                 ".txt /dev/null; ";
    auto after = scene.smbclient(*scene.bob, fresh);
    INFO("bob: " << after.output << scene.diagnostics());
    CHECK(after.status == 0);
    CHECK_FALSE(contains(after.output, "NT_STATUS_ACCESS_DENIED"));
    int present = 0;
    for (int i = 0; i < 2 * n; ++i) present += std::filesystem::exists(scene.share / ("new" + std::to_string(i) + ".txt"));
    CHECK(present == 2 * n);
    // The zone still holds against bob.
    auto denied = scene.smbclient(*scene.bob, "get customers/list.csv /dev/null");
    CHECK(contains(denied.output, "NT_STATUS_ACCESS_DENIED"));
}

// custguardctl status shows per zone the clients it allows and the reads each client made
// today, counted from the records custguardd commits: with a real smbd the count of a
// client equals the allowed reads the journal holds with that client's address; refused
// opens are not reads.
TEST_CASE("samba: status shows per zone the allowed clients and each client's reads today", "[samba][host][e2e]") {
    REQUIRE(::geteuid() == 0);
    REQUIRE(cgsmb::enter_private_mounts());
    Scene scene(cgsmb::Backing::tmpfs, true, {}, true);
    const std::string ip = scene.net->client_ip();
    auto allow = scene.ctl({"device", "allow", "client", "customers", ip});
    INFO("device allow: " << allow.rc << " " << allow.out << allow.err << scene.diagnostics());
    REQUIRE(allow.rc == 0);

    auto status_json = [&] {
        auto r = scene.ctl({"status", "--json"});
        INFO(r.out << r.err);
        REQUIRE(r.rc == 0);
        auto j = custguard::dbus::Json::parse(r.out);
        REQUIRE(j);
        return *j;
    };
    // Before any read: the zone, its allowed client, no reads.
    {
        auto s = status_json();
        const auto& zones = s["zone_clients"].as_array();
        REQUIRE(zones.size() == 1);
        CHECK(zones[0]["zone"].as_string() == "customers");
        REQUIRE(zones[0]["allow_clients"].as_array().size() == 1);
        CHECK(zones[0]["allow_clients"].as_array()[0].as_string() == ip);
        CHECK(zones[0]["reads_today"].as_array().empty());
        CHECK(s["client_reads_since"].as_int() > 0);
    }

    for (int i = 0; i < 2; ++i) {
        auto r = scene.smbclient(*scene.alice, "get customers/list.csv /dev/null");
        INFO("alice: " << r.output);
        REQUIRE(r.status == 0);
    }
    auto refused = scene.smbclient(*scene.bob, "get customers/list.csv /dev/null");
    CHECK(contains(refused.output, "NT_STATUS_ACCESS_DENIED"));
    REQUIRE(scene.wait_record(scene.zone_file, scene.bob->name(), "access"));

    // The journal's allowed reads with the client's address (smbd may open a file more
    // than once per get); the status count must come to exactly that.
    auto journal_reads = [&] {
        std::uint64_t n = 0;
        for (auto& e : scene.records_for(scene.zone_file))
            n += e["CUSTGUARD_EVENT"] == "access" && e["CUSTGUARD_DECISION"] == "allow" &&
                 e["CUSTGUARD_OPERATION"] == "open" && e["CUSTGUARD_ACCESS"] != "write" && e["CUSTGUARD_CLIENT"] == ip;
        return n;
    };
    std::uint64_t expected = 0, shown = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    do {
        expected = journal_reads();
        auto s = status_json();
        const auto& reads = s["zone_clients"].as_array().at(0)["reads_today"].as_array();
        shown = reads.empty() ? 0 : static_cast<std::uint64_t>(reads[0]["reads"].as_int());
        if (expected >= 2 && shown == expected) {
            REQUIRE(reads.size() == 1);
            CHECK(reads[0]["client"].as_string() == ip);
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    } while (std::chrono::steady_clock::now() < deadline);
    INFO(scene.diagnostics());
    CHECK(expected >= 2);
    CHECK(shown == expected);
    std::printf("status: %s read zone customers %llu times (journal: %llu allowed reads with that address)\n",
                ip.c_str(), static_cast<unsigned long long>(shown), static_cast<unsigned long long>(expected));

    auto text = scene.ctl({"status"});
    INFO(text.out);
    CHECK(text.rc == 0);
    CHECK(contains(text.out, "zone customers:"));
    CHECK(contains(text.out, "clients " + ip + "; reads today: " + ip + " " + std::to_string(expected) + "\n"));
}

namespace {

// One smbtorture suite against //server/<share> as `user`: subtest name -> outcome
// ("success", "failure", "error", "skip", "xfail"), from its subunit-style lines.
std::map<std::string, std::string> smbtorture(Scene& scene, const TestUser& user, const std::string& share,
                                              const std::string& suite, std::string* output) {
    auto r = cgsmb::run({"/usr/bin/smbtorture", "//" + scene.net->server_ip() + "/" + share, "-s",
                         scene.smbd->client_conf().string(), "-U", user.name() + "%" + user.password(), suite},
                        {}, scene.net->client_ns(), std::chrono::seconds(300));
    *output = r.output;
    std::map<std::string, std::string> out;
    std::istringstream in(r.output);
    for (std::string line; std::getline(in, line);) {
        for (const char* kind : {"success", "failure", "error", "skip", "xfail"}) {
            const std::string prefix = std::string(kind) + ": ";
            if (!line.starts_with(prefix)) continue;
            std::string name = line.substr(prefix.size());
            if (auto cut = name.find(" ["); cut != std::string::npos) name.resize(cut);
            out[name] = kind;
        }
    }
    return out;
}

}  // namespace

// The guard must not harm the server it guards: Samba's own protocol tests give the same
// results on a share inside a zone (an allowed user through smbd) and on a share outside
// every zone on the zone's filesystem as without custguardd.
TEST_CASE("samba: smbtorture gives the same results with custguardd as without", "[samba][host][e2e]") {
    REQUIRE(::geteuid() == 0);
    REQUIRE(cgsmb::enter_private_mounts());
    REQUIRE(std::filesystem::exists("/usr/bin/smbtorture"));
    const std::vector<std::pair<std::string, std::string>> runs = {
        {"customers", "smb2.create"},  {"customers", "smb2.rename"},      {"customers", "smb2.delete-on-close-perms"},
        {"customers", "smb2.getinfo"}, {"customers", "smb2.dir"},         {"customers", "smb2.lock"},
        {"share", "smb2.create"},      {"share", "smb2.delete-on-close-perms"}, {"share", "smb2.rename"},
    };
    std::map<std::string, std::map<std::string, std::string>> baseline, guarded;
    for (bool enforce : {false, true}) {
        Scene scene(cgsmb::Backing::ext4, enforce);
        for (const auto& [share, suite] : runs) {
            std::string output;
            auto results = smbtorture(scene, *scene.alice, share, suite, &output);
            INFO(share << " " << suite << ":\n" << output);
            REQUIRE_FALSE(results.empty());  // it ran
            (enforce ? guarded : baseline)[share + " " + suite] = std::move(results);
        }
    }
    std::printf("%-40s %9s %9s %9s\n", "share suite", "subtests", "pass(no)", "pass(cg)");
    int regressions = 0;
    for (const auto& [run, base] : baseline) {
        const auto& with = guarded[run];
        int pass_base = 0, pass_with = 0;
        for (const auto& [name, outcome] : base) {
            pass_base += outcome == "success";
            auto it = with.find(name);
            const std::string got = it == with.end() ? "missing" : it->second;
            pass_with += got == "success";
            if (outcome == "success" && got != "success") {
                ++regressions;
                UNSCOPED_INFO(run << ": " << name << " passes without custguardd, " << got << " with it");
            }
        }
        std::printf("%-40s %9zu %9d %9d\n", run.c_str(), base.size(), pass_base, pass_with);
    }
    CHECK(regressions == 0);
}
