// Owning directory stream (custguard_os, header-only), the DIR* beside UniqueFd.
#pragma once

#include <dirent.h>
#include <unistd.h>

#include <utility>

namespace custguard::common {

class UniqueDir {
public:
    UniqueDir() = default;
    // Takes `fd` (an open directory) in every case: it is closed on failure too.
    static UniqueDir from_fd(int fd) noexcept {
        if (fd < 0) return {};
        DIR* d = ::fdopendir(fd);
        if (!d) ::close(fd);
        return UniqueDir(d);
    }
    ~UniqueDir() { reset(); }
    UniqueDir(UniqueDir&& other) noexcept : dir_(std::exchange(other.dir_, nullptr)) {}
    UniqueDir& operator=(UniqueDir&& other) noexcept {
        if (this != &other) {
            reset();
            dir_ = std::exchange(other.dir_, nullptr);
        }
        return *this;
    }
    UniqueDir(const UniqueDir&) = delete;
    UniqueDir& operator=(const UniqueDir&) = delete;

    DIR* get() const noexcept { return dir_; }
    int fd() const noexcept { return dir_ ? ::dirfd(dir_) : -1; }
    explicit operator bool() const noexcept { return dir_ != nullptr; }
    // The next entry other than "." and "..", or nullptr at the end (errno set on error).
    dirent* next() noexcept {
        while (dirent* e = ::readdir(dir_)) {
            const char* n = e->d_name;
            if (n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'))) continue;
            return e;
        }
        return nullptr;
    }
    void reset() noexcept {
        if (dir_) ::closedir(dir_);
        dir_ = nullptr;
    }

private:
    explicit UniqueDir(DIR* d) noexcept : dir_(d) {}
    DIR* dir_ = nullptr;
};

}  // namespace custguard::common
