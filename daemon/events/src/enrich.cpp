#include "custguard/events/enrich.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <mutex>
#include <unordered_set>

#include <fmt/format.h>

#include "custguard/common/nss.hpp"
#include "custguard/common/unique_dir.hpp"

namespace custguard::events {

namespace {

using Clock = std::chrono::steady_clock;

// Reads at most `max` bytes; nullopt when the file cannot be opened (process gone).
std::optional<std::string> read_bounded(const std::string& path, std::size_t max) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    std::string out;
    std::size_t chunk = std::min<std::size_t>(max, 4096);
    while (out.size() < max) {
        std::size_t old = out.size();
        out.resize(std::min(max, old + chunk));
        ssize_t n = ::read(fd, out.data() + old, out.size() - old);
        if (n <= 0) {
            out.resize(old);
            break;
        }
        out.resize(old + static_cast<std::size_t>(n));
        chunk = std::min<std::size_t>(chunk * 2, 1u << 16);
    }
    ::close(fd);
    return out;
}

std::string trim_newline(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\0')) s.pop_back();
    return s;
}

std::string read_link(const std::string& path) {
    char buf[4096];
    ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
    if (n <= 0) return {};
    return std::string(buf, static_cast<std::size_t>(n));
}

template <typename T>
bool parse_number(std::string_view text, T& out, int base = 10) {
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base);
    return ec == std::errc{} && p != text.data();
}

std::string_view base_name(std::string_view path) {
    auto slash = path.rfind('/');
    return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::string_view sensor_name(daemon::Sensor sensor) {
    switch (sensor) {
    case daemon::Sensor::bpf_lsm: return "bpf_lsm";
    case daemon::Sensor::fanotify: return "fanotify";
    case daemon::Sensor::audit: return "audit";
    }
    return "unknown";
}

std::string_view rule_name(std::uint32_t rule) {
    switch (rule) {
    case CG_RULE_OUTSIDE: return "outside_zones";
    case CG_RULE_USER: return "allowed_user";
    case CG_RULE_GROUP: return "allowed_group";
    case CG_RULE_GRANT: return "grant";
    case CG_RULE_NOT_ALLOWED: return "not_allowed";
    case CG_RULE_PROGRAM: return "program_not_allowed";
    case CG_RULE_REVOKED: return "revoked";
    case CG_RULE_ZONE_UNKNOWN: return "membership_unknown";
    case CG_RULE_PROGRAM_TAMPERED: return "program_tampered";
    case CG_RULE_PROGRAM_TRACED: return "program_traced";
    case CG_RULE_CLIENT_NOT_ALLOWED: return "client_not_allowed";
    }
    return "unknown";
}

std::string_view operation_name(std::uint32_t kind) {
    switch (kind) {
    case CG_EV_OPEN: return "open";
    case CG_EV_LINK: return "link";
    case CG_EV_RENAME: return "rename";
    case CG_EV_UNLINK: return "unlink";
    }
    return "unknown";
}

std::string_view decision_name(std::uint32_t decision) {
    switch (decision) {
    case CG_DECISION_ALLOW: return "allow";
    case CG_DECISION_AUDIT: return "audit";
    case CG_DECISION_DENY: return "deny";
    }
    return "unknown";
}

// Kernel dev_t as the BPF side reads it (new_encode_dev) -> "major:minor".
std::string device_text(std::uint64_t dev) {
    auto major = static_cast<unsigned>((dev & 0xfff00u) >> 8);
    auto minor = static_cast<unsigned>((dev & 0xffu) | ((dev >> 12) & 0xfff00u));
    return fmt::format("{}:{}", major, minor);
}

// A TCP state (the kernel's TCP_* number) in which the socket still names its peer: the
// connection is up or being closed. A client that hangs up right after its request (a
// one-shot `smbclient -c 'get ...'`) leaves smbd's socket in CLOSE_WAIT by the time the
// pipeline enriches the event, which is after the access was answered.
bool connected_state(std::uint8_t st) {
    return st == 1      // ESTABLISHED
           || st == 4   // FIN_WAIT1
           || st == 5   // FIN_WAIT2
           || st == 8   // CLOSE_WAIT
           || st == 9   // LAST_ACK
           || st == 11; // CLOSING
}

// The same state as /proc/net/tcp prints it: two upper-case hex digits.
bool connected_state(std::string_view st) {
    auto digit = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
    std::uint8_t v = 0;
    return st.size() == 2 && digit(st[0]) && digit(st[1]) && parse_number(st, v, 16) && connected_state(v);
}

// The served addresses, sorted and unique; why none, when none.
ServedClients served_from(std::vector<std::string> addresses) {
    ServedClients out;
    std::sort(addresses.begin(), addresses.end());
    addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
    if (addresses.empty()) out.why = "it holds no client connection";
    out.addresses = std::move(addresses);
    return out;
}

}  // namespace

bool process_exiting(std::string_view stat) {
    // "pid (comm) state ppid pgrp session tty_nr tpgid flags ...": comm may hold spaces
    // and parentheses, so fields are counted after the last ')'.
    auto close = stat.rfind(')');
    if (close == std::string_view::npos) return false;
    std::string_view rest = stat.substr(close + 1);
    std::string_view field;
    for (int i = 0; i < 7; ++i) {  // state, ppid, pgrp, session, tty_nr, tpgid, flags
        rest.remove_prefix(std::min(rest.find_first_not_of(' '), rest.size()));
        auto end = std::min(rest.find(' '), rest.size());
        field = rest.substr(0, end);
        rest.remove_prefix(end);
    }
    std::uint32_t flags = 0;
    if (!parse_number(field, flags)) return false;
    constexpr std::uint32_t pf_exiting = 0x00000004;  // PF_EXITING: set first thing in do_exit()
    return (flags & pf_exiting) != 0;
}

std::string proc_net_address(std::string_view hex_address) {
    auto colon = hex_address.find(':');
    std::string_view addr = hex_address.substr(0, colon);
    // /proc prints each 32-bit word of the network-order address as a native integer.
    auto word = [&](std::size_t i, std::uint32_t& out) { return parse_number(addr.substr(i * 8, 8), out, 16); };
    char text[INET6_ADDRSTRLEN] = {};
    if (addr.size() == 8) {
        std::uint32_t w = 0;
        if (!word(0, w)) return {};
        in_addr a{};
        a.s_addr = w;
        if (!inet_ntop(AF_INET, &a, text, sizeof text)) return {};
        return text;
    }
    if (addr.size() == 32) {
        in6_addr a{};
        for (std::size_t i = 0; i < 4; ++i) {
            std::uint32_t w = 0;
            if (!word(i, w)) return {};
            std::memcpy(reinterpret_cast<unsigned char*>(&a) + i * 4, &w, 4);
        }
        if (IN6_IS_ADDR_V4MAPPED(&a)) {
            in_addr v4{};
            std::memcpy(&v4, reinterpret_cast<unsigned char*>(&a) + 12, 4);
            if (!inet_ntop(AF_INET, &v4, text, sizeof text)) return {};
            return text;
        }
        if (!inet_ntop(AF_INET6, &a, text, sizeof text)) return {};
        return text;
    }
    return {};
}

std::string unit_from_cgroup(std::string_view path) {
    while (!path.empty()) {
        auto slash = path.rfind('/');
        std::string_view part = slash == std::string_view::npos ? path : path.substr(slash + 1);
        if (part.ends_with(".service") || part.ends_with(".scope")) return std::string(part);
        if (slash == std::string_view::npos) break;
        path = path.substr(0, slash);
    }
    return {};
}

std::string find_tcp_peer(const EnrichConfig& config, std::uint32_t tgid, std::span<const std::uint16_t> ports) {
    return find_tcp_peer_socket(config, tgid, ports).address;
}

namespace {

struct Peer {
    std::string address;
    bool established = false;
};

// inode -> (remote address, established) of the connected sockets on one of `ports` in the
// network namespace of process `base` (/proc/PID). `complete` false when a table could
// not be read whole.
std::unordered_map<std::uint64_t, Peer> tcp_candidates(const EnrichConfig& config, const std::string& base,
                                                       std::span<const std::uint16_t> ports, bool& complete) {
    complete = true;
    std::unordered_map<std::uint64_t, Peer> candidates;
    for (const char* table : {"/net/tcp", "/net/tcp6"}) {
        auto text = read_bounded(base + table, config.max_tcp_table_bytes);
        if (!text || text->size() >= config.max_tcp_table_bytes) complete = false;
        if (!text) continue;
        std::string_view rest(*text);
        bool header = true;
        while (!rest.empty()) {
            auto nl = rest.find('\n');
            std::string_view line = rest.substr(0, nl);
            rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
            if (header) {
                header = false;
                continue;
            }
            // sl local rem st queues timer retr uid timeout inode
            std::string_view cols[10];
            std::size_t n = 0;
            std::size_t i = 0;
            while (n < 10 && i < line.size()) {
                while (i < line.size() && line[i] == ' ') ++i;
                std::size_t start = i;
                while (i < line.size() && line[i] != ' ') ++i;
                if (start < i) cols[n++] = line.substr(start, i - start);
            }
            if (n < 10 || !connected_state(cols[3])) continue;
            auto colon = cols[1].rfind(':');
            std::uint16_t port = 0;
            if (colon == std::string_view::npos || !parse_number(cols[1].substr(colon + 1), port, 16)) continue;
            if (std::find(ports.begin(), ports.end(), port) == ports.end()) continue;
            std::uint64_t inode = 0;
            if (!parse_number(cols[9], inode) || inode == 0) continue;
            candidates.emplace(inode, Peer{proc_net_address(cols[2]), cols[3] == "01"});
        }
    }
    return candidates;
}

enum class FdScan { done, unreadable, too_many };

// Calls on_socket(fd number, socket inode) for each socket process `base` (/proc/PID)
// holds, until it returns false. Stops after max_fds entries of /proc/PID/fd.
template <typename OnSocket>
FdScan scan_socket_fds(const std::string& base, std::size_t max_fds, OnSocket&& on_socket) {
    common::UniqueDir dir =
        common::UniqueDir::from_fd(::open((base + "/fd").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) return FdScan::unreadable;
    std::size_t scanned = 0;
    FdScan result = FdScan::done;
    while (dirent* entry = dir.next()) {
        if (++scanned > max_fds) {
            result = FdScan::too_many;
            break;
        }
        std::string target = read_link(fmt::format("{}/fd/{}", base, entry->d_name));
        if (!target.starts_with("socket:[")) continue;
        std::uint64_t inode = 0;
        int fd = -1;
        if (!parse_number(std::string_view(target).substr(8), inode)) continue;
        parse_number(std::string_view(entry->d_name), fd);
        if (!on_socket(fd, inode)) break;
    }
    return result;
}

}  // namespace

TcpPeer find_tcp_peer_socket(const EnrichConfig& config, std::uint32_t tgid, std::span<const std::uint16_t> ports) {
    const std::string base = fmt::format("{}/{}", config.proc_root, tgid);
    bool complete = false;
    const auto candidates = tcp_candidates(config, base, ports, complete);
    if (candidates.empty()) return {};
    // Which of those sockets does this process hold?
    TcpPeer found;
    scan_socket_fds(base, config.max_fds_scanned, [&](int fd, std::uint64_t inode) {
        auto it = candidates.find(inode);
        if (it == candidates.end() || (!found.address.empty() && !it->second.established)) return true;
        found.address = it->second.address;
        found.fd = fd;
        found.inode = inode;
        return !it->second.established;  // a closing one is kept unless an established one follows
    });
    return found;
}

bool is_samba_program(const EnrichConfig& config, std::string_view comm, std::string_view exe) {
    return std::any_of(config.samba_programs.begin(), config.samba_programs.end(), [&](const std::string& p) {
        // Samba names connection processes "smbd[CLIENT]" in newer releases (comm is cut
        // to 15 bytes, so the address may be incomplete there).
        return p == comm || p == base_name(exe) ||
               (comm.size() > p.size() && comm.starts_with(p) && comm[p.size()] == '[');
    });
}

SambaClients::SambaClients(EnrichConfig config) : config_(std::move(config)) {}

std::string SambaClients::client(std::uint32_t tgid, std::string_view comm) {
    if (!is_samba_program(config_, comm, {})) return {};
    {
        std::lock_guard lock(mutex_);
        if (auto it = cache_.find(tgid); it != cache_.end()) {
            // Still the same connection (its socket inode is unique while it lives, and a
            // reused pid cannot hold it): one readlink instead of the table and fd scan.
            const std::string target =
                read_link(fmt::format("{}/{}/fd/{}", config_.proc_root, tgid, it->second.fd));
            if (target == fmt::format("socket:[{}]", it->second.inode)) {
                ++hits_;
                remember(tgid, {it->second.address});
                return it->second.address;
            }
            cache_.erase(it);
        }
    }
    TcpPeer peer = find_tcp_peer_socket(config_, tgid, config_.samba_ports);
    std::lock_guard lock(mutex_);
    ++lookups_;
    if (peer.address.empty()) return {};
    if (cache_.size() >= config_.max_cached) cache_.clear();
    cache_[tgid] = peer;
    remember(tgid, {peer.address});
    return peer.address;
}

ServedClients SambaClients::served(std::uint32_t tgid) {
    ServedClients out;
    if (config_.held_sockets) {
        if (auto held = config_.held_sockets(tgid)) {
            if (held->size() > config_.max_fds_scanned) {
                out.why = fmt::format("it holds more than {} TCP connections", config_.max_fds_scanned);
                return out;
            }
            std::vector<std::string> addresses;
            for (const auto& s : *held)
                if (connected_state(s.state) && !s.peer.empty() &&
                    std::find(config_.samba_ports.begin(), config_.samba_ports.end(), s.local_port) !=
                        config_.samba_ports.end())
                    addresses.push_back(s.peer);
            out = served_from(std::move(addresses));
            std::lock_guard lock(mutex_);
            ++listed_;
            remember(tgid, out.addresses);
            return out;
        }
    }
    const std::string base = fmt::format("{}/{}", config_.proc_root, tgid);
    // The sockets the process holds now: a further channel may have been handed to it
    // since the last look, so this listing is made for every open.
    std::vector<std::uint64_t> inodes;
    const FdScan scan = scan_socket_fds(base, config_.max_fds_scanned, [&](int, std::uint64_t inode) {
        inodes.push_back(inode);
        return true;
    });
    if (scan == FdScan::unreadable) {
        out.why = "its /proc/" + std::to_string(tgid) + "/fd could not be read (the process is gone)";
        return out;
    }
    if (scan == FdScan::too_many) {
        out.why = fmt::format("it holds more than {} descriptors", config_.max_fds_scanned);
        return out;
    }
    std::sort(inodes.begin(), inodes.end());
    {
        std::lock_guard lock(mutex_);
        if (auto it = served_.find(tgid); it != served_.end() && it->second.inodes == inodes) {
            ++hits_;
            remember(tgid, it->second.result.addresses);
            return it->second.result;
        }
    }
    bool complete = false;
    const auto candidates = tcp_candidates(config_, base, config_.samba_ports, complete);
    if (!complete) {
        out.why = "its TCP tables could not be read whole";
        return out;
    }
    std::vector<std::string> addresses;
    for (auto inode : inodes)
        if (auto it = candidates.find(inode); it != candidates.end() && !it->second.address.empty())
            addresses.push_back(it->second.address);
    out = served_from(std::move(addresses));
    std::lock_guard lock(mutex_);
    ++lookups_;
    if (served_.size() >= config_.max_cached) served_.clear();
    served_[tgid] = {std::move(inodes), out};
    remember(tgid, out.addresses);
    return out;
}

void SambaClients::remember(std::uint32_t tgid, const std::vector<std::string>& addresses) {
    if (addresses.empty() || addresses.front().empty()) return;  // a closed session keeps what it had
    if (recent_.size() >= config_.max_cached && !recent_.contains(tgid)) recent_.clear();
    recent_[tgid] = {addresses, Clock::now()};
}

void SambaClients::held_at_fork(std::uint32_t tgid, std::uint64_t fork_ns, const HeldTcpSocket& socket) {
    if (!connected_state(socket.state) || socket.peer.empty() ||
        std::find(config_.samba_ports.begin(), config_.samba_ports.end(), socket.local_port) == config_.samba_ports.end())
        return;
    std::lock_guard lock(mutex_);
    auto it = recent_.find(tgid);
    if (it != recent_.end() && it->second.fork_ns == fork_ns) {
        auto& a = it->second.addresses;
        if (std::find(a.begin(), a.end(), socket.peer) == a.end()) {
            a.push_back(socket.peer);
            std::sort(a.begin(), a.end());
        }
        return;
    }
    remember(tgid, {socket.peer});
    recent_[tgid].fork_ns = fork_ns;
}

void SambaClients::exited(std::uint32_t tgid) {
    std::lock_guard lock(mutex_);
    if (auto it = recent_.find(tgid); it != recent_.end()) it->second.at = Clock::now();
}

std::vector<std::string> SambaClients::recent(std::uint32_t tgid, std::chrono::milliseconds max_age) const {
    std::lock_guard lock(mutex_);
    auto it = recent_.find(tgid);
    if (it == recent_.end() || Clock::now() - it->second.at > max_age) return {};
    return it->second.addresses;
}

std::uint64_t SambaClients::lookups() const {
    std::lock_guard lock(mutex_);
    return lookups_;
}

std::uint64_t SambaClients::hits() const {
    std::lock_guard lock(mutex_);
    return hits_;
}

std::uint64_t SambaClients::listed() const {
    std::lock_guard lock(mutex_);
    return listed_;
}

Enricher::Enricher(EnrichConfig config) : config_(std::move(config)) {}

ProcessInfo Enricher::read_process(std::uint32_t tgid) {
    ProcessInfo info;
    const std::string base = fmt::format("{}/{}", config_.proc_root, tgid);
    auto comm = read_bounded(base + "/comm", 64);
    if (!comm) {
        info.exited = true;
        return info;
    }
    info.comm = trim_newline(std::move(*comm));
    info.exe = read_link(base + "/exe");
    if (struct stat st {}; !info.exe.empty() && ::stat((base + "/exe").c_str(), &st) == 0) {
        // The kernel's dev_t, as the sensors report it (MAJOR << 20 | MINOR).
        info.exe_dev = (std::uint64_t{major(st.st_dev)} << 20) | minor(st.st_dev);
        info.exe_ino = st.st_ino;
    }
    if (auto cmd = read_bounded(base + "/cmdline", config_.cmdline_max + 1)) {
        bool truncated = cmd->size() > config_.cmdline_max;
        if (truncated) cmd->resize(config_.cmdline_max);
        while (!cmd->empty() && cmd->back() == '\0') cmd->pop_back();
        std::replace(cmd->begin(), cmd->end(), '\0', ' ');
        if (truncated) *cmd += "...";
        info.cmdline = std::move(*cmd);
    }
    if (auto status = read_bounded(base + "/status", 4096)) {
        // A zombie (exited, not yet reaped by its parent) still has comm and status, but
        // no exe, cmdline, fds or sockets: report it as exited, as if it were gone. An
        // smbd connection process is one right after a short session ends. (A leader
        // thread that exited while other threads run shows Z too, with Threads > 1.)
        auto value = [&](std::string_view key) {
            auto at = status->find(key);
            if (at == std::string::npos) return std::string_view{};
            std::string_view v(status->data() + at + key.size());
            v.remove_prefix(std::min(v.find_first_not_of(" \t"), v.size()));
            return v.substr(0, v.find('\n'));
        };
        const std::string_view state = value("\nState:");
        std::uint32_t threads = 1;
        parse_number(value("\nThreads:"), threads);
        if ((state.starts_with('Z') || state.starts_with('X')) && threads <= 1) info.exited = true;
        parse_number(value("\nPPid:"), info.ppid);
    }
    // No executable but alive: a kernel thread, or a process in exit() after its memory
    // was released and before it became a zombie (exe and fds are gone already).
    // Gone between the reads above (the stat file no longer opens) counts as exited too
    // (regression: a reaped smbd was reported alive, without exe and parent).
    if (info.exe.empty() && !info.exited) {
        auto stat = read_bounded(base + "/stat", 1024);
        if (!stat || process_exiting(*stat)) info.exited = true;
    }
    if (auto loginuid = read_bounded(base + "/loginuid", 32)) parse_number(*loginuid, info.loginuid);
    if (auto cgroup = read_bounded(base + "/cgroup", 8192)) {
        std::string_view rest(*cgroup);
        std::string_view v1_systemd;
        while (!rest.empty()) {
            auto nl = rest.find('\n');
            std::string_view line = rest.substr(0, nl);
            rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
            if (line.starts_with("0::")) {
                info.cgroup = std::string(line.substr(3));
                break;
            }
            if (auto p = line.find(":name=systemd:"); p != std::string_view::npos) v1_systemd = line.substr(p + 14);
        }
        if (info.cgroup.empty() || info.cgroup == "/") {
            if (!v1_systemd.empty()) info.cgroup = std::string(v1_systemd);
        }
        info.unit = unit_from_cgroup(info.cgroup);
    }
    if (info.ppid != 0) {
        if (auto pc = read_bounded(fmt::format("{}/{}/comm", config_.proc_root, info.ppid), 64))
            info.parent_comm = trim_newline(std::move(*pc));
    }
    return info;
}

void Enricher::find_client(std::uint32_t tgid, ProcessInfo& info) {
    if (!is_samba_program(config_, info.comm, info.exe)) return;
    ++stats_.client_lookups;
    info.client = find_tcp_peer(config_, tgid, config_.samba_ports);
}

ProcessInfo Enricher::process(std::uint32_t tgid, std::uint64_t exe_dev, std::uint64_t exe_ino) {
    return lookup(tgid, exe_dev, exe_ino, true);
}

ProcessInfo Enricher::lookup(std::uint32_t tgid, std::uint64_t exe_dev, std::uint64_t exe_ino, bool with_client) {
    const auto now = Clock::now();
    if (auto it = processes_.find(tgid); it != processes_.end()) {
        CachedProcess& c = it->second;
        // A different executable means exec() or a reused pid: read again.
        bool same_exe = (exe_ino == 0 && exe_dev == 0) || (c.exe_dev == exe_dev && c.exe_ino == exe_ino);
        if (same_exe && now - c.at < config_.process_ttl) {
            ++stats_.process_cache_hits;
            if (with_client && !c.client_searched) {
                find_client(tgid, c.info);
                c.client_searched = true;
            }
            return c.info;
        }
    }
    ++stats_.process_lookups;
    ProcessInfo info = read_process(tgid);
    if (info.exited) {
        ++stats_.exited;
        return info;  // nothing to cache
    }
    if (with_client) find_client(tgid, info);
    if (processes_.size() >= config_.max_cached) {
        std::erase_if(processes_, [&](const auto& kv) { return now - kv.second.at >= config_.process_ttl; });
        if (processes_.size() >= config_.max_cached) processes_.clear();
    }
    processes_[tgid] = CachedProcess{info, exe_dev, exe_ino, now, with_client};
    return info;
}

void Enricher::identify(ProcessInfo& proc, const cg_event& raw) {
    const bool exe_known = raw.exe_ino != 0;
    auto same_exe = [&](std::uint64_t dev, std::uint64_t ino) { return dev == raw.exe_dev && ino == raw.exe_ino; };
    std::optional<ExecIdentity> id;
    if (config_.identities) id = config_.identities->identity_at(raw.tgid, raw.ts_ns);
    // An identity of another program than the decided one: records were lost in between.
    if (id && exe_known && !same_exe(id->exe_dev, id->exe_ino)) id.reset();
    if (id) {
        ++stats_.from_exec;
        proc.from_exec = true;
        proc.exe = std::move(id->exe);
        proc.cmdline = std::move(id->cmdline);
        if (!id->comm.empty()) proc.comm = std::move(id->comm);
        proc.ppid = id->ppid;
        proc.parent_comm = std::move(id->parent_comm);
        proc.loginuid = id->loginuid;
        proc.exited = proc.exited || id->exited;
        proc.exe_dev = id->exe_dev;
        proc.exe_ino = id->exe_ino;
        proc.exe_changed = !id->later_exe.empty();
        proc.later_exe = std::move(id->later_exe);
        return;
    }
    // Read from /proc after the decision: a different program there ran later (exec).
    // It is reported as such, never as the program that made the access.
    if (!proc.exited && exe_known && proc.exe_ino != 0 && !same_exe(proc.exe_dev, proc.exe_ino)) {
        proc.exe_changed = true;
        proc.later_exe = std::move(proc.exe);
        proc.exe.clear();
        proc.cmdline.clear();
    }
}

std::string Enricher::cached_name(std::unordered_map<std::uint32_t, CachedName>& cache, std::uint32_t id, bool group) {
    const auto now = Clock::now();
    if (auto it = cache.find(id); it != cache.end() && now - it->second.at < config_.name_ttl) return it->second.name;
    std::string name;  // "" when unknown or the lookup failed
    if (group) {
        if (auto g = common::nss::group_by_gid(id); g && *g) name = std::move((*g)->name);
    } else {
        if (auto u = common::nss::user_by_uid(id); u && *u) name = std::move((*u)->name);
    }
    if (cache.size() >= config_.max_cached) cache.clear();
    cache[id] = CachedName{name, now};  // unknown ids are cached too: NSS misses are slow
    return name;
}

std::string Enricher::user_name(std::uint32_t uid) { return cached_name(users_, uid, false); }
std::string Enricher::group_name(std::uint32_t gid) { return cached_name(groups_, gid, true); }

namespace {

Kind kind_of(const cg_event& raw) {
    if (raw.kind != CG_EV_OPEN) return Kind::zone_integrity;
    if (raw.decision == CG_DECISION_DENY) return Kind::access_denied;
    if (raw.decision == CG_DECISION_AUDIT) return Kind::access_audited;
    return Kind::access_allowed;
}

std::string zone_name(std::uint32_t zone_id, std::span<const std::string> zone_names) {
    if (zone_id >= 1 && zone_id <= zone_names.size()) return zone_names[zone_id - 1];
    if (zone_id != 0) return fmt::format("zone#{}", zone_id);  // policy reloaded in between
    return {};
}

}  // namespace

Record describe_key(const daemon::AccessEvent& event, std::span<const std::string> zone_names) {
    const cg_event& raw = event.raw;
    Record r;
    r.kind = kind_of(raw);
    r.add(field::event, info(r.kind).name);
    r.add(field::decision, decision_name(raw.decision));
    r.add(field::operation, operation_name(raw.kind));
    r.add(field::zone, zone_name(raw.zone_id, zone_names));
    if (raw.zone_id) r.add(field::zone_id, raw.zone_id);
    r.add(field::uid, raw.uid);
    r.add(field::rule, rule_name(raw.rule));
    return r;
}

Record Enricher::enrich(const daemon::AccessEvent& event, std::span<const std::string> zone_names) {
    const cg_event& raw = event.raw;
    Record r;
    const bool open = raw.kind == CG_EV_OPEN;
    r.kind = kind_of(raw);
    r.realtime_us = event.realtime_ns / 1000;

    const std::string path = !event.path.empty()
                                 ? event.path
                                 : std::string(raw.path, ::strnlen(raw.path, sizeof raw.path));
    const std::string zone = zone_name(raw.zone_id, zone_names);
    // The sensor's lookup, made while the open waited for its answer, wins: by now a short
    // SMB session may be over and its smbd gone. It also spares a search of smbd's
    // descriptors and TCP tables (bpf-lsm and fanotify name the client of every smbd open).
    ProcessInfo proc = lookup(raw.tgid, raw.exe_dev, raw.exe_ino, event.client.empty());
    identify(proc, raw);
    if (!event.client.empty()) proc.client = event.client;
    // The sensor's comm is the one at the decision; /proc's may be a later program's.
    std::string comm(raw.comm, ::strnlen(raw.comm, sizeof raw.comm));
    if (comm.empty()) comm = proc.comm;
    std::uint32_t auid = raw.loginuid;
    if (auid == no_uid && !proc.exited) auid = proc.loginuid;
    const std::string user = user_name(raw.uid);
    const std::string auid_user = auid == no_uid ? std::string{} : user_name(auid);

    r.fields.reserve(32);
    r.add(field::event, info(r.kind).name);
    r.add(field::decision, decision_name(raw.decision));
    r.add(field::operation, operation_name(raw.kind));
    r.add(field::zone, zone);
    if (raw.zone_id) r.add(field::zone_id, raw.zone_id);
    r.add(field::path, path);
    r.add(field::uid, raw.uid);
    r.add(field::user, user);
    r.add(field::gid, raw.gid);
    r.add(field::group, group_name(raw.gid));
    if (auid != no_uid) {
        r.add(field::auid, auid);
        r.add(field::auid_user, auid_user);
    }
    r.add(field::pid, raw.tgid);
    if (raw.pid != raw.tgid) r.add(field::tid, raw.pid);
    r.add(field::comm, comm);
    r.add(field::exe, proc.exe);
    r.add(field::cmdline, proc.cmdline);
    if (proc.ppid) r.add(field::ppid, proc.ppid);
    r.add(field::parent_comm, proc.parent_comm);
    r.add(field::unit, proc.unit);
    r.add(field::cgroup, proc.cgroup);
    r.add(field::client, proc.client);
    r.add(field::rule, rule_name(raw.rule));
    if (open) {
        switch (raw.open_flags & O_ACCMODE) {
        case O_RDONLY: r.add(field::access, "read"); break;
        case O_WRONLY: r.add(field::access, "write"); break;
        default: r.add(field::access, "read-write"); break;
        }
    }
    r.add(field::sensor, sensor_name(event.sensor));
    if (raw.repeats) r.add(field::repeats, raw.repeats);
    if (raw.ino) {
        r.add(field::inode, raw.ino);
        r.add(field::device, device_text(raw.dev));
    }
    if (proc.exited) r.add(field::process_exited, "1");
    if (proc.exe_changed) {
        r.add(field::exe_changed, "1");
        r.add(field::later_exe, proc.later_exe);
    }

    std::string who = user.empty() ? fmt::format("uid {}", raw.uid) : fmt::format("{} (uid {})", user, raw.uid);
    if (auid != no_uid && auid != raw.uid)
        who += fmt::format(" [login {}]", auid_user.empty() ? std::to_string(auid) : auid_user);
    std::string_view verb = raw.kind == CG_EV_OPEN     ? "opened"
                            : raw.kind == CG_EV_LINK   ? "linked"
                            : raw.kind == CG_EV_RENAME ? "renamed"
                            : raw.kind == CG_EV_UNLINK ? "deleted"
                                                       : "touched";
    std::string_view outcome = raw.decision == CG_DECISION_DENY    ? "denied"
                               : raw.decision == CG_DECISION_AUDIT ? "allowed, not permitted by policy (audit)"
                                                                   : "allowed";
    r.message = fmt::format("{} {} {}{} via {}{}: {}", who, verb, path, zone.empty() ? "" : fmt::format(" in zone {}", zone),
                            proc.exe.empty() ? comm : proc.exe,
                            !proc.client.empty()                    ? fmt::format(" from {}", proc.client)
                            : raw.rule == CG_RULE_CLIENT_NOT_ALLOWED ? std::string(" from a client that could not be established")
                                                                     : std::string(),
                            outcome);
    return r;
}

}  // namespace custguard::events
