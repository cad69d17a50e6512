#include "discover_command.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <ostream>

#include "ctl.hpp"
#include "custguard/api/client.hpp"
#include "custguard/api/names.hpp"
#include "custguard/common/policy_files.hpp"
#include "custguard/discover/survey.hpp"
#include "custguard/edm/attach.hpp"

namespace custguard::cli {

namespace {

// Bounds SendReport enforces in the daemon (custguardd(8)); the summary is cut to fit.
constexpr std::size_t k_report_title_max = 200;
constexpr std::size_t k_report_body_max = 64 * 1024;

std::string cut_utf8(std::string s, std::size_t max) {
    if (s.size() <= max) return s;
    std::size_t n = max;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;  // not inside a character
    s.resize(n);
    return s;
}

// The weekly summary for mail and webhooks: the text report, cut to the bound.
int send_report(const discover::SurveyResult& r, const std::string& text, const std::vector<std::string>& targets,
                std::ostream& err) {
    char host[256] = "";
    ::gethostname(host, sizeof host - 1);
    auto count = [](std::uint64_t n, const char* one, const char* many) {
        return std::to_string(n) + " " + (n == 1 ? one : many);
    };
    std::string title = "custguard discover on " + std::string(host) + ": " +
                        count(r.outside_files, "file", "files") + " with customer data outside zones in " +
                        count(r.outside.size(), "folder", "folders");
    title = cut_utf8(title, k_report_title_max);
    std::string body = text;
    if (body.size() > k_report_body_max) {
        const std::string tail = "\n... (cut; run custguardctl discover for the whole report)\n";
        body = cut_utf8(body, k_report_body_max - tail.size()) + tail;
    }
    auto client = api::Client::connect_system();
    if (!client) {
        err << "custguardctl discover: " << client.error().message << " — the report was not sent\n";
        return k_exit_unreachable;
    }
    auto answer = client->call("SendReport", [&](sd_bus_message* m) {
        int rc = sd_bus_message_append(m, "ss", title.c_str(), body.c_str());
        if (rc >= 0) rc = sd_bus_message_open_container(m, 'a', "s");
        for (const auto& t : targets)
            if (rc >= 0) rc = sd_bus_message_append_basic(m, 's', t.c_str());
        return rc < 0 ? rc : sd_bus_message_close_container(m);
    });
    if (!answer) {
        const auto& e = answer.error();
        err << "custguardctl discover: the daemon did not take the report: " << e.message;
        if (e.denied()) {
            err << " — run as root or as a member of " << api::admin_group << "\n";
            return k_exit_denied;
        }
        if (!e.from_daemon()) {
            err << " — is custguardd running (systemctl status custguardd)?\n";
            return k_exit_unreachable;
        }
        err << "\n";
        return k_exit_failed;
    }
    const char* text_answer = nullptr;
    if (sd_bus_message_read_basic(answer->get(), 's', &text_answer) > 0 && text_answer)
        err << "custguardctl discover: " << text_answer << "\n";
    return k_exit_ok;
}

}  // namespace

int run_discover(const DiscoverOptions& options, std::ostream& out, std::ostream& err) {
    if (options.paths.empty()) {
        err << "custguardctl discover: no PATH given (usage: custguardctl discover PATH...)\n";
        return k_exit_usage;
    }
    if (!options.notify_targets.empty() && !options.notify) {
        err << "custguardctl discover: --notify-target names where --notify sends the summary; add --notify\n";
        return k_exit_usage;
    }
    discover::SurveyOptions survey;
    survey.roots = options.paths;
    survey.db_path = options.db;
    survey.rescan = options.rescan;
    survey.cross_filesystems = options.cross_filesystems;
    std::vector<std::string> detectors, keywords;
    std::uint32_t proximity = 40;
    std::vector<policy::EdmIndex> edm_tables;
    if (options.policy_given || std::filesystem::exists(options.policy)) {
        auto loaded = common::load_policy(options.policy, std::nullopt, common::now_seconds());
        if (!loaded) {
            for (const auto& d : loaded.error()) err << d.format() << '\n';
            err << "custguardctl discover: " << options.policy << ": policy refused; fix it or name another with --policy\n";
            return k_exit_usage;
        }
        const auto& p = loaded->policy;
        // What the watcher looks for, so that the survey and the watcher agree: [watch]
        // detectors and threshold, else the [print] ones.
        detectors = p.watch.detectors.empty() ? p.print.detectors : p.watch.detectors;
        keywords = p.print.keywords;
        proximity = p.print.keyword_proximity;
        survey.threshold = p.watch.threshold.value_or(p.print.threshold);
        edm_tables = p.edm;
        survey.sandbox.timeout = std::chrono::seconds(p.print.scan_timeout_seconds);
        survey.sandbox.memory = std::uint64_t{p.print.scan_memory_mb} << 20;
        for (const auto& z : p.zones) {
            survey.zone_names.push_back(z.name);
            for (const auto& path : z.paths) survey.zones.push_back({z.name, path.path});
        }
    }
    auto config = scan::ScannerConfig::from_names(detectors, keywords, proximity);
    if (!config) {
        err << "custguardctl discover: " << config.error() << " — fix [print] in the policy\n";
        return k_exit_usage;
    }
    if (auto attached = edm::attach_edm_matchers(*config, edm_tables, "[watch]/[print]"); !attached) {
        err << "custguardctl discover: " << attached.error() << '\n';
        return k_exit_failed;
    }
    if (auto platform = scan::platform_supported(); !platform) {
        err << "custguardctl discover: " << platform.error() << "; run the survey on another machine\n";
        return k_exit_failed;
    }
    survey.scanner = *config;
    // As the daemon does: root reads documents as nobody, never as root.
    if (::geteuid() == 0) survey.sandbox.uid = survey.sandbox.gid = 65534;

    const bool bar = options.progress && ::isatty(STDERR_FILENO);
    if (bar)
        survey.progress = [&err](const discover::Progress& p) {
            const double s = std::chrono::duration<double>(p.elapsed).count();
            char line[160];
            std::snprintf(line, sizeof line, "\r\033[K%llu files found, %llu scanned, %.1f MB, %.1f MB/s",
                          static_cast<unsigned long long>(p.files), static_cast<unsigned long long>(p.scanned),
                          static_cast<double>(p.bytes) / 1e6, s > 0 ? static_cast<double>(p.bytes) / 1e6 / s : 0.0);
            err << line << (p.done ? "\n" : "") << std::flush;
        };

    auto result = discover::survey(survey);
    if (!result) {
        err << "custguardctl discover: " << result.error() << "\n";
        return k_exit_failed;
    }
    const auto snippet = discover::policy_snippet(*result, survey.zone_names);
    const auto text = discover::format_text(*result, snippet);
    out << (options.json ? discover::format_json(*result, snippet) : text);
    if (options.notify) return send_report(*result, text, options.notify_targets, err);
    return k_exit_ok;
}

}  // namespace custguard::cli
