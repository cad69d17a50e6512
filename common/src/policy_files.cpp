#include "custguard/common/policy_files.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <system_error>

#include "custguard/common/nss_resolver.hpp"

namespace custguard::common {

namespace fs = std::filesystem;

tl::expected<std::string, std::string> read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return tl::unexpected(path.string() + ": cannot open: " + std::strerror(errno));
    std::ostringstream buffer;
    buffer << in.rdbuf();
    if (in.bad()) return tl::unexpected(path.string() + ": read error: " + std::strerror(errno));
    return buffer.str();
}

tl::expected<policy::LoadInput, std::string> read_policy_files(
    const fs::path& main, const std::optional<fs::path>& state_dir, std::uint64_t now) {
    policy::LoadInput input;
    input.now = now;
    auto text = read_file(main);
    if (!text) return tl::unexpected(text.error());
    input.main = {main.string(), std::move(*text)};

    fs::path dropin_dir = main.parent_path() / "policy.d";
    std::error_code ec;
    if (fs::is_directory(dropin_dir, ec)) {
        std::vector<fs::path> files;
        for (const auto& entry : fs::directory_iterator(dropin_dir, ec)) {
            // Like systemd and sudoers: only *.toml, hidden files and editor backups skipped.
            auto name = entry.path().filename().string();
            if (entry.path().extension() == ".toml" && !name.starts_with(".")) files.push_back(entry.path());
        }
        if (ec) return tl::unexpected(dropin_dir.string() + ": cannot list: " + ec.message());
        std::sort(files.begin(), files.end());
        for (const auto& f : files) {
            auto t = read_file(f);
            if (!t) return tl::unexpected(t.error());
            input.dropins.push_back({f.string(), std::move(*t)});
        }
    }
    if (state_dir) {
        fs::path state = *state_dir / "state.toml";
        if (fs::exists(state, ec)) {
            auto t = read_file(state);
            if (!t) return tl::unexpected(t.error());
            input.state = policy::SourceText{state.string(), std::move(*t)};
        }
    }
    return input;
}

tl::expected<policy::Loaded, policy::Diagnostics> load_policy(
    const fs::path& main, const std::optional<fs::path>& state_dir, std::uint64_t now) {
    auto input = read_policy_files(main, state_dir, now);
    if (!input) {
        return tl::unexpected(policy::Diagnostics{
            {policy::Severity::error, {main.string(), 0, 0}, input.error(),
             "check the path and its permissions"}});
    }
    return policy::load(*input, NssResolver{});
}

std::uint64_t now_seconds() { return static_cast<std::uint64_t>(std::time(nullptr)); }

}  // namespace custguard::common
