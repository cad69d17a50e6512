// End-to-end fixture for custguard with a real Samba server: a scratch smbd with its own
// smb.conf, passdb and private/lock/state/cache/pid dirs under a temp dir (no system
// configuration touched), in a network namespace of its own, reached over a veth pair from
// a second namespace that holds the client address; the real custguardd (fanotify
// enforcer) writing to a scratch journald namespace. Every piece is an RAII object whose
// destructor stops processes, deletes namespaces and users, also when a REQUIRE throws.
// Needs root; call cgsmb::enter_private_mounts() before any thread exists.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "scratch_journald.hpp"
#include "support/support.hpp"

namespace cgsmb {

namespace fs = std::filesystem;

// unshare(CLONE_NEWNS) with / made private, once per process: our tmpfs and the netns
// bind mounts of `ip netns add` stay in this process's mount namespace and vanish with it.
bool enter_private_mounts();

struct Result {
    int status = -1;     // exit status, or 128 + signal
    std::string output;  // stdout and stderr interleaved
};

// Runs argv (argv[0] an absolute path) with `input` on stdin, inside network namespace
// `netns` (a name under /run/netns) when not empty. Killed after `timeout`.
Result run(const std::vector<std::string>& argv, const std::string& input = {}, const std::string& netns = {},
           std::chrono::seconds timeout = std::chrono::seconds(30));

// A local user for the test; deleted again by the destructor (the names are this test's
// own: a leftover of a killed run is adopted and then deleted).
class TestUser {
public:
    TestUser(std::string name, std::string password);
    ~TestUser();
    TestUser(const TestUser&) = delete;
    TestUser& operator=(const TestUser&) = delete;
    const std::string& name() const { return name_; }
    const std::string& password() const { return password_; }
    uid_t uid() const { return uid_; }

private:
    std::string name_;
    std::string password_;
    uid_t uid_ = 0;
};

// Two network namespaces joined by a veth pair: the server end `<prefix>.1`, the client end
// `<prefix>.2`. No interface or address is ever added to the host's namespace.
class NetnsPair {
public:
    explicit NetnsPair(std::string tag);
    ~NetnsPair();
    NetnsPair(const NetnsPair&) = delete;
    NetnsPair& operator=(const NetnsPair&) = delete;
    const std::string& server_ns() const { return server_; }
    const std::string& client_ns() const { return client_; }
    const std::string& server_ip() const { return server_ip_; }
    const std::string& client_ip() const { return client_ip_; }

private:
    void remove();
    std::string server_, client_, server_ip_, client_ip_;
};

// A further client machine: namespace `<server ns>-<tag>` joined to the server namespace
// by a veth pair of its own (`iface` on the server side, a /24 each), holding
// `client_ips` (the first is its primary address). TEST-NET addresses.
class ExtraClient {
public:
    ExtraClient(const NetnsPair& net, const std::string& tag, std::string iface, std::string server_ip,
                std::vector<std::string> client_ips);
    ~ExtraClient();
    ExtraClient(const ExtraClient&) = delete;
    ExtraClient& operator=(const ExtraClient&) = delete;
    const std::string& ns() const { return ns_; }
    const std::string& server_ip() const { return server_ip_; }
    const std::string& ip() const { return client_ips_.front(); }
    const std::vector<std::string>& ips() const { return client_ips_; }

private:
    void remove();
    std::string ns_, server_ip_;
    std::vector<std::string> client_ips_;
};

// /etc/hosts replaced by `text` in this process's (private) mount namespace, which the
// custguardd it starts inherits; the host's file is never touched. Undone by the destructor.
class HostsFile {
public:
    explicit HostsFile(const fs::path& dir, const std::string& text);
    ~HostsFile();
    void rewrite(const std::string& text);  // in place: the bind mount shows it at once
    HostsFile(const HostsFile&) = delete;
    HostsFile& operator=(const HostsFile&) = delete;

private:
    fs::path file_;
};

// Inside the VM (tests/vm/cg-vm-run, CUSTGUARD_IN_VM set) the host's root is read-only,
// and useradd and smbpasswd need a writable /etc: a copy under `dir` is bound over /etc in
// this process's mount namespace until the destructor. Throws outside the VM (a real /etc
// is never rebound) or when the copy or the bind fails.
class WritableEtc {
public:
    explicit WritableEtc(const fs::path& dir);
    ~WritableEtc();
    WritableEtc(const WritableEtc&) = delete;
    WritableEtc& operator=(const WritableEtc&) = delete;
};

// smbd with a scratch configuration under `dir`, started in `netns`, serving `share_path`
// as [share] on port 445. The users get Samba passwords in the private passdb.
class ScratchSmbd {
public:
    ScratchSmbd(fs::path dir, std::string netns, fs::path share_path, const std::vector<const TestUser*>& users);
    ~ScratchSmbd();
    ScratchSmbd(const ScratchSmbd&) = delete;
    ScratchSmbd& operator=(const ScratchSmbd&) = delete;
    pid_t pid() const { return pid_; }  // the main smbd (it forks one child per connection)
    std::string log() const;
    const fs::path& client_conf() const { return client_conf_; }

private:
    void stop();
    fs::path dir_;
    fs::path client_conf_;
    pid_t pid_ = -1;
};

// The real custguardd: fanotify enforcer, no audit, records to journald namespace
// `journal_namespace`; its control plane on `bus` (a private dbus-daemon), or off without
// one. Started by the constructor (returns once it enforces).
class Custguardd {
public:
    Custguardd(fs::path dir, const fs::path& policy, const std::string& journal_namespace,
               const cgtest::PrivateBus* bus = nullptr);
    ~Custguardd();
    Custguardd(const Custguardd&) = delete;
    Custguardd& operator=(const Custguardd&) = delete;
    std::string log() const;
    // SIGHUP, and wait until the reload is logged (accepted or refused); true when accepted.
    bool reload();

private:
    fs::path dir_;
    pid_t pid_ = -1;
};

// The whole scene. Users: `alice` (allowed in zone "customers") and `bob` (not allowed).
// The share [share] is dir/share; the zone is share/customers with list.csv in it, also
// served as the share [customers].
// What the share lives on: a tmpfs of its own, or ext4 on a loop device (ext4 hands a
// deleted file's inode number to the next new file at once; tmpfs never reuses one).
enum class Backing { tmpfs, ext4 };

class Scene {
public:
    // `enforce` false: no custguardd (a baseline for the same scene). `zone_extra`: more
    // lines for the zone "customers" (allow_clients = [...]). `control_plane`: a private
    // dbus-daemon for custguardd's control plane, reached with ctl().
    explicit Scene(Backing backing = Backing::tmpfs, bool enforce = true, std::string zone_extra = {},
                   bool control_plane = false);
    ~Scene();

    // smbclient //server/share -U user%pw -c commands, from the client namespace.
    Result smbclient(const TestUser& user, const std::string& commands);
    // The real custguardctl, as root, on the scene's bus (control_plane scenes only).
    cgtest::RunResult ctl(const std::vector<std::string>& args);
    // The same from namespace `ns`, to the server's address `server_ip`.
    Result smbclient_from(const std::string& ns, const std::string& server_ip, const TestUser& user,
                          const std::string& commands);
    // Rewrite the policy with other `zone_extra` lines (custguardd::reload() applies it).
    void write_policy(const std::string& zone_extra);
    // Journal entries with CUSTGUARD_PATH=path, waiting up to `timeout` for one that
    // satisfies `pred`; all entries of that path read last in any case.
    std::vector<custguard::events::testing::JournalEntry> records_for(const fs::path& path);
    std::optional<custguard::events::testing::JournalEntry> wait_record(
        const fs::path& path, const std::string& user, const std::string& event,
        std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));
    std::string diagnostics() const;  // smbd and custguardd logs, for failure messages

    fs::path dir;
    fs::path share;
    fs::path zone;
    fs::path zone_file;
    std::unique_ptr<TestUser> alice, bob;
    std::unique_ptr<NetnsPair> net;
    std::unique_ptr<custguard::events::testing::ScratchJournald> journald;
    std::unique_ptr<cgtest::PrivateBus> bus;
    std::unique_ptr<ScratchSmbd> smbd;
    std::unique_ptr<Custguardd> daemon;

private:
    void cleanup();
    bool mounted_ = false;
};

}  // namespace cgsmb
