// Two file servers' journals of one incident (fs1, fs2), written as journal files by
// systemd-journal-remote from an export stream with fixed timestamps: the input of the
// golden reports (report_host_test.cpp) and of the fleet test (fleet_host_test.cpp).
#pragma once

#include <filesystem>

namespace cgtest::report {

// Writes DIR/fs1.journal and DIR/fs2.journal.
void write_fleet(const std::filesystem::path& dir);

}  // namespace cgtest::report
