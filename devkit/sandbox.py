"""The real bot against the in-process Telegram emulator.

Used by the end-to-end tests, the benchmarks and ``make demo``: the genuine
Dispatcher, middlewares, handlers, encrypted storage and outbox, with only
Telegram replaced by :class:`~devkit.emulator.FakeTelegramServer`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from aiogram import Bot, Dispatcher
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.factory import create_bot, create_dispatcher
from bot.outbox import OutboxPolicy
from bot.staff_lock.lock import StaffLock
from bot.staff_lock.pin import PinHasher
from devkit.emulator import FakeTelegramServer, SimulatedUser
from storage.crypto import KeyRing
from storage.models import utcnow
from storage.repositories import UserRepository

FAST_OUTBOX = OutboxPolicy(
    base_backoff=0.05,
    max_backoff=0.5,
    lease=5.0,
    global_rate=1000.0,
    per_chat_interval=0.0,
    poll_interval=0.05,
)


#: The PIN ``give_pin`` sets unless told otherwise.
SANDBOX_PIN = "271828"


class Sandbox:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        keyring: KeyRing,
        database_url: str,
        server: FakeTelegramServer | None = None,
        outbox_policy: OutboxPolicy | None = FAST_OUTBOX,
        handle_as_tasks: bool = False,
        pin_hasher: PinHasher | None = None,
        clock: Callable[[], datetime] = utcnow,
        **settings: Any,
    ) -> None:
        self.pin_hasher = pin_hasher or PinHasher()
        self.clock = clock
        self.server = server or FakeTelegramServer()
        self.sessionmaker = sessionmaker
        self.keyring = keyring
        self.database_url = database_url
        self.outbox_policy = outbox_policy
        self.handle_as_tasks = handle_as_tasks
        # Scripted users answer far faster than people; flood control is
        # exercised by its own tests with explicit limits.
        settings.setdefault("rate_limit", 0)
        self.settings_overrides = settings
        self.bot: Bot | None = None
        self.dispatcher: Dispatcher | None = None
        self._polling: asyncio.Task[None] | None = None

    def settings(self) -> Settings:
        return Settings(
            bot_token=SecretStr(self.server.token),
            telegram_api_url=self.server.url,
            database_url=self.database_url,
            **self.settings_overrides,
        )

    async def start(self) -> None:
        if not self.server.running:
            await self.server.start()
        settings = self.settings()
        self.bot = create_bot(settings)
        self.dispatcher = create_dispatcher(
            settings,
            self.sessionmaker,
            self.keyring,
            outbox_policy=self.outbox_policy,
            pin_hasher=self.pin_hasher,
            clock=self.clock,
        )
        started = asyncio.Event()
        self.dispatcher.startup.register(started.set)
        self._polling = asyncio.create_task(
            self.dispatcher.start_polling(
                self.bot,
                handle_as_tasks=self.handle_as_tasks,
                handle_signals=False,
                close_bot_session=True,
                polling_timeout=1,
            )
        )
        await asyncio.wait_for(started.wait(), timeout=10)

    async def stop_bot(self) -> None:
        """Stop the bot process (polling, outbox, sweeper); the server stays up."""
        if self.dispatcher is not None and self._polling is not None:
            with contextlib.suppress(RuntimeError):
                await self.dispatcher.stop_polling()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._polling, timeout=10)
        self._polling = None
        self.dispatcher = None
        self.bot = None

    async def restart(self) -> None:
        await self.stop_bot()
        await self.start()

    async def stop(self) -> None:
        await self.stop_bot()
        await self.server.stop()

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def give_pin(self, telegram_id: int, pin: str = SANDBOX_PIN) -> None:
        """Set a staff member's PIN and open their lock, as if they had typed it.

        For tests and tools about something else than the lock; the lock's own
        tests choose and enter PINs through the chat.
        """
        async with self.sessionmaker.begin() as session:
            user = await UserRepository(session, self.keyring).by_telegram_id(telegram_id)
            assert user is not None, "give_pin: no such user"
            lock = StaffLock(
                session,
                self.keyring,
                self.pin_hasher,
                self.clock,
                timedelta(minutes=self.settings().staff_unlock_minutes),
            )
            row = await lock.row(user)
            row.pin_hash = await lock.hash_pin(row, pin)
            row.stage = None
            row.unlocked_until = self.clock() + lock.unlock_for

    def user(self, user_id: int, **kwargs: Any) -> SimulatedUser:
        return SandboxUser(self, user_id=user_id, **kwargs)

    async def outbox_idle(self, patience: float = 5.0) -> bool:
        """Wait until no notification is due to be sent (False after ``patience`` s).

        Notifications go out from a background worker; a person reads them
        before they act next, and so do the scripted users.
        """
        from sqlalchemy import func, or_, select

        from storage.models import OutboxMessage, utcnow

        deadline = asyncio.get_running_loop().time() + patience
        while True:
            async with self.sessionmaker() as session:
                waiting = await session.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(
                        # A row being sent has a lease in the future: it is in
                        # flight, not idle, so it counts whatever its time.
                        or_(
                            (OutboxMessage.state == "pending")
                            & (OutboxMessage.next_attempt_at <= utcnow()),
                            OutboxMessage.state == "sending",
                        )
                    )
                )
            if not waiting:
                return True
            if asyncio.get_running_loop().time() > deadline:
                return False
            if self.dispatcher is not None:
                background = self.dispatcher.workflow_data.get("background")
                if background is not None:
                    background.wake_outbox()
            await asyncio.sleep(0.01)


class SandboxUser(SimulatedUser):
    """A simulated user who, like a person, sees pending notifications before acting."""

    def __init__(self, sandbox: Sandbox, **kwargs: Any) -> None:
        super().__init__(sandbox.server, **kwargs)
        self._sandbox = sandbox

    async def _deliver(self, update: dict[str, Any]) -> int:
        if self._sandbox.dispatcher is not None:
            await self._sandbox.outbox_idle()
        update_id = await super()._deliver(update)
        if self.wait and self._sandbox.dispatcher is not None:
            await self._sandbox.outbox_idle()
        return update_id
