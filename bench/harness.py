"""The harness side: start the bot process, know when it finished each update.

:class:`BotProcess` forks ``bench.botproc`` against the harness's emulator and
reads its ``done`` lines; :class:`ProbedUser` is a :class:`SimulatedUser` whose
every update waits until the bot finished it (``handle_as_tasks=True`` polling
confirms updates before handling them, so ``wait_processed`` cannot be used).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.process
import os
import random
import signal
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

from bench.botproc import child_main
from bench.common import BenchError, proc_cpu_seconds, proc_status
from bench.common import Database as BenchDatabase
from devkit.emulator import FakeTelegramServer, JsonDict, SimulatedUser

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


@dataclass(slots=True)
class Step:
    """One update a simulated user sent, and when it was pushed and finished."""

    update_id: int
    chat_id: int
    kind: str  # "message" | "callback"
    pushed_at: float
    done_at: float = 0.0
    payload: str = ""
    entities: list[JsonDict] | None = None


@dataclass(slots=True)
class _Done:
    at: float
    ok: bool


class BotProcess:
    """A bot under test (``bench.botproc``), forked by the fork server; stopped by pid only."""

    def __init__(
        self,
        mode: str,
        server: FakeTelegramServer,
        *,
        database: BenchDatabase | None = None,
        key_file: Path | None = None,
        coordinators: tuple[int, ...] = (),
        log_path: Path,
        profile_path: Path | None = None,
        tasks_limit: int | None = None,
        extra_argv: tuple[str, ...] = (),
        handled: Counter[int] | None = None,
    ) -> None:
        self.mode = mode
        self.extra_argv = extra_argv
        #: webhook mode: how often a handler ran to the end, per update id
        self.handled = handled
        #: webhook mode: the port the replica listens on
        self.port = 0
        self.tasks_limit = tasks_limit
        self.server = server
        self.database = database
        self.key_file = key_file
        self.coordinators = coordinators
        self.log_path = log_path
        self.profile_path = profile_path
        self.process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._ready = asyncio.Event()
        self._closed = asyncio.Event()
        self._exited = asyncio.Event()
        self._done: dict[int, _Done] = {}
        self._waiters: dict[int, asyncio.Future[_Done]] = {}
        self.failed_updates = 0
        self.idle_rss_kb = 0

    @property
    def pid(self) -> int:
        if self.process is None or self.process.pid is None:
            raise BenchError("the bot process is not running")
        return self.process.pid

    def _argv(self) -> list[str]:
        argv = ["--mode", self.mode, "--api-url", self.server.url, "--token", self.server.token]
        if self.database is not None:
            argv += ["--database-url", self.database.url]
            if self.database.schema:
                argv += ["--schema", self.database.schema]
        if self.key_file is not None:
            argv += ["--key-file", str(self.key_file)]
        for coordinator in self.coordinators:
            argv += ["--coordinator", str(coordinator)]
        if self.profile_path is not None:
            argv += ["--profile", str(self.profile_path)]
        if self.tasks_limit is not None:
            argv += ["--tasks-limit", str(self.tasks_limit)]
        return argv + list(self.extra_argv)

    async def start(self) -> None:
        context = multiprocessing.get_context("forkserver")
        ours, theirs = context.Pipe(duplex=True)
        process = context.Process(
            target=child_main,
            args=(self._argv(), theirs, str(self.log_path)),
            name=f"bench-{self.mode}-bot",
            daemon=True,
        )
        self.process = process
        self._conn = ours
        try:
            # Blocks until the fork server is up (it imports aiogram once): not in the loop.
            await asyncio.to_thread(process.start)
        finally:
            theirs.close()
        loop = asyncio.get_running_loop()
        loop.add_reader(ours.fileno(), self._readable)
        loop.add_reader(process.sentinel, self._process_exited)
        ready = asyncio.create_task(self._ready.wait())
        closed = asyncio.create_task(self._closed.wait())
        try:
            await asyncio.wait(
                {ready, closed}, timeout=START_TIMEOUT, return_when="FIRST_COMPLETED"
            )
        finally:
            ready.cancel()
            closed.cancel()
        if not self._ready.is_set():
            await self.stop()
            raise BenchError(f"the {self.mode} bot did not start:\n{self.log_tail()}")
        self.idle_rss_kb = proc_status(self.pid).get("VmRSS", 0)

    def _readable(self) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            while conn.poll():
                self._line(conn.recv_bytes().decode("ascii", "replace"))
        except (EOFError, OSError):
            self._close()

    def _process_exited(self) -> None:
        # Lines already in the pipe still count; then nothing more will come.
        self._readable()
        self._exited.set()
        self._close()

    def _line(self, line: str) -> None:
        parts = line.split()
        if not parts:
            return
        if parts[0] == "done" and len(parts) == 4:
            done = _Done(float(parts[2]), parts[3] == "1")
            update_id = int(parts[1])
            if not done.ok:
                self.failed_updates += 1
            self._done[update_id] = done
            waiter = self._waiters.pop(update_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(done)
        elif parts[0] == "handled" and len(parts) == 2 and self.handled is not None:
            self.handled[int(parts[1])] += 1
        elif parts[0] == "ready":
            if len(parts) == 2:
                self.port = int(parts[1])
            self._ready.set()

    def _close(self) -> None:
        loop = asyncio.get_running_loop()
        if self._conn is not None:
            loop.remove_reader(self._conn.fileno())
        if self.process is not None and not self._exited.is_set():
            return
        if self.process is not None:
            loop.remove_reader(self.process.sentinel)
        self._closed.set()
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(BenchError(f"the {self.mode} bot process exited"))
        self._waiters.clear()

    async def wait_done(self, update_id: int, timeout: float) -> float:  # noqa: ASYNC109
        """Unix time at which the bot finished ``update_id``."""
        done = self._done.get(update_id)
        if done is None:
            if self._closed.is_set():
                raise BenchError(f"the {self.mode} bot process exited:\n{self.log_tail()}")
            waiter: asyncio.Future[_Done] = asyncio.get_running_loop().create_future()
            self._waiters[update_id] = waiter
            try:
                done = await asyncio.wait_for(waiter, timeout)
            except TimeoutError:
                raise BenchError(
                    f"the {self.mode} bot did not finish update {update_id} within {timeout:.0f}s"
                ) from None
            finally:
                self._waiters.pop(update_id, None)
        if not done.ok:
            raise BenchError(
                f"the {self.mode} bot failed on update {update_id}:\n{self.log_tail()}"
            )
        return done.at

    def rss_kb(self) -> dict[str, int]:
        return proc_status(self.pid)

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.pid)

    async def stop(self) -> int | None:
        """Stop polling cleanly; kill the process (by its pid) if it does not exit in time."""
        process = self.process
        if process is None:
            return None
        if not self._exited.is_set() and self._conn is not None:
            with contextlib.suppress(OSError, ValueError):
                self._conn.send_bytes(b"stop")
            try:
                await asyncio.wait_for(self._exited.wait(), STOP_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await asyncio.wait_for(self._exited.wait(), STOP_TIMEOUT)
        process.join(timeout=5)
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        return process.exitcode

    async def kill(self) -> int | None:
        """``kill -9`` (SIGKILL to its pid): no shutdown code runs, its connections drop."""
        process = self.process
        if process is None:
            return None
        if not self._exited.is_set():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            await asyncio.wait_for(self._exited.wait(), STOP_TIMEOUT)
        process.join(timeout=5)
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        return process.exitcode

    def error_lines(self) -> list[str]:
        """The bot's ERROR log lines (scrubbed by the bot's own logging)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        return [line[:300] for line in text.splitlines() if " ERROR " in line]

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class ProbedUser(SimulatedUser):
    """A simulated user whose every update waits until the bot process finished it."""

    def __init__(
        self,
        server: FakeTelegramServer,
        bot: BotProcess,
        user_id: int,
        *,
        steps: list[Step],
        timeout: float,
        language_code: str | None = "ru",
        think: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(
            server, user_id=user_id, language_code=language_code, timeout=timeout, wait=False
        )
        self.bot = bot
        self.steps = steps
        self.think = think
        self._rng = random.Random(user_id)

    async def _deliver(self, update: JsonDict) -> int:
        if self.think is not None:
            # A person reads the screen and thinks before pressing.
            await asyncio.sleep(self._rng.uniform(*self.think))
        message = update.get("message")
        callback = update.get("callback_query")
        pushed_at = self.server.now()
        update_id = self.server.push_update(update)
        self.last_update_id = update_id
        step = Step(update_id, self.user_id, "message" if message else "callback", pushed_at)
        if isinstance(message, dict):
            step.payload = str(message.get("text") or "")
            step.entities = message.get("entities")
        elif isinstance(callback, dict):
            step.payload = str(callback.get("data") or "")
        step.done_at = await self.bot.wait_done(update_id, self.timeout)
        self.steps.append(step)
        return update_id

    async def replay(self, step: Step) -> None:
        """Send an update shaped like ``step`` (same kind and payload) to any bot."""
        if step.kind == "message":
            await self.send_text(step.payload, entities=step.entities)
            return
        target = self.last_bot_message()
        await self.press_data(step.payload, target.message_id if target else 1)


@dataclass(slots=True)
class Answers:
    """The bot's answering calls per chat, in arrival order (from ``server.calls``)."""

    by_chat: dict[int, list[tuple[float, str]]] = field(default_factory=dict)

    @classmethod
    def collect(cls, server: FakeTelegramServer, methods: frozenset[str]) -> Answers:
        found = cls()
        for call in server.calls:
            if call.chat_id is not None and call.method.lower() in methods:
                found.by_chat.setdefault(call.chat_id, []).append((call.at, call.method))
        for calls in found.by_chat.values():
            calls.sort()
        return found

    def latencies(self, steps: list[Step]) -> tuple[list[float], int]:
        """Push -> first answering call in the same chat, per step; and unanswered steps."""
        by_chat: dict[int, list[Step]] = {}
        for step in steps:
            by_chat.setdefault(step.chat_id, []).append(step)
        found: list[float] = []
        missing = 0
        for chat_id, chat_steps in by_chat.items():
            calls = self.by_chat.get(chat_id, [])
            chat_steps.sort(key=lambda s: s.pushed_at)
            index = 0
            for position, step in enumerate(chat_steps):
                following = (
                    chat_steps[position + 1].pushed_at
                    if position + 1 < len(chat_steps)
                    else float("inf")
                )
                while index < len(calls) and calls[index][0] < step.pushed_at:
                    index += 1
                if index < len(calls) and calls[index][0] < following:
                    found.append(calls[index][0] - step.pushed_at)
                else:
                    missing += 1
        return found, missing

    def first_after(self, chat_id: int, since: float, method: str | None = None) -> float | None:
        for at, name in self.by_chat.get(chat_id, []):
            if at >= since and (method is None or name.lower() == method.lower()):
                return at
        return None
