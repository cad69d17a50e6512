// The daemon's own look at who submitted a print job: it asks cupsd (not the backend) for
// the job's user and destination, and whether that destination takes client-supplied
// credentials. decide.hpp's unauthenticated_because() judges the answer.
#pragma once

#include "daemon/print/decide.hpp"

namespace custguard::print {

// Never throws; a failure is in CupsIdentity::error.
CupsIdentity ask_cups_identity(const std::string& job_id, int timeout_ms = 10'000);

}  // namespace custguard::print
