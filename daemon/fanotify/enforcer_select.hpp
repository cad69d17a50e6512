// Start-up choice of the enforcer: `--enforcer auto` probes BPF LSM by loading and
// attaching a trivial lsm/file_open program, then fanotify permission events, else none.
#pragma once

#include <string>

#include <tl/expected.hpp>

#include "custguard/policy/policy.hpp"

namespace custguard::daemon {

struct ProbeResult {
    bool available = false;
    std::string reason;  // one sentence, for the log and `custguardctl status`
};

// Loads `r0 = 0; exit` as BPF_PROG_TYPE_LSM for file_open and attaches it with a BPF link
// (detached again at once; returning 0 allows everything). Needs root.
ProbeResult probe_bpf_lsm();

// Creates a FAN_CLASS_CONTENT group with FAN_REPORT_TID and marks directory `probe_path`
// for FAN_OPEN_PERM (no event can arise from that mark). Needs CAP_SYS_ADMIN.
ProbeResult probe_fanotify(const char* probe_path = "/");

struct EnforcerSelection {
    policy::EnforcerChoice chosen = policy::EnforcerChoice::none;  // never `automatic`
    std::string reason;  // e.g. "fanotify: BPF LSM unavailable (loading ... failed: ...)"
};

// `automatic`: bpf-lsm, else fanotify, else none (observe only). An explicit choice whose
// facility is missing is an error (the daemon refuses to start rather than silently
// enforcing less); `none` always succeeds.
tl::expected<EnforcerSelection, std::string> select_enforcer(policy::EnforcerChoice requested);

}  // namespace custguard::daemon
