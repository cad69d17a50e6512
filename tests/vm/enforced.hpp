// The BPF-LSM enforcer as the in-VM tests use it: started with a policy and removed at the
// end of each test, so that tests do not stack policies.
#pragma once

#include <catch2/catch.hpp>

#include <string>

#include "bpf_lsm_enforcer.hpp"
#include "vm_support.hpp"

namespace custguard::vmtest {

template <typename T>
std::string err_of(const tl::expected<T, std::string>& e)
{
    return e ? std::string() : e.error();
}

struct Enforced {
    Events events;
    daemon::bpf_lsm::BpfLsmEnforcer enforcer;

    explicit Enforced(const policy::Compiled& p)
    {
        auto s = enforcer.start(events.handler());
        INFO(err_of(s));
        REQUIRE(s);
        auto a = enforcer.apply(p);
        INFO(err_of(a));
        REQUIRE(a);
    }
    ~Enforced() { enforcer.stop(true); }
};

}  // namespace custguard::vmtest
