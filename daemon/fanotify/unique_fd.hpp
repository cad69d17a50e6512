// The fanotify enforcer's name for the shared owning file descriptor.
#pragma once

#include "custguard/common/unique_fd.hpp"

namespace custguard::daemon {
using common::UniqueFd;
}  // namespace custguard::daemon
