"""Several bot processes on one PostgreSQL database: what replaces in-memory state.

With SQLite one process serves everything and ``ChatSerializer`` and
``UpdateDeduplicator`` keep their state in memory. With PostgreSQL any replica
may get any update, so the same two guarantees come from the database, at the
start of each update's transaction:

* an advisory lock on a keyed hash of the (chat, user): an update waits
  until the previous update of that chat, on whichever replica, has ended,
  and then reads the draft as it was left;
* a row in ``handled_updates``, written first in the update's transaction: a
  redelivered update (Telegram sends it again after a timeout or a 5xx) finds
  it and is dropped; a failed update rolled its row back, so its redelivery
  is handled;
* flood control counts each person's updates in ``abuse_counters`` (kind ``flood``).

The global breaker and the daily limits count cases in the database already.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiogram import BaseMiddleware
from aiogram.dispatcher.middlewares.user_context import EVENT_CONTEXT_KEY, EventContext
from aiogram.types import TelegramObject, Update
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from bot.flood import FloodControl
from bot.middlewares import UPDATE_CONNECTION
from bot.webhook_reply import answer_dropped_press
from storage import counters
from storage.crypto import KeyRing
from storage.models import HandledUpdate, utcnow

log = logging.getLogger("intake.replicas")

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

FLOOD_KIND = "flood"

#: Telegram stops redelivering an update after 24 hours.
HANDLED_UPDATES_KEPT = timedelta(days=2)


def chat_lock_key(keyring: KeyRing, chat_id: int | None, user_id: int | None) -> int:
    """A signed 64-bit advisory lock key; keyed, so it names no Telegram id."""
    digest = keyring.blind_index("chat-lock", f"{chat_id}:{user_id}")
    return int.from_bytes(digest[:8], "big", signed=True)


async def autocommit(conn: AsyncConnection, sql: str, *args: Any) -> Any:
    """One statement straight to asyncpg, outside any transaction; its single value.

    For the per-update statements that need no transaction of their own (the
    chat's lock and unlock, the flood count): through SQLAlchemy each would also
    cost a ``BEGIN`` and a ``COMMIT``, about 0.4 ms of CPU apiece per update
    (docs/performance.md). ``conn`` must not be inside a transaction.
    """
    raw = await conn.get_raw_connection()
    return await raw.driver_connection.fetchval(sql, *args)  # type: ignore[union-attr]


class UpdateConnection(BaseMiddleware):
    """One pooled connection for the whole update: the flood count, the chat's
    lock and the update's transaction all run on it (``DatabaseMiddleware``
    binds its session to it), so an update holds one connection, not two."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        async with self.engine.connect() as conn:
            data[UPDATE_CONNECTION] = conn
            return await handler(event, data)


class SharedChatLock(BaseMiddleware):
    """In place of ``ChatSerializer``: the chat's lock in PostgreSQL, for the whole update.

    A session-level advisory lock on the update's connection, taken before its
    transaction opens and released after the update ends: a lock inside the
    transaction would be released by ``commit_now``, which commits before an
    irreversible step, and let the chat's next update in before this one ends.
    If the process dies, PostgreSQL drops the connection and the lock with it.
    """

    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        context: EventContext | None = data.get(EVENT_CONTEXT_KEY)
        if context is None or (context.chat_id is None and context.user_id is None):
            return await handler(event, data)
        key = chat_lock_key(self.keyring, context.chat_id, context.user_id)
        conn: AsyncConnection = data[UPDATE_CONNECTION]
        await autocommit(conn, "SELECT pg_advisory_lock($1)", key)
        try:
            return await handler(event, data)
        finally:
            try:
                await autocommit(conn, "SELECT pg_advisory_unlock($1)", key)
            except Exception:
                # Unsure whether it still holds the lock: never back to the pool.
                await conn.invalidate()
                raise


class SharedDeduplicator(BaseMiddleware):
    """In place of ``UpdateDeduplicator``: the update's row, in its own transaction."""

    def __init__(self, clock: Callable[[], datetime] = utcnow) -> None:
        self.clock = clock

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        session: AsyncSession = data["session"]
        first = await session.scalar(
            insert(HandledUpdate)
            .values(update_id=event.update_id, handled_at=self.clock())
            .on_conflict_do_nothing(index_elements=[HandledUpdate.update_id])
            .returning(HandledUpdate.update_id)
        )
        if first is None:
            log.info("dropped a redelivered update")
            answer_dropped_press(event)
            return None
        return await handler(event, data)


#: ``storage.counters.add`` for one flood count, as one statement for ``autocommit``.
FLOOD_COUNT = """
INSERT INTO abuse_counters (kind, key_index, window_start, expires_at, amount)
VALUES ($1, $2, $3, $4, 1)
ON CONFLICT (kind, key_index, window_start)
DO UPDATE SET amount = abuse_counters.amount + 1
RETURNING amount
"""


class SharedFloodControl(FloodControl):
    """Flood control counted in PostgreSQL, so that a person's updates spread over
    replicas are counted together.

    A fixed window (the in-memory control slides): one atomic upsert per update,
    on the update's connection before the chat's lock (so that the updates past
    the limit are dropped without queueing for it), returns the count so far;
    the update past the limit gets the one warning, later ones silence, until
    the next window. The rows are ``abuse_counters`` rows of kind ``flood``.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        keyring: KeyRing,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # Wall-clock seconds: the windows must be the same in every process.
        super().__init__(limit, window, clock)
        self.engine = engine
        self.keyring = keyring

    async def verdict(self, user_id: int, data: dict[str, Any] | None = None) -> bool | None:
        now = datetime.fromtimestamp(self.clock(), tz=UTC)
        window = timedelta(seconds=self.window)
        start = counters.window_start(now, window)
        key = self.keyring.blind_index(FLOOD_KIND, user_id)
        params = (FLOOD_KIND, key, start, start + window)
        conn: AsyncConnection | None = (data or {}).get(UPDATE_CONNECTION)
        if conn is not None:
            count = await autocommit(conn, FLOOD_COUNT, *params)
        else:
            async with self.engine.connect() as own:
                count = await autocommit(own, FLOOD_COUNT, *params)
        if count <= self.limit:
            return True
        return None if count == self.limit + 1 else False


async def forget_handled_updates(
    sessionmaker: async_sessionmaker[AsyncSession], now: datetime | None = None
) -> int:
    """Delete the rows of updates older than Telegram would redeliver.

    Flood counters are ``abuse_counters`` rows, expired with the others
    (``bot/intake/limits.py`` ``sweep_expired``).
    """
    now = now or utcnow()
    async with sessionmaker.begin() as session:
        result = await session.execute(
            delete(HandledUpdate).where(HandledUpdate.handled_at < now - HANDLED_UPDATES_KEPT)
        )
    return int(getattr(result, "rowcount", 0) or 0)
