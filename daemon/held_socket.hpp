// A TCP socket as the BPF programs report it (struct cg_held_socket: the fanotify
// enforcer's iterator, the exec tracker's fork records) in the form SambaClients reads.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <string>

#include "custguard/events/enrich.hpp"
#include "custguard_abi.h"

namespace custguard::daemon {

// The peer as text; an IPv4-mapped IPv6 address as IPv4.
inline std::string held_socket_peer(const cg_held_socket& s) {
    char text[INET6_ADDRSTRLEN] = {};
    in6_addr a6{};
    std::memcpy(&a6, s.peer, sizeof a6);
    if (s.family == AF_INET6 && !IN6_IS_ADDR_V4MAPPED(&a6))
        return ::inet_ntop(AF_INET6, &a6, text, sizeof text) ? text : "";
    in_addr a4{};
    std::memcpy(&a4, s.family == AF_INET ? s.peer : s.peer + 12, sizeof a4);
    return ::inet_ntop(AF_INET, &a4, text, sizeof text) ? text : "";
}

inline events::HeldTcpSocket held_tcp_socket(const cg_held_socket& s) {
    return {s.local_port, s.state, held_socket_peer(s)};
}

}  // namespace custguard::daemon
