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
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

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
    from docx import Document

    props = Document(io.BytesIO(data)).core_properties
    values = {
        "author": props.author or props.last_modified_by,
        "created": props.created and f"{props.created:%d.%m.%Y %H:%M:%S}",
        "modified": props.modified and f"{props.modified:%d.%m.%Y %H:%M:%S}",
    }
    return {key: text for key, value in values.items() if value and (text := _clean(value))}


_READERS: Final[dict[str, Callable[[bytes], dict[str, str]]]] = {
    **dict.fromkeys(_IMAGE_TYPES, _image),
    "application/pdf": _pdf,
    _DOCX: _docx,
}


def read_capture(data: bytes, mime_type: str) -> dict[str, str]:
    """The capture metadata a file carries; empty when it carries none or is unreadable."""
    reader = _READERS.get(mime_type)
    if reader is None:
        return {}
    try:
        return reader(data)
    except Exception:
        # Pillow, pypdf and python-docx each have their own errors for malformed
        # files; the file is kept, only its metadata is unreadable.
        return {}
