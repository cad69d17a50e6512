// Diagnostics in the form compilers use: file:line:col: severity: message, plus a hint.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace custguard::policy {

struct SourcePos {
    std::string file;
    std::uint32_t line = 0;    // 1-based; 0 when unknown
    std::uint32_t column = 0;  // 1-based; 0 when unknown
};

enum class Severity : std::uint8_t { error, warning };

struct Diagnostic {
    Severity severity = Severity::error;
    SourcePos pos;
    std::string message;  // what is wrong
    std::string hint;     // what to do about it

    // "file:line:col: error: message\n  hint: ..." (no trailing newline)
    std::string format() const;
};

using Diagnostics = std::vector<Diagnostic>;

bool has_errors(const Diagnostics&);

}  // namespace custguard::policy
