"""``make demo``: chat with the real bot in a terminal, without Telegram or a token.

The genuine Dispatcher, handlers, encrypted storage and outbox run against the
in-process Bot API emulator (:class:`bot.sandbox.Sandbox`), with a SQLite file
and a throwaway key in a temporary folder that is deleted at exit. Type text to
send it, a number to press that button of the newest message with buttons.

Usage::

    python -m bot.demo                      # interactive
    printf '/start\\n1\\n' | python -m bot.demo  # piped: the lines are echoed
    python -m bot.demo --input walk.txt     # read the lines from a file

The demo never reads ``.env`` (it holds the production configuration); the
``INTAKE_*`` environment variables still apply, e.g. ``INTAKE_WIPE_CHAT=false``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import logging
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import RunMode
from bot.emulator import ChatMessage, ChatState, SimulatedUser
from bot.logs import ScrubbingFilter
from bot.sandbox import Sandbox
from storage.crypto import KeyRing
from storage.crypto.keyfile import KeyMaterial
from storage.db import create_engine, create_sessionmaker, migrate
from storage.models import OutboxMessage

DEFAULT_USER_ID = 1001
DEFAULT_COORDINATOR_ID = 1
QUIT_COMMANDS = frozenset({"/quit", "/exit"})
#: Longest wait for the outbox to deliver notifications after an input.
OUTBOX_WAIT_SECONDS = 2.0
_OUTBOX_POLL_SECONDS = 0.05
_INDENT = "   "

BANNER = """\
Intake bot demo: the real bot on an emulated Telegram, right here. Nothing leaves this computer.
  some text        send it as a message          /start, /status, ...  send a command
  1, 2, ...        press that button of the newest message with buttons
  \\3               send the text "3" (a backslash keeps a number from pressing a button)
  /quit or Ctrl-D  leave; the temporary database and key are deleted
  🗑 lists messages the bot deleted from the chat; "(edited)" marks a message it changed.
RU: Демо бота: напишите текст — он будет отправлен; цифра — нажать кнопку с этим номером; \
/quit или Ctrl-D — выход. Удалённые ботом сообщения отмечены 🗑. При выходе всё стирается.
TG: Намоиши бот: матн нависед — он фиристода мешавад; рақам — тугмаи ҳамон рақамро пахш \
мекунад; /quit ё Ctrl-D — баромадан. Паёмҳое, ки бот нест кард, бо 🗑 нишон дода мешаванд. \
Ҳангоми баромадан ҳама чиз нест карда мешавад."""

Buttons = tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class _Shown:
    """What was last printed of a bot message."""

    text: str
    buttons: Buttons


def _buttons_of(message: ChatMessage) -> Buttons:
    return tuple(tuple(row) for row in message.button_labels)


def _text_of(message: ChatMessage) -> str:
    body = message.plain_text
    if message.kind != "text":
        label = f"[{message.kind}]"
        return f"{label} {body}" if body else label
    return body or ""


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


class DemoSession:
    """One demo chat: the bot, the emulator, a reporter and a coordinator.

    :meth:`start` sends ``/start`` and returns the first screen; :meth:`handle`
    takes one line typed by the person and returns what changed in the chat.
    """

    def __init__(
        self,
        *,
        user_id: int = DEFAULT_USER_ID,
        coordinator_id: int | None = DEFAULT_COORDINATOR_ID,
        first_name: str = "Demo",
        language_code: str | None = "ru",
        outbox_wait: float = OUTBOX_WAIT_SECONDS,
    ) -> None:
        if coordinator_id is not None and coordinator_id == user_id:
            msg = "the coordinator and the reporter must be different users"
            raise ValueError(msg)
        self.user_id = user_id
        self.coordinator_id = coordinator_id
        self.first_name = first_name
        self.language_code = language_code
        self.outbox_wait = outbox_wait
        self.finished = False
        self.workdir: Path | None = None
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._engine: AsyncEngine | None = None
        self._sandbox: Sandbox | None = None
        self._user: SimulatedUser | None = None
        self._shown: dict[int, _Shown] = {}
        self._deleted: set[int] = set()
        self._answers_seen = 0
        self._coordinator_seen: set[int] = set()
        self._target: int | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            msg = "the demo is not started"
            raise RuntimeError(msg)
        return self._sandbox

    @property
    def user(self) -> SimulatedUser:
        if self._user is None:
            msg = "the demo is not started"
            raise RuntimeError(msg)
        return self._user

    async def start(self) -> str:
        """Start the bot, send ``/start`` and return the first screen."""
        try:
            await self._open()
        except BaseException:
            await self.close()
            raise
        return await self.handle("/start")

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
        if self.coordinator_id is not None:
            self._sandbox.server.ensure_chat(self.coordinator_id, first_name="Coordinator")
        self._user = self._sandbox.user(
            self.user_id, first_name=self.first_name, language_code=self.language_code
        )
        await self._sandbox.start()

    async def close(self) -> None:
        """Stop the bot and the emulator and delete the temporary folder."""
        self.finished = True
        sandbox, self._sandbox = self._sandbox, None
        engine, self._engine = self._engine, None
        tempdir, self._tempdir = self._tempdir, None
        self._user = None
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
        """Act on one typed line; return what changed in the chat since the last screen."""
        line = line.strip()
        if not line:
            return ""
        if line.lower() in QUIT_COMMANDS:
            self.finished = True
            return ""
        hint = ""
        try:
            await self._act(line)
        except LookupError as exc:
            return f"(!) {exc}"
        except TimeoutError:
            hint = f"(!) the bot did not answer within {self.user.timeout:g} s"
        await self._wait_for_outbox()
        parts = [part for part in (hint, self.render_changes()) if part]
        return "\n".join(parts) or "(nothing changed in the chat)"

    async def _act(self, line: str) -> None:
        user = self.user
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

    def current_keyboard(self) -> ChatMessage | None:
        """The newest visible bot message with buttons: the one numbers refer to."""
        for message in reversed(self.user.chat.messages.values()):
            if message.from_bot and not message.deleted and message.inline_keyboard:
                return message
        return None

    def _current_id(self) -> int | None:
        message = self.current_keyboard()
        return None if message is None else message.message_id

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

    # ------------------------------------------------------------------ output

    def render_changes(self) -> str:
        """What changed in the chat (and the coordinator's chat) since the last call."""
        lines: list[str] = []
        chat = self.user.chat
        target = self.current_keyboard()
        target_id = None if target is None else target.message_id
        printed: set[int] = set()
        own_deleted = users_deleted = 0
        for message in chat.messages.values():
            if message.deleted:
                if message.message_id in self._deleted:
                    continue
                self._deleted.add(message.message_id)
                if not message.from_bot:
                    users_deleted += 1
                    continue
                own_deleted += 1
                if message.message_id not in self._shown:
                    lines.extend(_indent(_text_of(message), "🤖 (deleted at once) "))
                continue
            if not message.from_bot:
                continue
            shown = _Shown(_text_of(message), _buttons_of(message))
            previous = self._shown.get(message.message_id)
            if previous == shown:
                continue
            self._shown[message.message_id] = shown
            printed.add(message.message_id)
            lines.extend(self._message_lines(message, shown, edited=previous is not None))
        if target is not None and target_id != self._target and target_id not in printed:
            shown = self._shown[target.message_id]
            lines.append("(the buttons now refer to this earlier message)")
            lines.extend(self._message_lines(target, shown, edited=False))
        self._target = target_id
        lines.extend(self._popup_lines(chat))
        if own_deleted or users_deleted:
            lines.append(self._deleted_line(own_deleted, users_deleted))
        lines.extend(self._coordinator_lines())
        return "\n".join(lines)

    def _message_lines(self, message: ChatMessage, shown: _Shown, *, edited: bool) -> list[str]:
        prefix = "🤖 (edited) " if edited else "🤖 "
        lines = _indent(shown.text, prefix)
        lines.extend(
            _button_lines(shown.buttons, numbered=message.message_id == self._current_id())
        )
        return lines

    def _popup_lines(self, chat: ChatState) -> Iterator[str]:
        answers = chat.callback_answers[self._answers_seen :]
        self._answers_seen = len(chat.callback_answers)
        for answer in answers:
            if answer.text:
                kind = "alert" if answer.show_alert else "popup"
                yield f"💬 ({kind}) {answer.text}"

    @staticmethod
    def _deleted_line(own: int, users: int) -> str:
        total = own + users
        parts = []
        if own:
            parts.append(f"{own} of its own")
        if users:
            parts.append(f"{users} of yours")
        return f"🗑 the bot deleted {_plural(total, 'message')} ({', '.join(parts)})"

    def _coordinator_lines(self) -> Iterator[str]:
        if self.coordinator_id is None:
            return
        server = self.sandbox.server
        if not server.has_chat(self.coordinator_id):
            return
        for message in server.chat(self.coordinator_id).visible():
            if message.from_bot and message.message_id not in self._coordinator_seen:
                self._coordinator_seen.add(message.message_id)
                yield from _indent(_text_of(message), "[to coordinator] ")


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
            line = await _read_line(stream, "" if echo else "> ")
            if line is None:
                if not echo:
                    write("")
                break
            if echo:
                write(f"> {line}")
            output = await session.handle(line)
            if output:
                write(output)
    finally:
        await session.close()
    write("(demo closed; its temporary database and key were deleted)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot.demo",
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
        help=f"Telegram id of the reporter (default {DEFAULT_USER_ID})",
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
    if args.user_id == DEFAULT_COORDINATOR_ID:
        build_parser().error(f"--user-id {DEFAULT_COORDINATOR_ID} is the demo's coordinator")
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
