// Whether a PostScript program may print other text on a printer than Ghostscript's
// txtwrite device shows us.
//
// The rule is a bounded token scan of the program, not a second Ghostscript run with
// another device: Ghostscript has one text-extraction device, a program can recognise it
// (by name, resolution, page-device keys) and a second run on a second Ghostscript device
// would still not be the printer, so comparing two runs proves nothing about the printer.
// A program is device-dependent when it
//   - names a device-introspection operator or key (currentdevice, .devicename,
//     getdeviceprops, .getdeviceparams, /OutputDevice, statusdict, product, serialnumber,
//     revision, version, …) as an executable, immediately evaluated or literal name, or
//     inside a string (hex and ASCII85 strings decoded), so `(currentdevice) cvn` is seen;
//     eexec-encrypted sections are decrypted and scanned the same way;
//   - calls currentpagedevice other than to read /PageSize or /.HWMargins (the form CUPS
//     filters, pdftops and ps2write use to fit the paper);
//   - builds code the scan cannot see: `token`, `cvn` of anything but a literal string
//     right before it, or `cvx` within a few tokens after a `filter`.
// What it cannot see: a program that finds an operator by walking a dictionary with forall
// and comparing computed properties, or names it through Level 2 binary tokens (encoded
// system names, binary object sequences: telling them from binary image data needs the
// interpreter); printer drivers write neither.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace custguard::scan::detail {

// Why the program depends on the output device, or nullopt.
std::optional<std::string> device_dependence(std::string_view program);

}  // namespace custguard::scan::detail
