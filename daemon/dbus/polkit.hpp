// custguardd's question to polkit: may the sender of a call do an action?
// org.freedesktop.PolicyKit1.Authority.CheckAuthorization on the bus the control plane is
// on, with a system-bus-name subject and without interactive authentication (a challenge
// is a refusal). custguard.polkit(7) lists the actions and the details passed with them.
#pragma once

#include <systemd/sd-bus.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace custguard::dbus {

// polkit details (action.lookup(key) in a rule), in order.
using PolkitDetails = std::vector<std::pair<std::string, std::string>>;

struct PolkitAnswer {
    enum class Kind : std::uint8_t {
        allowed,
        denied,  // polkit said no, or wanted authentication (detail "challenge")
        absent,  // polkitd is not on the bus: the caller applies its fallback
        failed,  // polkitd is there but did not answer usably; refuse
    };
    Kind kind = Kind::failed;
    std::string detail;
};

class PolkitAuthority {
public:
    // An answer is reused for the same bus name, action and details for `ttl_usec`, so a
    // page reading several properties asks once; a changed rule takes effect after that.
    explicit PolkitAuthority(std::uint64_t ttl_usec = k_default_ttl_usec) : ttl_usec_(ttl_usec) {}

    PolkitAnswer check(sd_bus* bus, const std::string& sender, const std::string& action,
                       const PolkitDetails& details);

    // Whether polkitd answers on `bus` now (a Peer.Ping): "" when it does, else why not.
    static std::string probe(sd_bus* bus);

    static constexpr std::uint64_t k_default_ttl_usec = 2'000'000;
    // How long a call waits for polkitd; the control plane's loop waits with it.
    static constexpr std::uint64_t k_timeout_usec = 3'000'000;
    static constexpr std::uint64_t k_probe_timeout_usec = 1'000'000;
    static constexpr const char* k_bus_name = "org.freedesktop.PolicyKit1";

private:
    struct Cached {
        std::uint64_t at = 0;
        PolkitAnswer answer;
    };
    static constexpr std::size_t k_max_cached = 1024;
    std::uint64_t ttl_usec_;
    std::map<std::string, Cached> cache_;
};

}  // namespace custguard::dbus
