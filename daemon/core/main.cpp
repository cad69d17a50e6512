// custguardd: keeps customer data on this server from leaking. See custguardd(8).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string_view>

#include "custguard/common/policy_check.hpp"
#include "daemon/core/daemon.hpp"
#ifdef CUSTGUARD_HAVE_DBUS
#include "daemon/dbus/control_plane.hpp"
#endif

namespace {

// Whether stdout is the journal stream systemd gave us: $JOURNAL_STREAM holds its
// "device:inode" (systemd.exec(5)).
bool stdout_is_journal() {
    const char* stream = std::getenv("JOURNAL_STREAM");
    unsigned long long dev = 0, ino = 0;
    struct stat st {};
    return stream && std::sscanf(stream, "%llu:%llu", &dev, &ino) == 2 && ::fstat(STDOUT_FILENO, &st) == 0 &&
           st.st_dev == dev && st.st_ino == ino;
}

// "<N>" of sd-daemon(3): journald files each line at that syslog priority instead of the
// stream's default (info), so `journalctl -p warning` shows the daemon's warnings.
class SyslogPrefix final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
        static constexpr std::string_view k_prefix[] = {"<7>", "<7>", "<6>", "<4>", "<3>", "<2>", "<6>"};
        const auto level = static_cast<std::size_t>(msg.level);
        const std::string_view p = k_prefix[level < std::size(k_prefix) ? level : 2];
        dest.append(p.data(), p.data() + p.size());
    }
    std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<SyslogPrefix>(); }
};

void set_log_format() {
    if (!stdout_is_journal()) {
        spdlog::set_pattern("%^%l%$: %v");
        return;
    }
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<SyslogPrefix>('*').set_pattern("%*%l: %v");
    spdlog::set_formatter(std::move(formatter));
}

}  // namespace

int main(int argc, char** argv) {
    // Block the signals sd-event handles before any thread exists, so none of the
    // pipeline's or enforcer's threads receives them.
    sigset_t mask;
    sigemptyset(&mask);
    for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&mask, sig);
    pthread_sigmask(SIG_BLOCK, &mask, nullptr);

    CLI::App app{"custguardd - customer-data guard daemon"};
    app.set_version_flag("--version", std::string("custguardd ") + CUSTGUARD_VERSION);
    custguard::daemon::DaemonOptions options;
    std::string policy_path = options.policy.string();
    std::string enforcer, state_dir, export_spec, bus_address;
    bool check = false, no_journal = false, no_audit = false, audit = false;
    app.add_option("--policy", policy_path, "Policy file; policy.d/*.toml beside it are merged")
        ->type_name("PATH")
        ->capture_default_str();
    app.add_flag("--check", check, "Validate the policy (and state with --state-dir), print diagnostics, exit");
    app.add_flag("--foreground", options.foreground, "Also print readable event lines on standard output");
    app.add_option("--enforcer", enforcer, "auto, bpf-lsm, fanotify or none (overrides [daemon] enforcer)")
        ->type_name("MODE")
        ->check(CLI::IsMember({"auto", "bpf-lsm", "fanotify", "none"}));
    app.add_option("--state-dir", state_dir, "State directory (overrides [daemon] state_dir)")
        ->type_name("DIR");
    app.add_option("--export", export_spec, "Also write every record as JSON lines: jsonl:PATH")
        ->type_name("jsonl:PATH");
    app.add_flag("--no-journal", no_journal, "Do not write to journald (tests; use with --export)");
    auto* audit_on = app.add_flag("--audit", audit,
                                  "Also cross-check the enforcer with kernel audit watch rules (default: audit only "
                                  "where no enforcer runs)");
    app.add_flag("--no-audit", no_audit, "Do not use the kernel audit (no watch rules, no observe-only records, no cross-check)")
        ->excludes(audit_on);
    app.add_option("--journal-namespace", options.journal_namespace,
                   "Write to the journald namespace NS instead of the default journal (tests)")
        ->type_name("NS");
    app.add_option("--bus-address", bus_address,
                   "D-Bus address for the control plane instead of the system bus (tests; "
                   "DBUS_SYSTEM_BUS_ADDRESS is also honoured)")
        ->type_name("ADDRESS");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        return rc == 0 ? 0 : 2;
    }
    options.policy = policy_path;
    if (check) {
        std::optional<std::filesystem::path> dir;
        if (!state_dir.empty()) dir = state_dir;
        return custguard::common::check_policies({options.policy}, dir, std::cout, std::cerr);
    }
    if (!enforcer.empty()) options.enforcer = custguard::policy::parse_enforcer(enforcer);
    if (!state_dir.empty()) options.state_dir = state_dir;
    options.journal = !no_journal;
    options.audit = no_audit ? custguard::daemon::AuditChoice::off
                    : audit  ? custguard::daemon::AuditChoice::on
                             : custguard::daemon::AuditChoice::automatic;
    if (!export_spec.empty()) {
        if (export_spec.rfind("jsonl:", 0) != 0 || export_spec.size() <= 6) {
            std::cerr << "custguardd: --export takes jsonl:PATH, e.g. --export jsonl:/var/log/custguard.jsonl\n";
            return 2;
        }
        options.jsonl_export = export_spec.substr(6);
    }
    set_log_format();
    auto daemon = custguard::daemon::Daemon::create(std::move(options));
    if (!daemon) {
        spdlog::critical("cannot start: {}", daemon.error());
        return 1;
    }
#ifdef CUSTGUARD_HAVE_DBUS
    // The control plane lives on the daemon's loop; without a bus the daemon still
    // enforces and records, it just cannot be managed until restarted with one.
    custguard::dbus::ControlPlane control(**daemon, {bus_address});
    (*daemon)->set_loop_hook([&](sd_event* event) {
        if (auto r = control.start(event); !r)
            spdlog::warn("control plane off: {}; custguardctl cannot reach this daemon", r.error());
        else
            spdlog::info("control plane on the bus as org.custguard1");
    });
#endif
    return (*daemon)->run();
}
