// bench/common/stats.hpp: what every benchmark table means by "median" and a quantile.
#include <catch2/catch.hpp>

#include <vector>

#include "common/stats.hpp"

using custguard::bench::median;
using custguard::bench::quantile;

TEST_CASE("bench stats: the median is the middle value, or the mean of the two middle ones", "[bench][unit]")
{
    struct Row {
        std::vector<double> v;
        double median;
    };
    const Row rows[] = {
        {{}, -1},
        {{7}, 7},
        {{3, 1, 2}, 2},
        {{4, 1, 3, 2}, 2.5},
        {{-5, 5}, 0},
        {{1, 1, 1, 100}, 1},
    };
    for (const auto& r : rows) {
        INFO(r.v.size() << " values");
        CHECK(median(r.v) == Approx(r.median));
    }
}

TEST_CASE("bench stats: a quantile is the nearest-rank value, always one of the values", "[bench][unit]")
{
    const std::vector<double> ten = {10, 9, 8, 7, 6, 5, 4, 3, 2, 1};
    struct Row {
        std::vector<double> v;
        double q, value;
    };
    const Row rows[] = {
        {{}, 0.5, -1},
        {{42}, 0.95, 42},
        {ten, 0.0, 1},
        {ten, 1.0, 10},
        {ten, 0.5, 6},    // round(4.5): the upper middle value, not the median 5.5
        {ten, 0.25, 3},   // round(2.25)
        {ten, 0.75, 8},   // round(6.75)
        {ten, 0.95, 10},  // round(8.55)
        {ten, 0.9, 9},    // round(8.1)
        {ten, -1.0, 1},   // clamped
        {ten, 2.0, 10},
    };
    for (const auto& r : rows) {
        INFO(r.v.size() << " values, q " << r.q);
        CHECK(quantile(r.v, r.q) == r.value);
    }
}
