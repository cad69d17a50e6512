// The print decision, pure: job facts, the requesting user's resolved ids and the content
// scan in, an action and a sentence for people out. No I/O, so it is unit-testable.
//
//   content below the threshold                      -> allow
//   customer data, user AND printer allowed          -> allow
//   customer data otherwise                          -> [print] action
//   unreadable, user AND printer allowed             -> allow
//   unreadable otherwise                             -> [print] unreadable
// (unreadable: no text, or text the printer may print differently; see
// custguard.policy(5) UNREADABLE DOCUMENTS)
//   the scan itself failed                           -> hold (fail closed)
//
// "Allowed" means the user (by uid, or a %group by gid) is in [print] allow_users and the
// queue is in [print] allow_printers (which the loader merges with the printer devices of
// the CLI-managed state). An empty list allows nobody: printing customer data is
// forbidden unless the policy names who and where. Only a user CUPS authenticated for the
// job can be in allow_users: a name the client merely claims (lp -U, requesting-user-name)
// is judged as a user who is not allowed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "custguard/policy/policy.hpp"
#include "custguard/scan/document.hpp"

namespace custguard::print {

struct JobFacts {
    std::string job;      // CUPS job id
    std::string printer;  // queue name
    std::string user;     // the job's user as cupsd names it (the backend's argv[2])
    std::string auth_user;  // AUTH_USERNAME cupsd gave the backend: its authenticated user, if any
    std::string title;
    std::uint32_t copies = 1;
    std::string client;        // job-originating-host-name
    std::string content_type;  // MIME type of the original document
};

// The requesting user as NSS knows it; uid empty when the name is unknown here.
struct Requester {
    std::optional<std::uint32_t> uid;
    std::vector<std::uint32_t> gids;  // primary and supplementary
    bool authenticated = false;       // CUPS authenticated this user for the job
    std::string not_authenticated;    // why not, when not
};

// What cupsd says about the job, asked by the daemon itself (see print_user.hpp).
struct CupsIdentity {
    std::string error;           // cupsd could not be asked: nothing below is known
    std::string job_user;        // job-originating-user-name
    std::string destination;     // the queue or class the job was sent to
    bool takes_auth_info = false;  // that destination has auth-info-required: AUTH_USERNAME may be a client's word
};

// Empty when `job.user` is the user cupsd authenticated when the job was created (the
// backend saw AUTH_USERNAME, cupsd names the same user, and the destination does not take
// client-supplied auth-info); otherwise why the name is only claimed.
std::string unauthenticated_because(const JobFacts& job, const CupsIdentity& cups);

struct Verdict {
    policy::Action action = policy::Action::hold;
    std::string reason;
    bool customer_data = false;
};

// Which allow_users entry admits the requester ("alice", "%print-customers"), if any.
std::optional<std::string> allowed_by(const policy::PrintPolicy& print, const std::string& user,
                                      const Requester& who);
bool printer_allowed(const policy::PrintPolicy& print, const std::string& printer);

Verdict decide(const policy::PrintPolicy& print, const JobFacts& job, const Requester& who,
               const tl::expected<scan::DocumentScan, std::string>& scanned);

// A job of one or more documents. `total` gets the sums over the readable documents
// (findings, pages, text) so the threshold counts the whole job; it is what the record
// shows. Unreadable documents and documents that could not be scanned are judged on their
// own; the strictest verdict wins (deny, hold, audit, allow). One document: as decide().
Verdict decide_job(const policy::PrintPolicy& print, const JobFacts& job, const Requester& who,
                   const std::vector<tl::expected<scan::DocumentScan, std::string>>& scans,
                   scan::DocumentScan& total);

// The detectors the policy counts (all when it names none), for format_findings().
std::vector<scan::Detector> counted_detectors(const policy::PrintPolicy& print);
// "my_number=2 email=1": the non-zero counts only (names and counts, never matches).
std::string format_hits(const scan::Findings& findings, const std::vector<scan::Detector>& detectors);

}  // namespace custguard::print
