// The text of an errno value, safe from any thread (custguard_os, header-only).
#pragma once

#include <string.h>

#include <string>

namespace custguard::common {

// `err` or -`err` (libbpf returns negative errno values) as strerror words.
inline std::string errno_text(int err) {
    char buf[128];
    // GNU strerror_r: returns the message, in buf or a static string.
    return ::strerror_r(err < 0 ? -err : err, buf, sizeof buf);
}

}  // namespace custguard::common
