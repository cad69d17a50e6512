// custguard_bench_audit [--records N] [--runs R]: audit records parsed and assembled per
// second. The corpus of real records (tests/audit/corpus/multicast.txt, captured on this
// machine) is replayed with fresh serial numbers until N records, then timed through
// each stage; the baseline is one pass over the same bytes (memchr for ' '), the least any
// parser must do. Best of R runs. Prints a table.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "corpus.hpp"
#include "daemon/audit/access.hpp"
#include "daemon/audit/assembler.hpp"
#include "daemon/audit/record.hpp"

using namespace custguard::audit;
using Clock = std::chrono::steady_clock;

namespace {

struct Result {
    double seconds = 1e30;
    std::uint64_t events = 0;
    std::uint64_t accesses = 0;
};

std::vector<cgaudit::RawMessage> build_stream(const std::vector<cgaudit::RawMessage>& corpus, std::size_t n) {
    std::vector<cgaudit::RawMessage> out;
    out.reserve(n);
    for (std::uint64_t round = 0; out.size() < n; ++round) {
        for (const auto& m : corpus) {
            if (out.size() >= n) break;
            // audit(SEC.MSEC:SERIAL): -> a serial unique to this round.
            auto colon = m.text.find(':');
            auto close = m.text.find(')');
            std::uint64_t serial = std::stoull(m.text.substr(colon + 1, close - colon - 1)) + round * 1000;
            out.push_back({m.type, m.text.substr(0, colon + 1) + std::to_string(serial) + m.text.substr(close)});
        }
    }
    return out;
}

// Records of ~8 events at a time dealt out in random order (per-event order kept), as
// records of events on several CPUs arrive.
std::vector<cgaudit::RawMessage> interleave(const std::vector<cgaudit::RawMessage>& in) {
    std::vector<cgaudit::RawMessage> out;
    out.reserve(in.size());
    std::mt19937 rng(7);
    std::size_t i = 0;
    while (i < in.size()) {
        // Take the records of up to 8 consecutive events (they end with EOE).
        std::vector<std::vector<const cgaudit::RawMessage*>> groups(1);
        while (i < in.size() && groups.size() <= 8) {
            groups.back().push_back(&in[i]);
            if (in[i].type == type::eoe) groups.emplace_back();
            ++i;
        }
        std::vector<std::size_t> next(groups.size(), 0);
        std::size_t left = 0;
        for (auto& g : groups) left += g.size();
        while (left) {
            std::size_t g = std::uniform_int_distribution<std::size_t>(0, groups.size() - 1)(rng);
            if (next[g] == groups[g].size()) continue;
            out.push_back(*groups[g][next[g]++]);
            --left;
        }
    }
    return out;
}

template <typename F>
Result best_of(int runs, F&& f) {
    Result best;
    for (int r = 0; r < runs; ++r) {
        auto t0 = Clock::now();
        Result x = f();
        x.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
        if (x.seconds < best.seconds) best = x;
    }
    return best;
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t n = 1'000'000;
    int runs = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--records")) n = std::stoul(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--runs")) runs = std::stoi(argv[i + 1]);
    }
    auto corpus = cgaudit::load_multicast(std::string(CG_AUDIT_CORPUS) + "/multicast.txt");
    if (corpus.empty()) {
        std::fprintf(stderr, "bench_audit: corpus not found in %s\n", CG_AUDIT_CORPUS);
        return 1;
    }
    auto stream = build_stream(corpus, n);
    auto mixed = interleave(stream);
    std::uint64_t bytes = 0;
    for (const auto& m : stream) bytes += m.text.size();

    volatile std::uint64_t sink = 0;
    auto baseline = best_of(runs, [&] {
        std::uint64_t spaces = 0;
        for (const auto& m : stream) {
            const char* p = m.text.data();
            const char* end = p + m.text.size();
            while ((p = static_cast<const char*>(std::memchr(p, ' ', static_cast<std::size_t>(end - p))))) ++spaces, ++p;
        }
        sink = spaces;
        return Result{};
    });
    auto parse_only = best_of(runs, [&] {
        std::uint64_t fields = 0;
        for (const auto& m : stream)
            if (auto r = parse_record(m.type, m.text)) fields += r->field_count();
        sink = fields;
        return Result{};
    });
    auto assemble = [&](const std::vector<cgaudit::RawMessage>& in, bool extract) {
        Result res;
        Assembler a(
            [&](Event&& e) {
                ++res.events;
                if (extract)
                    if (auto acc = extract_access(e); acc && acc->zone_key("") && acc->target_path()) ++res.accesses;
            },
            AssemblerOptions{1000});
        std::int64_t now = 0;
        std::size_t i = 0;
        for (const auto& m : in) {
            if (auto r = parse_record(m.type, m.text)) a.push(std::move(*r), now);
            if (++i % 4096 == 0) a.expire(++now);  // a timer tick every 4096 records
        }
        a.flush();
        return res;
    };
    auto parse_assemble = best_of(runs, [&] { return assemble(stream, false); });
    auto full = best_of(runs, [&] { return assemble(stream, true); });
    auto full_mixed = best_of(runs, [&] { return assemble(mixed, true); });

    std::printf("audit records: %zu (the %zu-record corpus replayed), %.1f MB, best of %d runs\n\n", stream.size(),
                corpus.size(), bytes / 1e6, runs);
    std::printf("%-44s %12s %12s %10s %9s %10s\n", "stage", "records/s", "events/s", "MB/s", "ns/rec", "x baseline");
    auto row = [&](const char* name, const Result& r) {
        double rps = stream.size() / r.seconds;
        std::printf("%-44s %12.0f %12s %10.1f %9.1f %10.1f\n", name, rps,
                    r.events ? fmt::format("{:.0f}", r.events / r.seconds).c_str() : "-", bytes / r.seconds / 1e6,
                    r.seconds * 1e9 / stream.size(), r.seconds / baseline.seconds);
    };
    row("baseline: one memchr pass over the bytes", baseline);
    row("parse (stamp + every field)", parse_only);
    row("parse + assemble", parse_assemble);
    row("parse + assemble + access (decode, paths)", full);
    row("same, records of 8 events interleaved", full_mixed);
    std::printf("\nevents %llu, accesses with a custguard key and a path %llu (interleaved: %llu / %llu)\n",
                static_cast<unsigned long long>(full.events), static_cast<unsigned long long>(full.accesses),
                static_cast<unsigned long long>(full_mixed.events), static_cast<unsigned long long>(full_mixed.accesses));
    return full.events == full_mixed.events && full.accesses == full_mixed.accesses ? 0 : 1;
}
