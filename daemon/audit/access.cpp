#include "daemon/audit/access.hpp"

#include <algorithm>

namespace custguard::audit {
namespace {

constexpr std::uint32_t arch_x86_64 = 0xc000003e;
constexpr std::uint32_t arch_i386 = 0x40000003;
constexpr std::uint32_t arch_aarch64 = 0xc00000b7;

std::uint32_t id_or_unset(const Record& r, std::string_view name) {
    auto v = r.number(name);
    return v && *v <= 0xffffffffull ? static_cast<std::uint32_t>(*v) : unset_id;
}

}  // namespace

OpenKind classify_syscall(std::uint32_t arch, std::int32_t nr, int* flags_arg) {
    int fa = -2;
    switch (arch) {
    case arch_x86_64:
        if (nr == 2) fa = 1;            // open(path, flags)
        else if (nr == 257) fa = 2;     // openat(dirfd, path, flags)
        else if (nr == 437) fa = -1;    // openat2(dirfd, path, how)
        else if (nr == 304) fa = 2;     // open_by_handle_at(mount_fd, handle, flags)
        break;
    case arch_i386:
        if (nr == 5) fa = 1;
        else if (nr == 295) fa = 2;
        else if (nr == 437) fa = -1;
        else if (nr == 342) fa = 2;
        break;
    case arch_aarch64:
        if (nr == 56) fa = 2;
        else if (nr == 437) fa = -1;
        else if (nr == 265) fa = 2;
        break;
    default:
        // Other arches share the generic table for openat/openat2.
        if (nr == 56) fa = 2;
        else if (nr == 437) fa = -1;
        break;
    }
    if (fa == -2) return OpenKind::not_open;
    if (flags_arg) *flags_arg = fa;
    return OpenKind::open;
}

std::string normalize_path(std::string_view path) {
    std::vector<std::string_view> parts;
    std::size_t i = 0;
    while (i <= path.size()) {
        std::size_t j = path.find('/', i);
        if (j == std::string_view::npos) j = path.size();
        std::string_view c = path.substr(i, j - i);
        if (c == "..") {
            if (!parts.empty()) parts.pop_back();
        } else if (!c.empty() && c != ".") {
            parts.push_back(c);
        }
        i = j + 1;
    }
    std::string out;
    for (auto c : parts) {
        out += '/';
        out += c;
    }
    return out.empty() ? "/" : out;
}

std::string audit_key(std::string_view instance, std::string_view zone) {
    std::string key(key_prefix);
    if (!instance.empty()) {
        key += instance;
        key += ':';
    }
    key += zone;
    return key;
}

std::optional<std::string> Access::zone_key(std::string_view instance) const {
    const std::string prefix = audit_key(instance, "");
    for (const auto& k : keys) {
        if (k.size() <= prefix.size() || !k.starts_with(prefix)) continue;
        std::string zone = k.substr(prefix.size());
        if (zone.find(':') == std::string::npos) return zone;  // else another instance's
    }
    return std::nullopt;
}

const PathItem* Access::target() const {
    for (const auto& p : paths)
        if (p.nametype == "NORMAL" || p.nametype == "CREATE") return &p;
    return paths.empty() ? nullptr : &paths.back();
}

std::optional<std::string> Access::target_path(int* relative_to_fd) const {
    const PathItem* t = target();
    if (!t || !t->name || t->name->empty()) return std::nullopt;
    const std::string& name = *t->name;
    if (name.front() == '/') return normalize_path(name);
    // openat-style calls with a real directory descriptor resolve against it, not CWD.
    int fa = -2;
    if (classify_syscall(arch, syscall, &fa) == OpenKind::open && fa != 1) {
        auto dirfd = static_cast<std::int32_t>(static_cast<std::uint32_t>(a[0]));
        if (dirfd != -100) {  // AT_FDCWD
            if (relative_to_fd) *relative_to_fd = dirfd;
            return std::nullopt;
        }
    }
    if (!cwd) return std::nullopt;
    return normalize_path(*cwd + "/" + name);
}

std::optional<Access> extract_access(const Event& event) {
    const Record* sc = event.find(type::syscall);
    if (!sc) return std::nullopt;
    Access a;
    a.stamp = event.stamp;
    a.complete = event.complete;
    auto arch = sc->number("arch", true);
    auto nr = sc->number("syscall");
    if (!arch || !nr || *arch > 0xffffffffull || *nr > 0x7fffffffull) return std::nullopt;
    a.arch = static_cast<std::uint32_t>(*arch);
    a.syscall = static_cast<std::int32_t>(*nr);
    a.success = sc->raw("success") == std::optional<std::string_view>("yes");
    a.exit = sc->signed_number("exit").value_or(0);
    for (int i = 0; i < 4; ++i) {
        const char name[3] = {'a', static_cast<char>('0' + i), 0};
        a.a[i] = sc->number(name, true).value_or(0);
    }
    a.pid = id_or_unset(*sc, "pid");
    a.ppid = id_or_unset(*sc, "ppid");
    a.auid = id_or_unset(*sc, "auid");
    a.uid = id_or_unset(*sc, "uid");
    a.gid = id_or_unset(*sc, "gid");
    a.euid = id_or_unset(*sc, "euid");
    a.egid = id_or_unset(*sc, "egid");
    a.fsuid = id_or_unset(*sc, "fsuid");
    a.fsgid = id_or_unset(*sc, "fsgid");
    a.ses = id_or_unset(*sc, "ses");
    a.comm = sc->string("comm").value_or("");
    a.exe = sc->string("exe").value_or("");
    a.tty = std::string(sc->raw("tty").value_or(""));
    if (auto key = sc->string("key")) {
        std::size_t i = 0;
        while (i <= key->size()) {
            std::size_t j = key->find('\x01', i);
            if (j == std::string::npos) j = key->size();
            if (j > i) a.keys.push_back(key->substr(i, j - i));
            i = j + 1;
        }
    }
    for (const auto& r : event.records) {
        if (r.type == type::cwd) {
            a.cwd = r.string("cwd");
        } else if (r.type == type::proctitle) {
            if (auto t = r.string("proctitle")) {
                std::replace(t->begin(), t->end(), '\0', ' ');
                a.proctitle = std::move(*t);
            }
        } else if (r.type == type::path) {
            PathItem p;
            p.item = static_cast<std::uint32_t>(r.number("item").value_or(a.paths.size()));
            p.name = r.string("name");
            p.inode = r.number("inode").value_or(0);
            if (auto d = r.raw("dev")) p.dev = parse_dev(*d).value_or(0);
            if (auto m = r.raw("mode")) {
                std::uint64_t v = 0;
                bool ok = !m->empty();
                for (char c : *m) {
                    if (c < '0' || c > '7') { ok = false; break; }
                    v = v * 8 + static_cast<std::uint64_t>(c - '0');
                }
                p.mode = ok ? static_cast<std::uint32_t>(v) : 0;  // octal, as the kernel writes it
            }
            p.ouid = id_or_unset(r, "ouid");
            p.nametype = std::string(r.raw("nametype").value_or(""));
            a.paths.push_back(std::move(p));
        }
    }
    std::sort(a.paths.begin(), a.paths.end(), [](const PathItem& x, const PathItem& y) { return x.item < y.item; });
    return a;
}

}  // namespace custguard::audit
