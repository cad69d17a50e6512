// [watch] pieces that need no root: categories of detectors, paths within trees, the
// customer_data_found record (names and counts only, fields absent when unknown), and
// which files a process holds for writing (this test process's own /proc).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "custguard/events/record.hpp"
#include "daemon/watch/watcher.hpp"

using namespace custguard;

TEST_CASE("detectors map to the categories the regulator asks about", "[unit][watch]") {
    struct Row {
        std::vector<std::string> detectors;
        bool sensitive_zone;
        std::vector<std::string> expected;
    };
    const Row rows[] = {
        {{"credit_card"}, false, {"payment_card"}},
        {{"my_number", "email", "jp_phone"}, false, {"contact", "my_number"}},
        {{"jp_address", "keywords"}, false, {"contact"}},  // keywords name no category
        {{}, true, {"sensitive"}},                         // a copy of a sensitive zone's file
        {{"keywords"}, false, {}},
        {{"sensitive", "credit_card"}, false, {"payment_card", "sensitive"}},  // 要配慮 terms found in the file
    };
    for (const auto& r : rows) CHECK(daemon::watch::categories(r.detectors, r.sensitive_zone) == r.expected);
}

TEST_CASE("path_within: the tree itself and below it, never a sibling with the same prefix", "[unit][watch]") {
    using daemon::watch::path_within;
    CHECK(path_within("/srv/share", "/srv/share"));
    CHECK(path_within("/srv/share/a/b.csv", "/srv/share"));
    CHECK_FALSE(path_within("/srv/share2/b.csv", "/srv/share"));
    CHECK_FALSE(path_within("/srv", "/srv/share"));
    CHECK(path_within("/anything", "/"));
}

TEST_CASE("customer_data_found records carry the writer, counts, categories and action, never content", "[unit][watch]") {
    events::CustomerDataFound f;
    f.path = "/srv/share/public/list.csv";
    f.dev = 41;
    f.ino = 7;
    f.uid = 1001;
    f.user = "alice";
    f.pid = 99;
    f.exe = "/usr/bin/cp";
    f.client = "192.0.2.10";
    f.detector_hits = {{"email", 40}, {"jp_phone", 0}, {"credit_card", 2}};
    f.categories = {"contact", "payment_card"};
    f.copy_of = "customers";
    f.zone = "customers";
    f.action = "protected";
    auto r = events::make_customer_data_found_record(f);
    CHECK(r.kind == events::Kind::customer_data_found);
    CHECK(*r.get(events::field::event) == "customer_data_found");
    CHECK(*r.get(events::field::detectors) == "credit_card:2,email:40");  // zero counts left out
    CHECK(*r.get(events::field::hits) == "42");
    CHECK(*r.get(events::field::categories) == "contact,payment_card");
    CHECK(*r.get(events::field::copy_of) == "customers");
    CHECK(*r.get(events::field::action) == "protected");
    CHECK(*r.get(events::field::client) == "192.0.2.10");
    CHECK(*r.get(events::field::uid) == "1001");
    CHECK_THAT(r.message, Catch::Contains("a copy of a file of zone customers"));

    events::CustomerDataFound unknown;  // a writer that could not be identified
    unknown.path = "/srv/x";
    unknown.action = "recorded";
    auto u = events::make_customer_data_found_record(unknown, "content not scanned: timeout");
    CHECK(u.get(events::field::uid) == nullptr);
    CHECK(u.get(events::field::copy_of) == nullptr);
    CHECK(u.get(events::field::exe) == nullptr);
    CHECK_THAT(u.message, Catch::EndsWith("recorded (content not scanned: timeout)"));

    // smbd wrote it and its client could not be established: no field, and the message
    // says so (as access records do), never a silently missing client.
    events::CustomerDataFound smb = f;
    smb.client.clear();
    smb.exe = "/usr/sbin/smbd";
    smb.client_unknown = "smbd 99 had exited";
    auto s = events::make_customer_data_found_record(smb);
    CHECK(s.get(events::field::client) == nullptr);
    CHECK_THAT(s.message, Catch::Contains("written by alice from a client that could not be established (smbd 99 had exited)"));
    smb.client = "192.0.2.10,198.51.100.7";  // multichannel: every address it served
    CHECK(*events::make_customer_data_found_record(smb).get(events::field::client) == "192.0.2.10,198.51.100.7");
}

// The watcher keeps rescanning a settled file while its writer holds it this way: stores
// into a shared mapping give no fanotify event.
TEST_CASE("a file is held for writing while mapped shared or open for writing, not when read", "[unit][watch]") {
    char path[] = "/tmp/custguard-held-XXXXXX";
    const int made = ::mkstemp(path);
    REQUIRE(made >= 0);
    REQUIRE(::ftruncate(made, 4096) == 0);
    struct stat st {};
    REQUIRE(::fstat(made, &st) == 0);
    ::close(made);
    const auto dev = static_cast<std::uint64_t>(st.st_dev), ino = static_cast<std::uint64_t>(st.st_ino);
    const pid_t self = ::getpid();
    const auto holds = [&](pid_t pid, const daemon::watch::HoldLimits& limits = {}) {
        const auto files = daemon::watch::files_held_for_writing(pid, limits);
        return files && files->holds(dev, ino);
    };
    const auto held = [&] { return holds(self); };
    CHECK_FALSE(held());

    const int ro = ::open(path, O_RDONLY | O_CLOEXEC);
    REQUIRE(ro >= 0);
    CHECK_FALSE(held());  // open for reading only
    void* priv = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, ro, 0);
    REQUIRE(priv != MAP_FAILED);
    CHECK_FALSE(held());  // a private mapping's stores never reach the file
    ::munmap(priv, 4096);
    ::close(ro);

    const int rw = ::open(path, O_RDWR | O_CLOEXEC);
    REQUIRE(rw >= 0);
    CHECK(held());  // a descriptor open for writing
    void* shared = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);
    REQUIRE(shared != MAP_FAILED);
    ::close(rw);
    CHECK(held());  // the mapping alone, its descriptor closed
    ::munmap(shared, 4096);
    CHECK_FALSE(held());

    SECTION("bounded: past the limits it answers yes rather than look further") {
        const int extra = ::open(path, O_RDONLY | O_CLOEXEC);
        REQUIRE(extra >= 0);
        daemon::watch::HoldLimits few;
        few.max_fds = 1;  // this process has more descriptors than that
        CHECK(holds(self, few));
        few = {};
        few.max_maps_bytes = 16;
        CHECK(holds(self, few));
        ::close(extra);
    }
    CHECK_FALSE(holds(0));
    ::unlink(path);
}

// The one reader of /proc/PID/maps (held files and the sweep of shared mappings): which
// mappings of this process it lists, and that it stops at its bound.
TEST_CASE("read_shared_mappings lists shared file mappings with their range and whether they are writable now",
          "[unit][watch]") {
    char path[] = "/tmp/custguard-maps-XXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    REQUIRE(::ftruncate(fd, 4 * 4096) == 0);
    struct stat st {};
    REQUIRE(::fstat(fd, &st) == 0);
    struct Row {
        const char* name;
        int prot, flags;
        bool listed, writable;
    };
    const Row rows[] = {
        {"shared, read and write", PROT_READ | PROT_WRITE, MAP_SHARED, true, true},
        {"shared, read only (mprotect could make it writable)", PROT_READ, MAP_SHARED, true, false},
        {"private, read and write (copy on write: never reaches the file)", PROT_READ | PROT_WRITE, MAP_PRIVATE, false,
         false},
    };
    std::string text;
    for (const auto& row : rows) {
        INFO(row.name);
        void* at = ::mmap(nullptr, 2 * 4096, row.prot, row.flags, fd, 4096);
        REQUIRE(at != MAP_FAILED);
        std::vector<daemon::watch::SharedMapping> out;
        REQUIRE(daemon::watch::read_shared_mappings(::getpid(), std::size_t{16} << 20, text, out) ==
                daemon::watch::MapsRead::ok);
        const auto start = reinterpret_cast<std::uint64_t>(at);
        const auto it = std::find_if(out.begin(), out.end(), [&](const auto& m) { return m.start == start; });
        CHECK((it != out.end()) == row.listed);
        if (it != out.end()) {
            CHECK(it->end == start + 2 * 4096);
            CHECK(it->dev == static_cast<std::uint64_t>(st.st_dev));
            CHECK(it->ino == static_cast<std::uint64_t>(st.st_ino));
            CHECK(it->writable == row.writable);
        }
        ::munmap(at, 2 * 4096);
    }
    std::vector<daemon::watch::SharedMapping> out;
    CHECK(daemon::watch::read_shared_mappings(::getpid(), 64, text, out) == daemon::watch::MapsRead::too_large);
    CHECK(out.empty());
    CHECK(daemon::watch::read_shared_mappings(0x7ffffff0, std::size_t{16} << 20, text, out) ==
          daemon::watch::MapsRead::gone);
    ::close(fd);
    ::unlink(path);
}
