// The fanotify enforcer: FAN_OPEN_PERM on every filesystem holding a zone root, decided
// in user space against the same compiled rows the BPF-LSM enforcer loads into its maps,
// producing the same cg_event contents.
//
// Membership is by inode: the opened file's parent directory, reopened on a mount of the
// whole filesystem, is walked up with ".." and compared with the zone roots' (dev, ino),
// as the BPF program walks d_parent. Files outside every zone get an (evictable) ignore
// mark, so each reaches user space at most once per inode; a notification group watching
// renames and link creation into zones flushes those marks and the inode caches.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "daemon/enforcer.hpp"
#include "daemon/fanotify/task_info.hpp"
#include "daemon/fanotify/unique_fd.hpp"

namespace custguard::daemon {

// The client machines a Samba server process serves (FanotifyOptions::remote_clients).
struct RemoteClients {
    std::vector<policy::ClientAddress> addresses;  // empty: not established
};

struct FanotifyOptions {
    unsigned workers = 2;
    // Each worker reads a few events at a time and decides them in turn. An event whose
    // decision has not started this long after it was read is answered without asking
    // /proc: denied if the file is in a zone, allowed otherwise. (Events not yet read wait
    // in the kernel's queue, which is unlimited.)
    std::chrono::milliseconds decision_timeout{1000};
    // More events read and unanswered than this (all workers together): answered the same
    // way at once.
    std::size_t max_queue = 8192;
    // A descriptor re-adopted from the fd store (see fd_store.hpp); empty: new group.
    UniqueFd adopt;
    // Put the group's descriptor into systemd's fd store on start (when NOTIFY_SOCKET is set).
    bool use_fd_store = true;
    // Called for every recorded event before the open is answered, with the opener's
    // tgid and comm; its result becomes AccessEvent::client. The daemon looks up Samba
    // clients here (events::SambaClients): while smbd waits for the answer its client
    // connection is certainly open, which it may no longer be when the pipeline enriches
    // the event. Empty: no lookup.
    std::function<std::string(std::uint32_t tgid, std::string_view comm)> pending_client;
    // Asked for every recorded denial before it is described (Pipeline::admit): a denial
    // that will only be counted into a `repeated` record is handed over without its path,
    // open flags or client, which cost a worker three /proc reads while the flooder's open
    // waits and everyone else's opens queue behind it. Empty: every denial is described.
    DenialAdmitter admit_denial;
    // Asked only for opens that users and programs allow in a zone with allow_clients:
    // whether the opener is a Samba server process and which client addresses it serves
    // (every one, see SambaClients::served). nullopt: not a Samba process, a local read,
    // which allow_clients does not restrict. An empty list: the client could not be
    // established, which is refused. Empty function: every such open counts as remote
    // with an unknown client (refused).
    std::function<std::optional<RemoteClients>(std::uint32_t tgid, std::string_view comm)> remote_clients;
    // The exec tracker's CG_TASK_* flags of a process (loader injection at exec), for
    // allow_programs; nullopt: unknown. Empty: /proc/PID/environ is read instead.
    std::function<std::optional<std::uint32_t>(std::uint32_t tgid)> exec_flags;
    // The threads of a process and whether any is traced (a BPF iterator), for
    // allow_programs; empty, or no answer: each thread's /proc status is read.
    fan::TaskReader::Threads threads;
    // The threads that answer permission events (the workers, and the notify thread they
    // may wait for) run at this nice value: every open on a marked filesystem waits for
    // one of them, and users keeping the CPUs busy (creating files in a loop) must not keep
    // them off it. A fair-share weight, not a real-time policy: a runaway thread still
    // shares the CPUs with everything else. Needs CAP_SYS_NICE or RLIMIT_NICE (the unit's
    // LimitNICE=); where refused they keep the process's nice and warnings() says so.
    // 0: left alone.
    int worker_nice = -10;
    // The notify thread (the work users' creates, links and renames cause) runs at this
    // nice value; 0: the process's. At worker_nice (the default) it runs ahead of every
    // other open, so a user creating files in a loop takes the CPU of the opens it does
    // not serve (bench/rescan: 0 gave the reader 7-70 % more opens); but a slower notify
    // thread widens the window of a link or rename into a zone (daemon/fanotify/README.md,
    // "Limitation"), and at 0 fair_attack_test.cpp let 4 late opens through once on a
    // loaded host. At 0 a creator that opens nothing (bench/rescan --no-creator-opens
    // --notify-nice 0) outran it: the queue overflowed, the zones were rescanned twice in
    // 6 s and p99 was 40x, for a p50 of 1.04x. The work has to be done either way: only
    // making each notification cheaper helps. A worker that drains the notify group itself
    // stays at worker_nice.
    int notify_nice = -10;
};

// Extra counters for status and the benchmark.
struct FanotifyStats {
    std::uint64_t permission_events = 0;
    std::uint64_t ignore_marks = 0;
    std::uint64_t zone_cache_hits = 0;
    std::uint64_t walks = 0;
    std::uint64_t timeouts = 0;  // answered without a full decision (timeout, overload)
    std::uint64_t flushes = 0;   // ignore marks flushed after renames/links into zones
    std::uint64_t stale_answered = 0;  // events of a killed predecessor answered on adoption
    std::uint64_t scans = 0;    // zone trees scanned for the index: at apply(), trees moved into
                                // or out of zones, rescans when its changes outgrow it; never by an open
    std::uint64_t scanned = 0;  // directory entries those scans visited
    std::uint64_t indexed = 0;  // entries in the zone index now (files in zones, changes since the scans)
    std::uint64_t overflows = 0;  // notify-queue overflows, each followed by a rescan of the zones
    std::uint64_t kept_lost = 0;  // files gone from their zone while events were lost: kept in it
    std::uint64_t dir_hits = 0;   // directories placed from the directory cache, without a walk
    std::uint64_t quick_waits = 0;    // overload answers "outside" that waited for the notify thread
    std::uint64_t quick_refused = 0;  // ... and refused the open: it did not catch up in time
    std::uint64_t notify_events = 0;  // notifications read (renames, links and creates)
    std::uint64_t parked = 0;       // opens of users making far more work than another, answered after the rest
    std::uint64_t parked_late = 0;  // ... of them answered at max_park, the workers still busy
    std::uint64_t parked_now = 0;   // parked and not answered yet (none once stop() returned)
    std::uint64_t departed = 0;  // files kept in their zone after a move out (or lost events), now
    std::uint64_t departed_swept = 0;  // ... entries retired since because their file was gone
};

class FanotifyEnforcer final : public Enforcer {
public:
    // Creates (or adopts) the group. No marks are added before the first apply().
    static tl::expected<std::unique_ptr<FanotifyEnforcer>, std::string> create(FanotifyOptions options);
    ~FanotifyEnforcer() override;

    std::string_view name() const override { return "fanotify"; }
    // Puts the group into the fd store (options.use_fd_store). `handler` runs on the
    // worker threads after the open was answered; it must hand the event off and never
    // open files itself: a worker blocked in an open on a marked filesystem waits for
    // the other workers, and with all of them blocked nobody answers.
    tl::expected<void, std::string> start(EventHandler handler) override;
    tl::expected<void, std::string> apply(const policy::Compiled& compiled) override;
    SensorCounters counters() const override;
    // remove=false leaves the group (and its marks) in the fd store, so opens of marked
    // filesystems wait for the next daemon instead of passing unchecked.
    void stop(bool remove) override;

    FanotifyStats stats() const;
    // Waits (at most `timeout`) until every notification queued before the call has been
    // handled (renames and links judged, the index and ignore marks updated). For tests,
    // which otherwise cannot tell the design's window before a link is handled from a
    // notify thread that is merely behind on a loaded host. False on timeout.
    bool wait_notifications(std::chrono::milliseconds timeout);
    bool adopted() const;         // the group came from the fd store
    bool stored() const;          // the group is in the fd store
    std::vector<std::string> warnings() const;  // from the last apply(): unresolved paths, ...
    int fd() const;               // the group's descriptor (for tests)

    struct Impl;

private:
    explicit FanotifyEnforcer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace custguard::daemon
