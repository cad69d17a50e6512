// Pinning a BPF object by name without a gap, for the BPF-LSM enforcer and the exec
// tracker (header-only: both link libbpf already).
#pragma once

#include <stdio.h>

#include <cerrno>
#include <filesystem>
#include <string>

#include <bpf/bpf.h>
#include <tl/expected.hpp>

#include "custguard/common/errno_text.hpp"

namespace custguard::daemon {

// Pins `fd` at dir/name: under a temporary name first, then renamed over any previous
// pin, so the name never vanishes (a pinned link must not detach in between).
inline tl::expected<void, std::string> pin_replace(const std::filesystem::path& dir, const char* name, int fd) {
    const auto final_path = dir / name;
    // bpffs refuses dots in names (reserved for iterators).
    const auto tmp_path = dir / (std::string(name) + "_new");
    ::unlink(tmp_path.c_str());
    if (bpf_obj_pin(fd, tmp_path.c_str()) != 0)
        return tl::unexpected("pinning " + tmp_path.string() + ": " + common::errno_text(errno));
    if (::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp_path.c_str());
        return tl::unexpected("renaming the pin " + final_path.string() + ": " + common::errno_text(err));
    }
    return {};
}

}  // namespace custguard::daemon
