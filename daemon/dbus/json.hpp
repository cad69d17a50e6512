// The control plane's JSON value: the one in custguard/common/json.hpp (the reports use it too).
#pragma once

#include "custguard/common/json.hpp"

namespace custguard::dbus {
using common::Json;
}  // namespace custguard::dbus
