#!/usr/bin/python3
"""Rows of a report as JSON arrays, one a line, for the host tests to check by meaning.

report_tables.py html FILE: each <tr> of the page's tables (cell text); exits 1 when an
element is closed that is not open or one is left open (the page does not parse).
report_tables.py csv FILE: each record of an RFC 4180 file (the csv module's strict mode).
"""
import csv
import html.parser
import io
import json
import sys

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Tables(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.open = []
        self.rows = []
        self.row = None
        self.cell = None

    def handle_starttag(self, tag, attrs):
        if tag in VOID:
            return
        self.open.append(tag)
        if tag == "tr":
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = ""

    def handle_startendtag(self, tag, attrs):
        pass  # <rect .../> and other self-closed SVG elements

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.open or self.open[-1] != tag:
            sys.exit(f"line {self.getpos()[0]}: </{tag}> closes <{self.open[-1] if self.open else 'nothing'}>")
        self.open.pop()
        if tag in ("td", "th") and self.row is not None and self.cell is not None:
            self.row.append(self.cell.strip())
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.rows.append(self.row)
            self.row = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def main():
    kind, path = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    if kind == "html":
        p = Tables()
        p.feed(text)
        p.close()
        if p.open:
            sys.exit(f"left open: {p.open}")
        rows = p.rows
    else:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    for r in rows:
        print(json.dumps(r, ensure_ascii=False))


main()
