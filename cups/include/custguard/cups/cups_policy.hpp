// Whether a CUPS operation policy makes a job's user an authenticated one, judged from the
// text of cupsd.conf as cupsd reads it (scheduler/conf.c, auth.c of CUPS 2.4), and the
// <Policy custguard> that `custguardctl printer protect` installs. Pure: text in, verdict out.
//
// cupsd names a job after the connection's authenticated user when there is one, else after
// the requesting-user-name the client sends. A job-creating operation is authenticated only
// when its <Limit> demands a user (AuthType Basic/Default/Negotiate, or a Require line) with
// an authentication type other than None (AuthType None + Require takes the claimed name)
// and Satisfy all (with Satisfy any an allowed address is enough). Documents added to a job
// later must come from its owner, or someone else's document prints under the owner's name.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

namespace custguard::print {

inline constexpr std::string_view custguard_policy = "custguard";

// The largest cupsd.conf custguard reads (cupsd's own are a few KiB).
inline constexpr std::size_t max_cupsd_conf = 4u << 20;

enum class CupsAuthType { none, basic, negotiate, default_type, automatic };

// One <Limit> of a policy, with cupsd's semantics of the directives it holds.
struct CupsLimit {
    std::vector<std::string> operations;  // as written ("Create-Job", "All"), case as written
    CupsAuthType type = CupsAuthType::none;
    bool user_required = false;           // cupsd's level above ANON
    bool satisfy_all = true;
    std::vector<std::string> require_users;  // "Require user a @OWNER": the names
    bool require_valid_user = false;
    bool require_group = false;
    int line = 0;
};

struct CupsPolicy {
    std::string name;
    std::vector<CupsLimit> limits;
    int line = 0;
};

struct CupsdConf {
    CupsAuthType default_auth_type = CupsAuthType::basic;  // cupsd's default
    std::vector<CupsPolicy> policies;
};

// Parses the directives that matter here; everything else is skipped. Errors name the line.
tl::expected<CupsdConf, std::string> parse_cupsd_conf(std::string_view text);

// Empty when `policy` makes every job's user authenticated (as above); otherwise why not,
// in a sentence ("policy 'default': Create-Job needs no authentication (line 40)").
std::string claimed_name_problem(const CupsdConf& conf, std::string_view policy);

// The <Policy custguard> block (with its closing tag and a trailing newline).
std::string custguard_policy_block();

// `conf` with its <Policy custguard> replaced by custguard_policy_block(), or the block
// appended when there is none.
std::string with_custguard_policy(std::string_view conf);

}  // namespace custguard::print
