"""Update-level middlewares: one transaction per update, and the user behind it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.dispatcher.middlewares.user_context import EVENT_CONTEXT_KEY, EventContext
from aiogram.types import CallbackQuery, Chat, Message, TelegramObject, Update
from aiogram.types import User as TelegramUser
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cases.service import CaseService
from bot.i18n import staff_language
from storage.crypto import KeyRing
from storage.repositories import CaseRepository, UserRepository
from storage.unit_of_work import update_scope

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

#: Key of the connection an update already holds (bot/replicas.py), for its session.
UPDATE_CONNECTION = "update_connection"


class ChatSerializer(BaseMiddleware):
    """One update at a time per (chat, user), from the first read to the commit.

    Replaces aiogram's event isolation, which lives inside its FSM middleware:
    that lock would be released before ``DatabaseMiddleware`` commits, so the
    next update of the same chat could read the draft as it was before. Here
    the lock encloses the whole transaction, and the FSM state is read inside
    it (one transaction and one read of the draft per update, see
    docs/performance.md). Locks are dropped when nobody holds or awaits them.
    """

    def __init__(self) -> None:
        self._locks: dict[tuple[int | None, int | None], tuple[asyncio.Lock, int]] = {}

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        context: EventContext | None = data.get(EVENT_CONTEXT_KEY)
        if context is None or (context.chat_id is None and context.user_id is None):
            return await handler(event, data)
        key = (context.chat_id, context.user_id)
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                return await handler(event, data)
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    @property
    def held(self) -> int:
        """Chats with an update in progress or waiting (for tests)."""
        return len(self._locks)


class DatabaseMiddleware(BaseMiddleware):
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        keyring: KeyRing,
        *,
        self_assign: bool = True,
        retention_days: int = 180,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.keyring = keyring
        self.self_assign = self_assign
        self.retention_days = retention_days

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        async with update_scope(self.sessionmaker, data.get(UPDATE_CONNECTION)) as session:
            data["session"] = session
            data["users"] = UserRepository(session, self.keyring)
            data["cases"] = CaseRepository(session, self.keyring)
            data["case_service"] = CaseService(
                session,
                self.keyring,
                self_assign=self.self_assign,
                retention_days=self.retention_days,
            )
            return await handler(event, data)


class UserMiddleware(BaseMiddleware):
    """Finds (or on first contact creates) the user row, through the blind index.

    Only private chats are served: the bot never works in groups, where other
    members would see what is said.
    """

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        sender: TelegramUser | None = data.get("event_from_user")
        chat: Chat | None = data.get("event_chat")
        if sender is None or chat is None or chat.type != "private" or sender.is_bot:
            return None
        users: UserRepository = data["users"]
        user = await users.ensure(sender.id, chat.id)
        if user.banned:
            return await _neutral_reply(event)
        if user.role is not None and user.language is None:
            # Staff named in the settings: their Telegram app's language, until /language.
            user.language = staff_language(sender.language_code)
        data["user"] = user
        return await handler(event, data)


async def _neutral_reply(event: TelegramObject) -> None:
    """What a banned user gets: a polite nothing, and nothing of theirs is stored."""
    inner = event.event if isinstance(event, Update) else event
    if isinstance(inner, CallbackQuery):
        await inner.answer()
    elif isinstance(inner, Message):
        await inner.answer(NEUTRAL_REPLY)


NEUTRAL_REPLY = "🙏"
