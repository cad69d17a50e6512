#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "custguard/edm/edm.hpp"

namespace custguard::edm {

namespace {

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

std::string octal(mode_t m) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
    return buf;
}

}  // namespace

tl::expected<Key, std::string> load_key(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return tl::unexpected(errno_text("cannot open the EDM key file '" + path + "'"));
    struct stat st {};
    Key key{};
    std::string error;
    if (::fstat(fd, &st) != 0) error = errno_text("cannot stat '" + path + "'");
    else if (!S_ISREG(st.st_mode)) error = "the EDM key file '" + path + "' is not a regular file";
    else if (st.st_mode & 077)
        error = "the EDM key file '" + path + "' is readable by others (mode " + octal(st.st_mode) + "): chmod 600 it";
    else if (st.st_size != static_cast<off_t>(key_bytes))
        error = "the EDM key file '" + path + "' holds " + std::to_string(st.st_size) + " bytes, not " +
                std::to_string(key_bytes) + ": restore it, or rebuild every index with a new key";
    else if (::pread(fd, key.data(), key.size(), 0) != static_cast<ssize_t>(key.size()))
        error = errno_text("cannot read '" + path + "'");
    ::close(fd);
    if (!error.empty()) return tl::unexpected(error);
    return key;
}

tl::expected<Key, std::string> load_or_create_key(const std::string& path, bool* created) {
    if (created) *created = false;
    if (::access(path.c_str(), F_OK) == 0 || errno != ENOENT) return load_key(path);
    if (const auto slash = path.rfind('/'); slash != std::string::npos && slash > 0) {
        const std::string dir = path.substr(0, slash);
        if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
            return tl::unexpected(errno_text("cannot create the directory '" + dir + "'"));
    }
    Key key{};
    if (::getrandom(key.data(), key.size(), 0) != static_cast<ssize_t>(key.size()))
        return tl::unexpected(errno_text("getrandom"));
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return tl::unexpected(errno_text("cannot create the EDM key file '" + path + "'"));
    const bool ok = ::fchmod(fd, 0600) == 0 && ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size()) &&
                    ::fsync(fd) == 0;
    const int saved = errno;
    ::close(fd);
    if (!ok) {
        ::unlink(path.c_str());
        errno = saved;
        return tl::unexpected(errno_text("cannot write the EDM key file '" + path + "'"));
    }
    if (created) *created = true;
    return key;
}

struct Hasher::State {
    EVP_MAC* mac = nullptr;
    EVP_MAC_CTX* ctx = nullptr;
    ~State() {
        EVP_MAC_CTX_free(ctx);
        EVP_MAC_free(mac);
    }
};

Hasher::Hasher(std::unique_ptr<State> s) : state_(std::move(s)) {}
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;
Hasher::~Hasher() = default;

tl::expected<Hasher, std::string> Hasher::create(const Key& key) {
    auto s = std::make_unique<State>();
    s->mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (s->mac) s->ctx = EVP_MAC_CTX_new(s->mac);
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
    if (!s->ctx || EVP_MAC_init(s->ctx, key.data(), key.size(), params) != 1)
        return tl::unexpected(std::string("OpenSSL cannot compute HMAC-SHA-256 (is the default provider available?)"));
    return Hasher(std::move(s));
}

std::array<std::uint8_t, 32> Hasher::mac(std::string_view bytes) {
    std::array<std::uint8_t, 32> out{};
    std::size_t len = 0;
    // Re-initialising without a key keeps the key's precomputed pads. Failures here are
    // allocation failures of an already working context.
    if (EVP_MAC_init(state_->ctx, nullptr, 0, nullptr) != 1 ||
        EVP_MAC_update(state_->ctx, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()) != 1 ||
        EVP_MAC_final(state_->ctx, out.data(), &len, out.size()) != 1)
        throw std::bad_alloc();
    return out;
}

Hash Hasher::hash(char domain, std::string_view value) {
    std::array<std::uint8_t, 32> out{};
    std::size_t len = 0;
    const unsigned char d[2] = {static_cast<unsigned char>(domain), 0};
    if (EVP_MAC_init(state_->ctx, nullptr, 0, nullptr) != 1 || EVP_MAC_update(state_->ctx, d, 2) != 1 ||
        EVP_MAC_update(state_->ctx, reinterpret_cast<const unsigned char*>(value.data()), value.size()) != 1 ||
        EVP_MAC_final(state_->ctx, out.data(), &len, out.size()) != 1)
        throw std::bad_alloc();
    Hash h;
    std::memcpy(h.data(), out.data(), h.size());
    return h;
}

}  // namespace custguard::edm
