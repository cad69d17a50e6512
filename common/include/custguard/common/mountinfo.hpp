// /proc/self/mountinfo as records (custguard_os, header-only): one parser for the
// enforcers, which need a mount's superblock device (by mount id: statx's st_dev differs
// on btrfs subvolumes) and a mount that shows a filesystem's root.
#pragma once

#include <sys/sysmacros.h>

#include <charconv>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace custguard::common {

struct MountEntry {
    int id = 0;
    int parent = 0;
    unsigned major = 0;
    unsigned minor = 0;
    std::string root;         // the directory of the filesystem this mount shows
    std::string mount_point;  // where it is mounted, in our namespace

    dev_t dev() const { return makedev(major, minor); }  // as stat's st_dev
};

// mountinfo escapes space, tab, newline and backslash as \ooo; anything else is kept.
inline std::string unescape_mountinfo(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
            s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
            out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
            i += 3;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

// One line's first five fields; nullopt for a line that does not have them.
inline std::optional<MountEntry> parse_mountinfo_line(std::string_view line) {
    std::string_view f[5];
    std::size_t pos = 0;
    for (auto& field : f) {
        while (pos < line.size() && line[pos] == ' ') ++pos;
        const std::size_t end = line.find(' ', pos);
        if (pos >= line.size()) return std::nullopt;
        field = line.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
        pos = end == std::string_view::npos ? line.size() : end;
    }
    auto number = [](std::string_view s, auto& out) {
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
        return ec == std::errc() && p == s.data() + s.size();
    };
    MountEntry e;
    const std::size_t colon = f[2].find(':');
    if (!number(f[0], e.id) || !number(f[1], e.parent) || colon == std::string_view::npos ||
        !number(f[2].substr(0, colon), e.major) || !number(f[2].substr(colon + 1), e.minor))
        return std::nullopt;
    e.root = unescape_mountinfo(f[3]);
    e.mount_point = unescape_mountinfo(f[4]);
    return e;
}

// Every well-formed line of a mountinfo text; others are skipped.
inline std::vector<MountEntry> parse_mountinfo(std::string_view text) {
    std::vector<MountEntry> out;
    while (!text.empty()) {
        const std::size_t nl = text.find('\n');
        if (auto e = parse_mountinfo_line(text.substr(0, nl))) out.push_back(std::move(*e));
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
    return out;
}

// This process's mounts (empty when /proc is not mounted).
inline std::vector<MountEntry> read_mountinfo(const char* path = "/proc/self/mountinfo") {
    std::ifstream in(path);
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    return parse_mountinfo(text);
}

}  // namespace custguard::common
