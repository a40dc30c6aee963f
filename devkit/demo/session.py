"""The demo's scenario: the bot on the emulator, and the people at the keyboard.

:class:`DemoSession` starts the real bot in a :class:`~devkit.sandbox.Sandbox` with a
throwaway SQLite file and key, makes the lawyer join the staff the real way, and turns
each typed line into what the person played does: a message, a button press, a file,
or the demo's own ``/as``, ``/save`` and ``/quit``. What it prints is drawn by
:mod:`devkit.demo.screen`; the terminal loop is :mod:`devkit.demo.terminal`.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import RunMode
from bot.notifications import Role
from devkit.demo import files
from devkit.demo.files import FILE_COMMAND, SAVE_COMMAND, ReceivedFile
from devkit.demo.screen import ChatView, Screen, current_keyboard
from devkit.emulator import ChatMessage, SimulatedUser
from devkit.sandbox import Sandbox
from storage.crypto import KeyRing
from storage.crypto.keyfile import KeyMaterial
from storage.db import create_engine, create_sessionmaker, migrate
from storage.models import OutboxMessage, User

#: The staff PIN the demo's coordinator and lawyer choose at start (issue 13).
DEMO_PIN = "246810"


async def _choose_pin(user: SimulatedUser) -> None:
    """Choose the staff PIN the real way: the bot asks for it, it is sent twice."""
    for _ in range(2):
        await user.send_text(DEMO_PIN)


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
#: Longest wait for the outbox to deliver notifications after an input.
OUTBOX_WAIT_SECONDS = 2.0
_OUTBOX_POLL_SECONDS = 0.05
_INVITE_LINK = re.compile(r"[?&]start=([A-Za-z0-9_-]+)")


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
        self._screen: Screen | None = None
        self._views: dict[str, ChatView] = {}

    # ------------------------------------------------------------------ lifecycle

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            msg = "the demo is not started"
            raise RuntimeError(msg)
        return self._sandbox

    @property
    def screen(self) -> Screen:
        if self._screen is None:
            msg = "the demo is not started"
            raise RuntimeError(msg)
        return self._screen

    def _view(self, role: str | None = None) -> ChatView:
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
        self._screen = Screen(self._sandbox.server)
        reporter = self._sandbox.user(
            self.user_id, first_name=self.first_name, language_code=self.language_code
        )
        self._views = {REPORTER: ChatView(REPORTER, reporter)}
        if self.coordinator_id is not None:
            coordinator = self._sandbox.user(
                self.coordinator_id, first_name="Coordinator", language_code=self.language_code
            )
            self._views[COORDINATOR] = ChatView(COORDINATOR, coordinator)
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
            self.screen.sync(self._views[COORDINATOR])
            return f"(!) the demo could not make user {self.lawyer_id} a lawyer: {problem}"
        self._views[LAWYER] = ChatView(LAWYER, lawyer)
        for view in self._views.values():
            if view.role != REPORTER:
                self.screen.sync(view)
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
        self._screen = None
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
        bare = files.bare_path(line)
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
        path, caption, as_document = files.parse_upload(args)
        return await self.send_file(path, caption=caption, as_document=as_document)

    async def send_file(
        self, path: Path, *, caption: str | None = None, as_document: bool = False
    ) -> str:
        """Send the file at ``path`` as the person played (see :func:`files.send_file`)."""
        return await files.send_file(self.user, path, caption=caption, as_document=as_document)

    def received_files(self, role: str | None = None) -> list[ReceivedFile]:
        """The files the bot sent to ``role`` (default: the person played) still in the chat."""
        return files.received_files(self._view(role).user, self.screen)

    def save(self, folder: str) -> str:
        """``/save DIR``: write the files the bot sent to the person played into ``DIR``."""
        return files.save_files(self.received_files(), folder, self.role)

    # ------------------------------------------------------------------ buttons and the outbox

    def current_keyboard(self) -> ChatMessage | None:
        """The newest visible bot message with buttons: the one numbers refer to."""
        return current_keyboard(self.user)

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
            for line in self.screen.notices(self._views[other])
        ]
        if role != self.role:
            self.screen.sync(self._view())
        still = "still" if role == self.role else "now"
        self.role = role
        user = self.user
        lines.append(f"(demo) you are {still} the {role} (Telegram id {user.user_id}); the chat:")
        lines.extend(self.screen.snapshot(self._view()))
        return "\n".join(lines)

    # ------------------------------------------------------------------ output

    def render_changes(self) -> str:
        """What changed in the played chat, then what arrived in the others, since last call."""
        lines = self.screen.changes(self._view())
        for role in self.roles:
            if role != self.role:
                lines.extend(self.screen.notices(self._views[role]))
        return "\n".join(lines)
