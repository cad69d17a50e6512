// Clock readings as nanoseconds (custguard_os, header-only).
#pragma once

#include <time.h>

#include <cstdint>

namespace custguard::common {

// `id`'s time in nanoseconds: CLOCK_MONOTONIC matches the kernel's event timestamps
// (bpf_ktime_get_ns, audit), CLOCK_REALTIME(_COARSE) file times.
inline std::int64_t clock_ns(clockid_t id) noexcept {
    timespec ts{};
    ::clock_gettime(id, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace custguard::common
