// Races on the counted allowed reads (struct cg_read and struct cg_read_slot in
// bpf/custguard_abi.h): processes on two CPUs whose keys share slots of cg_read_slots,
// while records, the sweep and a daemon restart take the counts. Whatever races, every
// open of a zone file reaches the history exactly once (a record of its own or counted in
// a record's repeats), in a record of the process and file that made it.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>

#include <bpf/bpf.h>

#include "enforced.hpp"
#include "resolve.hpp"
#include "vm_support.hpp"

using namespace custguard;
using namespace custguard::vmtest;

namespace {

constexpr int k_max_children = 6;
constexpr int k_max_files = 600;

// What the reader processes do, in memory shared with them (mmap, not the heap: the
// children of this multithreaded process must not allocate). Each child reads its
// assigned files in rounds, or until `stop`, and counts its opens per file.
struct ReadPlan {
    int children = 0;
    int files = 0;
    int rounds = 0;  // 0: until stop
    long pause_us = 0;
    const char* paths[k_max_files] = {};  // the parent's strings, copied into each child by fork
    cg_read_key keys[k_max_files] = {};   // ino and dev of each file (tgid set per child)
    pid_t pid[k_max_children] = {};
    int assigned[k_max_children] = {};
    std::uint16_t file_of[k_max_children][k_max_files] = {};
    std::uint32_t opens[k_max_children][k_max_files] = {};
    std::atomic<int> go{0};
    std::atomic<int> stop{0};
    std::atomic<int> failed{0};
};

struct SharedPlan {
    ReadPlan* plan;
    SharedPlan()
    {
        void* p = ::mmap(nullptr, sizeof(ReadPlan), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        REQUIRE(p != MAP_FAILED);
        plan = new (p) ReadPlan;
    }
    ~SharedPlan() { ::munmap(plan, sizeof(ReadPlan)); }
    ReadPlan* operator->() const { return plan; }
};

void pause_us(long us)
{
    const timespec ts{us / 1'000'000, (us % 1'000'000) * 1000};
    ::syscall(SYS_nanosleep, &ts, nullptr);
}

// One reader process: waits for `go`, then reads its files (raw system calls only).
void reader_main(ReadPlan& p, int child)
{
    char buf[64];
    while (!p.go.load())
        pause_us(1000);
    for (int r = 0; p.rounds ? r < p.rounds : !p.stop.load(); ++r) {
        for (int i = 0; i < p.assigned[child]; ++i) {
            const int f = p.file_of[child][i];
            const long fd = ::syscall(SYS_openat, AT_FDCWD, p.paths[f], O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                p.failed.store(1);
                continue;
            }
            if (::syscall(SYS_read, fd, buf, sizeof buf) < 0)
                p.failed.store(1);
            ::syscall(SYS_close, fd);
            ++p.opens[child][f];
        }
        if (p.pause_us)
            pause_us(p.pause_us);
    }
}

// The slot of file f read by process `pid`, as lsm/file_open computes it.
std::uint32_t slot_of(const ReadPlan& p, int f, pid_t pid)
{
    cg_read_key k = p.keys[f];
    k.tgid = static_cast<std::uint32_t>(pid);
    return cg_read_slot_index(&k);
}

std::uint16_t g_keys_in_slot[CG_READ_SLOTS];

// In the child run_as made: forks the readers, then gives each one the files whose key
// (file, reader) shares its slot with another key of the plan, when `shared_only`, or
// every file; lets them go (or leaves that to the test, which sets `go` once the programs
// are attached) and waits for them. 0 when every open succeeded.
int run_readers(ReadPlan& p, bool shared_only, bool release = true)
{
    for (int c = 0; c < p.children; ++c) {
        const pid_t pid = ::fork();
        if (pid < 0)
            return 3;
        if (pid == 0) {
            reader_main(p, c);
            ::_exit(0);
        }
        p.pid[c] = pid;
    }
    for (auto& n : g_keys_in_slot)
        n = 0;
    for (int c = 0; c < p.children; ++c)
        for (int f = 0; f < p.files; ++f)
            ++g_keys_in_slot[slot_of(p, f, p.pid[c])];
    for (int c = 0; c < p.children; ++c) {
        p.assigned[c] = 0;
        for (int f = 0; f < p.files; ++f)
            if (!shared_only || g_keys_in_slot[slot_of(p, f, p.pid[c])] >= 2)
                p.file_of[c][p.assigned[c]++] = static_cast<std::uint16_t>(f);
    }
    if (release)
        p.go.store(1);
    int rc = 0;
    for (int c = 0; c < p.children; ++c) {
        int status = 0;
        while (::waitpid(p.pid[c], &status, 0) < 0 && errno == EINTR) {
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            rc = 4;
    }
    return rc ? rc : p.failed.load() ? 5 : 0;
}

// `n` files under a fresh zone directory, their paths and keys in the plan.
std::string make_files(ReadPlan& p, std::vector<std::string>& paths, const std::string& name, int n)
{
    const auto dir = fresh_dir(name);
    make_dir(dir + "/zone");
    paths.clear();
    paths.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        paths.push_back(dir + "/zone/f" + std::to_string(i));
        write_file(paths.back(), "name,phone\n");
    }
    p.files = n;
    for (int i = 0; i < n; ++i) {
        struct stat st {};
        REQUIRE(::stat(paths[static_cast<std::size_t>(i)].c_str(), &st) == 0);
        p.paths[i] = paths[static_cast<std::size_t>(i)].c_str();
        p.keys[i].ino = st.st_ino;
        p.keys[i].dev = daemon::bpf_lsm::kernel_dev(st.st_dev);
    }
    return dir + "/zone";
}

using Key = std::pair<std::uint32_t, std::string>;  // tgid, path

// Reads per (process, file) in the records of the plan's files, and whether every record
// names the inode of its path.
std::map<Key, std::uint64_t> recorded_reads(Events& events, const ReadPlan& p, const std::vector<std::string>& paths,
                                            std::size_t& wrong_inode)
{
    std::map<std::string, std::uint64_t> ino_of;
    for (int f = 0; f < p.files; ++f)
        ino_of[paths[static_cast<std::size_t>(f)]] = p.keys[f].ino;
    std::map<Key, std::uint64_t> out;
    wrong_inode = 0;
    for (auto& ev : events.snapshot()) {
        if (ev.raw.kind != CG_EV_OPEN || ev.raw.uid != k_alice.uid)
            continue;
        auto it = ino_of.find(ev.path);
        if (it == ino_of.end()) {
            out[{ev.raw.tgid, "(other path) " + ev.path}] += 1 + ev.raw.repeats;
            continue;
        }
        wrong_inode += ev.raw.ino != it->second;
        out[{ev.raw.tgid, ev.path}] += 1 + ev.raw.repeats;
    }
    return out;
}

std::map<Key, std::uint64_t> made_reads(const ReadPlan& p, const std::vector<std::string>& paths)
{
    std::map<Key, std::uint64_t> out;
    for (int c = 0; c < p.children; ++c)
        for (int f = 0; f < p.files; ++f)
            if (p.opens[c][f])
                out[{static_cast<std::uint32_t>(p.pid[c]), paths[static_cast<std::size_t>(f)]}] = p.opens[c][f];
    return out;
}

// The differences between what was read and what the records say, for the failure message.
std::string differences(const std::map<Key, std::uint64_t>& made, const std::map<Key, std::uint64_t>& recorded)
{
    std::string out;
    int shown = 0;
    auto show = [&](const Key& k, std::uint64_t m, std::uint64_t r) {
        if (shown++ < 20)
            out += "tgid " + std::to_string(k.first) + " " + k.second + ": read " + std::to_string(m) +
                   ", recorded " + std::to_string(r) + "\n";
    };
    for (const auto& [k, m] : made) {
        auto it = recorded.find(k);
        const std::uint64_t r = it == recorded.end() ? 0 : it->second;
        if (r != m)
            show(k, m, r);
    }
    for (const auto& [k, r] : recorded)
        if (!made.count(k))
            show(k, 0, r);
    return out + std::to_string(shown) + " (process, file) pairs differ";
}

std::uint64_t opens_so_far(const ReadPlan& p)
{
    std::uint64_t n = 0;
    for (int c = 0; c < p.children; ++c)
        for (int f = 0; f < p.files; ++f)
            n += __atomic_load_n(&p.opens[c][f], __ATOMIC_RELAXED);
    return n;
}

std::uint64_t recorded_so_far(Events& events, const ReadPlan& p, const std::vector<std::string>& paths)
{
    std::size_t wrong_inode = 0;
    std::uint64_t n = 0;
    for (const auto& [k, r] : recorded_reads(events, p, paths, wrong_inode))
        n += r;
    return n;
}

// The pinned cg_reads entry and cg_read_slots slot of every (reader, file) of the plan.
std::string dump_keys(const ReadPlan& p)
{
    const int reads = bpf_obj_get("/sys/fs/bpf/custguard/reads");
    const int slots = bpf_obj_get("/sys/fs/bpf/custguard/read_slots");
    std::string out;
    for (int c = 0; c < p.children; ++c)
        for (int f = 0; f < p.files; ++f) {
            cg_read_key k = p.keys[f];
            k.tgid = static_cast<std::uint32_t>(p.pid[c]);
            std::uint32_t i = cg_read_slot_index(&k);
            cg_read v{};
            cg_read_slot e{};
            const bool has = reads >= 0 && bpf_map_lookup_elem(reads, &k, &v) == 0;
            const bool slot = slots >= 0 && bpf_map_lookup_elem(slots, &i, &e) == 0;
            out += "tgid " + std::to_string(k.tgid) + " f" + std::to_string(f) + ": reads " +
                   (has ? "pending " + std::to_string(v.pending) + " recorded_j " + std::to_string(v.recorded_j) +
                              " last_j " + std::to_string(v.last_j)
                        : std::string("none")) +
                   "; slot " + std::to_string(i) + " " +
                   (slot ? "seq " + std::to_string(e.state >> 32) + " count " + std::to_string(e.state & 0xffffffff) +
                               " holds " + std::to_string(std::memcmp(&e.key, &k, sizeof k) == 0) + " rule " +
                               std::to_string(e.who.rule) + " recorded_j " + std::to_string(e.recorded_j) +
                               " last_j " + std::to_string(e.last_j)
                         : std::string("none")) +
                   "\n";
        }
    if (reads >= 0)
        ::close(reads);
    if (slots >= 0)
        ::close(slots);
    return out;
}

}  // namespace

TEST_CASE("allowed reads race: processes whose keys share slots, with records and sweeps taking counts, "
          "have every open counted once, each to its own process and file",
          "[vm][read_race]")
{
    // Guards cg_read_slots (ABI 15) against lost, doubled or moved counts: six processes
    // on two CPUs read only files whose (file, process) key shares its slot with another
    // key, their own or another process's; a 300 ms interval makes records fill and take
    // slots while the sweep takes counts every second. The stop's sweep takes the rest.
    SharedPlan p;
    std::vector<std::string> paths;
    const std::string zone = make_files(*p.plan, paths, "read_race_slots", k_max_files);
    daemon::bpf_lsm::Options o;
    o.read_interval = std::chrono::milliseconds(300);
    Enforced e(make_policy({ZoneSpec{{zone}, {k_alice.uid}}}), o);

    p->children = k_max_children;
    p->rounds = 30;
    p->pause_us = 100'000;
    REQUIRE(run_as(k_alice, [&] { return run_readers(*p.plan, true); }) == 0);
    auto ks = e.enforcer.kernel_state();
    REQUIRE(ks);
    const auto dropped = e.enforcer.counters().dropped;
    e.enforcer.stop(true);

    // The plan shares slots within and across processes.
    std::map<std::uint32_t, std::vector<int>> children_in_slot;
    std::uint64_t opens = 0;
    for (int c = 0; c < p->children; ++c)
        for (int i = 0; i < p->assigned[c]; ++i) {
            children_in_slot[slot_of(*p.plan, p->file_of[c][i], p->pid[c])].push_back(c);
            opens += p->opens[c][p->file_of[c][i]];
        }
    std::size_t across = 0;
    for (auto& [slot, cs] : children_in_slot)
        across += cs.front() != cs.back();
    INFO(children_in_slot.size() << " shared slots, " << across << " of them across processes, " << opens
                                 << " opens");
    CHECK(across > 0);

    std::size_t wrong_inode = 0;
    const auto made = made_reads(*p.plan, paths);
    const auto recorded = recorded_reads(e.events, *p.plan, paths, wrong_inode);
    INFO(differences(made, recorded));
    CHECK(recorded == made);
    CHECK(wrong_inode == 0);
    CHECK(ks->read_collisions == 0);
    CHECK(dropped == 0);
}

// A known limit (daemon/bpf_lsm/README.md, "Known limits"): for the time the adopting daemon's
// programs and the pinned ones both run, an open is counted (or recorded) by each, so the
// records may hold more opens than were made. What this guards is that none is lost.
TEST_CASE("allowed reads race: a daemon restart that adopts the pinned maps while processes read loses "
          "no open",
          "[vm][read_race]")
{
    // Guards the stop's sweep and the adoption of cg_reads and cg_read_slots (pinned): the
    // first enforcer stops without removing its programs, which go on counting while no
    // daemon runs; the second adopts the maps, attaches its programs over the first's and
    // records what was counted. Two processes read three files each without pause.
    SharedPlan p;
    std::vector<std::string> paths;
    const std::string zone = make_files(*p.plan, paths, "read_race_restart", 3);
    const auto policy = make_policy({ZoneSpec{{zone}, {k_alice.uid}}});
    daemon::bpf_lsm::Options o;
    o.read_interval = std::chrono::seconds(1);
    Events events;
    // Opens made and reads recorded so far at each step, for the failure message.
    std::string phases;
    const auto t0 = std::chrono::steady_clock::now();
    auto phase = [&](const char* what) {
        const auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
        phases += std::string(what) + " at " + std::to_string(ms) + " ms: " + std::to_string(opens_so_far(*p.plan)) +
                  " opens, " + std::to_string(recorded_so_far(events, *p.plan, paths)) + " recorded\n";
    };

    p->children = 2;
    p->rounds = 0;
    p->pause_us = 0;
    int readers_rc = -1;
    std::thread readers([&] { readers_rc = run_as(k_alice, [&] { return run_readers(*p.plan, false, false); }); });
    struct Finish {
        ReadPlan& p;
        std::thread& t;
        ~Finish()
        {
            p.go.store(1);
            p.stop.store(1);
            if (t.joinable())
                t.join();
        }
    } finish{*p.plan, readers};

    {
        daemon::bpf_lsm::BpfLsmEnforcer first(o);
        const RemovedAtExit remove_first{first};
        start_and_apply(first, events, policy);
        p->go.store(1);
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));
        phase("first running");
        phases += dump_keys(*p.plan);
        first.stop(false);
        phase("first stopped");
    }
    // The pinned programs count with no daemon.
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    phase("no daemon");
    daemon::bpf_lsm::BpfLsmEnforcer second(o);
    const RemovedAtExit remove_second{second};
    auto s = second.start(events.handler());
    INFO(err_of(s));
    REQUIRE(s);
    CHECK(second.adopted());
    phase("second started");
    phases += dump_keys(*p.plan);
    auto a = second.apply(policy);
    INFO(err_of(a));
    REQUIRE(a);
    phase("second applied");
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    p->stop.store(1);
    readers.join();
    REQUIRE(readers_rc == 0);
    phase("readers done");
    second.stop(true);
    phase("second stopped");
    INFO(phases);

    std::size_t wrong_inode = 0;
    const auto made = made_reads(*p.plan, paths);
    const auto recorded = recorded_reads(events, *p.plan, paths, wrong_inode);
    std::uint64_t opens = 0;
    for (const auto& [k, n] : made)
        opens += n;
    INFO(opens << " opens");
    INFO(differences(made, recorded));
    CHECK(made.size() == 6);
    CHECK(recorded.size() == made.size());
    std::uint64_t twice = 0;
    for (const auto& [k, n] : made) {
        const auto it = recorded.find(k);
        const std::uint64_t got = it == recorded.end() ? 0 : it->second;
        CHECK(got >= n);
        if (got > n)
            twice += got - n;
    }
    std::printf("adoption: %llu opens, %llu of them counted twice while both programs ran\n",
                static_cast<unsigned long long>(opens), static_cast<unsigned long long>(twice));
    CHECK(wrong_inode == 0);
}

TEST_CASE("allowed reads race: processes reading without pause while records and sweeps take counts lose "
          "no open",
          "[vm][read_race]")
{
    // The restart case's readers under one enforcer: two processes, three files each.
    SharedPlan p;
    std::vector<std::string> paths;
    const std::string zone = make_files(*p.plan, paths, "read_race_busy", 3);
    daemon::bpf_lsm::Options o;
    o.read_interval = std::chrono::seconds(1);
    Enforced e(make_policy({ZoneSpec{{zone}, {k_alice.uid}}}), o);

    p->children = 2;
    p->rounds = 0;
    p->pause_us = 0;
    int readers_rc = -1;
    std::thread readers([&] { readers_rc = run_as(k_alice, [&] { return run_readers(*p.plan, false); }); });
    std::this_thread::sleep_for(std::chrono::milliseconds(3500));
    p->stop.store(1);
    readers.join();
    REQUIRE(readers_rc == 0);
    const auto dropped = e.enforcer.counters().dropped;
    e.enforcer.stop(true);

    std::size_t wrong_inode = 0;
    const auto made = made_reads(*p.plan, paths);
    const auto recorded = recorded_reads(e.events, *p.plan, paths, wrong_inode);
    INFO(opens_so_far(*p.plan) << " opens");
    INFO(differences(made, recorded));
    CHECK(made.size() == 6);
    CHECK(recorded == made);
    CHECK(wrong_inode == 0);
    CHECK(dropped == 0);
}
