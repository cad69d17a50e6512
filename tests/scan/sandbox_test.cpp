// The sandboxed document reader (scan_sandboxed, custguard-extract) against hostile
// documents built here: a PDF whose Form XObjects fan out until memory runs out, one that
// only takes time, readers that crash or answer garbage, and cancellation. Host tests:
// they run as root so the reader switches to nobody as the daemon's does.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>

#include <chrono>
#include <cstdio>
#include <future>
#include <signal.h>
#include <vector>
#include <string>
#include <thread>

#include "custguard/scan/sandbox.hpp"
#include "../support/exec_plan.hpp"
#include "hostile_documents.hpp"
#include "office_documents.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
namespace scan = custguard::scan;
using Clock = std::chrono::steady_clock;

struct MemFd {
    explicit MemFd(const std::string& bytes) : fd(::memfd_create("doc", MFD_CLOEXEC)) {
        REQUIRE(fd >= 0);
        REQUIRE(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
    }
    ~MemFd() { ::close(fd); }
    int fd;
};

scan::ScannerConfig config() { return *scan::ScannerConfig::from_names({}, {}, 40); }

scan::SandboxOptions options(std::chrono::milliseconds timeout, std::uint64_t memory_mb) {
    scan::SandboxOptions o;
    o.timeout = timeout;
    o.memory = memory_mb << 20;
    if (::geteuid() == 0) o.uid = o.gid = 65534;
    return o;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Every field of a result, for "the batch reader says what a reader per document says".
std::string describe(const tl::expected<scan::DocumentScan, std::string>& r) {
    if (!r) return "error: " + r.error();
    std::string s = std::string(scan::to_string(r->doc_type)) + " pages " + std::to_string(r->pages) + "/" +
                    std::to_string(r->pages_without_text) + " readable " + std::to_string(r->readable) + " failed " +
                    std::to_string(r->scan_failed) + " reason '" + r->reason + "' encoding '" + r->encoding +
                    "' text " + std::to_string(r->text_bytes) + " members " + std::to_string(r->members) + "/" +
                    std::to_string(r->members_without_text) + " persons " + std::to_string(r->findings.persons);
    for (auto d : {scan::Detector::credit_card, scan::Detector::my_number, scan::Detector::email,
                   scan::Detector::jp_phone, scan::Detector::jp_address})
        s += " " + std::string(scan::to_string(d)) + "=" + std::to_string(r->findings.count(d));
    return s;
}

struct Kind {
    const char* name;
    std::string bytes;
};

// The formats a watched share holds, an unreadable one and one for Ghostscript among them.
std::vector<Kind> mixed_documents() {
    const std::string customers = "顧客 山田太郎 taro@example.co.jp 090-1234-5678 東京都千代田区丸の内1-1-1\n";
    return {
        {"utf-8 text", customers + "hanako@example.jp\n"},
        {"cp932 csv", scan_test::convert("名前,電話\n山田,03-1234-5678\n佐藤,jiro@example.jp\n", "CP932")},
        {"xlsx", scan_test::xlsx("<si><t>taro@example.jp</t></si>",
                                 "<row><c t=\"s\"><v>0</v></c><c><v>" + scan_test::my_number_complete("12345678901") +
                                     "</v></c></row>")},
        {"docx", scan_test::docx("<w:p><w:r><w:t>090-2222-3333 saburo@example.jp</w:t></w:r></w:p>", "", "")},
        {"gzip", scan_test::gzip(customers)},
        {"zip bomb", scan_test::ZipBuilder().add("a.csv", "x,y\n1,2\n").add_zeros("zeros.txt", 1024).bytes()},
        {"pdf", cgscan::fanout_pdf(2, 2, "0 0 m 1 1 l S")},
        {"postscript", "%!PS\n/Courier findfont 12 scalefont setfont 72 700 moveto (taro@example.jp) show showpage\n"},
        {"empty", ""},
    };
}


}  // namespace

TEST_CASE("a readable document still passes through the sandbox", "[scan][sandbox]") {
    MemFd doc("顧客 山田太郎 taro@example.co.jp 090-1234-5678 hanako@example.jp\n");
    auto r = scan::scan_sandboxed(config(), doc.fd, "text/plain", options(10s, 1024));
    REQUIRE(r);
    CHECK(r->readable);
    CHECK_FALSE(r->scan_failed);
    CHECK(r->doc_type == scan::DocType::text);
    CHECK(r->findings.count(scan::Detector::email) == 2);
    CHECK(r->findings.count(scan::Detector::jp_phone) == 1);
    CHECK(::lseek(doc.fd, 0, SEEK_CUR) == ::lseek(doc.fd, 0, SEEK_END));  // the caller's offset is its own
}

// Regression: poppler ran in custguardd and grew it to 1.8 GB for 10 minutes on this.
TEST_CASE("a PDF whose Form XObjects fan out exhausts the reader's memory, not the caller's", "[scan][sandbox]") {
    const auto pdf = cgscan::memory_bomb_pdf();
    CHECK(pdf.size() < 8 * 1024);
    MemFd doc(pdf);
    // The caller compiles the patterns once per configuration (handed to every reader):
    // done first, so that only what the document costs is measured.
    MemFd warm(std::string("warm up\n"));
    REQUIRE(scan::scan_sandboxed(config(), warm.fd, "text/plain", options(30s, 64)));
    const long rss_before = cgscan::rss_kb(::getpid());
    const auto start = Clock::now();
    auto r = scan::scan_sandboxed(config(), doc.fd, "application/pdf", options(30s, 64));
    const double took = seconds_since(start);
    const long grown = cgscan::rss_kb(::getpid()) - rss_before;
    std::printf("memory bomb (%zu bytes): %.2f s, caller RSS %+ld kB: %s\n", pdf.size(), took, grown,
                r ? r->reason.c_str() : r.error().c_str());
    REQUIRE(r);
    CHECK_FALSE(r->readable);
    // Stopped by the reader's memory limit, or before it by the PDF inspection's own
    // bound on glyphs and path segments (scan/src/pdf_inspect.cpp): either way inside
    // the reader and unreadable.
    const bool by_memory = r->scan_failed && r->reason.find("more memory than the limit of 64 MiB") != std::string::npos;
    const bool by_bound = r->reason.find("could not be inspected within") != std::string::npos;
    INFO(r->reason);
    CHECK((by_memory || by_bound));
    CHECK(took < 30.0);
    CHECK(grown < 4 * 1024);
}

TEST_CASE("a PDF that only takes time is stopped at the timeout", "[scan][sandbox]") {
    const auto pdf = cgscan::time_bomb_pdf();
    MemFd doc(pdf);
    const auto start = Clock::now();
    auto r = scan::scan_sandboxed(config(), doc.fd, "application/pdf", options(2s, 1024));
    const double took = seconds_since(start);
    std::printf("time bomb (%zu bytes): %.2f s: %s\n", pdf.size(), took, r ? r->reason.c_str() : r.error().c_str());
    REQUIRE(r);
    CHECK_FALSE(r->readable);
    CHECK(r->scan_failed);
    CHECK_THAT(r->reason, Catch::Contains("took longer than 2 s"));
    CHECK(took >= 2.0);
    CHECK(took < 3.0);
    CHECK(cgscan::reader_pids(::getpid()).empty());  // killed and reaped
}

TEST_CASE("the reader runs without capabilities, as nobody, under seccomp and rlimits", "[scan][sandbox]") {
    REQUIRE(::geteuid() == 0);  // host tests run as root; the daemon does
    MemFd doc(cgscan::time_bomb_pdf());
    auto running = std::async(std::launch::async, [&] {
        return scan::scan_sandboxed(config(), doc.fd, "application/pdf", options(5s, 512));
    });
    const pid_t reader = cgscan::wait_reader(::getpid(), 4s);
    REQUIRE(reader > 0);
    // The reader stacks its own filter right after it starts.
    auto status = cgscan::proc_status(reader);
    for (int i = 0; i < 100 && status["Seccomp_filters"] == "1"; ++i) {
        std::this_thread::sleep_for(20ms);
        status = cgscan::proc_status(reader);
    }
    const auto limits = cgscan::slurp_proc("/proc/" + std::to_string(reader) + "/limits");
    std::printf("reader %d: Uid %s, CapEff %s, CapBnd %s, Seccomp %s, NoNewPrivs %s\n", reader, status["Uid"].c_str(),
                status["CapEff"].c_str(), status["CapBnd"].c_str(), status["Seccomp"].c_str(),
                status["NoNewPrivs"].c_str());
    CHECK(status["Uid"] == "65534\t65534\t65534\t65534");
    CHECK(status["Gid"] == "65534\t65534\t65534\t65534");
    CHECK(status["Groups"].empty());
    for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
        INFO(set);
        CHECK(status[set] == "0000000000000000");
    }
    CHECK(status["NoNewPrivs"] == "1");
    CHECK(status["Seccomp"] == "2");
    CHECK(std::stoi(status["Seccomp_filters"]) >= 2);  // the launcher's and the reader's own (no processes)
    INFO(limits);
    CHECK_THAT(limits, Catch::Matches(R"([\s\S]*Max cpu time +6 +7 [\s\S]*)"));
    CHECK_THAT(limits, Catch::Matches(R"([\s\S]*Max file size +0 +0 [\s\S]*)"));
    CHECK_THAT(limits, Catch::Matches(R"([\s\S]*Max core file size +0 +0 [\s\S]*)"));
    CHECK_THAT(limits, Catch::Matches(R"([\s\S]*Max processes +16 +16 [\s\S]*)"));
    CHECK_THAT(limits, Catch::Matches(R"([\s\S]*Max open files +64 +64 [\s\S]*)"));
    // 512 MiB for the document and 64 MiB for the reader's libraries (ICU data).
    CHECK_THAT(limits, Catch::Matches(R"([\s\S]*Max address space +603979776 +603979776 [\s\S]*)"));
    auto r = running.get();
    REQUIRE(r);
    CHECK(r->scan_failed);
}

TEST_CASE("cancelling kills the reader at once", "[scan][sandbox]") {
    MemFd doc(cgscan::time_bomb_pdf());
    const int cancel = ::eventfd(0, EFD_CLOEXEC);
    auto o = options(30s, 1024);
    o.cancel_fd = cancel;
    auto running = std::async(std::launch::async, [&] { return scan::scan_sandboxed(config(), doc.fd, "", o); });
    REQUIRE(cgscan::wait_reader(::getpid(), 4s) > 0);
    const auto start = Clock::now();
    std::uint64_t one = 1;
    REQUIRE(::write(cancel, &one, sizeof one) == sizeof one);
    auto r = running.get();
    const double took = seconds_since(start);
    std::printf("cancelled after %.3f s\n", took);
    CHECK(took < 0.5);
    REQUIRE_FALSE(r);
    CHECK(r.error() == scan::cancelled_suffix);
    CHECK(cgscan::reader_pids(::getpid()).empty());
    ::close(cancel);
}

TEST_CASE("a reader that fails or answers garbage makes the document unreadable", "[scan][sandbox]") {
    struct Case {
        const char* helper;
        const char* reason;
    };
    // Stand-ins for a compromised or broken reader; they run in the same sandbox.
    const Case cases[] = {
        {"/bin/false", "the reader failed (exit status 1)"},
        {"/bin/echo", "the reader's answer is malformed (no result header)"},
        {"/bin/true", "the reader's answer is malformed (no result header)"},
    };
    MemFd doc("plain text\n");
    for (const auto& c : cases) {
        INFO(c.helper);
        auto o = options(5s, 1024);
        o.helper = c.helper;
        auto r = scan::scan_sandboxed(config(), doc.fd, "", o);
        REQUIRE(r);
        CHECK_FALSE(r->readable);
        CHECK(r->scan_failed);
        CHECK_THAT(r->reason, Catch::Contains(c.reason));
    }
    auto o = options(5s, 1024);
    o.helper = "/nonexistent/custguard-extract";
    auto missing = scan::scan_sandboxed(config(), doc.fd, "", o);
    REQUIRE_FALSE(missing);  // the environment's fault: an error, so the job is held as "could not be checked"
    CHECK_THAT(missing.error(), Catch::Contains("CUSTGUARD_EXTRACT_HELPER"));
}

TEST_CASE("the reader's seccomp filter refuses what a compromised reader would try", "[scan][sandbox]") {
    MemFd doc("plain text\n");
    auto o = options(5s, 1024);
    o.helper = CG_SANDBOX_PROBE;  // runs in the reader's place, in the same sandbox
    auto r = scan::scan_sandboxed(config(), doc.fd, "", o);
    REQUIRE(r);
    std::printf("probe in the sandbox: %s\n", r->reason.c_str());
    CHECK_FALSE(r->scan_failed);
    CHECK(r->reason ==
          "inet=EPERM unix=EPERM create=EPERM userns=EPERM setsid=EPERM setpgid=EPERM ptrace=EPERM read=allowed");
}

// Under the unit's SystemCallFilter=@system-service the seccomp() system call fails with
// EPERM; the reader must still stack its own filter (it uses prctl) and read documents.
TEST_CASE("the reader works under a filter that refuses seccomp() as systemd's @system-service does",
          "[scan][sandbox]") {
    // The child runs the scanner, which allocates: safe only while this process has no
    // other thread (see tests/support/exec_plan.hpp).
    REQUIRE(cgtest::thread_count() == 1);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        sock_filter refuse_seccomp[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_seccomp, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        sock_fprog prog{4, refuse_seccomp};
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
            ::_exit(10);
        const std::string pdf = cgscan::fanout_pdf(1, 1, "BT /F1 12 Tf 10 10 Td (hello world) Tj ET");
        const int fd = ::memfd_create("doc", MFD_CLOEXEC);
        if (fd < 0 || ::write(fd, pdf.data(), pdf.size()) != static_cast<ssize_t>(pdf.size())) ::_exit(11);
        auto r = scan::scan_sandboxed(config(), fd, "application/pdf", options(10s, 1024));
        if (!r) ::_exit(12);
        std::printf("under a filter refusing seccomp(): %s %s\n", r->readable ? "readable" : "unreadable",
                    r->reason.c_str());
        std::fflush(stdout);
        ::_exit(r->readable ? 0 : 13);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

// Issue 17: Office files and archives are parsed (libzip, expat, zlib, iconv) inside the
// reader's seccomp filter and limits; a zip bomb ends there as an unreadable document with
// its reason, not as a failed or killed reader.
TEST_CASE("an xlsx and a zip bomb through the sandbox", "[scan][sandbox][formats]") {
    const std::string my_number = scan_test::my_number_complete("12345678901");
    MemFd xlsx(scan_test::xlsx("<si><t>taro@example.jp</t></si>",
                               "<row><c t=\"s\"><v>0</v></c><c><v>" + my_number + "</v></c></row>"));
    auto book = scan::scan_sandboxed(config(), xlsx.fd, {}, options(10s, 1024));
    REQUIRE(book);
    CHECK(book->readable);
    CHECK_FALSE(book->scan_failed);
    CHECK(book->doc_type == scan::DocType::xlsx);
    CHECK(book->pages == 1);
    CHECK(book->findings.count(scan::Detector::email) == 1);
    CHECK(book->findings.count(scan::Detector::my_number) == 1);

    MemFd bomb(scan_test::ZipBuilder().add("a.csv", "x,y\n1,2\n").add_zeros("zeros.txt", 1024).bytes());
    const auto start = Clock::now();
    auto r = scan::scan_sandboxed(config(), bomb.fd, {}, options(10s, 1024));
    const double took = seconds_since(start);
    REQUIRE(r);
    std::printf("zip bomb (%zu bytes, 1 GiB unpacked): %.3f s: %s\n", static_cast<std::size_t>(::lseek(bomb.fd, 0, SEEK_END)), took, r->reason.c_str());
    CHECK_FALSE(r->readable);
    CHECK_FALSE(r->scan_failed);
    CHECK(r->doc_type == scan::DocType::zip);
    CHECK_THAT(r->reason, Catch::StartsWith("zip bomb: member 'zeros.txt' expands more than 200-fold"));
    CHECK(took < 5.0);

    // A header that lies (10 bytes declared): stopped while unpacking, within the reader's
    // default memory.
    MemFd liar(scan_test::ZipBuilder().add_zeros("zeros.txt", 1024, 10).bytes());
    const auto liar_start = Clock::now();
    auto l = scan::scan_sandboxed(config(), liar.fd, {}, options(10s, 1024));
    const double liar_took = seconds_since(liar_start);
    REQUIRE(l);
    std::printf("lying zip bomb: %.3f s: %s\n", liar_took, l->reason.c_str());
    CHECK_FALSE(l->readable);
    CHECK_FALSE(l->scan_failed);
    CHECK_THAT(l->reason, Catch::Contains("member 'zeros.txt'"));
    CHECK(liar_took < 5.0);
}

TEST_CASE("a batch of 100 mixed documents gives what 100 single-document readers give", "[scan][sandbox][batch]") {
    const auto kinds = mixed_documents();
    std::vector<std::unique_ptr<MemFd>> docs;
    for (std::size_t i = 0; i < 100; ++i) docs.push_back(std::make_unique<MemFd>(kinds[i % kinds.size()].bytes));
    const auto o = options(10s, 1024);
    std::vector<std::string> single, batched;
    for (const auto& d : docs) single.push_back(describe(scan::scan_sandboxed(config(), d->fd, {}, o)));
    scan::SandboxedReader reader;
    const auto start = Clock::now();
    for (const auto& d : docs) {
        batched.push_back(describe(reader.scan(config(), d->fd, {}, o)));
        CHECK(cgscan::reader_pids(::getpid()).size() <= 1);  // the Ghostscript fallback is reaped
    }
    std::printf("100 documents in batch readers: %.2f s, %llu readers\n", seconds_since(start),
                static_cast<unsigned long long>(reader.readers_started()));
    for (std::size_t i = 0; i < docs.size(); ++i) {
        INFO(kinds[i % kinds.size()].name << " #" << i);
        CHECK(batched[i] == single[i]);
    }
    // State does not leak between documents: the first and a later copy of one read the same.
    CHECK(batched[0] == batched[54]);
    CHECK_THAT(batched[0], Catch::Contains("email=2"));
    CHECK_THAT(batched[2], Catch::Contains("my_number=1"));
    CHECK_THAT(batched[5], Catch::Contains("zip bomb"));
    CHECK_THAT(batched[7], Catch::StartsWith("postscript"));
    CHECK(reader.readers_started() == 2);  // 64 documents each; PostScript goes to a reader of its own
}

TEST_CASE("a document that hangs in a batch fails only itself", "[scan][sandbox][batch]") {
    MemFd good("taro@example.jp 090-1234-5678\n"), bad(cgscan::time_bomb_pdf());
    const auto o = options(2s, 1024);
    const auto expected = describe(scan::scan_sandboxed(config(), good.fd, {}, o));
    scan::SandboxedReader reader;
    for (int i = 0; i < 3; ++i) CHECK(describe(reader.scan(config(), good.fd, {}, o)) == expected);
    const auto start = Clock::now();
    auto r = reader.scan(config(), bad.fd, {}, o);
    const double took = seconds_since(start);
    std::printf("time bomb in a batch: %.2f s: %s\n", took, describe(r).c_str());
    REQUIRE(r);
    CHECK_FALSE(r->readable);
    CHECK(r->scan_failed);
    CHECK_THAT(r->reason, Catch::Contains("reading it took longer than 2 s (stopped)"));  // as a reader of its own says
    CHECK(took < 3.0);
    CHECK(reader.reader_pid() == -1);  // killed and reaped with its document
    CHECK(cgscan::reader_pids(::getpid()).empty());
    for (int i = 0; i < 3; ++i) CHECK(describe(reader.scan(config(), good.fd, {}, o)) == expected);
    CHECK(reader.readers_started() == 2);
}

TEST_CASE("a batch reader killed from outside is replaced", "[scan][sandbox][batch]") {
    MemFd good("taro@example.jp\n");
    const auto o = options(10s, 1024);
    scan::SandboxedReader reader;
    REQUIRE(reader.scan(config(), good.fd, {}, o)->readable);
    SECTION("between documents: the next document does not notice") {
        const pid_t first = reader.reader_pid();
        REQUIRE(first > 0);
        REQUIRE(::kill(first, SIGKILL) == 0);
        std::this_thread::sleep_for(100ms);
        auto r = reader.scan(config(), good.fd, {}, o);
        REQUIRE(r);
        CHECK(r->readable);
        CHECK(r->findings.count(scan::Detector::email) == 1);
        CHECK(reader.reader_pid() != first);
        CHECK(reader.readers_started() == 2);
    }
    SECTION("while it reads a document: only that document fails") {
        struct Case {
            int signal;
            const char* reason;
        };
        for (const auto& c : {Case{SIGKILL, "the reader was killed"}, Case{SIGSEGV, "the reader crashed (signal 11)"}}) {
            INFO(c.reason);
            MemFd slow(cgscan::time_bomb_pdf());
            REQUIRE(reader.scan(config(), good.fd, {}, o)->readable);
            const pid_t pid = reader.reader_pid();
            REQUIRE(pid > 0);
            auto killer = std::async(std::launch::async, [pid, &c] {
                std::this_thread::sleep_for(300ms);
                return ::kill(pid, c.signal);
            });
            auto r = reader.scan(config(), slow.fd, {}, o);
            REQUIRE(killer.get() == 0);
            REQUIRE(r);
            CHECK(r->scan_failed);
            CHECK_THAT(r->reason, Catch::Contains(c.reason));
            auto next = reader.scan(config(), good.fd, {}, o);
            REQUIRE(next);
            CHECK(next->readable);
            CHECK(reader.reader_pid() != pid);
        }
        CHECK(reader.readers_started() == 3);
    }
}

TEST_CASE("a batch reader is retired after its documents, its input or a new configuration", "[scan][sandbox][batch]") {
    const auto o = options(5s, 512);
    SECTION("documents") {
        MemFd doc("taro@example.jp\n");
        scan::SandboxedReader reader(scan::SandboxedReader::Limits{5, std::uint64_t{1} << 30});
        for (int i = 0; i < 12; ++i) REQUIRE(reader.scan(config(), doc.fd, {}, o)->readable);
        CHECK(reader.readers_started() == 3);
        CHECK(cgscan::reader_pids(::getpid()).size() == 1);
    }
    SECTION("input") {
        MemFd doc(std::string(300 * 1024, 'a') + " taro@example.jp\n");
        scan::SandboxedReader reader(scan::SandboxedReader::Limits{64, std::uint64_t{1} << 20});
        for (int i = 0; i < 10; ++i) REQUIRE(reader.scan(config(), doc.fd, {}, o)->readable);
        CHECK(reader.readers_started() == 3);  // 4 documents of 300 KiB pass 1 MiB
    }
    SECTION("configuration") {
        MemFd doc("taro@example.jp 会員番号\n");
        scan::SandboxedReader reader;
        REQUIRE(reader.scan(config(), doc.fd, {}, o)->readable);
        const std::vector<std::string> keywords = {"会員番号"};
        auto with_keyword = *scan::ScannerConfig::from_names({}, keywords, 40);
        REQUIRE(reader.scan(with_keyword, doc.fd, {}, o)->readable);
        REQUIRE(reader.scan(with_keyword, doc.fd, {}, o)->readable);
        CHECK(reader.readers_started() == 2);
    }
    SECTION("the batch reader has the single reader's sandbox, with twice one document's CPU time") {
        MemFd doc("taro@example.jp\n");
        scan::SandboxedReader reader;
        REQUIRE(reader.scan(config(), doc.fd, {}, o)->readable);
        const pid_t pid = reader.reader_pid();
        REQUIRE(pid > 0);
        auto status = cgscan::proc_status(pid);
        const auto limits = cgscan::slurp_proc("/proc/" + std::to_string(pid) + "/limits");
        CHECK(status["Uid"] == "65534\t65534\t65534\t65534");
        CHECK(status["CapEff"] == "0000000000000000");
        CHECK(status["CapBnd"] == "0000000000000000");
        CHECK(status["NoNewPrivs"] == "1");
        CHECK(std::stoi(status["Seccomp_filters"]) >= 2);  // the launcher's and its own (no processes)
        INFO(limits);
        CHECK_THAT(limits, Catch::Matches(R"([\s\S]*Max cpu time +12 +13 [\s\S]*)"));
        CHECK_THAT(limits, Catch::Matches(R"([\s\S]*Max file size +0 +0 [\s\S]*)"));
        CHECK_THAT(limits, Catch::Matches(R"([\s\S]*Max open files +64 +64 [\s\S]*)"));
        CHECK_THAT(limits, Catch::Matches(R"([\s\S]*Max address space +603979776 +603979776 [\s\S]*)"));
    }
}
