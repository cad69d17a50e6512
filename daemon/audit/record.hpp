// Linux audit records as the kernel writes them: one line of text per record, tagged with
// a stamp "audit(SEC.MSEC:SERIAL)" that all records of one event share. Pure code (no
// syscalls): used by the observer, the fuzz target and the benchmark.
//
// Two spellings are accepted:
//   netlink (multicast / unicast): message type in the netlink header, text
//       "audit(1795800107.673:44): arch=c000003e syscall=257 ..."
//   auditd log (log_format RAW; ENRICHED's trailing \x1d part is ignored):
//       "[node=N ]type=SYSCALL msg=audit(1795800107.673:44): arch=..."
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace custguard::audit {

// Record types used here (linux/audit.h); others pass through by number.
namespace type {
inline constexpr std::uint16_t login = 1006;
inline constexpr std::uint16_t syscall = 1300;
inline constexpr std::uint16_t path = 1302;
inline constexpr std::uint16_t config_change = 1305;
inline constexpr std::uint16_t sockaddr = 1306;
inline constexpr std::uint16_t cwd = 1307;
inline constexpr std::uint16_t execve = 1309;
inline constexpr std::uint16_t eoe = 1320;
inline constexpr std::uint16_t proctitle = 1327;
}  // namespace type

// "SYSCALL" for 1300, "UNKNOWN[1334]" style is parsed too; nullopt for an unknown name.
std::optional<std::uint16_t> type_from_name(std::string_view name);
std::string_view type_name(std::uint16_t type);  // "" when not in the table

struct Stamp {
    std::uint64_t sec = 0;
    std::uint32_t msec = 0;
    std::uint64_t serial = 0;
    bool operator==(const Stamp&) const = default;
    std::int64_t realtime_ns() const { return static_cast<std::int64_t>(sec * 1'000'000'000ull + msec * 1'000'000ull); }
};

// How a value was written: plain token, "double quoted", 'single quoted' (msg='...' of
// user-space records), or hex (untrusted strings with spaces, quotes or non-ASCII bytes).
enum class Encoding : std::uint8_t { plain, quoted, single_quoted };

struct FieldRef {
    std::uint32_t name_off = 0;
    std::uint16_t name_len = 0;
    std::uint32_t value_off = 0;
    std::uint32_t value_len = 0;
    Encoding encoding = Encoding::plain;
};

// One record. Owns its text; fields point into it.
class Record {
public:
    std::uint16_t type = 0;
    Stamp stamp;

    std::string_view text() const { return text_; }
    std::size_t field_count() const { return fields_.size(); }
    std::string_view field_name(std::size_t i) const;
    std::string_view raw_value(std::size_t i) const;  // as written, without quotes
    Encoding encoding(std::size_t i) const { return fields_[i].encoding; }

    // The first field called `name`, as written (quotes removed); nullopt when absent.
    std::optional<std::string_view> raw(std::string_view name) const;
    // An untrusted string field (name, comm, exe, cwd, key, proctitle, ...): quoted values
    // as they are, unquoted ones hex-decoded; "(null)"/"(none)" and malformed hex give
    // nullopt.
    std::optional<std::string> string(std::string_view name) const;
    // Numeric fields: decimal, or hex for `hex` (a0..a3, arch).
    std::optional<std::uint64_t> number(std::string_view name, bool hex = false) const;
    std::optional<std::int64_t> signed_number(std::string_view name) const;

    friend std::optional<Record> parse_record(std::uint16_t type, std::string_view text);
    friend std::optional<Record> parse_log_line(std::string_view line);

private:
    std::string text_;
    std::vector<FieldRef> fields_;
};

// Netlink form. nullopt when the stamp is missing or malformed. Fields that do not parse
// end the field list (the record is kept: a truncated record still carries its stamp).
std::optional<Record> parse_record(std::uint16_t type, std::string_view text);
// auditd log form (one line, without the newline).
std::optional<Record> parse_log_line(std::string_view line);

// Hex text ("2F746D70") to bytes; nullopt on odd length or a non-hex character.
std::optional<std::string> decode_hex(std::string_view hex);
// "fe:01" (major:minor in hex, as PATH records write dev=) to the kernel's dev_t encoding
// (major << 20 | minor), the one cg_event.dev uses.
std::optional<std::uint64_t> parse_dev(std::string_view text);

}  // namespace custguard::audit
