#include "custguard/scan/sandbox.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "custguard/edm/edm.hpp"
#include "frame.hpp"
#include "seccomp_filter.hpp"

#ifndef CUSTGUARD_EXTRACT_HELPER
#error "CUSTGUARD_EXTRACT_HELPER (the installed helper's path) must be defined by the build"
#endif

namespace custguard::scan {

namespace {

// Exit statuses of the helper (see scan/tools/extract_main.cpp) and of the child before exec.
constexpr int kSetupFailed = 126;  // the child could not drop privileges or load the filter
constexpr int kExecFailed = 127;
constexpr int kOutOfMemory = 3;  // the helper caught std::bad_alloc

constexpr std::size_t kErrorTail = 512;
constexpr rlim_t kMaxFiles = 64;  // the helper, Ghostscript's pipes and the resource files it opens
constexpr rlim_t kMaxProcesses = 16;  // of the sandbox user: the helper and Ghostscript, with room for others
constexpr int kNice = 10;
// Address space the reader's own shared libraries map before it reads anything (ICU's
// Unicode data for exact customer matching alone is 30 MiB): added to SandboxOptions::memory
// so that a small limit still leaves the document its budget.
constexpr rlim_t kLibraryAllowance = rlim_t{64} << 20;  // scans yield the CPU to file servers and to custguardd itself

class Fd {
public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) reset(std::exchange(o.fd_, -1));
        return *this;
    }
    ~Fd() { reset(); }
    int get() const { return fd_; }
    void reset(int fd = -1) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_;
};

// Kills the helper's process group and reaps the helper unless it was reaped already.
class Helper {
public:
    explicit Helper(pid_t pid) : pid_(pid), pidfd_(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))) {}
    Helper(const Helper&) = delete;
    Helper& operator=(const Helper&) = delete;
    ~Helper() {
        if (pid_ > 0) {
            kill();
            (void)reap();
        }
    }
    int pidfd() const { return pidfd_.get(); }
    // Before the reap, while the pid (and so the group id) cannot be reused.
    void kill() const {
        ::kill(-pid_, SIGKILL);
        ::kill(pid_, SIGKILL);
    }
    int reap() {
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {}
        pid_ = -1;
        return status;
    }

private:
    pid_t pid_;
    Fd pidfd_;
};

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

std::string seconds(std::chrono::milliseconds ms) {
    const auto s = ms.count() / 1000, tenths = (ms.count() % 1000) / 100;
    return std::to_string(s) + (tenths ? "." + std::to_string(tenths) : "") + " s";
}

std::string mib(std::uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

// The last line the helper wrote to stderr, for the reason of a failure.
std::string last_line(std::string tail) {
    while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r')) tail.pop_back();
    if (auto nl = tail.rfind('\n'); nl != std::string::npos) tail.erase(0, nl + 1);
    for (auto& c : tail)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = ' ';
    return tail;
}

DocumentScan failed_scan(std::string reason) {
    DocumentScan d;
    d.readable = false;
    d.scan_failed = true;
    d.reason = "the document could not be read safely: " + std::move(reason);
    return d;
}

const tl::expected<std::vector<sock_filter>, std::string>& base_program() {
    static const auto program = detail::base_seccomp_program();
    return program;
}

// A descriptor of the document with its own offset, at the start, that the helper can
// read: a fresh open of the same file, or (for pipes and sockets) a copy in a memfd.
tl::expected<Fd, std::string> reopen(int fd) {
    Fd fresh(::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDONLY | O_CLOEXEC));
    if (fresh.get() >= 0 && ::lseek(fresh.get(), 0, SEEK_SET) == 0) return fresh;
    Fd copy(::memfd_create("custguard-document", MFD_CLOEXEC));
    if (copy.get() < 0) return tl::unexpected(errno_text("memfd_create"));
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            return tl::unexpected(errno_text("cannot read the document"));
        }
        for (ssize_t done = 0; done < n;) {
            const ssize_t w = ::write(copy.get(), buf + done, static_cast<std::size_t>(n - done));
            if (w < 0) {
                if (errno == EINTR) continue;
                return tl::unexpected(errno_text("cannot copy the document"));
            }
            done += w;
        }
    }
    if (::lseek(copy.get(), 0, SEEK_SET) != 0) return tl::unexpected(errno_text("lseek"));
    return copy;
}

// The compiled patterns of a configuration in a sealed memfd, compiled once per process
// and configuration (Scanner::serialized_patterns): the reader then loads them instead of
// compiling its own, which every start would otherwise cost. A few configurations are
// kept (print gate, watcher, a reload's new ones); launches hold their own reference.
std::mutex patterns_mutex;
std::map<std::string, std::shared_ptr<const Fd>> patterns_cache;

std::string patterns_key(const ScannerConfig& config) {
    std::string key;
    for (auto d : config.detectors) key += std::string(to_string(d)) + ',';
    key += '\n';
    for (const auto& k : config.keywords) key += k + '\n';
    return key;
}

tl::expected<std::shared_ptr<const Fd>, std::string> store_patterns(const Scanner& scanner) {
    auto bytes = scanner.serialized_patterns();
    if (!bytes) return tl::unexpected(bytes.error());
    auto fd = std::make_shared<Fd>(::memfd_create("custguard-patterns", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (fd->get() < 0) return tl::unexpected(errno_text("memfd_create"));
    for (std::size_t done = 0; done < bytes->size();) {
        const ssize_t w = ::write(fd->get(), bytes->data() + done, bytes->size() - done);
        if (w < 0) {
            if (errno == EINTR) continue;
            return tl::unexpected(errno_text("cannot write the compiled patterns"));
        }
        done += static_cast<std::size_t>(w);
    }
    if (::fcntl(fd->get(), F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0)
        return tl::unexpected(errno_text("cannot seal the compiled patterns"));
    std::lock_guard lock(patterns_mutex);
    if (patterns_cache.size() >= 8) patterns_cache.clear();
    patterns_cache.insert_or_assign(patterns_key(scanner.config()), fd);
    return std::shared_ptr<const Fd>(fd);
}

tl::expected<std::shared_ptr<const Fd>, std::string> compiled_patterns(const ScannerConfig& config) {
    {
        std::lock_guard lock(patterns_mutex);
        if (auto it = patterns_cache.find(patterns_key(config)); it != patterns_cache.end()) return it->second;
    }
    ScannerConfig patterns_only = config;
    patterns_only.edm.clear();  // matched outside Hyperscan: not part of the patterns
    auto scanner = Scanner::create(std::move(patterns_only));
    if (!scanner) return tl::unexpected(scanner.error());
    return store_patterns(*scanner);
}

std::vector<std::string> helper_argv(const std::string& helper, const ScannerConfig& config,
                                     std::string_view mime_hint, const SandboxOptions& options) {
    // Ghostscript gets most of the time, so its own timeout can still say what happened.
    const auto gs_timeout = std::max<std::chrono::milliseconds>(options.timeout * 9 / 10, std::chrono::milliseconds(1));
    std::vector<std::string> argv = {helper,
                                     "--format", std::to_string(frame::version),
                                     "--mime-type", std::string(mime_hint),
                                     "--keyword-proximity", std::to_string(config.keyword_proximity),
                                     "--ghostscript", options.extract.ghostscript,
                                     "--gs-timeout-ms", std::to_string(gs_timeout.count()),
                                     "--max-text-bytes", std::to_string(options.extract.max_text_bytes),
                                     "--memory", std::to_string(options.memory)};
    for (auto d : config.detectors) argv.insert(argv.end(), {"--detector", std::string(to_string(d))});
    // Each EDM index (with its key) is inherited as descriptor 3 + i (ChildPlan::edm).
    for (std::size_t i = 0; i < config.edm.size(); ++i)
        argv.insert(argv.end(), {"--detector", std::string(edm_prefix) + config.edm[i].name, "--edm",
                                 config.edm[i].name + "=" + std::to_string(3 + i)});
    for (const auto& k : config.keywords) argv.insert(argv.end(), {"--keyword", k});
    // The compiled patterns follow the EDM indexes (ChildPlan::inherited).
    argv.insert(argv.end(), {"--patterns", std::to_string(3 + config.edm.size())});
    return argv;
}

// Everything the child does between fork and exec is a plain system call: the caller is
// multi-threaded, so nothing may allocate or take a lock there.
struct ChildPlan {
    int document, out, err;
    // Sealed memfds, to become 3, 4, ...: the EDM indexes, then the compiled patterns.
    std::array<int, frame::max_edm_detectors + 1> inherited;
    std::size_t inherited_count;
    std::vector<char*> argv, envp;
    int uid, gid;
    rlimit as, cpu, fsize, nofile, nproc, core;
    bool set_nproc;
    sock_fprog filter;
    pid_t parent;
};

[[noreturn]] void child_main(const ChildPlan& p) {
    ::setpgid(0, 0);
    // Should memory run out on the host, the kernel kills the reader, never the daemon.
    if (const int oom = ::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC); oom >= 0) {
        (void)!::write(oom, "1000", 4);
        ::close(oom);
    }
    if (::dup2(p.document, 0) < 0 || ::dup2(p.out, 1) < 0 || ::dup2(p.err, 2) < 0) ::_exit(kSetupFailed);
    // Above the targets first, so that no dup2 overwrites a descriptor still to be moved.
    int moved[frame::max_edm_detectors + 1];
    for (std::size_t i = 0; i < p.inherited_count; ++i)
        if ((moved[i] = ::fcntl(p.inherited[i], F_DUPFD, static_cast<int>(3 + frame::max_edm_detectors + 1))) < 0)
            ::_exit(kSetupFailed);
    for (std::size_t i = 0; i < p.inherited_count; ++i)
        if (::dup2(moved[i], static_cast<int>(3 + i)) < 0) ::_exit(kSetupFailed);
    ::close_range(static_cast<unsigned>(3 + p.inherited_count), ~0U, 0);
    // The bounding set first (that needs CAP_SETPCAP); a caller without it has nothing to drop.
    const bool privileged = ::geteuid() == 0;
    for (int cap = 0;; ++cap) {
        if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0) continue;
        if (errno != EINVAL && privileged) ::_exit(kSetupFailed);
        break;  // EINVAL: past the last capability
    }
    if (p.gid >= 0 && (::setgroups(0, nullptr) != 0 || ::setresgid(p.gid, p.gid, p.gid) != 0)) ::_exit(kSetupFailed);
    if (p.uid >= 0 && ::setresuid(p.uid, p.uid, p.uid) != 0) ::_exit(kSetupFailed);
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3] = {};
    if (::syscall(SYS_capset, &header, none) != 0) ::_exit(kSetupFailed);
    ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    // After the switch of user: changing credentials clears the parent-death signal.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || ::getppid() != p.parent) ::_exit(kSetupFailed);
    if (::setrlimit(RLIMIT_AS, &p.as) != 0 || ::setrlimit(RLIMIT_CPU, &p.cpu) != 0 ||
        ::setrlimit(RLIMIT_FSIZE, &p.fsize) != 0 || ::setrlimit(RLIMIT_NOFILE, &p.nofile) != 0 ||
        ::setrlimit(RLIMIT_CORE, &p.core) != 0 || (p.set_nproc && ::setrlimit(RLIMIT_NPROC, &p.nproc) != 0))
        ::_exit(kSetupFailed);
    ::setpriority(PRIO_PROCESS, 0, kNice);
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ::_exit(kSetupFailed);
    if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &p.filter, 0, 0) != 0) ::_exit(kSetupFailed);
    ::execve(p.argv[0], p.argv.data(), p.envp.data());
    ::_exit(kExecFailed);
}

std::string describe_signal(int sig, std::chrono::milliseconds cpu) {
    switch (sig) {
    case SIGXCPU: return "reading it used more than " + seconds(cpu) + " of CPU time";
    case SIGSYS: return "the reader attempted a system call its sandbox forbids";
    case SIGSEGV:
    case SIGBUS:
    case SIGABRT: return "the reader crashed (signal " + std::to_string(sig) + ")";
    case SIGKILL: return "the reader was killed (by the kernel: out of memory, or its CPU limit)";
    default: return "the reader was killed by signal " + std::to_string(sig);
    }
}

}  // namespace

std::string default_helper() {
    const char* env = std::getenv("CUSTGUARD_EXTRACT_HELPER");
    return env && *env ? std::string(env) : std::string(CUSTGUARD_EXTRACT_HELPER);
}

tl::expected<void, std::string> prepare_sandboxed(const Scanner& scanner) {
    auto stored = store_patterns(scanner);
    if (!stored) return tl::unexpected(stored.error());
    return {};
}

tl::expected<void, std::string> prepare_sandboxed(const ScannerConfig& config) {
    auto patterns = compiled_patterns(config);
    if (!patterns) return tl::unexpected(patterns.error());
    return {};
}

tl::expected<DocumentScan, std::string> scan_sandboxed(const ScannerConfig& config, int fd,
                                                       std::string_view mime_hint, const SandboxOptions& options) {
    using tl::unexpected;
    const std::string helper = options.helper.empty() ? default_helper() : options.helper;
    if (::access(helper.c_str(), X_OK) != 0)
        return unexpected("the document reader " + helper + " cannot be run (" + std::strerror(errno) +
                          "): reinstall custguard, or set CUSTGUARD_EXTRACT_HELPER");
    const auto& program = base_program();
    if (!program) return unexpected("cannot build the reader's seccomp filter: " + program.error());
    if (config.edm.size() > frame::max_edm_detectors)
        return unexpected("more than " + std::to_string(frame::max_edm_detectors) + " edm: detectors");
    for (const auto& e : config.edm)
        if (!e.matcher || e.matcher->sealed_fd() < 0)
            return unexpected("detector edm:" + e.name + " has no index opened from its file for the reader");
    auto patterns = compiled_patterns(config);
    if (!patterns) return unexpected(patterns.error());
    auto document = reopen(fd);
    if (!document) return unexpected(document.error());
    int out_pipe[2], err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) return unexpected(errno_text("pipe"));
    Fd out_read(out_pipe[0]), out_write(out_pipe[1]);
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) return unexpected(errno_text("pipe"));
    Fd err_read(err_pipe[0]), err_write(err_pipe[1]);

    auto args = helper_argv(helper, config, mime_hint, options);
    const char* path = std::getenv("PATH");
    std::vector<std::string> env = {std::string("PATH=") + (path ? path : "/usr/bin:/bin"), "LC_ALL=C.UTF-8"};
    // CPU time a little above the wall clock: the timeout says it better when both apply.
    const auto cpu = std::chrono::duration_cast<std::chrono::seconds>(options.timeout) + std::chrono::seconds(1);
    const auto cpu_limit = static_cast<rlim_t>(cpu.count());
    ChildPlan plan{document->get(),
                   out_write.get(),
                   err_write.get(),
                   {},
                   config.edm.size() + 1,
                   {},
                   {},
                   options.uid,
                   options.gid,
                   {options.memory + kLibraryAllowance, options.memory + kLibraryAllowance},
                   {cpu_limit, cpu_limit + 1},
                   {0, 0},
                   {kMaxFiles, kMaxFiles},
                   {kMaxProcesses, kMaxProcesses},
                   {0, 0},
                   options.uid >= 0,
                   {static_cast<unsigned short>(program->size()), const_cast<sock_filter*>(program->data())},
                   ::getpid()};
    for (std::size_t i = 0; i < config.edm.size(); ++i) plan.inherited[i] = config.edm[i].matcher->sealed_fd();
    plan.inherited[config.edm.size()] = (*patterns)->get();
    for (auto& a : args) plan.argv.push_back(a.data());
    plan.argv.push_back(nullptr);
    for (auto& e : env) plan.envp.push_back(e.data());
    plan.envp.push_back(nullptr);

    const auto start = std::chrono::steady_clock::now();
    const pid_t pid = ::fork();
    if (pid < 0) return unexpected(errno_text("fork"));
    if (pid == 0) child_main(plan);
    Helper child(pid);
    out_write.reset();
    err_write.reset();
    document->reset();
    if (child.pidfd() < 0) return unexpected(errno_text("pidfd_open"));
    for (int f : {out_read.get(), err_read.get()}) ::fcntl(f, F_SETFL, ::fcntl(f, F_GETFL) | O_NONBLOCK);

    std::string output, err_tail;
    bool too_much = false, timed_out = false, exited = false;
    const auto deadline = start + options.timeout;
    char buf[16384];
    auto drain = [&](Fd& f, bool is_out) {
        for (;;) {
            const ssize_t n = ::read(f.get(), buf, sizeof buf);
            if (n > 0) {
                if (is_out) {
                    output.append(buf, static_cast<std::size_t>(std::min<ssize_t>(n, frame::max_frame_bytes + 1)));
                    too_much = output.size() > frame::max_frame_bytes;
                    if (too_much) return;
                } else {
                    err_tail.append(buf, static_cast<std::size_t>(n));
                    if (err_tail.size() > kErrorTail) err_tail.erase(0, err_tail.size() - kErrorTail);
                }
                continue;
            }
            if (n == 0 || (errno != EINTR && errno != EAGAIN)) f.reset();
            return;
        }
    };
    while (!exited && !too_much) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            timed_out = true;
            break;
        }
        pollfd fds[4] = {{child.pidfd(), POLLIN, 0}, {out_read.get(), POLLIN, 0}, {err_read.get(), POLLIN, 0},
                         {options.cancel_fd, POLLIN, 0}};
        const int rc = ::poll(fds, 4, static_cast<int>(std::min<long long>(left.count(), 60'000)));
        if (rc < 0 && errno != EINTR) return unexpected(errno_text("poll"));
        if (rc <= 0) continue;
        if (fds[3].revents) {
            child.kill();
            return unexpected(std::string(cancelled_suffix));
        }
        if (fds[1].revents) drain(out_read, true);
        if (fds[2].revents) drain(err_read, false);
        exited = fds[0].revents != 0;
    }
    // Whatever is left in the group (a stray Ghostscript) goes with the helper.
    child.kill();
    if (out_read.get() >= 0 && !too_much) drain(out_read, true);
    if (err_read.get() >= 0) drain(err_read, false);
    const int status = child.reap();
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);

    if (timed_out) return failed_scan("reading it took longer than " + seconds(options.timeout) + " (stopped)");
    if (too_much) return failed_scan("the reader's answer was larger than " + std::to_string(frame::max_frame_bytes) + " bytes");
    if (WIFSIGNALED(status)) {
        // Our own SIGKILL only follows the timeout; a SIGKILL here came from the kernel
        // (CPU hard limit or the OOM killer). poppler aborts with "Out of memory".
        if (WTERMSIG(status) == SIGABRT && last_line(err_tail).find("memory") != std::string::npos)
            return failed_scan("reading it needed more memory than the limit of " + mib(options.memory));
        return failed_scan(describe_signal(WTERMSIG(status), cpu) + " after " + seconds(took));
    }
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (code == kSetupFailed && output.empty())
        return unexpected("cannot start the document reader " + helper + " in its sandbox (as uid " +
                          std::to_string(options.uid) + "): the daemon needs CAP_SETUID, CAP_SETGID and CAP_SETPCAP");
    if (code == kExecFailed && output.empty()) return unexpected("cannot execute the document reader " + helper);
    if (code == kOutOfMemory) return failed_scan("reading it needed more memory than the limit of " + mib(options.memory));
    if (code != 0) {
        const auto line = last_line(err_tail);
        return failed_scan("the reader failed (exit status " + std::to_string(code) + (line.empty() ? "" : ": " + line) +
                           ")");
    }
    auto decoded = frame::decode(output);
    if (!decoded) return failed_scan("the reader's answer is malformed (" + decoded.error() + ")");
    return *decoded;
}

tl::expected<DocumentScan, std::string> scan_file_sandboxed(const ScannerConfig& config, const std::string& path,
                                                            std::string_view mime_hint, const SandboxOptions& options) {
    Fd fd(path == "-" ? ::dup(0) : ::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return tl::unexpected("cannot open '" + path + "': " + std::strerror(errno));
    auto result = scan_sandboxed(config, fd.get(), mime_hint, options);
    if (!result) return tl::unexpected("'" + path + "': " + result.error());
    return result;
}

}  // namespace custguard::scan
