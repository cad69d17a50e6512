// The real custguardd under BPF LSM with a [watch] policy, for the in-VM watcher tests:
// ext4 on a loop device (the watcher's notification group needs a filesystem with an
// fsid, and 6.1's tmpfs has none), zone `customers` (data/customers, one customer list,
// the user daemon allowed) and the watched share data/public (mode 1777). Records are read
// from `--export jsonl`: the guest's scratch journald stores nothing.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>

#include "custguard/common/json.hpp"
#include "vm_support.hpp"

namespace custguard::vmtest {

// Both users exist on Debian: daemon (uid 1) is allowed in zone customers, bin (uid 2) is not.
inline const Creds k_zone_user{1, 1, {}};
inline const Creds k_outsider{2, 2, {}};

// Synthetic customer rows (e-mail and Japanese phone numbers the detectors find); `seed`
// makes rows no other seed gives.
std::string customer_csv(int rows, int seed = 1);

class WatchDaemon {
public:
    // `name`: the test's directory under /tmp/cgvm; `watch_settings`: lines of the [watch]
    // table after `paths`.
    WatchDaemon(const std::string& name, const std::string& watch_settings);
    // Whatever failed: custguardd killed, its pinned programs removed (they would go on
    // enforcing in the next tests), the filesystem unmounted.
    ~WatchDaemon();
    WatchDaemon(const WatchDaemon&) = delete;
    WatchDaemon& operator=(const WatchDaemon&) = delete;

    const std::string& dir() const { return dir_; }  // outside the watched filesystem
    std::string zone() const { return data_ + "/customers"; }
    std::string zone_file() const { return zone() + "/list.csv"; }
    std::string share() const { return data_ + "/public"; }
    pid_t pid() const { return pid_; }
    std::string log() const;
    std::string records() const;  // every exported record, one JSON object a line

    // The first customer_data_found record of `path` within `timeout`, as exported
    // (custguard.journal(7): the journald fields under their ECS names).
    std::optional<common::Json> wait_record(const std::string& path,
                                            std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

    // Writes `name` (no customer data) into the share as the zone's user and waits until
    // the watcher's sandboxed reader has read it and is idle. The watcher keeps that reader
    // for many files, as a server that has run a while has; its start took 0.6-1.5 s of a
    // fresh daemon's first file under TCG, which the 2 s of the tests is not about.
    void start_reader(const std::string& name);

    // Kills custguardd (SIGKILL) and removes its pinned programs; true when they outlived
    // it (a later enforcer adopted them), as they should.
    bool kill_and_remove_pins();

private:
    void teardown();

    std::string dir_, data_;
    pid_t pid_ = -1;
    bool mounted_ = false;
    bool pins_removed_ = false;
};

}  // namespace custguard::vmtest
