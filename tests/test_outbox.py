"""The outbox worker against the Bot API emulator, on SQLite and PostgreSQL.

The worker's ``run_once`` is driven directly with a real aiogram Bot. The rate
limiter runs on a fake clock (its sleeps only advance that clock), so nothing
here waits for real time and nothing asserts wall-clock timings.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pytest
from aiogram import Bot
from sqlalchemy import select, update

from bot import outbox as outbox_module
from bot.notifications import Notice, NoticeKind, enqueue, outbox_context, render_notice
from bot.outbox import DEAD, PENDING, SENDING, SENT, OutboxPolicy, OutboxWorker, RateLimiter
from bot.retention import shred_case
from devkit.emulator import FakeTelegramServer
from devkit.scripted_reporter import t
from storage.crypto import KeyRing, Purpose
from storage.models import Case, OutboxMessage, utcnow
from storage.repositories import CaseRepository, UserRepository
from tests.canary import new_canary
from tests.conftest import Database

TINY = OutboxPolicy(
    max_attempts=4,
    base_backoff=0.0,
    max_backoff=0.0,
    lease=60.0,
    global_rate=1000.0,
    per_chat_interval=0.0,
    poll_interval=0.01,
)


@dataclass
class FakeClock:
    """Monotonic time for the rate limiter; sleeping only moves it forward."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class _AsyncioWithFakeSleep:
    """``asyncio`` as the outbox module sees it, with ``sleep`` on the fake clock."""

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, seconds: float) -> None:
        await self._clock.sleep(seconds)


class _TimeOnFakeClock:
    def __init__(self, clock: FakeClock) -> None:
        self.monotonic = clock.monotonic


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(outbox_module, "time", _TimeOnFakeClock(fake))
    monkeypatch.setattr(outbox_module, "asyncio", _AsyncioWithFakeSleep(fake))
    return fake


@pytest.fixture
async def server() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer() as fake:
        yield fake


@pytest.fixture
async def bot(server: FakeTelegramServer) -> AsyncIterator[Bot]:
    real = server.make_bot()
    try:
        yield real
    finally:
        await real.session.close()


def _translate(msgid: str, language: str) -> str:
    return t(msgid, language or "tg")


def _worker(
    database: Database, keyring: KeyRing, bot: Bot, policy: OutboxPolicy = TINY
) -> OutboxWorker:
    return OutboxWorker(database.sessionmaker, keyring, bot, _translate, policy)


async def _queue(
    database: Database,
    keyring: KeyRing,
    server: FakeTelegramServer,
    chat_ids: list[int],
    language: str = "ru",
) -> list[uuid.UUID]:
    """One notice per chat id (repeats allowed), each in its own row; returns the row ids."""
    for chat_id in set(chat_ids):
        server.ensure_chat(chat_id)
    async with database.sessionmaker.begin() as session:
        users = UserRepository(session, keyring)
        for index, chat_id in enumerate(chat_ids):
            user = await users.ensure(chat_id, chat_id)
            user.language = language
            enqueue(session, keyring, user, _notice(index))
            await session.flush()
    async with database.sessionmaker() as session:
        rows = await session.scalars(select(OutboxMessage.id).order_by(OutboxMessage.created_at))
        return list(rows)


def _notice(index: int) -> Notice:
    return Notice(NoticeKind.LAWYER_ASSIGNED, f"K7QD-{index:04d}")  # to a reporter


async def _rows(database: Database) -> list[OutboxMessage]:
    async with database.sessionmaker() as session:
        found = await session.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at))
        return list(found)


async def _make_due(database: Database) -> None:
    """Let time pass for the database: every waiting row (or lease) is due now."""
    async with database.sessionmaker.begin() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.state.in_((PENDING, SENDING)))
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )


def _sends(server: FakeTelegramServer, chat_id: int, *, ok: bool | None = None) -> int:
    return sum(
        1
        for call in server.calls_for("sendMessage")
        if call.chat_id == chat_id and (ok is None or call.ok is ok)
    )


async def test_a_notice_is_sent_once_in_the_recipients_language(
    database: Database, keyring: KeyRing, server: FakeTelegramServer, bot: Bot, clock: FakeClock
) -> None:
    await _queue(database, keyring, server, [4001])
    worker = _worker(database, keyring, bot)
    assert await worker.run_once() == 1
    assert await worker.run_once() == 0
    assert _sends(server, 4001) == 1
    message = server.messages(4001)[-1]
    assert message.body == render_notice(_notice(0), lambda msgid: t(msgid, "ru"))
    (row,) = await _rows(database)
    assert row.state == SENT and row.sent_at is not None and row.attempts == 1


async def test_429_waits_for_retry_after_then_sends_once(
    database: Database, keyring: KeyRing, server: FakeTelegramServer, bot: Bot, clock: FakeClock
) -> None:
    await _queue(database, keyring, server, [4101])
    server.inject_fault("sendMessage", "retry_after", times=1, retry_after=7)
    worker = _worker(database, keyring, bot)
    before = utcnow()
    assert await worker.run_once() == 1
    (row,) = await _rows(database)
    assert row.state == PENDING and row.attempts == 1 and row.last_error == "retry_after"
    # Not due again before retry_after has passed, even with no backoff at all.
    assert row.next_attempt_at >= before + timedelta(seconds=7)
    assert await worker.run_once() == 0
    assert _sends(server, 4101, ok=True) == 0

    await _make_due(database)
    # Due for the database, but the limiter holds every send back for the 429's
    # retry_after, and the row is not claimed meanwhile: a claimed row waiting
    # out a retry_after longer than its lease could be sent by a second worker.
    assert await worker.run_once() == 0
    (row,) = await _rows(database)
    assert row.state == PENDING
    clock.now += 7.0
    assert await worker.run_once() == 1
    assert _sends(server, 4101, ok=True) == 1
    assert _sends(server, 4101) == 2
    (row,) = await _rows(database)
    assert row.state == SENT and row.attempts == 2
    assert await worker.run_once() == 0


async def test_server_errors_are_retried_and_sent_exactly_once(
    database: Database, keyring: KeyRing, server: FakeTelegramServer, bot: Bot, clock: FakeClock
) -> None:
    await _queue(database, keyring, server, [4201])
    server.inject_fault("sendMessage", "server_error", times=2)
    worker = _worker(database, keyring, bot)
    handled = [await worker.run_once() for _ in range(5)]
    assert handled == [1, 1, 1, 0, 0]
    assert _sends(server, 4201, ok=True) == 1
    assert _sends(server, 4201) == 3
    (row,) = await _rows(database)
    assert row.state == SENT and row.attempts == 3 and row.last_error is None


async def test_after_max_attempts_a_message_is_dead(
    database: Database, keyring: KeyRing, server: FakeTelegramServer, bot: Bot, clock: FakeClock
) -> None:
    await _queue(database, keyring, server, [4301, 4302])
    server.inject_fault("sendMessage", "server_error", times=TINY.max_attempts * 2)
    worker = _worker(database, keyring, bot)
    for _ in range(TINY.max_attempts * 3):
        if not await worker.run_once():
            break
    rows = await _rows(database)
    assert [row.state for row in rows] == [DEAD, DEAD]
    assert all(row.attempts == TINY.max_attempts for row in rows)
    assert all(row.last_error == "TelegramServerError" for row in rows)
    assert _sends(server, 4301) == TINY.max_attempts
    assert _sends(server, 4301, ok=True) == 0
    server.clear_faults()
    assert await worker.run_once() == 0  # the dead stay dead


async def test_a_blocked_chat_is_dead_at_once(
    database: Database, keyring: KeyRing, server: FakeTelegramServer, bot: Bot, clock: FakeClock
) -> None:
    await _queue(database, keyring, server, [4401])
    server.set_blocked(4401)
    worker = _worker(database, keyring, bot)
    assert await worker.run_once() == 1
    (row,) = await _rows(database)
    assert row.state == DEAD and row.last_error == "forbidden"
    assert await worker.run_once() == 0
    assert _sends(server, 4401) == 1


async def test_a_worker_stopped_after_claiming_loses_nothing(
    database: Database, keyring: KeyRing, server: FakeTelegramServer, bot: Bot, clock: FakeClock
) -> None:
    """Stopped between claiming a row and sending it: the lease runs out, a new worker sends."""
    await _queue(database, keyring, server, [4501, 4502, 4503])
    first = _worker(database, keyring, bot)
    blocked = asyncio.Event()

    async def never(chat_id: int) -> None:
        blocked.set()
        await asyncio.Event().wait()

    first.limiter.wait = never  # type: ignore[method-assign]
    task = asyncio.create_task(first.run_once())
    await asyncio.wait_for(blocked.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    states = [row.state for row in await _rows(database)]
    assert states == [SENDING, PENDING, PENDING]
    assert not server.calls_for("sendMessage")

    # A fresh worker (the restarted process) on the same database.
    second = _worker(database, keyring, bot)
    assert await second.run_once() == 2  # the claimed row waits for its lease
    assert [row.state for row in await _rows(database)] == [SENDING, SENT, SENT]
    await _make_due(database)  # the lease runs out
    assert await second.run_once() == 1
    assert await second.run_once() == 0
    assert [row.state for row in await _rows(database)] == [SENT, SENT, SENT]
    for chat_id in (4501, 4502, 4503):
        assert _sends(server, chat_id, ok=True) == 1


async def test_a_stop_lets_the_send_in_progress_finish_and_claims_nothing_more(
    database: Database, keyring: KeyRing, server: FakeTelegramServer, bot: Bot, clock: FakeClock
) -> None:
    """A notice cut off between Telegram and its row would go out again after its lease."""
    await _queue(database, keyring, server, [4551, 4552, 4553])
    worker = _worker(database, keyring, bot)
    sending, released = asyncio.Event(), asyncio.Event()

    async def held(chat_id: int) -> None:
        sending.set()
        await released.wait()

    worker.limiter.wait = held  # type: ignore[method-assign]
    task = asyncio.create_task(worker.run_forever())
    await asyncio.wait_for(sending.wait(), timeout=10)
    worker.request_stop()  # the process is shutting down while the first is on its way
    released.set()
    await asyncio.wait_for(task, timeout=10)  # run_forever returns by itself

    assert [row.state for row in await _rows(database)] == [SENT, PENDING, PENDING]
    assert _sends(server, 4551, ok=True) == 1
    assert not _sends(server, 4552) and not _sends(server, 4553)


async def test_a_restart_between_passes_sends_everything_once(
    database: Database, keyring: KeyRing, server: FakeTelegramServer, bot: Bot, clock: FakeClock
) -> None:
    chats = [4601 + index for index in range(7)]
    await _queue(database, keyring, server, chats)
    policy = replace(TINY, batch=3)
    assert await _worker(database, keyring, bot, policy).run_once() == 3
    fresh = _worker(database, keyring, bot, policy)
    while await fresh.run_once():
        pass
    assert all(row.state == SENT for row in await _rows(database))
    for chat_id in chats:
        assert _sends(server, chat_id) == 1


async def test_two_workers_at_once_never_send_a_row_twice(
    database: Database, keyring: KeyRing, server: FakeTelegramServer, bot: Bot, clock: FakeClock
) -> None:
    chats = [4700 + index % 8 for index in range(24)]  # three notices for each of 8 chats
    ids = await _queue(database, keyring, server, chats)
    other_bot = server.make_bot()
    try:
        one = _worker(database, keyring, bot)
        two = _worker(database, keyring, other_bot)
        total = 0
        for _ in range(5):
            handled = await asyncio.gather(one.run_once(), two.run_once())
            total += sum(handled)
            if not any(handled):
                break
    finally:
        await other_bot.session.close()
    assert total == len(ids)
    assert all(row.state == SENT and row.attempts == 1 for row in await _rows(database))
    for chat_id in set(chats):
        assert _sends(server, chat_id) == chats.count(chat_id)
    texts = [call.params["text"] for call in server.calls_for("sendMessage")]
    assert len(texts) == len(set(texts)) == len(ids)


async def test_a_burst_to_one_chat_does_not_hold_back_the_others(
    database: Database, keyring: KeyRing, server: FakeTelegramServer, bot: Bot, clock: FakeClock
) -> None:
    await _queue(database, keyring, server, [4601, 4601, 4601, 4602])
    worker = _worker(database, keyring, bot, replace(TINY, per_chat_interval=1.0))
    # One to each chat now; the busy chat's next two wait for later passes,
    # unclaimed, instead of making the other chat wait behind them.
    assert await worker.run_once() == 2
    assert (_sends(server, 4601), _sends(server, 4602)) == (1, 1)
    assert sum(clock.sleeps) < 1.0
    assert [row.state for row in await _rows(database)] == [SENT, PENDING, PENDING, SENT]
    assert await worker.run_once() == 0
    clock.now += 1.0
    assert await worker.run_once() == 1
    clock.now += 1.0
    assert await worker.run_once() == 1
    assert _sends(server, 4601) == 3
    assert await worker.run_once() == 0


async def test_rate_limiter_spacing_per_chat_and_overall(clock: FakeClock) -> None:
    limiter = RateLimiter(rate=10.0, per_chat_interval=1.0)
    start = clock.now
    sent: list[tuple[int, float]] = []
    for chat_id in (1, 1, 2, 1, 3, 2, 2):
        await limiter.wait(chat_id)
        sent.append((chat_id, clock.now))
    assert sent[0] == (1, start)  # the first message goes at once
    for earlier, later in itertools.pairwise(sent):
        assert later[1] - earlier[1] >= 0.1 - 1e-9  # 10 messages/s overall
    for chat_id in (1, 2):
        times = [at for chat, at in sent if chat == chat_id]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert gaps and min(gaps) >= 1.0 - 1e-9  # 1 message/s per chat
    # No idling beyond what the limits demand: 3 messages to chat 2 need 2 s after its first.
    assert clock.now - start <= 4.0

    # A 429's retry_after holds back every chat, not only the one that got it.
    limiter.pause(5.0)
    paused_at = clock.now
    await limiter.wait(99)
    assert clock.now >= paused_at + 5.0 - 1e-9


# --- content of notices that never go out (docs/threat-model.md) ------------------


def _opened(keyring: KeyRing, rows: list[OutboxMessage]) -> list[Notice]:
    """Every notice the key file still opens: what a seized server would give up."""
    return [
        Notice.from_bytes(
            keyring.open(
                Purpose.OUTBOX, row.payload_sealed, outbox_context(row.id, row.recipient_id)
            )
        )
        for row in rows
        if row.payload_sealed
    ]


async def test_a_dead_letter_keeps_no_question_or_reply_text(
    database: Database, keyring: KeyRing, server: FakeTelegramServer, bot: Bot, clock: FakeClock
) -> None:
    question = new_canary("Question")
    server.ensure_chat(4501)
    async with database.sessionmaker.begin() as session:
        user = await UserRepository(session, keyring).ensure(4501, 4501)
        enqueue(
            session, keyring, user, Notice(NoticeKind.LAWYER_QUESTION, "K7QD-0001", text=question)
        )
    server.set_blocked(4501)
    worker = _worker(database, keyring, bot)
    assert await worker.run_once() == 1
    (row,) = await _rows(database)
    assert row.state == DEAD
    assert _opened(keyring, [row]) == [], "the dead letter still holds the question"


async def test_destroying_a_case_drops_the_notices_still_queued_about_it(
    database: Database, keyring: KeyRing
) -> None:
    question, other = new_canary("Question"), new_canary("Other")
    async with database.sessionmaker.begin() as session:
        reporter = await UserRepository(session, keyring).ensure(4601, 4601)
        cases = CaseRepository(session, keyring)
        made = [
            await cases.create(
                answers={},
                urgent=False,
                questionnaire_version="test",
                stats_consent=False,
                contact_consent=True,
                reporter_index=reporter.tg_index,
                reporter_chat_id=4601,
            )
            for _ in range(2)
        ]
        doomed, kept = made
        enqueue(
            session,
            keyring,
            reporter,
            Notice(NoticeKind.LAWYER_QUESTION, doomed.reference, text=question),
        )
        enqueue(
            session,
            keyring,
            reporter,
            Notice(NoticeKind.LAWYER_QUESTION, kept.reference, text=other),
        )
    async with database.sessionmaker.begin() as session:
        case = await session.get(Case, doomed.id)
        assert case is not None
        assert await shred_case(session, keyring, case, reason="case_withdraw")
    texts = [notice.text for notice in _opened(keyring, await _rows(database))]
    assert texts == [other], "a destroyed case's question is still readable in the outbox"
