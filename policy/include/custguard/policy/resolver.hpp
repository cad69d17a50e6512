// Name resolution injected into the policy library, so that it stays free of NSS calls.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace custguard::policy {

class Resolver {
public:
    virtual ~Resolver() = default;
    virtual std::optional<std::uint32_t> user_id(std::string_view name) const = 0;
    virtual std::optional<std::uint32_t> group_id(std::string_view name) const = 0;
};

// A fixed table, for tests and for callers that resolved names beforehand.
class TableResolver final : public Resolver {
public:
    std::map<std::string, std::uint32_t, std::less<>> users;
    std::map<std::string, std::uint32_t, std::less<>> groups;

    std::optional<std::uint32_t> user_id(std::string_view name) const override {
        auto it = users.find(name);
        if (it == users.end()) return std::nullopt;
        return it->second;
    }
    std::optional<std::uint32_t> group_id(std::string_view name) const override {
        auto it = groups.find(name);
        if (it == groups.end()) return std::nullopt;
        return it->second;
    }
};

}  // namespace custguard::policy
