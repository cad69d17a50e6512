// The file access an assembled audit event describes: SYSCALL (who, which syscall, the
// rule key), CWD, the PATH items and PROCTITLE, decoded. Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "daemon/audit/assembler.hpp"

namespace custguard::audit {

inline constexpr std::uint32_t unset_id = 0xffffffffu;
inline constexpr std::string_view key_prefix = "custguard:";

// The key of an instance's watch rule for `zone`: "custguard:<instance>:<zone>". Zone
// names have no ':'; an empty instance gives the untagged "custguard:<zone>" of versions
// before instance tags (what tests with captured records use).
std::string audit_key(std::string_view instance, std::string_view zone);

struct PathItem {
    std::uint32_t item = 0;
    std::optional<std::string> name;  // decoded; nullopt for "(null)"
    std::uint64_t inode = 0;
    std::uint64_t dev = 0;            // kernel dev_t encoding
    std::uint32_t mode = 0;
    std::uint32_t ouid = unset_id;
    std::string nametype;             // NORMAL, PARENT, CREATE, DELETE, UNKNOWN
};

struct Access {
    Stamp stamp;
    bool complete = false;   // the event ended with EOE
    std::uint32_t arch = 0;  // AUDIT_ARCH_* (0xc000003e for x86_64)
    std::int32_t syscall = -1;
    bool success = false;
    std::int64_t exit = 0;
    std::uint64_t a[4] = {};
    std::uint32_t pid = 0;   // the kernel writes the thread group id here
    std::uint32_t ppid = 0;
    std::uint32_t auid = unset_id;
    std::uint32_t uid = unset_id, gid = unset_id, euid = unset_id, egid = unset_id;
    std::uint32_t fsuid = unset_id, fsgid = unset_id;
    std::uint32_t ses = unset_id;
    std::string comm, exe, tty;
    std::vector<std::string> keys;  // a rule key, or several (joined by \x01 in the record)
    std::optional<std::string> cwd;
    std::optional<std::string> proctitle;  // arguments joined by ' '
    std::vector<PathItem> paths;

    // The key "custguard:<instance>:<zone>" -> "<zone>" (see audit_key()); nullopt when no
    // key is this instance's.
    std::optional<std::string> zone_key(std::string_view instance) const;
    // The accessed object: the first NORMAL or CREATE item, else the last item.
    const PathItem* target() const;
    // The target's name made absolute against CWD and normalised (".", ".."); nullopt
    // when unknown. `relative_to_fd` is set when the name is relative and the syscall
    // took a directory descriptor other than AT_FDCWD (the path is then unknown here).
    std::optional<std::string> target_path(int* relative_to_fd = nullptr) const;
};

// nullopt when the event has no SYSCALL record (or its essential fields do not parse).
std::optional<Access> extract_access(const Event& event);

// Syscalls that open a file, per audit arch: open, openat, openat2, open_by_handle_at
// (creat only writes, so a read watch never fires on it). The index of the flags
// argument, or -1 when the flags are not an argument (openat2) or the call is not an open.
enum class OpenKind : std::uint8_t { not_open, open };
OpenKind classify_syscall(std::uint32_t arch, std::int32_t syscall, int* flags_arg = nullptr);

// "/a/./b/../c" -> "/a/c"; keeps a leading "/".
std::string normalize_path(std::string_view path);

}  // namespace custguard::audit
