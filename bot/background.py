"""Work done beside the updates: the outbox worker and the draft sweeper.

Started and stopped with the Dispatcher (its startup and shutdown hooks), in
the same process by default. The command menus belong to the handlers; the
composition root (bot/factory.py) hands them in as :class:`CommandMenus`, so
that the core never imports handlers/.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.utils.i18n import I18n
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.cases.staff import ensure_coordinators
from bot.config import Settings
from bot.i18n import reading_language
from bot.intake.limits import sweep_expired
from bot.notifications import Role
from bot.outbox import OutboxPolicy, OutboxWorker
from bot.replicas import forget_handled_updates
from bot.retention import run_retention
from bot.staff_lock.views import wipe_due
from bot.sweeper import DraftSweeper
from storage.crypto import KeyRing
from storage.db import advisory_lock
from storage.fsm import EncryptedFSMStorage
from storage.models import utcnow
from storage.repositories import UserRepository

log = logging.getLogger("intake.background")

RETENTION_INTERVAL = 6 * 3600.0  # the job is idempotent; running it often is harmless
# Case views in staff chats are deleted at most this late after they are due.
STAFF_VIEW_INTERVAL = 30.0
HANDLED_UPDATES_INTERVAL = 3600.0
#: How long shutdown waits for the outbox's send in progress to be recorded.
OUTBOX_STOP_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class CommandMenus:
    """How the command menus are set at start (the handlers own their menus)."""

    #: The menus everyone sees in a private chat: ``(bot, i18n)``.
    set_default: Callable[[Bot, I18n], Awaitable[None]]
    #: One staff member's menu: ``(bot, i18n, chat_id, role, language)``.
    set_staff: Callable[[Bot, I18n, int, str, str], Awaitable[None]]


class BackgroundTasks:
    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        keyring: KeyRing,
        i18n: I18n,
        storage: EncryptedFSMStorage,
        menus: CommandMenus,
        outbox_policy: OutboxPolicy | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.clock = clock
        self.bot: Bot | None = None
        self.settings = settings
        self.menus = menus
        self.sessionmaker = sessionmaker
        self.keyring = keyring
        self.i18n = i18n
        self.storage = storage
        self.outbox_policy = outbox_policy
        self.outbox: OutboxWorker | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._outbox_task: asyncio.Task[None] | None = None

    async def on_startup(self, bot: Bot) -> None:
        engine: AsyncEngine = self.sessionmaker.kw["bind"]
        # Replicas starting together would each create the same coordinators.
        async with (
            advisory_lock(engine, "coordinators", wait=True),
            self.sessionmaker.begin() as session,
        ):
            coordinators = await ensure_coordinators(
                UserRepository(session, self.keyring), self.settings.coordinator_ids
            )
            languages = {
                user.id: reading_language(user.language, user.role) for user in coordinators
            }
        await self.menus.set_default(bot, self.i18n)
        for telegram_id, user in zip(
            sorted(self.settings.coordinator_ids), coordinators, strict=True
        ):
            with contextlib.suppress(TelegramAPIError):
                await self.menus.set_staff(
                    bot, self.i18n, telegram_id, Role.COORDINATOR.value, languages[user.id]
                )
        self.outbox = OutboxWorker(
            self.sessionmaker,
            self.keyring,
            bot,
            lambda msgid, locale: self.i18n.gettext(msgid, locale=locale or None),
            self.outbox_policy,
            clock=self.clock,
            staff_view_ttl=timedelta(minutes=self.settings.staff_view_ttl_minutes),
        )
        self.bot = bot
        sweeper = DraftSweeper(
            self.storage,
            timedelta(minutes=self.settings.wipe_idle_minutes),
            wipe_chat=self.settings.wipe_chat,
        )
        jobs: dict[str, tuple[float, Callable[[], Awaitable[object]]]] = {
            "sweeper": (self.settings.sweep_interval_seconds, lambda: sweeper.sweep_once(bot)),
            "retention": (
                RETENTION_INTERVAL,
                lambda: run_retention(
                    self.sessionmaker,
                    self.keyring,
                    timedelta(days=self.settings.retention_days),
                ),
            ),
            "abuse-counters": (
                self.settings.sweep_interval_seconds,
                lambda: sweep_expired(self.sessionmaker),
            ),
            "staff-views": (STAFF_VIEW_INTERVAL, self.wipe_staff_views),
        }
        if engine.dialect.name == "postgresql":
            jobs["handled-updates"] = (
                HANDLED_UPDATES_INTERVAL,
                lambda: forget_handled_updates(self.sessionmaker),
            )
        # The outbox claims rows with a conditional UPDATE and a lease, so every
        # replica runs it; each other job runs in one replica at a time.
        self._outbox_task = asyncio.create_task(self.outbox.run_forever(), name="outbox")
        self._tasks = [self._outbox_task]
        self._tasks += [
            asyncio.create_task(_every(seconds, alone(engine, name, job)), name=name)
            for name, (seconds, job) in jobs.items()
        ]

    async def on_shutdown(self) -> None:
        outbox_task, self._outbox_task = self._outbox_task, None
        if self.outbox is not None and outbox_task is not None and not outbox_task.done():
            # A notice cut off between Telegram and its row would go out twice.
            self.outbox.request_stop()
            with contextlib.suppress(TimeoutError):
                # Shielded: on a timeout the task is cancelled below, not here.
                await asyncio.wait_for(asyncio.shield(outbox_task), OUTBOX_STOP_SECONDS)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def wipe_staff_views(self) -> int:
        """Delete the case views that are due from staff chats (also called by tests)."""
        if self.bot is None:
            return 0
        return await wipe_due(self.sessionmaker, self.keyring, self.bot, self.clock())

    def wake_outbox(self) -> None:
        if self.outbox is not None:
            self.outbox.wakeup.set()


def alone(
    engine: AsyncEngine, name: str, job: Callable[[], Awaitable[object]]
) -> Callable[[], Awaitable[object]]:
    """``job``, skipped this time when another replica is running it (PostgreSQL)."""

    async def run() -> object:
        async with advisory_lock(engine, f"job:{name}", wait=False) as mine:
            return await job() if mine else None

    return run


async def _every(seconds: float, job: Callable[[], Awaitable[object]]) -> None:
    while True:
        try:
            await job()
        except Exception:
            log.exception("background job failed")
        await asyncio.sleep(seconds)
