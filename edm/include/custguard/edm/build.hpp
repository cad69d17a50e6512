// Building an index from a CRM export (`custguardctl edm build`).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "custguard/edm/edm.hpp"

namespace custguard::edm {

inline constexpr std::size_t max_field_bytes = 4096;
inline constexpr std::size_t max_row_fields = 256;
inline constexpr std::uint64_t max_csv_bytes = std::uint64_t{4} << 30;
inline constexpr std::size_t max_reported_rows = 20;

struct SkippedRow {
    std::uint64_t line;  // of the row's first character
    std::string reason;  // never the row's values
};

struct BuildResult {
    Index index;
    std::uint64_t rows = 0;     // data rows read (without the header)
    std::uint64_t indexed = 0;  // records in the index
    std::uint64_t skipped = 0;
    std::vector<SkippedRow> skipped_rows;  // the first max_reported_rows
};

// CP932 (Shift_JIS with Microsoft's extensions) to UTF-8 via iconv; errors name the byte
// offset. A UTF-8 byte order mark is dropped by build_index.
tl::expected<std::string, std::string> cp932_to_utf8(std::string_view bytes);

// Parses the CSV (RFC 4180: quoted fields with "" and line breaks inside quotes; CRLF or
// LF) in UTF-8 and builds the index. Rows with the wrong number of fields, a field over
// max_field_bytes, invalid UTF-8, an invalid primary value, fewer than min_supporting
// non-empty supporting values or an exact duplicate of an earlier row are skipped and
// reported by line. A quote left open at the end of the file is an error.
tl::expected<BuildResult, std::string> build_index(const Schema& schema, const Key& key, std::string_view csv);

}  // namespace custguard::edm
