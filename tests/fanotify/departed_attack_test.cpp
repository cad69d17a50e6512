// The sweep of the fanotify enforcer's departed table (sweep_departed(): entries whose file
// handle opens no file any more are retired) against a user who moved or linked zone files
// out and wants to read one once the sweep has forgotten it: the file held only by an O_PATH
// descriptor (all names gone), by a descriptor in flight in a unix socket, re-linked from
// /proc/self/fd, renamed about, reached through a bind or overlay mount in a user namespace,
// held by a bind mount of the file itself once nameless; each one tried all along while
// thousands of other departed files are created and deleted around it, so that sweeps run
// while she tries.
// Each route is a row; an open that reads the file is one through, and none may pass.
// Not a row: open_by_handle_at(), which the kernel refuses her (EPERM on 6.18 even for her
// own file through her own bind mount in her user namespace), and which would be an open
// the enforcer judges like any other.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "daemon/fanotify/fanotify_enforcer.hpp"
#include "enforced.hpp"

using namespace std::chrono_literals;
using cgtest::alice;
using cgtest::Cred;
using cgtest::mallory;

namespace {

struct Env {
    cgtest::Tmpfs fs;
    cgtest::Collector events;
    std::unique_ptr<custguard::daemon::FanotifyEnforcer> enforcer;

    Env() {
        REQUIRE(fs.ok());
        for (auto d : {"zone", "out", "mnt", "empty"}) fs.mkdir(d, 0777);
        enforcer = cgtest::start_enforcer(events, cgtest::one_zone(fs), {});
    }
    ~Env() {
        if (enforcer) enforcer->stop(true);
    }
    // Waits until the notify thread has handled what was queued.
    void settle() const { REQUIRE(enforcer->wait_notifications(20s)); }
};

// Descriptor numbers in a route's child, fixed so that every path is built before fork.
constexpr int held_fd = 100, sock_in = 102, sock_out = 103, ready_fd = 250, stop_fd = 251;

// What a route's child knows: its paths (built before the fork) and what it made.
struct Paths {
    const char* zone;    // the zone file, made by mallory
    const char* out;     // its name outside, once linked or moved out
    const char* out2;    // another name outside
    const char* mnt;     // a directory mallory may mount on (in her namespace)
    const char* via_mnt;  // the file through `mnt` once the outside directory is bound there
    const char* outdir;  // the outside directory
    const char* held;    // "/proc/self/fd/<held_fd>"
    const char* uid_map;
    const char* gid_map;
    const char* overlay;  // options of an overlay whose lower layer is the outside directory
};


int read_fd(int fd) {
    if (fd < 0) return errno;
    char b;
    const bool ok = ::read(fd, &b, 1) == 1;
    const int e = errno;
    ::close(fd);
    return ok ? 0 : (e ? e : EIO);
}
int read_path(const char* p) { return read_fd(::open(p, O_RDONLY | O_CLOEXEC)); }
int err(bool ok) { return ok ? 0 : (errno ? errno : EIO); }

// Hard link out and wait for the notify thread to judge it (the mover must be alive to
// be identified; a mover gone is kept in the zone all the same).
int link_out(const Paths& p) { return err(::link(p.zone, p.out) == 0 && ::usleep(500'000) == 0); }
int move_out(const Paths& p) { return err(::rename(p.zone, p.out) == 0 && ::usleep(500'000) == 0); }
// After move_out(): its one name, outside.
int unlink_out(const Paths& p) { return err(::unlink(p.out) == 0); }
int hold(const char* path) {
    const int fd = ::open(path, O_PATH | O_CLOEXEC);
    return err(fd >= 0 && ::dup2(fd, held_fd) == held_fd && ::close(fd) == 0);
}
bool write_to(const char* file, const char* text) {
    const int fd = ::open(file, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    const auto n = std::strlen(text);
    const bool ok = ::write(fd, text, n) == static_cast<ssize_t>(n);
    ::close(fd);
    return ok;
}
// As `unshare -Urm`: mallory is root in a user namespace of her own, with its mount namespace.
int own_userns(const Paths& p) {
    ::prctl(PR_SET_DUMPABLE, 1);  // setresuid left /proc/self/*_map owned by root
    return err(::unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0 && write_to("/proc/self/setgroups", "deny") &&
               write_to("/proc/self/uid_map", p.uid_map) && write_to("/proc/self/gid_map", p.gid_map));
}
// A one-byte message with room for one descriptor (SCM_RIGHTS), on the stack: the
// children that pass descriptors must not allocate.
struct FdMessage {
    char byte = 0;
    iovec iov{&byte, 1};
    alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))] = {};
    msghdr m{};
    FdMessage() {
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = ctl;
        m.msg_controllen = sizeof ctl;
    }
    FdMessage(const FdMessage&) = delete;  // m points into it
    FdMessage& operator=(const FdMessage&) = delete;
};
bool send_fd(int sock, int fd) {
    FdMessage f;
    cmsghdr* c = CMSG_FIRSTHDR(&f.m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    return ::sendmsg(sock, &f.m, 0) == 1;
}
int recv_fd(int sock) {
    FdMessage f;
    if (::recvmsg(sock, &f.m, MSG_CMSG_CLOEXEC) != 1) return -1;
    cmsghdr* c = CMSG_FIRSTHDR(&f.m);
    if (!c || c->cmsg_type != SCM_RIGHTS) return -1;
    int fd = -1;
    std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

// Steps of a route's preparation, each 0 or the errno it stopped at.
int unlink_zone(const Paths& p) { return err(::unlink(p.zone) == 0); }
int unlink_both(const Paths& p) { return err(::unlink(p.zone) == 0 && ::unlink(p.out) == 0); }
int bind_out(const Paths& p) { return err(::mount(p.outdir, p.mnt, nullptr, MS_BIND, nullptr) == 0); }
// The file itself bound over out2 (a file of hers), the mount holding it once nameless.
int bind_file(const Paths& p) {
    return err(::mknod(p.out2, S_IFREG | 0644, 0) == 0 && ::mount(p.out, p.out2, nullptr, MS_BIND, nullptr) == 0);
}
int overlay_out(const Paths& p) { return err(::mount("overlay", p.mnt, "overlay", 0, p.overlay) == 0); }
// Every name unlinked, the file held only in flight in a unix socket (sock_in to sock_out).
int in_flight(const Paths&) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) != 0) return errno;
    if (::dup2(sv[0], sock_in) != sock_in || ::dup2(sv[1], sock_out) != sock_out) return errno;
    ::close(sv[0]);
    ::close(sv[1]);
    if (!send_fd(sock_in, held_fd)) return errno ? errno : EIO;
    ::close(held_fd);
    return 0;
}

using Step = int (*)(const Paths&);
// Runs the steps in order; the first errno stops it.
template <Step... S>
int steps(const Paths& p) {
    int e = 0;
    ((e = e ? e : S(p)), ...);
    return e;
}
int hold_out(const Paths& p) { return hold(p.out); }

int read_out(const Paths& p) { return read_path(p.out); }
int read_out2(const Paths& p) { return read_path(p.out2); }
int read_held(const Paths& p) { return read_path(p.held); }
int read_via_mnt(const Paths& p) { return read_path(p.via_mnt); }
int rename_out(const Paths& p) { return err(::rename(p.out, p.out2) == 0); }
// Takes the descriptor out of the socket, reopens it, and puts it back in flight.
int read_in_flight(const Paths& p) {
    const int fd = recv_fd(sock_out);
    if (fd < 0 || ::dup2(fd, held_fd) != held_fd) return errno ? errno : EIO;
    ::close(fd);
    const int r = read_path(p.held);
    const bool back = send_fd(sock_in, held_fd);
    ::close(held_fd);
    return back ? r : EIO;
}
// A name again for the nameless file (linkat of /proc/self/fd follows the magic link).
int link_back_and_read(const Paths& p) {
    if (::linkat(AT_FDCWD, p.held, AT_FDCWD, p.out2, AT_SYMLINK_FOLLOW) != 0) return errno;
    const int r = read_path(p.out2);
    ::unlink(p.out2);
    return r;
}

struct Route {
    const char* label;
    Step prepare;  // 0 once the route is set up
    Step attempt;  // 0 when it read the zone file
    int refused_by = EPERM;  // the errno of a try: EPERM is the enforcer's refusal
};

const Route routes[] = {
    {"moved out, read by its name outside", steps<move_out>, read_out},
    {"linked out, zone name unlinked, read by the outside name", steps<link_out, unlink_zone>, read_out},
    {"linked out, zone name unlinked, outside name renamed (the entry is by inode)",
     steps<link_out, unlink_zone, rename_out>, read_out2},
    {"linked out, every name unlinked, held by O_PATH, reopened by /proc/self/fd",
     steps<link_out, hold_out, unlink_both>, read_held},
    {"moved out, name unlinked, held by O_PATH, reopened by /proc/self/fd",
     steps<move_out, hold_out, unlink_out>, read_held},
    {"every name unlinked, held only in flight in a unix socket (SCM_RIGHTS) between tries",
     steps<link_out, hold_out, in_flight, unlink_both>, read_in_flight},
    {"every name unlinked, held by O_PATH, linked back from /proc/self/fd and read",
     steps<link_out, hold_out, unlink_both>, link_back_and_read, ENOENT},
    {"linked out, zone name unlinked, read through a bind mount in her user namespace",
     steps<link_out, unlink_zone, own_userns, bind_out>, read_via_mnt},
    {"linked out, bound over a file of hers in her user namespace, every name unlinked, read through the mount",
     steps<link_out, own_userns, bind_file, unlink_both>, read_out2},
    {"linked out, zone name unlinked, read through an overlay in her user namespace (outside as the lower layer)",
     steps<link_out, unlink_zone, own_userns, overlay_out>, read_via_mnt},
};

// A route's child, as mallory: prepares, reports on `ready` (one byte: the errno, 0 when
// set up), then tries every 5 ms until `stop` is closed, and once more after, whose errno
// it reports on `ready` too. Its exit status is the number of tries that read the file (at
// most 100); 120 when it could not become mallory.
pid_t start_route(const Route& r, const Paths& p, int ready, int stop) {
    const pid_t pid = ::fork();
    if (pid != 0) return pid;
    ::alarm(300);  // never hang a test run
    if (::dup2(ready, ready_fd) != ready_fd || ::dup2(stop, stop_fd) != stop_fd) ::_exit(121);
    // Inherited descriptors include the fanotify group: holding it, this child would wait
    // forever for an answer if the test process died.
    ::close_range(3, ready_fd - 1, 0);
    ::close_range(stop_fd + 1, ~0u, 0);
    if (::setgroups(0, nullptr) != 0 || ::setresgid(mallory.gid, mallory.gid, mallory.gid) != 0 ||
        ::setresuid(mallory.uid, mallory.uid, mallory.uid) != 0)
        ::_exit(120);
    const auto e = static_cast<unsigned char>(std::min(r.prepare(p), 255));
    if (::write(ready_fd, &e, 1) != 1 || e != 0) ::_exit(122);
    int through = 0, last = 0;
    for (;;) {
        if ((last = r.attempt(p)) == 0) ++through;
        pollfd pf{stop_fd, POLLIN, 0};
        if (::poll(&pf, 1, 5) != 0) break;  // closed: the sweeps are over
    }
    if ((last = r.attempt(p)) == 0) ++through;
    const auto l = static_cast<unsigned char>(std::min(last, 255));
    (void)!::write(ready_fd, &l, 1);
    ::_exit(std::min(through, 100));
}

}  // namespace

TEST_CASE("departed attack: no zone file linked or moved out is readable while sweeps retire deleted ones",
          "[fanotify][host][departed]") {
    REQUIRE_ROOT();
    Env env;
    constexpr std::size_t n = std::size(routes);
    // Every path of every route, built before any fork.
    std::vector<std::array<std::string, 4>> strs(n);
    std::vector<Paths> paths(n);
    const std::string uid_map = "0 " + std::to_string(mallory.uid) + " 1\n",
                      gid_map = "0 " + std::to_string(mallory.gid) + " 1\n",
                      held = "/proc/self/fd/" + std::to_string(held_fd), outdir = env.fs.path("out"),
                      mnt = env.fs.path("mnt"), overlay = "lowerdir=" + outdir + ":" + env.fs.path("empty");
    for (std::size_t i = 0; i < n; ++i) {
        const std::string r = "r" + std::to_string(i);
        strs[i] = {env.fs.path("zone/" + r), env.fs.path("out/" + r), env.fs.path("out/" + r + "b"),
                   env.fs.path("mnt/" + r)};
        paths[i] = {strs[i][0].c_str(), strs[i][1].c_str(), strs[i][2].c_str(), mnt.c_str(),
                    strs[i][3].c_str(), outdir.c_str(), held.c_str(), uid_map.c_str(), gid_map.c_str(), overlay.c_str()};
        // Written by root before mallory moves it: what she must not read.
        env.fs.write("zone/" + r);
        ::chmod(strs[i][0].c_str(), 0666);
    }
    // The routes' children, each set up before the churn starts.
    std::vector<pid_t> pids(n);
    std::vector<int> stops(n), readies(n);
    for (std::size_t i = 0; i < n; ++i) {
        int ready[2], stop[2];
        REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
        REQUIRE(::pipe2(stop, O_CLOEXEC) == 0);
        pids[i] = start_route(routes[i], paths[i], ready[1], stop[0]);
        ::close(ready[1]);
        ::close(stop[0]);
        stops[i] = stop[1];
        unsigned char e = 255;
        const bool got = ::read(ready[0], &e, 1) == 1;
        readies[i] = ready[0];
        INFO("route " << routes[i].label << ": set up " << (got ? std::strerror(e) : "never"));
        REQUIRE(got);
        REQUIRE(e == 0);
    }
    env.settle();
    const auto before = env.enforcer->stats();
    // Churn: mallory links zone files out and deletes both names, 1,000 at a time, until the
    // indexer has swept three times (each retires about 4,000, the table past 4,096).
    const std::string zone = env.fs.path("zone"), out = env.fs.path("out");
    std::vector<std::string> zs, os;
    constexpr int batch = 1000, rounds = 16;
    for (int i = 0; i < batch * rounds; ++i) {
        zs.push_back(zone + "/c" + std::to_string(i));
        os.push_back(out + "/c" + std::to_string(i));
    }
    int done = 0;
    for (; done < rounds && env.enforcer->stats().departed_swept - before.departed_swept < 3 * 4000; ++done) {
        const int from = done * batch, to = from + batch;
        REQUIRE(cgtest::run_as(mallory, [&] {
            for (int i = from; i < to; ++i)
                if (::mknod(zs[i].c_str(), S_IFREG | 0666, 0) != 0 || ::link(zs[i].c_str(), os[i].c_str()) != 0)
                    return errno;
            return 0;
        }) == 0);
        env.settle();
        for (int i = from; i < to; ++i) {
            ::unlink(zs[i].c_str());
            ::unlink(os[i].c_str());
        }
    }
    std::this_thread::sleep_for(300ms);  // the last sweep, if one is under way
    const auto after = env.enforcer->stats();
    for (int s : stops) ::close(s);
    int total = 0;
    for (std::size_t i = 0; i < n; ++i) {
        int status = 0;
        REQUIRE(::waitpid(pids[i], &status, 0) == pids[i]);
        const int through = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        unsigned char last = 255;
        REQUIRE(::read(readies[i], &last, 1) == 1);
        ::close(readies[i]);
        INFO("route: " << routes[i].label << ": " << through << " opens through, the last try " << std::strerror(last));
        CHECK(through == 0);
        // The kernel lets each try reach the enforcer, which refuses it: a route that failed
        // on its own would prove nothing.
        CHECK(last == routes[i].refused_by);
        total += through;
    }
    INFO("rounds " << done << ", swept " << after.departed_swept - before.departed_swept << ", departed now "
                   << after.departed << ", opens through " << total);
    // The churn did make the sweeps it is meant to race.
    CHECK(after.departed_swept - before.departed_swept >= 2 * 4096);
    // alice, allowed in the zone, still reads the files left by name (they are zone files).
    CHECK(cgtest::open_as(alice, strs[0][1]) == 0);
}
