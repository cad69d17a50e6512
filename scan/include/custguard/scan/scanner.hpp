// The content scanner: Hyperscan finds candidates in one pass over normalised text, C++
// validates them (check digits, brand prefixes, formats, context) and counts per detector.
//
//   auto scanner = scan::Scanner::create(scan::ScannerConfig{});   // compile once
//   auto f = scanner->scan(extracted.text);                        // per document
//   bool customer = f && scan::is_customer_data(*f, policy.print.threshold);
//
// A Scanner is not thread-safe (it owns Hyperscan scratch space and a buffer); copies are
// cheap and share the compiled database, so give each thread its own copy.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "custguard/scan/findings.hpp"

struct hs_scratch;

namespace custguard::edm {
class Matcher;
}

namespace custguard::scan {

// Keywords used when the policy names none.
std::vector<std::string> default_keywords();

// What the sensitive detector counts (要配慮個人情報 of the APPI: medical history,
// disability, criminal record, creed, race, social status, pregnancy ...), one hit per
// occurrence, case-insensitively after normalisation; overlapping terms count once.
std::vector<std::string> sensitive_terms();

// An exact customer matching detector "edm:NAME" and the index it matches with.
struct EdmDetector {
    std::string name;
    std::shared_ptr<const edm::Matcher> matcher;  // set by the caller before Scanner::create
};

struct ScannerConfig {
    std::vector<Detector> detectors{all_detectors().begin(), all_detectors().end()};
    std::vector<std::string> keywords = default_keywords();
    // The keywords detector counts one hit for every keyword occurrence that has an
    // occurrence of a different keyword ending at most this many characters (code
    // points) before it: "氏名：山田　住所：…" is 1, "氏名 住所 生年月日" is 2, a lone or
    // repeated keyword is 0. Keywords match case-insensitively, after normalisation.
    std::uint32_t keyword_proximity = 40;

    // "edm:NAME" detectors, in the order named. Scanner::create fails when one has no
    // matcher: the caller loads each [edm.NAME] index (edm::Matcher::open) and sets it.
    std::vector<EdmDetector> edm;

    // From the policy's [print] values:
    //   ScannerConfig::from_names(print.detectors, print.keywords, print.keyword_proximity)
    // An empty detector list means all pattern detectors (and no EDM detector); an empty
    // keyword list means default_keywords(). "edm:NAME" names go to `edm` without a
    // matcher. Fails on unknown detector names and on blank keywords, naming them.
    static tl::expected<ScannerConfig, std::string> from_names(
        std::span<const std::string> detectors, std::span<const std::string> keywords,
        std::uint32_t keyword_proximity);

    bool enabled(Detector d) const;
    // Sets the matcher of "edm:NAME"; false when the configuration does not name it.
    bool set_matcher(std::string_view name, std::shared_ptr<const edm::Matcher> matcher);
};

// Whether this CPU can run the scanner (Hyperscan needs SSSE3); the error says why not.
tl::expected<void, std::string> platform_supported();

class Scanner {
public:
    static tl::expected<Scanner, std::string> create(ScannerConfig config);
    // The same, with the compiled patterns of serialized_patterns() from a Scanner of the
    // same detectors and keywords: the sandboxed reader starts for every document, and
    // compiling every detector costs it ~30 ms. Patterns of another configuration (their
    // fingerprint differs) or of another Hyperscan are compiled afresh instead.
    static tl::expected<Scanner, std::string> create(ScannerConfig config, std::string_view serialized);
    // The compiled patterns, serialised with their fingerprint; empty: no patterns.
    tl::expected<std::string, std::string> serialized_patterns() const;

    Scanner(const Scanner& other);
    Scanner& operator=(const Scanner& other);
    Scanner(Scanner&&) noexcept;
    Scanner& operator=(Scanner&&) noexcept;
    ~Scanner();

    // Counts detector hits in UTF-8 `text` (invalid bytes are tolerated). Fails only when
    // Hyperscan does (e.g. the same Scanner used from two threads at once): callers must
    // then fail closed rather than treat the document as clean.
    tl::expected<Findings, std::string> scan(std::string_view text);

    // The same, incrementally, for documents read or converted in pieces: begin(), then
    // feed() pieces of any size (they may split lines and characters), then finish().
    // The findings equal scan() of the concatenation. begin() discards an unfinished
    // document.
    void begin();
    void feed(std::string_view piece);
    tl::expected<Findings, std::string> finish();

    const ScannerConfig& config() const { return config_; }

    struct Database;  // compiled patterns, shared by copies
    struct Session;   // state of the document being scanned

private:
    struct ScratchDeleter {
        void operator()(hs_scratch* s) const;
    };
    Scanner(ScannerConfig config, std::shared_ptr<const Database> db,
            std::unique_ptr<hs_scratch, ScratchDeleter> scratch);

    ScannerConfig config_;
    std::shared_ptr<const Database> db_;
    std::unique_ptr<hs_scratch, ScratchDeleter> scratch_;
    std::string buffer_;  // normalised chunk, reused across scans
    std::unique_ptr<Session> session_;

    void process_chunk(std::string_view raw);
};

}  // namespace custguard::scan
