// Reads per zone and client since local midnight (custguardctl status): which records
// count, the reset at local midnight, and the bound on distinct clients.
#include <catch2/catch.hpp>

#include <stdlib.h>
#include <time.h>

#include <string>
#include <vector>

#include "custguard/events/client_reads.hpp"

namespace ev = custguard::events;

namespace {

// Fixes the daemon's local time zone for the test: Asia/Tokyo is UTC+9 without DST, so
// local midnight is 15:00 UTC.
struct TokyoTime {
    TokyoTime() {
        ::setenv("TZ", "Asia/Tokyo", 1);
        ::tzset();
    }
    ~TokyoTime() {
        ::unsetenv("TZ");
        ::tzset();
    }
};

constexpr std::int64_t k_s = 1000000;
// 2026-12-05 14:59:59 UTC = 23:59:59 in Tokyo; one second later it is the 6th there.
constexpr std::int64_t k_before_midnight = 1796482799 * k_s;
constexpr std::int64_t k_after_midnight = k_before_midnight + k_s;

ev::Record read_record(ev::Kind kind, const char* zone, const char* client, std::int64_t at_us,
                       const char* access = "read", const char* operation = "open") {
    ev::Record r;
    r.kind = kind;
    r.realtime_us = at_us;
    r.set(ev::field::operation, operation);
    r.set(ev::field::zone, zone);
    r.set(ev::field::client, client);
    r.set(ev::field::access, access);
    return r;
}

std::string render(const std::vector<ev::ClientReads::Entry>& entries) {
    std::string out;
    for (const auto& e : entries) out += e.zone + " " + e.client + " " + std::to_string(e.reads) + "\n";
    return out;
}

}  // namespace

TEST_CASE("client reads: only reads let through with a client address count", "[events][client_reads]") {
    TokyoTime tz;
    struct Row {
        const char* label;
        ev::Record record;
        bool counts;
    };
    const std::int64_t t = k_before_midnight - 60 * k_s;
    const Row rows[] = {
        {"allowed read", read_record(ev::Kind::access_allowed, "customers", "192.0.2.10", t), true},
        {"audited read", read_record(ev::Kind::access_audited, "customers", "192.0.2.10", t), true},
        {"read-write open", read_record(ev::Kind::access_allowed, "customers", "192.0.2.10", t, "read-write"), true},
        {"denied read", read_record(ev::Kind::access_denied, "customers", "192.0.2.10", t), false},
        {"open for writing only", read_record(ev::Kind::access_allowed, "customers", "192.0.2.10", t, "write"), false},
        {"rename", read_record(ev::Kind::access_allowed, "customers", "192.0.2.10", t, "", "rename"), false},
        {"local read (no client)", read_record(ev::Kind::access_allowed, "customers", "", t), false},
        {"zone integrity record", read_record(ev::Kind::zone_integrity, "customers", "192.0.2.10", t), false},
        {"bulk read record", read_record(ev::Kind::bulk_read, "customers", "192.0.2.10", t), false},
    };
    for (const auto& row : rows) {
        DYNAMIC_SECTION(row.label) {
            ev::ClientReads reads;
            reads.observe(row.record);
            CHECK(render(reads.today(t)) == (row.counts ? "customers 192.0.2.10 1\n" : ""));
        }
    }
}

TEST_CASE("client reads: a record that stands for more reads (CUSTGUARD_REPEATS) counts them all",
          "[events][client_reads]") {
    TokyoTime tz;
    const std::int64_t t = k_before_midnight - 60 * k_s;
    ev::ClientReads reads;
    reads.observe(read_record(ev::Kind::access_allowed, "customers", "192.0.2.10", t));
    auto folded = read_record(ev::Kind::access_allowed, "customers", "192.0.2.10", t + 30 * k_s);
    folded.set(ev::field::repeats, std::uint64_t{41});
    reads.observe(folded);
    CHECK(render(reads.today(t)) == "customers 192.0.2.10 43\n");
}

TEST_CASE("client reads: counted per zone and client, reset at local midnight", "[events][client_reads]") {
    TokyoTime tz;
    ev::ClientReads reads;
    const auto a = ev::Kind::access_allowed;
    for (int i = 0; i < 3; ++i) reads.observe(read_record(a, "customers", "192.0.2.10", k_before_midnight - 10 * k_s));
    reads.observe(read_record(a, "customers", "2001:db8::7", k_before_midnight - 5 * k_s));
    reads.observe(read_record(a, "medical", "192.0.2.10", k_before_midnight));
    CHECK(render(reads.today(k_before_midnight)) ==
          "customers 192.0.2.10 3\ncustomers 2001:db8::7 1\nmedical 192.0.2.10 1\n");
    // At local midnight the day's counts are over, before any read of the new day...
    CHECK(render(reads.today(k_after_midnight)).empty());
    // ...and the first read of the new day starts them again.
    reads.observe(read_record(a, "medical", "192.0.2.11", k_after_midnight));
    CHECK(render(reads.today(k_after_midnight + 3600 * k_s)) == "medical 192.0.2.11 1\n");
    // A record of the previous day committed late does not count into the new one.
    reads.observe(read_record(a, "customers", "192.0.2.10", k_before_midnight));
    CHECK(render(reads.today(k_after_midnight)) == "medical 192.0.2.11 1\n");
    // Midnight is local: at 15:00 UTC the UTC day is still the same.
    CHECK(ev::local_day(k_after_midnight) == ev::local_day(k_before_midnight) + 1);
    ::setenv("TZ", "UTC", 1);
    ::tzset();
    CHECK(ev::local_day(k_after_midnight) == ev::local_day(k_before_midnight));
}

TEST_CASE("client reads: distinct clients are bounded, the rest counted together", "[events][client_reads]") {
    TokyoTime tz;
    ev::ClientReads reads;
    const std::int64_t t = k_before_midnight - 3600 * k_s;
    const std::size_t n = ev::ClientReads::k_max_pairs + 10;
    for (std::size_t i = 0; i < n; ++i)
        reads.observe(read_record(ev::Kind::access_allowed, "customers",
                                  ("10." + std::to_string(i / 65536) + "." + std::to_string(i / 256 % 256) + "." +
                                   std::to_string(i % 256)).c_str(),
                                  t));
    auto today = reads.today(t);
    CHECK(today.size() == ev::ClientReads::k_max_pairs + 1);
    std::uint64_t total = 0, other = 0;
    for (const auto& e : today) {
        total += e.reads;
        if (e.client == ev::ClientReads::k_other_clients) other = e.reads;
    }
    CHECK(total == n);
    CHECK(other == 10);
}
