// Allowed reads recorded once per process, file and interval (struct cg_read in
// bpf/custguard_abi.h, CUSTGUARD_REPEATS in custguard.journal(7)): a process's repeated
// reads of a zone file give one record at once and one record that counts the rest, so
// the history still holds every read; refusals and writes are recorded every time.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/fsuid.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>

#include <atomic>
#include <filesystem>

#include <bpf/bpf.h>

#include "custguard/common/clock.hpp"
#include "enforced.hpp"
#include "resolve.hpp"
#include "vm_support.hpp"

using namespace custguard;
using namespace custguard::vmtest;
using custguard::daemon::AccessEvent;

namespace {

// Short, so that a test sees intervals end; the daemon's is 60 s.
constexpr auto k_interval = std::chrono::seconds(2);

daemon::bpf_lsm::Options short_interval()
{
    daemon::bpf_lsm::Options o;
    o.read_interval = k_interval;
    return o;
}

// `n` opens with `flags` + read + close of `path` in one child as `who`, with `pause_ms`
// between open number `pause_after` and the next.
int reads_in_one_process(const Creds& who, const std::string& path, int n, int flags = O_RDONLY,
                         int pause_after = -1, long pause_ms = 0)
{
    return run_as(who, [&]() -> int {
        for (int i = 0; i < n; ++i) {
            if (int r = read_here(path, flags))
                return r;
            if (i == pause_after) {
                timespec ts{pause_ms / 1000, (pause_ms % 1000) * 1'000'000};
                ::nanosleep(&ts, nullptr);
            }
        }
        return 0;
    });
}

// The records of `path` by `uid`, per process.
std::map<std::uint32_t, std::vector<AccessEvent>> by_process(Events& events, const std::string& path,
                                                             std::uint32_t uid)
{
    std::map<std::uint32_t, std::vector<AccessEvent>> out;
    for (auto& ev : events.snapshot())
        if (ev.raw.kind == CG_EV_OPEN && ev.path == path && ev.raw.uid == uid)
            out[ev.raw.tgid].push_back(ev);
    return out;
}

// Polls `done` (which looks at the records as a whole) until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout = std::chrono::seconds(5))
{
    const auto end = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (done())
            return true;
        if (std::chrono::steady_clock::now() > end)
            return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

// A fresh directory under /tmp/cgvm with a zone directory `zone` holding the file `f`.
struct ZoneFile {
    std::string zone, file;
};
ZoneFile zone_with_file(const std::string& name)
{
    const auto dir = fresh_dir(name);
    make_dir(dir + "/zone");
    write_file(dir + "/zone/f", "name,phone\n");
    return {dir + "/zone", dir + "/zone/f"};
}

std::uint64_t reads_of(const std::vector<AccessEvent>& records)
{
    std::uint64_t n = 0;
    for (const auto& ev : records)
        n += 1 + ev.raw.repeats;
    return n;
}

// A reader thread of a forked child: made with clone() on a static stack and reading with
// raw system calls, so that the child neither allocates nor shares glibc's thread state.
struct ReaderThread {
    const char* path = nullptr;
    int bursts = 0;
    int per_burst = 0;
    long pause_ms = 0;
    std::atomic<int> failed{0};
    std::atomic<int> done{0};
};
alignas(64) char g_reader_stack[256 * 1024];

void read_bursts(ReaderThread& t)
{
    char buf[64];
    for (int b = 0; b < t.bursts; ++b) {
        for (int i = 0; i < t.per_burst; ++i) {
            const long fd = ::syscall(SYS_openat, AT_FDCWD, t.path, O_RDONLY | O_CLOEXEC);
            if (fd < 0 || ::syscall(SYS_read, fd, buf, sizeof buf) < 0)
                t.failed.store(1);
            if (fd >= 0)
                ::syscall(SYS_close, fd);
        }
        const timespec ts{t.pause_ms / 1000, (t.pause_ms % 1000) * 1'000'000};
        ::syscall(SYS_nanosleep, &ts, nullptr);
    }
}

int reader_thread(void* arg)
{
    auto& t = *static_cast<ReaderThread*>(arg);
    read_bursts(t);
    t.done.store(1);
    return 0;
}

// The cg_read_slots index of (path, this process), as lsm/file_open computes it.
bool read_slot_of(const char* path, std::uint32_t& slot)
{
    struct stat st {};
    if (::stat(path, &st) != 0)
        return false;
    cg_read_key k{};
    k.ino = st.st_ino;
    k.dev = daemon::bpf_lsm::kernel_dev(st.st_dev);
    k.tgid = static_cast<std::uint32_t>(::getpid());
    slot = cg_read_slot_index(&k);
    return true;
}

std::int32_t g_slot_owner[CG_READ_SLOTS];

}  // namespace

TEST_CASE("allowed reads: one record per process and file within the interval, then one that counts the "
          "rest, also after the process exited",
          "[vm][read_repeats]")
{
    const ZoneFile zf = zone_with_file("read_repeats");
    const std::string file = zf.file;
    Enforced e(make_policy({ZoneSpec{{zf.zone}, {k_alice.uid}}}), short_interval());

    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(reads_in_one_process(k_alice, file, 10) == 0);
    REQUIRE(reads_in_one_process(k_alice, file, 3) == 0);
    // Within the interval: one record per process, each for its first read alone.
    REQUIRE(eventually([&] { return by_process(e.events, file, k_alice.uid).size() == 2; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    if (std::chrono::steady_clock::now() - t0 < k_interval) {
        auto early = by_process(e.events, file, k_alice.uid);
        REQUIRE(early.size() == 2);
        for (auto& [tgid, records] : early) {
            CHECK(records.size() == 1);
            CHECK(records.front().raw.repeats == 0);
            CHECK(records.front().raw.decision == CG_DECISION_ALLOW);
        }
    } else {
        WARN("the VM was too slow to look within the " << k_interval.count() << " s interval");
    }
    // Both processes have exited; the sweep records what they counted after the interval.
    REQUIRE(eventually(
        [&] {
            auto all = by_process(e.events, file, k_alice.uid);
            std::uint64_t total = 0;
            for (auto& [tgid, records] : all)
                total += reads_of(records);
            return total >= 13;
        },
        std::chrono::seconds(15)));
    auto all = by_process(e.events, file, k_alice.uid);
    REQUIRE(all.size() == 2);
    std::vector<std::uint64_t> counts;
    for (auto& [tgid, records] : all) {
        INFO("tgid " << tgid);
        CHECK(records.size() == 2);  // the first read, then the rest in one record
        if (records.size() != 2)
            continue;
        counts.push_back(reads_of(records));
        const auto& first = records[0];
        const auto& rest = records[1];
        CHECK(rest.path == first.path);
        CHECK(rest.raw.ino == first.raw.ino);
        CHECK(rest.raw.decision == CG_DECISION_ALLOW);
        CHECK(rest.raw.rule == CG_RULE_USER);
        // Timed at the last counted read, which came after the first.
        CHECK(rest.raw.ts_ns >= first.raw.ts_ns);
    }
    std::sort(counts.begin(), counts.end());
    CHECK(counts == std::vector<std::uint64_t>{3, 10});
    auto ks = e.enforcer.kernel_state();
    REQUIRE(ks);
    CHECK(ks->reads_folded == 11);  // 9 + 2 reads counted instead of recorded
    CHECK(e.enforcer.counters().dropped == 0);
}

TEST_CASE("allowed reads: a read after the interval is recorded again, and every read is counted",
          "[vm][read_repeats]")
{
    const ZoneFile zf = zone_with_file("read_repeats_later");
    const std::string file = zf.file;
    Enforced e(make_policy({ZoneSpec{{zf.zone}, {k_alice.uid}}}), short_interval());

    // Five reads, a pause longer than the interval, two more: 7 reads in one process.
    const long pause_ms = std::chrono::duration_cast<std::chrono::milliseconds>(k_interval).count() + 1500;
    REQUIRE(reads_in_one_process(k_alice, file, 7, O_RDONLY, 4, pause_ms) == 0);
    REQUIRE(eventually(
        [&] {
            auto all = by_process(e.events, file, k_alice.uid);
            return all.size() == 1 && reads_of(all.begin()->second) >= 7;
        },
        std::chrono::seconds(15)));
    auto all = by_process(e.events, file, k_alice.uid);
    REQUIRE(all.size() == 1);
    const auto& records = all.begin()->second;
    CHECK(reads_of(records) == 7);
    // The first read; the read after the pause (its own record, not a count); and the
    // sweep's counts of the four and of the one (the sweep may be first to the four).
    REQUIRE(records.size() >= 3);
    CHECK(records.size() <= 4);
    CHECK(records.front().raw.repeats == 0);
    const auto pause_ns = static_cast<std::uint64_t>(pause_ms) * 1'000'000;
    bool recorded_after_pause = false;
    for (const auto& ev : records)
        recorded_after_pause = recorded_after_pause || ev.raw.ts_ns >= records.front().raw.ts_ns + pause_ns;
    CHECK(recorded_after_pause);
}

TEST_CASE("allowed reads: refusals, audited opens and writes are recorded every time", "[vm][read_repeats]")
{
    const auto dir = fresh_dir("read_repeats_deny");
    make_dir(dir + "/deny");
    make_dir(dir + "/audit");
    write_file(dir + "/deny/f", "x", 0666);
    write_file(dir + "/audit/f", "x");
    ZoneSpec deny{{dir + "/deny"}, {k_alice.uid}};
    ZoneSpec audit{{dir + "/audit"}, {k_alice.uid}, {}, {}, policy::Violation::audit, true};
    Enforced e(make_policy({deny, audit}), short_interval());

    const std::string denied = dir + "/deny/f";
    // One process refused five times (it goes on after each refusal).
    CHECK(run_as(k_bob, [&] {
              int refused = 0;
              for (int i = 0; i < 5; ++i)
                  refused += read_here(denied) == EPERM;
              return refused == 5 ? 0 : 1;
          }) == 0);
    CHECK(reads_in_one_process(k_bob, dir + "/audit/f", 5) == 0);
    CHECK(reads_in_one_process(k_alice, denied, 4, O_RDWR) == 0);
    REQUIRE(eventually(
        [&] {
            auto w = by_process(e.events, denied, k_alice.uid);
            return !w.empty() && w.begin()->second.size() == 4;
        },
        std::chrono::seconds(10)));
    // Past the interval: nothing was held back to be counted.
    std::this_thread::sleep_for(k_interval + std::chrono::milliseconds(1500));
    std::size_t denials = 0;
    auto refusals = by_process(e.events, denied, k_bob.uid);
    CHECK(refusals.size() == 1);
    for (auto& [tgid, records] : refusals)
        for (const auto& ev : records) {
            CHECK(ev.raw.decision == CG_DECISION_DENY);
            CHECK(ev.raw.repeats == 0);
            ++denials;
        }
    CHECK(denials == 5);
    auto audited = by_process(e.events, dir + "/audit/f", k_bob.uid);
    REQUIRE(audited.size() == 1);
    CHECK(audited.begin()->second.size() == 5);
    for (const auto& ev : audited.begin()->second) {
        CHECK(ev.raw.decision == CG_DECISION_AUDIT);
        CHECK(ev.raw.repeats == 0);
    }
    auto writes = by_process(e.events, denied, k_alice.uid);
    REQUIRE(writes.size() == 1);
    CHECK(writes.begin()->second.size() == 4);
    for (const auto& ev : writes.begin()->second) {
        CHECK((ev.raw.open_flags & O_ACCMODE) == O_RDWR);
        CHECK(ev.raw.repeats == 0);
    }
    auto ks = e.enforcer.kernel_state();
    REQUIRE(ks);
    CHECK(ks->reads_folded == 0);
}

TEST_CASE("allowed reads: stopping the enforcer records what was counted", "[vm][read_repeats]")
{
    const ZoneFile zf = zone_with_file("read_repeats_stop");
    const std::string file = zf.file;
    // The daemon's interval: only the stop can record the count within this test.
    Enforced e(make_policy({ZoneSpec{{zf.zone}, {k_alice.uid}}}));

    REQUIRE(reads_in_one_process(k_alice, file, 6) == 0);
    REQUIRE(eventually([&] { return !by_process(e.events, file, k_alice.uid).empty(); }));
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    CHECK(reads_of(by_process(e.events, file, k_alice.uid).begin()->second) == 1);
    e.enforcer.stop(true);
    auto all = by_process(e.events, file, k_alice.uid);
    REQUIRE(all.size() == 1);
    CHECK(all.begin()->second.size() == 2);
    CHECK(reads_of(all.begin()->second) == 6);
}

TEST_CASE("allowed reads: the sweep's record is timed at the last counted read, within one jiffy",
          "[vm][read_repeats]")
{
    // Guards the jiffies clock of cg_reads (ABI 14): the sweep turns the last counted
    // read's jiffy into CLOCK_MONOTONIC; a record timed at the key's first record, or a
    // tick count taken for ns, falls outside these bounds.
    const ZoneFile zf = zone_with_file("read_repeats_time");
    const std::string file = zf.file;
    Enforced e(make_policy({ZoneSpec{{zf.zone}, {k_alice.uid}}}), short_interval());
    const auto tick = static_cast<std::int64_t>(daemon::bpf_lsm::kernel_tick_ns());

    // The first read, 800 ms, then two counted reads; the last is before `after`.
    REQUIRE(reads_in_one_process(k_alice, file, 3, O_RDONLY, 0, 800) == 0);
    const std::int64_t after = common::clock_ns(CLOCK_MONOTONIC);
    REQUIRE(eventually(
        [&] {
            auto all = by_process(e.events, file, k_alice.uid);
            return all.size() == 1 && reads_of(all.begin()->second) >= 3;
        },
        std::chrono::seconds(15)));
    const auto records = by_process(e.events, file, k_alice.uid).begin()->second;
    REQUIRE(records.size() == 2);
    CHECK(records[1].raw.repeats == 1);
    const auto first = static_cast<std::int64_t>(records[0].raw.ts_ns);
    const auto rest = static_cast<std::int64_t>(records[1].raw.ts_ns);
    INFO("first record " << first << " ns, counted " << rest << " ns, reader done " << after << " ns, tick "
                         << tick << " ns");
    CHECK(rest >= first + 800'000'000 - tick);
    CHECK(rest <= after + tick);
}

TEST_CASE("allowed reads: a process that runs another program keeps its file's key but is recorded apart",
          "[vm][read_repeats]")
{
    // Guards the 16-byte cg_reads key (file, tgid; ABI 14): the reader in the value is
    // compared after the lookup. After exec the tgid and file are the same, the program
    // is not: its reads are never counted into the first program's record.
    const ZoneFile zf = zone_with_file("read_repeats_exec");
    const std::string file = zf.file;
    Enforced e(make_policy({ZoneSpec{{zf.zone}, {k_alice.uid}}}), short_interval());
    struct stat sh {};
    REQUIRE(::stat("/bin/sh", &sh) == 0);

    const std::string script = "read x < \"$1\"; read x < \"$1\"; read x < \"$1\"";
    const char* argv[] = {"sh", "-c", script.c_str(), "sh", file.c_str(), nullptr};
    REQUIRE(run_as(k_alice, [&]() -> int {
                if (int r = read_here(file))
                    return r;
                ::execv("/bin/sh", const_cast<char* const*>(argv));
                return 127;
            }) == 0);
    // Past the interval, so that the sweep has recorded anything counted.
    REQUIRE(eventually(
        [&] {
            auto all = by_process(e.events, file, k_alice.uid);
            return all.size() == 1 && reads_of(all.begin()->second) >= 4;
        },
        std::chrono::seconds(15)));
    std::this_thread::sleep_for(k_interval + std::chrono::milliseconds(1500));
    auto all = by_process(e.events, file, k_alice.uid);
    REQUIRE(all.size() == 1);
    std::uint64_t by_sh = 0, by_test = 0;
    std::size_t sh_records = 0;
    for (const auto& ev : all.begin()->second) {
        if (ev.raw.exe_ino == sh.st_ino) {
            by_sh += 1 + ev.raw.repeats;
            ++sh_records;
        } else {
            by_test += 1 + ev.raw.repeats;
        }
    }
    CHECK(by_test == 1);
    CHECK(by_sh == 3);
    CHECK(sh_records == 3);  // each one a collision with the first program's key
    auto ks = e.enforcer.kernel_state();
    REQUIRE(ks);
    CHECK(ks->read_collisions == 3);
    CHECK(ks->reads_folded == 0);
}

TEST_CASE("allowed reads: the sweep runs only while cg_reads may hold a key, and again after a read",
          "[vm][read_repeats]")
{
    // Guards the poller's skipping of cg_read_sweep (a walk of all 65,536 buckets) once two
    // intervals and a sweep have passed without a record and the map is empty: an idle
    // daemon made one walk a second before.
    const ZoneFile zf = zone_with_file("read_repeats_idle");
    const std::string file = zf.file;
    Enforced e(make_policy({ZoneSpec{{zf.zone}, {k_alice.uid}}}), short_interval());

    // Whatever an earlier case left in the pinned map is recorded and deleted first.
    auto quiet = [&] {
        const auto before = e.enforcer.read_sweeps();
        std::this_thread::sleep_for(std::chrono::milliseconds(2500));
        return e.enforcer.read_sweeps() == before;
    };
    REQUIRE(eventually(quiet, std::chrono::seconds(30)));
    const auto idle = e.enforcer.read_sweeps();
    std::this_thread::sleep_for(std::chrono::seconds(3));
    CHECK(e.enforcer.read_sweeps() == idle);

    // A read starts it again: the counted reads still reach the history through the sweep.
    REQUIRE(reads_in_one_process(k_alice, file, 5) == 0);
    REQUIRE(eventually(
        [&] {
            auto all = by_process(e.events, file, k_alice.uid);
            return all.size() == 1 && reads_of(all.begin()->second) >= 5;
        },
        std::chrono::seconds(15)));
    CHECK(e.enforcer.read_sweeps() > idle);
    const auto records = by_process(e.events, file, k_alice.uid).begin()->second;
    CHECK(records.size() == 2);
    CHECK(reads_of(records) == 5);
    // And it stops once more when the key is gone.
    CHECK(eventually(quiet, std::chrono::seconds(30)));
}

TEST_CASE("allowed reads: two threads of one process counting one file on two CPUs, across intervals and "
          "sweeps, lose no read",
          "[vm][read_repeats]")
{
    // Guards the slots in front of cg_reads (ABI 15): both threads count into the same
    // slot with compare-and-swaps while records and the sweep take its count.
    if (::sysconf(_SC_NPROCESSORS_ONLN) < 2)
        WARN("one CPU: the two threads take turns instead of racing");
    const ZoneFile zf = zone_with_file("read_repeats_threads");
    const std::string file = zf.file;
    Enforced e(make_policy({ZoneSpec{{zf.zone}, {k_alice.uid}}}), short_interval());

    constexpr int bursts = 5, per_burst = 1500;
    static ReaderThread other, self;
    for (ReaderThread* t : {&other, &self}) {
        t->path = file.c_str();
        t->bursts = bursts;
        t->per_burst = per_burst;
        t->pause_ms = 700;  // 5 bursts span the 2 s interval twice and several sweeps
        t->failed = 0;
        t->done = 0;
    }
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(run_as(k_alice, [&]() -> int {
                const int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
                if (::clone(reader_thread, g_reader_stack + sizeof g_reader_stack, flags, &other) < 0)
                    return 3;
                read_bursts(self);
                while (!other.done.load())
                    ::sched_yield();
                return other.failed.load() || self.failed.load() ? 4 : 0;
            }) == 0);
    constexpr std::uint64_t total = 2 * bursts * per_burst;
    REQUIRE(eventually(
        [&] {
            auto all = by_process(e.events, file, k_alice.uid);
            return all.size() == 1 && reads_of(all.begin()->second) >= total;
        },
        std::chrono::seconds(20)));
    // Past another interval and sweep: nothing more comes.
    std::this_thread::sleep_for(k_interval + std::chrono::milliseconds(1500));
    auto all = by_process(e.events, file, k_alice.uid);
    REQUIRE(all.size() == 1);
    const auto& records = all.begin()->second;
    CHECK(reads_of(records) == total);
    // Counted, not recorded one by one: at most a first read's record and one that counts
    // the rest per interval the reads and the last sweep spanned. The bound follows the
    // time taken: a slow VM stretches the bursts over more intervals (20 records in a
    // clean-clone check beside the host layer).
    const auto intervals = (std::chrono::steady_clock::now() - t0) / k_interval + 1;
    std::fprintf(stderr, "allowed reads, two threads: %zu records over %lld intervals of %lld s\n", records.size(),
                 static_cast<long long>(intervals), static_cast<long long>(k_interval.count()));
    CHECK(records.size() <= 2 * static_cast<std::size_t>(intervals));
    auto ks = e.enforcer.kernel_state();
    REQUIRE(ks);
    // Every read but the records' own first ones, plus one per sweep record (its count).
    CHECK(ks->reads_folded >= total - records.size());
    CHECK(ks->reads_folded <= total);
    CHECK(e.enforcer.counters().dropped == 0);
}

TEST_CASE("allowed reads: two files of one process in one slot are both counted, each to its own records",
          "[vm][read_repeats]")
{
    // Guards the slots in front of cg_reads (ABI 15): the second key of a slot that holds
    // the first one's count counts in cg_reads; after the sweep took that count the
    // second key's record takes the slot over; every read of each file reaches a record
    // of that file.
    const auto dir = fresh_dir("read_repeats_slot");
    make_dir(dir + "/zone");
    // Enough files that two of them share a slot of 16,384 for any process (all but surely).
    std::vector<std::string> files;
    for (int i = 0; i < 1000; ++i) {
        files.push_back(dir + "/zone/f" + std::to_string(i));
        write_file(files.back(), "x");
    }
    Enforced e(make_policy({ZoneSpec{{dir + "/zone"}, {k_alice.uid}}}), short_interval());

    const long pause_ms = std::chrono::duration_cast<std::chrono::milliseconds>(k_interval).count() + 1500;
    const int rc = run_as(k_alice, [&]() -> int {
        std::uint32_t slot = 0;
        int a = -1, b = -1;
        for (auto& owner : g_slot_owner)
            owner = -1;
        for (int i = 0; i < static_cast<int>(files.size()) && b < 0; ++i) {
            if (!read_slot_of(files[i].c_str(), slot))
                return 5;
            if (g_slot_owner[slot] >= 0) {
                a = g_slot_owner[slot];
                b = i;
            }
            g_slot_owner[slot] = i;
        }
        if (b < 0)
            return 3;
        const std::string& fa = files[a];
        const std::string& fb = files[b];
        // a holds the slot with a count when b is first read; b counts in cg_reads.
        for (const std::string* f : {&fa, &fa, &fb, &fb, &fa, &fa, &fb, &fb})
            if (int r = read_here(*f))
                return r;
        // After the interval and the sweep: b's record finds the slot's count taken.
        const timespec ts{pause_ms / 1000, (pause_ms % 1000) * 1'000'000};
        ::nanosleep(&ts, nullptr);
        for (const std::string* f : {&fb, &fb, &fb, &fa, &fa, &fa})
            if (int r = read_here(*f))
                return r;
        return 0;
    });
    REQUIRE(rc == 0);
    auto read_files = [&] {
        std::map<std::string, std::uint64_t> out;
        for (auto& ev : e.events.snapshot())
            if (ev.raw.kind == CG_EV_OPEN && ev.raw.uid == k_alice.uid)
                out[ev.path] += 1 + ev.raw.repeats;
        return out;
    };
    REQUIRE(eventually(
        [&] {
            auto n = read_files();
            return n.size() == 2 && n.begin()->second >= 7 && n.rbegin()->second >= 7;
        },
        std::chrono::seconds(20)));
    std::this_thread::sleep_for(k_interval + std::chrono::milliseconds(1500));
    auto n = read_files();
    REQUIRE(n.size() == 2);
    for (auto& [path, reads] : n) {
        INFO(path);
        CHECK(reads == 7);
    }
    auto ks = e.enforcer.kernel_state();
    REQUIRE(ks);
    CHECK(ks->read_collisions == 0);
    CHECK(e.enforcer.counters().dropped == 0);
}

namespace {

// The count in the pinned cg_read_slots slot of (path, pid) while it holds that key and a
// reader with `rule`; -1 when it holds something else.
long slot_count(const std::string& path, pid_t pid, std::uint32_t rule)
{
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        return -1;
    cg_read_key k{};
    k.ino = st.st_ino;
    k.dev = daemon::bpf_lsm::kernel_dev(st.st_dev);
    k.tgid = static_cast<std::uint32_t>(pid);
    std::uint32_t i = cg_read_slot_index(&k);
    cg_read_slot e{};
    const int fd = bpf_obj_get("/sys/fs/bpf/custguard/read_slots");
    const bool got = fd >= 0 && bpf_map_lookup_elem(fd, &i, &e) == 0;
    if (fd >= 0)
        ::close(fd);
    if (!got || std::memcmp(&e.key, &k, sizeof k) != 0 || e.who.rule != rule)
        return -1;
    return static_cast<long>(e.state & 0xffffffff);
}

}  // namespace

TEST_CASE("allowed reads: a reader counted in its slot is decided again after any change that can refuse it "
          "(policy, deny row, program list, tracer, fsuid, supplementary groups, an audited zone, another zone's "
          "name of the file, a new daemon)",
          "[vm][read_repeats]")
{
    // Guards the slot's shortcut past cg_decide (ABI 16): it holds only under the policy
    // that filled the slot, for the same fsuid, in the same zone, in zones decided by their
    // tables alone.
    const ZoneFile zf = zone_with_file("read_slot_policy");
    const std::string file = zf.file;
    // The file's second name, in a zone of its own (made before anything is enforced: a
    // link out of a zone is decided like an open).
    const std::string other_zone = zf.zone.substr(0, zf.zone.rfind('/')) + "/other";
    const std::string other_name = other_zone + "/f";
    make_dir(other_zone);
    REQUIRE(::link(file.c_str(), other_name.c_str()) == 0);
    const std::string self = std::filesystem::read_symlink("/proc/self/exe");
    const auto now = realtime_s();
    const ZoneSpec named{{zf.zone}, {k_alice.uid}};
    ZoneSpec this_program = named;
    this_program.programs = {self};
    const ZoneSpec other_named{{other_zone}, {k_bob.uid}};
    const ZoneSpec sales{{zf.zone}, {}, {k_sales_gid}};

    // none: only the read after the change differs (another name of the file). restart:
    // the daemon stops keeping its pins and a new one adopts them and applies `after`.
    // groups: the reader, allowed by a supplementary group, leaves it (same fsuid and
    // fsgid: only the decision sees the groups, which is why a GROUP reader is decided
    // every time).
    enum class Change { none, apply, restart, trace, fsuid, groups };
    struct Case {
        const char* label;
        std::vector<ZoneSpec> before;
        Change change;
        std::function<policy::Compiled()> after;  // for Change::apply and restart
        const std::string& read_path;             // of the read after the change
        int read;                                 // its errno
        std::uint32_t decision;                   // and its record's (none: counted)
        std::uint32_t rule;
    };
    const std::vector<Case> cases = {
        {"the same policy applied again", {named}, Change::apply, [&] { return make_policy({named}); }, file, 0,
         CG_DECISION_ALLOW, CG_RULE_USER},
        {"a policy that names another user", {named}, Change::apply,
         [&] { return make_policy({ZoneSpec{{zf.zone}, {k_bob.uid}}}); }, file, EPERM, CG_DECISION_DENY,
         CG_RULE_NOT_ALLOWED},
        // The read goes through either way: only its record says the policy moved.
        {"a policy that names another user and audits violations", {named}, Change::apply,
         [&] {
             return make_policy({ZoneSpec{{zf.zone}, {k_bob.uid}, {}, {}, policy::Violation::audit, true}});
         },
         file, 0, CG_DECISION_AUDIT, CG_RULE_NOT_ALLOWED},
        {"a deny row for the reader (bulk-read cool-down)", {named}, Change::apply,
         [&] {
             auto p = make_policy({named});
             p.denies = {{1, k_alice.uid, static_cast<std::uint64_t>(now + 3600)}};
             return p;
         },
         file, EPERM, CG_DECISION_DENY, CG_RULE_REVOKED},
        {"a program list without the reader's program", {named}, Change::apply,
         [&] {
             ZoneSpec z = named;
             z.programs = {"/usr/bin/cat"};
             return make_policy({z});
         },
         file, EPERM, CG_DECISION_DENY, CG_RULE_PROGRAM},
        {"a tracer attached to the allowed program", {this_program}, Change::trace, {}, file, EPERM,
         CG_DECISION_DENY, CG_RULE_PROGRAM_TRACED},
        {"the reader's fsuid moved to a user the zone does not name", {named}, Change::fsuid, {}, file, EPERM,
         CG_DECISION_DENY, CG_RULE_NOT_ALLOWED},
        {"the reader left the supplementary group the zone names", {sales}, Change::groups, {}, file, EPERM,
         CG_DECISION_DENY, CG_RULE_NOT_ALLOWED},
        // Same inode, tgid and reader: only the zone of the name opened differs.
        {"the file's name in a zone that does not name the reader", {named, other_named}, Change::none, {},
         other_name, EPERM, CG_DECISION_DENY, CG_RULE_NOT_ALLOWED},
        // The new daemon's first policy must not reuse the active word of the old one's.
        {"a new daemon over the pinned maps, with a policy that names another user", {named}, Change::restart,
         [&] { return make_policy({ZoneSpec{{zf.zone}, {k_bob.uid}}}); }, file, EPERM, CG_DECISION_DENY,
         CG_RULE_NOT_ALLOWED},
    };
    constexpr int k_before = 5;
    for (const auto& c : cases) {
        INFO(c.label);
        // The daemon's interval: no record or sweep takes the slot's count meanwhile.
        Enforced e(make_policy(c.before));
        Events next_events;
        std::optional<daemon::bpf_lsm::BpfLsmEnforcer> next;  // Change::restart's daemon
        int ready[2], go[2];
        REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
        REQUIRE(::pipe2(go, O_CLOEXEC) == 0);
        // setfsuid needs CAP_SETUID, setgroups CAP_SETGID (kept: setfsuid drops file capabilities only)
        const bool as_root = c.change == Change::fsuid || c.change == Change::groups;
        const gid_t sales_gid = k_sales_gid;
        const std::uint32_t slot_rule = c.change == Change::groups ? CG_RULE_GROUP : CG_RULE_USER;
        const char* read_path = c.read_path.c_str();
        const pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            ::alarm(60);
            if (as_root) {
                if (c.change == Change::groups && ::setgroups(1, &sales_gid) != 0)
                    ::_exit(123);
                ::setfsgid(k_alice.gid);
                ::setfsuid(k_alice.uid);
            } else if (::setgroups(0, nullptr) != 0 || ::setresgid(k_alice.gid, k_alice.gid, k_alice.gid) != 0 ||
                       ::setresuid(k_alice.uid, k_alice.uid, k_alice.uid) != 0) {
                ::_exit(120);
            }
            for (int i = 0; i < k_before; ++i)
                if (read_here(file) != 0)
                    ::_exit(121);
            char b = 'r';
            if (::write(ready[1], &b, 1) != 1 || ::read(go[0], &b, 1) != 1)
                ::_exit(122);
            if (c.change == Change::fsuid)
                ::setfsuid(k_bob.uid);
            if (c.change == Change::groups && ::setgroups(0, nullptr) != 0)
                ::_exit(124);
            ::_exit(read_here(read_path));
        }
        ::close(ready[1]);
        ::close(go[0]);
        char b = 0;
        REQUIRE(::read(ready[0], &b, 1) == 1);
        // The reads after the first were counted in the slot, the path the change must end.
        CHECK(slot_count(file, pid, slot_rule) == k_before - 1);
        switch (c.change) {
        case Change::apply: {
            auto a = e.enforcer.apply(c.after());
            INFO(err_of(a));
            REQUIRE(a);
            break;
        }
        case Change::restart: {
            // Its stop records the slot's count and leaves the slot holding the reader.
            e.enforcer.stop(false);
            next.emplace();
            auto s = next->start(next_events.handler());
            INFO(err_of(s));
            REQUIRE(s);
            REQUIRE(next->adopted());
            auto a = next->apply(c.after());
            INFO(err_of(a));
            REQUIRE(a);
            break;
        }
        case Change::trace:
            REQUIRE(::ptrace(PTRACE_SEIZE, pid, nullptr, nullptr) == 0);
            break;
        case Change::none:
        case Change::fsuid:
        case Change::groups:
            break;
        }
        REQUIRE(::write(go[1], &b, 1) == 1);
        int st = 0;
        REQUIRE(::waitpid(pid, &st, 0) == pid);
        ::close(ready[0]);
        ::close(go[1]);
        REQUIRE(WIFEXITED(st));
        CHECK(WEXITSTATUS(st) == c.read);
        if (c.decision != CG_DECISION_ALLOW) {
            Events& events = next ? next_events : e.events;
            CHECK(events.wait_for([&](const AccessEvent& ev) {
                return ev.raw.tgid == static_cast<std::uint32_t>(pid) && ev.raw.decision == c.decision &&
                       ev.raw.rule == c.rule && ev.path == c.read_path;
            }));
        } else {
            // Allowed and counted, not recorded: every read is still in the key's counts.
            CHECK(slot_count(file, pid, slot_rule) == k_before);
        }
        if (next)
            next->stop(true);
    }
}

TEST_CASE("adoption: a pin set whose caches hold epochs its control map has not reached (a daemon that died "
          "while replacing its pins) is moved past them",
          "[vm][read_repeats]")
{
    // Guards raise_epoch_past_caches: without it the adopting daemon's applies would count
    // up to an epoch a slot or a directory-cache entry of the other set was filled under,
    // and that entry would match under another policy.
    const ZoneFile zf = zone_with_file("read_slot_mixed_pins");
    const auto policy = make_policy({ZoneSpec{{zf.zone}, {k_alice.uid}}});
    Events events;
    std::uint64_t epoch = 0;
    {
        daemon::bpf_lsm::BpfLsmEnforcer first;
        const RemovedAtExit remove_first{first};  // after stop(false) below: nothing
        start_and_apply(first, events, policy);
        auto ks = first.kernel_state();
        REQUIRE(ks);
        epoch = ks->cache_epoch;
        first.stop(false);  // the pins stay, as after a crash
    }
    // Entries of another set, filled 1,000 and 2,000 applies later than this control map.
    {
        const int slots = bpf_obj_get("/sys/fs/bpf/custguard/read_slots");
        const int dircache = bpf_obj_get("/sys/fs/bpf/custguard/dircache");
        REQUIRE(slots >= 0);
        REQUIRE(dircache >= 0);
        cg_read_slot e{};
        e.who.rule = CG_RULE_USER;
        e.active = CG_ACTIVE_MAKE(0, epoch + 1000);
        cg_dir_zone d{};
        d.inode = 1;
        d.epoch = static_cast<std::uint32_t>(epoch + 2000);
        const std::uint32_t i = 7, j = 9;
        CHECK(bpf_map_update_elem(slots, &i, &e, BPF_ANY) == 0);
        CHECK(bpf_map_update_elem(dircache, &j, &d, BPF_ANY) == 0);
        ::close(slots);
        ::close(dircache);
    }
    daemon::bpf_lsm::BpfLsmEnforcer second;
    const RemovedAtExit remove_second{second};
    auto s = second.start(events.handler());
    INFO(err_of(s));
    REQUIRE(s);
    CHECK(second.adopted());
    auto ks = second.kernel_state();
    REQUIRE(ks);
    CHECK(ks->cache_epoch > epoch + 2000);
    auto a = second.apply(policy);
    INFO(err_of(a));
    REQUIRE(a);
    ks = second.kernel_state();
    REQUIRE(ks);
    CHECK(ks->cache_epoch > epoch + 2001);
    CHECK(try_read(k_alice, zf.file) == 0);
    CHECK(try_read(k_bob, zf.file) == EPERM);
}
