#include "custguard/cups/cups_policy.hpp"

#include <algorithm>
#include <cctype>

namespace custguard::print {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

std::vector<std::string> words(std::string_view s) {
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
        std::size_t j = i;
        while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
        if (j > i) out.emplace_back(s.substr(i, j - i));
        i = j;
    }
    return out;
}

// One cupsd.conf line as cupsFileGetConf() splits it: directive and value, comments and the
// closing '>' of a section tag removed.
struct Line {
    std::string_view name, value;
};

Line split(std::string_view raw) {
    if (auto hash = raw.find('#'); hash != std::string_view::npos) raw = raw.substr(0, hash);
    raw = trim(raw);
    Line l;
    auto sp = std::find_if(raw.begin(), raw.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
    l.name = raw.substr(0, static_cast<std::size_t>(sp - raw.begin()));
    l.value = trim(raw.substr(l.name.size()));
    if (!l.name.empty() && l.name.front() == '<') {
        if (!l.value.empty() && l.value.back() == '>') l.value = trim(l.value.substr(0, l.value.size() - 1));
        else if (l.value.empty() && l.name.back() == '>') l.name = l.name.substr(0, l.name.size() - 1);
    }
    return l;
}

tl::expected<CupsAuthType, std::string> auth_type(std::string_view v, bool allow_default) {
    if (iequals(v, "none")) return CupsAuthType::none;
    if (iequals(v, "basic")) return CupsAuthType::basic;
    if (iequals(v, "negotiate")) return CupsAuthType::negotiate;
    if (allow_default && iequals(v, "default")) return CupsAuthType::default_type;
    if (!allow_default && iequals(v, "auto")) return CupsAuthType::automatic;
    return tl::unexpected("unknown authentication type '" + std::string(v) + "'");
}

// The limits cupsd applies to `op`: those naming it, else those for All.
std::vector<const CupsLimit*> limits_for(const CupsPolicy& p, std::string_view op) {
    std::vector<const CupsLimit*> named, all;
    for (const auto& l : p.limits) {
        if (l.operations.empty()) all.push_back(&l);
        for (const auto& o : l.operations) {
            if (iequals(o, op)) named.push_back(&l);
            else if (iequals(o, "All")) all.push_back(&l);
        }
    }
    return named.empty() ? all : named;
}

// Empty when the limit makes cupsd authenticate the user; else what lets a claimed name in.
std::string unauthenticated(const CupsdConf& conf, const CupsLimit& l) {
    CupsAuthType type = l.type == CupsAuthType::default_type ? conf.default_auth_type : l.type;
    if (!l.user_required) return "needs no user (no AuthType or Require line)";
    if (type == CupsAuthType::none)
        return l.type == CupsAuthType::none ? "takes the name the client sends (AuthType None)"
                                            : "takes the name the client sends (AuthType Default with DefaultAuthType None)";
    if (!l.satisfy_all) return "lets an allowed address in without authentication (Satisfy any)";
    return {};
}

bool owner_only(const CupsLimit& l) {
    if (l.require_valid_user || l.require_group || l.require_users.empty()) return false;
    return std::all_of(l.require_users.begin(), l.require_users.end(),
                       [](const std::string& n) { return iequals(n, "@OWNER") || iequals(n, "@SYSTEM"); });
}

}  // namespace

tl::expected<CupsdConf, std::string> parse_cupsd_conf(std::string_view text) {
    if (text.size() > max_cupsd_conf)
        return tl::unexpected("cupsd.conf is larger than " + std::to_string(max_cupsd_conf) + " bytes");
    CupsdConf conf;
    enum class In { top, section, policy, limit } in = In::top;
    std::string section;  // the <Location>/<Limit> outside a policy we are skipping
    int depth = 0;        // nesting inside a skipped section
    int lineno = 0;
    auto where = [&] { return " (cupsd.conf line " + std::to_string(lineno) + ")"; };
    std::size_t pos = 0;
    while (pos <= text.size()) {
        auto nl = text.find('\n', pos);
        std::string_view raw = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
        ++lineno;
        Line l = split(raw);
        if (l.name.empty()) continue;
        switch (in) {
        case In::top:
            if (iequals(l.name, "<Policy")) {
                if (l.value.empty()) return tl::unexpected("<Policy> without a name" + where());
                conf.policies.push_back(CupsPolicy{std::string(l.value), {}, lineno});
                in = In::policy;
            } else if (l.name.front() == '<' && l.name.size() > 1 && l.name[1] != '/') {
                in = In::section;
                depth = 1;
            } else if (iequals(l.name, "DefaultAuthType")) {
                auto t = auth_type(l.value, false);
                if (!t) return tl::unexpected(t.error() + where());
                conf.default_auth_type = *t;
            }
            break;
        case In::section:
            if (l.name.front() == '<') depth += (l.name.size() > 1 && l.name[1] == '/') ? -1 : 1;
            if (depth == 0) in = In::top;
            break;
        case In::policy:
            if (iequals(l.name, "</Policy>") || iequals(l.name, "</Policy")) {
                in = In::top;
            } else if (iequals(l.name, "<Limit")) {
                CupsLimit limit;
                limit.operations = words(l.value);
                limit.line = lineno;
                conf.policies.back().limits.push_back(std::move(limit));
                in = In::limit;
            } else if (l.name.front() == '<') {
                return tl::unexpected("unexpected " + std::string(l.name) + " inside <Policy " +
                                      conf.policies.back().name + ">" + where());
            }
            break;
        case In::limit: {
            CupsLimit& limit = conf.policies.back().limits.back();
            if (iequals(l.name, "</Limit>") || iequals(l.name, "</Limit")) {
                in = In::policy;
            } else if (iequals(l.name, "AuthType")) {
                auto t = auth_type(l.value, true);
                if (!t) return tl::unexpected(t.error() + where());
                limit.type = *t;
                limit.user_required = *t != CupsAuthType::none;
            } else if (iequals(l.name, "AuthClass")) {
                if (iequals(l.value, "anonymous")) {
                    limit.type = CupsAuthType::none;
                    limit.user_required = false;
                } else {
                    limit.user_required = true;
                    limit.require_group = limit.require_group || !iequals(l.value, "user");
                }
            } else if (iequals(l.name, "Require")) {
                auto w = words(l.value);
                if (w.empty()) return tl::unexpected("Require without a value" + where());
                limit.user_required = true;
                if (iequals(w[0], "valid-user")) limit.require_valid_user = true;
                else if (iequals(w[0], "group")) limit.require_group = true;
                else if (iequals(w[0], "user")) limit.require_users.insert(limit.require_users.end(), w.begin() + 1, w.end());
                else return tl::unexpected("unknown Require '" + w[0] + "'" + where());
            } else if (iequals(l.name, "Satisfy")) {
                limit.satisfy_all = !iequals(l.value, "any");
            } else if (l.name.front() == '<') {
                return tl::unexpected("unexpected " + std::string(l.name) + " inside <Limit>" + where());
            }
            break;
        }
        }
    }
    if (in == In::policy || in == In::limit)
        return tl::unexpected("<Policy " + conf.policies.back().name + "> is not closed");
    return conf;
}

std::string claimed_name_problem(const CupsdConf& conf, std::string_view name) {
    const CupsPolicy* policy = nullptr;
    for (const auto& p : conf.policies) {
        if (!iequals(p.name, name)) continue;
        // cupsd would merge or pick one; custguard does not guess which.
        if (policy) return "policy '" + std::string(name) + "' is defined twice in cupsd.conf";
        policy = &p;
    }
    if (!policy) return "policy '" + std::string(name) + "' is not in cupsd.conf";
    const std::string who = "policy '" + policy->name + "': ";
    // The operations that name the job's user...
    for (std::string_view op : {"Print-Job", "Print-URI", "Create-Job"}) {
        auto limits = limits_for(*policy, op);
        if (limits.empty()) return who + std::string(op) + " is covered by no <Limit>";
        for (const auto* l : limits)
            if (auto why = unauthenticated(conf, *l); !why.empty())
                return who + std::string(op) + " " + why + " (line " + std::to_string(l->line) + ")";
    }
    // ... and those that add documents to a job: only its authenticated owner.
    for (std::string_view op : {"Send-Document", "Send-URI"}) {
        auto limits = limits_for(*policy, op);
        if (limits.empty()) return who + std::string(op) + " is covered by no <Limit>";
        for (const auto* l : limits) {
            auto why = unauthenticated(conf, *l);
            if (why.empty() && !owner_only(*l)) why = "lets users other than the job's owner add documents (Require user @OWNER @SYSTEM)";
            if (!why.empty()) return who + std::string(op) + " " + why + " (line " + std::to_string(l->line) + ")";
        }
    }
    return {};
}

std::string custguard_policy_block() {
    // Debian's default policy, with job creation open only to authenticated users: locally
    // the peer credentials of cupsd's socket (PeerCred), over the network a password (PAM).
    return R"(<Policy custguard>
  # Installed by custguardctl printer protect: a print job's user is an authenticated one.
  JobPrivateAccess default
  JobPrivateValues default
  SubscriptionPrivateAccess default
  SubscriptionPrivateValues default
  <Limit Create-Job Print-Job Print-URI Validate-Job>
    AuthType Basic
    Require valid-user
    Order deny,allow
  </Limit>
  <Limit Send-Document Send-URI Hold-Job Release-Job Restart-Job Purge-Jobs Set-Job-Attributes Create-Job-Subscription Renew-Subscription Cancel-Subscription Get-Notifications Reprocess-Job Cancel-Current-Job Suspend-Current-Job Resume-Job Cancel-My-Jobs Close-Job CUPS-Move-Job CUPS-Get-Document CUPS-Authenticate-Job Cancel-Job>
    AuthType Basic
    Require user @OWNER @SYSTEM
    Order deny,allow
  </Limit>
  <Limit CUPS-Add-Modify-Printer CUPS-Delete-Printer CUPS-Add-Modify-Class CUPS-Delete-Class CUPS-Set-Default CUPS-Get-Devices>
    AuthType Basic
    Require user @SYSTEM
    Order deny,allow
  </Limit>
  <Limit Pause-Printer Resume-Printer Enable-Printer Disable-Printer Pause-Printer-After-Current-Job Hold-New-Jobs Release-Held-New-Jobs Deactivate-Printer Activate-Printer Restart-Printer Shutdown-Printer Startup-Printer Promote-Job Schedule-Job-After Cancel-Jobs CUPS-Accept-Jobs CUPS-Reject-Jobs>
    AuthType Basic
    Require user @SYSTEM
    Order deny,allow
  </Limit>
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
)";
}

std::string with_custguard_policy(std::string_view conf) {
    // Find "<Policy custguard>" ... "</Policy>" by lines, as parse_cupsd_conf() reads them.
    std::size_t begin = std::string_view::npos, end = std::string_view::npos;
    std::size_t pos = 0;
    while (pos < conf.size()) {
        auto nl = conf.find('\n', pos);
        std::size_t next = nl == std::string_view::npos ? conf.size() : nl + 1;
        Line l = split(conf.substr(pos, next - pos));
        if (begin == std::string_view::npos) {
            if (iequals(l.name, "<Policy") && iequals(l.value, custguard_policy)) begin = pos;
        } else if (iequals(l.name, "</Policy>") || iequals(l.name, "</Policy")) {
            end = next;
            break;
        }
        pos = next;
    }
    std::string out;
    if (begin == std::string_view::npos || end == std::string_view::npos) {
        out.assign(conf);
        if (!out.empty() && out.back() != '\n') out += '\n';
        return out + custguard_policy_block();
    }
    out.assign(conf.substr(0, begin));
    out += custguard_policy_block();
    out.append(conf.substr(end));
    return out;
}

}  // namespace custguard::print
