// custguardctl's usage errors: found on the command line, exit status 2, with a message
// that says what to write, and before any bus is asked (here there is none: a call that
// got past the checks would fail with exit status 3, daemon unreachable).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "support/support.hpp"

namespace {

const std::string k_no_bus = "DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent/cg-cli-test";

cgtest::RunResult ctl(std::vector<std::string> args) {
    args.insert(args.begin(), CG_CUSTGUARDCTL);
    return cgtest::run(args, {k_no_bus});
}

}  // namespace

TEST_CASE("cli: grant add and revoke name a USER or a --client, exactly one", "[cli][unit][clients]") {
    struct Case {
        const char* label;
        std::vector<std::string> args;
        int rc;
        std::string message;
    };
    const std::vector<Case> cases = {
        {"add: both", {"grant", "add", "customers", "bob", "--client", "192.0.2.7", "-d", "1h", "-r", "x"}, 2,
         "give either USER or --client CLIENT, not both"},
        {"add: neither", {"grant", "add", "customers", "-d", "1h", "-r", "x"}, 2, "name a USER, or a client machine"},
        {"revoke: both", {"grant", "revoke", "customers", "bob", "--client", "192.0.2.7"}, 2,
         "give either USER or --client CLIENT, not both"},
        {"revoke: neither", {"grant", "revoke", "customers"}, 2, "name a USER, or a client machine"},
        {"add client: bad duration", {"grant", "add", "customers", "--client", "192.0.2.7", "-d", "soon", "-r", "x"}, 2,
         "'soon' is not a duration"},
        {"add client: no duration", {"grant", "add", "customers", "--client", "192.0.2.7", "-r", "x"}, 2, "--duration"},
        {"add client: --client without a value", {"grant", "add", "customers", "-d", "1h", "-r", "x", "--client"}, 2,
         "--client"},
        // Well formed: these reach for the bus, which is not there.
        {"add client: well formed", {"grant", "add", "customers", "--client", "192.0.2.7", "-d", "1h", "-r", "x"}, 3, ""},
        {"revoke client: well formed", {"grant", "revoke", "customers", "--client", "192.0.2.7"}, 3, ""},
        {"add user: well formed", {"grant", "add", "customers", "bob", "-d", "1h", "-r", "x"}, 3, ""},
    };
    for (const auto& c : cases) {
        DYNAMIC_SECTION(c.label) {
            auto r = ctl(c.args);
            INFO("stdout: " << r.out << "\nstderr: " << r.err);
            CHECK(r.rc == c.rc);
            CHECK(r.err.find(c.message) != std::string::npos);
        }
    }
}

TEST_CASE("cli: usage errors are reported as JSON with --json", "[cli][unit][clients]") {
    auto r = ctl({"grant", "add", "customers", "--json", "-d", "1h", "-r", "x"});
    INFO(r.out << r.err);
    CHECK(r.rc == 2);
    CHECK(r.out.find("\"exit\":2") != std::string::npos);
    CHECK(r.out.find("name a USER") != std::string::npos);
}
