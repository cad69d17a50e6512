// `custguardctl report … --help` must match custguardctl(8) (each verb's description and
// every option appear in the page, the page lints clean) and the bash completion offers
// the report verbs, their options and formats.
#include <catch2/catch.hpp>

#include "support/support.hpp"

#include <regex>
#include <string>

namespace {

using cgtest::shell_out;
using cgtest::squeeze_space;

}  // namespace

TEST_CASE("report: custguardctl report --help matches custguardctl(8)", "[report][unit][man]") {
    int status = 0;
    std::string man = squeeze_space(shell_out("groff -man -Tutf8 -P-c -P-b -P-u -rLL=4000n " CG_MAN_PAGE " 2>/dev/null", &status));
    REQUIRE(status == 0);
    for (const char* verb : {"report", "report leak-scope", "report access"}) {
        std::string help = shell_out(std::string(CG_CUSTGUARDCTL " ") + verb + " --help", &status);
        INFO("custguardctl " << verb << " --help:\n" << help);
        REQUIRE(status == 0);
        if (std::string(verb) != "report") CHECK(man.find(squeeze_space(help.substr(0, help.find('\n')))) != std::string::npos);
        std::regex option("--[a-z][a-z-]*");
        for (auto it = std::sregex_iterator(help.begin(), help.end(), option); it != std::sregex_iterator(); ++it) {
            if (it->str() == "--help") continue;
            INFO("option " << it->str());
            CHECK(man.find(it->str()) != std::string::npos);
        }
    }
    std::string warnings = shell_out("LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l " CG_MAN_PAGE " 2>&1 >/dev/null", &status);
    INFO(warnings);
    CHECK(status == 0);
    CHECK(warnings.empty());
}

TEST_CASE("report: custguard.fleet(7) lints clean", "[report][unit][man]") {
    int status = 0;
    std::string warnings = shell_out("LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l " CG_FLEET_PAGE " 2>&1 >/dev/null", &status);
    INFO(warnings);
    CHECK(status == 0);
    CHECK(warnings.empty());
}

TEST_CASE("report: bash completion offers the report verbs, options and formats", "[report][unit][man]") {
    std::string script =
        "source /usr/share/bash-completion/bash_completion 2>/dev/null; source " CG_COMPLETION "; "
        "COMP_WORDS=(custguardctl ''); COMP_CWORD=1; _custguardctl; echo \"${COMPREPLY[*]}\"; "
        "COMP_WORDS=(custguardctl report ''); COMP_CWORD=2; _custguardctl; echo \"${COMPREPLY[*]}\"; "
        "COMP_WORDS=(custguardctl report leak-scope --); COMP_CWORD=3; _custguardctl; echo \"${COMPREPLY[*]}\"; "
        "COMP_WORDS=(custguardctl report access --format ''); COMP_CWORD=4; _custguardctl; echo \"${COMPREPLY[*]}\"";
    int status = 0;
    std::string out = shell_out("bash -c '" + std::regex_replace(script, std::regex("'"), "'\\''") + "'", &status);
    INFO(out);
    CHECK(status == 0);
    CHECK(out.find("discover report") != std::string::npos);
    CHECK(out.find("leak-scope access") != std::string::npos);
    CHECK(out.find("--discovered-at") != std::string::npos);
    CHECK(out.find("text json csv html") != std::string::npos);
}
