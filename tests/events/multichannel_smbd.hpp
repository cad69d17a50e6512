// A stand-in for an smbd connection process, for tests of the client lookups (unit tests
// of SambaClients, host tests of the BPF socket iterator): real loopback TCP sockets.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

#include <catch2/catch.hpp>

#include "custguard/events/enrich.hpp"

namespace custguard::events::testing {

// A connection process that serves several connections of one client (Samba hands a
// client's further channels to the process owning its session): it accepts one
// connection each time next() is called, from the loopback source address given.
class MultichannelSmbd {
public:
    MultichannelSmbd() {
        listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(listener_ >= 0);
        addr_.sin_family = AF_INET;
        addr_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr_), sizeof addr_) == 0);
        REQUIRE(::listen(listener_, 4) == 0);
        socklen_t len = sizeof addr_;
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr_), &len);
        REQUIRE(::pipe(go_) == 0);
        REQUIRE(::pipe(ready_) == 0);
        pid = ::fork();
        if (pid == 0) {
            ::prctl(PR_SET_NAME, "smbd");
            char c = 0;
            // 'a': accept one more connection; anything else: exit.
            while (::read(go_[0], &c, 1) == 1 && c == 'a') {
                int conn = ::accept(listener_, nullptr, nullptr);
                c = conn >= 0 ? 'y' : 'n';
                (void)::write(ready_[1], &c, 1);
            }
            ::_exit(0);
        }
        ::close(listener_);  // only the child listens
        listener_ = -1;
    }
    ~MultichannelSmbd() {
        (void)::write(go_[1], "q", 1);
        ::waitpid(pid, nullptr, 0);
        for (int fd : clients_) ::close(fd);
        for (int fd : {go_[0], go_[1], ready_[0], ready_[1]}) ::close(fd);
    }
    void next(const char* source) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        sockaddr_in src{};
        src.sin_family = AF_INET;
        REQUIRE(::inet_pton(AF_INET, source, &src.sin_addr) == 1);
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) == 0);
        REQUIRE(::write(go_[1], "a", 1) == 1);
        REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr_), sizeof addr_) == 0);
        char c = 0;
        REQUIRE(::read(ready_[0], &c, 1) == 1);
        REQUIRE(c == 'y');
        clients_.push_back(fd);
    }
    EnrichConfig config() const {
        EnrichConfig cfg;
        cfg.samba_ports = {ntohs(addr_.sin_port)};
        return cfg;
    }
    pid_t pid = -1;

private:
    sockaddr_in addr_{};
    int listener_ = -1;
    int go_[2] = {-1, -1}, ready_[2] = {-1, -1};
    std::vector<int> clients_;
};

}  // namespace custguard::events::testing
