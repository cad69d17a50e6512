// Added latency per print job: the custguard backend's decision (spool, D-Bus call,
// extraction and scan in custguardd, answer, exec of the real backend) against running the
// real backend directly, for the same document, in one run. The real backend is a no-op
// (/bin/true under the scheme "cgnull"), so the difference is what custguard adds.
// Needs root (private dbus-daemon, custguardd). Prints a table.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "support/exec_plan.hpp"
#include "support/support.hpp"
#include "common/stats.hpp"

namespace fs = std::filesystem;
using cgtest::spawn;
using cgtest::spit;
using Clock = std::chrono::steady_clock;

namespace {

// Runs to completion; returns wall milliseconds and the exit status.
std::pair<double, int> timed(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
    const cgtest::ExecPlan plan(argv, env);  // the child makes system calls only
    auto t0 = Clock::now();
    pid_t pid = ::fork();
    if (pid == 0) {
        int null = ::open("/dev/null", O_RDWR);
        ::dup2(null, 0);
        ::dup2(null, 1);
        ::dup2(null, 2);
        plan.exec();
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    return {ms, WIFEXITED(status) ? WEXITSTATUS(status) : 128};
}

std::string postscript(int pages, bool customer) {
    std::string ps = "%!PS-Adobe-3.0\n%%Pages: " + std::to_string(pages) + "\n%%EndComments\n";
    for (int p = 1; p <= pages; ++p) {
        ps += "%%Page: " + std::to_string(p) + " " + std::to_string(p) + "\n/Helvetica findfont 10 scalefont setfont\n";
        for (int l = 0; l < 60; ++l) {
            std::string line = "Quarterly report, section " + std::to_string(p) + "." + std::to_string(l) +
                               ": revenue grew in all regions, order 20241127-" + std::to_string(1000 + l);
            if (customer && l == 5) line = "Customer Taro Yamada, card 4111 1111 1111 1111, mail taro@example.co.jp";
            ps += "40 " + std::to_string(760 - l * 12) + " moveto (" + line + ") show\n";
        }
        ps += "showpage\n";
    }
    return ps + "%%EOF\n";
}

using custguard::bench::quantile;

}  // namespace

int main(int argc, char** argv) {
    const int runs = argc > 1 ? std::atoi(argv[1]) : 30;
    if (::geteuid() != 0) {
        std::fprintf(stderr, "bench_print: needs root (private dbus-daemon, custguardd)\n");
        return 2;
    }
    char tmpl[] = "/tmp/cgprintbench.XXXXXX";
    fs::path dir = ::mkdtemp(tmpl);
    ::chmod(dir.c_str(), 0755);  // the real backend runs as lp, as under cupsd
    fs::create_directories(dir / "serverbin" / "backend");
    fs::create_directories(dir / "state");
    fs::create_symlink("/bin/true", dir / "serverbin" / "backend" / "cgnull");
    spit(dir / "policy.toml", "[daemon]\nenforcer = \"fanotify\"\n[print]\naction = \"hold\"\nthreshold = 2\n");
    cgtest::PrivateBus bus(dir);
    const std::string bus_env = bus.env();
    pid_t daemon = spawn({CG_CUSTGUARDD, "--policy", (dir / "policy.toml").string(), "--state-dir",
                          (dir / "state").string(), "--enforcer", "fanotify", "--no-audit", "--no-journal", "--export",
                          "jsonl:" + (dir / "events.jsonl").string()},
                         {bus_env, "CUPS_SERVER=/nonexistent/cups.sock",
                          std::string("CUSTGUARD_EXTRACT_HELPER=") + CG_EXTRACT_HELPER},
                         dir / "custguardd.log");

    // Documents: a 20-page PDF (Ghostscript's pdfwrite), the same as PostScript, and text.
    struct Doc {
        std::string name, path, type;
    };
    std::vector<Doc> docs;
    for (bool customer : {false, true}) {
        std::string base = customer ? "customer" : "clean";
        spit(dir / (base + ".ps"), postscript(20, customer));
        std::string pdf = (dir / (base + ".pdf")).string();
        std::string cmd = "gs -q -dSAFER -dBATCH -dNOPAUSE -sDEVICE=pdfwrite -sOutputFile=" + pdf + " " +
                          (dir / (base + ".ps")).string();
        if (std::system(cmd.c_str()) != 0) return 1;
        docs.push_back({"20-page PDF, " + base, pdf, "application/pdf"});
    }
    spit(dir / "clean.txt", std::string(200 * 1024, 'a') + "\n");
    docs.push_back({"200 KB text, clean", (dir / "clean.txt").string(), "text/plain"});
    docs.push_back({"20-page PostScript, clean", (dir / "clean.ps").string(), "application/postscript"});

    const std::string null_backend = (dir / "serverbin" / "backend" / "cgnull").string();
    const std::vector<std::string> common = {"CUPS_SERVERBIN=" + (dir / "serverbin").string(), "PRINTER=bench",
                                             "TMPDIR=/tmp", bus_env};
    // Wait until the daemon answers (first backend call that is not "unreachable").
    bool ready = false;
    for (int i = 0; i < 150 && !ready; ++i) {
        auto env = common;
        env.push_back("DEVICE_URI=custguard:cgnull://x");
        env.push_back("CONTENT_TYPE=text/plain");
        ready = timed({CG_BACKEND, "1", "root", "warmup", "1", "", (dir / "clean.txt").string()}, env).second == 0;
        if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    auto stop = [&] {
        cgtest::kill_and_reap(daemon);
    };
    if (!ready) {
        std::fprintf(stderr, "bench_print: custguardd does not answer; see %s/custguardd.log\n", dir.c_str());
        stop();
        return 1;
    }

    std::printf("custguard print gate: added latency per job (%d runs each, wall ms)\n\n", runs);
    std::printf("| document | size | decision | direct backend p50 | via custguard p50 | p95 | added p50 | target |\n");
    std::printf("|---|---|---|---|---|---|---|---|\n");
    int job = 100;
    for (const auto& d : docs) {
        std::vector<double> base, gate;
        int status = -1;
        auto env = common;
        env.push_back("DEVICE_URI=custguard:cgnull://x");
        env.push_back("CONTENT_TYPE=" + d.type);
        for (int i = 0; i < runs; ++i) {
            // Interleaved, so both see the same machine load.
            base.push_back(timed({null_backend, std::to_string(job), "root", "bench", "1", "", d.path},
                                 {"DEVICE_URI=cgnull://x"}).first);
            auto [ms, rc] = timed({CG_BACKEND, std::to_string(job++), "root", "bench", "1", "", d.path}, env);
            gate.push_back(ms);
            status = rc;
        }
        double added = quantile(gate, 0.5) - quantile(base, 0.5);
        bool is_pdf20 = d.name.rfind("20-page PDF", 0) == 0;
        std::printf("| %s | %.0f KB | %s | %.1f | %.1f | %.1f | %.1f | %s |\n", d.name.c_str(),
                    fs::file_size(d.path) / 1024.0, status == 0 ? "allow (printed)" : status == 3 ? "hold" : "other",
                    quantile(base, 0.5), quantile(gate, 0.5), quantile(gate, 0.95), added,
                    is_pdf20 ? (added <= 150 ? "<= 150 ms: met" : "<= 150 ms: MISSED") : "-");
    }
    stop();
    fs::remove_all(dir);
    return 0;
}
