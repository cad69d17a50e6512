// Mounts of the report host tests (root): a private mount namespace for the test process
// and tmpfs filesystems in it, so each zone lives on a filesystem of its own (the fanotify
// enforcer marks whole filesystems) and every mount vanishes with the process.
#pragma once

#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "custguard/common/errno_text.hpp"

namespace cgtest::report {

// unshare(CLONE_NEWNS) with / made private, once per process: call it before any thread
// exists (unshare refuses a mount namespace to a thread that shares its filesystem data).
inline bool private_mounts() {
    static const bool ok = ::geteuid() == 0 && ::unshare(CLONE_NEWNS) == 0 &&
                           ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
    return ok;
}

// A tmpfs (mode 0755) on `dir`, created when missing, until destroyed.
class Tmpfs {
public:
    explicit Tmpfs(std::filesystem::path dir, const std::string& size = "8m") : dir_(std::move(dir)) {
        std::filesystem::create_directories(dir_);
        if (::mount("cgreport", dir_.c_str(), "tmpfs", 0, ("mode=0755,size=" + size).c_str()) != 0)
            throw std::runtime_error("tmpfs on " + dir_.string() + ": " + custguard::common::errno_text(errno));
    }
    ~Tmpfs() { ::umount2(dir_.c_str(), MNT_DETACH); }
    Tmpfs(const Tmpfs&) = delete;
    Tmpfs& operator=(const Tmpfs&) = delete;
    const std::filesystem::path& path() const { return dir_; }

private:
    std::filesystem::path dir_;
};

}  // namespace cgtest::report
