// EDM benchmark. Prints a table; not a test.
//
//   edm_bench [--rows 10000] [--runs 5]
//
// 1. Builds the index of a synthetic CRM (tests/edm/crm.hpp) in memory: rows/s, bytes.
// 2. Matches a document holding 1,001 of its customers (median of the runs), and 8 MiB of
//    text with the same customers spread through it (MB/s).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "crm.hpp"
#include "custguard/edm/build.hpp"
#include "custguard/edm/edm.hpp"

namespace edm = custguard::edm;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t rows = 10'000;
    int runs = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--rows")) rows = std::strtoul(argv[i + 1], nullptr, 10);
        else if (!std::strcmp(argv[i], "--runs")) runs = std::atoi(argv[i + 1]);
    }
    edm::Key key{};
    for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(i);
    const auto crm = edm::testing::make_crm(rows);
    const auto csv = edm::testing::make_csv(crm);
    const auto schema = edm::parse_schema(edm::testing::schema_toml, "crm.toml");
    if (!schema) return std::fprintf(stderr, "%s\n", schema.error().c_str()), 1;

    auto t0 = std::chrono::steady_clock::now();
    const auto built = edm::build_index(*schema, key, csv);
    const double build_s = seconds_since(t0);
    if (!built) return std::fprintf(stderr, "%s\n", built.error().c_str()), 1;
    const auto bytes = edm::serialize_index(built->index, key).size();
    const auto matcher = edm::Matcher::from_index(built->index, key);
    if (!matcher) return std::fprintf(stderr, "%s\n", matcher.error().c_str()), 1;

    std::vector<std::size_t> picks;
    for (std::size_t i = 0; i < rows && picks.size() < 1001; i += std::max<std::size_t>(1, rows / 1111)) picks.push_back(i);
    const auto doc = edm::testing::make_document(crm, picks);
    std::string big;
    for (std::size_t k = 0; big.size() < (8u << 20); ++k) big += edm::testing::filler(k);
    big += doc;

    auto median = [&](const std::string& text, std::uint64_t& persons) {
        std::vector<double> times;
        for (int r = 0; r < runs; ++r) {
            auto t = std::chrono::steady_clock::now();
            persons = matcher.value()->count_persons(text).value();
            times.push_back(seconds_since(t));
        }
        std::sort(times.begin(), times.end());
        return times[times.size() / 2];
    };
    std::uint64_t p_doc = 0, p_big = 0;
    const double doc_s = median(doc, p_doc), big_s = median(big, p_big);

    std::printf("EDM (primary phone, supporting name+address, near 200), %d runs, median\n", runs);
    std::printf("%-44s %14s\n", "measure", "value");
    std::printf("%-44s %11.0f r/s  (%zu rows in %.2f s)\n", "build: CSV -> index", rows / build_s, rows, build_s);
    std::printf("%-44s %14zu B  (%.1f B/customer)\n", "index size", bytes, double(bytes) / double(rows));
    std::printf("%-44s %11.1f ms  (%zu KiB, persons %llu)\n", "match: document with 1,001 customers", doc_s * 1000,
                doc.size() >> 10, static_cast<unsigned long long>(p_doc));
    std::printf("%-44s %11.1f MB/s (%zu MiB, persons %llu)\n", "match: 8 MiB of text + those customers",
                double(big.size()) / 1e6 / big_s, big.size() >> 20, static_cast<unsigned long long>(p_big));
    return p_doc == picks.size() && p_big == picks.size() ? 0 : 1;
}
