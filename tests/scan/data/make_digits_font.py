#!/usr/bin/env python3
"""Writes a small TrueType font with the glyphs zero..nine (glyph ids 1..10, a different
rectangle each), a Unicode cmap and glyph names, for the embedded-font tests in
print_content_test.cpp. Usage: make_digits_font.py OUTPUT.ttf (Debian's python3-fonttools).
"""
import sys

from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def rect(width, height):
    pen = TTGlyphPen(None)
    pen.moveTo((50, 0))
    pen.lineTo((50, height))
    pen.lineTo((50 + width, height))
    pen.lineTo((50 + width, 0))
    pen.closePath()
    return pen.glyph()


def main(path):
    order = [".notdef"] + NAMES
    fb = FontBuilder(1000, isTTF=True)
    fb.setupGlyphOrder(order)
    fb.setupCharacterMap({0x30 + d: name for d, name in enumerate(NAMES)})
    glyphs = {".notdef": rect(400, 700)}
    for d, name in enumerate(NAMES):
        glyphs[name] = rect(40 + 40 * d, 700)
    fb.setupGlyf(glyphs)
    fb.setupHorizontalMetrics({name: (600, 50) for name in order})
    fb.setupHorizontalHeader(ascent=800, descent=-200)
    fb.setupNameTable({"familyName": "CustguardDigits", "styleName": "Regular"})
    fb.setupOS2()
    fb.setupPost()  # format 2: glyph names
    fb.save(path)


if __name__ == "__main__":
    main(sys.argv[1])
