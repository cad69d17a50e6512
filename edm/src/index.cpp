// The index file, little-endian:
//   0  "CGEDMIX\0"                 magic
//   8  u32 version (1)
//  12  u32 kind, u32 length, u32 near, u32 min_supporting, u32 fields
//  32  u64 records, u64 entries
//  48  u32 pattern bytes
//  52  16 bytes key check: HMAC(key, 'k' "custguard edm key") truncated
//  68  pattern
//      entries x (16-byte hash, u32 record), sorted
//      records x fields x (16-byte hash, u32 length in code points)
//      32 bytes HMAC-SHA-256(key, everything before)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "custguard/edm/edm.hpp"

namespace custguard::edm {

namespace {

constexpr char kMagic[8] = {'C', 'G', 'E', 'D', 'M', 'I', 'X', '\0'};
constexpr std::size_t kHeader = 68;
constexpr std::size_t kEntry = hash_bytes + 4;
constexpr std::size_t kField = hash_bytes + 4;
constexpr std::size_t kTrailer = 32;
constexpr std::uint32_t kMaxFieldLength = 4096;

void put32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}
void put64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}
std::uint32_t get32(std::string_view b, std::size_t at) {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[at + static_cast<std::size_t>(i)]);
    return v;
}
std::uint64_t get64(std::string_view b, std::size_t at) {
    return get32(b, at) | (std::uint64_t{get32(b, at + 4)} << 32);
}

Hash key_check(Hasher& h) { return h.hash('k', "custguard edm key"); }

}  // namespace

std::string serialize_index(const Index& index, const Key& key) {
    auto hasher = Hasher::create(key);
    if (!hasher) throw std::runtime_error(hasher.error());
    std::string out(kMagic, sizeof kMagic);
    put32(out, index_version);
    put32(out, static_cast<std::uint32_t>(index.kind));
    put32(out, index.length);
    put32(out, index.near);
    put32(out, index.min_supporting);
    put32(out, index.fields);
    put64(out, index.records);
    put64(out, index.entries.size());
    put32(out, static_cast<std::uint32_t>(index.pattern.size()));
    const auto check = key_check(*hasher);
    out.append(reinterpret_cast<const char*>(check.data()), check.size());
    out += index.pattern;
    out.reserve(out.size() + index.entries.size() * kEntry + index.supporting.size() * kField + kTrailer);
    for (const auto& e : index.entries) {
        out.append(reinterpret_cast<const char*>(e.hash.data()), e.hash.size());
        put32(out, e.record);
    }
    for (const auto& f : index.supporting) {
        out.append(reinterpret_cast<const char*>(f.hash.data()), f.hash.size());
        put32(out, f.length);
    }
    const auto mac = hasher->mac(out);
    out.append(reinterpret_cast<const char*>(mac.data()), mac.size());
    return out;
}

tl::expected<Index, std::string> parse_index(std::string_view b, const Key& key) {
    using tl::unexpected;
    if (b.size() > max_index_bytes)
        return unexpected("the index is larger than " + std::to_string(max_index_bytes >> 20) + " MiB");
    if (b.size() < kHeader + kTrailer || std::memcmp(b.data(), kMagic, sizeof kMagic) != 0)
        return unexpected(std::string("not an EDM index (too short or wrong magic): rebuild it with 'custguardctl edm build'"));
    if (get32(b, 8) != index_version)
        return unexpected("EDM index version " + std::to_string(get32(b, 8)) + " is not supported (this custguard reads version " +
                          std::to_string(index_version) + "): rebuild it with 'custguardctl edm build'");
    Index ix;
    const auto kind = get32(b, 12);
    if (kind < 1 || kind > 4) return unexpected("the index names an unknown primary kind " + std::to_string(kind));
    ix.kind = static_cast<Kind>(kind);
    ix.length = get32(b, 16);
    ix.near = get32(b, 20);
    ix.min_supporting = get32(b, 24);
    ix.fields = get32(b, 28);
    ix.records = get64(b, 32);
    const std::uint64_t entries = get64(b, 40);
    const std::uint32_t pattern = get32(b, 48);
    if (ix.fields > max_supporting || ix.min_supporting > ix.fields || ix.near > max_near || pattern > max_pattern_bytes ||
        ix.length > 64)
        return unexpected(std::string("the index header is corrupted (a count is out of range)"));
    // Each count is bounded by the file size before any multiplication can overflow.
    if (entries > b.size() / kEntry || ix.records > b.size() / kField || ix.records > 0xFFFFFFFFu)
        return unexpected(std::string("the index is truncated (its counts exceed its size)"));
    const std::uint64_t need = kHeader + pattern + entries * kEntry + ix.records * ix.fields * kField + kTrailer;
    if (need != b.size())
        return unexpected("the index is " + std::string(need > b.size() ? "truncated" : "followed by extra bytes") + " (" +
                          std::to_string(b.size()) + " bytes, its header says " + std::to_string(need) +
                          "): rebuild it with 'custguardctl edm build'");
    auto hasher = Hasher::create(key);
    if (!hasher) return unexpected(hasher.error());
    if (std::memcmp(b.data() + 52, key_check(*hasher).data(), hash_bytes) != 0)
        return unexpected(std::string("the index was built with another key: name the key it was built with, or rebuild it"));
    const auto mac = hasher->mac(b.substr(0, b.size() - kTrailer));
    if (std::memcmp(mac.data(), b.data() + b.size() - kTrailer, kTrailer) != 0)
        return unexpected(std::string("the index is corrupted (its checksum does not match): rebuild it with 'custguardctl edm build'"));
    std::size_t at = kHeader;
    ix.pattern.assign(b.substr(at, pattern));
    at += pattern;
    ix.entries.resize(entries);
    for (auto& e : ix.entries) {
        std::memcpy(e.hash.data(), b.data() + at, hash_bytes);
        e.record = get32(b, at + hash_bytes);
        if (e.record >= ix.records) return unexpected(std::string("the index is corrupted (an entry names no record)"));
        at += kEntry;
    }
    if (!std::is_sorted(ix.entries.begin(), ix.entries.end()))
        return unexpected(std::string("the index is corrupted (entries out of order)"));
    ix.supporting.resize(ix.records * ix.fields);
    for (auto& f : ix.supporting) {
        std::memcpy(f.hash.data(), b.data() + at, hash_bytes);
        f.length = get32(b, at + hash_bytes);
        if (f.length > kMaxFieldLength) return unexpected(std::string("the index is corrupted (a field is too long)"));
        at += kField;
    }
    return ix;
}

tl::expected<void, std::string> write_index(const std::string& path, const Index& index, const Key& key) {
    const std::string bytes = serialize_index(index, key);
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    std::string tmp = path + ".XXXXXX";
    const int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
    auto fail = [&](const std::string& what) {
        const std::string e = what + ": " + std::strerror(errno);
        if (fd >= 0) ::close(fd);
        ::unlink(tmp.c_str());
        return tl::unexpected(e);
    };
    if (fd < 0) return tl::unexpected("cannot create a file next to '" + path + "': " + std::strerror(errno));
    if (::fchmod(fd, 0600) != 0) return fail("fchmod " + tmp);
    for (std::size_t done = 0; done < bytes.size();) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail("cannot write " + tmp);
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) return fail("fsync " + tmp);
    if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("cannot rename " + tmp + " to " + path);
    ::close(fd);
    if (const int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); d >= 0) {
        ::fsync(d);
        ::close(d);
    }
    return {};
}

std::string default_key_path(const std::string& index_path) {
    const auto slash = index_path.rfind('/');
    return (slash == std::string::npos ? std::string() : index_path.substr(0, slash + 1)) + "key";
}

}  // namespace custguard::edm
