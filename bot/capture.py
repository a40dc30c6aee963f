"""Capture metadata: what an evidence file says about itself (when, where, with what).

Pure: bytes in, a small mapping of text out, nothing logged. Images sent as
documents keep their EXIF (date taken, GPS position, camera or phone); PDFs
and Word files name an author and dates. Photos sent the ordinary way arrive
re-encoded by Telegram, without any of it. The result is sealed beside the
file (``bot/evidence.py`` ``EvidenceMeta.capture``) and shown only to staff
who may receive the file. A malformed file yields what could be read, never
an exception: the file itself is kept whatever its metadata says.
See docs/evidence.md for what this metadata can and cannot prove.
"""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final
from xml.etree import ElementTree

from bot.text import N_

MAX_VALUE: Final = 200

# Pillow logs every EXIF tag it parses, values included, at DEBUG: a device
# name or a GPS position would reach the log whenever debug logging is on.
logging.getLogger("PIL").setLevel(logging.INFO)

#: The fields, in the order shown, with their labels for staff.
CAPTURE_LABELS: Final[dict[str, str]] = {
    "taken": N_("taken"),
    "gps": N_("location"),
    "device": N_("device"),
    "software": N_("software"),
    "author": N_("author"),
    "created": N_("created"),
    "modified": N_("modified"),
}

_EXIF_IFD: Final = 0x8769
_GPS_IFD: Final = 0x8825
_DATE_TIME_ORIGINAL: Final = 36867
_DATE_TIME: Final = 306
_MAKE: Final = 271
_MODEL: Final = 272
_SOFTWARE: Final = 305
_IMAGE_TYPES: Final = frozenset({"image/jpeg", "image/png", "image/webp", "image/heic"})
_DOCX: Final = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MAX_CORE_XML: Final = 64 * 1024
_DC: Final = "http://purl.org/dc/elements/1.1/"
_CP: Final = "http://schemas.openxmlformats.org/package/2006/metadata/core-properties"
_DCTERMS: Final = "http://purl.org/dc/terms/"


def _clean(value: object) -> str | None:
    text = str(value).replace("\x00", "").strip()
    return text[:MAX_VALUE] or None


def _exif_date(value: object) -> str | None:
    """EXIF writes "YYYY:MM:DD HH:MM:SS" in the camera's local time, zone unknown."""
    text = _clean(value)
    if text is None:
        return None
    try:
        return datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S").strftime("%d.%m.%Y %H:%M:%S")
    except ValueError:
        return text


def _degrees(parts: Any, ref: object) -> float:
    degrees, minutes, seconds = (float(part) for part in parts)
    value = degrees + minutes / 60 + seconds / 3600
    return -value if str(ref).upper() in {"S", "W"} else value


def _image(data: bytes) -> dict[str, str]:
    from PIL import Image

    found: dict[str, str] = {}
    with Image.open(io.BytesIO(data)) as image:
        exif = image.getexif()
    sub = exif.get_ifd(_EXIF_IFD)
    taken = _exif_date(sub.get(_DATE_TIME_ORIGINAL) or exif.get(_DATE_TIME) or "")
    device = " ".join(v for v in (_clean(exif.get(_MAKE, "")), _clean(exif.get(_MODEL, ""))) if v)
    values = {"taken": taken, "device": device or None, "software": _clean(exif.get(_SOFTWARE, ""))}
    gps = exif.get_ifd(_GPS_IFD)
    if gps.get(2) and gps.get(4):
        latitude, longitude = _degrees(gps[2], gps.get(1)), _degrees(gps[4], gps.get(3))
        values["gps"] = f"{latitude:.6f}, {longitude:.6f}"
    for key, value in values.items():
        if value:
            found[key] = value
    return found


def _pdf(data: bytes) -> dict[str, str]:
    from pypdf import PdfReader

    info = PdfReader(io.BytesIO(data)).metadata
    if info is None:
        return {}
    values = {
        "author": info.author,
        "software": info.producer or info.creator,
        "created": info.creation_date and f"{info.creation_date:%d.%m.%Y %H:%M:%S %z}",
        "modified": info.modification_date and f"{info.modification_date:%d.%m.%Y %H:%M:%S %z}",
    }
    return {key: text for key, value in values.items() if value and (text := _clean(value))}


def _docx(data: bytes) -> dict[str, str]:
    """Word's core properties, read from the one small part that holds them: the
    rest of the archive (possibly a zip bomb) is never unpacked."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo("docProps/core.xml")
        if info.file_size > MAX_CORE_XML:
            return {}
        raw = archive.read(info)
    if b"<!DOCTYPE" in raw.upper():
        return {}  # core properties never declare one: entities are an attack
    root = ElementTree.fromstring(raw)  # noqa: S314 - small, no DOCTYPE, so no entities
    values = {
        "author": root.findtext(f"{{{_DC}}}creator") or root.findtext(f"{{{_CP}}}lastModifiedBy"),
        "created": _iso_date(root.findtext(f"{{{_DCTERMS}}}created")),
        "modified": _iso_date(root.findtext(f"{{{_DCTERMS}}}modified")),
    }
    return {key: text for key, value in values.items() if value and (text := _clean(value))}


def _iso_date(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.strip()).strftime("%d.%m.%Y %H:%M:%S")
    except ValueError:
        return value


_READERS: Final[dict[str, Callable[[bytes], dict[str, str]]]] = {
    **dict.fromkeys(_IMAGE_TYPES, _image),
    "application/pdf": _pdf,
    _DOCX: _docx,
}


def read_capture(data: bytes, mime_type: str) -> dict[str, str]:
    """The capture metadata a file carries; empty when it carries none or is unreadable.

    CPU-bound on large files: the handlers run it in a worker thread.
    """
    reader = _READERS.get(mime_type)
    if reader is None:
        return {}
    try:
        return reader(data)
    except Exception:
        # Pillow, pypdf and python-docx each have their own errors for malformed
        # files; the file is kept, only its metadata is unreadable.
        return {}
