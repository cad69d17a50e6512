// libFuzzer target: arbitrary bytes as a policy file, a drop-in and a state file. The
// loader must never crash, hang or leak, and must either accept or explain.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "custguard/policy/compile.hpp"
#include "custguard/policy/evaluate.hpp"
#include "custguard/policy/load.hpp"
#include "custguard/policy/state.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace custguard::policy;
    static const TableResolver resolver = [] {
        TableResolver r;
        r.users = {{"alice", 1001}, {"bob", 1002}};
        r.groups = {{"sales", 2001}};
        return r;
    }();
    std::string text(reinterpret_cast<const char*>(data), size);
    LoadInput in;
    in.main = {"fuzz.toml", text};
    in.now = 1000;
    auto loaded = load(in, resolver);
    if (loaded) {
        auto compiled = compile(loaded->policy);
        Evaluator e(loaded->policy);
        for (const auto& root : compiled.roots) {
            auto d = e.evaluate({root.path + "/f", 1001, {}, "/bin/cat", 1000});
            if (!d.zone) std::abort();  // a file below a root must be in some zone
        }
    } else {
        for (const auto& d : loaded.error())
            if (d.message.empty() || d.hint.empty()) std::abort();
    }
    (void)parse_state("state.toml", text);
    return 0;
}
