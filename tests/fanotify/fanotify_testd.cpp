// A minimal daemon around the fanotify enforcer for the fd-store tests: adopts the stored
// group if it was passed one, protects ZONE_DIR (only ALLOWED_UID may read), reports
// READY=1 with STATUS=adopted|fresh, and stops on SIGTERM leaving enforcement in place.
// It prints the enforcer's warnings, then its counters as one line to standard output, and
// the counters again on each SIGUSR1 (overload_test.cpp stops it with SIGSTOP and reads
// whether the zone index was rebuilt).
//
//   fanotify_testd ZONE_DIR ALLOWED_UID [NOTIFY_NICE]
#include <signal.h>
#include <systemd/sd-daemon.h>

#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "daemon/fanotify/fanotify_enforcer.hpp"
#include "daemon/fanotify/fd_store.hpp"

using namespace custguard;

int main(int argc, char** argv) {
    if (argc != 3 && argc != 4) {
        std::fprintf(stderr, "usage: fanotify_testd ZONE_DIR ALLOWED_UID [NOTIFY_NICE]\n");
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before any thread starts

    daemon::FanotifyOptions options;
    if (argc == 4) options.notify_nice = std::atoi(argv[3]);
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
    auto print_stats = [&] {
        const auto s = enforcer->stats();
        std::printf("stats scans=%llu overflows=%llu flushes=%llu indexed=%llu kept_lost=%llu\n",
                    static_cast<unsigned long long>(s.scans), static_cast<unsigned long long>(s.overflows),
                    static_cast<unsigned long long>(s.flushes), static_cast<unsigned long long>(s.indexed),
                    static_cast<unsigned long long>(s.kept_lost));
        std::fflush(stdout);
    };
    for (const auto& w : enforcer->warnings()) std::printf("warning: %s\n", w.c_str());
    print_stats();
    int sig = 0;
    while (sigwait(&set, &sig) == 0 && sig == SIGUSR1) print_stats();
    enforcer->stop(false);
    return 0;
}
