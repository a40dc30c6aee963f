"""Evidence files: what is accepted, the limits, and the metadata kept with each file.

Pure: no Telegram types, no database. The reporter's handlers turn a Telegram
message into an :class:`Incoming`, ask :func:`refusal` before downloading and
:func:`check_length` after; ``storage/evidence.py`` seals and stores the bytes.
See docs/evidence.md.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from bot.questionnaire.engine import MAX_EVIDENCE_FILES
from bot.text import N_

MB: Final = 1024 * 1024
MAX_FILES_PER_CASE: Final = MAX_EVIDENCE_FILES
MAX_BYTES_PER_CASE: Final = 100 * MB
MAX_CAPTION: Final = 1000
MAX_FILE_NAME: Final = 200


class EvidenceKind(StrEnum):
    PHOTO = "photo"
    DOCUMENT = "document"
    VOICE = "voice"
    AUDIO = "audio"
    VIDEO_NOTE = "video_note"


# MIME types accepted per kind. Photos are always JPEG (Telegram re-encodes
# them); voice messages are Ogg/Opus; round video notes are MP4.
ALLOWED_TYPES: Final[dict[EvidenceKind, frozenset[str]]] = {
    EvidenceKind.PHOTO: frozenset({"image/jpeg"}),
    EvidenceKind.DOCUMENT: frozenset(
        {
            "application/pdf",
            "image/jpeg",
            "image/png",
            "image/heic",
            "image/webp",
            "application/msword",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.oasis.opendocument.text",
            "text/plain",
        }
    ),
    EvidenceKind.VOICE: frozenset({"audio/ogg"}),
    EvidenceKind.AUDIO: frozenset({"audio/mpeg", "audio/mp4", "audio/ogg", "audio/x-m4a"}),
    EvidenceKind.VIDEO_NOTE: frozenset({"video/mp4"}),
}

DEFAULT_TYPES: Final[dict[EvidenceKind, str]] = {
    EvidenceKind.PHOTO: "image/jpeg",
    EvidenceKind.VOICE: "audio/ogg",
    EvidenceKind.VIDEO_NOTE: "video/mp4",
}

KIND_LABELS: Final[dict[EvidenceKind, str]] = {
    EvidenceKind.PHOTO: N_("Photo"),
    EvidenceKind.DOCUMENT: N_("Document"),
    EvidenceKind.VOICE: N_("Voice message"),
    EvidenceKind.AUDIO: N_("Audio recording"),
    EvidenceKind.VIDEO_NOTE: N_("Video message"),
}


class Refusal(StrEnum):
    TYPE = "type"
    TOO_BIG = "too_big"
    TOO_MANY = "too_many"
    CASE_FULL = "case_full"
    SENDER_FULL = "sender_full"


REFUSAL_TEXTS: Final[dict[Refusal, str]] = {
    Refusal.TYPE: N_(
        "This kind of file cannot be accepted. Please send photos, PDF or Word documents, "
        "text files, voice messages or audio recordings. Your earlier answers are saved."
    ),
    Refusal.TOO_BIG: N_(
        "This file is too large: the limit is {limit} MB per file. It was not saved. "
        "Your earlier answers are saved."
    ),
    Refusal.TOO_MANY: N_(
        "You have already sent {limit} files, the most one report can take. "
        "This file was not saved. Please press Done."
    ),
    Refusal.CASE_FULL: N_(
        "The files of this report already take {limit} MB, the most one report can take. "
        "This file was not saved. Please press Done."
    ),
    Refusal.SENDER_FULL: N_(
        "You have sent {limit} MB of files today, the most we can take in a day. "
        "This file was not saved. Please press Done, or send it tomorrow."
    ),
}


@dataclass(frozen=True, slots=True)
class Limits:
    max_file_bytes: int = 20 * MB
    max_files: int = MAX_FILES_PER_CASE
    max_case_bytes: int = MAX_BYTES_PER_CASE
    # One sender, all reports and replies of a UTC day (bot/intake/limits.py).
    max_sender_bytes_per_day: int = 200 * MB

    def limit_for(self, refusal: Refusal) -> int:
        if refusal is Refusal.TOO_BIG:
            return self.max_file_bytes // MB
        if refusal is Refusal.CASE_FULL:
            return self.max_case_bytes // MB
        if refusal is Refusal.SENDER_FULL:
            return self.max_sender_bytes_per_day // MB
        return self.max_files


@dataclass(frozen=True, slots=True)
class Incoming:
    """A file announced by Telegram, before it is downloaded."""

    kind: EvidenceKind
    file_id: str
    mime_type: str | None
    file_size: int | None
    file_name: str | None = None
    caption: str | None = None


def mime_of(incoming: Incoming) -> str | None:
    mime = (incoming.mime_type or DEFAULT_TYPES.get(incoming.kind) or "").lower().strip()
    return mime or None


def refusal(
    incoming: Incoming,
    limits: Limits,
    *,
    files_so_far: int,
    bytes_so_far: int,
    sender_bytes_today: int = 0,
) -> Refusal | None:
    """Why this file must not be downloaded, from what Telegram announced; None if fine."""
    mime = mime_of(incoming)
    if mime is None or mime not in ALLOWED_TYPES.get(incoming.kind, frozenset()):
        return Refusal.TYPE
    if incoming.file_size is not None and incoming.file_size > limits.max_file_bytes:
        return Refusal.TOO_BIG
    if files_so_far >= limits.max_files:
        return Refusal.TOO_MANY
    if bytes_so_far + (incoming.file_size or 0) > limits.max_case_bytes:
        return Refusal.CASE_FULL
    if sender_bytes_today + (incoming.file_size or 0) > limits.max_sender_bytes_per_day:
        return Refusal.SENDER_FULL
    return None


def check_length(
    length: int, limits: Limits, *, bytes_so_far: int, sender_bytes_today: int = 0
) -> Refusal | None:
    """The real length after download (``file_size`` is optional and client-reported)."""
    if length > limits.max_file_bytes:
        return Refusal.TOO_BIG
    if bytes_so_far + length > limits.max_case_bytes:
        return Refusal.CASE_FULL
    if sender_bytes_today + length > limits.max_sender_bytes_per_day:
        return Refusal.SENDER_FULL
    return None


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@dataclass(frozen=True, slots=True)
class EvidenceMeta:
    """Sealed beside the file: nothing of it is stored in clear."""

    kind: EvidenceKind
    mime_type: str
    size: int
    file_name: str | None = None
    caption: str | None = None
    # Capture metadata read from the file (bot/capture.py); None for files
    # stored before it was read, empty when the file carries none.
    capture: dict[str, str] | None = None

    @classmethod
    def of(
        cls, incoming: Incoming, size: int, capture: dict[str, str] | None = None
    ) -> EvidenceMeta:
        """``capture``: what ``bot.capture.read_capture`` found in the file."""
        return cls(
            kind=incoming.kind,
            mime_type=mime_of(incoming) or "application/octet-stream",
            size=size,
            file_name=(incoming.file_name or None) and str(incoming.file_name)[:MAX_FILE_NAME],
            caption=(incoming.caption or None) and str(incoming.caption)[:MAX_CAPTION],
            capture=capture,
        )

    def to_bytes(self) -> bytes:
        data: dict[str, Any] = {
            "kind": self.kind.value,
            "mime": self.mime_type,
            "size": self.size,
            "name": self.file_name,
            "caption": self.caption,
            "capture": self.capture,
        }
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> EvidenceMeta:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("evidence metadata is not a mapping")
        name = data.get("name")
        caption = data.get("caption")
        capture = data.get("capture")
        return cls(
            kind=EvidenceKind(data["kind"]),
            mime_type=str(data["mime"]),
            size=int(data["size"]),
            file_name=name if isinstance(name, str) else None,
            caption=caption if isinstance(caption, str) else None,
            capture=(
                {str(k): str(v) for k, v in capture.items()} if isinstance(capture, dict) else None
            ),
        )

    def delivery_name(self, short_id: str) -> str:
        """A file name for the lawyer's copy: the original one, or one made up."""
        if self.file_name:
            return self.file_name
        extension = {
            "image/jpeg": ".jpg",
            "audio/ogg": ".ogg",
            "audio/mpeg": ".mp3",
            "audio/mp4": ".m4a",
            "audio/x-m4a": ".m4a",
            "video/mp4": ".mp4",
        }.get(self.mime_type, "")
        return f"{self.kind.value}-{short_id}{extension}"


def human_size(size: int) -> str:
    if size >= MB:
        return f"{size / MB:.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} B"
