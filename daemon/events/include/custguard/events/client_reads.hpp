// Reads of zone files per zone and client machine since local midnight, for
// `custguardctl status`. Counted from committed records (a Pipeline observer), so it
// counts what the journal holds: reads the enforcer let through (allowed or audited) that
// carry CUSTGUARD_CLIENT. Kept in memory only: a daemon restart starts the day's counts over.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "custguard/events/record.hpp"

namespace custguard::events {

// The local calendar day (TZ as the daemon sees it) holding `realtime_us`, as a number
// that grows by one at each local midnight.
std::int64_t local_day(std::int64_t realtime_us);

class ClientReads {
public:
    // Distinct (zone, client) pairs kept per day; reads of further pairs are counted
    // under client k_other_clients, so a flood of addresses cannot grow the daemon.
    static constexpr std::size_t k_max_pairs = 4096;
    static constexpr const char* k_other_clients = "*";

    struct Entry {
        std::string zone;
        std::string client;
        std::uint64_t reads = 0;
    };

    // Pipeline observer (writer thread). A record of an earlier day than the newest seen
    // (one committed just after midnight) is not counted: its day is over.
    void observe(const Record& record);
    // The counts of the local day holding `now_us`, by zone then client; empty when no
    // read was counted that day yet. Thread-safe.
    std::vector<Entry> today(std::int64_t now_us) const;

private:
    mutable std::mutex mutex_;
    std::int64_t day_ = 0;
    bool have_day_ = false;
    std::map<std::pair<std::string, std::string>, std::uint64_t> counts_;
};

}  // namespace custguard::events
