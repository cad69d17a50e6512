#include "samba_fixture.hpp"

#include "support/exec_plan.hpp"
#include "support/support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

namespace cgsmb {

using cgtest::slurp;
using cgtest::spit;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// Network namespace `name` (under /run/netns; none when empty) for a forked child to join.
// Built before the fork: the child makes system calls only (see support/exec_plan.hpp).
class Netns {
public:
    explicit Netns(const std::string& name) : name_(name), path_(name.empty() ? "" : "/run/netns/" + name) {}
    // In the child: join it, or a line on stderr and exit 126.
    void enter() const noexcept {
        if (name_.empty()) return;
        int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
            const char* why = ::strerrordesc_np(errno);
            for (const char* p : {"cannot enter netns ", name_.c_str(), ": ", why ? why : "failed", "\n"})
                (void)!::write(2, p, std::strlen(p));
            ::_exit(126);
        }
        ::close(fd);
    }

private:
    std::string name_, path_;
};

int decode(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

// SIGTERM, then SIGKILL after `grace`; reaps `pid`.
void terminate(pid_t pid, std::chrono::milliseconds grace) {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    const auto deadline = Clock::now() + grace;
    while (Clock::now() < deadline) {
        if (::waitpid(pid, nullptr, WNOHANG) == pid) return;
        std::this_thread::sleep_for(20ms);
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
}

// Is something listening on TCP `port` in the network namespace of process `pid`?
bool listening(pid_t pid, std::uint16_t port) {
    const std::string needle = fmt::format(":{:04X} ", port);
    for (const char* table : {"tcp", "tcp6"}) {
        std::ifstream in(fmt::format("/proc/{}/net/{}", pid, table));
        std::string line;
        while (std::getline(in, line)) {
            std::istringstream cols(line);
            std::string sl, local, remote, st;
            cols >> sl >> local >> remote >> st;
            if (st == "0A" && (local + " ").ends_with(needle)) return true;
        }
    }
    return false;
}

}  // namespace

bool enter_private_mounts() {
    static const bool ok = ::geteuid() == 0 && ::unshare(CLONE_NEWNS) == 0 &&
                           ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
    return ok;
}

Result run(const std::vector<std::string>& argv, const std::string& input, const std::string& netns,
           std::chrono::seconds timeout) {
    const cgtest::ExecPlan plan(argv);
    const Netns ns(netns);
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    if (::pipe2(out, O_CLOEXEC) != 0) {
        ::close(in[0]);
        ::close(in[1]);
        throw std::runtime_error("pipe failed");
    }
    pid_t pid = ::fork();
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        ::dup2(in[0], 0);
        ::dup2(out[1], 1);
        ::dup2(out[1], 2);
        ::close_range(3, ~0u, 0);
        ns.enter();
        plan.exec();
    }
    ::close(in[0]);
    ::close(out[1]);
    if (pid < 0) {
        ::close(in[1]);
        ::close(out[0]);
        throw std::runtime_error("fork failed");
    }
    // Small inputs only (passwords): they fit the pipe buffer.
    (void)!::write(in[1], input.data(), input.size());
    ::close(in[1]);
    Result r;
    const auto deadline = Clock::now() + timeout;
    bool timed_out = false;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        pollfd p{out[0], POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
        char buf[4096];
        ssize_t n = ::read(out[0], buf, sizeof buf);
        if (n <= 0) break;
        r.output.append(buf, static_cast<std::size_t>(n));
    }
    ::close(out[0]);
    if (timed_out) {
        ::kill(pid, SIGKILL);
        r.output += fmt::format("\n[killed after {} s]", timeout.count());
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    r.status = decode(status);
    return r;
}

// --- TestUser -----------------------------------------------------------------------------

TestUser::TestUser(std::string name, std::string password) : name_(std::move(name)), password_(std::move(password)) {
    uid_ = cgtest::ensure_user(name_).uid;
}

TestUser::~TestUser() { run({"/usr/sbin/userdel", name_}); }

namespace {

// Runs each command in turn; on the first failure undoes what was made and throws.
void run_steps(const std::vector<std::vector<std::string>>& steps, const std::function<void()>& undo) {
    for (const auto& step : steps) {
        auto r = run(step);
        if (r.status != 0) {
            undo();
            std::string cmd;
            for (const auto& a : step) cmd += a + " ";
            throw std::runtime_error(cmd + "failed: " + r.output);
        }
    }
}

}  // namespace

// --- NetnsPair ----------------------------------------------------------------------------

NetnsPair::NetnsPair(std::string tag)
    : server_("cgsmb-" + tag + "-srv"), client_("cgsmb-" + tag + "-cli") {
    // Addresses only exist inside the namespaces: TEST-NET-1 (RFC 5737).
    server_ip_ = "192.0.2.1";
    client_ip_ = "192.0.2.2";
    remove();  // a leftover of a killed run
    const std::vector<std::vector<std::string>> steps = {
        {"/usr/sbin/ip", "netns", "add", server_},
        {"/usr/sbin/ip", "netns", "add", client_},
        {"/usr/sbin/ip", "-n", server_, "link", "add", "cgsmb0", "type", "veth", "peer", "name", "cgsmb1", "netns", client_},
        {"/usr/sbin/ip", "-n", server_, "addr", "add", server_ip_ + "/24", "dev", "cgsmb0"},
        {"/usr/sbin/ip", "-n", client_, "addr", "add", client_ip_ + "/24", "dev", "cgsmb1"},
        {"/usr/sbin/ip", "-n", server_, "link", "set", "cgsmb0", "up"},
        {"/usr/sbin/ip", "-n", client_, "link", "set", "cgsmb1", "up"},
        {"/usr/sbin/ip", "-n", server_, "link", "set", "lo", "up"},
        {"/usr/sbin/ip", "-n", client_, "link", "set", "lo", "up"},
    };
    run_steps(steps, [this] { remove(); });
}

NetnsPair::~NetnsPair() { remove(); }

void NetnsPair::remove() {
    for (const auto& ns : {server_, client_}) {
        if (!fs::exists("/run/netns/" + ns)) continue;
        run({"/usr/sbin/ip", "netns", "delete", ns});
        std::error_code ec;
        fs::remove("/run/netns/" + ns, ec);  // an empty file left by a run killed in another mount namespace
    }
}

// --- ExtraClient --------------------------------------------------------------------------

ExtraClient::ExtraClient(const NetnsPair& net, const std::string& tag, std::string iface, std::string server_ip,
                         std::vector<std::string> client_ips)
    : ns_(net.server_ns() + "-" + tag), server_ip_(std::move(server_ip)), client_ips_(std::move(client_ips)) {
    remove();
    std::vector<std::vector<std::string>> steps = {
        {"/usr/sbin/ip", "netns", "add", ns_},
        {"/usr/sbin/ip", "-n", net.server_ns(), "link", "add", iface, "type", "veth", "peer", "name", "cgsmbc", "netns", ns_},
        {"/usr/sbin/ip", "-n", net.server_ns(), "addr", "add", server_ip_ + "/24", "dev", iface},
        {"/usr/sbin/ip", "-n", net.server_ns(), "link", "set", iface, "up"},
        {"/usr/sbin/ip", "-n", ns_, "link", "set", "cgsmbc", "up"},
        {"/usr/sbin/ip", "-n", ns_, "link", "set", "lo", "up"},
    };
    for (const auto& ip : client_ips_)
        steps.push_back({"/usr/sbin/ip", "-n", ns_, "addr", "add", ip + "/24", "dev", "cgsmbc"});
    run_steps(steps, [this] { remove(); });
}

ExtraClient::~ExtraClient() { remove(); }

void ExtraClient::remove() {
    if (!fs::exists("/run/netns/" + ns_)) return;
    run({"/usr/sbin/ip", "netns", "delete", ns_});  // its veth end goes with it, and so the peer
    std::error_code ec;
    fs::remove("/run/netns/" + ns_, ec);
}

// --- HostsFile ----------------------------------------------------------------------------

HostsFile::HostsFile(const fs::path& dir, const std::string& text) : file_(dir / "hosts") {
    if (!enter_private_mounts()) throw std::runtime_error("needs a private mount namespace");
    spit(file_, text);
    if (::mount(file_.c_str(), "/etc/hosts", nullptr, MS_BIND, nullptr) != 0)
        throw std::runtime_error(std::string("bind mount over /etc/hosts: ") + std::strerror(errno));
}

HostsFile::~HostsFile() { ::umount2("/etc/hosts", MNT_DETACH); }

void HostsFile::rewrite(const std::string& text) { spit(file_, text); }

// --- WritableEtc --------------------------------------------------------------------------

WritableEtc::WritableEtc(const fs::path& dir) {
    if (!std::getenv("CUSTGUARD_IN_VM")) throw std::runtime_error("WritableEtc outside the VM: refused");
    const fs::path copy = dir / "etc";
    // Over 9p on a busy host the copy has taken longer than run()'s default 30 s.
    if (auto r = run({"/bin/cp", "-a", "/etc", copy.string()}, {}, {}, std::chrono::seconds(300)); r.status != 0)
        throw std::runtime_error("cp -a /etc " + copy.string() + ": " + r.output);
    if (::mount(copy.c_str(), "/etc", nullptr, MS_BIND, nullptr) != 0)
        throw std::runtime_error(std::string("bind mount over /etc: ") + std::strerror(errno));
}

WritableEtc::~WritableEtc() { ::umount2("/etc", MNT_DETACH); }

// --- ScratchSmbd --------------------------------------------------------------------------

ScratchSmbd::ScratchSmbd(fs::path dir, std::string netns, fs::path share_path, const std::vector<const TestUser*>& users)
    : dir_(std::move(dir)) {
    for (const char* d : {"private", "lock", "state", "cache", "pid", "ncalrpc", "log", "client/lock", "client/state",
                          "client/cache", "client/private"})
        fs::create_directories(dir_ / d);
    fs::permissions(dir_ / "private", fs::perms::owner_all, fs::perm_options::replace);
    const std::string d = dir_.string();
    // Directories Samba would otherwise take from the system (/var/lib/samba, /run/samba,
    // /var/cache/samba, /var/log/samba) all point below `dir`.
    spit(dir_ / "smb.conf", fmt::format(R"([global]
    netbios name = CGSMBTEST
    workgroup = CGTEST
    server role = standalone server
    security = user
    map to guest = never
    passdb backend = tdbsam:{0}/private/passdb.tdb
    private dir = {0}/private
    lock directory = {0}/lock
    state directory = {0}/state
    cache directory = {0}/cache
    pid directory = {0}/pid
    ncalrpc dir = {0}/ncalrpc
    binddns dir = {0}/private
    usershare path =
    log file = {0}/log/log.%m
    log level = 1
    smb ports = 445
    load printers = no
    printing = bsd
    printcap name = /dev/null
    disable spoolss = yes
    server min protocol = SMB2_02

[share]
    path = {1}
    read only = no

[customers]
    path = {1}/customers
    read only = no
)",
                                        d, share_path.string()));
    client_conf_ = dir_ / "client.conf";
    spit(client_conf_, fmt::format(R"([global]
    workgroup = CGTEST
    private dir = {0}/client/private
    lock directory = {0}/client/lock
    state directory = {0}/client/state
    cache directory = {0}/client/cache
    client min protocol = SMB2_02
)",
                                   d));
    for (const TestUser* u : users) {
        auto r = run({"/usr/bin/smbpasswd", "-c", (dir_ / "smb.conf").string(), "-a", "-s", u->name()},
                     u->password() + "\n" + u->password() + "\n");
        if (r.status != 0) throw std::runtime_error("smbpasswd -a " + u->name() + ": " + r.output);
    }
    const std::vector<std::string> argv = {"/usr/sbin/smbd", "--foreground", "--debug-stdout", "-s",
                                           (dir_ / "smb.conf").string()};
    const cgtest::ExecPlan plan(argv);
    const Netns ns(netns);
    const fs::path log_path = dir_ / "smbd.out";
    pid_t pid = ::fork();
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null = ::open("/dev/null", O_RDONLY);
        int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
        ::dup2(null, 0);
        ::dup2(log, 1);
        ::dup2(log, 2);
        ::close_range(3, ~0u, 0);
        ns.enter();
        // Without --no-process-group smbd calls setsid(): it and every child it forks
        // (one per connection) form one process group, which stop() signals.
        plan.exec();
    }
    if (pid < 0) throw std::runtime_error("fork failed");
    pid_ = pid;
    const auto deadline = Clock::now() + 20s;
    while (!listening(pid_, 445)) {
        if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
            pid_ = -1;
            throw std::runtime_error("smbd exited during start: " + log());
        }
        if (Clock::now() > deadline) {
            stop();
            throw std::runtime_error("smbd did not listen on port 445 within 20 s: " + log());
        }
        std::this_thread::sleep_for(20ms);
    }
}

ScratchSmbd::~ScratchSmbd() { stop(); }

std::string ScratchSmbd::log() const { return slurp(dir_ / "smbd.out"); }

void ScratchSmbd::stop() {
    if (pid_ <= 0) return;
    const pid_t group = pid_;
    ::kill(-group, SIGTERM);
    terminate(pid_, 10s);
    pid_ = -1;
    // Connection children outlive the main smbd briefly; the test process is their
    // subreaper (Scene), so reap them here.
    const auto deadline = Clock::now() + 5s;
    while (::kill(-group, 0) == 0 || errno != ESRCH) {
        while (::waitpid(-group, nullptr, WNOHANG) > 0) {
        }
        if (Clock::now() > deadline) {
            ::kill(-group, SIGKILL);
            while (::waitpid(-group, nullptr, 0) > 0) {
            }
            break;
        }
        std::this_thread::sleep_for(20ms);
    }
}

// --- Custguardd ---------------------------------------------------------------------------

Custguardd::Custguardd(fs::path dir, const fs::path& policy, const std::string& journal_namespace,
                       const cgtest::PrivateBus* bus)
    : dir_(std::move(dir)) {
    fs::create_directories(dir_ / "state");
    // Without a bus the control plane stays off (and says so once everything else runs).
    pid_ = cgtest::spawn({CG_CUSTGUARDD, "--policy", policy.string(), "--state-dir", (dir_ / "state").string(),
                          "--enforcer", "fanotify", "--no-audit", "--journal-namespace", journal_namespace},
                         {bus ? bus->env() : "DBUS_SYSTEM_BUS_ADDRESS=unix:path=" + (dir_ / "no-bus").string()},
                         dir_ / "custguardd.log");
    const char* up = bus ? "control plane on the bus" : "control plane off";
    const auto deadline = Clock::now() + 20s;
    while (log().find(up) == std::string::npos) {
        if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
            pid_ = -1;
            throw std::runtime_error("custguardd exited during start: " + log());
        }
        if (Clock::now() > deadline) {
            cgtest::kill_and_reap(pid_);
            throw std::runtime_error("custguardd did not come up within 20 s: " + log());
        }
        std::this_thread::sleep_for(20ms);
    }
}

Custguardd::~Custguardd() { cgtest::kill_and_reap(pid_); }

bool Custguardd::reload() {
    auto count = [&](const std::string& what) {
        const std::string text = log();
        std::size_t n = 0;
        for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
        return n;
    };
    const std::size_t accepted = count("policy reloaded"), refused = count("refused; the running policy");
    ::kill(pid_, SIGHUP);
    const auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline) {
        if (count("policy reloaded") > accepted) return true;
        if (count("refused; the running policy") > refused) return false;
        std::this_thread::sleep_for(5ms);
    }
    return false;
}

std::string Custguardd::log() const { return slurp(dir_ / "custguardd.log"); }

// --- Scene --------------------------------------------------------------------------------

Scene::Scene(Backing backing, bool enforce, std::string zone_extra, bool control_plane) {
    if (!enter_private_mounts()) throw std::runtime_error("needs root and a private mount namespace");
    // smbd's connection children are orphaned when it stops: make them ours to reap.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    char tmpl[] = "/tmp/cgsmb.XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir = tmpl;
    ::chmod(dir.c_str(), 0755);
    try {
        share = dir / "share";
        zone = share / "customers";
        zone_file = zone / "list.csv";
        fs::create_directories(share);
        // The share on a filesystem of its own: the fanotify mark covers that one only.
        if (backing == Backing::tmpfs) {
            if (::mount("cgsmb", share.c_str(), "tmpfs", 0, "mode=0777,size=16m") != 0)
                throw std::runtime_error(std::string("mount tmpfs: ") + std::strerror(errno));
        } else {
            const auto image = (dir / "share.img").string();
            auto made = run({"/usr/bin/truncate", "-s", "64M", image});
            if (made.status == 0) made = run({"/usr/sbin/mkfs.ext4", "-q", "-F", "-O", "^has_journal", image});
            if (made.status == 0) made = run({"/usr/bin/mount", "-o", "loop", image, share.string()});
            if (made.status != 0) throw std::runtime_error("cannot make an ext4 share: " + made.output);
            ::chmod(share.c_str(), 0777);
        }
        mounted_ = true;
        fs::create_directories(zone);
        // Unix permissions let everyone read and rename: only custguard stands in the way.
        ::chmod(zone.c_str(), 0777);
        spit(zone_file, "name,phone\nYamada Taro,03-1234-5678\n");
        ::chmod(zone_file.c_str(), 0644);
        spit(share / "public.txt", "not customer data\n");
        ::chmod((share / "public.txt").c_str(), 0644);

        alice = std::make_unique<TestUser>("cgsmb-alice", "Alice-pw-1");
        bob = std::make_unique<TestUser>("cgsmb-bob", "Bob-pw-2");
        net = std::make_unique<NetnsPair>(std::to_string(::getpid()));
        journald = std::make_unique<custguard::events::testing::ScratchJournald>(
            custguard::events::testing::unique_namespace("smb"));
        journald->start();
        write_policy(zone_extra);
        if (control_plane) {
            fs::create_directories(dir / "dbus");
            bus = std::make_unique<cgtest::PrivateBus>(dir / "dbus");
        }
        if (enforce) daemon = std::make_unique<Custguardd>(dir, dir / "policy.toml", journald->name_space(), bus.get());
        smbd = std::make_unique<ScratchSmbd>(dir / "samba", net->server_ns(), share,
                                             std::vector<const TestUser*>{alice.get(), bob.get()});
        // Listening is not serving: until smbd-notifyd has registered, a tree connect
        // fails with NT_STATUS_NO_MEMORY ("notify_init: No notify daemon around"). Probe
        // with a listing of the share root (opens no zone file, so records nothing).
        const auto deadline = Clock::now() + 20s;
        for (;;) {
            auto probe = smbclient(*alice, "ls public.txt");
            if (probe.status == 0) break;
            if (Clock::now() > deadline)
                throw std::runtime_error("smbd did not serve the share within 20 s: " + probe.output + "\n" + smbd->log());
            std::this_thread::sleep_for(100ms);
        }
    } catch (...) {
        cleanup();
        throw;
    }
}

Scene::~Scene() { cleanup(); }

void Scene::cleanup() {
    daemon.reset();
    bus.reset();
    smbd.reset();
    journald.reset();
    net.reset();
    if (mounted_) ::umount2(share.c_str(), MNT_DETACH);
    mounted_ = false;
    bob.reset();
    alice.reset();
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
}

void Scene::write_policy(const std::string& zone_extra) {
    spit(dir / "policy.toml", fmt::format(R"([daemon]
enforcer = "fanotify"

[[zone]]
name = "customers"
paths = ["{}"]
sensitivity = "personal"
on_violation = "deny"
record_allowed = true
allow_users = ["{}"]
allow_programs = ["/usr/sbin/smbd"]
{}
)",
                                          zone.string(), alice->name(), zone_extra));
}

Result Scene::smbclient_from(const std::string& ns, const std::string& server_ip, const TestUser& user,
                             const std::string& commands) {
    return run({"/usr/bin/smbclient", "//" + server_ip + "/share", "-s", smbd->client_conf().string(), "-U",
                user.name() + "%" + user.password(), "-c", commands},
               {}, ns, 60s);
}

Result Scene::smbclient(const TestUser& user, const std::string& commands) {
    return smbclient_from(net->client_ns(), net->server_ip(), user, commands);
}

cgtest::RunResult Scene::ctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {CG_CUSTGUARDCTL};
    argv.insert(argv.end(), args.begin(), args.end());
    return cgtest::run(argv, {bus->env()}, std::nullopt, 30s);
}

std::vector<custguard::events::testing::JournalEntry> Scene::records_for(const fs::path& path) {
    return journald->read("CUSTGUARD_PATH=" + path.string());
}

std::optional<custguard::events::testing::JournalEntry> Scene::wait_record(const fs::path& path, const std::string& user,
                                                                            const std::string& event,
                                                                            std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    do {
        for (auto& e : records_for(path))
            if (e["CUSTGUARD_USER"] == user && e["CUSTGUARD_EVENT"] == event && e["CUSTGUARD_OPERATION"] == "open")
                return e;
        std::this_thread::sleep_for(50ms);
    } while (Clock::now() < deadline);
    return std::nullopt;
}

std::string Scene::diagnostics() const {
    std::string out;
    if (daemon) out += "--- custguardd log\n" + daemon->log();
    if (smbd) out += "--- smbd log\n" + smbd->log();
    if (journald) {
        out += "--- custguard records in the journal\n";
        try {
            for (const auto& e : journald->read("")) {
                auto ev = e.find("CUSTGUARD_EVENT");
                if (ev == e.end()) continue;
                for (const char* k : {"CUSTGUARD_EVENT", "CUSTGUARD_PATH", "CUSTGUARD_USER", "CUSTGUARD_PID",
                                      "CUSTGUARD_EXE", "CUSTGUARD_CLIENT"}) {
                    auto it = e.find(k);
                    out += fmt::format("{}={} ", k, it == e.end() ? "(none)" : it->second);
                }
                out += "\n";
            }
        } catch (const std::exception& ex) {
            out += std::string("cannot read: ") + ex.what() + "\n";
        }
    }
    return out;
}

}  // namespace cgsmb
