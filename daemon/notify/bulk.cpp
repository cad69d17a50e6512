#include "daemon/notify/bulk.hpp"

#include <optional>

namespace custguard::notify {

void BulkDetector::set_limits(BulkLimits limits) {
    if (limits.window_seconds != limits_.window_seconds) windows_.clear();
    limits_ = limits;
}

std::optional<BulkRead> BulkDetector::add(const Key& key, const std::string& path, std::uint64_t bytes,
                                          std::int64_t time_us) {
    auto it = windows_.find(key);
    if (it == windows_.end()) {
        if (windows_.size() >= max_keys) {
            ++untracked_;
            return std::nullopt;
        }
        it = windows_.emplace(key, Window{}).first;
    }
    Window& w = it->second;
    const std::int64_t horizon = time_us - static_cast<std::int64_t>(limits_.window_seconds) * 1000000;
    while (!w.items.empty() && w.items.front().time_us <= horizon) {
        auto p = w.paths.find(w.items.front().path);
        if (--p->second.entries == 0) {
            w.bytes -= p->second.bytes;
            w.paths.erase(p);
        }
        w.items.pop_front();
    }
    // A file counts once per window, with its size when first seen.
    auto [pit, fresh] = w.paths.try_emplace(path, PathUse{0, bytes});
    ++pit->second.entries;
    w.items.push_back({time_us, path});
    // One file opened over and over must not grow the window without bound: past the cap
    // the oldest entries go early (the file count can only be underestimated then).
    while (w.items.size() > max_items) {
        auto p = w.paths.find(w.items.front().path);
        if (--p->second.entries == 0) {
            w.bytes -= p->second.bytes;
            w.paths.erase(p);
        }
        w.items.pop_front();
    }
    if (fresh) w.bytes += bytes;
    const bool too_many = limits_.max_files > 0 && w.paths.size() > limits_.max_files;
    const bool too_big = limits_.max_bytes > 0 && w.bytes > limits_.max_bytes;
    if (!too_many && !too_big) return std::nullopt;
    BulkRead hit;
    hit.zone = key.zone;
    hit.by_client = key.by_client;
    hit.files = static_cast<std::uint32_t>(w.paths.size());
    hit.bytes = w.bytes;
    hit.first_us = w.items.front().time_us;
    hit.last_us = time_us;
    windows_.erase(it);  // a fresh window: the next alert needs another full window's worth
    return hit;
}

std::vector<BulkRead> BulkDetector::observe(const std::string& zone, std::uint32_t uid, const std::string& user,
                                            const std::string& client, const std::string& path, std::uint64_t bytes,
                                            std::int64_t time_us) {
    std::vector<BulkRead> out;
    if (!enabled()) return out;
    if (auto hit = add({zone, false, std::to_string(uid)}, path, bytes, time_us)) {
        hit->uid = uid;
        hit->user = user;
        hit->client = client;
        out.push_back(std::move(*hit));
    }
    if (!client.empty())
        if (auto hit = add({zone, true, client}, path, bytes, time_us)) {
            hit->uid = uid;
            hit->user = user;
            hit->client = client;
            out.push_back(std::move(*hit));
        }
    return out;
}

void BulkDetector::expire(std::int64_t now_us) {
    const std::int64_t horizon = now_us - static_cast<std::int64_t>(limits_.window_seconds) * 1000000;
    std::erase_if(windows_, [&](const auto& kv) { return kv.second.items.empty() || kv.second.items.back().time_us <= horizon; });
}

}  // namespace custguard::notify
