// Regression tests for issue 15 point 2, "a print user the gate can trust": a name a client
// claims (lp -U, requesting-user-name over IPP) never prints customer data as an allowed
// user; the user CUPS authenticated (peer credentials on its socket, a password over the
// network) does. Real components: a scratch cupsd with the policy printer protect installs,
// the custguard backend, custguardd on a private bus, lp and ipptool as real processes, and
// for the network a cupsd in its own network namespace reached over a veth pair.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <random>

#include "print_fixture.hpp"
#include "test_support.hpp"  // tests/scan: independent check-digit generators

using namespace cgprint;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const char* k_policy =
    "action = \"hold\"\n"
    "allow_printers = [\"secure\"]\n"
    "allow_users = [\"cgprint-ok\", \"%cgprint-customers\"]\n"
    "threshold = 3\n"
    "unreadable = \"hold\"\n";

// Synthetic customer data with valid check digits: four detector hits.
std::string customer_list() {
    return "Customer list (synthetic)\nTaro Yamada  card " + scan_test::luhn_complete("453201511283366") +
           "\nHanako Suzuki  card " + scan_test::luhn_complete("555555555555444") + "\nMy Number " +
           scan_test::my_number_complete("31415926535") + "\nContact taro.yamada@example.co.jp\n";
}

// lp without a terminal (setsid): libcups cannot ask for a password, as for a script.
RunResult lp_as(const PrintFixture& f, const Cred& cred, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"setsid", "-w", "lp"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, f.client_env(), cred);
}

int job_id(const RunResult& r, const std::string& queue) {
    auto pos = r.out.find(queue + "-");
    return pos == std::string::npos ? 0 : std::atoi(r.out.c_str() + pos + queue.size() + 1);
}

std::string squeeze(const std::string& s) {
    std::string out;
    for (char c : s)
        if (c != ' ' && c != '\n') out += c;
    return out;
}

bool status_lists(const PrintFixture& f, const std::string& needle) {
    for (int i = 0; i < 100; ++i) {
        if (contains(squeeze(f.ctl({"status", "--json"}).out), needle)) return true;
        std::this_thread::sleep_for(100ms);
    }
    return false;
}

// A test account with a password (for Basic authentication through PAM), set anew each run.
std::pair<Cred, std::string> account_with_password(const std::string& name, const std::string& group) {
    Cred c = cgtest::ensure_user(name, {group});
    std::random_device rd;
    std::string password = "Cg-" + std::to_string(rd()) + "-" + std::to_string(rd());
    auto r = run({"sh", "-c", "echo '" + name + ":" + password + "' | chpasswd"});
    if (r.rc != 0) throw std::runtime_error("chpasswd " + name + ": " + r.err);
    return {c, password};
}

// Two network namespaces joined by a veth pair: cupsd on 192.0.2.1 in one, clients on
// 192.0.2.2 in the other (TEST-NET-1; the namespaces keep them off every real network).
class NetnsPair {
public:
    NetnsPair()
        : server_("cgpu-" + std::to_string(::getpid()) + "-srv"), client_("cgpu-" + std::to_string(::getpid()) + "-cli") {
        remove();
        const std::vector<std::vector<std::string>> steps = {
            {"ip", "netns", "add", server_},
            {"ip", "netns", "add", client_},
            {"ip", "-n", server_, "link", "add", "cgpu0", "type", "veth", "peer", "name", "cgpu1", "netns", client_},
            {"ip", "-n", server_, "addr", "add", "192.0.2.1/24", "dev", "cgpu0"},
            {"ip", "-n", client_, "addr", "add", "192.0.2.2/24", "dev", "cgpu1"},
            {"ip", "-n", server_, "link", "set", "cgpu0", "up"},
            {"ip", "-n", client_, "link", "set", "cgpu1", "up"},
            {"ip", "-n", server_, "link", "set", "lo", "up"},
            {"ip", "-n", client_, "link", "set", "lo", "up"},
        };
        for (const auto& step : steps) {
            if (auto r = run(step); r.rc != 0) {
                remove();
                throw std::runtime_error("ip " + step[1] + " ...: " + r.err);
            }
        }
    }
    ~NetnsPair() { remove(); }
    NetnsPair(const NetnsPair&) = delete;
    NetnsPair& operator=(const NetnsPair&) = delete;
    const std::string& server() const { return server_; }
    const std::string& client() const { return client_; }

private:
    void remove() {
        for (const auto& ns : {server_, client_})
            if (fs::exists("/run/netns/" + ns)) run({"ip", "netns", "delete", ns});
    }
    std::string server_, client_;
};

// Print-Job over IPP from the client namespace with CUPS's own ipptool test; `userinfo`
// ("name:password@") gives Basic credentials, `claimed` the requesting-user-name to send.
// cupsd takes a password over the network only through TLS (426 Upgrade Required): libcups
// upgrades and trusts cupsd's self-signed certificate on first use, remembered in
// $HOME/.cups/ssl, so each fixture gets a fresh HOME.
RunResult ipp_print(const PrintFixture& f, const NetnsPair& net, const fs::path& file, const std::string& userinfo,
                    const std::string& claimed) {
    std::vector<std::string> argv = {"ip", "netns", "exec", net.client(), "setsid", "-w", "ipptool", "-T", "20", "-tv",
                                     "-f", file.string()};
    argv.push_back("ipp://" + userinfo + "192.0.2.1:631/printers/secure");
    argv.push_back("/usr/share/cups/ipptool/print-job.test");
    std::vector<std::string> env = {"HOME=" + (f.dir() / "client-home").string()};
    fs::create_directories(f.dir() / "client-home");
    // print-job.test sends cupsUser() as requesting-user-name; CUPS_USER sets it.
    if (!claimed.empty()) env.push_back("CUPS_USER=" + claimed);
    return run(argv, env);
}

}  // namespace

TEST_CASE("lp -U by an unprivileged local user does not print as the allowed user", "[print][host]") {
    // Regression (issue 15): `lp -U alice -d secure list.txt` run by bob printed the list,
    // and CUPS and our record both said alice.
    PrintFixture f(k_policy, /*journal=*/true);
    const auto& alice = accounts().allowed;  // cgprint-ok, in allow_users
    const auto& bob = accounts().other;      // cgprint-other, not
    const auto doc = f.document("list.txt", customer_list());

    // The protected queue's policy makes cupsd authenticate lp: bob's peer credentials are
    // not alice's, and without a terminal there is no password to give.
    auto claimed = lp_as(f, bob, {"-U", alice.name, "-d", "secure", doc.string()});
    INFO(claimed.out << claimed.err);
    CHECK(claimed.rc != 0);
    CHECK(contains(claimed.err, "Unauthorized"));

    // alice herself prints (peer credentials), recorded as authenticated.
    auto real = lp_as(f, alice, {"-d", "secure", doc.string()});
    INFO(real.out << real.err);
    int id = job_id(real, "secure");
    REQUIRE(id > 0);
    CHECK(f.wait_settled(id).state == k_completed);
    REQUIRE(f.secure().wait_job(1, 10s));
    REQUIRE(f.wait_records(id, 1));
    CHECK(contains(f.print_records(id)[0], "\"decision\":\"allow\""));
    std::vector<custguard::events::testing::JournalEntry> journal;
    for (int i = 0; i < 50 && journal.empty(); ++i) {
        journal = f.journal_records(id);
        if (journal.empty()) std::this_thread::sleep_for(100ms);
    }
    REQUIRE(journal.size() == 1);
    CHECK(journal[0]["CUSTGUARD_USER"] == alice.name);
    CHECK(journal[0]["CUSTGUARD_UID"] == std::to_string(alice.uid));
    CHECK(journal[0]["CUSTGUARD_AUTHENTICATED"] == "yes");

    // A queue whose policy lets the claimed name through (the CUPS default): cupsd now
    // names the job alice, and the daemon still does not count her as allowed.
    REQUIRE(run({"lpadmin", "-p", "secure", "-o", "printer-op-policy=default"}, f.client_env()).rc == 0);
    auto through = lp_as(f, bob, {"-U", alice.name, "-d", "secure", doc.string()});
    INFO(through.out << through.err);
    int claimed_id = job_id(through, "secure");
    REQUIRE(claimed_id > 0);
    auto s = f.wait_settled(claimed_id);
    CHECK(s.state == k_held);
    CHECK(contains(s.message, "not authenticated"));
    std::this_thread::sleep_for(300ms);
    CHECK(f.secure().received().size() == 1);  // only alice's own job
    REQUIRE(f.wait_records(claimed_id, 1));
    auto rec = f.print_records(claimed_id)[0];
    INFO(rec);
    CHECK(contains(rec, "\"decision\":\"hold\""));
    CHECK(contains(rec, "\"authenticated\":\"no\""));
    CHECK(contains(rec, "is not authenticated (CUPS did not authenticate the user"));
    CHECK(contains(rec, "\"user\":{\"name\":\"cgprint-ok\"}"));  // a claimed name gets no uid
}

TEST_CASE("IPP from another network namespace: a claimed name does not print and Basic credentials do",
          "[print][host]") {
    NetnsPair net;
    FixtureOptions options;
    options.netns = net.server();
    options.listen = "192.0.2.1:631";
    PrintFixture f(k_policy, options);
    const auto [carol, password] = account_with_password("cgprint-net", "cgprint-customers");  // allowed
    const auto doc = f.document("list.txt", customer_list());

    // No credentials, requesting-user-name of an allowed user: cupsd refuses.
    auto claimed = ipp_print(f, net, doc, "", carol.name);
    INFO(claimed.out << claimed.err);
    CHECK(claimed.rc != 0);
    CHECK(contains(claimed.out, "client-error-not-authenticated"));
    // A wrong password is no better.
    auto wrong = ipp_print(f, net, doc, carol.name + ":not-" + password + "@", "");
    CHECK(wrong.rc != 0);

    // Valid Basic credentials of the real account: judged as that user, allowed, printed.
    auto authed = ipp_print(f, net, doc, carol.name + ":" + password + "@", "");
    INFO(authed.out << authed.err);
    REQUIRE(authed.rc == 0);
    REQUIRE(f.secure().wait_job(1, 30s));
    std::string rec;
    for (int i = 0; i < 100 && rec.empty(); ++i) {
        for (const auto& l : f.records())
            if (contains(l, "\"action\":\"print\"")) rec = l;
        if (rec.empty()) std::this_thread::sleep_for(100ms);
    }
    INFO(rec);
    CHECK(contains(rec, "\"decision\":\"allow\""));
    CHECK(contains(rec, "\"name\":\"cgprint-net\""));
    CHECK(contains(rec, "\"authenticated\":\"yes\""));
    CHECK(contains(rec, "\"client\":{\"ip\":\"192.0.2.2\"}"));

    // Where the queue's policy lets any name through, the claimed job reaches the backend
    // and is held as unauthenticated: the daemon's own check, not only cupsd's.
    REQUIRE(run({"lpadmin", "-p", "secure", "-o", "printer-op-policy=default"}, f.client_env()).rc == 0);
    auto through = ipp_print(f, net, doc, "", carol.name);
    INFO(through.out << through.err);
    REQUIRE(through.rc == 0);
    bool held = false;
    for (int i = 0; i < 100 && !held; ++i) {
        for (const auto& l : f.records())
            if (contains(l, "\"decision\":\"hold\"") && contains(l, "\"authenticated\":\"no\"") &&
                contains(l, "\"name\":\"cgprint-net\""))
                held = true;
        if (!held) std::this_thread::sleep_for(100ms);
    }
    CHECK(held);
    std::this_thread::sleep_for(300ms);
    CHECK(f.secure().received().size() == 1);
}

TEST_CASE("status names a protected queue whose policy lets a claimed name through and protect fixes it",
          "[print][host]") {
    // cupsd.conf without <Policy custguard>: printer protect must install it.
    FixtureOptions options;
    options.custguard_policy = false;
    PrintFixture f(k_policy, options);
    const auto& alice = accounts().allowed;
    const auto& bob = accounts().other;

    REQUIRE(f.ctl({"policy", "reload"}).rc == 0);  // the daemon checks CUPS again
    CHECK(status_lists(f, "\"unprotected_queues\":[\"office\",\"secure\"]"));
    auto status = f.ctl({"status"}).out;
    INFO(status);
    CHECK(contains(status, "CUPS queue secure lets a client claim the print user (policy 'default': Print-Job needs no user"));
    CHECK(contains(status, "run: custguardctl printer protect secure"));
    CHECK(contains(f.ctl({"printer", "list"}).out, "secure  UNPROTECTED  custguard:socket://"));
    auto json = f.ctl({"printer", "list", "--json"}).out;
    INFO(json);
    CHECK(contains(json, "\"authenticated_users\":false"));
    CHECK(contains(json, "\"op_policy\":\"default\""));

    auto p = f.ctl({"printer", "protect", "secure"});
    INFO(p.out << p.err);
    REQUIRE(p.rc == 0);
    CHECK(contains(p.out, "<Policy custguard> installed"));
    CHECK(contains(p.out, "secure: printer-op-policy default -> custguard"));
    CHECK(contains(f.ctl({"printer", "list"}).out, "secure  protected  custguard:socket://"));
    REQUIRE(f.ctl({"policy", "reload"}).rc == 0);
    CHECK(status_lists(f, "\"unprotected_queues\":[\"office\"]"));
    // Idempotent: nothing left to change.
    CHECK(contains(f.ctl({"printer", "protect", "secure"}).out, "secure is already protected"));

    // And it holds: bob's claimed name is refused, alice prints.
    const auto doc = f.document("list.txt", customer_list());
    CHECK(lp_as(f, bob, {"-U", alice.name, "-d", "secure", doc.string()}).rc != 0);
    auto real = lp_as(f, alice, {"-d", "secure", doc.string()});
    int id = job_id(real, "secure");
    REQUIRE(id > 0);
    CHECK(f.wait_settled(id).state == k_completed);
    CHECK(f.secure().received().size() == 1);

    REQUIRE(f.ctl({"printer", "unprotect", "secure"}).rc == 0);
    CHECK(contains(f.ctl({"printer", "list"}).out, "secure  UNPROTECTED  socket://"));
}
