// BPF-LSM enforcer against users who make their own mount namespaces: an unprivileged
// user (`unshare -Urm`) binds or overlays a zone and reads through it. Every route must be
// decided as the zone's own files are: the allowed user reads, the other is refused, and
// the record names the zone. Each case asserts that its user namespace and its mounts were
// made, so that a kernel refusing them fails the test instead of passing it. Needs a VM
// that switch_roots (cg-vm-run): the kernel refuses user namespaces to chrooted processes.
#include <catch2/catch.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "enforced.hpp"
#include "resolve.hpp"
#include "vm_support.hpp"

using namespace custguard;
using namespace custguard::vmtest;
using custguard::daemon::AccessEvent;

namespace {

// The tree every route works on, on the guest tmpfs. Made before the policy applies.
struct Tree {
    std::string base;
    std::string parent;  // holds the zone
    std::string zone;    // the zone root: f, sub/g, and <uid>.csv for each user (theirs)
    std::string pub;     // outside every zone: p.txt, linked (a second name of zone/f),
                         // many (a file with more names than the kernel side examines)
    std::string mnt, mnt2;
};

Tree make_tree()
{
    Tree t;
    t.base = fresh_dir("userns");
    t.parent = t.base + "/parent";
    t.zone = t.parent + "/zone";
    t.pub = t.base + "/public";
    t.mnt = t.base + "/mnt";
    t.mnt2 = t.base + "/mnt2";
    for (const auto& d : {t.parent, t.zone, t.zone + "/sub", t.pub, t.mnt, t.mnt2})
        make_dir(d);
    make_dir(t.base + "/scratch", 0711);
    write_file(t.zone + "/f", "name,phone\n");
    // A copy-up in a user namespace keeps the file's owner, who must be mapped there.
    for (const auto* who : {&k_alice, &k_bob}) {
        const std::string own = t.zone + "/" + std::to_string(who->uid) + ".csv";
        write_file(own, "name,phone\n");
        REQUIRE(::chown(own.c_str(), who->uid, who->gid) == 0);
    }
    write_file(t.zone + "/sub/g", "name,phone\n");
    write_file(t.pub + "/p.txt", "public\n");
    REQUIRE(::link((t.zone + "/f").c_str(), (t.pub + "/linked").c_str()) == 0);
    write_file(t.pub + "/many", "public\n");
    for (int i = 0; i < 10; ++i)
        REQUIRE(::link((t.pub + "/many").c_str(), (t.pub + "/many" + std::to_string(i)).c_str()) == 0);
    return t;
}

// An overlay's upper, work and empty lower directories, owned by the user who mounts it.
// low_elsewhere is on another filesystem (/dev/shm): with all layers on one filesystem
// overlayfs gives its directories the real inode numbers, which can make a walk of the
// overlay's own path meet a zone root by accident.
struct Scratch {
    std::string up, wk, low, low_elsewhere;
};

Scratch make_scratch(const Tree& t, const Creds& who, std::size_t route)
{
    const std::string name = std::to_string(who.uid) + "-" + std::to_string(route);
    const std::string d = t.base + "/scratch/" + name;
    const std::string shm = "/dev/shm/cgvm-userns";
    make_dir(shm, 0711);
    Scratch s{d + "/up", d + "/wk", d + "/low", shm + "/" + name};
    std::filesystem::remove_all(s.low_elsewhere);
    for (const auto& p : {d, s.up, s.wk, s.low, s.low_elsewhere}) {
        make_dir(p, 0700);
        REQUIRE(::chown(p.c_str(), who.uid, who.gid) == 0);
    }
    return s;
}

// One mount(2) call, its strings built before the fork.
struct Mount {
    std::string src, dst;
    const char* type = nullptr;
    unsigned long flags = 0;
    std::string data;

    // In the child.
    bool run() const noexcept
    {
        return ::mount(src.c_str(), dst.c_str(), type, flags, data.empty() ? nullptr : data.c_str()) == 0;
    }
    std::string what() const { return "mount " + src + " on " + dst + " (" + data + ")"; }
};

Mount bind_mount(const std::string& src, const std::string& dst, unsigned long flags = MS_BIND)
{
    return {src, dst, nullptr, flags, {}};
}

Mount overlay(const std::string& dst, const std::string& lower, const std::string& upper = {},
              const std::string& work = {})
{
    std::string o = "lowerdir=" + lower;
    if (!upper.empty())
        o += ",upperdir=" + upper + ",workdir=" + work;
    return {"cgvm-overlay", dst, "overlay", 0, o};
}

int read_errno(const char* path, int flags = O_RDONLY)
{
    const int fd = ::open(path, flags);
    if (fd < 0)
        return errno;
    char buf[64];
    const int rc = ::read(fd, buf, sizeof buf) < 0 ? errno : 0;
    ::close(fd);
    return rc;
}

// What the child does in the namespace: the route's mounts, then a read through it. Built
// before the fork: the enforcer's threads run in this process and the child makes system
// calls only (see tests/support/exec_plan.hpp).
struct Plan {
    std::vector<Mount> mounts;
    std::string path;
    int flags = O_RDONLY;
    bool via_o_path = false;  // read /proc/self/fd/N of an O_PATH descriptor of `path`

    // In the child: 0 or the errno.
    int read() const noexcept
    {
        if (!via_o_path)
            return read_errno(path.c_str(), flags);
        const int pfd = ::open(path.c_str(), O_PATH);
        if (pfd < 0)
            return 100;  // O_PATH must not be what fails
        char via[32];
        return read_errno(proc_fd_path(pfd, via));
    }
};

struct Route {
    const char* name;
    // The route's mounts inside the namespace and the read through them as `uid`.
    std::function<Plan(const Tree&, const Scratch&, std::uint32_t uid)> plan;
    // The real file behind that read (its inode is what the record names).
    std::function<std::string(const Tree&, std::uint32_t uid)> file;
};

// What happened in the namespace, as the child reports it.
struct Outcome {
    bool userns = false;   // a new user namespace with the user mapped to its root
    bool mounted = false;  // every mount of the route succeeded
    int open_errno = -1;   // the read through the route
    std::string failure;
};

bool write_text(const char* path, const std::string& text)
{
    const int fd = ::open(path, O_WRONLY);
    if (fd < 0)
        return false;
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ::close(fd);
    return ok;
}

// As `who`: unshare -Urm, the route's mounts, the read; reported over a pipe.
Outcome through_userns(const Creds& who, const Tree& t, const Scratch& s, const Route& r)
{
    const Plan plan = r.plan(t, s, who.uid);
    const Mount private_root{"none", "/", nullptr, MS_REC | MS_PRIVATE, {}};
    const std::string deny = "deny", uid_map = "0 " + std::to_string(who.uid) + " 1",
                      gid_map = "0 " + std::to_string(who.gid) + " 1";
    // The child's report: fixed size, no formatting in the child.
    enum class Stage { done, unshare, id_maps, not_root, private_root, route_mount };
    struct Report {
        int userns = 0, mounted = 0, open_errno = -1;
        Stage stage = Stage::done;
        int err = 0;
        std::size_t mount = 0;  // the route's mount that failed
    };
    int p[2];
    REQUIRE(::pipe(p) == 0);
    const int rc = run_as(who, [&] {
        ::close(p[0]);
        Report rep;
        auto report = [&](Stage stage, int err) {
            rep.stage = stage;
            rep.err = err;
            (void)!::write(p[1], &rep, sizeof rep);
            return 0;
        };
        // Dropping root made the process undumpable, which hands /proc/self/uid_map to root.
        ::prctl(PR_SET_DUMPABLE, 1);
        struct stat before {}, after {};
        if (::stat("/proc/self/ns/user", &before) != 0 || ::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
            return report(Stage::unshare, errno);
        if (!write_text("/proc/self/setgroups", deny) || !write_text("/proc/self/uid_map", uid_map) ||
            !write_text("/proc/self/gid_map", gid_map))
            return report(Stage::id_maps, errno);
        rep.userns = ::stat("/proc/self/ns/user", &after) == 0 && after.st_ino != before.st_ino &&
                     ::geteuid() == 0;
        if (!rep.userns)
            return report(Stage::not_root, 0);
        if (!private_root.run())
            return report(Stage::private_root, errno);
        for (; rep.mount < plan.mounts.size(); ++rep.mount)
            if (!plan.mounts[rep.mount].run())
                return report(Stage::route_mount, errno);
        rep.mounted = 1;
        rep.open_errno = plan.read();
        return report(Stage::done, 0);
    });
    ::close(p[1]);
    Report rep;
    const ssize_t n = ::read(p[0], &rep, sizeof rep);
    ::close(p[0]);
    INFO("child status " << rc << ", report of " << n << " bytes");
    REQUIRE(rc == 0);
    REQUIRE(n == static_cast<ssize_t>(sizeof rep));
    Outcome o;
    o.userns = rep.userns;
    o.mounted = rep.mounted;
    o.open_errno = rep.open_errno;
    const std::string why = rep.err ? std::string(": ") + std::strerror(rep.err) : std::string();
    switch (rep.stage) {
    case Stage::unshare: o.failure = "unshare" + why; break;
    case Stage::id_maps: o.failure = "id maps" + why; break;
    case Stage::not_root: o.failure = "not root in a new user namespace"; break;
    case Stage::private_root: o.failure = private_root.what() + why; break;
    case Stage::route_mount: o.failure = plan.mounts.at(rep.mount).what() + why; break;
    case Stage::done: break;
    }
    return o;
}

Plan read_at(std::vector<Mount> mounts, std::string path, int flags = O_RDONLY)
{
    return {std::move(mounts), std::move(path), flags, false};
}

const std::vector<Route>& routes()
{
    static const std::vector<Route> table = {
        {"bind mount of the zone",
         [](const Tree& t, const Scratch&, std::uint32_t) {
             return read_at({bind_mount(t.zone, t.mnt)}, t.mnt + "/f");
         },
         [](const Tree& t, std::uint32_t) { return t.zone + "/f"; }},
        {"bind mount of a parent of the zone",
         [](const Tree& t, const Scratch&, std::uint32_t) {
             return read_at({bind_mount(t.parent, t.mnt, MS_BIND | MS_REC)}, t.mnt + "/zone/f");
         },
         [](const Tree& t, std::uint32_t) { return t.zone + "/f"; }},
        {"overlay, the zone as lowerdir",
         [](const Tree& t, const Scratch& s, std::uint32_t) {
             return read_at({overlay(t.mnt, t.zone, s.up, s.wk)}, t.mnt + "/f");
         },
         [](const Tree& t, std::uint32_t) { return t.zone + "/f"; }},
        {"overlay, the zone among read-only lowerdirs",
         [](const Tree& t, const Scratch& s, std::uint32_t) {
             return read_at({overlay(t.mnt, s.low + ":" + t.zone)}, t.mnt + "/sub/g");
         },
         [](const Tree& t, std::uint32_t) { return t.zone + "/sub/g"; }},
        {"overlay, the zone as upperdir",
         [](const Tree& t, const Scratch& s, std::uint32_t) {
             return read_at({overlay(t.mnt, s.low, t.zone, s.wk)}, t.mnt + "/f");
         },
         [](const Tree& t, std::uint32_t) { return t.zone + "/f"; }},
        {"overlay, the zone as upperdir over a lower layer on another filesystem",
         [](const Tree& t, const Scratch& s, std::uint32_t) {
             return read_at({overlay(t.mnt, s.low_elsewhere, t.zone, s.wk)}, t.mnt + "/sub/g");
         },
         [](const Tree& t, std::uint32_t) { return t.zone + "/sub/g"; }},
        {"overlay, a zone file copied up by opening it for writing",
         [](const Tree& t, const Scratch& s, std::uint32_t uid) {
             return read_at({overlay(t.mnt, t.zone, s.up, s.wk)}, t.mnt + "/" + std::to_string(uid) + ".csv", O_RDWR);
         },
         [](const Tree& t, std::uint32_t uid) { return t.zone + "/" + std::to_string(uid) + ".csv"; }},
        {"overlay mounted over a directory inside the zone",
         [](const Tree& t, const Scratch& s, std::uint32_t) {
             return read_at({overlay(t.zone + "/sub", t.zone + "/sub", s.up, s.wk)}, t.zone + "/sub/g");
         },
         [](const Tree& t, std::uint32_t) { return t.zone + "/sub/g"; }},
        {"overlay of an overlay of the zone",
         [](const Tree& t, const Scratch& s, std::uint32_t) {
             return read_at({overlay(t.mnt, s.low + ":" + t.zone), overlay(t.mnt2, t.mnt, s.up, s.wk)}, t.mnt2 + "/f");
         },
         [](const Tree& t, std::uint32_t) { return t.zone + "/f"; }},
        {"overlay moved elsewhere (mount --move)",
         [](const Tree& t, const Scratch& s, std::uint32_t) {
             return read_at({overlay(t.mnt, t.zone, s.up, s.wk), Mount{t.mnt, t.mnt2, nullptr, MS_MOVE, {}}},
                            t.mnt2 + "/f");
         },
         [](const Tree& t, std::uint32_t) { return t.zone + "/f"; }},
        {"/proc/self/fd of an O_PATH descriptor opened through an overlay",
         [](const Tree& t, const Scratch& s, std::uint32_t) {
             return Plan{{overlay(t.mnt, t.zone, s.up, s.wk)}, t.mnt + "/f", O_RDONLY, true};
         },
         [](const Tree& t, std::uint32_t) { return t.zone + "/f"; }},
        {"overlay of a directory outside the zone holding a second name of a zone file",
         [](const Tree& t, const Scratch& s, std::uint32_t) {
             return read_at({overlay(t.mnt, t.pub, s.up, s.wk)}, t.mnt + "/linked");
         },
         [](const Tree& t, std::uint32_t) { return t.zone + "/f"; }},
    };
    return table;
}

bool names_zone(const AccessEvent& ev, std::uint32_t uid, std::uint32_t decision,
                const daemon::bpf_lsm::InodeId& file)
{
    return ev.raw.kind == CG_EV_OPEN && ev.raw.uid == uid && ev.raw.decision == decision &&
           ev.raw.zone_id == 1 && ev.raw.rule != CG_RULE_ZONE_UNKNOWN && ev.raw.ino == file.ino &&
           ev.raw.dev == file.dev;
}

}  // namespace

TEST_CASE("user namespaces: bind and overlay routes into a zone are decided as the zone", "[vm][userns]")
{
    const Tree t = make_tree();
    Enforced e(make_policy({ZoneSpec{{t.zone}, {k_alice.uid}}}));

    std::size_t index = 0;
    for (const auto& r : routes()) {
        ++index;
        for (const auto* who : {&k_alice, &k_bob}) {
            const bool allowed = who == &k_alice;
            INFO("route: " << r.name << "; user " << who->uid);
            const auto file = daemon::bpf_lsm::inode_of(r.file(t, who->uid));
            REQUIRE(file);
            e.events.clear();
            const Outcome o = through_userns(*who, t, make_scratch(t, *who, index), r);
            INFO("failure: " << o.failure);
            CHECK(o.userns);
            CHECK(o.mounted);
            if (!o.userns || !o.mounted)
                continue;  // failed above; the other routes still run
            CHECK(o.open_errno == (allowed ? 0 : EPERM));
            CHECK(e.events.wait_for([&](const AccessEvent& ev) {
                return names_zone(ev, who->uid, allowed ? CG_DECISION_ALLOW : CG_DECISION_DENY, *file);
            }));
        }
    }
}

TEST_CASE("user namespaces: an overlay of files outside every zone changes nothing", "[vm][userns]")
{
    const Tree t = make_tree();
    Enforced e(make_policy({ZoneSpec{{t.zone}, {k_alice.uid}}}));
    const Route r{"overlay of a directory outside the zone",
                  [](const Tree& t, const Scratch& s, std::uint32_t) {
                      return read_at({overlay(t.mnt, t.pub, s.up, s.wk)}, t.mnt + "/p.txt");
                  },
                  [](const Tree& t, std::uint32_t) { return t.pub + "/p.txt"; }};
    const Outcome o = through_userns(k_bob, t, make_scratch(t, k_bob, 1), r);
    INFO("failure: " << o.failure);
    REQUIRE(o.userns);
    REQUIRE(o.mounted);
    CHECK(o.open_errno == 0);
    // Opened by its own name, a second name of a zone file is decided by that name.
    CHECK(try_read(k_bob, t.pub + "/linked") == 0);
    CHECK(e.enforcer.counters().denied == 0);
}

TEST_CASE("user namespaces: a backing file whose names cannot all be examined is refused and recorded",
          "[vm][userns]")
{
    const Tree t = make_tree();
    Enforced e(make_policy({ZoneSpec{{t.zone}, {k_alice.uid}}}));
    // Eleven names, more than the kernel side examines: which one the overlay opened is
    // unknown, so membership is. The file itself, opened by a name, is outside every zone.
    CHECK(try_read(k_bob, t.pub + "/many") == 0);
    const Route r{"overlay of a file with eleven names",
                  [](const Tree& t, const Scratch& s, std::uint32_t) {
                      return read_at({overlay(t.mnt, t.pub, s.up, s.wk)}, t.mnt + "/many");
                  },
                  [](const Tree& t, std::uint32_t) { return t.pub + "/many"; }};
    const auto file = daemon::bpf_lsm::inode_of(t.pub + "/many");
    REQUIRE(file);
    for (const auto* who : {&k_alice, &k_bob}) {
        INFO("user " << who->uid);
        const Outcome o = through_userns(*who, t, make_scratch(t, *who, 1), r);
        INFO("failure: " << o.failure);
        REQUIRE(o.userns);
        REQUIRE(o.mounted);
        CHECK(o.open_errno == EPERM);
        CHECK(e.events.wait_for([&](const AccessEvent& ev) {
            return ev.raw.kind == CG_EV_OPEN && ev.raw.uid == who->uid &&
                   ev.raw.decision == CG_DECISION_DENY && ev.raw.rule == CG_RULE_ZONE_UNKNOWN &&
                   ev.raw.zone_id == 0 && ev.raw.ino == file->ino;
        }));
    }
}

TEST_CASE("user namespaces: the issue's commands (unshare -Urm, mount, cat)", "[vm][userns]")
{
    const Tree t = make_tree();
    Enforced e(make_policy({ZoneSpec{{t.zone}, {k_alice.uid}}}));
    const auto file = daemon::bpf_lsm::inode_of(t.zone + "/f");
    REQUIRE(file);
    std::size_t index = 0;
    for (const bool use_overlay : {false, true}) {
        for (const auto* who : {&k_alice, &k_bob}) {
            const Scratch s = make_scratch(t, *who, ++index);
            const std::string mount =
                use_overlay ? "mount -t overlay -o lowerdir=" + t.zone + ",upperdir=" + s.up +
                                  ",workdir=" + s.wk + " cgvm " + t.mnt
                            : "mount --bind " + t.zone + " " + t.mnt;
            // Exit 10/11: no namespace or no mount, which must fail the test.
            const std::string script = "[ \"$(id -u)\" = 0 ] || exit 10; " + mount +
                                       " || exit 11; exec cat " + t.mnt + "/f";
            INFO((use_overlay ? "overlay" : "bind") << ", user " << who->uid << ": " << script);
            e.events.clear();
            const int rc = exec_as(*who, {"/usr/bin/unshare", "-Urm", "/bin/sh", "-c", script});
            const bool allowed = who == &k_alice;
            CHECK(rc == (allowed ? 0 : 1));  // cat: 1 when the open fails
            CHECK(e.events.wait_for([&](const AccessEvent& ev) {
                return names_zone(ev, who->uid, allowed ? CG_DECISION_ALLOW : CG_DECISION_DENY, *file);
            }));
        }
    }
}
