#include "custguard/discover/survey.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>

#include "custguard/discover/db.hpp"
#include "custguard/scan/document.hpp"
#include "custguard/scan/extract.hpp"
#include "custguard/scan/findings.hpp"
#include "custguard/scan/utf8.hpp"
#include "custguard/common/unique_dir.hpp"
#include "custguard/common/unique_fd.hpp"

namespace custguard::discover {

namespace {

using common::UniqueFd;

// <linux/ioprio.h> is not in every libc's headers; the ABI is stable.
constexpr int k_ioprio_who_process = 1;
constexpr int k_ioprio_class_shift = 13;
constexpr int k_ioprio_class_idle = 3;

constexpr std::size_t k_block = 1 << 20;
constexpr std::size_t k_queue_max = 64;          // files waiting for a scanning thread
constexpr std::size_t k_batch_results = 128;     // scanned files per transaction

std::int64_t ns(const struct timespec& t) { return std::int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec; }

struct Job {
    std::string path;
    struct stat st;
};

struct Scanned {
    std::string path;
    std::int64_t dev = 0, ino = 0, size = 0, mtime_ns = 0, ctime_ns = 0;
    bool readable = false;
    std::string reason;
    std::string doc_type;
    std::string findings;
    bool in_process = false;
    bool sandboxed = false;
};

tl::expected<std::size_t, std::string> pread_full(int fd, char* buf, std::size_t size, off_t offset) {
    std::size_t have = 0;
    while (have < size) {
        const ssize_t n = ::pread(fd, buf + have, size - have, offset + static_cast<off_t>(have));
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            return tl::unexpected(std::string(std::strerror(errno)));
        }
        have += static_cast<std::size_t>(n);
    }
    return have;
}

void set_identity(Scanned& s, const struct stat& st) {
    s.dev = static_cast<std::int64_t>(st.st_dev);
    s.ino = static_cast<std::int64_t>(st.st_ino);
    s.size = static_cast<std::int64_t>(st.st_size);
    s.mtime_ns = ns(st.st_mtim);
    s.ctime_ns = ns(st.st_ctim);
}

// One file: UTF-8 text streamed in process, formats that need a parser in the sandbox.
Scanned scan_one(scan::Scanner& scanner, scan::SandboxedReader& reader, const scan::SandboxOptions& sandbox, const Job& job,
                 std::string& block) {
    Scanned s;
    s.path = job.path;
    set_identity(s, job.st);
    s.doc_type = std::string(scan::to_string(scan::DocType::unknown));
    // O_NOATIME: a survey must not make every file look recently used (backup and
    // retention tools read atime). Only the owner (or CAP_FOWNER) may ask for it.
    int raw = ::open(job.path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | O_NOATIME);
    if (raw < 0 && errno == EPERM) raw = ::open(job.path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (raw < 0) {
        s.reason = std::string("cannot open: ") + std::strerror(errno);
        return s;
    }
    UniqueFd fd(raw);
    struct stat st;
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        s.reason = "replaced by something other than a regular file while surveyed";
        return s;
    }
    set_identity(s, st);  // what was read, even if it changed since the walk saw it

    block.resize(k_block);
    auto got = pread_full(fd.get(), block.data(), block.size(), 0);
    if (!got) {
        s.reason = "cannot read: " + got.error();
        return s;
    }
    std::string_view head(block.data(), *got);
    const auto type = scan::sniff(head);
    const bool utf16 = head.starts_with("\xFF\xFE") || head.starts_with("\xFE\xFF");
    if (type == scan::DocType::text && !utf16) {
        s.doc_type = std::string(scan::to_string(type));
        scan::Utf8Validator utf8;
        scanner.begin();
        std::string_view piece = head;
        if (piece.starts_with("\xEF\xBB\xBF")) piece.remove_prefix(3);
        off_t offset = 0;
        while (true) {
            utf8.feed(piece);
            if (utf8.failed()) break;
            scanner.feed(piece);
            offset += static_cast<off_t>(got.value());
            if (*got < k_block) break;
            got = pread_full(fd.get(), block.data(), block.size(), offset);
            if (!got) {
                scanner.begin();
                s.reason = "cannot read: " + got.error();
                return s;
            }
            piece = std::string_view(block.data(), *got);
        }
        if (utf8.complete()) {
            auto findings = scanner.finish();
            if (!findings) {
                s.reason = "scanner failed: " + findings.error();
                return s;
            }
            s.readable = true;
            s.in_process = true;
            s.findings = scan::format_findings(*findings, scanner.config().detectors);
            return s;
        }
        scanner.begin();  // EUC-JP, Shift_JIS...: decoding is the reader's job
    } else if (type == scan::DocType::image) {
        s.doc_type = std::string(scan::to_string(type));
        s.reason = "image (no text to scan)";
        return s;
    }  // unknown formats too: the reader reads the text runs a file on disk holds
    s.sandboxed = true;
    auto doc = reader.scan(scanner.config(), fd.get(), "", sandbox);
    if (!doc) {
        s.reason = "not scanned: " + doc.error();
        return s;
    }
    s.doc_type = std::string(scan::to_string(doc->doc_type));
    s.readable = doc->readable;
    s.reason = doc->readable ? "" : doc->reason;
    if (doc->readable) s.findings = scan::format_findings(doc->findings, scanner.config().detectors);
    return s;
}

// Hands files from the walking thread to the scanning threads and their results back.
class WorkQueue {
public:
    // Blocks while full; `idle` runs (without the lock) every 100 ms meanwhile.
    template <class Idle>
    void push(Job job, Idle&& idle) {
        std::unique_lock lock(mutex_);
        while (jobs_.size() >= k_queue_max) {
            space_.wait_for(lock, std::chrono::milliseconds(100));
            lock.unlock();
            idle();
            lock.lock();
        }
        jobs_.push_back(std::move(job));
        work_.notify_one();
    }
    std::optional<Job> pop() {
        std::unique_lock lock(mutex_);
        work_.wait(lock, [&] { return !jobs_.empty() || closed_; });
        if (jobs_.empty()) return std::nullopt;
        Job j = std::move(jobs_.front());
        jobs_.pop_front();
        // The walking thread is woken when half the queue is free or a batch of results
        // waits, not for every file: each wake-up is a futex call and a context switch,
        // two per file before.
        if (jobs_.size() == k_queue_max / 2) space_.notify_one();
        return j;
    }
    void done(Scanned s) {
        std::lock_guard lock(mutex_);
        results_.push_back(std::move(s));
        ++finished_;
        if (results_.size() >= k_batch_results || jobs_.size() < k_queue_max / 2) space_.notify_one();
    }
    std::vector<Scanned> take() {
        std::lock_guard lock(mutex_);
        return std::exchange(results_, {});
    }
    void close() {
        std::lock_guard lock(mutex_);
        closed_ = true;
        work_.notify_all();
    }
    // Waits up to 100 ms for a result.
    void wait_result() {
        std::unique_lock lock(mutex_);
        space_.wait_for(lock, std::chrono::milliseconds(100), [&] { return !results_.empty(); });
    }
    std::uint64_t finished() {
        std::lock_guard lock(mutex_);
        return finished_;
    }

private:
    std::mutex mutex_;
    std::condition_variable work_, space_;
    std::deque<Job> jobs_;
    std::vector<Scanned> results_;
    std::uint64_t finished_ = 0;
    bool closed_ = false;
};

std::string prefix_of(const std::string& root) { return root == "/" ? root : root + "/"; }

bool under(std::string_view path, std::string_view dir) {
    if (dir == "/") return true;
    return path == dir || (path.size() > dir.size() && path.starts_with(dir) && path[dir.size()] == '/');
}

std::uint64_t fnv1a(std::string_view s, std::uint64_t h = 0xcbf29ce484222325ull) {
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
    return h;
}

void parse_findings(std::string_view text, std::map<std::string, std::uint64_t>& out) {
    while (!text.empty()) {
        auto space = text.find(' ');
        auto item = text.substr(0, space);
        text = space == std::string_view::npos ? std::string_view{} : text.substr(space + 1);
        auto eq = item.find('=');
        if (eq == std::string_view::npos) continue;
        std::uint64_t n = 0;
        for (char c : item.substr(eq + 1))
            if (c >= '0' && c <= '9') n = n * 10 + static_cast<std::uint64_t>(c - '0');
        out[std::string(item.substr(0, eq))] += n;
    }
}

class Survey {
public:
    Survey(const SurveyOptions& options, Database& db) : options_(options), db_(db) {}

    tl::expected<SurveyResult, std::string> run();

private:
    const SurveyOptions& options_;
    Database& db_;
    SurveyResult result_;
    WorkQueue queue_;
    std::int64_t run_id_ = 0;
    Statement lookup_, walked_, store_;
    std::vector<Scanned> pending_results_;
    std::uint64_t bytes_ = 0;
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point last_progress_{};
    std::optional<std::string> failure_;  // a store error: the survey stops
    // The lookups of unchanged files share one read transaction until the next write: in
    // WAL mode each statement on its own takes and drops a lock (two fcntl calls a file).
    bool reading_ = false;
    std::vector<std::thread> workers_;
    std::mutex prio_mutex_;

    // The scanner is compiled and the threads started at the first file to scan, so a
    // survey that finds nothing changed costs only the walk.
    bool start_workers();
    tl::expected<scan::Scanner, std::string> build_scanner();

    void warn(std::string w) {
        if (result_.warnings.size() < k_max_listed) result_.warnings.push_back(std::move(w));
    }
    void progress(bool done = false) {
        if (!options_.progress) return;
        const auto now = std::chrono::steady_clock::now();
        if (!done && now - last_progress_ < std::chrono::milliseconds(200)) return;
        last_progress_ = now;
        options_.progress(Progress{result_.counters.files, queue_.finished(), bytes_, now - start_, done});
    }
    void flush(bool force);
    bool end_read() {
        if (!reading_) return true;
        reading_ = false;
        if (auto e = db_.exec("COMMIT"); !e) {
            failure_ = e.error();
            return false;
        }
        return true;
    }
    void walk_root(const std::string& root);
    void walk_dir(int fd, std::string& path, dev_t dev, int depth);
    void file(const std::string& path, const struct stat& st);
    void report();
};

// The compiled patterns are kept in the store (meta 'patterns', with the fingerprint of
// the patterns they were compiled from): compiling every detector costs ~30 ms of CPU, a
// fifth of a run that finds 1% of 8,000 files changed. A serialised Hyperscan database is
// trusted code-like input, so it is only taken from a store no other user can have written.
tl::expected<scan::Scanner, std::string> Survey::build_scanner() {
    std::string cached;
    const bool trusted = db_.private_to_owner();
    if (trusted) {
        auto get = db_.prepare("SELECT value FROM meta WHERE key = 'patterns'");
        if (!get) return tl::unexpected(get.error());
        auto row = get->step();
        if (!row) return tl::unexpected(row.error());
        if (*row) cached = std::string(get->blob(0));
        get->reset();
    }
    auto scanner = scan::Scanner::create(options_.scanner, cached);
    if (!scanner) return scanner;
    if (!trusted) return scanner;
    auto patterns = scanner->serialized_patterns();
    if (!patterns) return tl::unexpected(patterns.error());
    if (*patterns == cached) return scanner;
    if (!end_read()) return tl::unexpected(*failure_);
    auto put = db_.prepare("INSERT OR REPLACE INTO meta(key, value) VALUES('patterns', ?1)");
    if (!put) return tl::unexpected(put.error());
    if (auto r = put->bind_blob(1, *patterns).step(); !r) return tl::unexpected(r.error());
    return scanner;
}

bool Survey::start_workers() {
    auto scanner = build_scanner();
    if (!scanner) {
        failure_ = "cannot build the scanner: " + scanner.error();
        return false;
    }
    // The readers get these patterns serialised; without this each worker's first
    // document for the sandbox compiles them all over again.
    if (auto prepared = scan::prepare_sandboxed(*scanner); !prepared) {
        failure_ = "cannot prepare the patterns for the document reader: " + prepared.error();
        return false;
    }
    for (unsigned i = 0; i < std::max(1u, options_.threads); ++i) {
        workers_.emplace_back([this, copy = *scanner]() mutable {
            if (options_.idle_priority) (void)lower_priority();
            {
                std::lock_guard lock(prio_mutex_);
                result_.io_priority_class = io_priority_class();
                errno = 0;
                result_.nice = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)));
            }
            std::string block;
            scan::SandboxedReader reader;  // one sandboxed reader for many files, not one each
            // A survey reads files on disk: text behind NULs and control codes is read, not refused.
            scan::SandboxOptions sandbox = options_.sandbox;
            sandbox.extract.mode = scan::ScanMode::file_on_disk;
            while (auto job = queue_.pop()) queue_.done(scan_one(copy, reader, sandbox, *job, block));
        });
    }
    return true;
}

void Survey::flush(bool force) {
    auto results = queue_.take();
    for (const auto& r : results) {
        bytes_ += static_cast<std::uint64_t>(r.size);
        result_.counters.in_process += r.in_process;
        result_.counters.sandboxed += r.sandboxed;
    }
    pending_results_.insert(pending_results_.end(), std::make_move_iterator(results.begin()),
                            std::make_move_iterator(results.end()));
    progress();
    if (failure_) return;
    if (!force && pending_results_.size() < k_batch_results) return;
    if (pending_results_.empty()) return;
    if (!end_read()) return;
    auto tx = Transaction::begin(db_);
    if (!tx) {
        failure_ = tx.error();
        return;
    }
    for (const auto& s : pending_results_) {
        store_.bind(1, s.path).bind(2, s.dev).bind(3, s.ino).bind(4, s.size).bind(5, s.mtime_ns).bind(6, s.ctime_ns);
        store_.bind(7, result_.fingerprint).bind(8, std::int64_t{s.readable}).bind(9, s.reason).bind(10, s.doc_type);
        store_.bind(11, s.findings).bind(12, run_id_);
        if (auto r = store_.step(); !r) {
            failure_ = r.error();
            return;
        }
    }
    if (auto c = tx->commit(); !c) {
        failure_ = c.error();
        return;
    }
    result_.counters.bytes_scanned = bytes_;
    pending_results_.clear();
}

void Survey::file(const std::string& path, const struct stat& st) {
    ++result_.counters.files;
    if (!options_.rescan) {
        if (!reading_) {
            if (auto e = db_.exec("BEGIN"); !e) {
                failure_ = e.error();
                return;
            }
            reading_ = true;
        }
        lookup_.bind(1, path);
        auto row = lookup_.step();
        if (!row) {
            failure_ = row.error();
            return;
        }
        if (*row) {
            const bool same = lookup_.int64(0) == static_cast<std::int64_t>(st.st_dev) &&
                              lookup_.int64(1) == static_cast<std::int64_t>(st.st_ino) &&
                              lookup_.int64(2) == static_cast<std::int64_t>(st.st_size) &&
                              lookup_.int64(3) == ns(st.st_mtim) && lookup_.int64(4) == ns(st.st_ctim) &&
                              lookup_.text(5) == result_.fingerprint;
            lookup_.reset();
            if (same) {
                ++result_.counters.unchanged;
                if (auto r = walked_.bind(1, path).step(); !r) failure_ = r.error();
                return;
            }
        }
    }
    if (workers_.empty() && !start_workers()) return;
    ++result_.counters.scanned;
    queue_.push(Job{path, st}, [&] { flush(false); });
    flush(false);
}

void Survey::walk_dir(int fd, std::string& path, dev_t dev, int depth) {
    common::UniqueDir dir = common::UniqueDir::from_fd(fd);
    if (!dir) {
        warn("cannot list '" + path + "': " + std::strerror(errno));
        return;
    }
    const std::size_t base = path.size();
    while (!failure_) {
        errno = 0;
        const dirent* e = dir.next();
        if (!e) {
            if (errno) warn("cannot list '" + path + "': " + std::strerror(errno));
            break;
        }
        const std::string_view name = e->d_name;
        if (path != "/") path += '/';
        path += name;
        struct stat st;
        if (path.size() > k_max_path) {
            ++result_.counters.skipped;
            warn("'" + path.substr(0, 200) + "...': path longer than " + std::to_string(k_max_path) +
                 " bytes, not surveyed");
        } else if (::fstatat(dir.fd(), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno != ENOENT) warn("cannot stat '" + path + "': " + std::strerror(errno));
        } else if (S_ISREG(st.st_mode)) {
            file(path, st);
        } else if (S_ISDIR(st.st_mode)) {
            if (st.st_dev != dev && !options_.cross_filesystems) {
                ++result_.counters.skipped;
                warn("'" + path + "': another file system, not surveyed (name it, or use --cross-filesystems)");
            } else if (depth >= k_max_depth) {
                ++result_.counters.skipped;
                warn("'" + path + "': deeper than " + std::to_string(k_max_depth) + " levels, not surveyed");
            } else {
                const int sub = ::openat(dir.fd(), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub < 0)
                    warn("cannot open '" + path + "': " + std::strerror(errno));
                else
                    walk_dir(sub, path, st.st_dev, depth + 1);
            }
        }
        // Symbolic links, devices, sockets and FIFOs hold no document of their own.
        path.resize(base);
    }
}

void Survey::walk_root(const std::string& root) {
    struct stat st;
    if (::lstat(root.c_str(), &st) != 0) {
        warn("cannot stat '" + root + "': " + std::strerror(errno));
        return;
    }
    if (S_ISREG(st.st_mode)) return file(root, st);
    const int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        warn("cannot open '" + root + "': " + std::strerror(errno));
        return;
    }
    std::string path = root;
    walk_dir(fd, path, st.st_dev, 0);
}

void Survey::report() {
    const std::uint64_t threshold = std::max<std::uint64_t>(1, options_.threshold);
    std::map<std::string, FolderReport> folders;
    auto select = db_.prepare("SELECT path, readable, reason, findings FROM files WHERE path = ?1 OR substr(path, 1, ?2) = ?3");
    if (!select) {
        failure_ = select.error();
        return;
    }
    for (const auto& root : result_.roots) {
        const auto prefix = prefix_of(root);
        select->bind(1, root).bind(2, static_cast<std::int64_t>(prefix.size())).bind(3, prefix);
        while (true) {
            auto row = select->step();
            if (!row) {
                failure_ = row.error();
                return;
            }
            if (!*row) break;
            const std::string path(select->text(0));
            if (!select->int64(1)) {
                ++result_.counters.unreadable;
                if (result_.unreadable.size() < k_max_listed)
                    result_.unreadable.push_back({path, std::string(select->text(2))});
                continue;
            }
            std::map<std::string, std::uint64_t> found;
            parse_findings(select->text(3), found);
            std::uint64_t total = 0;
            for (const auto& [_, n] : found) total += n;
            if (total < threshold) continue;
            const ZonePath* zone = nullptr;
            for (const auto& z : options_.zones)
                if (under(path, z.path) && (!zone || z.path.size() > zone->path.size())) zone = &z;
            if (zone) {
                ++result_.inside_files;
                ++result_.inside_zones[zone->zone];
                continue;
            }
            ++result_.outside_files;
            const auto slash = path.find_last_of('/');
            const std::string folder = slash == 0 ? "/" : path.substr(0, slash);
            auto& f = folders[folder];
            f.folder = folder;
            ++f.files;
            for (const auto& [detector, n] : found) {
                if (!n) continue;
                f.detectors[detector] += n;
                if (detector.starts_with(scan::edm_prefix)) f.persons += n;
                if (auto c = category_of(detector); !c.empty()) {
                    f.categories[std::string(c)] += n;
                    f.hits += n;
                }
            }
        }
    }
    for (auto& [path, f] : folders) {
        struct stat st;
        if (::stat(path.c_str(), &st) == 0) f.uid = st.st_uid, f.gid = st.st_gid;
        result_.outside.push_back(std::move(f));
    }
    std::stable_sort(result_.outside.begin(), result_.outside.end(), [](const FolderReport& a, const FolderReport& b) {
        return std::tie(b.persons, b.hits, b.files) < std::tie(a.persons, a.hits, a.files);
    });
}

tl::expected<SurveyResult, std::string> Survey::run() {
    result_.fingerprint = detector_fingerprint(options_.scanner);
    result_.exact = !options_.scanner.edm.empty();
    result_.threshold = std::max<std::uint64_t>(1, options_.threshold);
    // Real paths, each tree once (a root inside another is walked with it).
    for (const auto& r : options_.roots) {
        char buf[PATH_MAX];
        if (!::realpath(r.c_str(), buf)) {
            warn("cannot survey '" + r + "': " + std::strerror(errno));
            continue;
        }
        result_.roots.emplace_back(buf);
    }
    std::sort(result_.roots.begin(), result_.roots.end());
    std::vector<std::string> roots;
    for (const auto& r : result_.roots)
        if (std::none_of(roots.begin(), roots.end(), [&](const std::string& kept) { return under(r, kept); }))
            roots.push_back(r);
    result_.roots = roots;
    if (roots.empty()) return tl::unexpected("nothing to survey: " + (result_.warnings.empty() ? std::string("no PATH given") : result_.warnings.front()));

    auto stmt = [&](const char* sql) -> tl::expected<Statement, std::string> { return db_.prepare(sql); };
    auto run = stmt("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'run'");
    if (!run) return tl::unexpected(run.error());
    if (auto row = run->step(); !row) return tl::unexpected(row.error());
    else if (*row) run_id_ = run->int64(0);
    run->reset();
    ++run_id_;
    if (auto e = db_.exec(("INSERT OR REPLACE INTO meta(key, value) VALUES('run', '" + std::to_string(run_id_) + "')").c_str()); !e)
        return tl::unexpected(e.error());
    auto lookup = stmt("SELECT dev, ino, size, mtime_ns, ctime_ns, fingerprint FROM files WHERE path = ?1");
    // Unchanged files are listed in a table of this connection's temporary database, not
    // marked in the store: marking rewrote every row each run (the whole store through the
    // WAL, and synced at the checkpoint), so a run that found 1% changed wrote 100%.
    if (auto e = db_.exec("CREATE TEMP TABLE walked(path TEXT PRIMARY KEY) WITHOUT ROWID"); !e)
        return tl::unexpected(e.error());
    auto walked = stmt("INSERT OR IGNORE INTO temp.walked(path) VALUES(?1)");
    auto store = stmt("INSERT OR REPLACE INTO files(path, dev, ino, size, mtime_ns, ctime_ns, fingerprint, readable, reason, "
                      "doc_type, findings, seen) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
    for (auto* s : {&lookup, &walked, &store})
        if (!*s) return tl::unexpected(s->error());
    lookup_ = std::move(*lookup), walked_ = std::move(*walked), store_ = std::move(*store);

    if (options_.idle_priority)
        if (auto p = lower_priority(); !p) warn(p.error());
    // Also when nothing needs a scanning thread: the report says what the survey ran at.
    result_.io_priority_class = io_priority_class();
    errno = 0;
    result_.nice = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)));

    for (const auto& root : roots) {
        if (failure_) break;
        walk_root(root);
    }
    queue_.close();
    while (queue_.finished() < result_.counters.scanned && !failure_) {
        queue_.wait_result();
        flush(false);
    }
    for (auto& w : workers_) w.join();
    flush(true);
    end_read();
    if (failure_) return tl::unexpected(*failure_);

    // Files not found by this run (neither scanned nor walked past unchanged) are gone, or
    // now behind something the walk could not open: drop them so the report never names
    // files that are not there.
    auto drop = stmt("DELETE FROM files WHERE seen <> ?1 AND (path = ?2 OR substr(path, 1, ?3) = ?4) "
                     "AND path NOT IN (SELECT path FROM temp.walked)");
    if (!drop) return tl::unexpected(drop.error());
    for (const auto& root : roots) {
        const auto prefix = prefix_of(root);
        drop->bind(1, run_id_).bind(2, root).bind(3, static_cast<std::int64_t>(prefix.size())).bind(4, prefix);
        if (auto r = drop->step(); !r) return tl::unexpected(r.error());
        result_.counters.removed += static_cast<std::uint64_t>(db_.changes());
    }
    report();
    if (failure_) return tl::unexpected(*failure_);
    result_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    progress(true);
    return std::move(result_);
}

}  // namespace

std::string detector_fingerprint(const scan::ScannerConfig& config) {
    std::vector<std::string> detectors;
    for (auto d : config.detectors) detectors.emplace_back(scan::to_string(d));
    std::sort(detectors.begin(), detectors.end());
    std::string text = "scanner " CUSTGUARD_VERSION "\n";
    for (const auto& d : detectors) text += "detector " + d + "\n";
    for (const auto& k : config.keywords) text += "keyword " + k + "\n";
    text += "keyword_proximity " + std::to_string(config.keyword_proximity) + "\n";
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a(text)));
    return std::string(CUSTGUARD_VERSION) + ":" + hex;
}

tl::expected<void, std::string> lower_priority() {
    const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
    if (::setpriority(PRIO_PROCESS, tid, 19) != 0)
        return tl::unexpected(std::string("cannot lower the CPU priority: ") + std::strerror(errno));
    if (::syscall(SYS_ioprio_set, k_ioprio_who_process, 0, k_ioprio_class_idle << k_ioprio_class_shift) != 0)
        return tl::unexpected(std::string("cannot set the idle I/O priority: ") + std::strerror(errno));
    return {};
}

int io_priority_class() {
    const long r = ::syscall(SYS_ioprio_get, k_ioprio_who_process, 0);
    return r < 0 ? -1 : static_cast<int>(r >> k_ioprio_class_shift);
}

tl::expected<SurveyResult, std::string> survey(const SurveyOptions& options) {
    auto db = Database::open(options.db_path);
    if (!db) return tl::unexpected(db.error());
    Survey s(options, *db);
    return s.run();
}

}  // namespace custguard::discover
