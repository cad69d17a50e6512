#include "subprocess.hpp"
#include "custguard/common/unique_fd.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <utility>

extern char** environ;

namespace custguard::scan::detail {

namespace {

using Fd = common::UniqueFd;

// Kills and reaps the child unless it was reaped normally.
class Child {
public:
    explicit Child(pid_t pid) : pid_(pid) {}
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    ~Child() {
        if (pid_ > 0) {
            ::kill(-pid_, SIGKILL);
            ::kill(pid_, SIGKILL);
            int status = 0;
            while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {}
        }
    }
    pid_t pid() const { return pid_; }
    int wait() {
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0) {
            if (errno != EINTR) {
                pid_ = -1;
                return -1;
            }
        }
        pid_ = -1;
        if (WIFEXITED(status)) return WEXITSTATUS(status);
        if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
        return -1;
    }
    void kill_group() {
        if (pid_ > 0) {
            ::kill(-pid_, SIGKILL);
            ::kill(pid_, SIGKILL);
        }
    }

private:
    pid_t pid_;
};

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

}  // namespace

std::string find_program(std::string_view program) {
    if (program.empty()) return {};
    if (program.find('/') != std::string_view::npos) return std::string(program);
    const char* path = std::getenv("PATH");
    std::string_view dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
    while (true) {
        const auto colon = dirs.find(':');
        std::string dir(dirs.substr(0, colon));
        if (dir.empty()) dir = ".";
        std::string candidate = dir + "/" + std::string(program);
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
        if (colon == std::string_view::npos) break;
        dirs.remove_prefix(colon + 1);
    }
    return {};
}

tl::expected<ProcessResult, std::string> run_bounded(const std::vector<std::string>& argv,
                                                     std::string_view input, const ProcessLimits& limits) {
    if (argv.empty()) return tl::unexpected(std::string("no program to run"));
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return tl::unexpected(errno_text("socketpair"));
    Fd in_parent(sv[0]), in_child(sv[1]);
    int out_pipe[2], err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) return tl::unexpected(errno_text("pipe"));
    Fd out_read(out_pipe[0]), out_write(out_pipe[1]);
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) return tl::unexpected(errno_text("pipe"));
    Fd err_read(err_pipe[0]), err_write(err_pipe[1]);

    // Everything the child needs is prepared before fork: after it only async-signal-safe
    // calls are allowed (the caller may be multi-threaded).
    std::vector<char*> cargv;
    for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    struct rlimit mem{};
    mem.rlim_cur = mem.rlim_max = limits.memory ? limits.memory : RLIM_INFINITY;

    const pid_t pid = ::fork();
    if (pid < 0) return tl::unexpected(errno_text("fork"));
    if (pid == 0) {
        ::setpgid(0, 0);
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the caller
        if (::dup2(in_child.get(), 0) < 0 || ::dup2(out_write.get(), 1) < 0 || ::dup2(err_write.get(), 2) < 0)
            ::_exit(kSetupFailed);
        ::close_range(3, ~0U, 0);
        if (limits.memory) ::setrlimit(RLIMIT_AS, &mem);
        if (limits.gid >= 0 && (::setgroups(0, nullptr) != 0 || ::setgid(static_cast<gid_t>(limits.gid)) != 0))
            ::_exit(kSetupFailed);
        if (limits.uid >= 0 && ::setuid(static_cast<uid_t>(limits.uid)) != 0) ::_exit(kSetupFailed);
        ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        ::signal(SIGPIPE, SIG_DFL);
        ::execve(cargv[0], cargv.data(), environ);
        ::_exit(127);
    }
    Child child(pid);
    in_child.reset();
    out_write.reset();
    err_write.reset();
    for (int fd : {in_parent.get(), out_read.get(), err_read.get()})
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    if (input.empty()) in_parent.reset();

    ProcessResult result;
    const auto deadline = std::chrono::steady_clock::now() + limits.timeout;
    std::size_t written = 0;
    char buf[65536];
    while (out_read.get() >= 0 || err_read.get() >= 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            result.timed_out = true;
            child.kill_group();
            break;
        }
        pollfd fds[3];
        nfds_t nfds = 0;
        int idx_in = -1, idx_out = -1, idx_err = -1;
        if (in_parent.get() >= 0) { idx_in = static_cast<int>(nfds); fds[nfds++] = {in_parent.get(), POLLOUT, 0}; }
        if (out_read.get() >= 0) { idx_out = static_cast<int>(nfds); fds[nfds++] = {out_read.get(), POLLIN, 0}; }
        if (err_read.get() >= 0) { idx_err = static_cast<int>(nfds); fds[nfds++] = {err_read.get(), POLLIN, 0}; }
        const int rc = ::poll(fds, nfds, static_cast<int>(std::min<long long>(left.count(), 1000)));
        if (rc < 0) {
            if (errno == EINTR) continue;
            return tl::unexpected(errno_text("poll"));
        }
        if (idx_in >= 0 && fds[idx_in].revents) {
            const ssize_t n = ::send(in_parent.get(), input.data() + written, input.size() - written, MSG_NOSIGNAL);
            if (n > 0) written += static_cast<std::size_t>(n);
            // The child may stop reading early (EPIPE): fine, it has what it wanted.
            if ((n < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) in_parent.reset();
        }
        if (idx_out >= 0 && fds[idx_out].revents) {
            const ssize_t n = ::read(out_read.get(), buf, sizeof buf);
            if (n > 0) {
                const std::size_t room = limits.max_output - std::min(limits.max_output, result.output.size());
                result.output.append(buf, std::min<std::size_t>(room, static_cast<std::size_t>(n)));
                if (static_cast<std::size_t>(n) > room) {
                    result.output_truncated = true;
                    child.kill_group();
                    break;
                }
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                out_read.reset();
            }
        }
        if (idx_err >= 0 && fds[idx_err].revents) {
            const ssize_t n = ::read(err_read.get(), buf, sizeof buf);
            if (n > 0) {
                result.error_tail.append(buf, static_cast<std::size_t>(n));
                if (result.error_tail.size() > 4096) result.error_tail.erase(0, result.error_tail.size() - 4096);
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                err_read.reset();
            }
        }
    }
    in_parent.reset();
    result.exit_status = child.wait();
    return result;
}

}  // namespace custguard::scan::detail
