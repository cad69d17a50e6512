// custguardd's question to polkit: may the sender of a call do an action?
// org.freedesktop.PolicyKit1.Authority.CheckAuthorization on the bus the control plane is
// on, with a system-bus-name subject and without interactive authentication (a challenge
// is a refusal). custguard.polkit(7) lists the actions and the details passed with them.
// A method call whose answer is not at hand is deferred (defer_call): polkit is asked
// without waiting, and the bus thread answers other callers meanwhile.
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

    // The answer: one that arrived for a deferred call (used once), a cached one, or else
    // asked now, waiting up to k_timeout_usec.
    PolkitAnswer check(sd_bus* bus, const std::string& sender, const std::string& action,
                       const PolkitDetails& details);

    // For the method call being dispatched now, whose handler calls check() for `action`:
    // unless the caller is root or the answer is at hand, asks polkitd without waiting and
    // returns true (the handler returns 1: it replies later). When the answer arrives, the
    // call's handler runs again (the message rewound) and its check() gets that answer.
    bool defer_call(sd_bus_message* m, const std::string& action, const PolkitDetails& details);

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
    struct Asked;
    static std::string key_of(const std::string& sender, const std::string& action, const PolkitDetails& details);
    static int on_reply(sd_bus_message* reply, void* asked, sd_bus_error*);
    void remember(const std::string& key, const PolkitAnswer& answer);

    static constexpr std::size_t k_max_cached = 1024;
    std::uint64_t ttl_usec_;
    std::map<std::string, Cached> cache_;
    std::map<std::string, PolkitAnswer> arrived_;  // for deferred calls, each used once
    // A deferred call runs again now: were its details different this time (the job was
    // decided meanwhile), check() asks the usual way rather than deferring it twice.
    bool rerunning_ = false;
};

}  // namespace custguard::dbus
