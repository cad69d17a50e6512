// JSON documents and typed D-Bus values. custguardctl --json prints JSON (custguardctl(8));
// the bus carries typed values (custguard.dbus(7)):
//   object -> a{sv}; array of objects -> aa{sv}; of strings -> as; of integers -> ax;
//   any other array (mixed, or empty) -> av; string s, integer x, number d, boolean b.
// append_json writes the value as that type; read_json reads any D-Bus value back (a dict
// with string keys becomes an object, other arrays and structs arrays), so that a document
// sent typed comes back as the same JSON, key order included.
#pragma once

#include <systemd/sd-bus.h>

#include <string>

#include "custguard/api/types.hpp"
#include "custguard/common/json.hpp"

namespace custguard::api {

// {job, printer, user, uid, title, pages, client, held_at, detector_hits{name: count}}
common::Json to_json(const HeldJob& job);

// The D-Bus signature append_json uses for `value` (-EINVAL for null, which has none).
std::string signature_of(const common::Json& value);

// sd-bus return conventions (negative errno on failure). `element`, when given, is the
// element signature of a top-level array (a method's declared "aa{sv}" stays so when empty).
int append_json(sd_bus_message* m, const common::Json& value, const std::string& element = {});
int read_json(sd_bus_message* m, common::Json& out);

}  // namespace custguard::api
