#include "page_session.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "test_support.hpp"  // tests/scan: check-digit generators

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace cgcockpit {

CockpitWs::CockpitWs(const cgtest::Cred& user, const std::string& bus_address, const fs::path& page_dir) {
    const fs::path share = dir_.path() / "share";
    fs::create_directories(share / "cockpit");
    fs::copy(page_dir, share / "cockpit" / "custguard", fs::copy_options::recursive);
    const fs::path home = dir_.path() / "home";
    fs::create_directories(home);
    if (::chown(home.c_str(), user.uid, user.gid) != 0) throw std::runtime_error("chown " + home.string());
    port_ = cgtest::free_port();
    // --local-session: the bridge is cockpit-ws's own child, with its user and environment
    // (no PAM login; the page runs as `user`, whose groups custguardd checks).
    pid_ = cgtest::spawn({"setpriv", "--reuid=" + std::to_string(user.uid), "--regid=" + std::to_string(user.gid),
                          "--init-groups", "/usr/lib/cockpit/cockpit-ws", "--no-tls", "--address=127.0.0.1",
                          "--port=" + std::to_string(port_), "--local-session=cockpit-bridge"},
                         {"DBUS_SYSTEM_BUS_ADDRESS=" + bus_address, "XDG_DATA_DIRS=" + share.string() + ":/usr/share",
                          "HOME=" + home.string(), "XDG_RUNTIME_DIR=" + home.string(), "XDG_CONFIG_HOME=" + home.string(),
                          "USER=" + user.name, "LANG=C.UTF-8"},
                         dir_.path() / "cockpit-ws.log");
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (!cgtest::can_connect(port_)) {
        if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
            pid_ = -1;
            throw std::runtime_error("cockpit-ws exited: " + log());
        }
        if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("cockpit-ws did not listen: " + log());
        std::this_thread::sleep_for(50ms);
    }
}

CockpitWs::~CockpitWs() { cgtest::kill_and_reap(pid_); }

std::string CockpitWs::page_url() const {
    return fmt::format("http://127.0.0.1:{}/cockpit/@localhost/custguard/index.html", port_);
}

std::string CockpitWs::log() const { return cgtest::slurp(dir_.path() / "cockpit-ws.log"); }

PageAgent::PageAgent(const fs::path& script, const fs::path& log) : log_(log) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log_fd < 0) throw std::runtime_error("cannot create " + log.string());
    pid_ = ::fork();
    if (pid_ == 0) {
        ::dup2(in[0], 0);
        ::dup2(out[1], 1);
        ::dup2(log_fd, 2);
        ::execl("/usr/bin/python3", "python3", script.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    ::close(log_fd);
    if (pid_ < 0) throw std::runtime_error("fork failed");
    to_ = in[1];
    from_ = out[0];
}

PageAgent::~PageAgent() {
    if (to_ >= 0) {
        [[maybe_unused]] auto n = ::write(to_, "quit\n", 5);
        ::close(to_);
    }
    // Chromium and chromedriver close with the agent; give it time before a kill.
    for (int i = 0; i < 100 && ::waitpid(pid_, nullptr, WNOHANG) == 0; ++i) std::this_thread::sleep_for(50ms);
    cgtest::kill_and_reap(pid_);
    if (from_ >= 0) ::close(from_);
}

std::string PageAgent::ask(const std::string& command, std::chrono::seconds timeout) {
    const std::string line = command + "\n";
    if (::write(to_, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
        throw std::runtime_error("the page agent is gone: " + cgtest::slurp(log_));
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::size_t eol;
    while ((eol = buffer_.find('\n')) == std::string::npos) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd p{from_, POLLIN, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0)
            throw std::runtime_error(fmt::format("no answer to '{}' within {} s: {}", command, timeout.count(),
                                                 cgtest::slurp(log_)));
        char chunk[4096];
        const ssize_t n = ::read(from_, chunk, sizeof chunk);
        if (n <= 0) throw std::runtime_error("the page agent exited: " + cgtest::slurp(log_));
        buffer_.append(chunk, static_cast<std::size_t>(n));
    }
    std::string answer = buffer_.substr(0, eol);
    buffer_.erase(0, eol + 1);
    if (answer.starts_with("ok")) return answer.size() > 3 ? answer.substr(3) : std::string();
    throw std::runtime_error(fmt::format("'{}': {}", command, answer));
}

const std::string& customer_list() {
    // Three detectors, so the page shows several categories with their counts.
    static const std::string text = "Held-print test list (synthetic)\n"
                                    "Jiro Tanaka, card " + scan_test::luhn_complete("401288888888188") + "\n"
                                    "Yoko Sato, card " + scan_test::luhn_complete("520082828282821") + "\n"
                                    "Jiro Tanaka, My Number " + scan_test::my_number_complete("27182818284") + "\n"
                                    "Yoko Sato, mail yoko.sato@example.co.jp\n";
    return text;
}

fs::path artefacts() {
    fs::create_directories(CG_ARTEFACTS);
    return CG_ARTEFACTS;
}

namespace {

fs::path make_zone(const fs::path& root) {
    fs::create_directories(root / "customers");
    cgtest::spit(root / "customers" / "list.csv", customer_list());
    return root / "customers" / "list.csv";
}

std::string scene_policy(const fs::path& zone_file) {
    return "action = \"hold\"\n"
           "allow_printers = [\"secure\"]\n"
           "allow_users = [\"%cgprint-customers\"]\n"
           "threshold = 3\n\n"
           "[[zone]]\nname = \"customers\"\npaths = [\"" + zone_file.parent_path().string() + "\"]\n"
           "allow_users = [\"" + cgprint::accounts().other.name + "\"]\nrecord_allowed = true\n";
}

}  // namespace

Scene::Scene()
    : zone_file(make_zone(zone_fs.path())),
      print(scene_policy(zone_file), /*journal=*/true),
      admin(cgtest::ensure_user("cgcockpit-admin", {"custguard-admin"})),
      ws(admin, print.bus_address(), CG_PAGE_DIR),
      page(CG_PAGE_AGENT, artefacts() / "page_agent.log") {
    page.ask("open " + ws.page_url(), 90s);
}

}  // namespace cgcockpit
