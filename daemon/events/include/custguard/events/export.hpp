// Readable and machine-readable renderings of a Record besides journald: JSON lines with
// an Elastic Common Schema style mapping (--export jsonl:PATH) and the one-line text that
// `custguardd --foreground` prints through spdlog. The mapping is documented in
// custguard.journal(7).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include "custguard/events/journal.hpp"
#include "custguard/events/record.hpp"

namespace spdlog {
class logger;
}

namespace custguard::events {

// One row of the journald -> ECS mapping; `number`: exported as a JSON number.
struct EcsMapping {
    std::string_view journald;
    std::string_view ecs;
    bool number;
};

// The whole mapping, in the order of custguard.journal(7)'s table (a unit test keeps the
// two equal).
std::span<const EcsMapping> ecs_mappings();

// The ECS name of a journald field (CUSTGUARD_PATH -> file.path); unknown CUSTGUARD_X
// fields map to custguard.x.
std::string ecs_name(std::string_view journald_field);

// One JSON object, no trailing newline. Numeric fields are JSON numbers; bytes that are
// not UTF-8 become U+FFFD.
std::string to_json_line(const Record& record);

// Appends JSON lines to a file (O_APPEND, one write per line).
class JsonlWriter {
public:
    static tl::expected<JsonlWriter, std::string> open(std::filesystem::path path);
    tl::expected<void, std::string> write(const Record& record);
    // For log rotation: reopen the path.
    tl::expected<void, std::string> reopen();
    const std::filesystem::path& path() const { return path_; }

private:
    JsonlWriter(UniqueFd fd, std::filesystem::path path) : fd_(std::move(fd)), path_(std::move(path)) {}
    UniqueFd fd_;
    std::filesystem::path path_;
};

// "DENIED  customers  /srv/share/customers/a.csv  bob(1001) auid=alice exe=/usr/bin/cat
// pid=42 seq=7" — for people watching the foreground daemon.
std::string format_line(const Record& record);
// Logs format_line() at the level matching the record's priority.
void log_record(spdlog::logger& logger, const Record& record);

}  // namespace custguard::events
