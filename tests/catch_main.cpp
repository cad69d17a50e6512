// The Catch2 main of every test program. A filter that names no test fails the run: ctest
// passes each discovered test's name as the filter, and a name cut at a ';' (a CMake list
// separator) matched nothing, ran nothing and passed.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

int main(int argc, char* argv[]) {
    Catch::Session session;
    auto& config = session.configData();
    config.warnings = static_cast<Catch::WarnAbout::What>(config.warnings | Catch::WarnAbout::NoTests);
    if (int r = session.applyCommandLine(argc, argv); r != 0) return r;
    return session.run();
}
