// Documents that attack a reader, built by the tests, and /proc helpers to watch the
// sandboxed reader (custguard-extract) while it works on them.
#pragma once

#include <dirent.h>
#include <sys/types.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace cgscan {

// A one-page PDF whose page draws Form XObject level 0 once, level i draws level i+1
// `fanout` times, and the last level draws `leaf`: fanout^levels leaf draws from a few KB.
inline std::string fanout_pdf(int levels, int fanout, const std::string& leaf) {
    std::vector<std::string> objects;
    objects.push_back("<< /Type /Catalog /Pages 2 0 R >>");
    objects.push_back("<< /Type /Pages /Kids [3 0 R] /Count 1 >>");
    objects.push_back(
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> "
        "/XObject << /X 6 0 R >> >> /Contents 5 0 R >>");
    objects.push_back("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
    auto stream = [](const std::string& dict, const std::string& body) {
        return "<< " + dict + " /Length " + std::to_string(body.size()) + " >>\nstream\n" + body + "\nendstream";
    };
    objects.push_back(stream("", "/X Do"));
    for (int level = 0; level <= levels; ++level) {
        const int self = 6 + level;
        std::string dict = "/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >>";
        std::string body;
        if (level < levels) {
            dict += " /XObject << /X " + std::to_string(self + 1) + " 0 R >>";
            for (int i = 0; i < fanout; ++i) body += "/X Do\n";
        } else {
            body = leaf;
        }
        dict += " >>";
        objects.push_back(stream(dict, body));
    }
    std::string pdf = "%PDF-1.4\n";
    std::vector<std::size_t> offsets;
    for (std::size_t i = 0; i < objects.size(); ++i) {
        offsets.push_back(pdf.size());
        pdf += std::to_string(i + 1) + " 0 obj\n" + objects[i] + "\nendobj\n";
    }
    const std::size_t xref = pdf.size();
    pdf += "xref\n0 " + std::to_string(objects.size() + 1) + "\n0000000000 65535 f \n";
    for (auto off : offsets) {
        char line[32];
        std::snprintf(line, sizeof line, "%010zu 00000 n \n", off);
        pdf += line;
    }
    pdf += "trailer\n<< /Size " + std::to_string(objects.size() + 1) + " /Root 1 0 R >>\nstartxref\n" +
           std::to_string(xref) + "\n%%EOF\n";
    return pdf;
}

// Fan-out whose leaves show many words: text extraction keeps every word, so memory runs out.
inline std::string memory_bomb_pdf() {
    std::string words;
    for (int i = 0; i < 60; ++i) words += "w" + std::to_string(i) + " ";
    return fanout_pdf(10, 10, "BT /F1 1 Tf 0 0 Td (" + words + ") Tj ET");
}

// Fan-out whose leaves draw a line: no text, no memory, just 10^10 operations.
inline std::string time_bomb_pdf() { return fanout_pdf(10, 10, "0 0 m 1 1 l S"); }

// "Name:\tvalue" lines of /proc/PID/status.
inline std::map<std::string, std::string> proc_status(pid_t pid) {
    std::map<std::string, std::string> out;
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);) {
        auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        auto value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(" \t"));
        out[line.substr(0, colon)] = value;
    }
    return out;
}

inline long rss_kb(pid_t pid) {
    auto s = proc_status(pid);
    return s.count("VmRSS") ? std::stol(s["VmRSS"]) : -1;
}

inline std::string slurp_proc(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Children of `parent` running custguard-extract (comm is cut to 15 characters).
inline std::vector<pid_t> reader_pids(pid_t parent) {
    std::vector<pid_t> out;
    DIR* d = ::opendir("/proc");
    if (!d) return out;
    while (auto* e = ::readdir(d)) {
        const pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
        if (pid <= 0) continue;
        const auto stat = slurp_proc("/proc/" + std::to_string(pid) + "/stat");
        const auto open = stat.find('('), close = stat.rfind(')');
        if (open == std::string::npos || close == std::string::npos) continue;
        if (stat.substr(open + 1, close - open - 1) != "custguard-extra") continue;
        std::istringstream rest(stat.substr(close + 2));
        char state = 0;
        pid_t ppid = 0;
        rest >> state >> ppid;
        if (ppid == parent) out.push_back(pid);
    }
    ::closedir(d);
    return out;
}

inline pid_t wait_reader(pid_t parent, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        auto pids = reader_pids(parent);
        // Past exec: the sandbox is complete once the helper itself runs.
        for (pid_t p : pids)
            if (slurp_proc("/proc/" + std::to_string(p) + "/cmdline").find("--format") != std::string::npos) return p;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
}

}  // namespace cgscan
