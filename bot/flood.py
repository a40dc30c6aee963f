"""Protection against floods and redelivered updates.

* ``UpdateDeduplicator`` drops an update whose id was already handled (a
  webhook redelivery after a timeout must not create anything twice); an
  update that failed is forgotten, so that its redelivery is handled.
* ``FloodControl`` allows each user ``limit`` updates per ``window`` seconds;
  past that, one short warning, then silence until the window has passed.

Both keep their state in memory only, keyed by update or Telegram user id,
and never log those ids. With PostgreSQL, ``bot/replicas.py`` replaces the
deduplicator (several processes share the database).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import TelegramObject, Update
from aiogram.types import User as TelegramUser

from bot.webhook_reply import answer_dropped_press

log = logging.getLogger("intake.flood")

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

# Sent before the user's language is looked up, so in both languages.
SLOW_DOWN = (
    "Лутфан, каме оҳистатар: паёмҳо хеле зуд меоянд.\n"
    "Пожалуйста, помедленнее: сообщения приходят слишком часто."
)


class UpdateDeduplicator(BaseMiddleware):
    def __init__(self, capacity: int = 50_000) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[int, None] = OrderedDict()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        if event.update_id in self._seen:
            log.info("dropped a redelivered update")
            answer_dropped_press(event)
            return None
        self._seen[event.update_id] = None
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        try:
            return await handler(event, data)
        except BaseException:
            # Failed and rolled back: its redelivery must be handled, not dropped.
            self._seen.pop(event.update_id, None)
            raise


class FloodControl(BaseMiddleware):
    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._hits: dict[int, deque[float]] = {}
        self._warned: set[int] = set()

    def allow(self, user_id: int) -> bool | None:
        """True to handle; False to drop silently; None to drop after one warning."""
        now = self.clock()
        hits = self._hits.setdefault(user_id, deque())
        while hits and now - hits[0] > self.window:
            hits.popleft()
        if len(hits) < self.limit:
            hits.append(now)
            self._warned.discard(user_id)
            return True
        if user_id in self._warned:
            return False
        self._warned.add(user_id)
        return None

    def _forget_idle(self) -> None:
        if len(self._hits) > 100_000:
            now = self.clock()
            self._hits = {u: h for u, h in self._hits.items() if h and now - h[-1] <= self.window}

    async def verdict(self, user_id: int, data: dict[str, Any] | None = None) -> bool | None:
        """As ``allow``; replicas count in the database instead (``bot/replicas.py``),
        on the update's connection from ``data``."""
        verdict = self.allow(user_id)
        self._forget_idle()
        return verdict

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        sender: TelegramUser | None = data.get("event_from_user")
        if sender is None or self.limit <= 0:
            return await handler(event, data)
        verdict = await self.verdict(sender.id, data)
        if verdict:
            return await handler(event, data)
        if verdict is None:
            log.warning(
                "flood control: a user exceeded %d updates in %.0fs", self.limit, self.window
            )
            bot: Bot | None = data.get("bot")
            chat = data.get("event_chat")
            if bot is not None and chat is not None and chat.type == "private":
                with contextlib.suppress(TelegramAPIError):
                    await bot.send_message(chat.id, SLOW_DOWN)
        return None
