"""Capture metadata read from files (bot/capture.py): pure, no Telegram, no database."""

from __future__ import annotations

import io
import zipfile

from PIL import Image

from bot.capture import MAX_CORE_XML, read_capture
from tests.exif_samples import MAKE, MODEL, docx_with_author, jpeg_with_exif, pdf_with_author

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def test_a_jpeg_with_exif_gives_date_taken_device_and_position() -> None:
    found = read_capture(jpeg_with_exif(), "image/jpeg")
    assert found["taken"] == "14.03.2026 09:26:53"
    assert found["device"] == f"{MAKE} {MODEL}"
    latitude, longitude = (float(part) for part in found["gps"].split(","))
    assert abs(latitude - 38.56) < 1e-6 and abs(longitude - 68.78) < 1e-6


def test_a_photo_re_encoded_without_exif_gives_nothing() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="JPEG")
    assert read_capture(buffer.getvalue(), "image/jpeg") == {}


def test_pdf_and_word_files_give_author_and_dates() -> None:
    pdf = read_capture(pdf_with_author("Canary Author"), "application/pdf")
    assert pdf["author"] == "Canary Author" and pdf["created"].startswith("14.03.2026 09:26:53")
    word = read_capture(docx_with_author("Canary Writer"), DOCX)
    assert word["author"] == "Canary Writer" and word["created"] == "14.03.2026 09:26:53"


def test_malformed_files_give_nothing_and_never_raise() -> None:
    jpeg = jpeg_with_exif()
    for mime, data in [
        ("image/jpeg", jpeg[: len(jpeg) // 3]),
        ("image/jpeg", b"\xff\xd8\xff\xe1garbage"),
        ("application/pdf", b"%PDF-1.4 broken"),
        (DOCX, b"PK\x03\x04 not a zip"),
        ("text/plain", b"plain text"),
    ]:
        assert isinstance(read_capture(data, mime), dict)
    assert read_capture(b"\xff\xd8\xff\xe1garbage", "image/jpeg") == {}


def test_a_word_zip_bomb_and_xml_entities_are_never_expanded() -> None:
    """Only docProps/core.xml is read, only when it is small and declares no entities."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("docProps/core.xml", b" " * (MAX_CORE_XML + 1))
        archive.writestr("word/document.xml", b"\0" * 50_000_000)
    bomb = buffer.getvalue()
    assert len(bomb) < 200_000
    assert read_capture(bomb, DOCX) == {}

    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        b'<cp:coreProperties xmlns:cp="x" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        b"<dc:creator>&lol2;</dc:creator></cp:coreProperties>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("docProps/core.xml", laughs)
    assert read_capture(buffer.getvalue(), DOCX) == {}
