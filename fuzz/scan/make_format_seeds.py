#!/usr/bin/env python3
"""Writes the seed inputs of scan_fuzz for the formats of issue 17 (CSV, Office files,
OpenDocument, zip, gzip, mail) into corpus/. Each seed is a mode byte (1: extract and
scan, see scan_fuzz.cpp) followed by a small document. Run it from anywhere; the seeds
are committed so the fuzz layer needs no Python."""
import base64, gzip, io, os, zipfile

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
MODE = b"\x01"
ROW = "山田太郎,\"03-1234-5678\",123456789018,taro@example.jp,\"東京都千代田区千代田1-1\"\r\n"
CSV = "氏名,電話,個人番号,メール,住所\r\n" + ROW + ROW


def zipped(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data, method in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            z.writestr(info, data)
    return buf.getvalue()


D, S = zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED
seeds = {
    "customer_cp932.csv": CSV.encode("cp932"),
    "customer.tsv": CSV.replace(",", "\t").encode(),
    "customer.xlsx": zipped([
        ("[Content_Types].xml", "<Types/>", D),
        ("xl/workbook.xml", "<workbook/>", D),
        ("xl/sharedStrings.xml", "<sst><si><t>taro@example.jp</t><rPh><t>タロウ</t></rPh></si>"
                                 "<si><r><t>03-1234-</t></r><r><t>5678</t></r></si></sst>", D),
        ("xl/worksheets/sheet1.xml", "<worksheet><sheetData><row><c t=\"s\"><v>0</v></c><c t=\"s\"><v>1</v></c>"
                                     "<c><v>123456789018</v></c><c t=\"inlineStr\"><is><t>090-1234-5678</t></is></c>"
                                     "</row></sheetData></worksheet>", D),
    ]),
    "customer.docx": zipped([
        ("[Content_Types].xml", "<Types/>", D),
        ("word/document.xml", "<w:document xmlns:w=\"w\"><w:body><w:p><w:r><w:t>03-1234-</w:t></w:r><w:r><w:t>5678"
                              "</w:t></w:r><w:tab/></w:p><w:tbl><w:tr><w:tc><w:p><w:r><w:t>taro@example.jp</w:t>"
                              "</w:r></w:p></w:tc></w:tr></w:tbl></w:body></w:document>", D),
        ("word/header1.xml", "<w:hdr xmlns:w=\"w\"><w:p><w:r><w:t>123456789018</w:t></w:r></w:p></w:hdr>", D),
    ]),
    "customer.pptx": zipped([
        ("[Content_Types].xml", "<Types/>", D),
        ("ppt/presentation.xml", "<p:presentation xmlns:p=\"p\"/>", D),
        ("ppt/slides/slide1.xml", "<p:sld xmlns:p=\"p\" xmlns:a=\"a\"><a:p><a:r><a:t>taro@example.jp</a:t></a:r>"
                                  "</a:p></p:sld>", D),
    ]),
    "customer.ods": zipped([
        ("mimetype", "application/vnd.oasis.opendocument.spreadsheet", S),
        ("content.xml", "<office:document-content xmlns:office=\"o\" xmlns:table=\"t\" xmlns:text=\"x\"><table:table>"
                        "<table:table-row><table:table-cell><text:p>03-1234-5678</text:p></table:table-cell>"
                        "<table:table-cell><text:p>taro<text:s/>@example.jp</text:p></table:table-cell>"
                        "</table:table-row></table:table></office:document-content>", D),
    ]),
    "customer.odt": zipped([
        ("mimetype", "application/vnd.oasis.opendocument.text", S),
        ("content.xml", "<office:document-content xmlns:office=\"o\" xmlns:text=\"x\"><text:p>03-1234-5678"
                        "<text:line-break/>taro@example.jp</text:p></office:document-content>", D),
    ]),
    "customer.csv.gz": gzip.compress(CSV.encode(), mtime=0),
    "customer.eml": (
        "From: a@example.jp\r\nTo: b@example.jp\r\nSubject: =?ISO-2022-JP?B?"
        + base64.b64encode("顧客".encode("iso2022_jp")).decode() + "?=\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n"
        "Content-Type: text/plain; charset=ISO-2022-JP\r\n\r\n"
    ).encode() + "山田 03-1234-5678\r\n".encode("iso2022_jp") + (
        "--b\r\nContent-Type: text/csv; name=\"l.csv\"\r\nContent-Transfer-Encoding: base64\r\n"
        "Content-Disposition: attachment; filename=\"l.csv\"\r\n\r\n"
        + base64.encodebytes(CSV.encode("cp932")).decode() + "--b\r\n"
        "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        "<p>taro=40example.jp</p>\r\n--b--\r\n"
    ).encode(),
}
seeds["nested.zip"] = zipped([("inner.zip", zipped([("list.csv", CSV.encode(), D), ("x.png", b"\x89PNG", S)]), D)])

for name, data in seeds.items():
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(MODE + data)
