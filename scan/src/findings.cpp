#include "custguard/scan/findings.hpp"

#include <algorithm>

namespace custguard::scan {

namespace {
constexpr std::array<Detector, detector_count> kAll = {
    Detector::credit_card, Detector::my_number,  Detector::email,
    Detector::jp_phone,    Detector::jp_address, Detector::keywords, Detector::sensitive,
};
constexpr std::array<std::string_view, detector_count> kNames = {
    "credit_card", "my_number", "email", "jp_phone", "jp_address", "keywords", "sensitive",
};
}  // namespace

std::string_view to_string(Detector d) { return kNames[static_cast<std::size_t>(d)]; }

std::optional<Detector> parse_detector(std::string_view name) {
    for (std::size_t i = 0; i < kNames.size(); ++i) {
        if (kNames[i] == name) return kAll[i];
    }
    return std::nullopt;
}

std::span<const Detector> all_detectors() { return kAll; }

std::string known_detector_names() {
    std::string out;
    for (auto name : kNames) {
        if (!out.empty()) out += ", ";
        out += name;
    }
    return out;
}

std::string_view edm_name(std::string_view detector) {
    return detector.starts_with(edm_prefix) ? detector.substr(edm_prefix.size()) : std::string_view();
}

std::uint64_t Findings::total() const {
    std::uint64_t sum = persons;
    for (auto c : counts) sum += c;
    return sum;
}

Findings& Findings::operator+=(const Findings& other) {
    for (std::size_t i = 0; i < counts.size(); ++i) counts[i] += other.counts[i];
    persons += other.persons;
    for (const auto& e : other.edm) {
        auto it = std::find_if(edm.begin(), edm.end(), [&](const EdmCount& m) { return m.name == e.name; });
        if (it == edm.end()) edm.push_back(e);
        else it->persons += e.persons;
    }
    return *this;
}

bool is_customer_data(const Findings& findings, std::uint64_t threshold) {
    return findings.total() >= (threshold == 0 ? 1 : threshold);
}

std::string format_findings(const Findings& findings, std::span<const Detector> detectors) {
    if (detectors.empty()) detectors = kAll;
    std::string out;
    for (auto d : detectors) {
        if (!out.empty()) out += ' ';
        out += to_string(d);
        out += '=';
        out += std::to_string(findings.count(d));
    }
    for (const auto& e : findings.edm) {
        if (!out.empty()) out += ' ';
        out += edm_prefix;
        out += e.name;
        out += '=';
        out += std::to_string(e.persons);
    }
    return out;
}

}  // namespace custguard::scan
