"""Files in the demo: what ``/file`` sends from disk, and what ``/save`` writes to it."""

from __future__ import annotations

import asyncio
import mimetypes
import shlex
from pathlib import Path

from devkit.demo.screen import MEDIA_ICONS, Screen, mime_of, size_text
from devkit.emulator import ChatMessage, SimulatedUser

FILE_COMMAND = "/file"
SAVE_COMMAND = "/save"
AS_DOCUMENT = "--as-document"
#: Extensions ``/file`` sends as a photo (unless ``--as-document``), and their MIME types.
PHOTO_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".heic": "image/heic",
}
#: Extensions ``/file`` sends as a voice message.
VOICE_EXTENSIONS = frozenset({".ogg", ".oga", ".opus"})
#: Largest file ``/file`` reads from disk (the bot itself refuses far smaller ones).
MAX_UPLOAD_BYTES = 100 * 1024 * 1024

#: A file the bot sent: the message, a file name and the bytes the emulator stored.
ReceivedFile = tuple[ChatMessage, str, bytes]


def parse_upload(args: str) -> tuple[Path, str | None, bool]:
    """``[--as-document] PATH [caption]``: the path, the caption, and whether "as a file".

    LookupError (the usage) when the arguments do not parse.
    """
    usage = f"usage: {FILE_COMMAND} [{AS_DOCUMENT}] PATH [caption]"
    try:
        words = shlex.split(args)
    except ValueError as exc:
        msg = f"{exc}; {usage}"
        raise LookupError(msg) from None
    as_document = bool(words) and words[0] == AS_DOCUMENT
    if as_document:
        words = words[1:]
    if not words:
        raise LookupError(usage)
    caption = " ".join(words[1:]) or None
    return Path(words[0]), caption, as_document


async def send_file(
    user: SimulatedUser, path: Path, *, caption: str | None = None, as_document: bool = False
) -> str:
    """Read ``path`` and send it as ``user``: a photo, a voice message or a document.

    The kind follows the extension: images are photos (documents with
    ``as_document``), ``.ogg``/``.oga``/``.opus`` voice messages, the rest
    documents with the MIME type ``mimetypes`` guesses. The bot decides
    what it accepts. Returns a one-line note of what was sent.
    """
    path, data = await asyncio.to_thread(_read_upload, path)
    kind, mime_type = _upload_kind(path, as_document=as_document)
    extra = ""
    if kind == "photo":
        await user.send_photo(data, caption=caption)
    elif kind == "voice":
        if caption:
            extra = " (a voice message has no caption here: it was left out)"
        await user.send_voice(data)
    else:
        await user.send_document(data, path.name, mime_type, caption=caption)
    details = f"{path.name}, {size_text(len(data))}" + ("" if kind == "photo" else f", {mime_type}")
    return f"(demo) you sent {MEDIA_ICONS[kind]} {kind} ({details}){extra}"


def received_files(user: SimulatedUser, screen: Screen) -> list[ReceivedFile]:
    """The files the bot sent to ``user`` that are still in the chat."""
    files: list[ReceivedFile] = []
    for message in user.chat.visible():
        data = screen.file_data(message)
        if data is None:
            continue
        name = screen.uploaded_name(message) or ""
        name = Path(name.replace("\\", "/")).name
        if not name or name in {".", ".."}:
            extension = mimetypes.guess_extension(mime_of(message) or "") or ""
            name = f"{message.kind}-{message.message_id}{extension}"
        files.append((message, name, data))
    return files


def save_files(files: list[ReceivedFile], folder: str, role: str) -> str:
    """``/save DIR``: write ``files`` (those the bot sent to ``role``) into ``DIR``."""
    if not folder:
        return f"(!) usage: {SAVE_COMMAND} DIR"
    if not files:
        return f"(demo) the bot has sent the {role} no files to save"
    target = Path(folder).expanduser()
    lines: list[str] = []
    try:
        target.mkdir(parents=True, exist_ok=True)
        for message, name, data in files:
            path = _free_path(target / name)
            path.write_bytes(data)
            lines.append(f"(demo) saved {message.kind} {path} ({size_text(len(data))})")
    except OSError as exc:
        lines.append(f"(!) cannot write to {target}: {exc.strerror or exc}")
    return "\n".join(lines)


def _upload_kind(path: Path, *, as_document: bool) -> tuple[str, str]:
    """``(kind, MIME type)`` to send ``path`` as: ``photo``, ``voice`` or ``document``."""
    extension = path.suffix.lower()
    guessed = mimetypes.guess_type(path.name)[0]
    if extension in PHOTO_TYPES:
        return ("document" if as_document else "photo"), PHOTO_TYPES[extension]
    if extension in VOICE_EXTENSIONS and not as_document:
        return "voice", "audio/ogg"
    return "document", guessed or "application/octet-stream"


def _read_upload(path: Path) -> tuple[Path, bytes]:
    """``path`` with ``~`` expanded, and its bytes; LookupError (a message) if unreadable."""
    path = path.expanduser()
    try:
        if not path.is_file():
            msg = f"{path} is not a file"
            raise LookupError(msg)
        size = path.stat().st_size
        if size > MAX_UPLOAD_BYTES:
            msg = (
                f"{path} is {size_text(size)}; the demo sends at most {size_text(MAX_UPLOAD_BYTES)}"
            )
            raise LookupError(msg)
        return path, path.read_bytes()
    except OSError as exc:
        msg = f"cannot read {path}: {exc.strerror or exc}"
        raise LookupError(msg) from None


def bare_path(line: str) -> Path | None:
    """A line that is only the path of an existing file (``/...``, ``./...``, ``~...``).

    ``/start`` and the like stay commands: a line starting with ``/`` counts only
    if it has a second ``/`` (``/tmp/x.png``) and names an existing file.
    """
    text = line.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    if not text.startswith(("/", "./", "~")):
        return None
    if text.startswith("/") and "/" not in text[1:]:
        return None
    path = Path(text).expanduser()
    try:
        return path if path.is_file() else None
    except OSError:
        return None


def _free_path(path: Path) -> Path:
    """``path``, or ``name-1.ext``, ``name-2.ext``... if it already exists."""
    candidate = path
    number = 0
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
    return candidate
