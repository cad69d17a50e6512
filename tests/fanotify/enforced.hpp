// Test support for the fanotify host tests: an enforcer started on a policy, and a child
// in its own user and mount namespace (as `unshare -Urm`).
#pragma once

#include <sys/prctl.h>

#include <fstream>
#include <functional>
#include <memory>
#include <string>

#include "daemon/fanotify/fanotify_enforcer.hpp"
#include "sandbox.hpp"

namespace cgtest {

// The users of one_zone(): alice allowed, mallory allowed nowhere.
inline const Cred alice{60001, 60001, {}};
inline const Cred mallory{60009, 60009, {}};

// Zone 1 "customers" at FS/<root>: deny, record allowed, `allowed` (alice in the tests) only.
template <class Fs>
custguard::policy::Compiled one_zone(const Fs& fs, uid_t allowed = 60001, const char* root = "zone") {
    custguard::policy::Compiled c;
    c.zones = {zone(1, "customers", custguard::policy::Violation::deny, true)};
    c.roots = {{fs.path(root), 1}};
    c.subjects = {{1, custguard::policy::SubjectKind::uid, allowed}};
    return c;
}

// A started enforcer (no fd store) applying `policy`, its events into `events`.
inline std::unique_ptr<custguard::daemon::FanotifyEnforcer> start_enforcer(
    Collector& events, const custguard::policy::Compiled& policy, custguard::daemon::FanotifyOptions options = {}) {
    options.use_fd_store = false;
    auto e = custguard::daemon::FanotifyEnforcer::create(std::move(options));
    REQUIRE(e);
    auto enforcer = std::move(*e);
    REQUIRE(enforcer->start(events.handler()));
    auto r = enforcer->apply(policy);
    INFO((r ? "" : r.error()));
    REQUIRE(r);
    return enforcer;
}

// start_enforcer() with fs.fanotify.max_queued_events at `notify_queue` while it starts
// (its notify group keeps that limit), restored at once; 0: unchanged.
inline std::unique_ptr<custguard::daemon::FanotifyEnforcer> start_enforcer(
    Collector& events, const custguard::policy::Compiled& policy, custguard::daemon::FanotifyOptions options,
    unsigned notify_queue) {
    if (!notify_queue) return start_enforcer(events, policy, std::move(options));
    const char* sysctl = "/proc/sys/fs/fanotify/max_queued_events";
    std::string saved;
    std::ifstream(sysctl) >> saved;
    REQUIRE(!saved.empty());
    std::ofstream(sysctl) << notify_queue;
    auto enforcer = start_enforcer(events, policy, std::move(options));
    std::ofstream(sysctl) << saved;
    return enforcer;
}

inline bool write_file(const char* path, const std::string& text) {
    int fd = ::open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ::close(fd);
    return ok;
}

// Exit codes of a namespace child that never got to act: a refusal to build the route is
// a test failure, never a pass.
constexpr int no_userns = 200, no_map = 201, no_mount = 202;

// In a child as `who`: a new user and mount namespace (as `unshare -Urm`), the mounts
// `setup` makes there, then `act`. Returns act's result or one of the codes above. Both run
// in the child: they only make system calls on strings built beforehand.
inline int run_in_userns(const Cred& who, const std::function<bool()>& setup, const std::function<int()>& act,
                         pid_t* pid = nullptr) {
    // run_as sets real, effective and saved ids to who's: root in the namespace maps to them.
    const std::string deny = "deny", uid_map = "0 " + std::to_string(who.uid) + " 1\n",
                      gid_map = "0 " + std::to_string(who.gid) + " 1\n";
    return run_as(
        who,
        [&] {
            // setresuid made us non-dumpable, which leaves /proc/self/*_map owned by root.
            ::prctl(PR_SET_DUMPABLE, 1);
            if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return no_userns;
            if (!write_file("/proc/self/setgroups", deny) || !write_file("/proc/self/uid_map", uid_map) ||
                !write_file("/proc/self/gid_map", gid_map))
                return no_map;
            if (!setup()) return no_mount;
            return act();
        },
        pid);
}

}  // namespace cgtest
