#!/usr/bin/env python3
"""Count the pixels of given colours in binary PPM files (pdftoppm's pages).
usage: ppm_colours.py RRGGBB PAGE.ppm...  -> prints the count over all pages."""
import sys

colour = bytes.fromhex(sys.argv[1])
total = 0
for path in sys.argv[2:]:
    data = open(path, "rb").read()
    magic, width, height, maxval, pixels = data.split(maxsplit=4)
    if magic != b"P6" or maxval != b"255":
        sys.exit(f"{path}: not an 8-bit binary PPM")
    total += sum(1 for i in range(0, int(width) * int(height) * 3, 3) if pixels[i:i + 3] == colour)
print(total)
