#!/usr/bin/env python3
"""Generates the scanner's test fixtures (committed next to this script).

Run from anywhere: python3 tests/scan/data/make_fixtures.py
All customer data is synthetic; numbers carry valid check digits computed here.
PDFs are written by hand (a Type0 font with Identity-H codes and a ToUnicode map, so
Japanese text extracts without embedded fonts); gs_customer.pdf is the same PostScript
rendered by Ghostscript's pdfwrite, to cover a real producer's output.
"""
import os
import subprocess
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def luhn_complete(prefix):
    """Append the Luhn check digit to a digit string."""
    total = 0
    for i, ch in enumerate(reversed(prefix)):
        d = int(ch)
        if i % 2 == 0:  # these get doubled once the check digit is appended
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return prefix + str((10 - total % 10) % 10)


def my_number_complete(first11):
    total = 0
    for n in range(1, 12):
        p = int(first11[11 - n])
        q = n + 1 if n <= 6 else n - 5
        total += p * q
    r = total % 11
    return first11 + str(0 if r <= 1 else 11 - r)


CARD_VISA = luhn_complete("411111111111111")        # 4111111111111111
CARD_JCB = luhn_complete("353011133330000")         # 3530111333300000
MYNUM_A = my_number_complete("12345678901")
MYNUM_B = my_number_complete("98765432109")


def grouped(d, sep, sizes=(4, 4, 4, 4)):
    out, i = [], 0
    for s in sizes:
        out.append(d[i:i + s])
        i += s
    return sep.join(out)


CUSTOMER_LINES_JA = [
    "顧客名簿（社外秘）",
    "氏名：山田太郎　住所：〒100-0001 東京都千代田区千代田1-1",
    "電話番号：03-1234-5678　携帯：090-1234-5678",
    "メール：taro.yamada@example.co.jp",
    "マイナンバー：" + grouped(MYNUM_A, " ", (4, 4, 4)),
    "カード番号：" + grouped(CARD_VISA, "-"),
]
CUSTOMER_LINES_EN = [
    "Customer list - confidential",
    "Name: Hanako Suzuki, e-mail hanako.suzuki@example.com",
    "Card: " + grouped(CARD_JCB, " "),
    "My Number: " + MYNUM_B,
    "Phone: +81-90-2345-6789",
]
CLEAN_LINES = [
    "Meeting notes 2024-01-15",
    "Invoice INV-2024-000123, total 1,234,567 yen.",
    "請求書番号 2024-0115 の件、1月31日までにお支払いください。",
    "Order 12345678 shipped on 2024/02/01.",
]


def pdf_text_hex(s):
    return "<" + "".join("%04X" % ord(c) for c in s) + ">"


def tounicode_cmap():
    ranges = "\n".join("<%02X00> <%02XFF> <%02X00>" % (h, h, h) for h in range(256) if not 0xD8 <= h <= 0xDF)
    count = 256 - 8
    # bfrange blocks hold at most 100 entries each.
    lines = ranges.split("\n")
    blocks = []
    for i in range(0, len(lines), 100):
        chunk = lines[i:i + 100]
        blocks.append("%d beginbfrange\n%s\nendbfrange" % (len(chunk), "\n".join(chunk)))
    assert count == len(lines)
    return ("/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
            "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
            "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
            "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
            + "\n".join(blocks) +
            "\nendcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n")


def write_pdf(path, pages, compress=False, image_only=False):
    """pages: list of lists of text lines."""
    objs = []  # index i -> object number i+1

    def add(body):
        objs.append(body)
        return len(objs)

    def stream(data, extra=""):
        data = data.encode("latin-1") if isinstance(data, str) else data
        if compress:
            data = zlib.compress(data)
            extra += " /Filter /FlateDecode"
        return b"<< /Length %d%s >>\nstream\n" % (len(data), extra.encode()) + data + b"\nendstream"

    catalog = add(None)
    pages_obj = add(None)
    tounicode = add(stream(tounicode_cmap()))
    descendant = add(b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /NotoSansCJKjp "
                     b"/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> "
                     b"/DW 1000 >>")
    font = add(b"<< /Type /Font /Subtype /Type0 /BaseFont /NotoSansCJKjp /Encoding /Identity-H "
               b"/DescendantFonts [%d 0 R] /ToUnicode %d 0 R >>" % (descendant, tounicode))
    kids = []
    for lines in pages:
        if image_only:
            content = "q 200 0 0 200 100 400 cm BI /W 2 /H 2 /CS /G /BPC 8 ID \x00\xff\xff\x00 EI Q"
        else:
            parts = ["BT /F1 10 Tf 14 TL 40 800 Td"]
            for line in lines:
                parts.append("%s Tj T*" % pdf_text_hex(line))
            parts.append("ET")
            content = "\n".join(parts)
        c = add(stream(content))
        kids.append(add(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] "
                        b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>" % (pages_obj, font, c)))
    objs[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % pages_obj
    objs[pages_obj - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids), len(kids))

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, catalog, xref)
    with open(path, "wb") as f:
        f.write(out)


def ps_string(s):
    return "(" + s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def write_ps(path, pages, image_only=False):
    out = ["%!PS-Adobe-3.0", "%%Pages: " + str(len(pages)), "%%EndComments",
           "/Helvetica findfont 11 scalefont setfont"]
    for n, lines in enumerate(pages, 1):
        out.append("%%%%Page: %d %d" % (n, n))
        if image_only:
            out.append("gsave 100 400 translate 200 200 scale 2 2 8 [2 0 0 -2 0 2] {<00ffff00>} image grestore")
        else:
            y = 760
            for line in lines:
                out.append("72 %d moveto %s show" % (y, ps_string(line)))
                y -= 16
        out.append("showpage")
    out.append("%%EOF")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def twenty_pages():
    pages = []
    for p in range(20):
        lines = []
        for i in range(45):
            k = p * 45 + i
            if k % 9 == 0:
                lines.append("顧客 %d 氏名 山田 住所 東京都 電話番号 03-%04d-%04d" % (k, 1000 + k % 9000, k % 10000))
            elif k % 9 == 3:
                lines.append("Customer %d card %s mail user%d@example.co.jp" % (
                    k, grouped(luhn_complete("4%014d" % k), " "), k))
            elif k % 9 == 6:
                lines.append("マイナンバー %s 〒100-%04d 東京都千代田区" % (my_number_complete("%011d" % (k * 7919)), k % 10000))
            else:
                lines.append("本日の会議では新製品の販売計画について議論しました。Lorem ipsum dolor sit amet %d." % k)
        pages.append(lines)
    return pages


def main():
    ja_en = [CUSTOMER_LINES_JA, CUSTOMER_LINES_EN]
    write_pdf(os.path.join(HERE, "customer.pdf"), ja_en)
    write_pdf(os.path.join(HERE, "clean.pdf"), [CLEAN_LINES])
    write_pdf(os.path.join(HERE, "image_only.pdf"), [[]], image_only=True)
    write_pdf(os.path.join(HERE, "twenty_pages.pdf"), twenty_pages(), compress=True)
    # PostScript with the standard Helvetica font: ASCII text only.
    write_ps(os.path.join(HERE, "customer.ps"), [CUSTOMER_LINES_EN, ["Second page: " + grouped(CARD_VISA, "-")]])
    write_ps(os.path.join(HERE, "clean.ps"), [[l for l in CLEAN_LINES if l.isascii()]])
    write_ps(os.path.join(HERE, "image_only.ps"), [[]], image_only=True)
    write_ps(os.path.join(HERE, "twenty_pages.ps"), [[l for l in page if l.isascii()] for page in twenty_pages()])
    text = "\n".join(CUSTOMER_LINES_JA + CUSTOMER_LINES_EN) + "\n"
    with open(os.path.join(HERE, "customer_utf8.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    with open(os.path.join(HERE, "customer_sjis.txt"), "wb") as f:
        f.write(text.encode("cp932"))
    with open(os.path.join(HERE, "customer_eucjp.txt"), "wb") as f:
        f.write(text.encode("euc_jp"))
    with open(os.path.join(HERE, "customer_utf16.txt"), "wb") as f:
        f.write(text.encode("utf-16"))  # with BOM
    with open(os.path.join(HERE, "clean.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(CLEAN_LINES) + "\n")
    # A 1x1 PNG: an image job.
    png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                        "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082")
    with open(os.path.join(HERE, "image.png"), "wb") as f:
        f.write(png)
    # The same PostScript through a real PDF producer.
    subprocess.run(["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pdfwrite",
                    "-sOutputFile=" + os.path.join(HERE, "gs_customer.pdf"),
                    os.path.join(HERE, "customer.ps")], check=True)
    # Expected counts for the tests, so the C++ side need not recompute them.
    print("visa", CARD_VISA, "jcb", CARD_JCB, "mynum", MYNUM_A, MYNUM_B)


if __name__ == "__main__":
    main()
