#include "daemon/fanotify/fd_store.hpp"

#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace custguard::daemon {

tl::expected<bool, std::string> fd_store_put(int fd, std::string_view name) {
    if (!std::getenv("NOTIFY_SOCKET")) return false;
    std::string msg = "FDSTORE=1\nFDNAME=" + std::string(name);
    int r = sd_pid_notify_with_fds(0, 0, msg.c_str(), &fd, 1);
    if (r < 0) return tl::unexpected("cannot store descriptor " + std::string(name) +
                                     " with the service manager: " + std::strerror(-r));
    return r > 0;
}

tl::expected<bool, std::string> fd_store_remove(std::string_view name) {
    if (!std::getenv("NOTIFY_SOCKET")) return false;
    std::string msg = "FDSTOREREMOVE=1\nFDNAME=" + std::string(name);
    int r = sd_pid_notify(0, 0, msg.c_str());
    if (r < 0) return tl::unexpected("cannot remove stored descriptor " + std::string(name) + ": " +
                                     std::strerror(-r));
    return r > 0;
}

tl::expected<std::vector<ListenedFd>, std::string> take_listened_fds() {
    char** names = nullptr;
    int n = sd_listen_fds_with_names(1, &names);
    if (n < 0) return tl::unexpected(std::string("cannot take passed descriptors: ") + std::strerror(-n));
    std::vector<ListenedFd> out;
    for (int i = 0; i < n; ++i) {
        ListenedFd l;
        l.fd = UniqueFd(SD_LISTEN_FDS_START + i);
        l.name = names && names[i] ? names[i] : "unknown";
        out.push_back(std::move(l));
    }
    if (names) {
        for (int i = 0; names[i]; ++i) std::free(names[i]);
        std::free(names);
    }
    return out;
}

std::optional<UniqueFd> take_named(std::vector<ListenedFd>& fds, std::string_view name) {
    for (auto it = fds.begin(); it != fds.end(); ++it) {
        if (it->name == name && it->fd) {
            UniqueFd fd = std::move(it->fd);
            fds.erase(it);
            return fd;
        }
    }
    return std::nullopt;
}

bool is_fanotify_fd(int fd) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    char target[64];
    ssize_t n = ::readlink(path, target, sizeof target - 1);
    if (n < 0) return false;
    target[n] = '\0';
    return std::strcmp(target, "anon_inode:[fanotify]") == 0;
}

}  // namespace custguard::daemon
