// Decisions per second of policy::Evaluator for 1, 100 and 10,000 zones, on one core.
// Prints a table; not a test. Target: >= 5 million/s, flat in the number of zones.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "custguard/policy/evaluate.hpp"
#include "custguard/policy/load.hpp"

using namespace custguard::policy;

namespace {

Policy make_policy(int zones) {
    TableResolver r;
    r.users = {{"alice", 1001}};
    r.groups = {{"sales", 2001}};
    std::string text;
    for (int i = 0; i < zones; ++i)
        text += "[[zone]]\nname = \"z" + std::to_string(i) + "\"\npaths = [\"/srv/share/dept" +
                std::to_string(i) + "/customers\"]\nallow_users = [\"%sales\"]\n";
    LoadInput in;
    in.main = {"bench.toml", text};
    auto loaded = load(in, r);
    if (!loaded) {
        std::fprintf(stderr, "bench policy invalid: %s\n", loaded.error().front().format().c_str());
        std::exit(1);
    }
    return std::move(loaded->policy);
}

}  // namespace

int main() {
    std::printf("%-8s %-24s %14s %12s\n", "zones", "request mix", "decisions/s", "ns/decision");
    for (int zones : {1, 100, 10000}) {
        Policy policy = make_policy(zones);
        Evaluator e(policy);
        // A realistic mix: a third inside a zone by an allowed user, a third denied, a
        // third outside every zone; paths 5-7 components deep.
        std::vector<std::string> paths;
        for (int i = 0; i < 64; ++i) {
            int z = (i * 7919) % zones;
            if (i % 3 == 2)
                paths.push_back("/srv/share/public/projects/file" + std::to_string(i) + ".txt");
            else
                paths.push_back("/srv/share/dept" + std::to_string(z) + "/customers/2024/list" +
                                std::to_string(i) + ".csv");
        }
        std::uint32_t allowed_gids[] = {100, 2001};
        std::uint32_t other_gids[] = {100, 3000};
        const long iterations = 10'000'000;
        unsigned long sink = 0;
        auto start = std::chrono::steady_clock::now();
        for (long i = 0; i < iterations; ++i) {
            const auto& p = paths[static_cast<std::size_t>(i) & 63];
            bool allowed = (i & 1) == 0;
            AccessRequest req{p, allowed ? 1001u : 1002u,
                              allowed ? std::span<const std::uint32_t>(allowed_gids)
                                      : std::span<const std::uint32_t>(other_gids),
                              "/usr/sbin/smbd", 1000};
            sink += static_cast<unsigned>(e.evaluate(req).action);
        }
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::printf("%-8d %-24s %14.0f %12.1f\n", zones, "allow/deny/outside", iterations / seconds,
                    seconds * 1e9 / iterations);
        if (sink == 42) std::puts("");  // keep the loop from being optimised away
    }
    return 0;
}
