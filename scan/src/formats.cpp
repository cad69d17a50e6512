#include "formats.hpp"

#include <expat.h>
#include <zip.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>
#include <vector>

#include "custguard/scan/utf8.hpp"

namespace custguard::scan::detail {

namespace {

// Below this a member's expansion ratio is not judged: small highly repetitive XML parts
// are normal (the same grace Apache POI's ZipSecureFile gives).
constexpr std::uint64_t kRatioGrace = std::uint64_t{1} << 20;
constexpr std::size_t kChunk = 64 * 1024;
constexpr std::uint32_t kMaxMimeNesting = 16;  // multipart inside multipart
constexpr std::string_view kUel = "\x1B%-12345X";

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lowered(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = lower(c);
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
    return s;
}

std::string mib(std::uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

Extracted unreadable(DocType type, std::string reason) {
    Extracted e;
    e.doc_type = type;
    e.reason = std::move(reason);
    return e;
}

std::string too_much_text(const ExtractOptions& options) {
    return "more text than the scan limit of " + std::to_string(options.max_text_bytes >> 20) +
           " MiB (max_text_bytes): the rest would go unread";
}

// A member name for a reason: quoted, printable, valid UTF-8 (the result frame checks
// it), at most about 80 bytes.
std::string quoted(std::string_view name) {
    const bool utf8 = valid_utf8(name);
    std::string out = "'";
    for (std::size_t i = 0; i < name.size(); ++i) {
        const auto c = static_cast<unsigned char>(name[i]);
        if (out.size() > 80 && (c & 0xC0) != 0x80) {
            out += "...";
            break;
        }
        out += c < 0x20 || c == 0x7F || (!utf8 && c >= 0x80) ? '?' : static_cast<char>(c);
    }
    return out + "'";
}

// Counts unpacked bytes of one member against the bounds.
class Budget {
public:
    Budget(const ExtractOptions& options, Nest& nest, std::uint64_t packed, std::string what, std::string_view bomb)
        : options_(options), nest_(nest), packed_(std::max<std::uint64_t>(packed, 1)), what_(std::move(what)), bomb_(bomb) {}
    // Why unpacking a member of this declared size would cross a bound, or nullopt.
    std::optional<std::string> declared(std::uint64_t size) const {
        if (size > kRatioGrace && size / packed_ > options_.max_ratio)
            return std::string(bomb_) + ": " + what_ + " expands more than " + std::to_string(options_.max_ratio) +
                   "-fold (declared " + std::to_string(packed_) + " bytes to " + std::to_string(size) + ")";
        if (nest_.expanded + size > options_.max_expanded_bytes)
            return std::string(bomb_) + ": expands beyond " + mib(options_.max_expanded_bytes) +
                   " (max_expanded_bytes), at " + what_ + " (declared " + std::to_string(size) + " bytes)";
        return std::nullopt;
    }
    // Why unpacking must stop, or nullopt.
    std::optional<std::string> add(std::uint64_t n) {
        produced_ += n;
        nest_.expanded += n;
        if (nest_.expanded > options_.max_expanded_bytes)
            return std::string(bomb_) + ": expands beyond " + mib(options_.max_expanded_bytes) +
                   " (max_expanded_bytes), at " + what_;
        if (produced_ > kRatioGrace && produced_ / packed_ > options_.max_ratio)
            return std::string(bomb_) + ": " + what_ + " expands more than " + std::to_string(options_.max_ratio) +
                   "-fold (" + std::to_string(packed_) + " bytes to more than " + std::to_string(produced_) + ")";
        return std::nullopt;
    }

private:
    const ExtractOptions& options_;
    Nest& nest_;
    std::uint64_t packed_, produced_ = 0;
    std::string what_;
    std::string_view bomb_;
};

std::optional<std::string> too_deep(const ExtractOptions& options, const Nest& nest) {
    if (nest.depth + 1 <= options.max_depth) return std::nullopt;
    return "nested too deep: containers (zip, gzip, Office files, mail attachments) inside containers beyond " +
           std::to_string(options.max_depth) + " levels (max_depth)";
}

std::optional<std::string> count_member(const ExtractOptions& options, Nest& nest, std::uint64_t n = 1) {
    nest.members = static_cast<std::uint32_t>(std::min<std::uint64_t>(nest.members + n, UINT32_MAX));
    if (nest.members <= options.max_members) return std::nullopt;
    return "zip bomb: more than " + std::to_string(options.max_members) + " members (max_members)";
}

// OLE2 compound file: legacy .xls/.doc/.ppt, or an Office file with a password.
bool is_ole2(std::string_view b) { return b.starts_with("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1"); }

// Puts members' texts together; images and unknown binaries are members without text,
// every other unreadable member makes the container unreadable (it cannot be judged whole).
class Assembly {
public:
    Assembly(Extracted& e, const ExtractOptions& options) : e_(e), options_(options) {}

    std::optional<std::string> add(const Extracted& m, std::string_view name, std::string_view bytes) {
        ++e_.members;
        if (!m.readable) {
            if (m.doc_type == DocType::image || (m.doc_type == DocType::unknown && !is_ole2(bytes) &&
                                                 bytes.find(kUel) == std::string_view::npos)) {
                ++e_.members_without_text;
                return std::nullopt;
            }
            return "member " + quoted(name) + ": " + m.reason;
        }
        return text(m.text);
    }
    std::optional<std::string> text(std::string_view t) {
        if (e_.text.size() + t.size() + 2 > options_.max_text_bytes) return too_much_text(options_);
        e_.text.append(t);
        e_.text += "\n\f";  // member break: no detector match crosses it
        return std::nullopt;
    }
    // The container's verdict once all members are in; `own_text`: the container has text
    // of its own (a mail's body), so members without text do not leave it unread.
    Extracted finish(bool own_text = false) {
        if (!own_text && e_.members > 0 && e_.members == e_.members_without_text) {
            auto u = unreadable(e_.doc_type, "no member holds text (" + std::to_string(e_.members) +
                                                 " images or files of unknown format)");
            u.members = u.members_without_text = e_.members;
            return u;
        }
        e_.readable = true;
        return std::move(e_);
    }

private:
    Extracted& e_;
    const ExtractOptions& options_;
};

// ---- XML -----------------------------------------------------------------------------

std::string_view local_name(const XML_Char* name) {
    std::string_view n(name);
    const auto colon = n.rfind(':');
    return colon == std::string_view::npos ? n : n.substr(colon + 1);
}

// An attribute's value by local name, from expat's name/value list.
std::string_view attribute(const XML_Char** attributes, std::string_view name) {
    for (std::size_t i = 0; attributes && attributes[i]; i += 2)
        if (local_name(attributes[i]) == name) return attributes[i + 1];
    return {};
}

template <class Start, class End, class Text>
struct XmlWalk {
    XML_Parser parser;
    Start& start;
    End& end;
    Text& text;
    bool doctype = false;
};

// Streams `xml` through the callbacks: start(local name, attributes), end(local name),
// text(characters, in pieces). Expat reads without network and external entities; a
// document with a DTD is refused (Office files have none, and then no entity is expanded).
template <class Start, class End, class Text>
std::optional<std::string> walk_xml(std::string_view xml, std::string_view part, Start&& start, End&& end, Text&& text) {
    if (xml.size() > static_cast<std::size_t>(INT_MAX)) return "part " + quoted(part) + " larger than 2 GiB";
    std::unique_ptr<std::remove_pointer_t<XML_Parser>, void (*)(XML_Parser)> parser(XML_ParserCreate(nullptr), XML_ParserFree);
    if (!parser) throw std::bad_alloc();
    using Walk = XmlWalk<std::remove_reference_t<Start>, std::remove_reference_t<End>, std::remove_reference_t<Text>>;
    Walk walk{parser.get(), start, end, text};
    XML_SetUserData(parser.get(), &walk);
    XML_SetElementHandler(
        parser.get(),
        [](void* w, const XML_Char* name, const XML_Char** attributes) {
            static_cast<Walk*>(w)->start(local_name(name), attributes);
        },
        [](void* w, const XML_Char* name) { static_cast<Walk*>(w)->end(local_name(name)); });
    XML_SetCharacterDataHandler(parser.get(), [](void* w, const XML_Char* s, int len) {
        static_cast<Walk*>(w)->text(std::string_view(s, static_cast<std::size_t>(len)));
    });
    XML_SetStartDoctypeDeclHandler(parser.get(), [](void* w, const XML_Char*, const XML_Char*, const XML_Char*, int) {
        auto* walk = static_cast<Walk*>(w);
        walk->doctype = true;
        XML_StopParser(walk->parser, XML_FALSE);
    });
    if (XML_Parse(parser.get(), xml.data(), static_cast<int>(xml.size()), XML_TRUE) == XML_STATUS_OK) return std::nullopt;
    if (walk.doctype) return "XML with a document type declaration in " + quoted(part) + " (Office files have none)";
    return "damaged XML in " + quoted(part) + " (line " + std::to_string(XML_GetCurrentLineNumber(parser.get())) + ": " +
           XML_ErrorString(XML_GetErrorCode(parser.get())) + ")";
}

// Text of a WordprocessingML, DrawingML or OpenDocument part: runs joined as written,
// paragraphs on lines, table cells separated by tabs; phonetic guides (rPh) left out.
std::optional<std::string> xml_text(std::string_view xml, std::string_view part, std::string& out) {
    int cell = 0, skip = 0;
    return walk_xml(
        xml, part,
        [&](std::string_view n, const XML_Char**) {
            if (n == "rPh") ++skip;
            else if (n == "tc" || n == "table-cell") ++cell;
            else if (n == "tab") out += '\t';
            else if (n == "br" || n == "cr" || n == "line-break") out += '\n';
            else if (n == "s") out += ' ';
        },
        [&](std::string_view n) {
            if (n == "rPh") --skip;
            else if (n == "p" || n == "h") out += cell > 0 ? ' ' : '\n';
            else if (n == "tc" || n == "table-cell") {
                --cell;
                out += '\t';
            } else if (n == "tr" || n == "table-row") out += '\n';
        },
        [&](std::string_view t) {
            if (skip <= 0) out.append(t);
        });
}

// xl/sharedStrings.xml: the strings, concatenated, and where each starts.
struct SharedStrings {
    std::string text;
    std::vector<std::uint32_t> starts;
    std::string_view at(std::size_t i) const {
        if (i >= starts.size()) return {};
        const std::size_t end = i + 1 < starts.size() ? starts[i + 1] : text.size();
        return std::string_view(text).substr(starts[i], end - starts[i]);
    }
};

std::optional<std::string> shared_strings(std::string_view xml, std::string_view part, SharedStrings& out) {
    int skip = 0;
    bool too_big = false;
    auto why = walk_xml(
        xml, part,
        [&](std::string_view n, const XML_Char**) {
            if (n == "si") {
                if (out.text.size() > UINT32_MAX) too_big = true;
                out.starts.push_back(static_cast<std::uint32_t>(out.text.size()));
            } else if (n == "rPh") ++skip;
        },
        [&](std::string_view n) {
            if (n == "rPh") --skip;
        },
        [&](std::string_view t) {
            if (skip <= 0 && !out.starts.empty()) out.text.append(t);
        });
    if (!why && too_big) return "shared strings larger than 4 GiB in " + quoted(part);
    return why;
}

// A worksheet: cells by row, tab-separated, shared strings resolved; formulas left out
// (their cached value is in <v>).
std::optional<std::string> sheet_text(std::string_view xml, std::string_view part, const SharedStrings& strings,
                                      std::string& out) {
    std::string type, value;
    bool in_value = false, in_inline = false;
    int skip = 0;
    return walk_xml(
        xml, part,
        [&](std::string_view n, const XML_Char** attributes) {
            if (n == "c") {
                type = attribute(attributes, "t");
                value.clear();
            } else if (n == "v") in_value = true;
            else if (n == "is") in_inline = true;
            else if (n == "rPh") ++skip;
        },
        [&](std::string_view n) {
            if (n == "v") in_value = false;
            else if (n == "is") in_inline = false;
            else if (n == "rPh") --skip;
            else if (n == "c") {
                if (type == "s") {
                    std::size_t i = 0;
                    bool ok = !value.empty() && value.size() < 10;
                    for (char c : value) ok = ok && c >= '0' && c <= '9', i = i * 10 + static_cast<std::size_t>(c - '0');
                    out.append(ok ? strings.at(i) : std::string_view(value));
                } else {
                    out.append(value);
                }
                out += '\t';
            } else if (n == "row") out += '\n';
        },
        [&](std::string_view t) {
            if (skip <= 0 && (in_value || in_inline)) value.append(t);
        });
}

// ---- zip -----------------------------------------------------------------------------

struct ZipDiscard {
    void operator()(zip_t* z) const { zip_discard(z); }
};
using Zip = std::unique_ptr<zip_t, ZipDiscard>;

tl::expected<Zip, std::string> open_zip(std::string_view bytes) {
    zip_error_t error;
    zip_error_init(&error);
    auto fail = [&] {
        std::string why = zip_error_strerror(&error);
        zip_error_fini(&error);
        return tl::unexpected("damaged zip archive (" + why + ")");
    };
    zip_source_t* source = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
    if (!source) return fail();
    zip_t* archive = zip_open_from_source(source, ZIP_RDONLY | ZIP_CHECKCONS, &error);
    if (!archive) {
        zip_source_free(source);
        return fail();
    }
    zip_error_fini(&error);
    return Zip(archive);
}

bool has_entry(zip_t* z, const char* name) { return zip_name_locate(z, name, 0) >= 0; }

DocType kind_of(zip_t* z) {
    if (has_entry(z, "[Content_Types].xml")) {
        if (has_entry(z, "xl/workbook.xml")) return DocType::xlsx;
        if (has_entry(z, "word/document.xml")) return DocType::docx;
        if (has_entry(z, "ppt/presentation.xml")) return DocType::pptx;
    }
    if (zip_file_t* f = zip_fopen(z, "mimetype", 0)) {
        char buf[128];
        const zip_int64_t n = zip_fread(f, buf, sizeof buf);
        zip_fclose(f);
        const std::string_view mime(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
        if (trim(mime) == "application/vnd.oasis.opendocument.spreadsheet") return DocType::ods;
        if (trim(mime) == "application/vnd.oasis.opendocument.text") return DocType::odt;
    }
    return DocType::zip;
}

// One member, unpacked within the bounds; the error is the unreadable reason.
tl::expected<std::string, std::string> read_entry(zip_t* z, zip_uint64_t index, const ExtractOptions& options,
                                                   Nest& nest) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(z, index, 0, &st) != 0) return tl::unexpected(std::string("damaged zip archive (member table)"));
    const std::string name = st.name ? st.name : "";
    if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) && st.encryption_method != ZIP_EM_NONE)
        return tl::unexpected("encrypted member " + quoted(name) + " (needs a password)");
    std::unique_ptr<zip_file_t, int (*)(zip_file_t*)> file(zip_fopen_index(z, index, 0), zip_fclose);
    if (!file) return tl::unexpected("member " + quoted(name) + " cannot be unpacked (" + zip_strerror(z) + ")");
    Budget budget(options, nest, (st.valid & ZIP_STAT_COMP_SIZE) ? st.comp_size : 0, "member " + quoted(name), "zip bomb");
    // An honest header announces a bomb before anything is unpacked; a lying one is caught
    // while unpacking.
    if (st.valid & ZIP_STAT_SIZE)
        if (auto why = budget.declared(st.size)) return tl::unexpected(std::move(*why));
    std::string out;
    std::size_t have = 0;
    for (;;) {
        out.resize(have + kChunk);
        const zip_int64_t n = zip_fread(file.get(), out.data() + have, kChunk);
        if (n < 0)
            return tl::unexpected("damaged member " + quoted(name) + " (" + zip_file_strerror(file.get()) + ")");
        if (n == 0) break;
        have += static_cast<std::size_t>(n);
        if (auto why = budget.add(static_cast<std::uint64_t>(n))) return tl::unexpected(std::move(*why));
    }
    out.resize(have);
    return out;
}

std::string entry_name(zip_t* z, zip_uint64_t i) {
    const char* n = zip_get_name(z, i, 0);
    return n ? n : "";
}

bool matches(std::string_view name, std::string_view prefix, std::string_view suffix) {
    return name.size() >= prefix.size() + suffix.size() && name.starts_with(prefix) && name.ends_with(suffix);
}

// Office files: the parts that hold text, in the order the formats need them.
Extracted extract_office(zip_t* z, zip_int64_t entries, DocType type, const ExtractOptions& options, Nest& nest,
                         const ReadMember& read) {
    Extracted e;
    e.doc_type = type;
    Assembly parts(e, options);
    SharedStrings strings;
    if (type == DocType::xlsx) {
        if (const auto i = zip_name_locate(z, "xl/sharedStrings.xml", 0); i >= 0) {
            auto xml = read_entry(z, static_cast<zip_uint64_t>(i), options, nest);
            if (!xml) return unreadable(type, xml.error());
            if (auto why = shared_strings(*xml, "xl/sharedStrings.xml", strings)) return unreadable(type, *why);
        }
    }
    for (zip_int64_t i = 0; i < entries; ++i) {
        const auto index = static_cast<zip_uint64_t>(i);
        const std::string name = entry_name(z, index);
        enum { none, sheet, generic, embedded } role = none;
        switch (type) {
        case DocType::xlsx:
            if (matches(name, "xl/worksheets/sheet", ".xml")) role = sheet;
            else if (matches(name, "xl/comments", ".xml")) role = generic;
            break;
        case DocType::docx:
            if (name == "word/document.xml" || matches(name, "word/header", ".xml") || matches(name, "word/footer", ".xml") ||
                name == "word/footnotes.xml" || name == "word/endnotes.xml" || name == "word/comments.xml")
                role = generic;
            break;
        case DocType::pptx:
            if (matches(name, "ppt/slides/slide", ".xml")) role = sheet;  // counted as pages
            else if (matches(name, "ppt/notesSlides/notesSlide", ".xml")) role = generic;
            break;
        default:  // ods, odt
            if (name == "content.xml" || name == "styles.xml") role = generic;
            break;
        }
        if (name.find("/embeddings/") != std::string::npos && !name.ends_with("/")) role = embedded;
        if (role == none) continue;
        auto bytes = read_entry(z, index, options, nest);
        if (!bytes) return unreadable(type, bytes.error());
        if (role == embedded) {
            if (auto why = too_deep(options, nest)) return unreadable(type, *why);
            ++nest.depth;
            const auto member = read(*bytes, {}, nest);
            --nest.depth;
            if (auto why = parts.add(member, name, *bytes)) return unreadable(type, *why);
            continue;
        }
        std::string text;
        std::optional<std::string> why;
        if (role == sheet && type == DocType::xlsx) why = sheet_text(*bytes, name, strings, text);
        else why = xml_text(*bytes, name, text);
        if (why) return unreadable(type, *why);
        if (role == sheet) ++e.pages;
        if (auto over = parts.text(text)) return unreadable(type, *over);
    }
    // Parts are not members: only embedded objects count as such, and the file has text of
    // its own beside them.
    return parts.finish(/*own_text=*/true);
}

// ---- mail ----------------------------------------------------------------------------

struct Header {
    std::string name;  // lower case
    std::string value;
};

struct Entity {
    std::vector<Header> headers;
    std::string_view body;
    const std::string* get(std::string_view name) const {
        for (const auto& h : headers)
            if (h.name == name) return &h.value;
        return nullptr;
    }
};

// Lines without their CR LF; `next` moves past the line break.
std::string_view next_line(std::string_view s, std::size_t& pos) {
    const auto nl = s.find('\n', pos);
    std::string_view line = s.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? s.size() : nl + 1;
    if (line.ends_with('\r')) line.remove_suffix(1);
    return line;
}

Entity parse_entity(std::string_view raw) {
    Entity e;
    std::size_t pos = 0;
    while (pos < raw.size()) {
        const auto line = next_line(raw, pos);
        if (line.empty()) break;
        if ((line.front() == ' ' || line.front() == '\t') && !e.headers.empty()) {
            e.headers.back().value += ' ';
            e.headers.back().value.append(trim(line));
            continue;
        }
        const auto colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        e.headers.push_back({lowered(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1)))});
    }
    e.body = raw.substr(pos);
    return e;
}

// "text/plain; charset=\"iso-2022-jp\"" -> value "text/plain", parameters lower-cased names.
struct HeaderValue {
    std::string value;
    std::vector<std::pair<std::string, std::string>> params;
    std::string param(std::string_view name) const {
        for (const auto& [k, v] : params)
            if (k == name) return v;
        return {};
    }
};

HeaderValue parse_params(std::string_view s) {
    HeaderValue h;
    auto semi = s.find(';');
    h.value = lowered(trim(s.substr(0, semi)));
    while (semi != std::string_view::npos) {
        s.remove_prefix(semi + 1);
        const auto eq = s.find('=');
        if (eq == std::string_view::npos) break;
        std::string key = lowered(trim(s.substr(0, eq)));
        s.remove_prefix(eq + 1);
        while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
        std::string value;
        if (!s.empty() && s.front() == '"') {
            std::size_t i = 1;
            for (; i < s.size() && s[i] != '"'; ++i) {
                if (s[i] == '\\' && i + 1 < s.size()) ++i;
                value += s[i];
            }
            s.remove_prefix(std::min(i + 1, s.size()));
            semi = s.find(';');
        } else {
            semi = s.find(';');
            value = std::string(trim(s.substr(0, semi)));
        }
        if (key.ends_with('*')) key.pop_back();  // RFC 2231 extended name: value kept as is
        h.params.emplace_back(std::move(key), std::move(value));
    }
    return h;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

std::string base64_decode(std::string_view in) {
    static constexpr auto table = [] {
        std::array<signed char, 256> t{};
        t.fill(-1);
        const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<signed char>(i);
        return t;
    }();
    std::string out;
    out.reserve(in.size() / 4 * 3);
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
        if (c == '=') break;
        const int v = table[static_cast<unsigned char>(c)];
        if (v < 0) continue;  // line breaks and stray characters
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xFF);
        }
    }
    return out;
}

std::string qp_decode(std::string_view in, bool underscore_space) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        const char c = in[i];
        if (c == '_' && underscore_space) {
            out += ' ';
        } else if (c == '=' && i + 2 < in.size() && hex_value(in[i + 1]) >= 0 && hex_value(in[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2]));
            i += 2;
        } else if (c == '=' && (in.substr(i + 1).starts_with("\r\n") || in.substr(i + 1).starts_with("\n"))) {
            i += in[i + 1] == '\r' ? 2 : 1;  // soft line break
        } else {
            out += c;
        }
    }
    return out;
}

// Text in a declared charset as UTF-8; undeclared or wrongly declared 8-bit text as the
// file reader guesses it (UTF-8, EUC-JP, CP932).
std::optional<std::string> mail_text(std::string_view bytes, std::string charset) {
    charset = lowered(charset);
    std::vector<const char*> tries;
    if (charset == "iso-2022-jp") tries = {"ISO-2022-JP", "ISO-2022-JP-2", "ISO-2022-JP-3"};
    else if (charset == "shift_jis" || charset == "sjis" || charset == "x-sjis" || charset == "windows-31j" ||
             charset == "cp932" || charset == "ms932")
        tries = {"CP932"};
    else if (charset == "euc-jp") tries = {"EUC-JP"};
    else if (!charset.empty() && charset != "utf-8" && charset != "us-ascii") tries = {charset.c_str()};
    // Undeclared JIS: 7-bit, so it would pass as UTF-8 with its escapes left in.
    if (tries.empty() && (bytes.find("\x1B$B") != std::string_view::npos || bytes.find("\x1B$@") != std::string_view::npos))
        tries = {"ISO-2022-JP", "ISO-2022-JP-2"};
    for (const char* cs : tries)
        if (auto t = convert_to_utf8(cs, bytes)) return t;
    if (valid_utf8(bytes)) return std::string(bytes);
    for (const char* cs : {"EUC-JP", "CP932"})
        if (auto t = convert_to_utf8(cs, bytes)) return t;
    return std::nullopt;
}

// RFC 2047 encoded words (=?charset?B?...?=) in a header value; blanks between two of
// them are dropped.
std::string decode_words(std::string_view v) {
    std::string out;
    bool last_word = false;
    std::size_t pending_blank = 0;
    for (std::size_t i = 0; i < v.size();) {
        if (v.substr(i).starts_with("=?")) {
            const auto q1 = v.find('?', i + 2);
            const auto q2 = q1 == std::string_view::npos ? q1 : v.find('?', q1 + 1);
            const auto end = q2 == std::string_view::npos ? q2 : v.find("?=", q2 + 1);
            if (end != std::string_view::npos && q2 == q1 + 2) {
                std::string charset(v.substr(i + 2, q1 - i - 2));
                if (auto star = charset.find('*'); star != std::string::npos) charset.resize(star);  // RFC 2231 language
                const char enc = lower(v[q1 + 1]);
                const auto payload = v.substr(q2 + 1, end - q2 - 1);
                const std::string raw = enc == 'b' ? base64_decode(payload) : qp_decode(payload, true);
                if (!last_word) out.append(v.substr(i - pending_blank, pending_blank));
                out += mail_text(raw, charset).value_or(std::string());
                pending_blank = 0;
                last_word = true;
                i = end + 2;
                continue;
            }
        }
        if (v[i] == ' ' || v[i] == '\t') {
            ++pending_blank;
            ++i;
            continue;
        }
        if (pending_blank) out.append(v.substr(i - pending_blank, pending_blank));
        pending_blank = 0;
        last_word = false;
        out += v[i++];
    }
    if (!valid_utf8(out)) {
        auto guessed = mail_text(out, {});
        return guessed ? *guessed : std::string();
    }
    return out;
}

std::string html_to_text(std::string_view html) {
    std::string out;
    out.reserve(html.size());
    for (std::size_t i = 0; i < html.size();) {
        const char c = html[i];
        if (c == '<') {
            const auto close = html.find('>', i);
            const std::string tag = lowered(html.substr(i + 1, std::min<std::size_t>(4, close - i - 1)));
            if (tag.starts_with("br") || tag.starts_with("p") || tag.starts_with("div") || tag.starts_with("/p") ||
                tag.starts_with("/div") || tag.starts_with("tr") || tag.starts_with("li"))
                out += '\n';
            else if (tag.starts_with("td") || tag.starts_with("th")) out += '\t';
            i = close == std::string_view::npos ? html.size() : close + 1;
            continue;
        }
        if (c == '&') {
            static constexpr std::pair<std::string_view, std::string_view> entities[] = {
                {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&nbsp;", " "}, {"&#64;", "@"}};
            bool done = false;
            for (auto [name, text] : entities)
                if (html.substr(i).starts_with(name)) {
                    out.append(text);
                    i += name.size();
                    done = true;
                    break;
                }
            if (done) continue;
        }
        out += c;
        ++i;
    }
    return out;
}

// The parts of a multipart body between its delimiter lines.
std::vector<std::string_view> split_multipart(std::string_view body, std::string_view boundary) {
    std::vector<std::string_view> parts;
    const std::string delimiter = "--" + std::string(boundary);
    std::size_t pos = 0, part_start = std::string_view::npos;
    while (pos < body.size()) {
        const std::size_t line_start = pos;
        const auto line = next_line(body, pos);
        if (!line.starts_with(delimiter)) continue;
        const auto rest = trim(line.substr(delimiter.size()));
        if (!rest.empty() && rest != "--") continue;
        if (part_start != std::string_view::npos) {
            std::size_t end = line_start;
            if (end > part_start && body[end - 1] == '\n') --end;  // the line break belongs to the delimiter
            if (end > part_start && body[end - 1] == '\r') --end;
            parts.push_back(body.substr(part_start, end - part_start));
        }
        if (rest == "--") return parts;
        part_start = pos;
    }
    if (part_start != std::string_view::npos) parts.push_back(body.substr(part_start));  // no closing delimiter
    return parts;
}

// Raw mail bytes would print as what the printer makes of them: besides layout, only the
// ISO-2022-JP shifts (ESC $ B, ESC ( B, ...) may appear; any other control is a printer
// command the mail reading does not see.
std::optional<std::string> mail_control_problem(std::string_view raw) {
    static constexpr std::string_view shifts[] = {"$B", "$@", "(B", "(J", "(I", "$(D"};
    for (std::size_t i = 0; i < raw.size(); ++i) {
        const auto c = static_cast<unsigned char>(raw[i]);
        if (c >= 0x20 || c == '\t' || c == '\n' || c == '\r' || c == '\f') continue;
        if (c == 0x1B) {
            const auto rest = raw.substr(i + 1);
            if (std::any_of(std::begin(shifts), std::end(shifts), [&](std::string_view s) { return rest.starts_with(s); }))
                continue;
        }
        return "mail with printer control codes (byte 0x" + std::string(1, "0123456789ABCDEF"[c >> 4]) +
               std::string(1, "0123456789ABCDEF"[c & 15]) + " at " + std::to_string(i) +
               "): a printer would interpret them, not print them";
    }
    return std::nullopt;
}

class MailReader {
public:
    MailReader(Extracted& e, const ExtractOptions& options, Nest& nest, const ReadMember& read)
        : options_(options), nest_(nest), read_(read), parts_(e, options) {}

    std::optional<std::string> entity(std::string_view raw, std::uint32_t level, std::string& headers_text) {
        const Entity ent = parse_entity(raw);
        // The subject is content; the addresses are the mail's own envelope, which every mail
        // has, so they would make each one look like contact data.
        if (level == 0)
            if (const auto* subject = ent.get("subject")) headers_text += decode_words(*subject) + "\n";
        const auto type = parse_params(ent.get("content-type") ? *ent.get("content-type") : std::string());
        const auto disposition = parse_params(ent.get("content-disposition") ? *ent.get("content-disposition") : std::string());
        std::string filename = disposition.param("filename");
        if (filename.empty()) filename = type.param("name");
        if (type.value.starts_with("multipart/") && !type.param("boundary").empty()) {
            if (level + 1 > kMaxMimeNesting)
                return "nested too deep: MIME multiparts inside multiparts beyond " + std::to_string(kMaxMimeNesting) + " levels";
            auto parts = split_multipart(ent.body, type.param("boundary"));
            if (auto why = count_member(options_, nest_, parts.size())) return why;
            if (type.value == "multipart/alternative" && parts.size() > 1) {
                // The same message in several forms: scanning each would count it again.
                // Plain text when there is one, else the first.
                auto plain = std::find_if(parts.begin(), parts.end(), [](std::string_view p) {
                    const auto t = parse_entity(p);
                    return parse_params(t.get("content-type") ? *t.get("content-type") : std::string()).value == "text/plain";
                });
                const auto chosen = plain == parts.end() ? parts.front() : *plain;
                parts.assign(1, chosen);
            }
            for (auto part : parts)
                if (auto why = entity(part, level + 1, headers_text)) return why;
            return std::nullopt;
        }
        const auto encoding = lowered(trim(ent.get("content-transfer-encoding") ? *ent.get("content-transfer-encoding") : ""));
        std::string decoded = encoding == "base64"             ? base64_decode(ent.body)
                              : encoding == "quoted-printable" ? qp_decode(ent.body, false)
                                                               : std::string(ent.body);
        const bool attachment = disposition.value == "attachment" || !filename.empty() ||
                                (!type.value.empty() && type.value != "text/plain" && type.value != "text/html");
        if (!attachment) {
            auto text = mail_text(decoded, type.param("charset"));
            if (!text) return "a text part in an unknown character encoding (" + quoted(type.param("charset")) + ")";
            return parts_.text(type.value == "text/html" ? html_to_text(*text) : *text);
        }
        if (auto why = too_deep(options_, nest_)) return why;
        ++nest_.depth;
        const auto member = read_(decoded, type.value == "application/octet-stream" ? std::string_view() : type.value, nest_);
        --nest_.depth;
        return parts_.add(member, filename.empty() ? type.value : decode_words(filename), decoded);
    }

    Assembly& parts() { return parts_; }

private:
    const ExtractOptions& options_;
    Nest& nest_;
    const ReadMember& read_;
    Assembly parts_;
};

}  // namespace

// ---- CSV -----------------------------------------------------------------------------

std::optional<char> csv_separator(std::string_view text) {
    const auto sample = text.substr(0, 64 * 1024);
    for (const char sep : {'\t', ','}) {
        std::size_t lines = 0, fields = 1, expected = 0;
        bool quoted = false, ok = true;
        std::size_t i = 0;
        for (; i < sample.size() && lines < 32 && ok; ++i) {
            const char c = sample[i];
            if (c == '"') quoted = !quoted;
            else if (!quoted && c == sep) ++fields;
            else if (!quoted && c == '\n') {
                if (lines == 0) expected = fields;
                ok = fields == expected && fields >= 2;
                ++lines;
                fields = 1;
            }
        }
        // A last line cut by the sample (or without a newline) is not judged.
        if (ok && lines >= 2) return sep;
    }
    return std::nullopt;
}

std::string csv_to_text(std::string_view text, char separator) {
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i <= text.size()) {
        // One field.
        std::string field;
        if (i < text.size() && text[i] == '"') {
            ++i;
            while (i < text.size()) {
                if (text[i] == '"') {
                    if (i + 1 < text.size() && text[i + 1] == '"') {
                        field += '"';
                        i += 2;
                        continue;
                    }
                    ++i;
                    break;
                }
                field += text[i++];
            }
        }
        while (i < text.size() && text[i] != separator && text[i] != '\n') field += text[i++];
        if (field.ends_with('\r')) field.pop_back();
        std::string_view f = field;
        if (f.size() >= 3 && f.starts_with("=\"") && f.ends_with('"')) f = f.substr(2, f.size() - 3);  // ="0312345678"
        out.append(f);
        if (i >= text.size()) break;
        out += text[i] == separator ? '\t' : '\n';
        ++i;
    }
    return out;
}

DocType zip_kind(std::string_view bytes) {
    auto z = open_zip(bytes);
    return z ? kind_of(z->get()) : DocType::zip;
}

bool looks_like_mail(std::string_view bytes) {
    static constexpr std::string_view known[] = {"from",     "to",           "cc",         "subject",    "date",
                                                 "message-id", "mime-version", "received", "return-path", "reply-to",
                                                 "content-type", "delivered-to", "sender"};
    const auto head = bytes.substr(0, 16 * 1024);
    std::size_t pos = 0, fields = 0, usual = 0;
    while (pos < head.size()) {
        const auto line = next_line(head, pos);
        if (line.empty()) break;
        if (line.front() == ' ' || line.front() == '\t') {
            if (fields == 0) return false;
            continue;
        }
        const auto colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) return false;
        const auto name = line.substr(0, colon);
        if (!std::all_of(name.begin(), name.end(), [](char c) { return c > 32 && c < 127; })) return false;
        ++fields;
        const auto l = lowered(name);
        if (std::find(std::begin(known), std::end(known), l) != std::end(known)) ++usual;
    }
    return usual >= 2;
}

Extracted extract_zip(std::string_view bytes, const ExtractOptions& options, Nest& nest, const ReadMember& read) {
    auto z = open_zip(bytes);
    if (!z) return unreadable(DocType::zip, z.error());
    const DocType type = kind_of(z->get());
    // A printer given the raw archive would obey a job-language escape inside it.
    if (bytes.find(kUel) != std::string_view::npos)
        return unreadable(type, "a printer job-language escape (UEL) inside the archive: a printer would interpret it");
    const zip_int64_t entries = zip_get_num_entries(z->get(), 0);
    if (entries < 0) return unreadable(type, "damaged zip archive (member table)");
    if (auto why = count_member(options, nest, static_cast<std::uint64_t>(entries))) return unreadable(type, *why);
    if (type != DocType::zip) return extract_office(z->get(), entries, type, options, nest, read);

    Extracted e;
    e.doc_type = DocType::zip;
    Assembly members(e, options);
    for (zip_int64_t i = 0; i < entries; ++i) {
        const auto index = static_cast<zip_uint64_t>(i);
        const std::string name = entry_name(z->get(), index);
        if (name.ends_with('/')) continue;  // directory
        if (auto why = too_deep(options, nest)) return unreadable(DocType::zip, *why);
        auto member_bytes = read_entry(z->get(), index, options, nest);
        if (!member_bytes) return unreadable(DocType::zip, member_bytes.error());
        ++nest.depth;
        const auto member = read(*member_bytes, {}, nest);
        --nest.depth;
        if (auto why = members.add(member, name, *member_bytes)) return unreadable(DocType::zip, *why);
    }
    return members.finish();
}

Extracted extract_gzip(std::string_view bytes, const ExtractOptions& options, Nest& nest, const ReadMember& read) {
    if (auto why = too_deep(options, nest)) return unreadable(DocType::gzip, *why);
    if (auto why = count_member(options, nest)) return unreadable(DocType::gzip, *why);
    z_stream zs{};
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return unreadable(DocType::gzip, "zlib could not start");
    std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&zs, inflateEnd);
    Budget budget(options, nest, bytes.size(), "the gzip's content", "gzip bomb");
    std::string out;
    std::size_t have = 0;
    std::string_view in = bytes;
    for (;;) {
        if (zs.avail_in == 0 && !in.empty()) {
            const std::size_t n = std::min<std::size_t>(in.size(), 1u << 30);
            zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
            zs.avail_in = static_cast<uInt>(n);
            in.remove_prefix(n);
        }
        out.resize(have + kChunk);
        zs.next_out = reinterpret_cast<Bytef*>(out.data() + have);
        zs.avail_out = kChunk;
        const int rc = inflate(&zs, Z_NO_FLUSH);
        const std::size_t produced = kChunk - zs.avail_out;
        have += produced;
        if (auto why = budget.add(produced)) return unreadable(DocType::gzip, *why);
        if (rc == Z_STREAM_END) {
            // Concatenated gzip members are one file (gzip -c a b); anything else ends it.
            const std::string_view rest(reinterpret_cast<const char*>(zs.next_in), zs.avail_in);
            if (!(rest.starts_with("\x1F\x8B") || (rest.empty() && in.starts_with("\x1F\x8B")))) break;
            if (inflateReset(&zs) != Z_OK) return unreadable(DocType::gzip, "damaged gzip data");
            continue;
        }
        if (rc == Z_BUF_ERROR && zs.avail_in == 0 && in.empty())
            return unreadable(DocType::gzip, "damaged gzip data (cut short)");
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return unreadable(DocType::gzip, std::string("damaged gzip data (") + (zs.msg ? zs.msg : "inflate failed") + ")");
    }
    out.resize(have);
    Extracted e;
    e.doc_type = DocType::gzip;
    Assembly members(e, options);
    ++nest.depth;
    const auto member = read(out, {}, nest);
    --nest.depth;
    if (auto why = members.add(member, "the gzip's content", out)) return unreadable(DocType::gzip, *why);
    return members.finish();
}

Extracted extract_mail(std::string_view bytes, const ExtractOptions& options, Nest& nest, const ReadMember& read) {
    if (auto why = mail_control_problem(bytes)) return unreadable(DocType::eml, *why);
    Extracted e;
    e.doc_type = DocType::eml;
    MailReader reader(e, options, nest, read);
    std::string headers;
    if (auto why = reader.entity(bytes, 0, headers)) return unreadable(DocType::eml, *why);
    if (auto why = reader.parts().text(headers)) return unreadable(DocType::eml, *why);
    return reader.parts().finish(/*own_text=*/true);
}

}  // namespace custguard::scan::detail
