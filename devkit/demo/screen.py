"""What the demo prints of the chats: the played one in full, the others compactly.

Bot messages are printed once, again when the bot edits them (``(edited)``); deletions
are counted (``🗑``); the newest message with buttons has them numbered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from devkit.emulator import ChatMessage, FakeTelegramServer, SimulatedUser, UploadedFile

#: Kinds of bot messages whose bytes the demo prints a SHA-256 of (files received).
RECEIVED_KINDS = frozenset({"document", "voice", "audio", "video"})
#: How many of the newest visible messages ``/as`` prints of the chat it switches to.
SNAPSHOT_MESSAGES = 6
INDENT = "   "
MEDIA_ICONS = {
    "photo": "🖼",
    "document": "📄",
    "voice": "🎤",
    "audio": "🎵",
    "video": "🎬",
    "sticker": "🏷",
}

Buttons = tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class Shown:
    """What was last printed of a bot message."""

    text: str
    buttons: Buttons


@dataclass(slots=True)
class ChatView:
    """One person the demo can play, and what has been printed of their chat."""

    role: str
    user: SimulatedUser
    shown: dict[int, Shown] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)
    answers_seen: int = 0
    target: int | None = None


def _buttons_of(message: ChatMessage) -> Buttons:
    return tuple(tuple(row) for row in message.button_labels)


def _indent(text: str, prefix: str) -> list[str]:
    lines = text.splitlines() or [""]
    return [prefix + lines[0], *(INDENT + line if line else "" for line in lines[1:])]


def _button_lines(buttons: Buttons, *, numbered: bool) -> list[str]:
    lines: list[str] = []
    number = 0
    for row in buttons:
        cells: list[str] = []
        for label in row:
            number += 1
            cells.append(f"[{number}] {label}" if numbered else f"[·] {label}")
        lines.append(INDENT + "  ".join(cells))
    return lines


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def size_text(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{round(size / 1024)} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def current_keyboard(user: SimulatedUser) -> ChatMessage | None:
    for message in reversed(user.chat.messages.values()):
        if message.from_bot and not message.deleted and message.inline_keyboard:
            return message
    return None


def mime_of(message: ChatMessage) -> str | None:
    value = message.media.get(message.kind)
    mime = value.get("mime_type") if isinstance(value, dict) else None
    return mime if isinstance(mime, str) else None


class Screen:
    """Turns the chats the emulator holds into the lines the terminal shows."""

    def __init__(self, server: FakeTelegramServer) -> None:
        self.server = server
        self._file_names: dict[tuple[int, int], str | None] = {}

    def snapshot(self, view: ChatView) -> list[str]:
        """The newest visible messages of a chat and its current buttons; marks all as seen."""
        visible = view.user.visible_messages()
        recent = visible[-SNAPSHOT_MESSAGES:]
        target = current_keyboard(view.user)
        lines: list[str] = []
        if not visible:
            lines.append(f"{INDENT}(the chat is empty)")
        elif len(visible) > len(recent):
            earlier = len(visible) - len(recent)
            lines.append(f"{INDENT}({plural(earlier, 'earlier message')} not shown)")
        for message in recent:
            if message.from_bot:
                lines.extend(self._message_lines(message, target=target))
            else:
                lines.extend(_indent(self._text_of(message), "👤 "))
        if target is not None and target not in recent:
            lines.append("(the buttons refer to this earlier message)")
            lines.extend(self._message_lines(target, target=target))
        self.sync(view)
        return lines

    def sync(self, view: ChatView) -> None:
        """Mark everything in the chat as printed."""
        chat = view.user.chat
        view.shown = {
            message.message_id: self._shown_of(message)
            for message in chat.messages.values()
            if message.from_bot and not message.deleted
        }
        view.deleted = {m.message_id for m in chat.messages.values() if m.deleted}
        view.answers_seen = len(chat.callback_answers)
        target = current_keyboard(view.user)
        view.target = None if target is None else target.message_id

    def changes(self, view: ChatView) -> list[str]:
        lines: list[str] = []
        chat = view.user.chat
        target = current_keyboard(view.user)
        target_id = None if target is None else target.message_id
        printed: set[int] = set()
        own_deleted = users_deleted = 0
        for message in chat.messages.values():
            if message.deleted:
                if message.message_id in view.deleted:
                    continue
                view.deleted.add(message.message_id)
                if not message.from_bot:
                    users_deleted += 1
                    continue
                own_deleted += 1
                if message.message_id not in view.shown:
                    lines.extend(_indent(self._text_of(message), "🤖 (deleted at once) "))
                continue
            if not message.from_bot:
                continue
            shown = self._shown_of(message)
            previous = view.shown.get(message.message_id)
            if previous == shown:
                continue
            view.shown[message.message_id] = shown
            printed.add(message.message_id)
            lines.extend(self._message_lines(message, target=target, edited=previous is not None))
        if target is not None and target_id != view.target and target_id not in printed:
            lines.append("(the buttons now refer to this earlier message)")
            lines.extend(self._message_lines(target, target=target))
        view.target = target_id
        answers = chat.callback_answers[view.answers_seen :]
        view.answers_seen = len(chat.callback_answers)
        for answer in answers:
            if answer.text:
                kind = "alert" if answer.show_alert else "popup"
                lines.append(f"💬 ({kind}) {answer.text}")
        if own_deleted or users_deleted:
            lines.append(self._deleted_line(own_deleted, users_deleted))
        return lines

    def notices(self, view: ChatView) -> Iterator[str]:
        """New bot messages in the chat of someone not being played, one compact entry each."""
        for message in view.user.chat.visible():
            if not message.from_bot or message.message_id in view.shown:
                continue
            shown = view.shown[message.message_id] = self._shown_of(message)
            yield from _indent(shown.text, f"[to {view.role}] ")
            yield from _button_lines(shown.buttons, numbered=False)

    def _shown_of(self, message: ChatMessage) -> Shown:
        return Shown(self._text_of(message), _buttons_of(message))

    def _message_lines(
        self, message: ChatMessage, *, target: ChatMessage | None, edited: bool = False
    ) -> list[str]:
        shown = self._shown_of(message)
        lines = _indent(shown.text, "🤖 (edited) " if edited else "🤖 ")
        lines.extend(_button_lines(shown.buttons, numbered=message is target))
        return lines

    @staticmethod
    def _deleted_line(own: int, users: int) -> str:
        total = own + users
        parts = []
        if own:
            parts.append(f"{own} of its own")
        if users:
            parts.append(f"{users} of yours")
        return f"🗑 the bot deleted {plural(total, 'message')} ({', '.join(parts)})"

    def _text_of(self, message: ChatMessage) -> str:
        body = message.plain_text
        if message.kind == "text":
            return body or ""
        if message.kind in MEDIA_ICONS:
            label = self._media_label(message)
            if message.from_bot and message.kind in RECEIVED_KINDS:
                data = self.file_data(message)
                if data is not None:
                    digest = hashlib.sha256(data).hexdigest()
                    check = ""
                    if "SHA-256" in (body or ""):
                        same = digest in (body or "")
                        check = " (matches the caption)" if same else " (NOT the caption's!)"
                    label += f"\nreceived: SHA-256 {digest}{check}"
                    if (self.uploaded_name(message) or "").endswith(".docx"):
                        label += docx_outline(data)
            return f"{label}\n{body}" if body else label
        label = f"[{message.kind}]"
        return f"{label} {body}" if body else label

    def _media_label(self, message: ChatMessage) -> str:
        """``🖼 photo (stats.png, 23 KB)``: the kind, and the file's name and size if known."""
        value = message.media.get(message.kind)
        if isinstance(value, list):
            value = value[-1] if value else None
        facts = value if isinstance(value, dict) else {}
        name = facts.get("file_name")
        size = facts.get("file_size")
        if not isinstance(name, str) or not name:
            name = self.uploaded_name(message)
        details = [
            part for part in (name, size_text(size) if isinstance(size, int) else None) if part
        ]
        label = f"{MEDIA_ICONS[message.kind]} {message.kind}"
        return f"{label} ({', '.join(details)})" if details else label

    def uploaded_name(self, message: ChatMessage) -> str | None:
        """The file name the bot uploaded under (the emulator keeps it only on the call)."""
        key = (message.chat_id, message.message_id)
        if key in self._file_names:
            return self._file_names[key]
        server = self.server
        record = None if message.file_id is None else server.get_file(message.file_id)
        name = None if record is None else record.file_name
        if name is None and record is not None and message.from_bot:
            method = "send" + message.kind.capitalize()
            for call in reversed(server.calls_for(method)):
                upload = call.params.get(message.kind)
                if (
                    call.chat_id == message.chat_id
                    and isinstance(upload, UploadedFile)
                    and upload.data == record.data
                ):
                    name = upload.filename
                    break
        self._file_names[key] = name
        return name

    def file_data(self, message: ChatMessage) -> bytes | None:
        """The bytes of a file the bot sent, as the emulator stored them; None if none."""
        if not message.from_bot or message.file_id is None:
            return None
        record = self.server.get_file(message.file_id)
        return None if record is None else record.data


DOCX_OUTLINE_HEADINGS = 12


def docx_outline(data: bytes) -> str:
    """A Word file the bot sent (a /dossier), as its first headings: what it holds."""
    import io

    from docx import Document

    try:
        paragraphs = Document(io.BytesIO(data)).paragraphs
    except Exception:
        return "\n(not a readable Word file)"
    headings = [
        p.text for p in paragraphs if p.style is not None and p.style.name.startswith("Heading")
    ]
    shown = [f"  § {text}" for text in headings[:DOCX_OUTLINE_HEADINGS]]
    more = len(headings) - len(shown)
    return "\n" + "\n".join(shown) + (f"\n  § … {more} more" if more > 0 else "")
