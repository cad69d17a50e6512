// Exact customer matching (EDM): a CRM export becomes an index of keyed hashes, and a
// document then counts the distinct real customers it holds.
//
//   auto schema = edm::load_schema("crm.schema.toml");          // columns, primary, supporting
//   auto key = edm::load_or_create_key("/var/lib/custguard/edm/key");
//   auto built = edm::build_index(*schema, *key, csv_text);      // edm/include/.../build.hpp
//   edm::write_index("/var/lib/custguard/edm/crm.edm", built->index, *key);
//   auto matcher = edm::Matcher::open("/var/lib/custguard/edm/crm.edm", key_path);
//   auto persons = (*matcher)->count_persons(document_text);
//
// Every value is normalised by normalize_value() at build time and at match time alike, then
// hashed with HMAC-SHA-256 under a 32-byte key kept in its own root-only file, truncated to
// 16 bytes. The index holds no clear text: a primary hash points at records, and a record
// holds its supporting fields' hashes and their lengths in code points, so that matching
// slides one window of each length over the text near a primary hit.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

namespace custguard::edm {

// How a primary value is found in text. supporting: the form of name/address fields.
enum class Kind : std::uint8_t { phone = 1, email = 2, digits = 3, regex = 4, supporting = 5 };

std::string_view to_string(Kind);

// NFKC with case folding (ICU nfkc_cf: full-width -> half-width, ㈱ -> (株), A -> a,
// invisible characters dropped), as UTF-32. Invalid UTF-8 becomes U+FFFD.
std::u32string fold(std::string_view utf8);

// The normalised form of a field value, or an error saying why the value cannot be one:
//   phone:   the digits of a Japanese number, 10 or 11 starting with 0 (+81 -> 0); every
//            separator dropped (spaces incl. U+3000, hyphens ー－‐-, dots, parentheses, /)
//   email:   folded, blanks dropped; local@domain.tld
//   digits:  the digits, exactly `length` of them; separators dropped
//   regex:   folded, separators dropped (the pattern is checked by the caller)
//   supporting: folded, all white space dropped, hyphen variants as '-' (ー only after a
//            digit: elsewhere it is a long vowel, as in ヨーコ). Empty stays empty.
tl::expected<std::string, std::string> normalize_value(std::string_view value, Kind kind, std::uint32_t length = 0);

// The supporting form of already folded text (see normalize_value), code point by code point.
std::u32string compact(std::u32string_view folded);

struct Primary {
    std::string column;
    Kind kind = Kind::phone;
    std::uint32_t length = 0;  // digits
    std::string pattern;       // regex (ICU syntax, over the folded text)
};

struct Schema {
    std::vector<std::string> columns;  // of the CSV, in order
    bool header = true;                // the first row names the columns and is skipped
    std::string encoding = "utf-8";    // utf-8 | cp932
    Primary primary;
    std::vector<std::string> supporting;  // column names
    std::uint32_t min_supporting = 1;
    std::uint32_t near = 200;  // code points of text either side of the primary value

    std::size_t column_index(std::string_view name) const;  // columns.size() when absent
};

inline constexpr std::size_t max_supporting = 16;
inline constexpr std::size_t max_pattern_bytes = 1024;
inline constexpr std::uint32_t max_near = 10'000;

// The schema file (TOML). Errors are "file:line:col: message".
tl::expected<Schema, std::string> parse_schema(std::string_view text, const std::string& file);
tl::expected<Schema, std::string> load_schema(const std::string& path);

inline constexpr std::size_t key_bytes = 32;
using Key = std::array<std::uint8_t, key_bytes>;

// Reads a key file: exactly 32 bytes, a regular file not readable by group or others.
tl::expected<Key, std::string> load_key(const std::string& path);
// Reads it, or creates it (0600, 32 bytes from getrandom, parent directory 0700 when
// missing) when it does not exist. `created` says which.
tl::expected<Key, std::string> load_or_create_key(const std::string& path, bool* created = nullptr);

inline constexpr std::size_t hash_bytes = 16;
using Hash = std::array<std::uint8_t, hash_bytes>;

struct Entry {
    Hash hash;
    std::uint32_t record;
    friend auto operator<=>(const Entry&, const Entry&) = default;
};

struct Field {
    Hash hash{};
    std::uint32_t length = 0;  // code points of the normalised value; 0: empty
};

// The index in memory. Records are numbered from 0; a record has `fields` Fields.
struct Index {
    Kind kind = Kind::phone;
    std::uint32_t length = 0;
    std::string pattern;
    std::uint32_t near = 200;
    std::uint32_t min_supporting = 1;
    std::uint32_t fields = 0;
    std::uint64_t records = 0;
    std::vector<Entry> entries;  // sorted
    std::vector<Field> supporting;  // records * fields
};

inline constexpr std::uint32_t index_version = 1;
inline constexpr std::uint64_t max_index_bytes = std::uint64_t{1} << 30;

// HMAC-SHA-256 under the key, truncated; domain 'p' for primary values, 's' for supporting.
class Hasher {
public:
    static tl::expected<Hasher, std::string> create(const Key& key);
    Hasher(Hasher&&) noexcept;
    Hasher& operator=(Hasher&&) noexcept;
    ~Hasher();
    Hash hash(char domain, std::string_view value);
    std::array<std::uint8_t, 32> mac(std::string_view bytes);

private:
    struct State;
    explicit Hasher(std::unique_ptr<State> s);
    std::unique_ptr<State> state_;
};

// The index file (versioned, little-endian, ends with an HMAC of everything before it).
std::string serialize_index(const Index& index, const Key& key);
// Bounded reader: every length and count is checked against the file's size; a
// truncated, oversized or altered file, or one built with another key, is refused.
tl::expected<Index, std::string> parse_index(std::string_view bytes, const Key& key);
// Written 0600 to a temporary file in the same directory, fsynced, renamed over `path`.
tl::expected<void, std::string> write_index(const std::string& path, const Index& index, const Key& key);

// The key file next to an index when the policy names none: <index's directory>/key.
std::string default_key_path(const std::string& index_path);

// Counts the distinct records of an index whose primary value occurs in a text with at
// least min_supporting of their supporting values within `near` code points of it.
// Thread-safe (a Session per scan holds the per-document state).
class Matcher {
public:
    // In the privileged caller: reads the index and key files and keeps both in a sealed
    // memfd (sealed_fd()) that the sandboxed reader inherits.
    static tl::expected<std::shared_ptr<const Matcher>, std::string> open(const std::string& index_path,
                                                                          const std::string& key_path);
    // In the sandboxed reader: key (32 bytes) then index, from an inherited descriptor.
    static tl::expected<std::shared_ptr<const Matcher>, std::string> from_fd(int fd);
    // From memory (tests and `custguardctl edm` checks); sealed_fd() is then -1.
    static tl::expected<std::shared_ptr<const Matcher>, std::string> from_index(Index index, const Key& key);

    ~Matcher();
    Matcher(const Matcher&) = delete;
    Matcher& operator=(const Matcher&) = delete;

    int sealed_fd() const { return fd_; }
    const Index& index() const { return index_; }

    // Per document: feed() pieces of any size, then finish() the number of persons.
    class Session {
    public:
        explicit Session(const Matcher& m);
        ~Session();
        Session(Session&&) noexcept;
        Session& operator=(Session&&) noexcept;
        void feed(std::string_view piece);
        tl::expected<std::uint64_t, std::string> finish();

    private:
        struct State;
        std::unique_ptr<State> state_;
    };

    tl::expected<std::uint64_t, std::string> count_persons(std::string_view text) const;

    struct Compiled;  // the regex of a regex primary

private:
    Matcher(Index index, const Key& key, int fd, std::unique_ptr<Compiled> compiled);
    Index index_;
    Key key_;
    int fd_ = -1;
    std::unique_ptr<Compiled> compiled_;
    friend class Session;
};

}  // namespace custguard::edm
