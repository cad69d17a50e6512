// The policy the fanotify benches give the enforcer class: one zone, "customers", at
// `root`, refusing everyone but `allowed`.
#pragma once

#include <sys/types.h>

#include <string>

#include "custguard/policy/compile.hpp"

namespace custguard::bench {

inline policy::Compiled one_zone_policy(const std::string& root, uid_t allowed) {
    using namespace policy;
    Compiled c;
    CompiledZone z;
    z.id = 1;
    z.name = "customers";
    z.on_violation = Violation::deny;
    c.zones = {z};
    c.roots = {{root, 1}};
    c.subjects = {{1, SubjectKind::uid, static_cast<std::uint32_t>(allowed)}};
    return c;
}

}  // namespace custguard::bench
