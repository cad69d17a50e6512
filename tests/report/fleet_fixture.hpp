// The fleet path of custguard.fleet(7) in tests: two file servers' journals of one incident
// (fs1, fs2), written as journal files by systemd-journal-remote from an export stream with
// fixed timestamps (the input of the golden reports, report_host_test.cpp, and of the
// fleet tests); certificates for the collector and the servers; and the command lines of
// the real stunnel, systemd-journal-remote and systemd-journal-upload built from the
// shipped stunnel-collector.conf, journal-remote drop-ins, journal-remote.conf and
// journal-upload.conf, each key passed as the option it stands for.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace cgtest::report {

// Writes DIR/fs1.journal and DIR/fs2.journal.
void write_fleet(const std::filesystem::path& dir);

// Writes FILE: `count` allowed reads of server `host` in boot `boot` (32 hex digits), one
// every two seconds from 2026-10-05 09:00 JST plus `offset` seconds (files with offsets 0
// and 1 interleave), of 100 files by 10 users.
void write_reads(const std::filesystem::path& file, const std::string& host, const std::string& boot,
                 std::uint64_t count, std::uint64_t offset);

// KEY=value lines of a shipped .conf, comments and sections left out.
std::map<std::string, std::string> conf_keys(const std::filesystem::path& file);

// In DIR: a CA (ca.crt, ca.key), the collector's certificate for the address
// `collector_ip` (collector.crt, collector.key) and a client certificate per name in
// `clients` (NAME.crt, NAME.key).
void make_certificates(const std::filesystem::path& dir, const std::string& collector_ip,
                       const std::vector<std::string>& clients);

// The collector as the shipped files run it. systemd-journal-remote: a listening socket
// on `backend` ("127.0.0.1:PORT"; systemd-socket-activate stands for
// systemd-journal-remote.socket with journal-remote.socket.conf), the ExecStart of
// journal-remote.service.conf writing into `output`, every key of journal-remote.conf as
// its option.
std::vector<std::string> collector_argv(const std::filesystem::path& templates, const std::string& backend,
                                        const std::filesystem::path& output);

// The loopback address journal-remote.socket.conf listens on, which stunnel-collector.conf
// connects to (required to be the same).
std::string shipped_backend(const std::filesystem::path& templates);

// stunnel as stunnel@custguard-fleet.service runs it: the shipped stunnel-collector.conf
// written to `conf` with its certificate paths (/etc/custguard/fleet/) pointing into
// `certs` and, when not empty, `accept` and `connect` in place of the shipped addresses.
std::vector<std::string> proxy_argv(const std::filesystem::path& templates, const std::filesystem::path& certs,
                                    const std::string& accept, const std::string& connect,
                                    const std::filesystem::path& conf);

// systemd-journal-upload --follow=no of `source` ("--file=..." or "--directory=...") for
// server `name` (its certificate NAME.crt in `certs`) to `url`, remembering what it sent in
// `state`, with every key of `templates`/journal-upload.conf as its option.
std::vector<std::string> uploader_argv(const std::filesystem::path& templates, const std::filesystem::path& certs,
                                       const std::string& name, const std::string& url, const std::string& source,
                                       const std::filesystem::path& state);

}  // namespace cgtest::report
