// Helpers of the control-plane tests around a custguardctl run: its description for a
// failure message, and its JSON output parsed (the test fails on malformed JSON).
#pragma once

#include <catch2/catch.hpp>

#include <string>

#include "daemon/dbus/json.hpp"
#include "fixture.hpp"

namespace cgdbus {

inline std::string describe(const CtlResult& r) {
    return "rc=" + std::to_string(r.rc) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

inline custguard::dbus::Json parse(const std::string& text) {
    auto j = custguard::dbus::Json::parse(text);
    INFO(text.substr(0, 2000));
    REQUIRE(j);
    return *j;
}

}  // namespace cgdbus
