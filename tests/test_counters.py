"""abuse_counters (storage/counters.py): fixed windows, atomic takes, expiry; and the
abuse handles' expiry; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from bot.intake.limits import sweep_expired
from storage import counters
from storage.abuse_handles import Sender, keep_handle, open_handle
from storage.counters import EVERYONE, Limit, window_start
from storage.crypto import KeyRing
from storage.models import AbuseCounter
from storage.repositories import CaseRepository
from tests.case_helpers import make_case
from tests.conftest import Database

DAY = Limit("test-day", timedelta(days=1), 3)
NOON = datetime(2026, 12, 7, 12, 30, tzinfo=UTC)


def test_windows_are_aligned_to_their_length() -> None:
    assert window_start(NOON, timedelta(days=1)) == datetime(2026, 12, 7, tzinfo=UTC)
    assert window_start(NOON, timedelta(minutes=1)) == datetime(2026, 12, 7, 12, 30, tzinfo=UTC)
    assert window_start(NOON + timedelta(seconds=59.9), timedelta(minutes=1)) == NOON


async def test_take_stops_at_the_limit_per_key_and_window(database: Database) -> None:
    async with database.sessionmaker.begin() as session:
        taken = [await counters.take(session, DAY, b"a" * 32, now=NOON) for _ in range(4)]
        assert taken == [True, True, True, False]
        assert await counters.take(session, DAY, b"b" * 32, now=NOON)
        # More than is left is refused whole, and changes nothing.
        bytes_limit = Limit("test-bytes", timedelta(days=1), 100)
        assert await counters.take(session, bytes_limit, EVERYONE, 60, now=NOON)
        assert not await counters.take(session, bytes_limit, EVERYONE, 41, now=NOON)
        assert await counters.used(session, bytes_limit, EVERYONE, now=NOON) == 60
        assert not await counters.take(session, bytes_limit, EVERYONE, 101, now=NOON)
        # The next day is a new window.
        tomorrow = NOON + timedelta(days=1)
        assert await counters.take(session, DAY, b"a" * 32, now=tomorrow)
        await counters.give_back(session, DAY, b"a" * 32, now=NOON)
        assert await counters.used(session, DAY, b"a" * 32, now=NOON) == 2


async def test_concurrent_takes_never_pass_the_limit(database: Database) -> None:
    """Twenty transactions at once, each in its own connection: exactly ``most`` win."""
    limit = Limit("test-race", timedelta(days=1), 7)

    async def one() -> bool:
        async with database.sessionmaker.begin() as session:
            return await counters.take(session, limit, EVERYONE, now=NOON)

    results = await asyncio.gather(*(one() for _ in range(20)))
    assert sum(results) == 7
    async with database.sessionmaker() as session:
        assert await counters.used(session, limit, EVERYONE, now=NOON) == 7


async def test_expired_windows_are_swept(database: Database) -> None:
    minute = Limit("test-minute", timedelta(minutes=1), 5)
    async with database.sessionmaker.begin() as session:
        assert await counters.take(session, minute, EVERYONE, now=NOON)
        assert await counters.take(session, DAY, EVERYONE, now=NOON)
    assert await sweep_expired(database.sessionmaker, now=NOON + timedelta(minutes=1)) == 1
    assert await sweep_expired(database.sessionmaker, now=NOON + timedelta(days=1)) == 1
    async with database.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(AbuseCounter)) == 0


async def test_abuse_handles_open_until_they_expire_then_are_swept(
    database: Database, keyring: KeyRing
) -> None:
    reference = await make_case(database, keyring)
    async with database.sessionmaker.begin() as session:
        cases = CaseRepository(session, keyring)
        case = await cases.by_reference(reference)
        assert case is not None
        data_key = await cases.data_key(case)
        keep_handle(session, case.id, data_key, Sender(b"i" * 32, 42), expires_at=NOON)
    async with database.sessionmaker() as session:
        before = await open_handle(session, case.id, data_key, now=NOON - timedelta(days=1))
        after = await open_handle(session, case.id, data_key, now=NOON)
    assert before == Sender(b"i" * 32, 42) and after is None
    assert await sweep_expired(database.sessionmaker, now=NOON - timedelta(seconds=1)) == 0
    assert await sweep_expired(database.sessionmaker, now=NOON) == 1
