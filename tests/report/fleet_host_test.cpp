// The fleet path of custguard.fleet(7) with the shipped configuration (host, root): two
// file servers' journals are uploaded by the real systemd-journal-upload over HTTPS (a
// client certificate each, the collector's certificate checked against the CA) to the
// real stunnel (stunnel-collector.conf: client certificates of the CA required), which
// forwards them to the real systemd-journal-remote on a loopback port, as the shipped
// drop-ins run it; journal-remote is restarted between the uploads. Each key of the
// shipped journal-upload.conf / journal-remote.conf is passed as the option it stands
// for. The report over the collector's directory must equal the report over the
// servers' own journals up to the evidence, which names the journal files read (nothing
// lost, nothing twice) and name both servers. The shipped
// rsyslog configuration passes rsyslogd's validation.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <regex>
#include <thread>

#include "fleet_fixture.hpp"
#include "support/support.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

TEST_CASE("report: two servers upload through the shipped journal-upload/journal-remote configuration, "
          "the collector restarts, the report over its directory equals the servers' own",
          "[report][host][fleet]") {
    cgtest::TempDir tmp("cgfleet");
    const fs::path d = tmp.path();
    cgtest::report::make_certificates(d, "127.0.0.1", {"fs1", "fs2"});
    const fs::path servers = d / "servers", collected = d / "collected";
    fs::create_directories(servers);
    fs::create_directories(collected);
    // The servers' journals: the fixture of report_host_test.cpp, by the same writer.
    cgtest::report::write_fleet(servers);

    // The proxy on `port`, journal-remote behind it on `backend` (the test's free ports in
    // place of the shipped 19532 and 127.0.0.1:19533).
    const int port = cgtest::free_port(), backend_port = cgtest::free_port();
    const std::string backend = "127.0.0.1:" + std::to_string(backend_port);
    const auto remote = cgtest::report::collector_argv(CG_FLEET_DIR, backend, collected);
    auto start = [&](const std::vector<std::string>& argv, int listening, const fs::path& log) {
        pid_t pid = cgtest::spawn(argv, {}, log);
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (!cgtest::can_connect(listening)) {
            INFO(cgtest::slurp(log));
            REQUIRE(::waitpid(pid, nullptr, WNOHANG) == 0);
            REQUIRE(std::chrono::steady_clock::now() < deadline);
            std::this_thread::sleep_for(50ms);
        }
        return pid;
    };
    auto start_collector = [&] { return start(remote, backend_port, d / "remote.log"); };
    pid_t proxy = start(cgtest::report::proxy_argv(CG_FLEET_DIR, d, "127.0.0.1:" + std::to_string(port), backend,
                                                   d / "stunnel.conf"),
                        port, d / "proxy.log");
    struct Stop {
        pid_t& pid;
        ~Stop() { cgtest::kill_and_reap(pid); }
    } stop_proxy{proxy};
    auto upload = [&](const std::string& server) {
        auto r = cgtest::run(cgtest::report::uploader_argv(CG_FLEET_DIR, d, server,
                                                           "https://127.0.0.1:" + std::to_string(port),
                                                           "--file=" + (servers / (server + ".journal")).string(),
                                                           d / (server + ".state")),
                             {}, std::nullopt, 60s);
        INFO(r.out << r.err << cgtest::slurp(d / "proxy.log"));
        REQUIRE(r.rc == 0);
    };

    pid_t collector = start_collector();
    upload("fs1");
    cgtest::kill_and_reap(collector);  // the collector restarts between the uploads
    collector = start_collector();
    upload("fs2");
    upload("fs1");  // again: its saved state says everything was sent
    cgtest::kill_and_reap(collector);

    const std::vector<std::string> window = {"--since", "2026-10-01", "--until", "2026-11-01", "--discovered-at",
                                             "2026-10-07 09:00", "--format", "json"};
    auto report = [&](const fs::path& dir) {
        std::vector<std::string> argv = {CG_CUSTGUARDCTL, "report", "leak-scope", "--directory", dir.string()};
        argv.insert(argv.end(), window.begin(), window.end());
        auto r = cgtest::run(argv, {"TZ=Asia/Tokyo"});
        INFO(r.err);
        REQUIRE(r.rc == 0);
        return r.out;
    };
    // The evidence names the journal files the report read (the collector's are not the
    // servers'): the rest must be equal.
    auto before_evidence = [](const std::string& json) { return json.substr(0, json.find("\"evidence\": {")); };
    const auto at_collector = report(collected);
    const auto at_servers = report(servers);
    CHECK(at_collector.find("\"servers\": [\n    \"fs1\",\n    \"fs2\"\n  ]") != std::string::npos);
    // The second upload of fs1 sends its last record again (systemd-journal-upload resumes
    // at its saved cursor, not after it), so the collector holds it twice, besides the
    // record fs2 itself wrote twice; the report counts each once (both copies' cursors
    // are evidence) and is otherwise the servers' own.
    REQUIRE(at_collector.find("\"records\": 12,\n    \"duplicates_ignored\": 2") != std::string::npos);
    CHECK(at_servers.find("\"records\": 11,\n    \"duplicates_ignored\": 1") != std::string::npos);
    CHECK(before_evidence(at_collector) == before_evidence(at_servers));
}

TEST_CASE("report: the shipped rsyslog configuration passes rsyslogd's validation", "[report][host][fleet]") {
    cgtest::TempDir tmp("cgfleet");
    cgtest::report::make_certificates(tmp.path(), "127.0.0.1", {"fs1"});
    fs::copy_file(tmp.path() / "fs1.crt", tmp.path() / "server.crt");
    fs::copy_file(tmp.path() / "fs1.key", tmp.path() / "server.key");
    // rsyslog.conf sets the work directory; a drop-in alone does not.
    const auto shipped = cgtest::slurp(CG_FLEET_DIR "/rsyslog-custguard.conf");
    cgtest::spit(tmp.path() / "rsyslog.conf",
                 "global(workDirectory=\"" + tmp.path().string() + "\")\n" +
                     std::regex_replace(shipped, std::regex("/etc/custguard/fleet/"), tmp.path().string() + "/"));
    auto r = cgtest::run({"rsyslogd", "-N1", "-f", (tmp.path() / "rsyslog.conf").string()});
    INFO(r.out << r.err);
    CHECK(r.rc == 0);
    CHECK(r.err.find("error") == std::string::npos);
}
