#include "frame.hpp"

#include <algorithm>
#include <bitset>
#include <optional>

#include "custguard/scan/utf8.hpp"

namespace custguard::scan::frame {

namespace {

enum Tag : std::uint8_t {
    tag_doc_type = 1,
    tag_pages = 2,
    tag_pages_without_text = 3,
    tag_readable = 4,
    tag_reason = 5,
    tag_encoding = 6,
    tag_text_bytes = 7,
    tag_findings = 8,
    tag_error = 9,
    tag_members = 10,
    tag_members_without_text = 11,
    tag_edm = 12,
    tag_end = 0xFF,
};

constexpr std::string_view kMagic = "CGX";

void put_uint(std::string& out, std::uint64_t v, std::size_t bytes) {
    for (std::size_t i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}

std::uint64_t get_uint(std::string_view in, std::size_t bytes) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < bytes; ++i) v |= std::uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
    return v;
}

void put(std::string& out, Tag tag, std::string_view value) {
    out += static_cast<char>(tag);
    put_uint(out, value.size(), 4);
    out.append(value);
}

void put_number(std::string& out, Tag tag, std::uint64_t v, std::size_t bytes) {
    std::string value;
    put_uint(value, v, bytes);
    put(out, tag, value);
}

// Cut at a character boundary so the reader's UTF-8 check holds.
std::string_view clip(std::string_view s, std::size_t max) {
    if (s.size() <= max) return s;
    std::size_t n = max;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    return s.substr(0, n);
}

bool known_doc_type(std::uint8_t v) {
    return static_cast<DocType>(v) == DocType::unknown || to_string(static_cast<DocType>(v)) != "unknown";
}

}  // namespace

std::string encode(const Result& result) {
    std::string out(kMagic);
    out += static_cast<char>(version);
    if (!result) {
        put(out, tag_error, clip(result.error(), max_text_field));
    } else {
        const auto& d = *result;
        put_number(out, tag_doc_type, static_cast<std::uint8_t>(d.doc_type), 1);
        put_number(out, tag_pages, d.pages, 4);
        put_number(out, tag_pages_without_text, d.pages_without_text, 4);
        put_number(out, tag_readable, d.readable ? 1 : 0, 1);
        put(out, tag_reason, clip(d.reason, max_text_field));
        put(out, tag_encoding, clip(d.encoding, max_encoding));
        put_number(out, tag_text_bytes, d.text_bytes, 8);
        std::string findings;
        for (auto c : d.findings.counts) put_uint(findings, c, 8);
        put(out, tag_findings, findings);
        if (d.members) put_number(out, tag_members, d.members, 4);
        if (d.members_without_text) put_number(out, tag_members_without_text, d.members_without_text, 4);
        if (!d.findings.edm.empty()) {
            std::string edm;
            put_uint(edm, std::min(d.findings.edm.size(), max_edm_detectors), 1);
            for (std::size_t i = 0; i < d.findings.edm.size() && i < max_edm_detectors; ++i) {
                const auto name = clip(d.findings.edm[i].name, max_edm_name);
                put_uint(edm, name.size(), 1);
                edm.append(name);
                put_uint(edm, d.findings.edm[i].persons, 8);
            }
            put(out, tag_edm, edm);
        }
    }
    put(out, tag_end, {});
    return out;
}

tl::expected<Result, std::string> decode(std::string_view in) {
    using tl::unexpected;
    if (in.size() > max_frame_bytes) return unexpected(std::string("result larger than allowed"));
    if (in.size() < kMagic.size() + 1 || in.substr(0, kMagic.size()) != kMagic)
        return unexpected(std::string("no result header"));
    if (static_cast<std::uint8_t>(in[kMagic.size()]) != version)
        return unexpected("result format version " + std::to_string(static_cast<std::uint8_t>(in[kMagic.size()])) +
                          ", expected " + std::to_string(version) + " (helper and daemon from different builds?)");
    in.remove_prefix(kMagic.size() + 1);
    DocumentScan d;
    std::optional<std::string> error;
    std::bitset<256> seen;
    bool ended = false;
    while (!in.empty()) {
        if (ended) return unexpected(std::string("data after the end record"));
        if (in.size() < 5) return unexpected(std::string("truncated record header"));
        const auto tag = static_cast<std::uint8_t>(in[0]);
        const std::uint64_t len = get_uint(in.substr(1), 4);
        in.remove_prefix(5);
        if (len > in.size()) return unexpected(std::string("truncated record"));
        const std::string_view v = in.substr(0, len);
        in.remove_prefix(len);
        if (seen[tag]) return unexpected("record " + std::to_string(tag) + " twice");
        seen[tag] = true;
        auto need = [&](std::size_t n) { return len == n; };
        auto text = [&](std::size_t max) { return len <= max && valid_utf8(v); };
        switch (tag) {
        case tag_doc_type:
            if (!need(1) || !known_doc_type(static_cast<std::uint8_t>(v[0]))) return unexpected(std::string("bad doc_type"));
            d.doc_type = static_cast<DocType>(static_cast<std::uint8_t>(v[0]));
            break;
        case tag_pages:
            if (!need(4)) return unexpected(std::string("bad pages"));
            d.pages = static_cast<std::uint32_t>(get_uint(v, 4));
            break;
        case tag_pages_without_text:
            if (!need(4)) return unexpected(std::string("bad pages_without_text"));
            d.pages_without_text = static_cast<std::uint32_t>(get_uint(v, 4));
            break;
        case tag_readable:
            if (!need(1) || static_cast<std::uint8_t>(v[0]) > 1) return unexpected(std::string("bad readable"));
            d.readable = v[0] == 1;
            break;
        case tag_reason:
            if (!text(max_text_field)) return unexpected(std::string("bad reason"));
            d.reason = std::string(v);
            break;
        case tag_encoding:
            if (!text(max_encoding)) return unexpected(std::string("bad encoding"));
            d.encoding = std::string(v);
            break;
        case tag_text_bytes:
            if (!need(8)) return unexpected(std::string("bad text_bytes"));
            d.text_bytes = get_uint(v, 8);
            break;
        case tag_findings:
            if (!need(8 * detector_count)) return unexpected(std::string("bad findings"));
            for (std::size_t i = 0; i < detector_count; ++i) d.findings.counts[i] = get_uint(v.substr(8 * i), 8);
            break;
        case tag_members:
            if (!need(4)) return unexpected(std::string("bad members"));
            d.members = static_cast<std::uint32_t>(get_uint(v, 4));
            break;
        case tag_members_without_text:
            if (!need(4)) return unexpected(std::string("bad members_without_text"));
            d.members_without_text = static_cast<std::uint32_t>(get_uint(v, 4));
            break;
        case tag_edm: {
            if (len < 1 || static_cast<std::uint8_t>(v[0]) > max_edm_detectors) return unexpected(std::string("bad edm"));
            std::string_view rest = v.substr(1);
            for (std::size_t i = static_cast<std::uint8_t>(v[0]); i > 0; --i) {
                if (rest.empty()) return unexpected(std::string("bad edm"));
                const std::size_t n = static_cast<std::uint8_t>(rest[0]);
                if (n == 0 || n > max_edm_name || rest.size() < 1 + n + 8 || !valid_utf8(rest.substr(1, n)))
                    return unexpected(std::string("bad edm"));
                const std::uint64_t persons = get_uint(rest.substr(1 + n), 8);
                d.findings.edm.push_back({std::string(rest.substr(1, n)), persons});
                d.findings.persons += persons;
                rest.remove_prefix(1 + n + 8);
            }
            if (!rest.empty()) return unexpected(std::string("bad edm"));
            break;
        }
        case tag_error:
            if (!text(max_text_field) || len == 0) return unexpected(std::string("bad error"));
            error = std::string(v);
            break;
        case tag_end:
            if (len != 0) return unexpected(std::string("bad end record"));
            ended = true;
            break;
        default: return unexpected("unknown record " + std::to_string(tag));
        }
    }
    if (!ended) return unexpected(std::string("no end record (output cut short)"));
    if (error) {
        if (seen.count() != 2) return unexpected(std::string("error record mixed with a result"));
        return Result(tl::unexpect, std::move(*error));
    }
    for (Tag t : {tag_doc_type, tag_pages, tag_pages_without_text, tag_readable, tag_reason, tag_encoding,
                  tag_text_bytes, tag_findings})
        if (!seen[t]) return unexpected("record " + std::to_string(t) + " missing");
    return Result(std::move(d));
}

}  // namespace custguard::scan::frame
