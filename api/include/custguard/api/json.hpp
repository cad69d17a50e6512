// The typed values as the JSON objects custguardctl --json prints (custguardctl(8)); the
// daemon's JSON methods build the same objects.
#pragma once

#include "custguard/api/types.hpp"
#include "custguard/common/json.hpp"

namespace custguard::api {

// {job, printer, user, uid, title, pages, client, held_at, detector_hits{name: count}}
common::Json to_json(const HeldJob& job);

}  // namespace custguard::api
