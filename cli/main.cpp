// custguardctl: the administrator's tool. Talks to custguardd only over D-Bus; `policy
// check FILE` and `scan` work offline on the policy library. See custguardctl(8).
#include <CLI/CLI.hpp>

#include <iostream>

#include "ctl.hpp"
#include "edm_command.hpp"
#include "discover_command.hpp"
#include "printer_command.hpp"
#include "report_command.hpp"
#include "scan_command.hpp"
#include "custguard/common/policy_check.hpp"
#include "custguard/common/policy_files.hpp"

namespace {

using custguard::cli::k_exit_ok;
using custguard::cli::k_exit_usage;

// `scan`: defaults come from the policy's [print] section; options override them.
int run_scan_verb(custguard::cli::ScanOptions options, const std::string& policy_path, bool policy_given,
                  const CLI::App& scan) {
    namespace fs = std::filesystem;
    if (policy_given || fs::exists(policy_path)) {
        auto loaded = custguard::common::load_policy(policy_path, std::nullopt, custguard::common::now_seconds());
        if (!loaded) {
            for (const auto& d : loaded.error()) std::cerr << d.format() << '\n';
            std::cerr << "custguardctl: " << policy_path
                      << ": policy refused; fix it or name another with --policy\n";
            return k_exit_usage;
        }
        const auto& print = loaded->policy.print;
        if (scan.get_option("--threshold")->count() == 0) options.threshold = print.threshold;
        if (scan.get_option("--detectors")->count() == 0) options.detectors = print.detectors;
        if (scan.get_option("--keywords")->count() == 0) options.keywords = print.keywords;
        if (scan.get_option("--keyword-proximity")->count() == 0) options.keyword_proximity = print.keyword_proximity;
        options.timeout = std::chrono::seconds(print.scan_timeout_seconds);
        options.memory = std::uint64_t{print.scan_memory_mb} << 20;
        for (const auto& e : loaded->policy.edm) options.edm.push_back({e.name, e.index, e.key});
    }
    return custguard::cli::run_scan(options, std::cout, std::cerr);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"custguardctl - manage the custguard customer-data guard"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("custguardctl ") + CUSTGUARD_VERSION);

    auto* policy = app.add_subcommand("policy", "Check, reload and show the policy");
    policy->require_subcommand(1);
    auto* check = policy->add_subcommand("check", "Validate policy files: FILE offline, or the daemon's own files");
    std::vector<std::string> files;
    std::string state_dir;
    check->add_option("FILE", files, "Policy files; drop-ins in policy.d/ beside each are included");
    check->add_option("--state-dir", state_dir, "Also merge DIR/state.toml (CLI-managed state; with FILE)");
    bool no_resolve = false;
    check->add_flag("--no-resolve", no_resolve,
                    "Users and groups unknown on this machine are warnings, not errors (with FILE; for a build host)");

    custguard::cli::ControlCommands control(app, *policy);

    auto* scan = app.add_subcommand("scan", "Scan documents offline for customer data with the [print] detectors");
    custguard::cli::ScanOptions scan_options;
    std::string scan_policy = "/etc/custguard/policy.toml";
    scan->add_option("FILE", scan_options.files, "Files to scan; - reads standard input")->required();
    scan->add_option("--policy", scan_policy, "Take threshold, detectors, keywords, scan_timeout and scan_memory_mb from this policy's [print], and its [edm.NAME] indexes")
        ->capture_default_str();
    scan->add_option("--threshold", scan_options.threshold, "Detector hits that make a document customer data");
    scan->add_option("--detectors", scan_options.detectors, "Detectors to run (comma-separated)")->delimiter(',');
    scan->add_option("--keywords", scan_options.keywords, "Keywords for the keywords detector (comma-separated)")
        ->delimiter(',');
    scan->add_option("--keyword-proximity", scan_options.keyword_proximity, "Characters between two keyword hits");
    scan->add_option("--mime-type", scan_options.mime_type, "Document type hint, e.g. application/pdf");
    scan->add_flag("--json", scan_options.json, "Print JSON for scripts");
    scan->add_option("--mode", scan_options.mode,
                     "print: judge as a print job (control codes make text unreadable); disk: as the watcher and "
                     "discover read files on disk (NULs and control codes separate text)")
        ->check(CLI::IsMember({"print", "disk"}))
        ->capture_default_str();

    auto* edm = app.add_subcommand("edm", "Exact customer matching: build an index from a CRM export (runs locally as root)");
    edm->require_subcommand(1);
    custguard::cli::EdmBuildOptions edm_options;
    auto* edm_build = edm->add_subcommand("build", "Turn a CRM export (CSV) into an index of keyed hashes");
    edm_build->add_option("CSV", edm_options.csv, "The CRM export; - reads standard input")->required();
    edm_build->add_option("--schema", edm_options.schema, "TOML file naming the CSV's columns, the primary and supporting fields")
        ->required();
    edm_build->add_option("--key", edm_options.key, "Key file (32 bytes, created 0600 when missing); default: key beside the index");
    edm_build->add_option("--output", edm_options.output, "Index to write; default: /var/lib/custguard/edm/SCHEMA.edm");
    edm_build->add_option("--encoding", edm_options.encoding, "utf-8 or cp932 (overrides the schema's encoding)");

    auto* discover = app.add_subcommand(
        "discover", "Survey trees for customer data outside zones (incremental; idle I/O priority)");
    custguard::cli::DiscoverOptions discover_options;
    discover->add_option("PATH", discover_options.paths, "Directories (or files) to survey")->required();
    discover->add_option("--db", discover_options.db, "Survey store (SQLite), kept between runs")->capture_default_str();
    discover->add_option("--policy", discover_options.policy,
                         "Zones, EDM indexes, and threshold, detectors and keywords from [watch] (else [print]), from this policy")
        ->capture_default_str();
    discover->add_flag("--json", discover_options.json, "Print JSON for scripts");
    discover->add_flag("--rescan", discover_options.rescan, "Scan every file, changed or not");
    discover->add_flag("--cross-filesystems", discover_options.cross_filesystems,
                       "Descend into other file systems mounted under a PATH");
    discover->add_flag("--notify", discover_options.notify,
                       "Send the summary to the notify targets through custguardd (D-Bus SendReport)");
    discover->add_option("--notify-target", discover_options.notify_targets,
                         "Notify target for --notify (repeatable); default: the [print] notify targets")
        ->allow_extra_args(false);

    auto* printer = app.add_subcommand("printer", "Protect CUPS queues with the custguard backend (talks to cupsd)");
    printer->require_subcommand(1);
    std::string printer_queue;
    bool printer_json = false;
    for (auto [verb, help] :
         {std::pair{"protect", "Wrap QUEUE's device URI (custguard:<old URI>) and make its job users authenticated "
                               "(printer-op-policy custguard, installed in cupsd.conf when missing)"},
          std::pair{"unprotect", "Restore QUEUE's original device URI and the default operation policy"}}) {
        auto* sub = printer->add_subcommand(verb, help);
        sub->add_option("QUEUE", printer_queue, "CUPS queue name (see lpstat -v)")->required();
    }
    printer->add_subcommand("list", "List CUPS queues, their operation policies and whether custguard protects them")
        ->add_flag("--json", printer_json, "Print JSON for scripts");

    custguard::cli::ReportOptions report_options;
    auto* report = custguard::cli::add_report_commands(app, report_options);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        return rc == 0 ? k_exit_ok : k_exit_usage;
    }

    if (check->parsed() && !files.empty()) {
        std::vector<std::filesystem::path> paths(files.begin(), files.end());
        std::optional<std::filesystem::path> dir;
        if (!state_dir.empty()) dir = state_dir;
        return custguard::common::check_policies(paths, dir, std::cout, std::cerr, !no_resolve);
    }
    if (check->parsed() && no_resolve) {
        std::cerr << "custguardctl: --no-resolve checks policy files offline; name them, e.g. custguardctl policy "
                     "check --no-resolve /etc/custguard/policy.toml\n";
        return k_exit_usage;
    }
    if (printer->parsed())
        return custguard::cli::run_printer(printer->get_subcommands().front()->get_name(), printer_queue,
                                           printer_json, std::cout, std::cerr);
    if (edm_build->parsed()) return custguard::cli::run_edm_build(edm_options, std::cout, std::cerr);
    if (scan->parsed())
        return run_scan_verb(scan_options, scan_policy, scan->get_option("--policy")->count() > 0, *scan);
    if (discover->parsed()) {
        discover_options.policy_given = discover->get_option("--policy")->count() > 0;
        return custguard::cli::run_discover(discover_options, std::cout, std::cerr);
    }
    if (report->parsed()) return custguard::cli::run_report(*report, report_options, std::cout, std::cerr);
    if (auto rc = control.run()) return *rc;
    return k_exit_usage;
}
