// systemd's file-descriptor store: keeps the fanotify descriptor alive across a daemon
// restart (fanotify lets every open through once its descriptor closes), and hands it to
// the next instance through LISTEN_FDS/LISTEN_FDNAMES.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "daemon/fanotify/unique_fd.hpp"

namespace custguard::daemon {

inline constexpr std::string_view fanotify_fd_name = "fanotify";

// Sends `fd` to the service manager (FDSTORE=1, FDNAME=name). Returns false when there is
// no service manager (NOTIFY_SOCKET unset): the descriptor then dies with the process.
// The unit needs FileDescriptorStoreMax= >= 1.
tl::expected<bool, std::string> fd_store_put(int fd, std::string_view name);

// Drops a stored descriptor (FDSTOREREMOVE=1), for `stop(remove=true)`.
tl::expected<bool, std::string> fd_store_remove(std::string_view name);

struct ListenedFd {
    std::string name;
    UniqueFd fd;
};

// Takes every descriptor the service manager passed (sd_listen_fds_with_names) and unsets
// the environment; call once per process and hand the others to their owners.
tl::expected<std::vector<ListenedFd>, std::string> take_listened_fds();

// Removes and returns the first descriptor called `name`.
std::optional<UniqueFd> take_named(std::vector<ListenedFd>& fds, std::string_view name);

// True if `fd` is a fanotify group descriptor.
bool is_fanotify_fd(int fd);

}  // namespace custguard::daemon
