#include "page_session.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "test_support.hpp"  // tests/scan: check-digit generators

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace cgcockpit {

CockpitWs::CockpitWs(const cgtest::Cred& user, const fs::path& bus_socket, const fs::path& page_dir) {
    const fs::path pages = dir_.path() / "pages";
    fs::create_directories(pages);
    fs::copy(page_dir, pages / "custguard", fs::copy_options::recursive);
    const passwd* pw = ::getpwuid(user.uid);
    if (!pw || std::string_view(pw->pw_dir).rfind("/home/", 0) != 0)
        throw std::runtime_error("the home of " + user.name + " is not under /home (see useradd(8) HOME)");
    port_ = cgtest::free_port();
    // --kill-child: cockpit-ws is the pid namespace's init; when the test stops unshare,
    // the kernel ends everything the login started.
    const std::string script = R"(set -e
mount -t overlay overlay -o "lowerdir=$1:/usr/share/cockpit" /usr/share/cockpit
mount -t tmpfs -o mode=0755 tmpfs /run/dbus
touch /run/dbus/system_bus_socket
mount --bind "$2" /run/dbus/system_bus_socket
mount -t tmpfs -o mode=0755 tmpfs /home
install -d -m 0700 -o "$3" -g "$4" "$5"
exec /usr/lib/cockpit/cockpit-ws --no-tls --address=127.0.0.1 --port="$6"
)";
    pid_ = cgtest::spawn({"unshare", "--mount", "--propagation=private", "--pid", "--fork", "--mount-proc",
                          "--kill-child=SIGKILL", "/bin/sh", "-c", script, "sh", pages.string(), bus_socket.string(),
                          std::to_string(user.uid), std::to_string(user.gid), pw->pw_dir, std::to_string(port_)},
                         {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}, dir_.path() / "cockpit-ws.log");
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

std::string CockpitWs::login_url() const { return fmt::format("http://127.0.0.1:{}/", port_); }

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

LoginUser::~LoginUser() {
    if (!cred.name.empty()) (void)cgtest::run({"usermod", "--lock", "--shell", "/usr/sbin/nologin", cred.name});
}

LoginUser login_user(const std::string& name, const std::vector<std::string>& groups) {
    LoginUser u(cgtest::ensure_user(name, groups), {});
    std::random_device rd;
    const char* alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    for (int i = 0; i < 20; ++i) u.password += alphabet[rd() % 56];
    if (cgtest::run({"usermod", "--shell", "/bin/sh", name}).rc != 0)
        throw std::runtime_error("usermod --shell /bin/sh " + name + " failed");
    auto set = cgtest::run({"sh", "-c", "printf '%s:%s\\n' \"$0\" \"$1\" | chpasswd", name, u.password});
    if (set.rc != 0) throw std::runtime_error("chpasswd for " + name + " failed: " + set.err);
    return u;
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
      admin(login_user("cgcockpit-admin", {"custguard-admin"})),
      ws(admin.cred, print.dir() / "bus", CG_PAGE_DIR),
      page(CG_PAGE_AGENT, artefacts() / "page_agent.log") {
    page.ask("login " + ws.login_url() + " " + admin.cred.name + " " + admin.password, 90s);
    page.ask("open " + ws.page_url(), 90s);
}

}  // namespace cgcockpit
