#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include <unicode/regex.h>
#include <unicode/unistr.h>

#include "custguard/edm/edm.hpp"
#include "internal.hpp"

namespace custguard::edm {

namespace {

constexpr std::size_t kSegment = std::size_t{1} << 20;  // raw bytes folded at once
constexpr std::size_t kMaxPrimary = 256;                // code points of a primary value
// Neighbourhoods searched for one record's supporting values: a document repeating one
// customer's number thousands of times without the name cannot make a scan take minutes.
constexpr std::uint32_t kMaxAttempts = 64;
// ICU's regex engine steps per match (roughly milliseconds): a pathological pattern fails
// the scan instead of hanging it.
constexpr std::int32_t kRegexTimeLimit = 2000;

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

bool is_digit(char32_t c) { return c >= U'0' && c <= U'9'; }

// Before position p: the start of the UTF-8 character p falls in.
std::size_t char_start(std::string_view s, std::size_t p) {
    while (p > 0 && p < s.size() && (static_cast<unsigned char>(s[p]) & 0xC0) == 0x80) --p;
    return p;
}

tl::expected<std::string, std::string> read_bounded(int fd, const std::string& what, std::uint64_t max) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return tl::unexpected(errno_text("cannot stat " + what));
    if (!S_ISREG(st.st_mode)) return tl::unexpected(what + " is not a regular file");
    if (static_cast<std::uint64_t>(st.st_size) > max)
        return tl::unexpected(what + " is larger than " + std::to_string(max >> 20) + " MiB");
    std::string bytes(static_cast<std::size_t>(st.st_size), '\0');
    for (std::size_t done = 0; done < bytes.size();) {
        const ssize_t n = ::pread(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return tl::unexpected(errno_text("cannot read " + what));
        if (n == 0) return tl::unexpected(what + " shrank while being read");
        done += static_cast<std::size_t>(n);
    }
    return bytes;
}

}  // namespace

struct Matcher::Compiled {
    std::unique_ptr<icu::RegexPattern> pattern;
};

namespace {

tl::expected<std::unique_ptr<Matcher::Compiled>, std::string> compile(const Index& index) {
    auto c = std::make_unique<Matcher::Compiled>();
    if (index.kind != Kind::regex) return c;
    UParseError pe{};
    UErrorCode status = U_ZERO_ERROR;
    c->pattern.reset(icu::RegexPattern::compile(icu::UnicodeString::fromUTF8(index.pattern), 0, pe, status));
    if (U_FAILURE(status))
        return tl::unexpected("the primary pattern does not compile (" + std::string(u_errorName(status)) + " at offset " +
                              std::to_string(pe.offset) + ")");
    return c;
}

}  // namespace

Matcher::Matcher(Index index, const Key& key, int fd, std::unique_ptr<Compiled> compiled)
    : index_(std::move(index)), key_(key), fd_(fd), compiled_(std::move(compiled)) {}

Matcher::~Matcher() {
    if (fd_ >= 0) ::close(fd_);
}

tl::expected<std::shared_ptr<const Matcher>, std::string> Matcher::from_index(Index index, const Key& key) {
    auto compiled = compile(index);
    if (!compiled) return tl::unexpected(compiled.error());
    return std::shared_ptr<const Matcher>(new Matcher(std::move(index), key, -1, std::move(*compiled)));
}

tl::expected<std::shared_ptr<const Matcher>, std::string> Matcher::open(const std::string& index_path,
                                                                        const std::string& key_path) {
    auto key = load_key(key_path);
    if (!key) return tl::unexpected(key.error());
    const int fd = ::open(index_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return tl::unexpected(errno_text("cannot open the EDM index '" + index_path + "'"));
    auto bytes = read_bounded(fd, "the EDM index '" + index_path + "'", max_index_bytes);
    ::close(fd);
    if (!bytes) return tl::unexpected(bytes.error());
    auto index = parse_index(*bytes, *key);
    if (!index) return tl::unexpected("the EDM index '" + index_path + "': " + index.error());
    auto compiled = compile(*index);
    if (!compiled) return tl::unexpected("the EDM index '" + index_path + "': " + compiled.error());
    // Key and index for the sandboxed reader, which cannot open either file; sealed so
    // that no reader can change what the next one sees.
    const int mfd = ::memfd_create("custguard-edm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0) return tl::unexpected(errno_text("memfd_create"));
    bool ok = ::write(mfd, key->data(), key->size()) == static_cast<ssize_t>(key->size());
    for (std::size_t done = 0; ok && done < bytes->size();) {
        const ssize_t n = ::write(mfd, bytes->data() + done, bytes->size() - done);
        if (n < 0 && errno == EINTR) continue;
        ok = n > 0;
        if (ok) done += static_cast<std::size_t>(n);
    }
    ok = ok && ::fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) == 0;
    if (!ok) {
        const auto e = errno_text("cannot copy the EDM index into a sealed memfd");
        ::close(mfd);
        return tl::unexpected(e);
    }
    return std::shared_ptr<const Matcher>(new Matcher(std::move(*index), *key, mfd, std::move(*compiled)));
}

tl::expected<std::shared_ptr<const Matcher>, std::string> Matcher::from_fd(int fd) {
    auto bytes = read_bounded(fd, "the EDM descriptor " + std::to_string(fd), max_index_bytes + key_bytes);
    if (!bytes) return tl::unexpected(bytes.error());
    if (bytes->size() < key_bytes) return tl::unexpected("the EDM descriptor " + std::to_string(fd) + " holds no key");
    Key key;
    std::memcpy(key.data(), bytes->data(), key.size());
    auto index = parse_index(std::string_view(*bytes).substr(key_bytes), key);
    if (!index) return tl::unexpected(index.error());
    return from_index(std::move(*index), key);
}

struct Matcher::Session::State {
    const Matcher* m;
    Hasher hasher;
    std::string pending;
    std::size_t context = 0;  // leading bytes of pending already folded as a segment's middle
    bool processed = false;
    std::unordered_set<std::uint32_t> persons;
    std::unordered_map<std::uint32_t, std::uint32_t> attempts;  // failed searches per record
    std::string error;

    std::size_t margin() const { return 4 * (m->index_.near + kMaxPrimary) + 16; }

    void process(std::string_view raw);
    void candidate(const std::u32string& text, std::size_t b, std::size_t e, const std::string& value);
    void runs(const std::u32string& text);
    void emails(const std::u32string& text);
    void regex(const std::u32string& text);
};

void Matcher::Session::State::candidate(const std::u32string& text, std::size_t b, std::size_t e, const std::string& value) {
    const auto& ix = m->index_;
    const Hash h = hasher.hash('p', value);
    auto lo = std::lower_bound(ix.entries.begin(), ix.entries.end(), Entry{h, 0});
    if (lo == ix.entries.end() || lo->hash != h) return;
    // The supporting form of the text around the hit, and where each code point starts.
    std::string near_text;
    std::vector<std::uint32_t> starts;
    bool built = false;
    for (; lo != ix.entries.end() && lo->hash == h; ++lo) {
        const std::uint32_t r = lo->record;
        if (persons.contains(r)) continue;
        auto& tries = attempts[r];
        if (tries >= kMaxAttempts) continue;
        if (ix.min_supporting == 0) {
            persons.insert(r);
            continue;
        }
        if (!built) {
            const std::size_t from = b > ix.near ? b - ix.near : 0, to = std::min(text.size(), e + ix.near);
            const auto c = compact(std::u32string_view(text).substr(from, to - from));
            for (char32_t cp : c) {
                starts.push_back(static_cast<std::uint32_t>(near_text.size()));
                detail::append_utf8(near_text, cp);
            }
            starts.push_back(static_cast<std::uint32_t>(near_text.size()));
            built = true;
        }
        const std::size_t cps = starts.size() - 1;
        std::uint32_t found = 0;
        for (std::uint32_t f = 0; f < ix.fields && found < ix.min_supporting; ++f) {
            const Field& field = ix.supporting[std::size_t{r} * ix.fields + f];
            if (field.length == 0 || field.length > cps) continue;
            for (std::size_t s = 0; s + field.length <= cps; ++s) {
                const auto window = std::string_view(near_text).substr(starts[s], starts[s + field.length] - starts[s]);
                if (hasher.hash('s', window) == field.hash) {
                    ++found;
                    break;
                }
            }
        }
        if (found >= ix.min_supporting) persons.insert(r);
        else ++tries;
    }
}

// Numbers: digit groups joined by at most two separators ("(03) 1234-5678"); every
// window of whole groups with the right number of digits is a candidate.
void Matcher::Session::State::runs(const std::u32string& t) {
    const auto& ix = m->index_;
    const std::size_t lo = ix.kind == Kind::phone ? 10 : ix.length, hi = ix.kind == Kind::phone ? 11 : ix.length;
    struct Group {
        std::size_t b, e;
    };
    std::vector<Group> groups;
    std::string digits;
    for (std::size_t i = 0; i < t.size();) {
        if (!is_digit(t[i])) {
            ++i;
            continue;
        }
        const bool plus = i > 0 && t[i - 1] == U'+';
        groups.clear();
        std::size_t j = i;
        for (;;) {
            const std::size_t gb = j;
            while (j < t.size() && is_digit(t[j])) ++j;
            groups.push_back({gb, j});
            std::size_t k = j;
            while (k < t.size() && k - j < 2 && detail::is_separator(t[k]) && t[k] != U'\n') ++k;
            if (k > j && k < t.size() && is_digit(t[k])) j = k;
            else break;
        }
        const std::size_t run_end = groups.back().e;
        for (std::size_t g = 0; g < groups.size(); ++g) {
            digits.clear();
            for (std::size_t k = g; k < groups.size(); ++k) {
                for (std::size_t p = groups[k].b; p < groups[k].e; ++p) digits += static_cast<char>(t[p]);
                if (ix.kind == Kind::phone && g == 0 && plus && digits.starts_with("81") && digits.size() - 1 >= lo &&
                    digits.size() - 1 <= hi)
                    candidate(t, groups[g].b, groups[k].e, "0" + digits.substr(2));
                if (digits.size() > hi + (plus && g == 0 ? 1 : 0)) break;
                if (digits.size() < lo || digits.size() > hi) continue;
                if (ix.kind == Kind::phone && digits[0] != '0') continue;
                candidate(t, groups[g].b, groups[k].e, digits);
            }
        }
        i = run_end;
    }
}

void Matcher::Session::State::emails(const std::u32string& t) {
    for (std::size_t a = 0; a < t.size(); ++a) {
        if (t[a] != U'@') continue;
        std::size_t l = a, r = a + 1;
        while (l > 0 && a - l < 64 && detail::is_email_char(t[l - 1])) --l;
        while (l < a && t[l] == U'.') ++l;
        while (r < t.size() && r - a < kMaxPrimary && detail::is_email_char(t[r])) ++r;
        while (r > a + 1 && (t[r - 1] == U'.' || t[r - 1] == U'-')) --r;
        const auto value = detail::utf8(std::u32string_view(t).substr(l, r - l));
        if (detail::valid_email(value)) candidate(t, l, r, value);
    }
}

void Matcher::Session::State::regex(const std::u32string& t) {
    const auto u16 = icu::UnicodeString::fromUTF32(reinterpret_cast<const UChar32*>(t.data()), static_cast<std::int32_t>(t.size()));
    UErrorCode status = U_ZERO_ERROR;
    std::unique_ptr<icu::RegexMatcher> rm(m->compiled_->pattern->matcher(u16, status));
    if (U_FAILURE(status)) {
        error = "cannot run the primary pattern (" + std::string(u_errorName(status)) + ")";
        return;
    }
    rm->setTimeLimit(kRegexTimeLimit, status);
    std::int32_t at16 = 0;
    std::size_t at32 = 0;
    while (rm->find(status) && U_SUCCESS(status)) {
        const std::int32_t s16 = rm->start(status), e16 = rm->end(status);
        if (e16 == s16) continue;
        const std::size_t b = at32 + static_cast<std::size_t>(u16.countChar32(at16, s16 - at16));
        const std::size_t e = b + static_cast<std::size_t>(u16.countChar32(s16, e16 - s16));
        at16 = s16;
        at32 = b;
        if (e - b > kMaxPrimary) continue;
        std::string value;
        for (std::size_t p = b; p < e; ++p)
            if (!detail::is_separator(t[p])) detail::append_utf8(value, t[p]);
        if (!value.empty()) candidate(t, b, e, value);
    }
    if (U_FAILURE(status))
        error = status == U_REGEX_TIME_OUT ? "the primary pattern took too long on this document"
                                           : "the primary pattern failed (" + std::string(u_errorName(status)) + ")";
}

void Matcher::Session::State::process(std::string_view raw) {
    processed = true;
    if (!error.empty()) return;
    const auto text = fold(raw);
    switch (m->index_.kind) {
    case Kind::phone:
    case Kind::digits: runs(text); break;
    case Kind::email: emails(text); break;
    case Kind::regex: regex(text); break;
    case Kind::supporting: break;
    }
}

Matcher::Session::Session(const Matcher& m) {
    auto hasher = Hasher::create(m.key_);
    if (!hasher) throw std::runtime_error(hasher.error());
    state_ = std::unique_ptr<State>(new State{&m, std::move(*hasher), {}, 0, false, {}, {}, {}});
}
Matcher::Session::~Session() = default;
Matcher::Session::Session(Session&&) noexcept = default;
Matcher::Session& Matcher::Session::operator=(Session&&) noexcept = default;

// Segments of about kSegment bytes are folded one at a time; each is read with a margin
// of context on both sides (enough bytes for `near` code points and a primary value), so
// every hit is seen once with its whole neighbourhood. Persons are distinct record
// numbers, so a hit seen twice in overlapping segments still counts once.
void Matcher::Session::feed(std::string_view piece) {
    auto& s = *state_;
    const std::size_t margin = s.margin();
    while (!piece.empty()) {
        const std::size_t take = std::min(piece.size(), kSegment);
        s.pending.append(piece.substr(0, take));
        piece.remove_prefix(take);
        while (s.pending.size() >= s.context + kSegment + margin) {
            const std::size_t mid_end = char_start(s.pending, s.context + kSegment);
            const std::size_t end = char_start(s.pending, mid_end + margin);
            s.process(std::string_view(s.pending).substr(0, end));
            const std::size_t keep = char_start(s.pending, mid_end - std::min(mid_end, margin));
            s.pending.erase(0, keep);
            s.context = mid_end - keep;
        }
    }
}

tl::expected<std::uint64_t, std::string> Matcher::Session::finish() {
    auto& s = *state_;
    if (s.pending.size() > s.context || !s.processed) s.process(s.pending);
    s.pending.clear();
    s.context = 0;
    s.processed = false;
    const std::uint64_t n = s.persons.size();
    s.persons.clear();
    s.attempts.clear();
    if (!s.error.empty()) return tl::unexpected(std::exchange(s.error, {}));
    return n;
}

tl::expected<std::uint64_t, std::string> Matcher::count_persons(std::string_view text) const {
    Session session(*this);
    session.feed(text);
    return session.finish();
}

}  // namespace custguard::edm
