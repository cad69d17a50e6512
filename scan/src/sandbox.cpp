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
#include <sys/socket.h>
#include <sys/stat.h>
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
#include <optional>
#include <utility>

#include "custguard/edm/edm.hpp"
#include "custguard/common/unique_fd.hpp"
#include "frame.hpp"
#include "seccomp_filter.hpp"

#ifndef CUSTGUARD_EXTRACT_HELPER
#error "CUSTGUARD_EXTRACT_HELPER (the installed helper's path) must be defined by the build"
#endif

namespace custguard::scan {

namespace {

using common::UniqueFd;

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
    pid_t pid() const { return pid_; }
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
    UniqueFd pidfd_;
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
tl::expected<UniqueFd, std::string> reopen(int fd) {
    UniqueFd fresh(::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDONLY | O_CLOEXEC));
    if (fresh.get() >= 0 && ::lseek(fresh.get(), 0, SEEK_SET) == 0) return fresh;
    UniqueFd copy(::memfd_create("custguard-document", MFD_CLOEXEC));
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
std::map<std::string, std::shared_ptr<const UniqueFd>> patterns_cache;

std::string patterns_key(const ScannerConfig& config) {
    std::string key;
    for (auto d : config.detectors) key += std::string(to_string(d)) + ',';
    key += '\n';
    for (const auto& k : config.keywords) key += k + '\n';
    return key;
}

tl::expected<std::shared_ptr<const UniqueFd>, std::string> store_patterns(const Scanner& scanner) {
    auto bytes = scanner.serialized_patterns();
    if (!bytes) return tl::unexpected(bytes.error());
    auto fd = std::make_shared<UniqueFd>(::memfd_create("custguard-patterns", MFD_CLOEXEC | MFD_ALLOW_SEALING));
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
    return std::shared_ptr<const UniqueFd>(fd);
}

tl::expected<std::shared_ptr<const UniqueFd>, std::string> compiled_patterns(const ScannerConfig& config) {
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
                                     "--mode", std::string(to_string(options.extract.mode)),
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


// A reader started in its sandbox, its answer and error pipes read non-blocking.
struct Started {
    std::unique_ptr<Helper> child;
    UniqueFd out, err;
    std::chrono::steady_clock::time_point start;
};

// CPU time of one document: a little above the wall clock, so that the timeout says it
// better when both apply.
std::chrono::seconds document_cpu(const SandboxOptions& options) {
    return std::chrono::duration_cast<std::chrono::seconds>(options.timeout) + std::chrono::seconds(1);
}

tl::expected<std::string, std::string> usable_helper(const SandboxOptions& options) {
    std::string helper = options.helper.empty() ? default_helper() : options.helper;
    if (::access(helper.c_str(), X_OK) != 0)
        return tl::unexpected("the document reader " + helper + " cannot be run (" + std::strerror(errno) +
                              "): reinstall custguard, or set CUSTGUARD_EXTRACT_HELPER");
    return helper;
}

// Starts the helper with `args` and `input` as its standard input, in the sandbox
// (child_main), with `cpu_seconds` of CPU time.
tl::expected<Started, std::string> start_reader(std::vector<std::string> args, const ScannerConfig& config,
                                                const std::shared_ptr<const UniqueFd>& patterns, const SandboxOptions& options,
                                                int input, rlim_t cpu_seconds) {
    using tl::unexpected;
    const auto& program = base_program();
    if (!program) return unexpected("cannot build the reader's seccomp filter: " + program.error());
    int out_pipe[2], err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) return unexpected(errno_text("pipe"));
    UniqueFd out_read(out_pipe[0]), out_write(out_pipe[1]);
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) return unexpected(errno_text("pipe"));
    UniqueFd err_read(err_pipe[0]), err_write(err_pipe[1]);

    const char* path = std::getenv("PATH");
    std::vector<std::string> env = {std::string("PATH=") + (path ? path : "/usr/bin:/bin"), "LC_ALL=C.UTF-8"};
    ChildPlan plan{input,
                   out_write.get(),
                   err_write.get(),
                   {},
                   config.edm.size() + 1,
                   {},
                   {},
                   options.uid,
                   options.gid,
                   {options.memory + kLibraryAllowance, options.memory + kLibraryAllowance},
                   {cpu_seconds, cpu_seconds + 1},
                   {0, 0},
                   {kMaxFiles, kMaxFiles},
                   {kMaxProcesses, kMaxProcesses},
                   {0, 0},
                   options.uid >= 0,
                   {static_cast<unsigned short>(program->size()), const_cast<sock_filter*>(program->data())},
                   ::getpid()};
    for (std::size_t i = 0; i < config.edm.size(); ++i) plan.inherited[i] = config.edm[i].matcher->sealed_fd();
    plan.inherited[config.edm.size()] = patterns->get();
    for (auto& a : args) plan.argv.push_back(a.data());
    plan.argv.push_back(nullptr);
    for (auto& e : env) plan.envp.push_back(e.data());
    plan.envp.push_back(nullptr);

    Started started{nullptr, UniqueFd(), UniqueFd(), std::chrono::steady_clock::now()};
    const pid_t pid = ::fork();
    if (pid < 0) return unexpected(errno_text("fork"));
    if (pid == 0) child_main(plan);
    started.child = std::make_unique<Helper>(pid);
    if (started.child->pidfd() < 0) return unexpected(errno_text("pidfd_open"));
    for (int f : {out_read.get(), err_read.get()}) ::fcntl(f, F_SETFL, ::fcntl(f, F_GETFL) | O_NONBLOCK);
    started.out = std::move(out_read);
    started.err = std::move(err_read);
    return started;
}

// Checks what every launch needs and returns the compiled patterns to hand over.
tl::expected<std::shared_ptr<const UniqueFd>, std::string> launch_inputs(const ScannerConfig& config) {
    if (config.edm.size() > frame::max_edm_detectors)
        return tl::unexpected("more than " + std::to_string(frame::max_edm_detectors) + " edm: detectors");
    for (const auto& e : config.edm)
        if (!e.matcher || e.matcher->sealed_fd() < 0)
            return tl::unexpected("detector edm:" + e.name + " has no index opened from its file for the reader");
    return compiled_patterns(config);
}

// Appends what is readable on `f` to `into` (bounded to `max` bytes: `into` then holds
// max + 1), closing `f` at its end.
void drain(UniqueFd& f, std::string& into, std::size_t max, bool keep_tail) {
    char buf[16384];
    for (;;) {
        const ssize_t n = ::read(f.get(), buf, sizeof buf);
        if (n > 0) {
            into.append(buf, static_cast<std::size_t>(n));
            if (into.size() > max) {
                if (!keep_tail) {
                    into.resize(max + 1);
                    return;
                }
                into.erase(0, into.size() - max);
            }
            continue;
        }
        if (n == 0 || (errno != EINTR && errno != EAGAIN)) f.reset();
        if (n < 0 && errno == EINTR) continue;
        return;
    }
}

// What a reader's exit while a document was pending says about that document; nullopt
// when it exited normally (status 0), which the caller judges by the answer.
std::optional<tl::expected<DocumentScan, std::string>> judge_exit(int status, bool answered, const std::string& err_tail,
                                                                  std::chrono::milliseconds took,
                                                                  const std::string& helper,
                                                                  const SandboxOptions& options) {
    using tl::unexpected;
    if (WIFSIGNALED(status)) {
        // Our own SIGKILL only follows the timeout; a SIGKILL here came from the kernel
        // (CPU hard limit or the OOM killer). poppler aborts with "Out of memory".
        if (WTERMSIG(status) == SIGABRT && last_line(err_tail).find("memory") != std::string::npos)
            return failed_scan("reading it needed more memory than the limit of " + mib(options.memory));
        return failed_scan(describe_signal(WTERMSIG(status), document_cpu(options)) + " after " + seconds(took));
    }
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (code == kSetupFailed && !answered)
        return unexpected("cannot start the document reader " + helper + " in its sandbox (as uid " +
                          std::to_string(options.uid) + "): the daemon needs CAP_SETUID, CAP_SETGID and CAP_SETPCAP");
    if (code == kExecFailed && !answered) return unexpected("cannot execute the document reader " + helper);
    if (code == kOutOfMemory) return failed_scan("reading it needed more memory than the limit of " + mib(options.memory));
    if (code != 0) {
        const auto line = last_line(err_tail);
        return failed_scan("the reader failed (exit status " + std::to_string(code) + (line.empty() ? "" : ": " + line) +
                           ")");
    }
    return std::nullopt;
}

std::string timed_out_reason(const SandboxOptions& options) {
    return "reading it took longer than " + seconds(options.timeout) + " (stopped)";
}

std::string too_large_reason() {
    return "the reader's answer was larger than " + std::to_string(frame::max_frame_bytes) + " bytes";
}

// CPU seconds (user and system) that process `pid` has used; nullopt when unknown.
std::optional<double> cpu_used(pid_t pid) {
    UniqueFd f(::open(("/proc/" + std::to_string(pid) + "/stat").c_str(), O_RDONLY | O_CLOEXEC));
    if (f.get() < 0) return std::nullopt;
    char buf[1024];
    const ssize_t n = ::read(f.get(), buf, sizeof buf - 1);
    if (n <= 0) return std::nullopt;
    buf[n] = '\0';
    const char* p = std::strrchr(buf, ')');  // after the command name, which may hold spaces
    if (!p) return std::nullopt;
    unsigned long long utime = 0, stime = 0;
    // Fields 3..13 are skipped; 14 and 15 are utime and stime in clock ticks.
    if (std::sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return std::nullopt;
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// Answers of a batch reader: a 4-byte little-endian length, then that many bytes of a
// frame (frame.hpp); length 0 says the document needs Ghostscript, which batch readers
// may not start.
constexpr std::size_t kLengthBytes = 4;
constexpr std::size_t kMaxMimeBytes = 255;  // mirrors custguard-extract's request buffer

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
    auto helper = usable_helper(options);
    if (!helper) return unexpected(helper.error());
    auto patterns = launch_inputs(config);
    if (!patterns) return unexpected(patterns.error());
    auto document = reopen(fd);
    if (!document) return unexpected(document.error());
    auto started = start_reader(helper_argv(*helper, config, mime_hint, options), config, *patterns, options,
                                document->get(), static_cast<rlim_t>(document_cpu(options).count()));
    document->reset();
    if (!started) return unexpected(started.error());
    Helper& child = *started->child;
    UniqueFd& out_read = started->out;
    UniqueFd& err_read = started->err;

    std::string output, err_tail;
    bool too_much = false, timed_out = false, exited = false;
    const auto deadline = started->start + options.timeout;
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
        if (fds[1].revents) drain(out_read, output, frame::max_frame_bytes, false);
        if (fds[2].revents) drain(err_read, err_tail, kErrorTail, true);
        too_much = output.size() > frame::max_frame_bytes;
        exited = fds[0].revents != 0;
    }
    // Whatever is left in the group (a stray Ghostscript) goes with the helper.
    child.kill();
    if (out_read.get() >= 0 && !too_much) drain(out_read, output, frame::max_frame_bytes, false);
    if (err_read.get() >= 0) drain(err_read, err_tail, kErrorTail, true);
    too_much = too_much || output.size() > frame::max_frame_bytes;
    const int status = child.reap();
    const auto took =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started->start);

    if (timed_out) return failed_scan(timed_out_reason(options));
    if (too_much) return failed_scan(too_large_reason());
    if (auto judged = judge_exit(status, !output.empty(), err_tail, took, *helper, options)) return *judged;
    auto decoded = frame::decode(output);
    if (!decoded) return failed_scan("the reader's answer is malformed (" + decoded.error() + ")");
    return *decoded;
}

tl::expected<DocumentScan, std::string> scan_file_sandboxed(const ScannerConfig& config, const std::string& path,
                                                            std::string_view mime_hint, const SandboxOptions& options) {
    UniqueFd fd(path == "-" ? ::dup(0) : ::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return tl::unexpected("cannot open '" + path + "': " + std::strerror(errno));
    auto result = scan_sandboxed(config, fd.get(), mime_hint, options);
    if (!result) return tl::unexpected("'" + path + "': " + result.error());
    return result;
}

struct SandboxedReader::Running {
    std::unique_ptr<Helper> child;
    UniqueFd control, out, err;
    std::string key;  // what it was started with: another key needs another reader
    std::uint32_t documents = 0;
    std::uint64_t input_bytes = 0;
    std::string answer, err_tail;
    pid_t pid = -1;
};

SandboxedReader::SandboxedReader() : SandboxedReader(Limits{}) {}
SandboxedReader::SandboxedReader(Limits limits) : limits_(limits) {}
SandboxedReader::~SandboxedReader() = default;  // ~Helper kills the group and reaps

int SandboxedReader::reader_pid() const { return running_ ? running_->pid : -1; }

tl::expected<DocumentScan, std::string> SandboxedReader::scan(const ScannerConfig& config, int fd,
                                                              std::string_view mime_hint, const SandboxOptions& options) {
    using tl::unexpected;
    auto helper = usable_helper(options);
    if (!helper) return unexpected(helper.error());
    auto patterns = launch_inputs(config);
    if (!patterns) return unexpected(patterns.error());
    if (mime_hint.size() > kMaxMimeBytes) return scan_sandboxed(config, fd, mime_hint, options);
    auto args = helper_argv(*helper, config, "", options);
    args.insert(args.begin() + 1, "--batch");
    // The launch: arguments, user, and the inherited descriptors (their inodes: a reload
    // opens new ones, and a number may be reused for another).
    std::string key = std::to_string(options.uid) + ' ' + std::to_string(options.gid) + '\n';
    for (const auto& a : args) key += a + '\n';
    auto add_inode = [&](int inherited) {
        struct stat st {};
        if (::fstat(inherited, &st) == 0) key += std::to_string(st.st_dev) + ':' + std::to_string(st.st_ino) + '\n';
    };
    for (const auto& e : config.edm) add_inode(e.matcher->sealed_fd());
    add_inode((*patterns)->get());

    auto document = reopen(fd);
    if (!document) return unexpected(document.error());
    struct stat st {};
    const std::uint64_t size = ::fstat(document->get(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;

    // A reader started for another configuration, or gone meanwhile (killed while idle),
    // is replaced before the document is handed over.
    if (running_) {
        pollfd gone{running_->child->pidfd(), POLLIN, 0};
        if (running_->key != key || ::poll(&gone, 1, 0) != 0) running_.reset();
    }
    const auto cpu = document_cpu(options);
    for (int attempt = 0;; ++attempt) {
        if (!running_) {
            int pair[2];
            if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
                return unexpected(errno_text("socketpair"));
            UniqueFd ours(pair[0]), theirs(pair[1]);
            // Twice one document's CPU time; retired once it has used one (below), so
            // that every document still has its own.
            auto started = start_reader(args, config, *patterns, options, theirs.get(),
                                        static_cast<rlim_t>(2 * cpu.count()));
            if (!started) return unexpected(started.error());
            ++started_;
            running_ = std::make_unique<Running>();
            running_->pid = started->child->pid();
            running_->child = std::move(started->child);
            running_->out = std::move(started->out);
            running_->err = std::move(started->err);
            running_->control = std::move(ours);
            running_->key = key;
        }
        char none = 0;
        iovec iov{mime_hint.empty() ? &none : const_cast<char*>(mime_hint.data()), mime_hint.empty() ? 1 : mime_hint.size()};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        const int doc_fd = document->get();
        std::memcpy(CMSG_DATA(c), &doc_fd, sizeof doc_fd);
        ssize_t sent;
        while ((sent = ::sendmsg(running_->control.get(), &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR) {}
        if (sent >= 0) break;
        // The reader went between the check and the send; a fresh one that cannot take a
        // request says why below.
        if (attempt > 0) break;
        running_.reset();
    }
    document->reset();

    Running& r = *running_;
    r.answer.clear();
    if (r.err.get() >= 0) drain(r.err, r.err_tail, kErrorTail, true);  // the previous document's
    r.err_tail.clear();
    const auto start = std::chrono::steady_clock::now();
    const auto deadline = start + options.timeout;
    bool exited = false, complete = false;
    std::uint32_t length = 0;
    while (!exited && !complete) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            running_.reset();  // kills and reaps; the next document gets a fresh reader
            return failed_scan(timed_out_reason(options));
        }
        pollfd fds[4] = {{r.child->pidfd(), POLLIN, 0}, {r.out.get(), POLLIN, 0}, {r.err.get(), POLLIN, 0},
                         {options.cancel_fd, POLLIN, 0}};
        const int rc = ::poll(fds, 4, static_cast<int>(std::min<long long>(left.count(), 60'000)));
        if (rc < 0 && errno != EINTR) {
            running_.reset();
            return unexpected(errno_text("poll"));
        }
        if (rc <= 0) continue;
        if (fds[3].revents) {
            running_.reset();
            return unexpected(std::string(cancelled_suffix));
        }
        if (fds[1].revents) drain(r.out, r.answer, kLengthBytes + frame::max_frame_bytes, false);
        if (fds[2].revents) drain(r.err, r.err_tail, kErrorTail, true);
        exited = fds[0].revents != 0;
        if (r.answer.size() >= kLengthBytes) {
            const auto* b = reinterpret_cast<const unsigned char*>(r.answer.data());
            length = b[0] | (b[1] << 8) | (b[2] << 16) | (std::uint32_t{b[3]} << 24);
            if (length > frame::max_frame_bytes) {
                running_.reset();
                return failed_scan(too_large_reason());
            }
            complete = r.answer.size() >= kLengthBytes + length;
        }
    }
    if (!complete) {
        // Gone with the document pending: as a single-document reader's exit says.
        r.child->kill();
        if (r.out.get() >= 0) drain(r.out, r.answer, kLengthBytes + frame::max_frame_bytes, false);
        if (r.err.get() >= 0) drain(r.err, r.err_tail, kErrorTail, true);
        const int status = r.child->reap();
        const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
        auto judged = judge_exit(status, !r.answer.empty(), r.err_tail, took, *helper, options);
        running_.reset();
        if (judged) return *judged;
        return failed_scan("the reader's answer is malformed (it ended without one)");
    }
    if (r.answer.size() != kLengthBytes + length) {  // more than one answer to one request
        running_.reset();
        return failed_scan("the reader's answer is malformed (more than one answer)");
    }
    if (length == 0) return scan_sandboxed(config, fd, mime_hint, options);  // needs Ghostscript
    auto decoded = frame::decode(std::string_view(r.answer).substr(kLengthBytes));
    if (!decoded) {
        running_.reset();
        return failed_scan("the reader's answer is malformed (" + decoded.error() + ")");
    }
    ++r.documents;
    r.input_bytes += size;
    const auto used = cpu_used(r.pid);
    if (exited || r.documents >= limits_.max_documents || r.input_bytes >= limits_.max_input_bytes || !used ||
        *used >= static_cast<double>(cpu.count()))
        running_.reset();
    return *decoded;
}

}  // namespace custguard::scan
