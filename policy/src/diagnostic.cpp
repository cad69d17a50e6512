#include "custguard/policy/diagnostic.hpp"

#include <algorithm>

namespace custguard::policy {

std::string Diagnostic::format() const {
    std::string out = pos.file.empty() ? std::string("<input>") : pos.file;
    if (pos.line != 0) {
        out += ':' + std::to_string(pos.line);
        if (pos.column != 0) out += ':' + std::to_string(pos.column);
    }
    out += severity == Severity::error ? ": error: " : ": warning: ";
    out += message;
    if (!hint.empty()) out += "\n  hint: " + hint;
    return out;
}

bool has_errors(const Diagnostics& diagnostics) {
    return std::any_of(diagnostics.begin(), diagnostics.end(),
                       [](const Diagnostic& d) { return d.severity == Severity::error; });
}

}  // namespace custguard::policy
