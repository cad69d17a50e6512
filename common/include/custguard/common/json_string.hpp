// JSON string literals for every JSON custguard writes (JSONL export, webhook bodies, D-Bus
// JSON replies, `custguardctl --json`). Paths and command lines are bytes, not UTF-8: an
// invalid sequence becomes U+FFFD so the output always parses.
#pragma once

#include <string>
#include <string_view>

namespace custguard::common {

// Appends `bytes` as a quoted JSON string.
void append_json_string(std::string& out, std::string_view bytes);

// `bytes` as a quoted JSON string.
std::string json_string(std::string_view bytes);

}  // namespace custguard::common
