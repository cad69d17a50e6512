// Loading the committed record corpus (tests/audit/corpus) for the unit tests and the
// benchmark.
#pragma once

#include <cstdint>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "daemon/audit/record.hpp"

namespace cgaudit {

struct RawMessage {
    std::uint16_t type = 0;
    std::string text;
};

// `<type> <payload>` per line (multicast.txt).
inline std::vector<RawMessage> load_multicast(const std::string& path) {
    std::vector<RawMessage> out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        auto sp = line.find(' ');
        if (sp == std::string::npos) continue;
        out.push_back({static_cast<std::uint16_t>(std::stoul(line.substr(0, sp))), line.substr(sp + 1)});
    }
    return out;
}

inline std::vector<std::string> load_lines(const std::string& path) {
    std::vector<std::string> out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) out.push_back(line);
    return out;
}

}  // namespace cgaudit
