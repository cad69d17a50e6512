#include "custguard/events/client_reads.hpp"

#include <cstdlib>

#include <time.h>

namespace custguard::events {

std::int64_t local_day(std::int64_t realtime_us) {
    const time_t t = static_cast<time_t>(realtime_us / 1000000);
    struct tm tm {};
    ::localtime_r(&t, &tm);
    // Days from a fixed origin: year * 366 + day of year keeps the order and changes
    // exactly at local midnight (gaps between years do not matter to a comparison).
    return static_cast<std::int64_t>(tm.tm_year) * 366 + tm.tm_yday;
}

void ClientReads::observe(const Record& r) {
    if (r.kind != Kind::access_allowed && r.kind != Kind::access_audited) return;
    // The same reads [bulk] counts: opens, not for writing only.
    if (const std::string* op = r.get(field::operation); op && *op != "open") return;
    if (const std::string* a = r.get(field::access); a && *a == "write") return;
    const std::string* zone = r.get(field::zone);
    const std::string* client = r.get(field::client);
    if (!zone || !client || zone->empty() || client->empty()) return;
    const std::int64_t day = local_day(r.realtime_us);
    std::lock_guard lock(mutex_);
    if (!have_day_ || day > day_) {
        counts_.clear();
        day_ = day;
        have_day_ = true;
    } else if (day < day_) {
        return;
    }
    auto key = std::make_pair(*zone, *client);
    auto it = counts_.find(key);
    if (it == counts_.end() && counts_.size() >= k_max_pairs) key.second = k_other_clients;
    // A record of the bpf-lsm enforcer may stand for more reads (custguard.journal(7)).
    std::uint64_t n = 1;
    if (const std::string* rep = r.get(field::repeats)) n += std::strtoull(rep->c_str(), nullptr, 10);
    counts_[key] += n;
}

std::vector<ClientReads::Entry> ClientReads::today(std::int64_t now_us) const {
    const std::int64_t day = local_day(now_us);
    std::lock_guard lock(mutex_);
    std::vector<Entry> out;
    if (!have_day_ || day != day_) return out;
    for (const auto& [key, n] : counts_) out.push_back({key.first, key.second, n});
    return out;
}

}  // namespace custguard::events
