// The set-up of the fair-share tests (fair_share_test.cpp, fair_share_attack_test.cpp): a
// tmpfs with zone files readable by alice and world-writable folders outside the zone
// (out/d0, out/d1, ...), the enforcer protecting the zone, and children of any user that
// count into memory shared with them (`Shared`, with an atomic `stop` they watch).
#pragma once

#include <catch2/catch.hpp>

#include <sys/mman.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "daemon/fanotify/fanotify_enforcer.hpp"
#include "enforced.hpp"

namespace cgtest::fair {

inline long now_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1'000'000'000L + ts.tv_nsec;
}

inline void note_max(std::atomic<long>& max, long v) {
    long m = max.load();
    while (v > m && !max.compare_exchange_weak(m, v)) {}
}

template <class Shared>
struct Env {
    Tmpfs fs;
    Collector events;
    std::unique_ptr<custguard::daemon::FanotifyEnforcer> enforcer;
    Shared* sh = nullptr;
    std::vector<std::string> zone;  // zone files
    std::vector<std::string> out;   // folders outside the zone
    std::vector<std::thread> children;
    std::vector<int> status;  // of each child spawned, in order
    std::size_t spawned = 0;

    Env(int zone_files, int dirs) {
        REQUIRE(fs.ok());
        fs.mkdir("zone");
        fs.mkdir("out", 0777);
        for (int i = 0; i < zone_files; ++i) {
            fs.write("zone/f" + std::to_string(i));
            zone.push_back(fs.path("zone/f" + std::to_string(i)));
        }
        for (int k = 0; k < dirs; ++k) {
            fs.mkdir("out/d" + std::to_string(k), 0777);
            out.push_back(fs.path("out/d" + std::to_string(k)));
        }
        void* m = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        REQUIRE(m != MAP_FAILED);
        sh = new (m) Shared();
        enforcer = start_enforcer(events, one_zone(fs, alice.uid), {});
        status.resize(64);
    }
    ~Env() {
        stop_children();
        if (enforcer) enforcer->stop(true);
        ::munmap(sh, sizeof(Shared));
    }
    Env(const Env&) = delete;
    Env& operator=(const Env&) = delete;

    // Runs `fn` as `who` in a child (run_as(): it makes system calls only).
    void spawn(const Cred& who, std::function<int()> fn) {
        const std::size_t i = spawned++;
        REQUIRE(i < status.size());
        children.emplace_back([this, who, fn = std::move(fn), i] { status[i] = run_as(who, fn); });
    }
    void stop_children() {
        sh->stop.store(1);
        for (auto& t : children) t.join();
        children.clear();
    }
    // mallory keeps `n` programs busy (no file system activity), on any CPU, at nice 0.
    void start_hogs(int n) {
        for (int k = 0; k < n; ++k)
            spawn(mallory, [this] {
                while (!sh->stop.load(std::memory_order_relaxed)) {}
                return 0;
            });
    }
    // Every child ended on its own with status 0.
    void check_children() const {
        for (std::size_t i = 0; i < spawned; ++i) CHECK(status[i] == 0);
    }
};

}  // namespace cgtest::fair
