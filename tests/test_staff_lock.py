"""The staff PIN lock's core without Telegram: bot/staff_lock/ on SQLite and PostgreSQL.

Time is an injected clock; scrypt runs at a test cost asked for by name.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select

from bot.cases.staff import set_staff_name
from bot.notifications import Notice, NoticeKind, Role
from bot.staff_lock.lock import Access, Result, StaffLock, is_unlocked, reset_pin, restore
from bot.staff_lock.pin import PRODUCTION_N, PinHasher, is_valid_pin, looks_like_pin
from bot.staff_lock.views import claim_due, claim_for_user, record_view
from storage.crypto import KeyRing, Purpose
from storage.db import alembic_config, current_revision, downgrade, migrate
from storage.models import AuditEntry, OutboxMessage, StaffPin, StaffView, User, utcnow
from storage.repositories import UserRepository
from tests.conftest import Database

HASHER = PinHasher(2**8, weak_for_tests=True)
UNLOCK = timedelta(minutes=15)
PIN = "482913"


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


async def _staff(database: Database, keyring: KeyRing) -> tuple[User, User]:
    """A lawyer and a coordinator."""
    async with database.sessionmaker.begin() as session:
        users = UserRepository(session, keyring)
        lawyer = await users.ensure(6_400_001, 6_400_001)
        lawyer.role = Role.LAWYER.value
        set_staff_name(keyring, lawyer, "Nodira @nodira_law")
        boss = await users.ensure(5_400_001, 5_400_001)
        boss.role = Role.COORDINATOR.value
        set_staff_name(keyring, boss, "coordinator 1")
    return lawyer, boss


async def _with_lock(
    database: Database, keyring: KeyRing, clock: Clock, user: User, *steps: str
) -> list[Result | Access]:
    """Run ``steps`` ("check" or digits), one transaction each, as updates would."""
    results: list[Result | Access] = []
    for step in steps:
        async with database.sessionmaker.begin() as session:
            lock = StaffLock(session, keyring, HASHER, clock, UNLOCK)
            row = await session.get(User, user.id)
            assert row is not None
            if step == "check":
                results.append(await lock.check(row))
            elif step == "lock":
                await lock.lock(row)
            else:
                results.append(await lock.enter(row, step))
    return results


async def _notices(database: Database, keyring: KeyRing) -> list[Notice]:
    from bot.notifications import outbox_context

    async with database.sessionmaker() as session:
        rows = (await session.scalars(select(OutboxMessage))).all()
        return [
            Notice.from_bytes(
                keyring.open(
                    Purpose.OUTBOX, row.payload_sealed, outbox_context(row.id, row.recipient_id)
                )
            )
            for row in rows
        ]


async def _audited(database: Database) -> list[str]:
    async with database.sessionmaker() as session:
        found = await session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq))
        return list(found.all())


def test_pin_format_and_production_cost() -> None:
    assert is_valid_pin("123456") and is_valid_pin("123456789012")
    assert not is_valid_pin("12345") and not is_valid_pin("1234567890123")
    assert not is_valid_pin("12345a") and not is_valid_pin("١٢٣٤٥٦")  # ASCII digits only
    assert looks_like_pin(" 0042 ") and not looks_like_pin("/queue")
    assert PinHasher().n == PRODUCTION_N >= 2**15
    with pytest.raises(ValueError, match="at least"):
        PinHasher(2**10)
    with pytest.raises(ValueError, match="power of two"):
        PinHasher(3 * 2**15)


async def test_scrypt_runs_off_the_event_loop() -> None:
    seen: list[int] = []

    class Watched(PinHasher):
        @staticmethod
        def derive_sync(pin: str, salt: bytes, n: int) -> bytes:
            seen.append(threading.get_ident())
            return PinHasher.derive_sync(pin, salt, n)

    hasher = Watched(2**8, weak_for_tests=True)
    first = await hasher.derive(PIN, b"s" * 16)
    assert seen and seen[0] != threading.get_ident()
    assert first == PinHasher.derive_sync(PIN, b"s" * 16, 2**8)
    assert first != await hasher.derive(PIN, b"t" * 16)  # the salt matters


async def test_choose_repeat_unlock_and_idle(database: Database, keyring: KeyRing) -> None:
    clock = Clock()
    lawyer, _boss = await _staff(database, keyring)
    run = _with_lock
    assert await run(database, keyring, clock, lawyer, "check", "1234", PIN, "000000") == [
        Access.CHOOSE_PIN,
        Result.INVALID,
        Result.REPEAT_IT,
        Result.MISMATCH,
    ]
    assert await run(database, keyring, clock, lawyer, PIN, PIN, "check") == [
        Result.REPEAT_IT,
        Result.PIN_SET,
        Access.OPEN,
    ]
    clock.now += timedelta(minutes=14)
    assert await run(database, keyring, clock, lawyer, "check") == [Access.OPEN]
    clock.now += timedelta(minutes=14)  # 28 minutes in, but the check kept it open
    assert await run(database, keyring, clock, lawyer, "check") == [Access.OPEN]
    clock.now += timedelta(minutes=15, seconds=1)
    assert await run(database, keyring, clock, lawyer, "check", "111111", PIN, "check") == [
        Access.ENTER_PIN,
        Result.WRONG,
        Result.UNLOCKED,
        Access.OPEN,
    ]
    async with database.sessionmaker() as session:
        row = await session.get(StaffPin, lawyer.id)
        assert row is not None and row.failures == 0 and len(row.salt) == 16
        assert await is_unlocked(session, lawyer.id, clock())
        assert not await is_unlocked(session, lawyer.id, clock() + UNLOCK)


async def test_five_wrong_lock_out_ten_suspend_and_coordinators_are_told(
    database: Database, keyring: KeyRing
) -> None:
    clock = Clock()
    lawyer, boss = await _staff(database, keyring)
    await _with_lock(database, keyring, clock, lawyer, PIN, PIN, "lock")
    wrong = await _with_lock(database, keyring, clock, lawyer, *["999999"] * 5, PIN, "check")
    assert wrong == [
        *[Result.WRONG] * 4,
        Result.LOCKED_OUT,
        Result.STILL_LOCKED_OUT,
        Access.LOCKED_OUT,
    ]
    notices = await _notices(database, keyring)
    assert notices == [Notice(NoticeKind.STAFF_LOCKED_OUT, text="Nodira @nodira_law")]

    clock.now += timedelta(minutes=15, seconds=1)
    more = await _with_lock(database, keyring, clock, lawyer, *["999999"] * 5, PIN, "check")
    assert more == [*[Result.WRONG] * 4, Result.SUSPENDED, Result.SUSPENDED, Access.SUSPENDED]
    assert (await _notices(database, keyring))[-1].kind is NoticeKind.STAFF_SUSPENDED
    assert await _audited(database) == ["pin_locked_out", "pin_suspended"]

    async with database.sessionmaker.begin() as session:
        row = await session.get(User, lawyer.id)
        assert row is not None and await restore(session, row)
    assert await _with_lock(database, keyring, clock, lawyer, PIN) == [Result.UNLOCKED]
    async with database.sessionmaker.begin() as session:
        row = await session.get(User, lawyer.id)
        assert row is not None
        await reset_pin(session, row)
    assert await _with_lock(database, keyring, clock, lawyer, "check") == [Access.CHOOSE_PIN]
    assert boss.id != lawyer.id


async def test_a_change_begun_before_the_lock_engaged_gives_no_way_around_the_pin(
    database: Database, keyring: KeyRing
) -> None:
    """/pin asked for the old PIN, then the phone was left: the digits unlock, nothing else."""
    clock = Clock()
    lawyer, _boss = await _staff(database, keyring)
    await _with_lock(database, keyring, clock, lawyer, PIN, PIN)
    async with database.sessionmaker.begin() as session:
        lock = StaffLock(session, keyring, HASHER, clock, UNLOCK)
        row = await session.get(User, lawyer.id)
        assert row is not None
        lock.begin_change(await lock.row(row), duress=False)
    assert await _with_lock(database, keyring, clock, lawyer, PIN) == [Result.CHOOSE_NEW]
    clock.now += timedelta(minutes=16)
    # The thief types a PIN of their own: it is a wrong PIN, not a new one.
    assert await _with_lock(database, keyring, clock, lawyer, "555555", "555555") == [
        Result.WRONG,
        Result.WRONG,
    ]
    assert await _with_lock(database, keyring, clock, lawyer, PIN) == [Result.UNLOCKED]


async def test_the_duress_pin_suspends_silently(database: Database, keyring: KeyRing) -> None:
    clock = Clock()
    lawyer, _boss = await _staff(database, keyring)
    await _with_lock(database, keyring, clock, lawyer, PIN, PIN)
    async with database.sessionmaker.begin() as session:
        lock = StaffLock(session, keyring, HASHER, clock, UNLOCK)
        row = await session.get(User, lawyer.id)
        assert row is not None
        lock.begin_change(await lock.row(row), duress=True)
    steps = await _with_lock(database, keyring, clock, lawyer, PIN, PIN, "777777", "777777")
    assert steps == [Result.CHOOSE_DURESS, Result.CLASH, Result.REPEAT_IT, Result.DURESS_SET]
    await _with_lock(database, keyring, clock, lawyer, "lock")
    assert await _with_lock(database, keyring, clock, lawyer, "777777", "check", PIN) == [
        Result.DURESS,
        Access.DURESS,
        Result.DURESS,  # even the real PIN now only keeps up the pretence
    ]
    assert [n.kind for n in await _notices(database, keyring)] == [NoticeKind.STAFF_DURESS]
    assert await _audited(database) == ["pin_duress"]
    async with database.sessionmaker() as session:
        assert not await is_unlocked(session, lawyer.id, clock())


async def test_views_are_claimed_once_even_by_racing_workers(
    database: Database, keyring: KeyRing
) -> None:
    clock = Clock()
    lawyer, boss = await _staff(database, keyring)
    await _with_lock(database, keyring, clock, lawyer, PIN, PIN)
    await _with_lock(database, keyring, clock, boss, PIN, PIN)
    now = clock()
    async with database.sessionmaker.begin() as session:
        record_view(session, lawyer.id, range(1, 301), now - timedelta(seconds=1))
        record_view(session, lawyer.id, range(301, 311), now + timedelta(minutes=30))
        record_view(session, boss.id, range(1, 6), now + timedelta(minutes=30))

    async def worker() -> list[tuple[object, int]]:
        async with database.sessionmaker.begin() as session:
            return [(user_id, message_id) for user_id, message_id in await claim_due(session, now)]

    first, second = await asyncio.gather(worker(), worker())
    claimed = first + second
    assert len(claimed) == len(set(claimed)) == 300  # each due view once, none early
    assert {message_id for _user, message_id in claimed} == set(range(1, 301))

    async with database.sessionmaker.begin() as session:
        assert sorted(await claim_for_user(session, boss.id)) == [1, 2, 3, 4, 5]
    # Locked (idle past the unlock): the rest of the lawyer's views are due at once.
    later = now + UNLOCK + timedelta(seconds=1)
    async with database.sessionmaker.begin() as session:
        assert len(await claim_due(session, later)) == 10
        assert (await session.scalars(select(StaffView))).all() == []


async def test_migration_0005_goes_down_and_up(database: Database) -> None:
    def tables(sync: object) -> set[str]:
        return set(inspect(sync).get_table_names())  # type: ignore[arg-type]

    async with database.engine.connect() as conn:
        assert {"staff_pins", "staff_views"} <= await conn.run_sync(tables)
    await downgrade(database.engine, "0002")
    assert await current_revision(database.engine) == "0002"
    async with database.engine.connect() as conn:
        assert not {"staff_pins", "staff_views"} & await conn.run_sync(tables)
    await migrate(database.engine)
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert await current_revision(database.engine) == head
    async with database.engine.connect() as conn:
        assert {"staff_pins", "staff_views"} <= await conn.run_sync(tables)
