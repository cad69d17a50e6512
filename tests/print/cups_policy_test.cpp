// Which CUPS operation policies make a job's user an authenticated one (cupsd.conf as
// cupsd 2.4 reads it), and the <Policy custguard> that printer protect installs.
#include <catch2/catch.hpp>

#include "custguard/cups/cups_policy.hpp"

using namespace custguard::print;

namespace {

// A policy whose job-creating limit is `creation` and whose document limit is `documents`.
std::string conf_with(const std::string& creation, const std::string& documents = "AuthType Basic\nRequire user @OWNER @SYSTEM\n",
                      const std::string& global = "") {
    return global +
           "Listen /run/cups/cups.sock\n"
           "<Location />\n  AuthType None\n  Order allow,deny\n  Allow all\n</Location>\n"
           "<Policy p>\n"
           "  JobPrivateAccess default\n"
           "  <Limit Create-Job Print-Job Print-URI Validate-Job>\n" + creation + "  </Limit>\n"
           "  <Limit Send-Document Send-URI Cancel-Job>\n" + documents + "  </Limit>\n"
           "  <Limit All>\n    Order deny,allow\n  </Limit>\n"
           "</Policy>\n";
}

std::string problem_of(const std::string& text, const std::string& policy = "p") {
    auto conf = parse_cupsd_conf(text);
    REQUIRE(conf);
    return claimed_name_problem(*conf, policy);
}

}  // namespace

TEST_CASE("operation policies that let a client claim the print user are named", "[print][unit]") {
    struct Row {
        const char* name;
        std::string conf;
        const char* problem;  // empty: job users are authenticated
    };
    const std::vector<Row> rows = {
        {"AuthType Basic + Require valid-user", conf_with("AuthType Basic\nRequire valid-user\n"), ""},
        {"AuthType Default (Basic by default)", conf_with("AuthType Default\nRequire valid-user\n"), ""},
        {"AuthType Negotiate", conf_with("AuthType Negotiate\n"), ""},
        {"no AuthType, no Require (Debian's default policy)", conf_with("Order deny,allow\n"),
         "Print-Job needs no user"},
        {"AuthType None with Require: cupsd takes requesting-user-name",
         conf_with("AuthType None\nRequire user @OWNER\n"), "Print-Job takes the name the client sends (AuthType None)"},
        {"Require before AuthType None: None resets the level", conf_with("Require valid-user\nAuthType None\n"),
         "needs no user"},
        {"AuthType Default with DefaultAuthType None", conf_with("AuthType Default\nRequire valid-user\n", "AuthType Basic\nRequire user @OWNER\n", "DefaultAuthType None\n"),
         "DefaultAuthType None"},
        {"Satisfy any", conf_with("AuthType Basic\nRequire valid-user\nSatisfy any\n"), "Satisfy any"},
        {"anyone authenticated may add documents to a job",
         conf_with("AuthType Basic\nRequire valid-user\n", "AuthType Basic\nRequire valid-user\n"),
         "Send-Document lets users other than the job's owner add documents"},
        {"unauthenticated documents", conf_with("AuthType Basic\nRequire valid-user\n", "Order deny,allow\n"),
         "Send-Document needs no user"},
        {"comments are not directives", conf_with("# AuthType Basic\n#Require valid-user\n"), "needs no user"},
    };
    for (const auto& r : rows) {
        INFO(r.name);
        auto p = problem_of(r.conf);
        if (std::string(r.problem).empty()) CHECK(p.empty());
        else CHECK(p.find(r.problem) != std::string::npos);
    }
}

TEST_CASE("the limit for All applies to operations no limit names", "[print][unit]") {
    std::string text = "<Policy p>\n  <Limit All>\n    AuthType Basic\n    Require user @OWNER @SYSTEM\n  </Limit>\n</Policy>\n";
    CHECK(problem_of(text).empty());
    text = "<Policy p>\n  <Limit Cancel-Job>\n    AuthType Basic\n  </Limit>\n</Policy>\n";
    CHECK(problem_of(text).find("Print-Job is covered by no <Limit>") != std::string::npos);
}

TEST_CASE("an unknown, duplicated or malformed policy is not trusted", "[print][unit]") {
    CHECK(problem_of(conf_with("AuthType Basic\n"), "other").find("policy 'other' is not in cupsd.conf") !=
          std::string::npos);
    auto twice = conf_with("AuthType Basic\n") + "<Policy p>\n  <Limit All>\n  </Limit>\n</Policy>\n";
    CHECK(problem_of(twice).find("defined twice") != std::string::npos);
    CHECK_FALSE(parse_cupsd_conf("<Policy p>\n  <Limit All>\n    AuthType Digestive\n  </Limit>\n</Policy>\n"));
    CHECK_FALSE(parse_cupsd_conf("<Policy p>\n  <Limit All>\n"));
    CHECK_FALSE(parse_cupsd_conf(std::string(max_cupsd_conf + 1, '#')));
}

TEST_CASE("the custguard policy makes job users authenticated and installing it is idempotent", "[print][unit]") {
    const std::string plain = conf_with("Order deny,allow\n");
    const std::string once = with_custguard_policy(plain);
    CHECK(problem_of(once, "custguard").empty());
    CHECK(problem_of(once, "CUSTGUARD").empty());  // cupsd compares policy names without case
    CHECK(problem_of(once).find("needs no user") != std::string::npos);  // other policies stay as they were
    CHECK(with_custguard_policy(once) == once);
    // An older or edited block is replaced, not duplicated.
    const std::string edited = plain + "<Policy custguard>\n  <Limit All>\n  </Limit>\n</Policy>\n# after\n";
    const std::string fixed = with_custguard_policy(edited);
    CHECK(problem_of(fixed, "custguard").empty());
    CHECK(fixed.find("# after") != std::string::npos);
    CHECK(fixed == with_custguard_policy(fixed));
}
