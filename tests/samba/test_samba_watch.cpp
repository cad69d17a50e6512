// [watch] with a real Samba: a user allowed in the zone copies a zone file to the public
// share with smbclient `put` from the client's network namespace; the record names smbd
// as the writer, the user it wrote for, and the zone it came from. (CUSTGUARD_CLIENT is
// not asserted: the watcher does not find the client of the writing smbd yet.)
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "samba_fixture.hpp"

using cgsmb::Scene;

TEST_CASE("samba: a zone file put on the public share from a client machine is found, written by smbd for its user",
          "[samba][host][watch]") {
    REQUIRE(::geteuid() == 0);
    REQUIRE(cgsmb::enter_private_mounts());
    ::setenv("CUSTGUARD_EXTRACT_HELPER", CG_EXTRACT_HELPER, 1);  // the reader of this build tree
    // zone_extra ends the zone table: [watch] follows it (default paths: the share's filesystem).
    Scene scene(cgsmb::Backing::tmpfs, true, "\n[watch]\non_customer_data = \"record\"\n");
    // Alice downloads the list to her machine and uploads it again to the public share.
    const std::filesystem::path local = scene.dir / "client-copy.csv";
    const auto t0 = std::chrono::steady_clock::now();
    // The session stays open a moment after the upload, as a desktop's does.
    cgsmb::Result r;
    std::thread session([&] {
        r = scene.smbclient(*scene.alice, "get customers/list.csv " + local.string() + "; put " + local.string() +
                                              " from-client.csv; !sleep 2");
    });
    const auto target = scene.share / "from-client.csv";
    std::optional<custguard::events::testing::JournalEntry> found;
    auto found_at = t0;
    while (!found && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)) {
        for (auto& e : scene.records_for(target))
            if (e["CUSTGUARD_EVENT"] == "customer_data_found") found = e, found_at = std::chrono::steady_clock::now();
        if (!found) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    session.join();
    INFO("smbclient exit " << r.status << ":\n" << r.output);
    REQUIRE(r.status == 0);
    INFO(scene.diagnostics());
    REQUIRE(found);
    const auto took = found_at - t0;
    INFO("record after " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
    CHECK(took < std::chrono::seconds(2));
    auto& e = *found;
    CHECK(e["CUSTGUARD_COPY_OF"] == "customers");
    CHECK(e["CUSTGUARD_EXE"] == "/usr/sbin/smbd");
    CHECK(e["CUSTGUARD_USER"] == scene.alice->name());
    CHECK(e["CUSTGUARD_ACTION"] == "recorded");
}
