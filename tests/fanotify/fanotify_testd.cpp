// A minimal daemon around the fanotify enforcer for the fd-store tests: adopts the stored
// group if it was passed one, protects ZONE_DIR (only ALLOWED_UID may read), reports
// READY=1 with STATUS=adopted|fresh, and stops on SIGTERM leaving enforcement in place.
//
//   fanotify_testd ZONE_DIR ALLOWED_UID
#include <signal.h>
#include <systemd/sd-daemon.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "daemon/fanotify/fanotify_enforcer.hpp"
#include "daemon/fanotify/fd_store.hpp"

using namespace custguard;

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: fanotify_testd ZONE_DIR ALLOWED_UID\n");
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before any thread starts

    daemon::FanotifyOptions options;
    auto passed = daemon::take_listened_fds();
    if (!passed) {
        std::fprintf(stderr, "fanotify_testd: %s\n", passed.error().c_str());
        return 1;
    }
    if (auto fd = daemon::take_named(*passed, daemon::fanotify_fd_name)) options.adopt = std::move(*fd);
    auto created = daemon::FanotifyEnforcer::create(std::move(options));
    if (!created) {
        std::fprintf(stderr, "fanotify_testd: %s\n", created.error().c_str());
        return 1;
    }
    auto& enforcer = *created;
    if (auto r = enforcer->start([](daemon::AccessEvent&&) {}); !r) {
        std::fprintf(stderr, "fanotify_testd: %s\n", r.error().c_str());
        return 1;
    }
    policy::Compiled c;
    policy::CompiledZone z;
    z.id = 1;
    z.name = "customers";
    c.zones.push_back(z);
    c.roots.push_back({argv[1], 1});
    c.subjects.push_back({1, policy::SubjectKind::uid, static_cast<std::uint32_t>(std::strtoul(argv[2], nullptr, 10))});
    if (auto r = enforcer->apply(c); !r) {
        std::fprintf(stderr, "fanotify_testd: %s\n", r.error().c_str());
        return 1;
    }
    std::string status = std::string("READY=1\nSTATUS=") + (enforcer->adopted() ? "adopted" : "fresh") +
                         (enforcer->stored() ? " stored" : " unstored") + " stale=" +
                         std::to_string(enforcer->stats().stale_answered);
    sd_notify(0, status.c_str());
    int sig = 0;
    sigwait(&set, &sig);
    enforcer->stop(false);
    return 0;
}
