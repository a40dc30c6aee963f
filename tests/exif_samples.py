"""Files with capture metadata, made in the test run (no binary fixtures)."""

from __future__ import annotations

import io
from datetime import datetime

from PIL import Image

TAKEN = "2026:03:14 09:26:53"
MAKE, MODEL = "Canary-Make-7Q", "Canary-Model-3X"
# 38°33'36" N, 68°46'48" E: Dushanbe.
LATITUDE = (38.0, 33.0, 36.0)
LONGITUDE = (68.0, 46.0, 48.0)


def jpeg_with_exif() -> bytes:
    """A small JPEG carrying date taken, device and GPS position."""
    image = Image.new("RGB", (16, 16), (120, 80, 40))
    exif = Image.Exif()
    exif[271], exif[272] = MAKE, MODEL
    exif.get_ifd(0x8769)[36867] = TAKEN
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", LATITUDE, "E", LONGITUDE
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


def pdf_with_author(author: str) -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=72, height=72)
    writer.add_metadata({"/Author": author, "/CreationDate": "D:20260314092653+05'00'"})
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def docx_with_author(author: str) -> bytes:
    from docx import Document

    document = Document()
    document.core_properties.author = author
    document.core_properties.created = datetime(2026, 3, 14, 9, 26, 53)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
