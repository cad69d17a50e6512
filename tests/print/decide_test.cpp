// The print decision without I/O: user/%group, printer allow-list, content, unreadable
// documents and scan failures, and who counts as an authenticated print user.
#include <filesystem>

#include "custguard/edm/edm.hpp"
#include "daemon/print/print_gate.hpp"
#include <catch2/catch.hpp>

#include "daemon/print/decide.hpp"

using namespace custguard;
using policy::Action;

namespace {

policy::PrintPolicy print_policy() {
    policy::PrintPolicy p;
    p.action = Action::hold;
    p.allow_printers = {"secure"};
    policy::Principal alice;
    alice.name = "alice";
    alice.id = 1001;
    policy::Principal group;
    group.kind = policy::Principal::Kind::group;
    group.name = "print-customers";
    group.id = 2000;
    p.allow_users = {alice, group};
    p.threshold = 3;
    return p;
}

scan::DocumentScan doc(std::uint64_t cards, std::uint64_t emails = 0) {
    scan::DocumentScan d;
    d.readable = true;
    d.doc_type = scan::DocType::text;
    d.findings.count(scan::Detector::credit_card) = cards;
    d.findings.count(scan::Detector::email) = emails;
    return d;
}

// A user CUPS authenticated for the job.
print::Requester authed(std::optional<std::uint32_t> uid, std::vector<std::uint32_t> gids) {
    print::Requester r;
    r.uid = uid;
    r.gids = std::move(gids);
    r.authenticated = true;
    return r;
}

print::JobFacts job(std::string user, std::string printer) {
    print::JobFacts j;
    j.job = "7";
    j.user = std::move(user);
    j.printer = std::move(printer);
    return j;
}

}  // namespace

TEST_CASE("below the threshold prints whoever prints where", "[print][unit]") {
    auto v = print::decide(print_policy(), job("bob", "office"), authed(1002u, {100}), doc(1, 1));
    CHECK(v.action == Action::allow);
    CHECK_FALSE(v.customer_data);
    CHECK(v.reason.find("below threshold 3") != std::string::npos);
}

TEST_CASE("customer data: allowed user on allowed printer prints and others get the action", "[print][unit]") {
    auto p = print_policy();
    CHECK(print::decide(p, job("alice", "secure"), authed(1001u, {100}), doc(3)).action == Action::allow);
    // %group membership by gid
    CHECK(print::decide(p, job("carol", "secure"), authed(1003u, {100, 2000}), doc(3)).action == Action::allow);
    auto wrong_printer = print::decide(p, job("alice", "office"), authed(1001u, {100}), doc(3));
    CHECK(wrong_printer.action == Action::hold);
    CHECK(wrong_printer.reason.find("queue office is not in [print] allow_printers") != std::string::npos);
    auto wrong_user = print::decide(p, job("bob", "secure"), authed(1002u, {100}), doc(2, 1));
    CHECK(wrong_user.action == Action::hold);
    CHECK(wrong_user.customer_data);
    CHECK(wrong_user.reason.find("bob is not in [print] allow_users") != std::string::npos);
    CHECK(wrong_user.reason.find("credit_card=2 email=1") != std::string::npos);
    p.action = Action::deny;
    CHECK(print::decide(p, job("bob", "secure"), authed(1002u, {100}), doc(3)).action == Action::deny);
    // A user name that NSS does not know matches no uid, and no group.
    CHECK(print::decide(p, job("print-customers", "secure"), authed(std::nullopt, {}), doc(3)).action == Action::deny);
}

TEST_CASE("only the policy's detectors count towards the threshold", "[print][unit]") {
    auto p = print_policy();
    p.detectors = {"my_number"};
    CHECK(print::decide(p, job("bob", "office"), authed(1002u, {}), doc(5, 5)).action == Action::allow);
}

TEST_CASE("unreadable documents follow the unreadable setting and scan failures hold", "[print][unit]") {
    auto p = print_policy();
    scan::DocumentScan image;
    image.readable = false;
    image.reason = "image only";
    p.unreadable = policy::UnreadableDocuments::deny;
    auto v = print::decide(p, job("bob", "office"), authed(1002u, {}), image);
    CHECK(v.action == Action::deny);
    CHECK(v.reason.find("image only") != std::string::npos);
    CHECK(print::decide(p, job("alice", "secure"), authed(1001u, {}), image).action == Action::allow);
    p.unreadable = policy::UnreadableDocuments::allow;
    CHECK(print::decide(p, job("bob", "office"), authed(1002u, {}), image).action == Action::allow);
    auto failed = print::decide(p, job("alice", "secure"), authed(1001u, {}),
                                tl::expected<scan::DocumentScan, std::string>(tl::unexpect, "gs crashed"));
    CHECK(failed.action == Action::hold);
}

TEST_CASE("a job of several documents: the threshold counts the whole job, the strictest verdict wins",
          "[print][unit]") {
    // Regression: on a queue with a driver only the first document was scanned, so
    // customer data in the second one printed.
    using Scan = tl::expected<scan::DocumentScan, std::string>;
    scan::DocumentScan unreadable;
    unreadable.doc_type = scan::DocType::pdf;
    unreadable.reason = "no text layer";
    auto p = print_policy();
    p.unreadable = policy::UnreadableDocuments::deny;
    struct Row {
        const char* name;
        std::vector<Scan> scans;
        Action action;
        const char* reason_part;
        std::uint64_t cards;
    };
    const std::vector<Row> rows = {
        {"one document: as decide()", {doc(1)}, Action::allow, "below threshold 3", 1},
        {"customer data only in the second", {doc(0), doc(3)}, Action::hold, "credit_card=3", 3},
        {"each below, together above the threshold", {doc(1), doc(1), doc(1)}, Action::hold, "credit_card=3", 3},
        {"an unreadable document follows [print] unreadable", {doc(0), unreadable}, Action::deny,
         "document 2 of 2: unreadable document", 0},
        {"a document that cannot be scanned holds the job", {doc(0), tl::unexpected(std::string("broken"))},
         Action::hold, "document 2 of 2: the document could not be checked (broken)", 0},
        {"deny outranks hold", {doc(3), unreadable}, Action::deny, "unreadable document", 3},
    };
    for (const auto& r : rows) {
        INFO(r.name);
        scan::DocumentScan total;
        auto v = print::decide_job(p, job("bob", "office"), authed(1002u, {100}), r.scans, total);
        CHECK(v.action == r.action);
        CHECK(v.reason.find(r.reason_part) != std::string::npos);
        CHECK(total.findings.count(scan::Detector::credit_card) == r.cards);
    }
}

TEST_CASE("a claimed print user never satisfies allow_users", "[print][unit]") {
    // Regression (issue 15): `lp -U alice` by bob printed customer data as alice.
    auto p = print_policy();
    print::Requester claimed = authed(1001u, {100, 2000});
    claimed.authenticated = false;
    claimed.not_authenticated = "CUPS did not authenticate the user";
    CHECK_FALSE(print::allowed_by(p, "alice", claimed));
    auto v = print::decide(p, job("alice", "secure"), claimed, doc(3));
    CHECK(v.action == Action::hold);
    CHECK(v.reason.find("the print user alice is not authenticated (CUPS did not authenticate the user)") !=
          std::string::npos);
    // Below the threshold nobody needs to be allowed.
    CHECK(print::decide(p, job("alice", "secure"), claimed, doc(1)).action == Action::allow);
    // Unreadable documents: the allowed-user exemption needs an authenticated user too.
    scan::DocumentScan image;
    image.reason = "image only";
    p.unreadable = policy::UnreadableDocuments::hold;
    CHECK(print::decide(p, job("alice", "secure"), claimed, image).action == Action::hold);
}

TEST_CASE("the print user is authenticated only when CUPS says so for this job", "[print][unit]") {
    struct Row {
        const char* name;
        const char* user;
        const char* auth_user;
        print::CupsIdentity cups;
        const char* problem;  // empty: authenticated
    };
    const print::CupsIdentity ok{"", "alice", "secure", false};
    const std::vector<Row> rows = {
        {"authenticated by cupsd, confirmed", "alice", "alice", ok, ""},
        {"no AUTH_USERNAME: a claimed name", "alice", "", ok, "CUPS did not authenticate the user"},
        {"authenticated as someone else", "alice", "bob", ok, "CUPS authenticated bob, not alice"},
        {"cupsd unreachable", "alice", "alice", {"connection refused", "", "", false}, "cannot confirm the user with cupsd"},
        {"cupsd names another user", "alice", "alice", {"", "bob", "secure", false}, "cupsd names the job's user bob"},
        {"queue takes auth-info from clients", "alice", "alice", {"", "alice", "secure", true},
         "takes credentials from the client"},
    };
    for (const auto& r : rows) {
        INFO(r.name);
        auto j = job(r.user, "secure");
        j.auth_user = r.auth_user;
        auto why = print::unauthenticated_because(j, r.cups);
        if (std::string(r.problem).empty()) CHECK(why.empty());
        else CHECK(why.find(r.problem) != std::string::npos);
    }
}

TEST_CASE("edm persons count toward the threshold, one hit per customer, and show in the reason", "[print][unit][edm]") {
    auto d = doc(1);
    d.findings.edm = {{"crm", 2}};
    d.findings.persons = 2;
    auto v = print::decide(print_policy(), job("bob", "office"), authed(1002u, {}), d);
    CHECK(v.customer_data);
    CHECK(v.action == Action::hold);
    CHECK(v.reason.find("credit_card=1 edm:crm=2") != std::string::npos);
    d.findings.edm = {{"crm", 1}};
    d.findings.persons = 1;
    CHECK_FALSE(print::decide(print_policy(), job("bob", "office"), authed(1002u, {}), d).customer_data);
}

TEST_CASE("the print gate refuses an edm: detector whose index is missing, damaged or has no table", "[print][unit][edm]") {
    namespace fs = std::filesystem;
    std::string t = (fs::temp_directory_path() / "cg-print-edm-XXXXXX").string();
    const fs::path dir = ::mkdtemp(t.data());
    print::PrintGate gate(print::GateHost{});
    policy::PrintPolicy p = print_policy();
    p.detectors = {"email", "edm:crm"};
    const std::vector<policy::EdmIndex> tables = {{"crm", (dir / "crm.edm").string(), (dir / "key").string(), {}}};

    auto no_table = gate.apply(p, {});
    REQUIRE_FALSE(no_table);
    CHECK(no_table.error().find("no [edm.crm] table") != std::string::npos);

    auto key = custguard::edm::load_or_create_key((dir / "key").string());
    REQUIRE(key);
    auto missing = gate.apply(p, tables);
    REQUIRE_FALSE(missing);
    CHECK(missing.error().find("[edm.crm]") != std::string::npos);
    CHECK(missing.error().find((dir / "crm.edm").string()) != std::string::npos);

    custguard::edm::Index index;
    index.fields = 0;
    index.min_supporting = 0;
    REQUIRE(custguard::edm::write_index((dir / "crm.edm").string(), index, *key));
    CHECK(gate.apply(p, tables));

    fs::resize_file(dir / "crm.edm", fs::file_size(dir / "crm.edm") - 1);
    auto truncated = gate.apply(p, tables);
    REQUIRE_FALSE(truncated);
    CHECK(truncated.error().find("[edm.crm]") != std::string::npos);
    CHECK(truncated.error().find("rebuild it") != std::string::npos);
    gate.stop();
    fs::remove_all(dir);
}
