// The [watch] host tests' harness (root): the real custguardd with the fanotify enforcer and
// its notification watcher on a private tmpfs, a scratch journald read back with
// sd-journal, and the test users. Shared by watch_host_test.cpp and watch_attack_test.cpp.
#pragma once

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "scratch_journald.hpp"
#include "support/exec_plan.hpp"
#include "support/support.hpp"

namespace cgwatch {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using custguard::events::testing::JournalEntry;
using custguard::events::testing::ScratchJournald;


inline bool private_mounts() {
    static const bool ok = ::geteuid() == 0 && ::unshare(CLONE_NEWNS) == 0 &&
                           ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
    return ok;
}

struct Users {
    cgtest::Cred alice;  // allowed in zone customers
    cgtest::Cred bob;    // allowed nowhere
};
inline const Users& users() {
    static const Users u{cgtest::ensure_user("cgwatch-alice"), cgtest::ensure_user("cgwatch-bob")};
    return u;
}

// Synthetic customer rows: contact data the detectors find (e-mail, Japanese phone numbers).
inline std::string customer_csv(int rows, int seed) {
    std::ostringstream out;
    out << "customer_id,name,phone,mail\n";
    for (int i = 0; i < rows; ++i)
        out << seed * 1000 + i << ",山田" << i << ",03-" << 5000 + (i + seed) % 4000 << "-" << 1000 + i % 9000 << ",user"
            << seed << "x" << i << "@example.co.jp\n";
    return out.str();
}

class Watch {
public:
    // public_own_fs: the watched folder on a tmpfs of its own, where the enforcer (which
    // watches the zones' filesystem) has no marks: writes there need no answer from it.
    explicit Watch(const std::string& watch_table, bool public_own_fs = false) {
        if (!private_mounts()) throw std::runtime_error("needs root and a private mount namespace");
        users();
        char tmpl[] = "/tmp/cgwatch.XXXXXX";
        if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
        dir_ = tmpl;
        ::chmod(dir_.c_str(), 0755);
        fs::create_directories(data());
        if (::mount("cgwatch", data().c_str(), "tmpfs", 0, "mode=0755,size=64m") != 0)
            throw std::runtime_error("mount tmpfs failed");
        fs::create_directories(data() / "customers");
        if (public_own_fs) {
            // <dir>/outside/{public,staging}: staging is on the same filesystem (mv renames)
            // and not watched.
            fs::create_directories(dir_ / "outside");
            if (::mount("cgwatch-outside", (dir_ / "outside").c_str(), "tmpfs", 0, "mode=0755,size=16m") != 0)
                throw std::runtime_error("mount tmpfs failed");
            public_ = dir_ / "outside" / "public";
            fs::create_directories(dir_ / "outside" / "staging");
            ::chmod((dir_ / "outside" / "staging").c_str(), 01777);
        }
        fs::create_directories(public_dir());
        fs::create_directories(data() / "staging");
        fs::create_directories(dir_ / "state");
        cgtest::spit(data() / "customers" / "list.csv", customer_csv(40, 1));
        cgtest::spit(data() / "customers" / "big.csv", customer_csv(2000, 2));  // > 100 KiB: written in many pieces
        ::chmod((data() / "customers").c_str(), 0755);
        ::chmod(public_dir().c_str(), 01777);
        ::chmod((data() / "staging").c_str(), 01777);
        cgtest::spit(dir_ / "policy.toml",
                     "[daemon]\nenforcer = \"fanotify\"\n\n"
                     "[[zone]]\nname = \"customers\"\npaths = [\"" + (data() / "customers").string() + "\"]\n"
                     "allow_users = [\"cgwatch-alice\"]\n\n"
                     "[watch]\npaths = [\"" + public_dir().string() + "\"]\n" + watch_table);
        journald_ = std::make_unique<ScratchJournald>(custguard::events::testing::unique_namespace("watch"));
        journald_->start();
        start();
    }
    ~Watch() {
        cgtest::kill_and_reap(daemon_);
        journald_.reset();
        if (!public_.empty()) ::umount2((dir_ / "outside").c_str(), MNT_DETACH);
        ::umount2(data().c_str(), MNT_DETACH);
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    fs::path data() const { return dir_ / "data"; }
    fs::path public_dir() const { return public_.empty() ? data() / "public" : public_; }
    fs::path protected_list() const { return dir_ / "state" / "watch" / "protected"; }
    fs::path zone_file(const char* name = "list.csv") const { return data() / "customers" / name; }
    std::string log() const { return cgtest::slurp(dir_ / "custguardd.log"); }

    void start() {
        fs::remove(dir_ / "custguardd.log");  // spawn appends: a restart waits for its own start
        const std::vector<std::string> args = {CG_CUSTGUARDD, "--policy", (dir_ / "policy.toml").string(),
                                               "--state-dir", (dir_ / "state").string(), "--enforcer", "fanotify",
                                               "--no-audit", "--journal-namespace", journald_->name_space()};
        daemon_ = cgtest::spawn(args, {"DBUS_SYSTEM_BUS_ADDRESS=unix:path=" + (dir_ / "no-bus").string(),
                                       "CUSTGUARD_EXTRACT_HELPER=" CG_EXTRACT_HELPER},
                                dir_ / "custguardd.log");
        const auto deadline = std::chrono::steady_clock::now() + 15s;
        while (std::chrono::steady_clock::now() < deadline) {
            if (::waitpid(daemon_, nullptr, WNOHANG) == daemon_) {
                daemon_ = -1;
                throw std::runtime_error("custguardd exited:\n" + log());
            }
            if (log().find("control plane off") != std::string::npos) return;
            std::this_thread::sleep_for(50ms);
        }
        // Not left running: a throw from the constructor runs no destructor.
        cgtest::kill_and_reap(daemon_);
        throw std::runtime_error("custguardd did not come up in 15 s:\n" + log());
    }
    void restart() {
        cgtest::kill_and_reap(daemon_);
        start();
    }
    // SIGSTOP/SIGCONT: the writers of the events queued meanwhile have exited (and been
    // reaped) by the time the watcher reads them.
    void pause() const { ::kill(daemon_, SIGSTOP); }
    void resume() const { ::kill(daemon_, SIGCONT); }

    // The customer_data_found records of `path` (reads of it are recorded too).
    std::vector<JournalEntry> records(const fs::path& path) const {
        std::vector<JournalEntry> out;
        for (auto& e : journald_->read("CUSTGUARD_PATH=" + path.string()))
            if (e.count("CUSTGUARD_EVENT") && e.at("CUSTGUARD_EVENT") == "customer_data_found") out.push_back(std::move(e));
        return out;
    }
    // The records of events the daemon could not follow.
    std::vector<JournalEntry> lost_records() const { return journald_->read("CUSTGUARD_EVENT=lost"); }
    // The first customer_data_found record of `path` within `timeout`, and how long after
    // the call it came.
    std::optional<JournalEntry> wait_record(const fs::path& path, std::chrono::milliseconds& took,
                                            std::chrono::milliseconds timeout = 5s) const {
        const auto t0 = std::chrono::steady_clock::now();
        while (std::chrono::steady_clock::now() - t0 < timeout) {
            if (auto found = records(path); !found.empty()) {
                took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
                return found.front();
            }
            std::this_thread::sleep_for(50ms);
        }
        return std::nullopt;
    }

    static cgtest::RunResult as(const cgtest::Cred& who, const std::string& script) {
        return cgtest::run({"/bin/sh", "-c", script}, {}, who);
    }

private:
    fs::path dir_;
    fs::path public_;  // set when the watched folder has a filesystem of its own
    pid_t daemon_ = -1;
    std::unique_ptr<ScratchJournald> journald_;
};

inline std::string field(const JournalEntry& e, const char* name) {
    auto it = e.find(name);
    return it == e.end() ? std::string() : it->second;
}

// map_shared(fd, n): a shared writable mapping through libc, returning its address (store
// with ctypes.memmove). Python's mmap module keeps a duplicate of the descriptor open,
// which would make "descriptor closed, mapping kept" untrue.
inline const std::string mmap_py =
    "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nlibc.mmap.restype = ctypes.c_void_p\n"
    "libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]\n"
    "libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]\n"
    "def map_shared(fd, n):\n    p = libc.mmap(None, n, 3, 1, fd, 0)\n"
    "    if p is None or p == ctypes.c_void_p(-1).value: raise OSError(ctypes.get_errno(), 'mmap')\n    return p\n";

// Kills the background writer whose pid a test program wrote to `pidfile` (none: nothing to
// do); whether it was still running.
inline bool end_writer(const fs::path& pidfile) {
    pid_t writer = 0;
    try {
        writer = std::stoi(cgtest::slurp(pidfile));
    } catch (const std::exception&) {
    }
    const bool alive = writer > 0 && ::kill(writer, 0) == 0;
    if (writer > 0) ::kill(writer, SIGKILL);
    return alive;
}

}  // namespace cgwatch
