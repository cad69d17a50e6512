// A minimal PDF writer for tests that build hostile documents: numbered objects, streams,
// a cross-reference table. No compression, so the content is plain in the test source.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace scan_test {

class PdfBuilder {
public:
    // Reserves an object number; fill it with set().
    int reserve() {
        objects_.emplace_back();
        return static_cast<int>(objects_.size());
    }
    int add(std::string body) {
        objects_.push_back(std::move(body));
        return static_cast<int>(objects_.size());
    }
    int add_stream(const std::string& data, const std::string& dict = "") {
        return add("<< /Length " + std::to_string(data.size()) + " " + dict + " >>\nstream\n" + data + "\nendstream");
    }
    void set(int num, std::string body) { objects_[static_cast<std::size_t>(num - 1)] = std::move(body); }

    std::string finish(int root) const {
        std::string out = "%PDF-1.4\n%\xE2\xE3\xCF\xD3\n";
        std::vector<std::size_t> offsets;
        for (std::size_t i = 0; i < objects_.size(); ++i) {
            offsets.push_back(out.size());
            out += std::to_string(i + 1) + " 0 obj\n" + objects_[i] + "\nendobj\n";
        }
        const std::size_t xref = out.size();
        out += "xref\n0 " + std::to_string(objects_.size() + 1) + "\n0000000000 65535 f \n";
        for (auto off : offsets) {
            char line[32];
            std::snprintf(line, sizeof line, "%010zu 00000 n \n", off);
            out += line;
        }
        out += "trailer\n<< /Size " + std::to_string(objects_.size() + 1) + " /Root " + std::to_string(root) +
               " 0 R >>\nstartxref\n" + std::to_string(xref) + "\n%%EOF\n";
        return out;
    }

private:
    std::vector<std::string> objects_;
};

// One page whose /F1 is `font` (an object body) and whose content is `content`; `extra`
// is added to the page dictionary (e.g. /Annots). Helvetica is /F2 on every page.
inline std::string one_page_pdf(const std::string& font, const std::string& content, const std::string& extra = "",
                                PdfBuilder* use = nullptr) {
    PdfBuilder local;
    PdfBuilder& b = use ? *use : local;
    const int catalog = b.reserve();
    const int pages = b.reserve();
    const int f1 = b.add(font);
    const int f2 = b.add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>");
    const int c = b.add_stream(content);
    const int page = b.add("<< /Type /Page /Parent " + std::to_string(pages) +
                           " 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 " + std::to_string(f1) +
                           " 0 R /F2 " + std::to_string(f2) + " 0 R >> >> /Contents " + std::to_string(c) + " 0 R " +
                           extra + " >>");
    b.set(catalog, "<< /Type /Catalog /Pages " + std::to_string(pages) + " 0 R >>");
    b.set(pages, "<< /Type /Pages /Kids [" + std::to_string(page) + " 0 R] /Count 1 >>");
    return b.finish(catalog);
}

inline const std::string kHelvetica = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>";

}  // namespace scan_test
