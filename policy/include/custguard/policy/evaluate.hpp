// Decide an access request against a policy. Built once per policy (indexes), then
// evaluate() is allocation-free and its cost does not grow with the number of zones,
// users or grants: one hash lookup per path component, one per subject id.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "custguard/policy/policy.hpp"

namespace custguard::policy {

enum class Rule : std::uint8_t {
    outside_zones,        // no zone contains the path
    allowed_user,         // uid listed in allow_users
    allowed_group,        // a gid listed in allow_users as %group
    grant,                // a temporary grant that has not expired
    not_allowed,          // neither user nor group nor grant
    program_not_allowed,  // user allowed, but the executable is not in allow_programs
    revoked,              // an unexpired Deny of the user (bulk-read cool-down) overrides every allow
    // allow_programs matched, but the program may run code it does not name:
    program_tampered,     // started with dynamic-loader injection (LD_PRELOAD, ...)
    program_traced,       // traced (ptrace) or its memory accessed by another process
    // user (and program) allowed, but the read is served by Samba for a client machine
    // that allow_clients does not list (nor a client grant in force), or whose address
    // could not be established
    client_not_allowed,
};
std::string_view to_string(Rule);

struct AccessRequest {
    std::string_view path;   // absolute path of the opened file
    std::uint32_t uid = 0;   // fsuid
    std::span<const std::uint32_t> gids;  // primary and supplementary groups
    std::string_view exe;    // executable path ("" when unknown)
    std::uint64_t now = 0;   // seconds since the epoch, for grants and denies
    // The program may run code it does not name (Rule::program_tampered or
    // Rule::program_traced; the enforcers find out, see allow_programs), else outside_zones.
    Rule untrusted_program = Rule::outside_zones;
    // Made by a Samba server process (smbd) on behalf of a remote client. In a zone with
    // allow_clients every address that process serves must be listed (Samba hands a
    // client's further connections, multichannel, to the process that owns its session,
    // and the open does not say which connection carried it). No address: the client
    // could not be established, which is refused there too. Local reads (remote false)
    // are decided by users and programs alone.
    bool remote = false;
    std::span<const ClientAddress> clients;
};

struct Decision {
    Action action = Action::allow;
    const Zone* zone = nullptr;  // nullptr outside every zone
    Rule rule = Rule::outside_zones;
    // Write an access record: always for audit and deny; for allow when the zone has
    // record_allowed (the access history).
    bool record = false;

    // A sentence for people: "alice is allowed by allow_users of zone customers".
    std::string reason() const;
};

class Evaluator {
public:
    explicit Evaluator(const Policy& policy);
    ~Evaluator();
    Evaluator(Evaluator&&) noexcept;
    Evaluator& operator=(Evaluator&&) noexcept;

    // The zone holding `path` (the deepest one for nested zones), or nullptr.
    const Zone* zone_of(std::string_view path) const;
    Decision evaluate(const AccessRequest& request) const;

private:
    struct Index;
    std::unique_ptr<Index> index_;
};

// Convenience for one-off decisions; builds an Evaluator each call.
Decision evaluate(const Policy& policy, const AccessRequest& request);

}  // namespace custguard::policy
