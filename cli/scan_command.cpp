#include "scan_command.hpp"

#include <unistd.h>

#include <algorithm>
#include <iomanip>
#include <optional>
#include <string_view>
#include <ostream>
#include <sstream>

#include "custguard/common/json_string.hpp"
#include "custguard/common/text_escape.hpp"
#include "custguard/edm/edm.hpp"
#include "custguard/scan/document.hpp"
#include "custguard/scan/extract.hpp"
#include "custguard/scan/sandbox.hpp"
#include "custguard/scan/scanner.hpp"

namespace custguard::cli {

namespace {

using common::escape_text;
using common::json_string;

struct FileResult {
    std::string file;
    std::optional<std::string> error;  // set: could not judge the file
    scan::DocumentScan doc;
    bool customer_data = false;
};

std::string count(std::uint64_t n, std::string_view unit) {
    return std::to_string(n) + " " + std::string(unit) + (n == 1 ? "" : "s");
}

std::string hits(std::uint64_t n) { return count(n, "hit"); }

// What a document's pages are called.
std::string_view page_unit(scan::DocType type) {
    switch (type) {
    case scan::DocType::xlsx: return "sheet";
    case scan::DocType::pptx: return "slide";
    default: return "page";
    }
}

}  // namespace

int run_scan(const ScanOptions& options, std::ostream& out, std::ostream& err) {
    if (options.files.empty()) {
        err << "custguardctl scan: no files given (usage: custguardctl scan FILE...)\n";
        return 2;
    }
    auto config = scan::ScannerConfig::from_names(options.detectors, options.keywords, options.keyword_proximity);
    if (!config) {
        err << "custguardctl scan: " << config.error() << " — fix [print] in the policy or the options\n";
        return 2;
    }
    // EDM indexes are root-only: opened here, passed to the reader as descriptors.
    for (auto& e : config->edm) {
        const auto source = std::find_if(options.edm.begin(), options.edm.end(), [&](const EdmSource& s) { return s.name == e.name; });
        if (source == options.edm.end()) {
            err << "custguardctl scan: detector edm:" << e.name << " needs an [edm." << e.name
                << "] table in the policy (name the policy with --policy)\n";
            return 2;
        }
        auto matcher = edm::Matcher::open(source->index, source->key);
        if (!matcher) {
            err << "custguardctl scan: edm:" << e.name << ": " << matcher.error() << " (run as root, or rebuild it with 'custguardctl edm build')\n";
            return 2;
        }
        e.matcher = *matcher;
    }
    auto scanner = scan::Scanner::create(*config);
    if (!scanner) {
        auto platform = scan::platform_supported();
        err << "custguardctl scan: " << (platform ? scanner.error() : platform.error() + "; run the scan on another machine")
            << "\n";
        return 2;
    }
    scan::SandboxOptions sandbox;
    sandbox.extract.ghostscript = options.ghostscript;
    const bool on_disk = options.mode == "disk";
    if (on_disk) sandbox.extract.mode = scan::ScanMode::file_on_disk;
    sandbox.timeout = options.timeout;
    sandbox.memory = options.memory;
    // As the daemon does: root reads documents as nobody, never as root.
    if (::geteuid() == 0) sandbox.uid = sandbox.gid = 65534;

    const auto& detectors = scanner->config().detectors;
    std::vector<FileResult> results;
    bool any_error = false, any_customer = false;
    for (const auto& file : options.files) {
        FileResult r;
        r.file = file;
        auto doc = scan::scan_file_sandboxed(scanner->config(), file, options.mime_type, sandbox);
        if (!doc) {
            r.error = doc.error() + " — check the path and your permissions (try sudo), or install what is named";
        } else {
            r.doc = std::move(*doc);
            if (!r.doc.readable && on_disk) {
                r.error = "'" + file + "': cannot be read: " + r.doc.reason +
                          " — the watcher and discover report such files as unreadable; check it by hand";
            } else if (!r.doc.readable) {
                r.error = "'" + file + "': cannot be judged faithfully: " + r.doc.reason +
                          "; print jobs like it follow [print] unreadable = \"" + options.unreadable_action +
                          "\" — check the document by hand";
            } else {
                r.customer_data = scan::is_customer_data(r.doc.findings, options.threshold);
            }
        }
        if (r.error) {
            any_error = true;
            err << "custguardctl scan: " << escape_text(*r.error) << "\n";
        }
        any_customer |= r.customer_data;
        results.push_back(std::move(r));
    }

    const std::uint64_t threshold = options.threshold == 0 ? 1 : options.threshold;
    if (options.json) {
        out << "{\"threshold\":" << threshold << ",\"files\":[";
        for (std::size_t i = 0; i < results.size(); ++i) {
            const auto& r = results[i];
            out << (i ? "," : "") << "{\"file\":" << json_string(r.file);
            if (r.error && r.doc.readable == false && r.doc.reason.empty()) {
                out << ",\"error\":" << json_string(*r.error) << "}";
                continue;
            }
            out << ",\"doc_type\":" << json_string(scan::to_string(r.doc.doc_type)) << ",\"pages\":" << r.doc.pages
                << ",\"members\":" << r.doc.members << ",\"members_without_text\":" << r.doc.members_without_text
                << ",\"readable\":" << (r.doc.readable ? "true" : "false");
            if (on_disk) out << ",\"encoding\":" << json_string(r.doc.encoding);
            if (r.error) {
                out << ",\"error\":" << json_string(*r.error) << "}";
                continue;
            }
            out << ",\"findings\":{";
            for (std::size_t k = 0; k < detectors.size(); ++k)
                out << (k ? "," : "") << json_string(scan::to_string(detectors[k])) << ":" << r.doc.findings.count(detectors[k]);
            for (std::size_t k = 0; k < r.doc.findings.edm.size(); ++k)
                out << (k || !detectors.empty() ? "," : "") << json_string("edm:" + r.doc.findings.edm[k].name) << ":"
                    << r.doc.findings.edm[k].persons;
            out << "},\"persons\":" << r.doc.findings.persons << ",\"total\":" << r.doc.findings.total() << ",\"customer_data\":" << (r.customer_data ? "true" : "false")
                << "}";
        }
        out << "],\"customer_data\":" << (any_customer ? "true" : "false") << "}\n";
    } else {
        for (const auto& r : results) {
            if (r.error && r.doc.reason.empty()) {
                out << escape_text(r.file) << ": ERROR (not scanned; see the message on stderr)\n";
                continue;
            }
            if (r.error) {
                out << escape_text(r.file) << ": " << scan::to_string(r.doc.doc_type) << ": UNREADABLE (" << r.doc.reason;
                if (on_disk) out << ")\n";
                else out << "); [print] unreadable = \"" << options.unreadable_action << "\" applies\n";
                continue;
            }
            // File names come from users: no forged lines or terminal escapes.
            out << escape_text(r.file) << ": " << scan::to_string(r.doc.doc_type);
            // On disk, how the text was read: a file read past NULs or control codes says so.
            if (on_disk && !r.doc.encoding.empty()) out << " (" << r.doc.encoding << ")";
            if (r.doc.pages) out << ", " << count(r.doc.pages, page_unit(r.doc.doc_type));
            if (r.doc.pages_without_text) out << " (" << r.doc.pages_without_text << " without text)";
            if (r.doc.members) out << ", " << count(r.doc.members, "member");
            if (r.doc.members_without_text) out << " (" << r.doc.members_without_text << " without text)";
            out << ": " << (r.customer_data ? "CUSTOMER DATA" : "not customer data") << " ("
                << hits(r.doc.findings.total()) << (r.customer_data ? " >= " : " < ") << "threshold " << threshold
                << ")\n";
            for (auto d : detectors)
                out << "  " << std::left << std::setw(12) << scan::to_string(d) << std::right << std::setw(8)
                    << r.doc.findings.count(d) << "\n";
            for (const auto& e : r.doc.findings.edm)
                out << "  " << std::left << std::setw(12) << ("edm:" + e.name) << std::right << std::setw(8) << e.persons
                    << (e.persons == 1 ? " person" : " persons") << "\n";
        }
    }
    if (any_error) return 2;
    return any_customer ? 1 : 0;
}

}  // namespace custguard::cli
