// The enricher's use of identities captured at exec (EnrichConfig::identities): the
// identity current at the decision names the program; a later program is marked, never
// substituted. The identity source here is a fake (the real exec tracker is tested in
// test_exec_identity.cpp); /proc is the test process's own.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>

#include "custguard/events/enrich.hpp"

using namespace custguard::events;

namespace {

struct FakeIdentities final : IdentitySource {
    std::map<std::uint32_t, ExecIdentity> by_tgid;
    std::uint64_t asked_ns = 0;
    std::optional<ExecIdentity> identity_at(std::uint32_t tgid, std::uint64_t mono_ns) override {
        asked_ns = mono_ns;
        auto it = by_tgid.find(tgid);
        if (it == by_tgid.end()) return std::nullopt;
        return it->second;
    }
};

std::pair<std::uint64_t, std::uint64_t> kernel_id(const char* path) {
    struct stat st {};
    REQUIRE(::stat(path, &st) == 0);
    return {(std::uint64_t{major(st.st_dev)} << 20) | minor(st.st_dev), st.st_ino};
}

custguard::daemon::AccessEvent event_of_self(std::pair<std::uint64_t, std::uint64_t> exe) {
    custguard::daemon::AccessEvent ev;
    ev.raw.abi_version = CG_ABI_VERSION;
    ev.raw.kind = CG_EV_OPEN;
    ev.raw.ts_ns = 4242;
    ev.raw.pid = ev.raw.tgid = static_cast<std::uint32_t>(::getpid());
    ev.raw.loginuid = 0xffffffffu;
    ev.raw.zone_id = 1;
    ev.raw.decision = CG_DECISION_ALLOW;
    ev.raw.rule = CG_RULE_USER;
    ev.raw.exe_dev = exe.first;
    ev.raw.exe_ino = exe.second;
    std::strncpy(ev.raw.comm, "opener", sizeof ev.raw.comm);
    ev.path = "/srv/zone/f";
    return ev;
}

}  // namespace

TEST_CASE("records take the identity current at the decision, and mark a later program", "[unit]") {
    const std::vector<std::string> zones = {"customers"};
    const auto sh = kernel_id("/bin/sh");
    const std::string self_exe = std::filesystem::read_symlink("/proc/self/exe");
    auto fake = std::make_shared<FakeIdentities>();
    ExecIdentity id;
    id.exe = "/usr/bin/dash";
    id.cmdline = "/bin/sh -c x";
    id.comm = "sh";
    id.ppid = 1;
    id.parent_comm = "init";
    id.loginuid = 1000;
    id.exe_dev = sh.first;
    id.exe_ino = sh.second;
    EnrichConfig cfg;
    cfg.identities = fake;
    Enricher e(cfg);

    SECTION("the decided program, though /proc shows another one now") {
        fake->by_tgid[static_cast<std::uint32_t>(::getpid())] = id;
        Record r = e.enrich(event_of_self(sh), zones);
        CHECK(fake->asked_ns == 4242);
        CHECK(*r.get(field::exe) == "/usr/bin/dash");
        CHECK(*r.get(field::cmdline) == "/bin/sh -c x");
        CHECK(*r.get(field::ppid) == "1");
        CHECK(*r.get(field::parent_comm) == "init");
        CHECK(*r.get(field::auid) == "1000");
        CHECK(*r.get(field::comm) == "opener");  // the sensor's, from the decision
        CHECK(r.get(field::exe_changed) == nullptr);
        CHECK(r.message.find("via /usr/bin/dash") != std::string::npos);
    }
    SECTION("a later exec is marked") {
        id.later_exe = "/usr/bin/sleep";
        fake->by_tgid[static_cast<std::uint32_t>(::getpid())] = id;
        Record r = e.enrich(event_of_self(sh), zones);
        CHECK(*r.get(field::exe) == "/usr/bin/dash");
        CHECK(*r.get(field::exe_changed) == "1");
        CHECK(*r.get(field::later_exe) == "/usr/bin/sleep");
    }
    SECTION("an identity of another program is not used; /proc's other program is not substituted") {
        fake->by_tgid[static_cast<std::uint32_t>(::getpid())] = id;
        auto other = kernel_id("/usr/bin/cat");  // what the sensor saw deciding
        Record r = e.enrich(event_of_self(other), zones);
        CHECK(r.get(field::exe) == nullptr);
        CHECK(r.get(field::cmdline) == nullptr);
        CHECK(*r.get(field::exe_changed) == "1");
        CHECK(*r.get(field::later_exe) == self_exe);
    }
    SECTION("no identity: /proc, when it shows the decided program") {
        Record r = e.enrich(event_of_self(kernel_id("/proc/self/exe")), zones);
        CHECK(*r.get(field::exe) == self_exe);
        CHECK(r.get(field::exe_changed) == nullptr);
        CHECK(e.stats().from_exec == 0);
    }
}
