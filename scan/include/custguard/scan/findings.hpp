// Detector names and per-document findings. Findings hold counts only: the matched
// customer data itself is never stored, so it can never reach a log or a D-Bus reply.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace custguard::scan {

enum class Detector : std::uint8_t { credit_card, my_number, email, jp_phone, jp_address, keywords, sensitive };
inline constexpr std::size_t detector_count = 7;

// The policy spelling: "credit_card", "my_number", "email", "jp_phone", "jp_address",
// "keywords", "sensitive". Exact customer matching detectors are spelled "edm:NAME" and
// are no Detector: their names come from the policy's [edm.NAME] tables.
std::string_view to_string(Detector);
std::optional<Detector> parse_detector(std::string_view name);
std::span<const Detector> all_detectors();
// "credit_card, my_number, ..." for error messages.
std::string known_detector_names();

inline constexpr std::string_view edm_prefix = "edm:";
// "crm" for "edm:crm"; empty for every other name (and for "edm:").
std::string_view edm_name(std::string_view detector);

// Persons one EDM detector found: distinct CRM records whose primary value occurs in the
// document with enough of their supporting values near it.
struct EdmCount {
    std::string name;  // NAME of "edm:NAME"
    std::uint64_t persons = 0;
    friend bool operator==(const EdmCount&, const EdmCount&) = default;
};

struct Findings {
    std::array<std::uint64_t, detector_count> counts{};
    // Sum of edm[].persons: distinct real customers (a customer known to two CRMs counts
    // in each).
    std::uint64_t persons = 0;
    std::vector<EdmCount> edm;  // in the order of ScannerConfig::edm

    std::uint64_t count(Detector d) const { return counts[static_cast<std::size_t>(d)]; }
    std::uint64_t& count(Detector d) { return counts[static_cast<std::size_t>(d)]; }
    // Pattern hits plus persons.
    std::uint64_t total() const;
    Findings& operator+=(const Findings& other);
    friend bool operator==(const Findings&, const Findings&) = default;
};

// A document is customer data when the detector hits and the persons (each distinct
// customer counts as one hit) add up to the policy's threshold. A threshold of 0 is
// treated as 1: a document without any hit is never customer data.
bool is_customer_data(const Findings& findings, std::uint64_t threshold);

// "credit_card=2 my_number=1 edm:crm=1001" over the given detectors (all when empty) and
// every EDM detector, for the journal's CUSTGUARD_DETECTORS field and the backend's job
// message. Names and counts only.
std::string format_findings(const Findings& findings, std::span<const Detector> detectors = {});

}  // namespace custguard::scan
