// A stand-in for systemd's fd store where systemd is not PID 1: runs a service with
// NOTIFY_SOCKET, keeps the descriptors it sends with FDSTORE=1, and restarts it when it
// dies, passing them back with LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES.
//
//   fdstore_holder [--no-store] [--restart-delay-ms N] STATUS_FILE -- COMMAND [ARGS...]
//
// Every READY=1 appends "<pid> <STATUS=...>" to STATUS_FILE. SIGTERM stops the service and
// the holder. --no-store drops stored descriptors at once (a manager without fd store).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace {

volatile sig_atomic_t terminate = 0;
void on_term(int) { terminate = 1; }

struct Stored {
    std::string name;
    int fd;
};

pid_t spawn(char** argv, const std::string& notify_path, const std::vector<Stored>& stored) {
    pid_t pid = ::fork();
    if (pid != 0) return pid;
    // Move the descriptors to 3.. (through high numbers, so none is overwritten).
    std::vector<int> high;
    for (const auto& s : stored) high.push_back(::fcntl(s.fd, F_DUPFD, 1000));
    std::string names;
    for (std::size_t i = 0; i < high.size(); ++i) {
        ::dup2(high[i], 3 + static_cast<int>(i));
        ::close(high[i]);
        names += (i ? ":" : "") + stored[i].name;
    }
    ::setenv("NOTIFY_SOCKET", notify_path.c_str(), 1);
    if (!stored.empty()) {
        ::setenv("LISTEN_FDS", std::to_string(stored.size()).c_str(), 1);
        ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
        ::setenv("LISTEN_FDNAMES", names.c_str(), 1);
    } else {
        ::unsetenv("LISTEN_FDS");
    }
    ::execv(argv[0], argv);
    std::perror("fdstore_holder: exec");
    ::_exit(127);
}

}  // namespace

int main(int argc, char** argv) {
    bool store = true;
    int delay_ms = 0;
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && std::strcmp(argv[i], "--") != 0; ++i) {
        if (std::strcmp(argv[i], "--no-store") == 0) store = false;
        else if (std::strcmp(argv[i], "--restart-delay-ms") == 0 && i + 1 < argc) delay_ms = std::atoi(argv[++i]);
    }
    if (i + 2 >= argc || std::strcmp(argv[i + 1], "--") != 0) {
        std::fprintf(stderr, "usage: fdstore_holder [--no-store] [--restart-delay-ms N] STATUS_FILE -- COMMAND...\n");
        return 2;
    }
    std::string status_file = argv[i];
    char** command = argv + i + 2;

    struct sigaction sa {};
    sa.sa_handler = on_term;
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGINT, &sa, nullptr);

    char dir_tmpl[] = "/tmp/cgholder.XXXXXX";
    std::string dir = ::mkdtemp(dir_tmpl);
    std::string notify_path = dir + "/notify";
    int sock = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", notify_path.c_str());
    if (::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        std::perror("fdstore_holder: bind");
        return 1;
    }
    int one = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);

    std::vector<Stored> stored;
    pid_t child = spawn(command, notify_path, stored);
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, child, 0));
    int restarts = 0;
    while (true) {
        if (terminate) {
            ::kill(child, SIGTERM);
            ::waitpid(child, nullptr, 0);
            break;
        }
        pollfd fds[2] = {{sock, POLLIN, 0}, {pidfd, POLLIN, 0}};
        if (::poll(fds, 2, 200) < 0 && errno != EINTR) break;
        if (fds[0].revents & POLLIN) {
            char buf[4096];
            alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * 16) + CMSG_SPACE(sizeof(ucred))];
            iovec iov{buf, sizeof buf - 1};
            msghdr msg{};
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cbuf;
            msg.msg_controllen = sizeof cbuf;
            ssize_t n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
            if (n >= 0) {
                buf[n] = '\0';
                std::vector<int> fds_in;
                for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
                    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                        std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        for (std::size_t k = 0; k < count; ++k)
                            fds_in.push_back(reinterpret_cast<int*>(CMSG_DATA(c))[k]);
                    }
                }
                std::string text(buf), name = "stored", status;
                bool fdstore = false, remove = false, ready = false;
                std::size_t pos = 0;
                while (pos < text.size()) {
                    std::size_t end = text.find('\n', pos);
                    if (end == std::string::npos) end = text.size();
                    std::string line = text.substr(pos, end - pos);
                    if (line == "FDSTORE=1") fdstore = true;
                    else if (line == "FDSTOREREMOVE=1") remove = true;
                    else if (line == "READY=1") ready = true;
                    else if (line.rfind("FDNAME=", 0) == 0) name = line.substr(7);
                    else if (line.rfind("STATUS=", 0) == 0) status = line.substr(7);
                    pos = end + 1;
                }
                if (remove) {
                    for (auto it = stored.begin(); it != stored.end();) {
                        if (it->name == name) { ::close(it->fd); it = stored.erase(it); } else ++it;
                    }
                }
                for (int fd : fds_in) {
                    if (fdstore && store) stored.push_back({name, fd});
                    else ::close(fd);
                }
                if (ready || !status.empty()) {
                    std::ofstream(status_file, std::ios::app) << child << ' ' << (ready ? "READY " : "") << status << '\n';
                }
            }
        }
        if (fds[1].revents & POLLIN) {
            ::waitpid(child, nullptr, 0);
            ::close(pidfd);
            if (terminate || ++restarts > 20) break;
            if (delay_ms) ::usleep(static_cast<useconds_t>(delay_ms) * 1000);
            child = spawn(command, notify_path, stored);
            pidfd = static_cast<int>(::syscall(SYS_pidfd_open, child, 0));
        }
    }
    for (auto& s : stored) ::close(s.fd);
    ::close(sock);
    ::unlink(notify_path.c_str());
    ::rmdir(dir.c_str());
    return 0;
}
