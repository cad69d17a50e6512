// custguardd on a CPU without SSSE3 (cg-vm-run --cpu qemu64: the ctest vm.no_ssse3), where Hyperscan,
// the print gate's scanner, cannot run. Regression: the daemon refused to start at all
// ("Unsupported architecture"), so a server lost its file enforcement over printing.
// Now it starts, says why content scanning is off, and every print document counts as
// unreadable ([print] unreadable decides; hold by default).
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <string>
#include <thread>

#include "support/support.hpp"
#include "vm_support.hpp"

using custguard::vmtest::cpu_has_ssse3;

TEST_CASE("without SSSE3 the daemon starts and print content scanning is reported off", "[vm][no_ssse3]")
{
    REQUIRE_FALSE(cpu_has_ssse3());  // the premise: vm.no_ssse3 runs it on qemu64
    const std::string dir = "/tmp/cg-nossse3";
    ::mkdir(dir.c_str(), 0700);
    ::mkdir((dir + "/state").c_str(), 0700);
    cgtest::spit(dir + "/policy.toml", "[daemon]\nenforcer = \"none\"\n\n[print]\naction = \"hold\"\n");
    const std::string log = dir + "/log";
    cgtest::spit(log, "");
    pid_t pid = cgtest::spawn({CG_CUSTGUARDD, "--policy", dir + "/policy.toml", "--state-dir", dir + "/state",
                               "--no-journal", "--no-audit", "--bus-address", "unix:path=/nonexistent"},
                              {}, log);
    bool up = false, exited = false;
    for (int i = 0; i < 300 && !up && !exited; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        up = cgtest::slurp(log).find("control plane off") != std::string::npos;
        exited = ::waitpid(pid, nullptr, WNOHANG) == pid;
    }
    const std::string out = cgtest::slurp(log);
    INFO(out);
    if (exited)
        pid = -1;
    cgtest::kill_and_reap(pid);
    CHECK_FALSE(exited);
    CHECK(up);
    CHECK(out.find("print content scanning unavailable: this CPU lacks SSSE3") != std::string::npos);
    CHECK(out.find("Unsupported architecture") == std::string::npos);
}

TEST_CASE("without SSSE3 custguardctl scan says what is missing", "[vm][no_ssse3]")
{
    REQUIRE_FALSE(cpu_has_ssse3());
    const std::string dir = "/tmp/cg-nossse3-scan";
    ::mkdir(dir.c_str(), 0700);
    cgtest::spit(dir + "/doc.txt", "meeting notes\n");
    const auto r = cgtest::run({CG_CUSTGUARDCTL, "scan", dir + "/doc.txt"});
    INFO(r.out + r.err);
    CHECK(r.rc == 2);
    CHECK(r.err.find("this CPU lacks SSSE3, which Hyperscan needs") != std::string::npos);
}
