"""Case views in staff chats: recorded when sent, deleted when due, at /lock and on revoke.

Every message that carries case content to a staff member (the parts of
``/case``, evidence files, relayed reporter replies, the notes and questions
they typed) gets a row: whose chat (the user, whose chat id is sealed on their
row), the message id and when it is due. Rows are claimed by deleting them
(``DELETE ... RETURNING``, the candidates picked ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL; SQLite runs one writer at a time), so several processes never
delete the same message twice and never wait for each other. Telegram lets a
bot delete messages for 48 hours; the default 30 minutes is well inside.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.crypto import KeyRing
from storage.models import StaffPin, StaffView, User, utcnow
from storage.repositories import UserRepository

log = logging.getLogger("intake.staff_views")

CLAIM_BATCH = 500
DELETE_BATCH = 100  # deleteMessages takes at most 100 ids


def record_view(
    session: AsyncSession, user_id: uuid.UUID, message_ids: Iterable[int], due_at: datetime
) -> None:
    """Remember messages to delete from ``user_id``'s chat at ``due_at`` (caller's transaction)."""
    for message_id in message_ids:
        session.add(StaffView(user_id=user_id, message_id=message_id, due_at=due_at))


async def claim_for_user(session: AsyncSession, user_id: uuid.UUID) -> list[int]:
    """Take every recorded view of one person off the table; returns the message ids."""
    result = await session.execute(
        delete(StaffView).where(StaffView.user_id == user_id).returning(StaffView.message_id)
    )
    return [int(message_id) for (message_id,) in result.all()]


async def claim_due(session: AsyncSession, now: datetime) -> list[tuple[uuid.UUID, int]]:
    """Take the views that are due: past their time, or in the chat of someone now locked."""
    candidates = (
        select(StaffView.id)
        .outerjoin(StaffPin, StaffPin.user_id == StaffView.user_id)
        .where(
            or_(
                StaffView.due_at <= now,
                StaffPin.unlocked_until.is_(None),
                StaffPin.unlocked_until <= now,
                StaffPin.suspended.is_not(None),
            )
        )
        .limit(CLAIM_BATCH)
        .with_for_update(skip_locked=True, of=StaffView)
    )
    ids = list((await session.scalars(candidates)).all())
    if not ids:
        return []
    result = await session.execute(
        delete(StaffView)
        .where(StaffView.id.in_(ids))
        .returning(StaffView.user_id, StaffView.message_id)
    )
    return [(user_id, int(message_id)) for user_id, message_id in result.all()]


async def delete_from_chat(bot: Bot, chat_id: int, message_ids: Sequence[int]) -> list[int]:
    """Delete what the bot still can; returns the ids to try again (Telegram unreachable).

    What is gone already or too old (a 400 from Telegram) is not tried again.
    """
    retry: list[int] = []
    for start in range(0, len(message_ids), DELETE_BATCH):
        batch = list(message_ids[start : start + DELETE_BATCH])
        try:
            await bot.delete_messages(chat_id, batch)
        except TelegramBadRequest as exc:
            log.warning("could not delete staff views: %s", type(exc).__name__)
        except (TelegramAPIError, OSError, TimeoutError) as exc:
            log.warning("staff views left for the next pass: %s", type(exc).__name__)
            retry.extend(batch)
    return retry


async def wipe_user(
    session: AsyncSession, keyring: KeyRing, bot: Bot, user: User, *, commit: bool = True
) -> int:
    """Delete every recorded case view from ``user``'s chat now (/lock, lock-out, revoke)."""
    message_ids = await claim_for_user(session, user.id)
    if commit:
        await session.commit()
    if message_ids:
        chat_id = UserRepository(session, keyring).chat_id(user)
        retry = await delete_from_chat(bot, chat_id, message_ids)
        if retry:  # the sweeper takes them at its next pass
            record_view(session, user.id, retry, utcnow())
            if commit:
                await session.commit()
    return len(message_ids)


async def wipe_due(
    sessionmaker: async_sessionmaker[AsyncSession], keyring: KeyRing, bot: Bot, now: datetime
) -> int:
    """One pass of the background job; returns how many messages it deleted."""
    total = 0
    while True:
        async with sessionmaker.begin() as session:
            claimed = await claim_due(session, now)
            by_user: dict[uuid.UUID, list[int]] = defaultdict(list)
            for user_id, message_id in claimed:
                by_user[user_id].append(message_id)
            chats: dict[uuid.UUID, int] = {}
            users = UserRepository(session, keyring)
            for user_id in by_user:
                user = await session.get(User, user_id)
                if user is not None:
                    chats[user_id] = users.chat_id(user)
        retry: dict[uuid.UUID, list[int]] = {}
        for user_id, message_ids in by_user.items():
            if user_id in chats:
                retry[user_id] = await delete_from_chat(bot, chats[user_id], message_ids)
        if any(retry.values()):
            async with sessionmaker.begin() as session:
                for user_id, message_ids in retry.items():
                    record_view(session, user_id, message_ids, now)
            break  # Telegram is unreachable: the next pass tries again
        total += len(claimed)
        if len(claimed) < CLAIM_BATCH:
            break
    if total:
        log.info("staff views: %d messages deleted", total)
    return total
