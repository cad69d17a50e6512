// `custguardctl printer protect|unprotect|list`: rewrites CUPS queues' device URIs and
// operation policies through the CUPS API (CUPS-Add-Modify-Printer, and cupsd.conf over
// /admin/conf/ for the <Policy custguard> that makes job users authenticated), talking to
// cupsd directly (not to custguardd): protecting a queue must work while the daemon is
// down, and jobs then fail closed (held) rather than print unchecked.
#pragma once

#include <iosfwd>
#include <string>

namespace custguard::cli {

// verb: "protect", "unprotect" or "list"; queue unused for list. Returns the exit code
// (0 ok, 1 failed).
int run_printer(const std::string& verb, const std::string& queue, bool json, std::ostream& out, std::ostream& err);

}  // namespace custguard::cli
