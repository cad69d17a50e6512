// What a forked child of a test may use. The tests fork from threaded processes (in-process
// enforcers, pipelines, std::async) and ASan's allocator in GCC 12 has no fork handlers: a
// child that allocates while another thread holds an allocator lock waits forever
// (regression: a host test hung CI for 15 minutes). So everything a child needs is built
// before the fork, and between fork and exec/_exit a child makes system calls only.
// Header-only: the fanotify and VM helpers, which do not link the test support library,
// use it too.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace cgtest {

class ExecPlan {
public:
    // argv[0] without a slash is looked up in PATH now. The child gets this process's
    // environment with `env` ("NAME=value") added or replacing and the names in `unset` removed.
    explicit ExecPlan(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
                      const std::vector<std::string>& unset = {})
        : args_(argv) {
        if (args_.empty()) throw std::runtime_error("exec: empty argv");
        if (args_[0].find('/') == std::string::npos) args_[0] = lookup(args_[0]);
        auto name_of = [](const std::string& e) { return e.substr(0, e.find('=')); };
        auto overridden = [&](const std::string& name) {
            for (const auto& e : env)
                if (name_of(e) == name) return true;
            return std::find(unset.begin(), unset.end(), name) != unset.end();
        };
        for (char** e = environ; *e; ++e)
            if (!overridden(name_of(*e))) env_.emplace_back(*e);
        for (const auto& e : env) env_.push_back(e);
        for (auto& a : args_) argv_.push_back(a.data());
        argv_.push_back(nullptr);
        for (auto& e : env_) envp_.push_back(e.data());
        envp_.push_back(nullptr);
    }
    // argv_ and envp_ point into the strings.
    ExecPlan(const ExecPlan&) = delete;
    ExecPlan& operator=(const ExecPlan&) = delete;

    // In the child: execve, or a line on stderr and exit 127 (as a shell does).
    [[noreturn]] void exec() const noexcept {
        ::execve(argv_[0], argv_.data(), envp_.data());
        const char* why = ::strerrordesc_np(errno);
        const char* parts[] = {"exec ", argv_[0], ": ", why ? why : "failed", "\n"};
        for (const char* p : parts) (void)!::write(2, p, std::strlen(p));
        ::_exit(127);
    }

private:
    static std::string lookup(const std::string& name) {
        const char* path = std::getenv("PATH");
        std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
        for (std::size_t start = 0; start <= dirs.size();) {
            const auto end = std::min(dirs.find(':', start), dirs.size());
            const std::string candidate = (end > start ? dirs.substr(start, end - start) : ".") + "/" + name;
            if (::access(candidate.c_str(), X_OK) == 0) return candidate;
            start = end + 1;
        }
        return name;  // execve fails with ENOENT
    }
    std::vector<std::string> args_, env_;
    std::vector<char*> argv_, envp_;
};

// Threads of this process. A child that has to run library code (which allocates) is
// forked only where this is 1, and the test says so before it forks.
inline std::size_t thread_count() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& t : std::filesystem::directory_iterator("/proc/self/task")) ++n;
    return n;
}

}  // namespace cgtest
