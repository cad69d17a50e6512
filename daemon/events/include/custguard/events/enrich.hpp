// Enrichment: who and what is behind an access, read from /proc and NSS. Everything is
// best effort and bounded: a process that already exited yields what the sensor carried
// (comm, uid, loginuid) and CUSTGUARD_PROCESS_EXITED=1, never an error.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "custguard/events/record.hpp"
#include "daemon/event.hpp"

namespace custguard::events {

inline constexpr std::uint32_t no_uid = 0xffffffffu;

// Who a process was when its program started (the exec tracker captures it then): the
// record of an access names the program that made it, also after the process exec'd
// another program or exited.
struct ExecIdentity {
    std::string exe;      // path of the program (canonical when it still exists)
    std::string cmdline;  // arguments joined by ' ' ("..." when truncated)
    std::string comm;
    std::uint32_t ppid = 0;
    std::string parent_comm;
    std::uint32_t loginuid = 0xffffffffu;
    std::uint64_t exe_dev = 0;  // kernel dev_t, as cg_event.exe_dev
    std::uint64_t exe_ino = 0;
    bool exited = false;    // the process has exited since
    std::string later_exe;  // the program the process exec'd after the access ("" none)
};

// The identity of process `tgid` as it was at `mono_ns` (CLOCK_MONOTONIC, cg_event.ts_ns);
// nullopt when unknown (started before the tracker, records lost). Thread-safe.
class IdentitySource {
public:
    virtual ~IdentitySource() = default;
    virtual std::optional<ExecIdentity> identity_at(std::uint32_t tgid, std::uint64_t mono_ns) = 0;
    // Why identity_at(tgid, mono_ns) knows nothing, for a diagnostic ("" if it does).
    virtual std::string why_unknown(std::uint32_t /*tgid*/, std::uint64_t /*mono_ns*/) { return {}; }
};

// A TCP socket a process holds, as a kernel iterator reports it (EnrichConfig::held_sockets).
struct HeldTcpSocket {
    std::uint16_t local_port = 0;
    std::uint8_t state = 0;  // the kernel's TCP_* number, as /proc/net/tcp shows it
    std::string peer;        // numeric address; IPv4-mapped IPv6 as IPv4
};
// Every TCP socket process `tgid` holds, or why they could not be listed.
using HeldSocketLister = std::function<std::optional<std::vector<HeldTcpSocket>>(std::uint32_t tgid)>;

struct EnrichConfig {
    std::string proc_root = "/proc";
    std::size_t cmdline_max = 512;  // bytes of /proc/PID/cmdline kept (arguments joined by ' ')
    // Programs whose client address is looked up (comm or exe base name), and the local
    // TCP ports their client connections use.
    std::vector<std::string> samba_programs = {"smbd"};
    std::vector<std::uint16_t> samba_ports = {445, 139};
    std::chrono::milliseconds process_ttl{2000};  // reuse /proc data per process this long
    std::chrono::seconds name_ttl{300};           // reuse NSS answers this long
    std::size_t max_cached = 4096;                // entries per cache
    std::size_t max_fds_scanned = 4096;           // bound on the smbd socket search
    std::size_t max_tcp_table_bytes = 4u << 20;   // bound on /proc/PID/net/tcp{,6} read
    // Identities captured at exec; null (or no answer): /proc is read after the decision,
    // and a program that differs from the decided one is reported as later, not as it.
    std::shared_ptr<IdentitySource> identities;
    // SambaClients::served asks this first (a BPF iterator: a few system calls instead of
    // a readlink per descriptor); null, or no answer: /proc is scanned.
    HeldSocketLister held_sockets;
};

struct ProcessInfo {
    bool exited = false;  // /proc/PID was gone (or unreadable)
    std::string comm;
    std::string exe;
    std::string cmdline;
    std::uint32_t ppid = 0;
    std::string parent_comm;
    std::uint32_t loginuid = no_uid;
    std::string cgroup;
    std::string unit;    // systemd unit (service or scope) from the cgroup path
    std::string client;  // Samba client address, if this is an smbd serving one
    // The process runs another program than the one the access was decided for (it
    // exec'd since): CUSTGUARD_EXE_CHANGED=1, and CUSTGUARD_LATER_EXE names it.
    std::string later_exe;
    bool exe_changed = false;
    std::uint64_t exe_dev = 0;  // of `exe` as /proc showed it (kernel dev_t); 0: unknown
    std::uint64_t exe_ino = 0;
    bool from_exec = false;  // exe, cmdline, parent and login uid come from the exec tracker
};

struct EnrichStats {
    std::uint64_t process_lookups = 0;  // /proc reads (cache misses)
    std::uint64_t process_cache_hits = 0;
    std::uint64_t exited = 0;           // processes already gone
    std::uint64_t client_lookups = 0;   // smbd socket searches
    std::uint64_t from_exec = 0;        // identities taken from the exec tracker
};

// What identifies an access event's key for the flood bound (kind, decision, operation,
// zone, uid, rule), from the event alone: no /proc reads, no name lookups. Thread-safe.
Record describe_key(const daemon::AccessEvent& event, std::span<const std::string> zone_names);

// Not thread-safe: the pipeline owns one per worker thread.
class Enricher {
public:
    explicit Enricher(EnrichConfig config = {});

    ProcessInfo process(std::uint32_t tgid, std::uint64_t exe_dev, std::uint64_t exe_ino);
    std::string user_name(std::uint32_t uid);   // "" when unknown
    std::string group_name(std::uint32_t gid);  // "" when unknown

    // The record for one access event. `zone_names[i]` names zone id i+1.
    Record enrich(const daemon::AccessEvent& event, std::span<const std::string> zone_names);

    const EnrichStats& stats() const { return stats_; }
    const EnrichConfig& config() const { return config_; }

private:
    struct CachedProcess {
        ProcessInfo info;
        std::uint64_t exe_dev = 0;
        std::uint64_t exe_ino = 0;
        std::chrono::steady_clock::time_point at;
        bool client_searched = false;  // find_client ran (info.client is its answer)
    };
    struct CachedName {
        std::string name;
        std::chrono::steady_clock::time_point at;
    };
    ProcessInfo read_process(std::uint32_t tgid);
    // process(), searching a Samba process's client only `with_client` (cached either way).
    ProcessInfo lookup(std::uint32_t tgid, std::uint64_t exe_dev, std::uint64_t exe_ino, bool with_client);
    // A Samba process's client connection (find_tcp_peer) into info.client.
    void find_client(std::uint32_t tgid, ProcessInfo& info);
    // Replaces what /proc said with the identity current at the decision (see
    // EnrichConfig::identities), or marks a program read from /proc that is not the
    // decided one.
    void identify(ProcessInfo& proc, const cg_event& raw);
    std::string cached_name(std::unordered_map<std::uint32_t, CachedName>& cache,
                            std::uint32_t id, bool group);

    EnrichConfig config_;
    EnrichStats stats_;
    std::unordered_map<std::uint32_t, CachedProcess> processes_;
    std::unordered_map<std::uint32_t, CachedName> users_;
    std::unordered_map<std::uint32_t, CachedName> groups_;
};

// A client connection a process holds: remote address, descriptor, socket inode.
struct TcpPeer {
    std::string address;  // "" when none
    int fd = -1;
    std::uint64_t inode = 0;
};

// Every client address a Samba process serves (allow_clients). Samba hands further
// connections of a client (multichannel) to the process that owns its session, so one
// process may serve several addresses.
struct ServedClients {
    std::vector<std::string> addresses;  // sorted, unique; empty: not established
    std::string why;                     // when empty: why ("it holds no client connection")
};

// The client address of Samba processes, for a sensor to look up while the process waits
// for the answer to its open: its connection is certainly open then. Enriching later is
// too late for short sessions (`smbclient -c 'get ...'`): the client has hung up and the
// connection process exited before the pipeline reaches the record. One full lookup
// (find_tcp_peer) per process, then one readlink to check the socket is still the same.
// Thread-safe.
class SambaClients {
public:
    explicit SambaClients(EnrichConfig config = {});
    // "" when `comm` is not a Samba program or no client connection is found.
    std::string client(std::uint32_t tgid, std::string_view comm);
    // The remote addresses of every connection on a Samba port that process `tgid` holds
    // now (connected or closing). From EnrichConfig::held_sockets where it answers; else
    // one readdir and one readlink per descriptor (bounded by max_fds_scanned), and the
    // TCP tables read again only when the set of sockets changed. A bound hit or an
    // unreadable table leaves the list empty.
    ServedClients served(std::uint32_t tgid);
    // The addresses the last answer of client() or served() for process `tgid` named, if
    // it was given within `max_age`; empty otherwise. No lookup: for a process that has
    // exited since (a short SMB session's smbd is gone by the time a notification about
    // what it wrote is read). Pids are reused only after the kernel's pid counter wraps;
    // `max_age` bounds the chance that this answer was for an earlier process.
    std::vector<std::string> recent(std::uint32_t tgid, std::chrono::milliseconds max_age) const;
    // A TCP connection process `tgid` held when it was forked (the exec tracker reads them
    // in the fork of a Samba process: smbd accepts a client's connection and forks the
    // process that serves it). One on a Samba port is remembered for recent() as a lookup's
    // answer would be; the connections of one fork (`fork_ns`) add up. No lookup happens:
    // a session that connects, writes and hangs up at once has its smbd gone before anyone
    // could look.
    void held_at_fork(std::uint32_t tgid, std::uint64_t fork_ns, const HeldTcpSocket& socket);
    // Process `tgid` has exited: the age recent() checks counts from now, since its pid
    // cannot come back before.
    void exited(std::uint32_t tgid);
    std::uint64_t lookups() const;  // full lookups
    std::uint64_t hits() const;     // answered from the cache
    std::uint64_t listed() const;   // served() answered by held_sockets

private:
    EnrichConfig config_;
    mutable std::mutex mutex_;
    std::unordered_map<std::uint32_t, TcpPeer> cache_;
    struct Served {
        std::vector<std::uint64_t> inodes;  // sorted socket inodes the answer was made for
        ServedClients result;
    };
    std::unordered_map<std::uint32_t, Served> served_;
    struct Recent {
        std::vector<std::string> addresses;
        std::chrono::steady_clock::time_point at;
        std::uint64_t fork_ns = 0;  // held_at_fork's fork; 0: a lookup's answer
    };
    std::unordered_map<std::uint32_t, Recent> recent_;  // for recent()
    void remember(std::uint32_t tgid, const std::vector<std::string>& addresses);  // mutex_ held
    std::uint64_t lookups_ = 0;
    std::uint64_t hits_ = 0;
    std::uint64_t listed_ = 0;
};

// Pure helpers, exposed for tests.
// The client of a Samba process: the remote address of a TCP socket it holds whose local
// port is one of `ports`, ESTABLISHED preferred, else one the client already closed
// (CLOSE_WAIT and the other closing states: the records of a short session are enriched
// after it ended). "" when none (or the process is gone). Cost: one read of net/tcp and
// net/tcp6 of the process's network namespace, one readdir + readlink per fd (bounded).
std::string find_tcp_peer(const EnrichConfig& config, std::uint32_t tgid,
                          std::span<const std::uint16_t> ports);
// The same, with the descriptor and socket inode it was found on (TcpPeer).
TcpPeer find_tcp_peer_socket(const EnrichConfig& config, std::uint32_t tgid, std::span<const std::uint16_t> ports);
// Is this process (comm, executable path; either may be empty) one of samba_programs?
// Matches "smbd[...]", the name newer Samba gives its connection processes, too.
bool is_samba_program(const EnrichConfig& config, std::string_view comm, std::string_view exe);
// Is the process of this /proc/PID/stat text exiting (PF_EXITING: in exit(), a zombie)?
bool process_exiting(std::string_view proc_pid_stat);
// "/system.slice/smbd.service" -> "smbd.service"; "" when no unit is in the path.
std::string unit_from_cgroup(std::string_view cgroup_path);
// One /proc/net/tcp{,6} address ("0100007F:1F90") as text ("127.0.0.1"), "" if malformed.
std::string proc_net_address(std::string_view hex_address);

}  // namespace custguard::events
