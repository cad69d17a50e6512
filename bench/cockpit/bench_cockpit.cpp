// Latency of custguard's Cockpit page (issue 20): from a print job being held (custguardd's
// JobHeld signal, as a subscriber on the same bus receives it) to its row on the open page
// (the row's Date.now() when the page added it), and from the click on Approve to the job
// leaving the printer queue (CUPS reports it completed). The scene is tests/cockpit's: the
// real custguardd, scratch cupsd, cockpit-ws and headless Chromium. Root. Prints a table.
//
//   bench_cockpit [--rounds N]   (default 20; targets: median <= 1 s and <= 2 s)
#include <sys/resource.h>
#include <systemd/sd-bus.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/common/cpu_ticks.hpp"
#include "bench/common/stats.hpp"
#include "custguard/api/bus_ptr.hpp"
#include "page_session.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string loadavg() {
    std::ifstream in("/proc/loadavg");
    std::string a, b, c;
    in >> a >> b >> c;
    return a + " " + b + " " + c;
}

// The JobHeld signals of the bus, with the wall-clock time each arrived (ms).
class HeldSignals {
public:
    explicit HeldSignals(const std::string& address) {
        sd_bus* raw = nullptr;
        int r = sd_bus_new(&raw);
        if (r >= 0) r = sd_bus_set_address(raw, address.c_str());
        if (r >= 0) r = sd_bus_set_bus_client(raw, 1);
        if (r >= 0) r = sd_bus_start(raw);
        bus_.reset(raw);
        if (r >= 0)
            r = sd_bus_add_match(raw, nullptr,
                                 "type='signal',sender='org.custguard1',interface='org.custguard1',member='JobHeld'",
                                 &HeldSignals::on_signal, this);
        // JobHeld is sent only to connections that called Subscribe (custguard.dbus(7)).
        if (r >= 0)
            r = sd_bus_call_method(raw, "org.custguard1", "/org/custguard1", "org.custguard1", "Subscribe", nullptr,
                                   nullptr, "");
        if (r < 0) throw std::runtime_error(std::string("JobHeld subscription: ") + std::strerror(-r));
        thread_ = std::thread([this] {
            while (!stop_) {
                int r = sd_bus_process(bus_.get(), nullptr);
                if (r < 0) break;
                if (r == 0) sd_bus_wait(bus_.get(), 50'000);
            }
        });
    }
    ~HeldSignals() {
        stop_ = true;
        thread_.join();
    }
    std::optional<std::int64_t> wait(const std::string& job, std::chrono::seconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            {
                std::lock_guard lock(mutex_);
                if (auto it = at_.find(job); it != at_.end()) return it->second;
            }
            std::this_thread::sleep_for(5ms);
        }
        return std::nullopt;
    }

private:
    static int on_signal(sd_bus_message* m, void* self_v, sd_bus_error*) {
        auto* self = static_cast<HeldSignals*>(self_v);
        const auto t = now_ms();
        const char* job = nullptr;
        if (sd_bus_message_enter_container(m, 'r', "sssususta{su}") >= 0 && sd_bus_message_read_basic(m, 's', &job) >= 0) {
            std::lock_guard lock(self->mutex_);
            self->at_.emplace(job, t);
        }
        return 0;
    }
    custguard::api::BusPtr bus_;
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::map<std::string, std::int64_t> at_;
    std::thread thread_;
};

pid_t pid_with_arg(const std::string& arg) {
    for (const auto& e : fs::directory_iterator("/proc")) {
        const std::string name = e.path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::ifstream in(e.path() / "cmdline");
        std::string cmdline((std::istreambuf_iterator<char>(in)), {});
        if (cmdline.find(arg) != std::string::npos && cmdline.starts_with(CG_CUSTGUARDD)) return std::stoi(name);
    }
    return -1;
}

struct Stats {
    double median, p90, max;
};

Stats stats(const std::vector<double>& v) {
    using custguard::bench::quantile;
    return {quantile(v, 0.5), quantile(v, 0.9), quantile(v, 1.0)};
}

}  // namespace

int main(int argc, char** argv) {
    int rounds = 20;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) rounds = std::atoi(argv[++i]);
        else {
            std::fprintf(stderr, "usage: bench_cockpit [--rounds N]\n");
            return 2;
        }
    }
    if (rounds < 1) rounds = 1;
    if (!cgtest::report::private_mounts()) {
        std::fprintf(stderr, "bench_cockpit: needs root (a private mount namespace for the zone's tmpfs)\n");
        return 1;
    }
    try {
        const std::string load_before = loadavg();
        cgcockpit::Scene s;
        HeldSignals held(s.print.bus_address());
        const pid_t daemon = pid_with_arg((s.print.dir() / "policy.toml").string());
        const auto doc = s.print.document("list.txt", cgcockpit::customer_list());
        std::vector<double> to_held, to_row, to_done;
        const long ticks0 = custguard::bench::cpu_ticks(daemon);
        rusage self0{};
        ::getrusage(RUSAGE_SELF, &self0);
        for (int i = 0; i < rounds; ++i) {
            const std::int64_t submitted = now_ms();
            const int id = s.print.lp("office", doc, "round " + std::to_string(i), cgprint::accounts().other);
            const std::string job = std::to_string(id);
            const auto held_at = held.wait(job, 30s);
            if (!held_at) throw std::runtime_error("no JobHeld for job " + job);
            const std::int64_t shown = std::stoll(s.page.ask("wait_row " + job + " 30000"));
            const std::int64_t clicked = std::stoll(s.page.ask("approve " + job + " bench"));
            std::int64_t done = 0;
            for (;;) {
                const auto st = s.print.job(id);
                if (st.state == cgprint::k_completed) {
                    done = now_ms();
                    break;
                }
                if (st.state == cgprint::k_canceled || now_ms() - clicked > 30'000)
                    throw std::runtime_error("job " + job + " did not complete: " + st.message +
                                             "; the page says: " + s.page.ask("text error"));
                std::this_thread::sleep_for(5ms);
            }
            to_held.push_back(static_cast<double>(*held_at - submitted));
            to_row.push_back(static_cast<double>(shown - *held_at));
            to_done.push_back(static_cast<double>(done - clicked));
        }
        const double daemon_cpu_s =
            static_cast<double>(custguard::bench::cpu_ticks(daemon) - ticks0) / static_cast<double>(::sysconf(_SC_CLK_TCK));
        rusage self1{};
        ::getrusage(RUSAGE_SELF, &self1);
        const auto secs = [](const timeval& a, const timeval& b) {
            return static_cast<double>(b.tv_sec - a.tv_sec) + static_cast<double>(b.tv_usec - a.tv_usec) / 1e6;
        };
        const double self_cpu_s = secs(self0.ru_utime, self1.ru_utime) + secs(self0.ru_stime, self1.ru_stime);

        const Stats a = stats(to_row), b = stats(to_done), c = stats(to_held);
#ifdef NDEBUG
        const char* build = "release";
#else
        const char* build = "debug (sanitizers)";
#endif
        std::printf("cockpit page latency, %d rounds, %s build of custguardd and the backend\n", rounds, build);
        std::printf("load average before: %s, after: %s\n\n", load_before.c_str(), loadavg().c_str());
        std::printf("| path | median ms | p90 ms | max ms | target | met |\n|---|---:|---:|---:|---:|---|\n");
        std::printf("| JobHeld signal -> row on the page | %.0f | %.0f | %.0f | 1000 | %s |\n", a.median, a.p90, a.max,
                    a.median <= 1000 ? "yes" : "NO");
        std::printf("| Approve click -> job completed in CUPS | %.0f | %.0f | %.0f | 2000 | %s |\n", b.median, b.p90,
                    b.max, b.median <= 2000 ? "yes" : "NO");
        std::printf("| (context) lp -> JobHeld: spool, backend, scan, hold | %.0f | %.0f | %.0f | | |\n", c.median,
                    c.p90, c.max);
        std::printf("\nCPU during the rounds: custguardd %.2f s (%.0f ms per job), this process %.2f s\n", daemon_cpu_s,
                    1000 * daemon_cpu_s / rounds, self_cpu_s);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_cockpit: %s\n", e.what());
        return 1;
    }
}
