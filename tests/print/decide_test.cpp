// The print decision without I/O: user/%group, printer allow-list, content, unreadable
// documents and scan failures.
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

print::JobFacts job(std::string user, std::string printer) {
    print::JobFacts j;
    j.job = "7";
    j.user = std::move(user);
    j.printer = std::move(printer);
    return j;
}

}  // namespace

TEST_CASE("below the threshold prints whoever prints where", "[print][unit]") {
    auto v = print::decide(print_policy(), job("bob", "office"), {1002u, {100}}, doc(1, 1));
    CHECK(v.action == Action::allow);
    CHECK_FALSE(v.customer_data);
    CHECK(v.reason.find("below threshold 3") != std::string::npos);
}

TEST_CASE("customer data: allowed user on allowed printer prints and others get the action", "[print][unit]") {
    auto p = print_policy();
    CHECK(print::decide(p, job("alice", "secure"), {1001u, {100}}, doc(3)).action == Action::allow);
    // %group membership by gid
    CHECK(print::decide(p, job("carol", "secure"), {1003u, {100, 2000}}, doc(3)).action == Action::allow);
    auto wrong_printer = print::decide(p, job("alice", "office"), {1001u, {100}}, doc(3));
    CHECK(wrong_printer.action == Action::hold);
    CHECK(wrong_printer.reason.find("queue office is not in [print] allow_printers") != std::string::npos);
    auto wrong_user = print::decide(p, job("bob", "secure"), {1002u, {100}}, doc(2, 1));
    CHECK(wrong_user.action == Action::hold);
    CHECK(wrong_user.customer_data);
    CHECK(wrong_user.reason.find("bob is not in [print] allow_users") != std::string::npos);
    CHECK(wrong_user.reason.find("credit_card=2 email=1") != std::string::npos);
    p.action = Action::deny;
    CHECK(print::decide(p, job("bob", "secure"), {1002u, {100}}, doc(3)).action == Action::deny);
    // A user name that NSS does not know matches no uid, and no group.
    CHECK(print::decide(p, job("print-customers", "secure"), {std::nullopt, {}}, doc(3)).action == Action::deny);
}

TEST_CASE("only the policy's detectors count towards the threshold", "[print][unit]") {
    auto p = print_policy();
    p.detectors = {"my_number"};
    CHECK(print::decide(p, job("bob", "office"), {1002u, {}}, doc(5, 5)).action == Action::allow);
}

TEST_CASE("unreadable documents follow the unreadable setting and scan failures hold", "[print][unit]") {
    auto p = print_policy();
    scan::DocumentScan image;
    image.readable = false;
    image.reason = "image only";
    p.unreadable = policy::UnreadableDocuments::deny;
    auto v = print::decide(p, job("bob", "office"), {1002u, {}}, image);
    CHECK(v.action == Action::deny);
    CHECK(v.reason.find("image only") != std::string::npos);
    CHECK(print::decide(p, job("alice", "secure"), {1001u, {}}, image).action == Action::allow);
    p.unreadable = policy::UnreadableDocuments::allow;
    CHECK(print::decide(p, job("bob", "office"), {1002u, {}}, image).action == Action::allow);
    auto failed = print::decide(p, job("alice", "secure"), {1001u, {}},
                                tl::expected<scan::DocumentScan, std::string>(tl::unexpect, "gs crashed"));
    CHECK(failed.action == Action::hold);
}
