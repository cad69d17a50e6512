#include <iconv.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <unordered_map>

#include <unicode/regex.h>
#include <unicode/unistr.h>

#include "custguard/edm/build.hpp"
#include "internal.hpp"

namespace custguard::edm {

namespace {

bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (n == 0 || i + n > s.size()) return false;
        for (std::size_t k = 1; k < n; ++k)
            if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
        i += n;
    }
    return true;
}

// One CSV row at a time, fields bounded.
class CsvReader {
public:
    explicit CsvReader(std::string_view text) : t_(text) {}

    enum class Status { row, end, open_quote };
    // `too_long` is set when a field exceeded max_field_bytes or the row max_row_fields
    // (the row is still consumed whole).
    Status next(std::vector<std::string>& fields, std::uint64_t& line, bool& too_long) {
        fields.clear();
        too_long = false;
        if (pos_ >= t_.size()) return Status::end;
        line = line_;
        std::string field;
        bool quoted = false, in_quotes = false;
        auto push = [&] {
            if (fields.size() < max_row_fields) fields.push_back(std::move(field));
            else too_long = true;
            field.clear();
            quoted = false;
        };
        auto add = [&](char c) {
            if (field.size() < max_field_bytes) field += c;
            else too_long = true;
        };
        while (pos_ < t_.size()) {
            const char c = t_[pos_++];
            if (c == '\n') ++line_;
            if (in_quotes) {
                if (c == '"') {
                    if (pos_ < t_.size() && t_[pos_] == '"') {
                        add('"');
                        ++pos_;
                    } else {
                        in_quotes = false;
                    }
                } else {
                    add(c);
                }
                continue;
            }
            if (c == '"' && field.empty() && !quoted) {
                in_quotes = quoted = true;
            } else if (c == ',') {
                push();
            } else if (c == '\n' || c == '\r') {
                if (c == '\r' && pos_ < t_.size() && t_[pos_] == '\n') {
                    ++pos_;
                    ++line_;
                }
                push();
                return Status::row;
            } else {
                add(c);
            }
        }
        if (in_quotes) return Status::open_quote;
        push();
        return Status::row;
    }

private:
    std::string_view t_;
    std::size_t pos_ = 0;
    std::uint64_t line_ = 1;
};

std::uint32_t code_points(std::string_view s) {
    return static_cast<std::uint32_t>(std::count_if(s.begin(), s.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    }));
}

}  // namespace

tl::expected<std::string, std::string> cp932_to_utf8(std::string_view bytes) {
    iconv_t cd = ::iconv_open("UTF-8", "CP932");
    if (cd == reinterpret_cast<iconv_t>(-1)) return tl::unexpected(std::string("iconv cannot convert CP932 on this system"));
    std::string out(bytes.size() * 3 / 2 + 16, '\0');
    char* in = const_cast<char*>(bytes.data());
    std::size_t in_left = bytes.size(), done = 0;
    std::string error;
    while (in_left > 0) {
        char* o = out.data() + done;
        std::size_t o_left = out.size() - done;
        const std::size_t rc = ::iconv(cd, &in, &in_left, &o, &o_left);
        done = out.size() - o_left;
        if (rc != static_cast<std::size_t>(-1)) break;
        if (errno == E2BIG) {
            out.resize(out.size() * 2);
            continue;
        }
        error = "the file is not valid CP932 at byte " + std::to_string(bytes.size() - in_left) +
                ": convert it, or pass --encoding utf-8";
        break;
    }
    ::iconv_close(cd);
    if (!error.empty()) return tl::unexpected(error);
    out.resize(done);
    return out;
}

tl::expected<BuildResult, std::string> build_index(const Schema& schema, const Key& key, std::string_view csv) {
    using tl::unexpected;
    if (csv.starts_with("\xEF\xBB\xBF")) csv.remove_prefix(3);
    auto hasher = Hasher::create(key);
    if (!hasher) return unexpected(hasher.error());
    std::unique_ptr<icu::RegexPattern> pattern;
    if (schema.primary.kind == Kind::regex) {
        UParseError pe{};
        UErrorCode status = U_ZERO_ERROR;
        pattern.reset(icu::RegexPattern::compile(icu::UnicodeString::fromUTF8(schema.primary.pattern), 0, pe, status));
        if (U_FAILURE(status))
            return unexpected("the primary pattern does not compile (" + std::string(u_errorName(status)) + " at offset " +
                              std::to_string(pe.offset) + ")");
    }
    BuildResult result;
    Index& ix = result.index;
    ix.kind = schema.primary.kind;
    ix.length = schema.primary.length;
    ix.pattern = schema.primary.pattern;
    ix.near = schema.near;
    ix.min_supporting = schema.min_supporting;
    ix.fields = static_cast<std::uint32_t>(schema.supporting.size());
    const std::size_t primary = schema.column_index(schema.primary.column);
    std::vector<std::size_t> supporting;
    for (const auto& c : schema.supporting) supporting.push_back(schema.column_index(c));

    auto skip = [&](std::uint64_t line, std::string reason) {
        ++result.skipped;
        if (result.skipped_rows.size() < max_reported_rows) result.skipped_rows.push_back({line, std::move(reason)});
    };
    std::unordered_map<std::string, std::uint64_t> seen;  // hashes of a row -> its line
    CsvReader reader(csv);
    std::vector<std::string> fields;
    std::uint64_t line = 0;
    bool too_long = false, header = schema.header;
    for (;;) {
        const auto status = reader.next(fields, line, too_long);
        if (status == CsvReader::Status::end) break;
        if (status == CsvReader::Status::open_quote)
            return unexpected("line " + std::to_string(line) + ": a quoted field is not closed before the end of the file");
        if (fields.size() == 1 && fields[0].empty()) continue;  // blank line
        if (header) {
            header = false;
            continue;
        }
        ++result.rows;
        if (too_long) {
            skip(line, "a field is longer than " + std::to_string(max_field_bytes) + " bytes or the row has more than " +
                           std::to_string(max_row_fields) + " fields");
            continue;
        }
        if (fields.size() != schema.columns.size()) {
            skip(line, std::to_string(fields.size()) + " fields, the schema names " + std::to_string(schema.columns.size()));
            continue;
        }
        if (!std::all_of(fields.begin(), fields.end(), [](const std::string& f) { return valid_utf8(f); })) {
            skip(line, "not UTF-8 (pass --encoding cp932 for a Shift_JIS export)");
            continue;
        }
        auto value = normalize_value(fields[primary], schema.primary.kind, schema.primary.length);
        if (value && pattern) {
            UErrorCode status = U_ZERO_ERROR;
            const auto folded = fold(fields[primary]);
            const auto u16 = icu::UnicodeString::fromUTF32(reinterpret_cast<const UChar32*>(folded.data()),
                                                           static_cast<std::int32_t>(folded.size()));
            std::unique_ptr<icu::RegexMatcher> m(pattern->matcher(u16, status));
            if (U_FAILURE(status) || !m->matches(status) || U_FAILURE(status))
                value = unexpected(std::string("does not match the primary pattern"));
        }
        if (!value) {
            skip(line, schema.primary.column + ": " + (fields[primary].empty() ? std::string("empty") : value.error()));
            continue;
        }
        const Hash h = hasher->hash('p', *value);
        std::string identity(reinterpret_cast<const char*>(h.data()), h.size());
        std::vector<Field> row;
        std::uint32_t present = 0;
        for (std::size_t k : supporting) {
            const auto norm = normalize_value(fields[k], Kind::supporting);
            Field f;
            if (norm && !norm->empty()) {
                f.hash = hasher->hash('s', *norm);
                f.length = code_points(*norm);
                ++present;
            }
            identity.append(reinterpret_cast<const char*>(f.hash.data()), f.hash.size());
            row.push_back(f);
        }
        if (present < schema.min_supporting) {
            skip(line, std::to_string(present) + " of the supporting fields are filled in, min_supporting is " +
                           std::to_string(schema.min_supporting));
            continue;
        }
        if (const auto [it, fresh] = seen.emplace(std::move(identity), line); !fresh) {
            skip(line, "the same customer as line " + std::to_string(it->second));
            continue;
        }
        if (ix.records >= 0xFFFFFFFFu) return unexpected(std::string("more than 4294967295 customers"));
        ix.entries.push_back({h, static_cast<std::uint32_t>(ix.records)});
        ix.supporting.insert(ix.supporting.end(), row.begin(), row.end());
        ++ix.records;
    }
    std::sort(ix.entries.begin(), ix.entries.end());
    result.indexed = ix.records;
    return result;
}

}  // namespace custguard::edm
