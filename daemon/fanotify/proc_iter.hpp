// What the fanotify enforcer asks of a process that waits for its answer, read through BPF
// iterators (bpf/cg_iter.bpf.c) instead of /proc: the TCP connections it holds (allow_clients)
// and whether a thread of it is traced (allow_programs). One iterator read costs a handful
// of system calls, where /proc costs a readlink per descriptor (about 30 for an smbd) plus
// a walk of the TCP tables, and a status file per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "custguard/events/enrich.hpp"
#include "daemon/fanotify/task_info.hpp"

namespace custguard::daemon::fan {

class ProcIter {
public:
    // Loads the iterators; an error (no BTF, a kernel before 6.1, no CAP_BPF/CAP_PERFMON)
    // says why, and the caller reads /proc instead.
    static tl::expected<std::unique_ptr<ProcIter>, std::string> load();
    ~ProcIter();
    ProcIter(const ProcIter&) = delete;
    ProcIter& operator=(const ProcIter&) = delete;

    // Every TCP socket process `tgid` holds (none for a process that is gone). Thread-safe,
    // as is threads(); both return nullopt when the iterator failed (read /proc instead).
    std::optional<std::vector<events::HeldTcpSocket>> sockets(std::uint32_t tgid) const;
    // The threads of process `tgid` (0 for a process that is gone), and whether any is traced.
    std::optional<ThreadScan> threads(std::uint32_t tgid) const;

private:
    struct Impl;
    explicit ProcIter(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace custguard::daemon::fan
