// Crash-safe replacement of a file: write a temporary file in the same directory, fsync
// it, rename it over the target and fsync the directory. A crash at any point leaves
// either the old or the new contents, never a torn file.
#pragma once

#include <filesystem>
#include <string_view>

#include <sys/types.h>
#include <tl/expected.hpp>

namespace custguard::common {

tl::expected<void, std::string> write_file_atomically(const std::filesystem::path& path,
                                                      std::string_view contents,
                                                      mode_t mode = 0600);

}  // namespace custguard::common
