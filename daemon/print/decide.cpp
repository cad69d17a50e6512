#include "daemon/print/decide.hpp"

#include <algorithm>

namespace custguard::print {

std::optional<std::string> allowed_by(const policy::PrintPolicy& print, const std::string& user,
                                      const Requester& who) {
    if (!who.authenticated) return std::nullopt;
    for (const auto& p : print.allow_users) {
        if (p.kind == policy::Principal::Kind::user) {
            if ((who.uid && *who.uid == p.id) || (!who.uid && p.name == user)) return p.spelled();
        } else if (std::find(who.gids.begin(), who.gids.end(), p.id) != who.gids.end()) {
            return p.spelled();
        }
    }
    return std::nullopt;
}

std::string unauthenticated_because(const JobFacts& job, const CupsIdentity& cups) {
    if (job.auth_user.empty())
        return "CUPS did not authenticate the user (a claimed name; run custguardctl printer protect " + job.printer + ")";
    if (job.auth_user != job.user)
        return "CUPS authenticated " + job.auth_user + ", not " + job.user;
    if (!cups.error.empty()) return "cannot confirm the user with cupsd: " + cups.error;
    if (cups.job_user != job.user) return "cupsd names the job's user " + cups.job_user + ", not " + job.user;
    if (cups.takes_auth_info)
        return "destination " + cups.destination +
               " takes credentials from the client (auth-info-required), so CUPS's user name is the client's word";
    return {};
}

bool printer_allowed(const policy::PrintPolicy& print, const std::string& printer) {
    return std::find(print.allow_printers.begin(), print.allow_printers.end(), printer) != print.allow_printers.end();
}

std::vector<scan::Detector> counted_detectors(const policy::PrintPolicy& print) {
    std::vector<scan::Detector> out;
    for (const auto& name : print.detectors)
        if (auto d = scan::parse_detector(name)) out.push_back(*d);
    // Only "edm:NAME" detectors listed: no pattern detector counts.
    if (print.detectors.empty()) out.assign(scan::all_detectors().begin(), scan::all_detectors().end());
    return out;
}

namespace {

policy::Action unreadable_action(policy::UnreadableDocuments u) {
    switch (u) {
    case policy::UnreadableDocuments::allow: return policy::Action::allow;
    case policy::UnreadableDocuments::audit: return policy::Action::audit;
    case policy::UnreadableDocuments::deny: return policy::Action::deny;
    case policy::UnreadableDocuments::hold: return policy::Action::hold;
    }
    return policy::Action::hold;
}

// Why the requester may not print customer data here, or empty when they may.
std::string refusal(const policy::PrintPolicy& print, const JobFacts& job, const Requester& who,
                    std::string& allowed_text) {
    auto by = allowed_by(print, job.user, who);
    bool on_printer = printer_allowed(print, job.printer);
    if (by && on_printer) {
        allowed_text = job.user + " may print it (allow_users " + *by + ") on " + job.printer + " (allow_printers)";
        return {};
    }
    std::string why;
    if (!by && !who.authenticated)
        why = "the print user " + job.user + " is not authenticated (" + who.not_authenticated +
              "), so [print] allow_users does not apply";
    else if (!by)
        why = job.user + (who.uid ? "" : " (unknown on this server)") + " is not in [print] allow_users";
    if (!on_printer) why += std::string(why.empty() ? "" : " and ") + "queue " + job.printer + " is not in [print] allow_printers";
    return why;
}

}  // namespace

std::string format_hits(const scan::Findings& findings, const std::vector<scan::Detector>& detectors) {
    std::string out;
    for (auto d : detectors)
        if (auto n = findings.count(d))
            out += (out.empty() ? "" : " ") + std::string(scan::to_string(d)) + "=" + std::to_string(n);
    for (const auto& e : findings.edm)
        if (e.persons) out += (out.empty() ? "" : " ") + std::string(scan::edm_prefix) + e.name + "=" + std::to_string(e.persons);
    return out;
}

Verdict decide(const policy::PrintPolicy& print, const JobFacts& job, const Requester& who,
               const tl::expected<scan::DocumentScan, std::string>& scanned) {
    Verdict v;
    if (!scanned) {
        v.action = policy::Action::hold;
        v.reason = "the document could not be checked (" + scanned.error() + "); held for an administrator";
        return v;
    }
    const auto detectors = counted_detectors(print);
    std::string allowed_text;
    if (!scanned->readable) {
        std::string why = refusal(print, job, who, allowed_text);
        if (why.empty()) {
            v.action = policy::Action::allow;
            v.reason = "unreadable document (" + scanned->reason + "); " + allowed_text;
        } else {
            v.action = unreadable_action(print.unreadable);
            v.reason = "unreadable document (" + scanned->reason + "), [print] unreadable = " +
                       std::string(policy::to_string(v.action)) + "; " + why;
        }
        return v;
    }
    const std::string hits = format_hits(scanned->findings, detectors);
    // Only the counted detectors add up towards the threshold.
    scan::Findings counted;
    for (auto d : detectors) counted.count(d) = scanned->findings.count(d);
    // Each distinct customer of an edm: detector counts as one hit.
    counted.persons = scanned->findings.persons;
    counted.edm = scanned->findings.edm;
    if (!scan::is_customer_data(counted, print.threshold)) {
        v.action = policy::Action::allow;
        v.reason = "no customer data (" + (counted.total() ? hits + ", " : std::string()) + "below threshold " +
                   std::to_string(print.threshold) + ")";
        return v;
    }
    v.customer_data = true;
    std::string why = refusal(print, job, who, allowed_text);
    if (why.empty()) {
        v.action = policy::Action::allow;
        v.reason = "customer data (" + hits + "); " + allowed_text;
    } else {
        v.action = print.action;
        v.reason = "customer data (" + hits + ", threshold " + std::to_string(print.threshold) + "): " + why;
    }
    return v;
}

namespace {

int severity(policy::Action a) {
    switch (a) {
    case policy::Action::allow: return 0;
    case policy::Action::audit: return 1;
    case policy::Action::hold: return 2;
    case policy::Action::deny: return 3;
    }
    return 3;
}

}  // namespace

Verdict decide_job(const policy::PrintPolicy& print, const JobFacts& job, const Requester& who,
                   const std::vector<tl::expected<scan::DocumentScan, std::string>>& scans,
                   scan::DocumentScan& total) {
    total = scan::DocumentScan{};
    bool typed = false;
    std::vector<Verdict> verdicts;
    for (std::size_t i = 0; i < scans.size(); ++i) {
        const auto& s = scans[i];
        if (s && !typed) {
            total.doc_type = s->doc_type;
            total.encoding = s->encoding;
            typed = true;
        }
        if (s) {
            total.pages += s->pages;
            total.pages_without_text += s->pages_without_text;
        }
        if (s && s->readable) {
            total.readable = true;
            total.text_bytes += s->text_bytes;
            total.findings += s->findings;
            continue;
        }
        Verdict v = decide(print, job, who, s);
        if (scans.size() > 1)
            v.reason = "document " + std::to_string(i + 1) + " of " + std::to_string(scans.size()) + ": " + v.reason;
        verdicts.push_back(std::move(v));
    }
    if (total.readable) verdicts.insert(verdicts.begin(), decide(print, job, who, total));
    if (verdicts.empty()) return decide(print, job, who, tl::unexpected(std::string("the job has no document")));
    const Verdict* worst = &verdicts.front();
    for (const auto& v : verdicts)
        if (severity(v.action) > severity(worst->action)) worst = &v;
    Verdict out = *worst;
    out.customer_data = verdicts.front().customer_data;
    return out;
}

}  // namespace custguard::print
