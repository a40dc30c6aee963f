"""``make demo``: chat with the real bot in a terminal, without Telegram or a token.

The genuine Dispatcher, handlers, encrypted storage and outbox run against the
in-process Bot API emulator (:class:`devkit.sandbox.Sandbox`), with a SQLite file
and a throwaway key in a temporary folder that is deleted at exit. Type text to
send it, a number to press that button of the newest message with buttons.

Three simulated Telegram users take part, each in their own chat with the bot:
the reporter (``--user-id``, 1001 by default), a coordinator (id 1, configured
as ``INTAKE_COORDINATOR_IDS``) and a lawyer (id 2), who joins the staff at
start through the real path: the coordinator's ``/invite`` link, then
``/start <token>``. ``/as reporter|coordinator|lawyer`` switches whom you play;
those switches are the demo's own and never reach the bot. Messages to the
people you are not playing are printed compactly as ``[to lawyer] ...``.

``/file PATH [caption]`` (or a bare path of an existing file) sends a file from
disk as the person played: images as photos (``--as-document``: as a file),
``.ogg``/``.oga``/``.opus`` as voice messages, the rest as documents; the bot
decides what it accepts. Files the bot sends are printed with the SHA-256 of
the bytes received, and ``/save DIR`` writes them into ``DIR``.

Usage::

    python -m devkit.demo                      # interactive
    printf '/start\\n1\\n' | python -m devkit.demo  # piped: the lines are echoed
    python -m devkit.demo --input walk.txt     # read the lines from a file

The demo never reads ``.env`` (it holds the production configuration); the
``INTAKE_*`` environment variables still apply, e.g. ``INTAKE_WIPE_CHAT=false``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import logging
import mimetypes
import re
import shlex
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import RunMode
from bot.logs import ScrubbingFilter
from bot.notifications import Role
from devkit.emulator import ChatMessage, SimulatedUser, UploadedFile
from devkit.sandbox import Sandbox
from storage.crypto import KeyRing
from storage.crypto.keyfile import KeyMaterial
from storage.db import create_engine, create_sessionmaker, migrate
from storage.models import OutboxMessage, User

DEFAULT_USER_ID = 1001
DEFAULT_COORDINATOR_ID = 1
DEFAULT_LAWYER_ID = 2
REPORTER = "reporter"
COORDINATOR = "coordinator"
LAWYER = "lawyer"
#: The people the demo can play, in the order ``/as`` lists them.
ROLES = (REPORTER, COORDINATOR, LAWYER)
QUIT_COMMANDS = frozenset({"/quit", "/exit"})
AS_COMMAND = "/as"
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
#: Kinds of bot messages whose bytes the demo prints a SHA-256 of (files received).
RECEIVED_KINDS = frozenset({"document", "voice", "audio", "video"})
#: Longest wait for the outbox to deliver notifications after an input.
OUTBOX_WAIT_SECONDS = 2.0
#: How many of the newest visible messages ``/as`` prints of the chat it switches to.
SNAPSHOT_MESSAGES = 6
_OUTBOX_POLL_SECONDS = 0.05
_INDENT = "   "
_INVITE_LINK = re.compile(r"[?&]start=([A-Za-z0-9_-]+)")
_MEDIA_ICONS = {
    "photo": "🖼",
    "document": "📄",
    "voice": "🎤",
    "audio": "🎵",
    "video": "🎬",
    "sticker": "🏷",
}

BANNER = """\
Intake bot demo: the real bot on an emulated Telegram, right here. Nothing leaves this computer.
  some text        send it as a message          /start, /status, ...  send a command
  1, 2, ...        press that button of the newest message with buttons
  \\3               send the text "3" (a backslash keeps a number from pressing a button)
  /as coordinator  play the coordinator (id 1): /queue, /case REF, /assign REF, /stats, /staff, ...
  /as lawyer       play the lawyer (id 2, invited at start): /queue, /mine, /case REF, ...
  /as reporter     back to the reporter; /as alone shows whom you play (the bot never sees /as)
  /lock            (staff) lock the bot: case messages vanish; type \\246810 (the PIN) to unlock
  /file PATH [caption]  send a file from disk: .jpg/.png/... as a photo, .ogg/.opus as a voice
                   message, the rest as a document; /file --as-document PATH: a photo "as a file"
  /save DIR        write the files the bot sent to the person you play into DIR
  /quit or Ctrl-D  leave; the temporary database and key are deleted
  🗑 lists messages the bot deleted from the chat; "(edited)" marks a message it changed;
  [to lawyer] ... is a message to someone you are not playing; 🖼 is a picture the bot sent.
RU: Демо бота: напишите текст — он будет отправлен; цифра — нажать кнопку с этим номером; \
/as coordinator, /as lawyer, /as reporter — играть координатора, адвоката или заявителя; \
/quit или Ctrl-D — выход. Удалённые ботом сообщения отмечены 🗑. При выходе всё стирается.
TG: Намоиши бот: матн нависед — он фиристода мешавад; рақам — тугмаи ҳамон рақамро пахш \
мекунад; /as coordinator, /as lawyer, /as reporter — нақши ҳамоҳангсоз, адвокат ё \
муроҷиаткунандаро бозӣ кардан; /quit ё Ctrl-D — баромадан. Паёмҳое, ки бот нест кард, \
бо 🗑 нишон дода мешаванд. Ҳангоми баромадан ҳама чиз нест карда мешавад."""

Buttons = tuple[tuple[str, ...], ...]

#: The staff PIN the demo's coordinator and lawyer choose at start (issue 13).
DEMO_PIN = "246810"


async def _choose_pin(user: SimulatedUser) -> None:
    """Choose the staff PIN the real way: the bot asks for it, it is sent twice."""
    for _ in range(2):
        await user.send_text(DEMO_PIN)


@dataclass(frozen=True, slots=True)
class _Shown:
    """What was last printed of a bot message."""

    text: str
    buttons: Buttons


@dataclass(slots=True)
class _ChatView:
    """One person the demo can play, and what has been printed of their chat."""

    role: str
    user: SimulatedUser
    shown: dict[int, _Shown] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)
    answers_seen: int = 0
    target: int | None = None


def _buttons_of(message: ChatMessage) -> Buttons:
    return tuple(tuple(row) for row in message.button_labels)


def _indent(text: str, prefix: str) -> list[str]:
    lines = text.splitlines() or [""]
    return [prefix + lines[0], *(_INDENT + line if line else "" for line in lines[1:])]


def _button_lines(buttons: Buttons, *, numbered: bool) -> list[str]:
    lines: list[str] = []
    number = 0
    for row in buttons:
        cells: list[str] = []
        for label in row:
            number += 1
            cells.append(f"[{number}] {label}" if numbered else f"[·] {label}")
        lines.append(_INDENT + "  ".join(cells))
    return lines


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{round(size / 1024)} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def _current_keyboard(user: SimulatedUser) -> ChatMessage | None:
    for message in reversed(user.chat.messages.values()):
        if message.from_bot and not message.deleted and message.inline_keyboard:
            return message
    return None


class DemoSession:
    """One demo: the bot, the emulator, and the reporter, coordinator and lawyer chats.

    :meth:`start` sends ``/start`` as the reporter and returns the first screen;
    :meth:`handle` takes one line typed by the person and returns what changed,
    in the chat of the person being played (:attr:`role`) in full and in the
    other chats as compact ``[to ...]`` lines.
    """

    def __init__(
        self,
        *,
        user_id: int = DEFAULT_USER_ID,
        coordinator_id: int | None = DEFAULT_COORDINATOR_ID,
        lawyer_id: int | None = DEFAULT_LAWYER_ID,
        first_name: str = "Demo",
        language_code: str | None = "ru",
        outbox_wait: float = OUTBOX_WAIT_SECONDS,
    ) -> None:
        if coordinator_id is None:
            lawyer_id = None  # only a coordinator can invite a lawyer
        ids = [i for i in (user_id, coordinator_id, lawyer_id) if i is not None]
        if len(set(ids)) != len(ids):
            msg = "the reporter, the coordinator and the lawyer must be different users"
            raise ValueError(msg)
        self.user_id = user_id
        self.coordinator_id = coordinator_id
        self.lawyer_id = lawyer_id
        self.first_name = first_name
        self.language_code = language_code
        self.outbox_wait = outbox_wait
        self.finished = False
        self.workdir: Path | None = None
        self.role = REPORTER
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._engine: AsyncEngine | None = None
        self._sandbox: Sandbox | None = None
        self._views: dict[str, _ChatView] = {}
        self._file_names: dict[tuple[int, int], str | None] = {}

    # ------------------------------------------------------------------ lifecycle

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            msg = "the demo is not started"
            raise RuntimeError(msg)
        return self._sandbox

    def _view(self, role: str | None = None) -> _ChatView:
        if not self._views:
            msg = "the demo is not started"
            raise RuntimeError(msg)
        return self._views[role or self.role]

    @property
    def user(self) -> SimulatedUser:
        """The simulated user being played now (see :attr:`role`)."""
        return self._view().user

    @property
    def reporter(self) -> SimulatedUser:
        return self._view(REPORTER).user

    @property
    def roles(self) -> tuple[str, ...]:
        """The people this demo can play (the lawyer only once they joined the staff)."""
        return tuple(role for role in ROLES if role in self._views)

    def user_for(self, role: str) -> SimulatedUser:
        """The simulated user of ``role``; LookupError if this demo has no such person."""
        if role not in self._views:
            msg = f"there is no {role} in this demo"
            raise LookupError(msg)
        return self._views[role].user

    async def start(self) -> str:
        """Start the bot, make the lawyer join, send ``/start`` and return the first screen."""
        try:
            await self._open()
            joined = await self._join_lawyer()
        except BaseException:
            await self.close()
            raise
        screen = await self.handle("/start")
        return "\n".join(part for part in (joined, screen) if part)

    async def _open(self) -> None:
        self._tempdir = tempfile.TemporaryDirectory(prefix="intake-demo-")
        self.workdir = Path(self._tempdir.name)
        url = f"sqlite+aiosqlite:///{self.workdir / 'demo.db'}"
        self._engine = create_engine(url)
        await migrate(self._engine)
        coordinators = frozenset() if self.coordinator_id is None else {self.coordinator_id}
        self._sandbox = Sandbox(
            sessionmaker=create_sessionmaker(self._engine),
            keyring=KeyRing(KeyMaterial.generate()),
            database_url=url,
            coordinator_ids=frozenset(coordinators),
            mode=RunMode.POLLING,
            _env_file=None,
        )
        await self._sandbox.server.start()
        reporter = self._sandbox.user(
            self.user_id, first_name=self.first_name, language_code=self.language_code
        )
        self._views = {REPORTER: _ChatView(REPORTER, reporter)}
        if self.coordinator_id is not None:
            coordinator = self._sandbox.user(
                self.coordinator_id, first_name="Coordinator", language_code=self.language_code
            )
            self._views[COORDINATOR] = _ChatView(COORDINATOR, coordinator)
        await self._sandbox.start()

    async def _join_lawyer(self) -> str:
        """Make user ``lawyer_id`` a lawyer the real way: ``/invite``, then ``/start <token>``.

        Nothing of it is printed but one line; the chats are marked as seen.
        """
        if self.lawyer_id is None or COORDINATOR not in self._views:
            return ""
        coordinator = self._views[COORDINATOR].user
        lawyer = self.sandbox.user(
            self.lawyer_id, first_name="Lawyer", language_code=self.language_code
        )
        problem = ""
        try:
            await _choose_pin(coordinator)
            first_new = coordinator.chat.next_message_id
            await coordinator.send_command("/invite")
            answers = [
                message.plain_text or ""
                for message in coordinator.bot_messages()
                if message.message_id >= first_new
            ]
            found = next(filter(None, map(_INVITE_LINK.search, answers)), None)
            if found is None:
                problem = "the coordinator's /invite gave no link"
            else:
                await lawyer.send_command("/start", found.group(1))
                await _choose_pin(lawyer)
                await self._wait_for_outbox()
                if not await self._has_lawyer():
                    problem = "the invitation link did not make them a lawyer"
        except (TimeoutError, LookupError, RuntimeError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if problem:
            self._sync(self._views[COORDINATOR])
            return f"(!) the demo could not make user {self.lawyer_id} a lawyer: {problem}"
        self._views[LAWYER] = _ChatView(LAWYER, lawyer)
        for view in self._views.values():
            if view.role != REPORTER:
                self._sync(view)
        return (
            f"(demo) lawyer (id {self.lawyer_id}) joined the staff through an /invite link; "
            f"both staff chose the PIN {DEMO_PIN} (/lock locks, \\{DEMO_PIN} unlocks)"
        )

    async def _has_lawyer(self) -> bool:
        query = select(func.count()).select_from(User).where(User.role == Role.LAWYER.value)
        async with self.sandbox.sessionmaker() as session:
            return bool(await session.scalar(query))

    async def close(self) -> None:
        """Stop the bot and the emulator and delete the temporary folder."""
        self.finished = True
        sandbox, self._sandbox = self._sandbox, None
        engine, self._engine = self._engine, None
        tempdir, self._tempdir = self._tempdir, None
        self._views = {}
        try:
            if sandbox is not None:
                await sandbox.stop()
        finally:
            try:
                if engine is not None:
                    await engine.dispose()
            finally:
                if tempdir is not None:
                    tempdir.cleanup()

    # ------------------------------------------------------------------ input

    async def handle(self, line: str) -> str:
        """Act on one typed line; return what changed in the chats since the last screen."""
        line = line.strip()
        if not line:
            return ""
        if line.lower() in QUIT_COMMANDS:
            self.finished = True
            return ""
        first = line.split(maxsplit=1)[0].lower()
        if first == AS_COMMAND:
            return await self.switch(line[len(AS_COMMAND) :].strip())
        if first == SAVE_COMMAND:
            return self.save(line[len(SAVE_COMMAND) :].strip())
        hint = note = ""
        try:
            note = await self._act(line)
        except LookupError as exc:
            return f"(!) {exc}"
        except TimeoutError:
            hint = f"(!) the bot did not answer within {self.user.timeout:g} s"
        await self._wait_for_outbox()
        parts = [part for part in (note, hint, self.render_changes()) if part]
        return "\n".join(parts) or "(nothing changed in the chat)"

    async def _act(self, line: str) -> str:
        """Send what ``line`` stands for; returns a note on an upload, else ""."""
        user = self.user
        if line.split(maxsplit=1)[0].lower() == FILE_COMMAND:
            return await self.upload(line[len(FILE_COMMAND) :].strip())
        bare = _bare_path(line)
        if bare is not None:
            return await self.send_file(bare)
        if line.isascii() and line.isdigit():
            await self.press_number(int(line))
        elif line.startswith("/"):
            command, _, args = line.partition(" ")
            await user.send_command(command, args.strip() or None)
        else:
            if line.startswith("\\"):
                line = line[1:]
            if line:
                await user.send_text(line)
        return ""

    # ------------------------------------------------------------------ files

    async def upload(self, args: str) -> str:
        """``/file [--as-document] PATH [caption]``: send a file from disk as the person played."""
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
        return await self.send_file(Path(words[0]), caption=caption, as_document=as_document)

    async def send_file(
        self, path: Path, *, caption: str | None = None, as_document: bool = False
    ) -> str:
        """Read ``path`` and send it as a photo, a voice message or a document.

        The kind follows the extension: images are photos (documents with
        ``as_document``), ``.ogg``/``.oga``/``.opus`` voice messages, the rest
        documents with the MIME type ``mimetypes`` guesses. The bot decides
        what it accepts. Returns a one-line note of what was sent.
        """
        path, data = await asyncio.to_thread(_read_upload, path)
        kind, mime_type = _upload_kind(path, as_document=as_document)
        user = self.user
        extra = ""
        if kind == "photo":
            await user.send_photo(data, caption=caption)
        elif kind == "voice":
            if caption:
                extra = " (a voice message has no caption here: it was left out)"
            await user.send_voice(data)
        else:
            await user.send_document(data, path.name, mime_type, caption=caption)
        details = f"{path.name}, {_size(len(data))}" + ("" if kind == "photo" else f", {mime_type}")
        return f"(demo) you sent {_MEDIA_ICONS[kind]} {kind} ({details}){extra}"

    def received_files(self, role: str | None = None) -> list[tuple[ChatMessage, str, bytes]]:
        """The files the bot sent to ``role`` (default: the person played) still in the chat.

        Each as the message, a file name and the bytes the emulator stored.
        """
        files: list[tuple[ChatMessage, str, bytes]] = []
        for message in self._view(role).user.chat.visible():
            data = self._file_data(message)
            if data is None:
                continue
            name = self._uploaded_name(message) or ""
            name = Path(name.replace("\\", "/")).name
            if not name or name in {".", ".."}:
                extension = mimetypes.guess_extension(_mime_of(message) or "") or ""
                name = f"{message.kind}-{message.message_id}{extension}"
            files.append((message, name, data))
        return files

    def save(self, folder: str) -> str:
        """``/save DIR``: write the files the bot sent to the person played into ``DIR``."""
        if not folder:
            return f"(!) usage: {SAVE_COMMAND} DIR"
        files = self.received_files()
        if not files:
            return f"(demo) the bot has sent the {self.role} no files to save"
        target = Path(folder).expanduser()
        lines: list[str] = []
        try:
            target.mkdir(parents=True, exist_ok=True)
            for message, name, data in files:
                path = _free_path(target / name)
                path.write_bytes(data)
                lines.append(f"(demo) saved {message.kind} {path} ({_size(len(data))})")
        except OSError as exc:
            lines.append(f"(!) cannot write to {target}: {exc.strerror or exc}")
        return "\n".join(lines)

    def _file_data(self, message: ChatMessage) -> bytes | None:
        """The bytes of a file the bot sent, as the emulator stored them; None if none."""
        if not message.from_bot or message.file_id is None:
            return None
        record = self.sandbox.server.get_file(message.file_id)
        return None if record is None else record.data

    def current_keyboard(self) -> ChatMessage | None:
        """The newest visible bot message with buttons: the one numbers refer to."""
        return _current_keyboard(self.user)

    async def press_number(self, number: int) -> None:
        """Press button ``number`` (1-based, reading order) of :meth:`current_keyboard`."""
        message = self.current_keyboard()
        if message is None:
            msg = f'there are no buttons to press; to send "{number}" as text, type \\{number}'
            raise LookupError(msg)
        buttons = [button for row in message.inline_keyboard for button in row]
        if not 1 <= number <= len(buttons):
            msg = (
                f"there is no button {number}; choose 1-{len(buttons)}, "
                f'or type \\{number} to send "{number}" as text'
            )
            raise LookupError(msg)
        button = buttons[number - 1]
        data = button.get("callback_data")
        label = str(button.get("text", ""))
        if not isinstance(data, str):
            msg = f"button {number} ({label}) is a link, not something the demo can press"
            raise LookupError(msg)
        if message.find_button(label) is button:
            await self.user.press(label, message_id=message.message_id)
        else:  # an earlier button has the same label: send this one's data
            await self.user.press_data(data, message.message_id)

    async def _wait_for_outbox(self) -> None:
        """Give the outbox a moment to deliver what the last input queued."""
        if self._sandbox is None or self._engine is None or self.outbox_wait <= 0:
            return
        query = select(func.count()).where(OutboxMessage.state.in_(("pending", "sending")))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.outbox_wait
        while loop.time() < deadline:
            async with self._sandbox.sessionmaker() as session:
                if not await session.scalar(query):
                    return
            await asyncio.sleep(_OUTBOX_POLL_SECONDS)

    # ------------------------------------------------------------------ playing someone else

    def whoami(self) -> str:
        """Who is being played, and the ``/as`` choices."""
        user = self.user
        others = ", ".join(f"{AS_COMMAND} {role}" for role in self.roles if role != self.role)
        lines = [f"(demo) you are the {self.role} (Telegram id {user.user_id})."]
        if others:
            lines.append(f"(demo) switch with: {others}")
        if LAWYER not in self._views and self.lawyer_id is not None:
            lines.append("(demo) there is no lawyer: they could not join the staff at start")
        return "\n".join(lines)

    async def switch(self, name: str) -> str:
        """``/as NAME``: play another person and print their chat as it is now.

        ``NAME`` may be shortened (``/as c``). Only the demo sees this: nothing is sent.
        """
        if not name:
            return self.whoami()
        wanted = name.lower()
        matches = [role for role in ROLES if role.startswith(wanted)]
        if len(matches) != 1:
            choices = ", ".join(self.roles)
            return f"(!) there is nobody called {name!r} to play; choose one of: {choices}"
        role = matches[0]
        if role not in self._views:
            return f"(!) there is no {role} in this demo"
        await self._wait_for_outbox()
        # What arrived since the last screen for everyone else, the person being left
        # included (compactly: from now on their chat is one of the others).
        lines = [
            line
            for other in self.roles
            if other != role
            for line in self._notices(self._views[other])
        ]
        if role != self.role:
            self._sync(self._view())
        still = "still" if role == self.role else "now"
        self.role = role
        user = self.user
        lines.append(f"(demo) you are {still} the {role} (Telegram id {user.user_id}); the chat:")
        lines.extend(self._snapshot(self._view()))
        return "\n".join(lines)

    def _snapshot(self, view: _ChatView) -> list[str]:
        """The newest visible messages of a chat and its current buttons; marks all as seen."""
        visible = view.user.visible_messages()
        recent = visible[-SNAPSHOT_MESSAGES:]
        target = _current_keyboard(view.user)
        lines: list[str] = []
        if not visible:
            lines.append(f"{_INDENT}(the chat is empty)")
        elif len(visible) > len(recent):
            earlier = len(visible) - len(recent)
            lines.append(f"{_INDENT}({_plural(earlier, 'earlier message')} not shown)")
        for message in recent:
            if message.from_bot:
                lines.extend(self._message_lines(message, target=target))
            else:
                lines.extend(_indent(self._text_of(message), "👤 "))
        if target is not None and target not in recent:
            lines.append("(the buttons refer to this earlier message)")
            lines.extend(self._message_lines(target, target=target))
        self._sync(view)
        return lines

    def _sync(self, view: _ChatView) -> None:
        """Mark everything in the chat as printed."""
        chat = view.user.chat
        view.shown = {
            message.message_id: self._shown_of(message)
            for message in chat.messages.values()
            if message.from_bot and not message.deleted
        }
        view.deleted = {m.message_id for m in chat.messages.values() if m.deleted}
        view.answers_seen = len(chat.callback_answers)
        target = _current_keyboard(view.user)
        view.target = None if target is None else target.message_id

    # ------------------------------------------------------------------ output

    def render_changes(self) -> str:
        """What changed in the played chat, then what arrived in the others, since last call."""
        lines = self._changes(self._view())
        for role in self.roles:
            if role != self.role:
                lines.extend(self._notices(self._views[role]))
        return "\n".join(lines)

    def _changes(self, view: _ChatView) -> list[str]:
        lines: list[str] = []
        chat = view.user.chat
        target = _current_keyboard(view.user)
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

    def _notices(self, view: _ChatView) -> Iterator[str]:
        """New bot messages in the chat of someone not being played, one compact entry each."""
        for message in view.user.chat.visible():
            if not message.from_bot or message.message_id in view.shown:
                continue
            shown = view.shown[message.message_id] = self._shown_of(message)
            yield from _indent(shown.text, f"[to {view.role}] ")
            yield from _button_lines(shown.buttons, numbered=False)

    def _shown_of(self, message: ChatMessage) -> _Shown:
        return _Shown(self._text_of(message), _buttons_of(message))

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
        return f"🗑 the bot deleted {_plural(total, 'message')} ({', '.join(parts)})"

    def _text_of(self, message: ChatMessage) -> str:
        body = message.plain_text
        if message.kind == "text":
            return body or ""
        if message.kind in _MEDIA_ICONS:
            label = self._media_label(message)
            if message.from_bot and message.kind in RECEIVED_KINDS:
                data = self._file_data(message)
                if data is not None:
                    digest = hashlib.sha256(data).hexdigest()
                    check = ""
                    if "SHA-256" in (body or ""):
                        same = digest in (body or "")
                        check = " (matches the caption)" if same else " (NOT the caption's!)"
                    label += f"\nreceived: SHA-256 {digest}{check}"
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
            name = self._uploaded_name(message)
        details = [part for part in (name, _size(size) if isinstance(size, int) else None) if part]
        label = f"{_MEDIA_ICONS[message.kind]} {message.kind}"
        return f"{label} ({', '.join(details)})" if details else label

    def _uploaded_name(self, message: ChatMessage) -> str | None:
        """The file name the bot uploaded under (the emulator keeps it only on the call)."""
        key = (message.chat_id, message.message_id)
        if key in self._file_names:
            return self._file_names[key]
        server = self.sandbox.server
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


def _mime_of(message: ChatMessage) -> str | None:
    value = message.media.get(message.kind)
    mime = value.get("mime_type") if isinstance(value, dict) else None
    return mime if isinstance(mime, str) else None


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
            msg = f"{path} is {_size(size)}; the demo sends at most {_size(MAX_UPLOAD_BYTES)}"
            raise LookupError(msg)
        return path, path.read_bytes()
    except OSError as exc:
        msg = f"cannot read {path}: {exc.strerror or exc}"
        raise LookupError(msg) from None


def _bare_path(line: str) -> Path | None:
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


# ---------------------------------------------------------------------- terminal


async def _read_line(stream: TextIO, prompt: str) -> str | None:
    """One line from ``stream`` without blocking the event loop; None at end of input.

    A daemon thread (not the default executor, which is joined at exit) so that
    Ctrl-C does not hang waiting for a line that will never come.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str | None] = loop.create_future()

    def deliver(result: str | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def read() -> None:
        result: str | None = None
        error: BaseException | None = None
        try:
            if stream is sys.stdin:
                result = input(prompt)
            else:
                raw = stream.readline()
                result = raw.rstrip("\r\n") if raw else None
        except EOFError:
            result = None
        except Exception as exc:  # handed to the event loop
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            loop.call_soon_threadsafe(deliver, result, error)

    threading.Thread(target=read, name="demo-input", daemon=True).start()
    return await future


async def run(
    stream: TextIO,
    *,
    echo: bool,
    user_id: int = DEFAULT_USER_ID,
    write: Callable[[str], None] = print,
) -> None:
    """The terminal loop: read lines from ``stream`` until /quit or end of input."""
    write(BANNER)
    write("")
    session = DemoSession(user_id=user_id)
    try:
        write(await session.start())
        while not session.finished:
            prompt = f"{session.role}> "
            line = await _read_line(stream, "" if echo else prompt)
            if line is None:
                if not echo:
                    write("")
                break
            if echo:
                write(f"{prompt}{line}")
            output = await session.handle(line)
            if output:
                write(output)
    finally:
        await session.close()
    write("(demo closed; its temporary database and key were deleted)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devkit.demo",
        description="Chat with the real intake bot in this terminal, on an emulated Telegram.",
    )
    parser.add_argument(
        "--input",
        type=Path,
        metavar="FILE",
        help="read the typed lines from FILE instead of the terminal (they are echoed)",
    )
    parser.add_argument(
        "--user-id",
        type=int,
        default=DEFAULT_USER_ID,
        help=(
            f"Telegram id of the reporter (default {DEFAULT_USER_ID}; "
            f"{DEFAULT_COORDINATOR_ID} is the coordinator, {DEFAULT_LAWYER_ID} the lawyer)"
        ),
    )
    return parser


def _configure_logging() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[log] %(levelname)s %(name)s %(message)s"))
    handler.addFilter(ScrubbingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for staff_id, role in ((DEFAULT_COORDINATOR_ID, COORDINATOR), (DEFAULT_LAWYER_ID, LAWYER)):
        if args.user_id == staff_id:
            build_parser().error(f"--user-id {staff_id} is the demo's {role}")
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")
    _configure_logging()
    try:
        if args.input is not None:
            with args.input.open(encoding="utf-8") as stream:
                asyncio.run(run(stream, echo=True, user_id=args.user_id))
        else:
            asyncio.run(run(sys.stdin, echo=not sys.stdin.isatty(), user_id=args.user_id))
    except KeyboardInterrupt:
        print("\n(interrupted; the temporary database and key were deleted)")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
