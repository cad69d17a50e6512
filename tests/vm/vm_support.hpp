// Helpers for the in-VM BPF-LSM tests and benchmark: policies built by hand, accesses
// made by forked children under other credentials, and an event collector.
#pragma once

#include <fcntl.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "custguard/policy/compile.hpp"
#include "daemon/event.hpp"

namespace custguard::vmtest {

// Credentials a child takes before it acts. uid/gid are set as real, effective, saved
// and filesystem ids, like `setpriv --reuid --regid --groups`.
struct Creds {
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
    std::vector<std::uint32_t> groups;
    std::int64_t loginuid = -1;  // written to /proc/self/loginuid first when >= 0
};

inline const Creds k_root{0, 0, {}};
inline const Creds k_alice{1001, 1001, {}};  // allowed by uid
inline const Creds k_bob{1002, 1002, {}};    // not allowed
inline constexpr std::uint32_t k_sales_gid = 2000;

// Runs `fn` in a forked child with `creds`; returns fn's result (an errno or 0) or
// 1000 + signal / 2000 when the child failed to switch credentials. The enforcer's threads
// run in this process: `fn` makes system calls only, on strings built before the call
// (see tests/support/exec_plan.hpp).
int run_as(const Creds& creds, const std::function<int()>& fn);

// open(path, flags) + read + close in this process: 0 or the errno.
int read_here(const std::string& path, int flags = O_RDONLY);
// The same with O_RDONLY in a child as `creds`.
int try_read(const Creds& creds, const std::string& path);

// Executes argv as `creds`; returns the exit status (or 1000 + signal).
int exec_as(const Creds& creds, const std::vector<std::string>& argv);

// "/proc/self/fd/<fd>" written into `out` without allocating (for a forked child).
const char* proc_fd_path(int fd, char (&out)[32]);

// Shell-free file helpers (abort the test on failure).
void make_dir(const std::string& path, unsigned mode = 0755);
void write_file(const std::string& path, const std::string& data, unsigned mode = 0644);
std::string fresh_dir(const std::string& name);  // empty dir under /tmp/cgvm

// A one-zone policy over `roots`, allowing `uids` and `gids`.
struct ZoneSpec {
    std::vector<std::string> roots;
    std::vector<std::uint32_t> uids;
    std::vector<std::uint32_t> gids;
    std::vector<std::string> programs;
    policy::Violation on_violation = policy::Violation::deny;
    bool record_allowed = true;
    std::vector<std::pair<std::uint32_t, std::uint64_t>> grants;  // uid, expires_at
};
policy::Compiled make_policy(const std::vector<ZoneSpec>& zones);

// Thread-safe collector for the enforcer's events.
class Events {
public:
    daemon::EventHandler handler();
    // Waits until an event matches or the timeout passes.
    bool wait_for(const std::function<bool(const daemon::AccessEvent&)>& pred,
                  std::chrono::milliseconds timeout = std::chrono::seconds(5));
    std::vector<daemon::AccessEvent> snapshot();
    void clear();

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<daemon::AccessEvent> events_;
};

std::int64_t realtime_s();

// Whether the guest CPU has SSSE3, which Hyperscan (the content detectors) needs:
// cg-vm-run's default model has it, qemu64 (vm.no_ssse3) has not.
bool cpu_has_ssse3();

}  // namespace custguard::vmtest
