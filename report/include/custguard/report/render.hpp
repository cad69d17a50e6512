// The reports as text, JSON, CSV or a self-contained HTML page, from the model of
// scope.hpp. Output depends only on the model and the tool version: no clock, no host.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

#include "custguard/report/scope.hpp"

namespace custguard::report {

enum class Kind { leak_scope, access };
enum class Format { text, json, csv, html };

std::optional<Format> parse_format(std::string_view name);

// Where a file's categories and persons come from, in words: "scan recorded with the
// event", "scan of today's file: ...", "not available: ...".
std::string basis_text(const File& f);
// How the evidence's SHA-256 is computed and checked.
const char* evidence_hash_text();

std::string render_text(const Scope& s, Kind kind, std::string_view version);
std::string render_json(const Scope& s, Kind kind, std::string_view version);
std::string render_csv(const Scope& s, Kind kind);
std::string render_html(const Scope& s, Kind kind, std::string_view version);

std::string render(const Scope& s, Kind kind, Format format, std::string_view version);
// The same, written to `out`; JSON in pieces as it is made (a report of 20,000 files is
// never held whole).
void render(const Scope& s, Kind kind, Format format, std::string_view version, std::ostream& out);
void write_json(const Scope& s, Kind kind, std::string_view version, std::ostream& out);

}  // namespace custguard::report
