// Input: one mode byte, then the document.
//   mode % 3 == 0: scan the bytes as text, whole and in pieces; the findings must agree.
//   mode % 3 == 1: extract (sniffing, encodings, CSV, PDF, Office files, zip, gzip, mail)
//                  and scan the text; containers again with tight bounds, which must
//                  hold (seeds for the formats: make_format_seeds.py).
//   mode % 3 == 2: normalisation never grows text; a small-keyword config with tight
//                  proximity is scanned too.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "custguard/scan/document.hpp"
#include "custguard/scan/extract.hpp"
#include "custguard/scan/normalize.hpp"
#include "custguard/scan/scanner.hpp"

using namespace custguard::scan;

namespace {

Scanner& scanner() {
    static Scanner s = [] {
        auto created = Scanner::create({});
        if (!created) std::abort();
        return std::move(*created);
    }();
    return s;
}

Scanner& small_scanner() {
    static Scanner s = [] {
        ScannerConfig config;
        config.keywords = {"a", "ab", "ｂ", "氏名"};
        config.keyword_proximity = 2;
        auto created = Scanner::create(config);
        if (!created) std::abort();
        return std::move(*created);
    }();
    return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const unsigned mode = data[0];
    const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
    switch (mode % 3) {
    case 0: {
        auto whole = scanner().scan(input);
        if (!whole) std::abort();
        scanner().begin();
        const std::size_t step = 1 + mode / 3;  // piece size from the mode byte
        for (std::size_t pos = 0; pos < input.size(); pos += step) scanner().feed(input.substr(pos, step));
        auto pieces = scanner().finish();
        if (!pieces || !(*pieces == *whole)) std::abort();
        break;
    }
    case 1: {
        ExtractOptions options;
        options.ghostscript.clear();
        auto doc = scan_document(scanner(), input, {}, options);
        if (doc && !doc->readable && doc->findings.total() != 0) std::abort();
        if (doc && doc->members > 0) {
            options.max_depth = 1;
            options.max_members = 8;
            options.max_expanded_bytes = 64 * 1024;
            options.max_text_bytes = 64 * 1024;
            auto tight = extract(input, {}, options);
            if (tight && tight->readable && (tight->members > 8 || tight->text.size() > options.max_text_bytes)) std::abort();
        }
        break;
    }
    default: {
        const auto normalised = normalize(input);
        if (normalised.size() > input.size()) std::abort();
        (void)small_scanner().scan(input);
        break;
    }
    }
    return 0;
}
