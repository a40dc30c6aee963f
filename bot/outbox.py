"""The outbox worker: sends queued notifications, politely and at most once.

Rows are claimed with a conditional UPDATE (pending -> sending, with a lease),
so several workers, in one process or several, never send the same row.
Telegram's limits are respected: about 25 messages/s overall, 1/s per chat,
and a 429's ``retry_after``. A row is claimed only when it may go out within a
poll interval: a burst to one person never holds back everyone else's
notices, and no claimed row waits out a long ``retry_after`` while its lease
runs out (another worker could then send it a second time). A message that
keeps failing moves to ``dead`` after ``max_attempts`` tries, where
coordinators can see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cases.policy import Action, is_allowed
from bot.i18n import reading_language
from bot.notifications import (
    CANCELLED,
    CASE_CONTENT_NOTICES,
    DEAD,
    PENDING,
    SENDING,
    SENT,
    TO_STAFF,
    Notice,
    drop_content,
    notice_keyboard,
    outbox_context,
    render_notice,
)
from bot.staff_lock.lock import is_unlocked
from bot.staff_lock.views import record_view
from storage.crypto import DecryptionError, KeyRing, Purpose
from storage.models import OutboxMessage, User, utcnow
from storage.repositories import CaseRepository, UserRepository

log = logging.getLogger("intake.outbox")

__all__ = ["DEAD", "PENDING", "SENDING", "SENT", "OutboxPolicy", "OutboxWorker", "RateLimiter"]


@dataclass(frozen=True, slots=True)
class OutboxPolicy:
    max_attempts: int = 8
    base_backoff: float = 2.0
    max_backoff: float = 600.0
    lease: float = 60.0
    global_rate: float = 25.0
    per_chat_interval: float = 1.0
    poll_interval: float = 0.5
    batch: int = 50


class RateLimiter:
    """A global token spacing plus a per-chat minimum interval.

    Chats are named by any key; the worker uses the recipient's user id (one
    private chat per user), known before the row is opened.
    """

    def __init__(self, rate: float, per_chat_interval: float) -> None:
        self._spacing = 1.0 / rate
        self._per_chat = per_chat_interval
        self._next_global = 0.0
        self._next_for_chat: dict[Hashable, float] = {}

    def _earliest(self, chat: Hashable) -> float:
        return max(self._next_global, self._next_for_chat.get(chat, 0.0))

    def delay(self, chat: Hashable) -> float:
        """Seconds before a message to ``chat`` may go."""
        return max(0.0, self._earliest(chat) - time.monotonic())

    async def wait(self, chat: Hashable) -> None:
        now = time.monotonic()
        start = max(now, self._earliest(chat))
        self._next_global = start + self._spacing
        self._next_for_chat[chat] = start + self._per_chat
        if len(self._next_for_chat) > 10_000:
            self._next_for_chat = {c: t for c, t in self._next_for_chat.items() if t > now}
        if start > now:
            await asyncio.sleep(start - now)

    def pause(self, seconds: float) -> None:
        self._next_global = max(self._next_global, time.monotonic() + seconds)


class OutboxWorker:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        keyring: KeyRing,
        bot: Bot,
        translator: Callable[[str, str], str],
        policy: OutboxPolicy | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        staff_view_ttl: timedelta = timedelta(minutes=30),
    ) -> None:
        self.clock = clock
        self.staff_view_ttl = staff_view_ttl
        self.sessionmaker = sessionmaker
        self.keyring = keyring
        self.bot = bot
        self.translator = translator
        self.policy = policy or OutboxPolicy()
        self.limiter = RateLimiter(self.policy.global_rate, self.policy.per_chat_interval)
        self.wakeup = asyncio.Event()
        self.stopping = False

    def request_stop(self) -> None:
        """Finish the send in progress, record it, claim nothing more; ``run_forever`` returns.

        Cancelled instead, a notice that reached Telegram but not its row would
        go out a second time once the row's lease ran out.
        """
        self.stopping = True
        self.wakeup.set()

    async def run_forever(self) -> None:
        while not self.stopping:
            try:
                sent = await self.run_once()
            except Exception:
                log.exception("outbox pass failed")
                sent = 0
            if not sent:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wakeup.wait(), self.policy.poll_interval)
                self.wakeup.clear()

    async def run_once(self) -> int:
        """Send what is due now; returns how many messages were handled."""
        now = utcnow()
        async with self.sessionmaker() as session:
            due = (
                await session.execute(
                    select(OutboxMessage.id, OutboxMessage.recipient_id)
                    .where(
                        # A "sending" row whose lease ran out was claimed by a worker
                        # that died; it is due again.
                        OutboxMessage.state.in_((PENDING, SENDING)),
                        OutboxMessage.next_attempt_at <= now,
                    )
                    .order_by(OutboxMessage.created_at)
                    .limit(self.policy.batch)
                )
            ).all()
        handled = 0
        for message_id, recipient in due:
            if self.stopping:
                break
            if self.limiter.delay(recipient) > self.policy.poll_interval:
                continue  # a later pass: see the module's docstring
            if await self._claim(message_id):
                await self._deliver(message_id)
                handled += 1
        return handled

    async def _claim(self, message_id: object) -> bool:
        now = utcnow()
        async with self.sessionmaker.begin() as session:
            result = await session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == message_id,
                    OutboxMessage.state.in_((PENDING, SENDING)),
                    OutboxMessage.next_attempt_at <= now,
                )
                .values(state=SENDING, next_attempt_at=now + timedelta(seconds=self.policy.lease))
            )
        return bool(getattr(result, "rowcount", 0))

    async def _deliver(self, message_id: object) -> None:
        async with self.sessionmaker() as session:
            row = await session.get(OutboxMessage, message_id)
            if row is None:
                return
            user = await session.get(User, row.recipient_id)
            try:
                notice = Notice.from_bytes(
                    self.keyring.open(
                        Purpose.OUTBOX, row.payload_sealed, outbox_context(row.id, row.recipient_id)
                    )
                )
                if user is None:
                    raise LookupError("recipient is gone")
                chat_id = UserRepository(session, self.keyring).chat_id(user)
            except (DecryptionError, LookupError, ValueError, KeyError) as exc:
                await self._finish(session, row, DEAD, error=type(exc).__name__)
                return
            if not await self._may_receive(session, user, notice):
                # The role went, or the case moved to someone else, after the
                # notice was queued: it is withdrawn, never sent.
                row.state = CANCELLED
                drop_content(row)
                await session.commit()
                log.info(
                    "outbox: %s notice withdrawn, its recipient may not see it", notice.kind.value
                )
                return
            language = reading_language(user.language, user.role)
            if notice.kind in CASE_CONTENT_NOTICES and not await is_unlocked(
                session, user.id, self.clock()
            ):
                # A locked staff chat gets no case content.
                notice = Notice(CASE_CONTENT_NOTICES[notice.kind], reference=notice.reference)

            def translate(msgid: str) -> str:
                return self.translator(msgid, language)

            text = render_notice(notice, translate)
            await self.limiter.wait(row.recipient_id)
            try:
                sent = await self.bot.send_message(
                    chat_id, text, reply_markup=notice_keyboard(notice, translate)
                )
            except TelegramRetryAfter as exc:
                self.limiter.pause(exc.retry_after)
                await self._retry(session, row, "retry_after", delay=float(exc.retry_after))
                return
            except TelegramForbiddenError:
                await self._finish(session, row, DEAD, error="forbidden")
                return
            except (TimeoutError, TelegramAPIError, OSError) as exc:
                await self._retry(session, row, type(exc).__name__)
                return
            if notice.kind in CASE_CONTENT_NOTICES:
                due = self.clock() + self.staff_view_ttl
                record_view(session, user.id, [sent.message_id], due)
            await self._finish(session, row, SENT)
            log.info("outbox: sent %s notice", notice.kind.value)

    async def _may_receive(self, session: AsyncSession, user: User, notice: Notice) -> bool:
        if notice.kind not in TO_STAFF:
            return True
        if not notice.reference:
            return is_allowed(user, Action.MANAGE_STAFF, keyring=self.keyring)
        case = await CaseRepository(session, self.keyring).by_reference(notice.reference)
        return (
            case is not None
            and case.shredded_at is None
            and is_allowed(user, Action.RECEIVE_NOTICE, case, keyring=self.keyring)
        )

    async def _retry(
        self, session: AsyncSession, row: OutboxMessage, error: str, delay: float | None = None
    ) -> None:
        row.attempts += 1
        if row.attempts >= self.policy.max_attempts:
            await self._finish(session, row, DEAD, error=error)
            log.warning("outbox: message moved to dead letters after %d attempts", row.attempts)
            return
        backoff = min(self.policy.base_backoff * 2 ** (row.attempts - 1), self.policy.max_backoff)
        row.state = PENDING
        row.last_error = error
        row.next_attempt_at = utcnow() + timedelta(seconds=max(backoff, delay or 0.0))
        await session.commit()

    async def _finish(
        self, session: AsyncSession, row: OutboxMessage, state: str, error: str | None = None
    ) -> None:
        row.state = state
        row.last_error = error
        if state == SENT:
            row.sent_at = utcnow()
            row.attempts += 1
        # Sent or dead, the content goes: nobody reads a dead letter's text, and
        # it would outlive the case it quotes.
        drop_content(row)
        await session.commit()
