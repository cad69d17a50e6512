// The order statistics the benchmarks print, in one place so that every table means the
// same by "median" and "p95". Pure and header-only.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace custguard::bench {

// The median: the middle value, or the mean of the two middle values of an even count.
// -1 (never a time or a ratio) for no values.
inline double median(std::vector<double> v)
{
    if (v.empty())
        return -1;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Quantile q (0 to 1) by nearest rank: the value at round(q * (n - 1)) of the sorted values,
// so always one of them (quantile(v, 0.5) is the upper middle value of an even count, not
// the median above). -1 for no values.
inline double quantile(std::vector<double> v, double q)
{
    if (v.empty())
        return -1;
    std::sort(v.begin(), v.end());
    const double rank = std::clamp(q, 0.0, 1.0) * static_cast<double>(v.size() - 1) + 0.5;
    return v[std::min(v.size() - 1, static_cast<std::size_t>(rank))];
}

}  // namespace custguard::bench
