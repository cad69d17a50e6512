// The TCP connections one process holds, listed by a BPF iterator (bpf/cg_sockets.bpf.c):
// what the fanotify enforcer checks against allow_clients on every open an smbd makes in
// such a zone. One iterator read costs a handful of system calls, where the /proc scan
// costs a readlink per descriptor (about 30 for an smbd) and a walk of the TCP tables.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "custguard/events/enrich.hpp"

namespace custguard::daemon::fan {

class HeldSockets {
public:
    // Loads the iterator; an error (no BTF, an old kernel, no CAP_BPF) says why, and the
    // caller scans /proc instead.
    static tl::expected<std::unique_ptr<HeldSockets>, std::string> load();
    ~HeldSockets();
    HeldSockets(const HeldSockets&) = delete;
    HeldSockets& operator=(const HeldSockets&) = delete;

    // Every TCP socket process `tgid` holds (none for a process that is gone); nullopt
    // when the iterator failed (the caller falls back to /proc). Thread-safe.
    std::optional<std::vector<events::HeldTcpSocket>> list(std::uint32_t tgid) const;

private:
    struct Impl;
    explicit HeldSockets(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace custguard::daemon::fan
