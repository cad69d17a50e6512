// The survey's report: text for the administrator, JSON for scripts, and the [[zone]]
// snippet. Paths come from users: text output escapes them, TOML and JSON quote them.
#include <algorithm>
#include <cstdio>
#include <set>

#include "custguard/common/json_string.hpp"
#include "custguard/common/nss.hpp"
#include "custguard/common/text_escape.hpp"
#include "custguard/discover/survey.hpp"

namespace custguard::discover {

namespace {

using common::escape_text;
using common::json_string;

// A TOML basic string.
std::string toml_string(std::string_view s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04X", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

bool under(std::string_view path, std::string_view dir) {
    if (dir == "/") return true;
    return path == dir || (path.size() > dir.size() && path.starts_with(dir) && path[dir.size()] == '/');
}

// A zone name (1..64 of a-z A-Z 0-9 - _ .) from the folder's last component.
std::string zone_name(std::string_view folder, std::set<std::string>& taken) {
    auto base = folder.substr(folder.find_last_of('/') + 1);
    std::string name = "found-";
    for (char c : base) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                        c == '_' || c == '.';
        if (name.size() < 56) name += ok ? c : '_';
    }
    if (name == "found-") name += "root";
    std::string candidate = name;
    for (int i = 2; taken.contains(candidate); ++i) candidate = name + "-" + std::to_string(i);
    taken.insert(candidate);
    return candidate;
}

std::string user_name(std::uint32_t uid) {
    auto u = common::nss::user_by_uid(uid);
    return u && *u ? (*u)->name : std::string{};
}

std::string group_name(std::uint32_t gid) {
    auto g = common::nss::group_by_gid(gid);
    return g && *g ? (*g)->name : std::string{};
}

std::string number(std::uint64_t n) {
    std::string s = std::to_string(n);
    for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<std::size_t>(i), ",");
    return s;
}

}  // namespace

std::string policy_snippet(const SurveyResult& result, const std::vector<std::string>& existing_zones) {
    if (result.outside.empty()) return {};
    // Nested folders join the outermost (a zone covers its whole tree), which also keeps
    // a nested zone from being weaker than the one around it.
    std::vector<const FolderReport*> folders;
    for (const auto& f : result.outside) folders.push_back(&f);
    std::sort(folders.begin(), folders.end(), [](auto* a, auto* b) { return a->folder < b->folder; });
    struct Zone {
        std::string path;
        std::uint64_t files = 0;
        bool sensitive = false;
        std::uint32_t uid = 0, gid = 0;
    };
    std::vector<Zone> zones;
    for (const auto* f : folders) {
        if (!zones.empty() && under(f->folder, zones.back().path)) {
            zones.back().files += f->files;
            zones.back().sensitive |= f->categories.contains("sensitive");
            continue;
        }
        zones.push_back({f->folder, f->files, f->categories.contains("sensitive"), f->uid, f->gid});
    }
    std::set<std::string> taken(existing_zones.begin(), existing_zones.end());
    std::string out =
        "# Folders holding customer data outside every zone (custguardctl discover).\n"
        "# on_violation = \"audit\" records reads without refusing them: review the records,\n"
        "# complete allow_users, then switch to \"deny\". See custguard.policy(5).\n";
    for (const auto& z : zones) {
        out += "\n[[zone]]\nname = " + toml_string(zone_name(z.path, taken)) + "\n";
        out += "paths = [" + toml_string(z.path) + "]\n";
        out += std::string("sensitivity = \"") + (z.sensitive ? "sensitive" : "personal") + "\"\n";
        out += "on_violation = \"audit\"\n";
        out += "record_allowed = true\n";
        // The folder's owner and group are who works there today.
        std::vector<std::string> allow;
        if (auto u = user_name(z.uid); !u.empty()) allow.push_back(toml_string(u));
        if (auto g = group_name(z.gid); !g.empty()) allow.push_back(toml_string("%" + g));
        out += "allow_users = [";
        for (std::size_t i = 0; i < allow.size(); ++i) out += (i ? ", " : "") + allow[i];
        out += "]  # " + number(z.files) + (z.files == 1 ? " file" : " files") + " with customer data\n";
    }
    return out;
}

std::string format_text(const SurveyResult& result, const std::string& snippet) {
    const auto& c = result.counters;
    std::string out;
    char line[512];
    std::snprintf(line, sizeof line,
                  "surveyed %s files in %.1f s: %s scanned (%s MB), %s unchanged, %s removed, %s unreadable\n",
                  number(c.files).c_str(), result.seconds, number(c.scanned).c_str(),
                  number(c.bytes_scanned >> 20).c_str(), number(c.unchanged).c_str(), number(c.removed).c_str(),
                  number(c.unreadable).c_str());
    out += line;
    if (result.outside.empty()) {
        out += "no customer data outside zones (threshold " + std::to_string(result.threshold) + " hits)\n";
    } else {
        out += "\ncustomer data OUTSIDE zones (threshold " + std::to_string(result.threshold) +
               (result.exact ? " hits; \"persons\" counts distinct customers of the CRM (exact matching)):\n"
                             : " hits; \"hits\" counts detector hits, an estimate of persons without exact matching):\n");
        std::snprintf(line, sizeof line, "%8s %10s  %-40s %s\n", "files", result.exact ? "persons" : "hits",
                      "categories (hits)", "folder");
        out += line;
        for (const auto& f : result.outside) {
            std::string cats;
            for (auto name : k_category_names)
                if (auto it = f.categories.find(std::string(name)); it != f.categories.end())
                    cats += (cats.empty() ? "" : ", ") + std::string(category_label(name)) + " " + number(it->second);
            if (cats.empty()) cats = "keywords only";
            std::snprintf(line, sizeof line, "%8s %10s  %-40s ", number(f.files).c_str(),
                          number(result.exact ? f.persons : f.hits).c_str(), cats.c_str());
            out += line + escape_text(f.folder) + "\n";
        }
    }
    out += "customer data inside zones: " + number(result.inside_files) + (result.inside_files == 1 ? " file" : " files");
    std::string zones;
    for (const auto& [zone, n] : result.inside_zones) zones += (zones.empty() ? "" : ", ") + zone + " " + number(n);
    out += zones.empty() ? "\n" : " (" + zones + ")\n";
    if (!result.unreadable.empty()) {
        out += "\nunreadable (" + number(c.unreadable) + "; not judged):\n";
        for (const auto& u : result.unreadable) out += "  " + escape_text(u.path) + ": " + escape_text(u.reason) + "\n";
        if (c.unreadable > result.unreadable.size()) out += "  ... (--json lists the first " + std::to_string(k_max_listed) + ")\n";
    }
    if (!result.warnings.empty()) {
        out += "\nnot surveyed:\n";
        for (const auto& w : result.warnings) out += "  " + escape_text(w) + "\n";
    }
    if (!snippet.empty()) out += "\npolicy snippet that would make these folders zones (check it with `custguardctl policy check`):\n\n" + snippet;
    return out;
}

std::string format_json(const SurveyResult& result, const std::string& snippet) {
    const auto& c = result.counters;
    std::string out = "{\"version\":1,\"roots\":[";
    for (std::size_t i = 0; i < result.roots.size(); ++i) out += (i ? "," : "") + json_string(result.roots[i]);
    out += "],\"threshold\":" + std::to_string(result.threshold) + ",\"fingerprint\":" + json_string(result.fingerprint);
    out += ",\"counters\":{\"files\":" + std::to_string(c.files) + ",\"scanned\":" + std::to_string(c.scanned) +
           ",\"unchanged\":" + std::to_string(c.unchanged) + ",\"removed\":" + std::to_string(c.removed) +
           ",\"unreadable\":" + std::to_string(c.unreadable) + ",\"bytes_scanned\":" + std::to_string(c.bytes_scanned) +
           ",\"in_process\":" + std::to_string(c.in_process) + ",\"sandboxed\":" + std::to_string(c.sandboxed) +
           ",\"skipped\":" + std::to_string(c.skipped) + "}";
    out += ",\"io_priority_class\":" + std::to_string(result.io_priority_class) + ",\"nice\":" + std::to_string(result.nice);
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.3f", result.seconds);
    out += ",\"seconds\":" + std::string(secs);
    out += std::string(",\"persons_basis\":\"") + (result.exact ? "exact matching" : "detector hits") + "\",\"outside_zones\":[";
    for (std::size_t i = 0; i < result.outside.size(); ++i) {
        const auto& f = result.outside[i];
        out += std::string(i ? "," : "") + "{\"folder\":" + json_string(f.folder) + ",\"files\":" + std::to_string(f.files) +
               ",\"persons_estimate\":" + std::to_string(result.exact ? f.persons : f.hits) + ",\"categories\":{";
        for (std::size_t k = 0; k < std::size(k_category_names); ++k) {
            auto it = f.categories.find(std::string(k_category_names[k]));
            out += (k ? "," : "") + json_string(k_category_names[k]) + ":" +
                   std::to_string(it == f.categories.end() ? 0 : it->second);
        }
        out += "},\"detectors\":{";
        bool first = true;
        for (const auto& [d, n] : f.detectors) {
            out += (first ? "" : ",") + json_string(d) + ":" + std::to_string(n);
            first = false;
        }
        out += "}}";
    }
    out += "],\"outside_files\":" + std::to_string(result.outside_files);
    out += ",\"inside_zones\":{\"files\":" + std::to_string(result.inside_files) + ",\"zones\":{";
    bool first = true;
    for (const auto& [zone, n] : result.inside_zones) {
        out += (first ? "" : ",") + json_string(zone) + ":" + std::to_string(n);
        first = false;
    }
    out += "}},\"unreadable\":[";
    for (std::size_t i = 0; i < result.unreadable.size(); ++i)
        out += std::string(i ? "," : "") + "{\"path\":" + json_string(result.unreadable[i].path) +
               ",\"reason\":" + json_string(result.unreadable[i].reason) + "}";
    out += "],\"warnings\":[";
    for (std::size_t i = 0; i < result.warnings.size(); ++i) out += (i ? "," : "") + json_string(result.warnings[i]);
    out += "],\"policy_snippet\":" + json_string(snippet) + "}\n";
    return out;
}

}  // namespace custguard::discover
