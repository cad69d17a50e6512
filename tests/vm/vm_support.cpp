#include "vm_support.hpp"

#include "../support/exec_plan.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace custguard::vmtest {

namespace {

// `c` taken in a forked child. Prepared before the fork: the enforcer's threads run in
// this process and the child makes system calls only (see tests/support/exec_plan.hpp).
class Become {
public:
    explicit Become(const Creds& c)
        : creds_(c), loginuid_(c.loginuid >= 0 ? std::to_string(c.loginuid) : std::string()),
          groups_(c.groups.begin(), c.groups.end())
    {
    }
    // In the child.
    bool operator()() const noexcept
    {
        if (creds_.loginuid >= 0) {
            int fd = ::open("/proc/self/loginuid", O_WRONLY);
            if (fd < 0)
                return false;
            bool ok = ::write(fd, loginuid_.data(), loginuid_.size()) == static_cast<ssize_t>(loginuid_.size());
            ::close(fd);
            if (!ok)
                return false;
        }
        return ::setgroups(groups_.size(), groups_.data()) == 0 &&
               ::setresgid(creds_.gid, creds_.gid, creds_.gid) == 0 &&
               ::setresuid(creds_.uid, creds_.uid, creds_.uid) == 0;
    }

private:
    const Creds& creds_;
    std::string loginuid_;
    std::vector<gid_t> groups_;
};

int wait_child(pid_t pid)
{
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 1000 + WTERMSIG(status);
}

}  // namespace

int run_as(const Creds& creds, const std::function<int()>& fn)
{
    const Become become(creds);
    pid_t pid = ::fork();
    if (pid < 0)
        throw std::runtime_error("fork failed");
    if (pid == 0) {
        if (!become())
            ::_exit(200);
        ::_exit(fn() & 0xff);
    }
    int rc = wait_child(pid);
    return rc == 200 ? 2000 : rc;
}

int read_here(const std::string& path, int flags)
{
    int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0)
        return errno;
    char buf[64];
    int rc = ::read(fd, buf, sizeof buf) < 0 ? errno : 0;
    ::close(fd);
    return rc;
}

int try_read(const Creds& creds, const std::string& path)
{
    return run_as(creds, [&] { return read_here(path); });
}

int exec_as(const Creds& creds, const std::vector<std::string>& argv)
{
    const Become become(creds);
    const cgtest::ExecPlan plan(argv);
    pid_t pid = ::fork();
    if (pid < 0)
        throw std::runtime_error("fork failed");
    if (pid == 0) {
        if (!become())
            ::_exit(200);
        int devnull = ::open("/dev/null", O_WRONLY);
        ::dup2(devnull, 1);
        ::dup2(devnull, 2);
        plan.exec();
    }
    return wait_child(pid);
}

const char* proc_fd_path(int fd, char (&out)[32])
{
    static constexpr char prefix[] = "/proc/self/fd/";
    std::memcpy(out, prefix, sizeof prefix - 1);
    char digits[12];
    int n = 0;
    for (unsigned v = static_cast<unsigned>(fd);; v /= 10) {
        digits[n++] = static_cast<char>('0' + v % 10);
        if (v < 10)
            break;
    }
    char* p = out + sizeof prefix - 1;
    while (n)
        *p++ = digits[--n];
    *p = '\0';
    return out;
}

void make_dir(const std::string& path, unsigned mode)
{
    if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST)
        throw std::runtime_error("mkdir " + path + ": " + std::strerror(errno));
    ::chmod(path.c_str(), mode);
}

void write_file(const std::string& path, const std::string& data, unsigned mode)
{
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0)
        throw std::runtime_error("create " + path + ": " + std::strerror(errno));
    if (::write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size()))
        throw std::runtime_error("write " + path);
    ::close(fd);
    ::chmod(path.c_str(), mode);
}

std::string fresh_dir(const std::string& name)
{
    make_dir("/tmp/cgvm", 0755);
    const std::string dir = "/tmp/cgvm/" + name;
    std::filesystem::remove_all(dir);
    make_dir(dir, 0755);
    return dir;
}

policy::Compiled make_policy(const std::vector<ZoneSpec>& zones)
{
    policy::Compiled c;
    std::uint32_t id = 0;
    for (const auto& z : zones) {
        ++id;
        policy::CompiledZone cz;
        cz.id = id;
        cz.name = "zone" + std::to_string(id);
        cz.on_violation = z.on_violation;
        cz.record_allowed = z.record_allowed;
        cz.programs_required = !z.programs.empty();
        c.zones.push_back(cz);
        for (const auto& r : z.roots)
            c.roots.push_back({r, id});
        for (auto u : z.uids)
            c.subjects.push_back({id, policy::SubjectKind::uid, u});
        for (auto g : z.gids)
            c.subjects.push_back({id, policy::SubjectKind::gid, g});
        for (const auto& p : z.programs)
            c.programs.push_back({id, p});
        for (const auto& [uid, exp] : z.grants)
            c.grants.push_back({id, uid, exp});
    }
    return c;
}

daemon::EventHandler Events::handler()
{
    return [this](daemon::AccessEvent&& ev) {
        std::lock_guard lock(mutex_);
        events_.push_back(std::move(ev));
        cv_.notify_all();
    };
}

bool Events::wait_for(const std::function<bool(const daemon::AccessEvent&)>& pred,
                      std::chrono::milliseconds timeout)
{
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] {
        for (const auto& e : events_)
            if (pred(e))
                return true;
        return false;
    });
}

std::vector<daemon::AccessEvent> Events::snapshot()
{
    std::lock_guard lock(mutex_);
    return events_;
}

void Events::clear()
{
    std::lock_guard lock(mutex_);
    events_.clear();
}

std::int64_t realtime_s() { return static_cast<std::int64_t>(std::time(nullptr)); }

bool cpu_has_ssse3()
{
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("flags", 0) == 0)
            return (" " + line + " ").find(" ssse3 ") != std::string::npos;
    return false;
}

}  // namespace custguard::vmtest
