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
from datetime import timedelta

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.utils.i18n import I18n
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cases.staff import ensure_coordinators
from bot.config import Settings
from bot.i18n import reading_language
from bot.notifications import Role
from bot.outbox import OutboxPolicy, OutboxWorker
from bot.retention import run_retention
from bot.sweeper import DraftSweeper
from storage.crypto import KeyRing
from storage.fsm import EncryptedFSMStorage
from storage.repositories import UserRepository

log = logging.getLogger("intake.background")

RETENTION_INTERVAL = 6 * 3600.0  # the job is idempotent; running it often is harmless


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
    ) -> None:
        self.settings = settings
        self.menus = menus
        self.sessionmaker = sessionmaker
        self.keyring = keyring
        self.i18n = i18n
        self.storage = storage
        self.outbox_policy = outbox_policy
        self.outbox: OutboxWorker | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def on_startup(self, bot: Bot) -> None:
        async with self.sessionmaker.begin() as session:
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
        )
        sweeper = DraftSweeper(
            self.storage,
            timedelta(minutes=self.settings.wipe_idle_minutes),
            wipe_chat=self.settings.wipe_chat,
        )
        self._tasks = [
            asyncio.create_task(self.outbox.run_forever(), name="outbox"),
            asyncio.create_task(
                _every(self.settings.sweep_interval_seconds, lambda: sweeper.sweep_once(bot)),
                name="sweeper",
            ),
            asyncio.create_task(
                _every(
                    RETENTION_INTERVAL,
                    lambda: run_retention(
                        self.sessionmaker,
                        self.keyring,
                        timedelta(days=self.settings.retention_days),
                    ),
                ),
                name="retention",
            ),
        ]

    async def on_shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def wake_outbox(self) -> None:
        if self.outbox is not None:
            self.outbox.wakeup.set()


async def _every(seconds: float, job: Callable[[], Awaitable[object]]) -> None:
    while True:
        try:
            await job()
        except Exception:
            log.exception("background job failed")
        await asyncio.sleep(seconds)
