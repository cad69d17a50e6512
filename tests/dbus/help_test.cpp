// custguardctl --help must match custguardctl(8): every verb's description and every
// option appear in the page, the page lints clean, and the bash completion knows the verbs.

#include <catch2/catch.hpp>

#include "support/support.hpp"

#include <regex>
#include <set>
#include <string>
#include <vector>

namespace {

using cgtest::shell_out;
using cgtest::squeeze_space;

const std::vector<std::string> k_verbs = {
    "status", "policy check", "policy reload", "policy show", "zone list", "user allow", "user revoke",
    "user list", "device allow", "device revoke", "device list", "grant add", "grant list", "grant revoke",
    "print held", "print approve", "print reject", "printer protect", "printer unprotect", "printer list",
    "history", "events", "scan", "edm build", "discover", "report leak-scope", "report access"};

}  // namespace

TEST_CASE("dbus: custguardctl --help matches custguardctl(8)", "[dbus][host][man]") {
    int status = 0;
    // No hyphenation or adjustment in the page, and a wide line: one paragraph, one line.
    std::string man = squeeze_space(shell_out("groff -man -Tascii -P-c -P-b -P-u -rLL=4000n " CG_MAN_PAGE " 2>/dev/null", &status));
    REQUIRE(status == 0);
    REQUIRE(man.size() > 1000);

    for (const auto& verb : k_verbs) {
        std::string help = shell_out(std::string(CG_CUSTGUARDCTL " ") + verb + " --help", &status);
        INFO("custguardctl " << verb << " --help:\n" << help);
        REQUIRE(status == 0);
        auto description = squeeze_space(help.substr(0, help.find('\n')));
        CHECK(man.find(description) != std::string::npos);
        std::regex option("--[a-z][a-z-]*");
        for (auto it = std::sregex_iterator(help.begin(), help.end(), option); it != std::sregex_iterator(); ++it) {
            auto name = it->str();
            if (name == "--help") continue;
            INFO("option " << name);
            CHECK(man.find(name) != std::string::npos);
        }
    }
    // Every top-level verb is in the page and the top-level help.
    std::string top = shell_out(CG_CUSTGUARDCTL " --help");
    for (const char* v : {"status", "policy", "zone", "user", "device", "grant", "print", "printer", "history", "events", "scan", "edm", "discover", "report"}) {
        CHECK(top.find(std::string("  ") + v + " ") != std::string::npos);
        CHECK(man.find(v) != std::string::npos);
    }
}

TEST_CASE("dbus: custguardctl(8) lints clean", "[dbus][host][man]") {
    int status = 0;
    std::string warnings = shell_out("LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l " CG_MAN_PAGE " 2>&1 >/dev/null", &status);
    INFO(warnings);
    CHECK(status == 0);
    CHECK(warnings.empty());
}

TEST_CASE("dbus: bash completion knows every verb", "[dbus][host][man]") {
    int status = 0;
    shell_out("bash -n " CG_COMPLETION, &status);
    CHECK(status == 0);
    // Complete "custguardctl <TAB>" and "custguardctl grant <TAB>" with the real function.
    std::string script =
        "source /usr/share/bash-completion/bash_completion 2>/dev/null; source " CG_COMPLETION "; "
        "COMP_WORDS=(custguardctl ''); COMP_CWORD=1; COMP_LINE='custguardctl '; COMP_POINT=13; _custguardctl; "
        "echo \"${COMPREPLY[*]}\"; "
        "COMP_WORDS=(custguardctl grant ''); COMP_CWORD=2; COMP_LINE='custguardctl grant '; COMP_POINT=19; _custguardctl; "
        "echo \"${COMPREPLY[*]}\"";
    std::string out = shell_out("bash -c '" + std::regex_replace(script, std::regex("'"), "'\\''") + "'", &status);
    INFO(out);
    for (const char* v : {"status", "policy", "zone", "user", "device", "grant", "print", "printer", "history", "events", "scan", "discover", "report"})
        CHECK(out.find(v) != std::string::npos);
    CHECK(out.find("add list revoke") != std::string::npos);
}
