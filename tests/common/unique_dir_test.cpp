// The owning directory stream (custguard/common/unique_dir.hpp).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <set>
#include <string>

#include "custguard/common/unique_dir.hpp"
#include "support/support.hpp"

using custguard::common::UniqueDir;

namespace {

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1 || errno != EBADF; }

}  // namespace

TEST_CASE("UniqueDir lists the entries without . and .., and closes its descriptor once", "[unit][common]") {
    const cgtest::TempDir t("cg-unique-dir");
    for (const char* n : {"a", "b"}) cgtest::spit(t.path() / n, "");
    const int fd = ::open(t.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    std::set<std::string> names;
    {
        UniqueDir d = UniqueDir::from_fd(fd);
        REQUIRE(d);
        CHECK(d.fd() == fd);
        UniqueDir moved = std::move(d);
        CHECK_FALSE(d);
        while (const dirent* e = moved.next()) names.insert(e->d_name);
        CHECK(is_open(fd));
    }
    CHECK(names == std::set<std::string>{"a", "b"});
    CHECK_FALSE(is_open(fd));
}

TEST_CASE("UniqueDir::from_fd closes a descriptor that is no directory, and takes -1 as empty", "[unit][common]") {
    const cgtest::TempDir t("cg-unique-dir");
    const int fd = ::open((t.path() / "plain").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    CHECK_FALSE(UniqueDir::from_fd(fd));
    CHECK_FALSE(is_open(fd));  // not leaked
    const UniqueDir none = UniqueDir::from_fd(-1);
    CHECK_FALSE(none);
    CHECK(none.fd() == -1);
}
