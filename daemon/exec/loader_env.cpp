#include "daemon/exec/loader_env.hpp"

#include <elf.h>
#include <fcntl.h>
#include <unistd.h>

#include <array>

#include "custguard_abi.h"
#include "daemon/fanotify/unique_fd.hpp"

namespace custguard::daemon::exec {

namespace {

// Whether the process runs with AT_SECURE (set-id, file capabilities), from its auxv.
bool at_secure(const std::string& dir) {
    UniqueFd fd(::open((dir + "/auxv").c_str(), O_RDONLY | O_CLOEXEC));
    Elf64_auxv_t aux[64];
    ssize_t n = fd ? ::read(fd.get(), aux, sizeof aux) : -1;
    for (ssize_t i = 0; n > 0 && static_cast<std::size_t>(i + 1) * sizeof(Elf64_auxv_t) <= static_cast<std::size_t>(n); ++i)
        if (aux[i].a_type == AT_SECURE) return aux[i].a_un.a_val != 0;
    return false;
}

}  // namespace

bool has_loader_variable(std::string_view env) {
    static constexpr std::array<std::string_view, 5> names = {"LD_PRELOAD=", "LD_AUDIT=", "LD_LIBRARY_PATH=",
                                                              "LD_ORIGIN_PATH=", "GCONV_PATH="};
    while (!env.empty()) {
        std::size_t end = env.find('\0');
        std::string_view var = env.substr(0, end);
        for (auto n : names)
            if (var.size() > n.size() && var.starts_with(n)) return true;
        if (end == std::string_view::npos) break;
        env.remove_prefix(end + 1);
    }
    return false;
}

std::uint32_t proc_loader_flags(std::uint32_t tgid, const std::string& proc_root) {
    const std::string dir = proc_root + "/" + std::to_string(tgid);
    if (at_secure(dir)) return 0;
    UniqueFd fd(::open((dir + "/environ").c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return CG_TASK_ENV_UNREAD;
    // Bounded by the kernel's argument limits; read whole, up to a generous cap.
    std::string env;
    char buf[16384];
    for (ssize_t n; (n = ::read(fd.get(), buf, sizeof buf)) > 0;) {
        env.append(buf, static_cast<std::size_t>(n));
        if (env.size() > (8u << 20)) return CG_TASK_ENV_UNREAD;
    }
    return has_loader_variable(env) ? CG_TASK_LOADER_ENV : 0;
}

}  // namespace custguard::daemon::exec
