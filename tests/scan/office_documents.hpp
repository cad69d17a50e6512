// Office files, archives and mails built at run time for the format tests: a small zip
// writer (stored or deflated members, sizes as declared by the test, zeros deflated
// without ever existing unpacked, for bombs), gzip, the minimal parts of xlsx, docx, pptx,
// ods and odt, and character-set conversion for CP932 CSV and ISO-2022-JP mail.
#pragma once

#include <iconv.h>
#include <zlib.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace scan_test {

inline void put_le(std::string& out, std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}

// Raw deflate of `data`.
inline std::string deflate_bytes(const std::string& data) {
    uLongf size = compressBound(static_cast<uLong>(data.size()));
    std::string out(size, '\0');
    z_stream zs{};
    if (deflateInit2(&zs, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) != Z_OK) throw std::runtime_error("deflateInit2");
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    zs.avail_in = static_cast<uInt>(data.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END) throw std::runtime_error("deflate");
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}

constexpr std::uint64_t kMiB = 1 << 20;

// Raw deflate of `mib` MiB of zeros without compressing them all: each MiB is compressed
// after a full flush (no history), so its blocks are the same bytes every time.
inline std::string deflate_zeros(std::uint64_t mib) {
    z_stream zs{};
    if (deflateInit2(&zs, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) != Z_OK) throw std::runtime_error("deflateInit2");
    const std::string zeros(kMiB, '\0');
    std::string block(kMiB, '\0'), last(64, '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(zeros.data()));
    zs.avail_in = static_cast<uInt>(zeros.size());
    zs.next_out = reinterpret_cast<Bytef*>(block.data());
    zs.avail_out = static_cast<uInt>(block.size());
    deflate(&zs, Z_FULL_FLUSH);
    block.resize(block.size() - zs.avail_out);
    zs.next_out = reinterpret_cast<Bytef*>(last.data());
    zs.avail_out = static_cast<uInt>(last.size());
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END) throw std::runtime_error("deflate");
    last.resize(last.size() - zs.avail_out);
    deflateEnd(&zs);
    std::string out;
    out.reserve(block.size() * mib + last.size());
    for (std::uint64_t i = 0; i < mib; ++i) out += block;
    return out + last;
}

inline std::uint32_t crc_of(const std::string& data) {
    return static_cast<std::uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
}

inline std::uint32_t crc_of_zeros(std::uint64_t mib) {
    const std::string zeros(kMiB, '\0');
    const uLong one = crc32(0, reinterpret_cast<const Bytef*>(zeros.data()), static_cast<uInt>(zeros.size()));
    uLong crc = crc32(0, nullptr, 0);
    for (std::uint64_t i = 0; i < mib; ++i) crc = crc32_combine(crc, one, static_cast<z_off_t>(kMiB));
    return static_cast<std::uint32_t>(crc);
}

inline std::string gzip_frame(const std::string& deflated, std::uint32_t crc, std::uint64_t size) {
    std::string out("\x1F\x8B\x08\x00\x00\x00\x00\x00\x00\x03", 10);
    out += deflated;
    put_le(out, crc, 4);
    put_le(out, size & 0xFFFFFFFF, 4);
    return out;
}

inline std::string gzip(const std::string& data) { return gzip_frame(deflate_bytes(data), crc_of(data), data.size()); }
inline std::string gzip_zeros(std::uint64_t mib) { return gzip_frame(deflate_zeros(mib), crc_of_zeros(mib), mib * kMiB); }

class ZipBuilder {
public:
    // `declared_size`: the uncompressed size written in the headers (a bomb may lie).
    ZipBuilder& add(const std::string& name, const std::string& data, bool deflated = true,
                    std::optional<std::uint64_t> declared_size = std::nullopt) {
        return raw(name, deflated ? deflate_bytes(data) : data, deflated, crc_of(data), declared_size.value_or(data.size()));
    }
    ZipBuilder& add_zeros(const std::string& name, std::uint64_t mib, std::optional<std::uint64_t> declared_size = std::nullopt) {
        return raw(name, deflate_zeros(mib), true, crc_of_zeros(mib), declared_size.value_or(mib * kMiB));
    }
    std::string bytes() const {
        std::string out = body_ + central_;
        put_le(out, 0x06054b50, 4);
        put_le(out, 0, 2);
        put_le(out, 0, 2);
        put_le(out, count_, 2);
        put_le(out, count_, 2);
        put_le(out, central_.size(), 4);
        put_le(out, body_.size(), 4);
        put_le(out, 0, 2);
        return out;
    }

private:
    ZipBuilder& raw(const std::string& name, const std::string& packed, bool deflated, std::uint32_t crc, std::uint64_t size) {
        const std::uint64_t offset = body_.size();
        auto common = [&](std::string& o) {
            put_le(o, 20, 2);              // version needed
            put_le(o, 0x0800, 2);          // UTF-8 names
            put_le(o, deflated ? 8 : 0, 2);
            put_le(o, 0, 2);               // time
            put_le(o, 0x21, 2);            // 1980-01-01
            put_le(o, crc, 4);
            put_le(o, packed.size(), 4);
            put_le(o, size, 4);
            put_le(o, name.size(), 2);
            put_le(o, 0, 2);               // extra
        };
        put_le(body_, 0x04034b50, 4);
        common(body_);
        body_ += name;
        body_ += packed;
        put_le(central_, 0x02014b50, 4);
        put_le(central_, 20, 2);  // made by
        common(central_);
        put_le(central_, 0, 2);   // comment
        put_le(central_, 0, 2);   // disk
        put_le(central_, 0, 2);   // internal attributes
        put_le(central_, 0, 4);   // external attributes
        put_le(central_, offset, 4);
        central_ += name;
        ++count_;
        return *this;
    }
    std::string body_, central_;
    std::uint64_t count_ = 0;
};

inline std::string convert(const std::string& text, const char* to) {
    iconv_t cd = iconv_open(to, "UTF-8");
    if (cd == reinterpret_cast<iconv_t>(-1)) throw std::runtime_error("iconv_open");
    std::string out(text.size() * 4 + 16, '\0');
    char* in = const_cast<char*>(text.data());
    std::size_t in_left = text.size(), out_left = out.size();
    char* dst = out.data();
    if (iconv(cd, &in, &in_left, &dst, &out_left) == static_cast<std::size_t>(-1) ||
        iconv(cd, nullptr, nullptr, &dst, &out_left) == static_cast<std::size_t>(-1))
        throw std::runtime_error("iconv");
    iconv_close(cd);
    out.resize(out.size() - out_left);
    return out;
}

inline std::string base64(const std::string& in) {
    static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
        out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], a[v & 63]};
        if (out.size() % 77 == 76) out += "\r\n";
    }
    if (in.size() - i == 1) {
        const unsigned v = (unsigned char)in[i] << 16;
        out += {a[v >> 18], a[(v >> 12) & 63], '=', '='};
    } else if (in.size() - i == 2) {
        const unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8;
        out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], '='};
    }
    return out;
}

inline const std::string kContentTypes =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>"
    "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"/>";

// A workbook: shared strings (with a rich-text run split and a phonetic guide) and one
// sheet of the given row XML.
inline std::string xlsx(const std::string& shared_strings_xml, const std::string& rows_xml) {
    return ZipBuilder()
        .add("[Content_Types].xml", kContentTypes)
        .add("xl/workbook.xml",
             "<workbook xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><sheets><sheet name=\"顧客\" "
             "sheetId=\"1\"/></sheets></workbook>")
        .add("xl/sharedStrings.xml",
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?><sst xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\">" +
                 shared_strings_xml + "</sst>")
        .add("xl/worksheets/sheet1.xml",
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?><worksheet "
             "xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><sheetData>" +
                 rows_xml + "</sheetData></worksheet>")
        .bytes();
}

inline std::string docx(const std::string& body_xml, const std::string& header_text, const std::string& footer_text) {
    const std::string w = "xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"";
    auto para = [](const std::string& t) { return "<w:p><w:r><w:t>" + t + "</w:t></w:r></w:p>"; };
    return ZipBuilder()
        .add("[Content_Types].xml", kContentTypes)
        .add("word/document.xml", "<w:document " + w + "><w:body>" + body_xml + "</w:body></w:document>")
        .add("word/header1.xml", "<w:hdr " + w + ">" + para(header_text) + "</w:hdr>")
        .add("word/footer1.xml", "<w:ftr " + w + ">" + para(footer_text) + "</w:ftr>")
        .add("word/media/image1.png", "\x89PNG not scanned")
        .bytes();
}

inline std::string pptx(const std::vector<std::string>& slide_texts) {
    ZipBuilder z;
    z.add("[Content_Types].xml", kContentTypes).add("ppt/presentation.xml", "<p:presentation xmlns:p=\"p\"/>");
    for (std::size_t i = 0; i < slide_texts.size(); ++i)
        z.add("ppt/slides/slide" + std::to_string(i + 1) + ".xml",
              "<p:sld xmlns:p=\"p\" xmlns:a=\"a\"><p:cSld><p:spTree><p:sp><p:txBody><a:p><a:r><a:t>" + slide_texts[i] +
                  "</a:t></a:r></a:p></p:txBody></p:sp></p:spTree></p:cSld></p:sld>");
    return z.bytes();
}

// OpenDocument: the mimetype member first and stored, as the format requires.
inline std::string opendocument(const std::string& mimetype, const std::string& body_xml) {
    return ZipBuilder()
        .add("mimetype", mimetype, false)
        .add("content.xml",
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?><office:document-content "
             "xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" "
             "xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" "
             "xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\"><office:body>" +
                 body_xml + "</office:body></office:document-content>")
        .bytes();
}

}  // namespace scan_test
