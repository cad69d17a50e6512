#include "fleet_fixture.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "support/support.hpp"

namespace fs = std::filesystem;

namespace cgtest::report {

namespace {

// 2026-10-05 09:00 JST (a Monday), in microseconds.
constexpr std::uint64_t k_t0 = 1791158400ull * 1'000'000;
constexpr std::uint64_t k_min = 60ull * 1'000'000;

struct Entry {
    std::uint64_t t;
    std::vector<std::pair<std::string, std::string>> fields;
};

// Journal export format (systemd.journal-export-formats(7)); every value here is text.
std::string export_stream(const std::string& host, const std::string& boot, const std::vector<Entry>& entries) {
    std::ostringstream o;
    std::uint64_t mono = 1'000'000;
    for (const auto& e : entries) {
        o << "__REALTIME_TIMESTAMP=" << e.t << "\n__MONOTONIC_TIMESTAMP=" << mono++ << "\n_BOOT_ID=" << boot
          << "\n_HOSTNAME=" << host << "\nSYSLOG_IDENTIFIER=custguardd\nMESSAGE=record text not used by reports\n";
        for (const auto& [k, v] : e.fields) o << k << "=" << v << "\n";
        o << "\n";
    }
    return o.str();
}

void write_journal(const fs::path& file, const std::string& stream) {
    cgtest::spit(file.string() + ".export", stream);
    auto r = cgtest::run({"/lib/systemd/systemd-journal-remote", "--output=" + file.string(), file.string() + ".export"});
    INFO(r.err);
    REQUIRE(r.rc == 0);
    fs::remove(file.string() + ".export");
}

using F = std::vector<std::pair<std::string, std::string>>;

F access(const char* decision, const char* user, const char* path, const char* client, int seq) {
    return {{"CUSTGUARD_EVENT", "access"}, {"CUSTGUARD_DECISION", decision}, {"CUSTGUARD_USER", user},
            {"CUSTGUARD_ZONE", "customers"}, {"CUSTGUARD_PATH", path}, {"CUSTGUARD_CLIENT", client},
            {"CUSTGUARD_RUN", "r1"}, {"CUSTGUARD_SEQ", std::to_string(seq)}};
}

}  // namespace

void write_reads(const fs::path& file, const std::string& host, const std::string& boot, std::uint64_t count,
                 std::uint64_t offset) {
    std::vector<Entry> entries;
    entries.reserve(count);
    for (std::uint64_t i = 0; i < count; ++i) {
        const auto path = "/srv/share/customers/f" + std::to_string(i % 100) + ".csv";
        const auto user = "user" + std::to_string(i % 10);
        auto fields = access("allow", user.c_str(), path.c_str(), "192.0.2.10", static_cast<int>(i + 1));
        entries.push_back({k_t0 + (2 * i + offset) * 1'000'000, std::move(fields)});
    }
    write_journal(file, export_stream(host, boot, entries));
}

// Two servers' records of one incident.
void write_fleet(const fs::path& dir) {
    const std::string z = "/srv/share/customers/";
    write_journal(dir / "fs1.journal",
                  export_stream("fs1", "0123456789abcdef0123456789abcdef",
                                {
                                    {k_t0 - 6 * 24 * 60 * k_min, access("allow", "alice", (z + "old.csv").c_str(), "192.0.2.10", 1)},
                                    {k_t0, access("allow", "alice", (z + "list.csv").c_str(), "192.0.2.10", 2)},
                                    {k_t0 + 5 * k_min, access("allow", "alice", (z + "list.csv").c_str(), "192.0.2.10", 3)},
                                    {k_t0 + 810 * k_min, access("audit", "bob", (z + "vip.csv").c_str(), "192.0.2.20", 4)},
                                    {k_t0 + 811 * k_min, access("deny", "bob", (z + "secret.csv").c_str(), "192.0.2.20", 5)},
                                    {k_t0 + 820 * k_min,
                                     {{"CUSTGUARD_EVENT", "customer_data_found"}, {"CUSTGUARD_USER", "bob"},
                                      {"CUSTGUARD_PATH", "/srv/share/public/list-copy.csv"},
                                      {"CUSTGUARD_COPY_OF", "customers"}, {"CUSTGUARD_DETECTORS", "edm:crm:120,email:120"},
                                      {"CUSTGUARD_PERSONS", "120"}, {"CUSTGUARD_CATEGORIES", "contact"},
                                      {"CUSTGUARD_ACTION", "recorded"}, {"CUSTGUARD_RUN", "r1"}, {"CUSTGUARD_SEQ", "6"}}},
                                    {k_t0 + 1500 * k_min,
                                     {{"CUSTGUARD_EVENT", "print"}, {"CUSTGUARD_DECISION", "hold"}, {"CUSTGUARD_USER", "bob"},
                                      {"CUSTGUARD_PRINTER", "office"}, {"CUSTGUARD_JOB", "7"}, {"CUSTGUARD_PAGES", "3"},
                                      {"CUSTGUARD_TITLE", "list.csv"}, {"CUSTGUARD_CLIENT", "192.0.2.20"},
                                      {"CUSTGUARD_DETECTORS", "credit_card:4,edm:crm:4"}, {"CUSTGUARD_PERSONS", "4"},
                                      {"CUSTGUARD_RUN", "r1"}, {"CUSTGUARD_SEQ", "7"}}},
                                    {k_t0 + 1530 * k_min,
                                     {{"CUSTGUARD_EVENT", "admin_change"}, {"CUSTGUARD_ADMIN_ACTION", "print.approve"},
                                      {"CUSTGUARD_USER", "alice"}, {"CUSTGUARD_TARGET", "office:7"},
                                      {"CUSTGUARD_RUN", "r1"}, {"CUSTGUARD_SEQ", "8"}}},
                                    {k_t0 + 1530 * k_min + 1,
                                     {{"CUSTGUARD_EVENT", "print"}, {"CUSTGUARD_DECISION", "allow"}, {"CUSTGUARD_USER", "bob"},
                                      {"CUSTGUARD_PRINTER", "office"}, {"CUSTGUARD_JOB", "7"},
                                      {"CUSTGUARD_RUN", "r1"}, {"CUSTGUARD_SEQ", "9"}}},
                                }));
    auto carol = access("allow", "carol", (z + "list.csv").c_str(), "192.0.2.30", 3);
    write_journal(dir / "fs2.journal",
                  export_stream("fs2", "fedcba9876543210fedcba9876543210",
                                {
                                    {k_t0 + 1020 * k_min,
                                     {{"CUSTGUARD_EVENT", "bulk_read"}, {"CUSTGUARD_USER", "bob"}, {"CUSTGUARD_FILES", "300"},
                                      {"CUSTGUARD_WINDOW_SEC", "60"}, {"CUSTGUARD_ACTION", "notify"},
                                      {"CUSTGUARD_RUN", "r2"}, {"CUSTGUARD_SEQ", "1"}}},
                                    {k_t0 + 1560 * k_min,
                                     {{"CUSTGUARD_EVENT", "policy_reload"}, {"CUSTGUARD_POLICY_RESULT", "accepted"},
                                      {"CUSTGUARD_RUN", "r2"}, {"CUSTGUARD_SEQ", "2"}}},
                                    {k_t0 + 1560 * k_min + 1, carol},
                                    {k_t0 + 1560 * k_min + 2, carol},  // sent twice after a journald restart
                                }));
}

std::map<std::string, std::string> conf_keys(const fs::path& file) {
    std::map<std::string, std::string> out;
    std::ifstream in(file);
    REQUIRE(in);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#' || line[0] == '[') continue;
        auto eq = line.find('=');
        REQUIRE(eq != std::string::npos);
        out[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return out;
}

namespace {

// The shipped paths, moved to the test's directory.
std::string local(const std::string& value, const fs::path& dir) {
    return std::regex_replace(value, std::regex("^/etc/custguard/fleet/"), dir.string() + "/");
}

void openssl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"openssl"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = cgtest::run(argv);
    INFO(r.err);
    REQUIRE(r.rc == 0);
}

}  // namespace

void make_certificates(const fs::path& d, const std::string& collector_ip, const std::vector<std::string>& clients) {
    // P-256 keys: as good for the test as RSA and made in a fraction of the time.
    const std::vector<std::string> key = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"};
    auto req = [&](std::vector<std::string> head, const std::vector<std::string>& tail) {
        head.insert(head.end(), key.begin(), key.end());
        head.insert(head.end(), tail.begin(), tail.end());
        openssl(head);
    };
    req({"req", "-x509"}, {"-keyout", (d / "ca.key").string(), "-out", (d / "ca.crt").string(), "-days", "2", "-subj",
                           "/CN=custguard test CA"});
    cgtest::spit(d / "ext.cnf",
                 "[server]\nsubjectAltName=IP:" + collector_ip + "\n[client]\nextendedKeyUsage=clientAuth\n");
    std::vector<std::pair<std::string, std::string>> names = {{"collector", "server"}};
    for (const auto& c : clients) names.emplace_back(c, "client");
    for (const auto& [name, ext] : names) {
        req({"req"}, {"-keyout", (d / (name + ".key")).string(), "-out", (d / (name + ".csr")).string(), "-subj",
                      "/CN=" + name});
        openssl({"x509", "-req", "-in", (d / (name + ".csr")).string(), "-CA", (d / "ca.crt").string(), "-CAkey",
                 (d / "ca.key").string(), "-CAcreateserial", "-out", (d / (name + ".crt")).string(), "-days", "2",
                 "-extfile", (d / "ext.cnf").string(), "-extensions", ext});
    }
}

std::string shipped_backend(const fs::path& templates) {
    const auto listen = conf_keys(templates / "journal-remote.socket.conf").at("ListenStream");
    INFO("journal-remote.socket.conf ListenStream=" << listen);
    REQUIRE(listen.rfind("127.0.0.1:", 0) == 0);  // the loopback address alone
    return listen;
}

std::vector<std::string> collector_argv(const fs::path& templates, const std::string& backend, const fs::path& output) {
    // journal-remote.conf(5): each key and the option it stands for; the certificate keys
    // are not among them, since they would go unused over plain HTTP.
    static const std::map<std::string, std::string> options = {{"Seal", "--seal="}, {"SplitMode", "--split-mode="}};
    std::vector<std::string> argv = {"/usr/bin/systemd-socket-activate", "--listen=" + backend};
    std::istringstream exec(conf_keys(templates / "journal-remote.service.conf").at("ExecStart"));
    bool http_on_socket = false;
    for (std::string word; exec >> word;) {
        if (word.rfind("--output=", 0) == 0) word = "--output=" + output.string() + "/";
        http_on_socket |= word == "--listen-http=-3";
        argv.push_back(word);
    }
    // Plain HTTP on the socket systemd passes (fd 3): TLS is the proxy's.
    REQUIRE(http_on_socket);
    for (const auto& [key, value] : conf_keys(templates / "journal-remote.conf")) {
        INFO("journal-remote.conf key " << key);
        REQUIRE(options.count(key));
        argv.push_back(options.at(key) + value);
    }
    return argv;
}

std::vector<std::string> proxy_argv(const fs::path& templates, const fs::path& certs, const std::string& accept,
                                    const std::string& connect, const fs::path& conf) {
    std::ifstream in(templates / "stunnel-collector.conf");
    REQUIRE(in);
    std::string out, line;
    std::map<std::string, std::string> keys;
    while (std::getline(in, line)) {
        auto eq = line.find(" = ");
        if (!line.empty() && line[0] != ';' && line[0] != '[' && eq != std::string::npos) {
            const auto key = line.substr(0, eq);
            keys[key] = line.substr(eq + 3);
            line = key + " = " + local(keys[key], certs);
            if (key == "accept" && !accept.empty()) line = key + " = " + accept;
            if (key == "connect" && !connect.empty()) line = key + " = " + connect;
        }
        out += line + "\n";
    }
    // The proxy forwards to the socket journal-remote listens on.
    CHECK(keys["connect"] == shipped_backend(templates));
    cgtest::spit(conf, out);
    return {"/usr/bin/stunnel4", conf.string()};
}

std::vector<std::string> uploader_argv(const fs::path& templates, const fs::path& certs, const std::string& name,
                                       const std::string& url, const std::string& source, const fs::path& state) {
    // journal-upload.conf(5) likewise; the URL points at the test's collector and the
    // shipped server.crt/server.key are this server's.
    static const std::map<std::string, std::string> options = {
        {"URL", "--url="}, {"ServerKeyFile", "--key="}, {"ServerCertificateFile", "--cert="},
        {"TrustedCertificateFile", "--trust="}};
    std::vector<std::string> argv = {"/lib/systemd/systemd-journal-upload", "--follow=no",
                                     "--save-state=" + state.string(), source};
    for (const auto& [key, value] : conf_keys(templates / "journal-upload.conf")) {
        INFO("journal-upload.conf key " << key);
        REQUIRE(options.count(key));
        std::string v = key == "URL" ? url : local(value, certs);
        if (key == "ServerKeyFile" || key == "ServerCertificateFile")
            v = std::regex_replace(v, std::regex("/server\\."), "/" + name + ".");
        argv.push_back(options.at(key) + v);
    }
    return argv;
}

}  // namespace cgtest::report
