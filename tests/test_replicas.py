"""Webhook replicas: answers after commit, 500 on a database failure, and two
replicas on one PostgreSQL database handling the same chat at the same moment.

Each replica is the real dispatcher behind ``build_webhook_app`` with an engine
(a connection pool) of its own, as separate processes would have.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from bot.app import Runtime, prepare_database
from bot.background import alone
from bot.config import Settings
from bot.factory import create_bot, create_dispatcher
from bot.intake.limits import sweep_expired
from bot.replicas import (
    FLOOD_KIND,
    SharedFloodControl,
    autocommit,
    chat_lock_key,
    forget_handled_updates,
)
from bot.webhook import build_webhook_app, webhook_path
from devkit.emulator import FakeTelegramServer
from devkit.sandbox import FAST_OUTBOX
from storage import counters
from storage.crypto import KeyRing
from storage.db import (
    advisory_lock,
    create_engine,
    create_sessionmaker,
    current_revision,
    downgrade,
)
from storage.models import AbuseCounter, HandledUpdate, utcnow
from tests.conftest import Database, close_database, open_database
from tests.test_webhook import CHAT_ID, SECRET, SECRET_HEADER, _message_update, webhook_settings


async def head_revision() -> str:
    from alembic.script import ScriptDirectory

    from storage.db import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


Inner = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]
ON_POSTGRES = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@dataclass
class Replica:
    client: TestClient[Any, Any]
    path: str

    async def post(self, update: dict[str, Any]) -> int:
        headers = {SECRET_HEADER: SECRET}
        async with self.client.post(self.path, json=update, headers=headers) as response:
            await response.read()
            return response.status


@contextlib.asynccontextmanager
async def replica(
    server: FakeTelegramServer,
    database: Database,
    keyring: KeyRing,
    inner: BaseMiddleware | None = None,
) -> AsyncIterator[Replica]:
    """One bot process: its own pool, the shared database; ``inner`` runs in the transaction."""
    settings = webhook_settings(server, database)
    engine = create_engine(database.url, schema=database.schema)
    bot = create_bot(settings)
    dispatcher = create_dispatcher(
        settings, create_sessionmaker(engine), keyring, outbox_policy=FAST_OUTBOX
    )
    if inner is not None:
        dispatcher.update.outer_middleware(inner)  # after the user is loaded
    client: TestClient[Any, Any] = TestClient(
        TestServer(build_webhook_app(settings, bot, dispatcher))
    )
    await client.start_server()
    try:
        yield Replica(client, webhook_path(settings))
    finally:
        await client.close()
        await bot.session.close()
        await engine.dispose()


class DatabaseFailsOnce(BaseMiddleware):
    """The connection drops inside the update's transaction, the first time only."""

    def __init__(self) -> None:
        self.failed = False

    async def __call__(self, handler: Inner, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not self.failed:
            self.failed = True
            raise OperationalError("SELECT 1", {}, ConnectionResetError("connection lost"))
        return await handler(event, data)


def _sends(server: FakeTelegramServer) -> list[str]:
    return [
        str(call.params.get("text"))
        for call in server.calls_for("sendMessage")
        if call.chat_id == CHAT_ID
    ]


async def test_a_failed_update_gets_500_and_its_redelivery_is_handled_once(
    database: Database, keyring: KeyRing
) -> None:
    async with (
        FakeTelegramServer() as server,
        replica(server, database, keyring, DatabaseFailsOnce()) as bot,
    ):
        update = _message_update(server, 31, "/start")
        assert await bot.post(update) == 500  # Telegram will deliver it again
        assert _sends(server) == []
        assert await bot.post(update) == 200  # answered after the commit...
        assert len(_sends(server)) == 1  # ...so the answer was already sent
        assert await bot.post(update) == 200  # a late duplicate: dropped
        assert len(_sends(server)) == 1


class HoldFirst(BaseMiddleware):
    """Shared by two replicas: holds the first update inside its transaction."""

    def __init__(self) -> None:
        self.inside = 0
        self.most_inside = 0
        self.entered: list[int] = []
        self.release = asyncio.Event()

    async def __call__(self, handler: Inner, event: TelegramObject, data: dict[str, Any]) -> Any:
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        assert isinstance(event, Update)
        self.entered.append(event.update_id)
        try:
            if len(self.entered) == 1:
                await self.release.wait()
            return await handler(event, data)
        finally:
            self.inside -= 1


async def _waiting_for_the_chat(database: Database, keyring: KeyRing) -> int:
    """Sessions waiting for this chat's advisory lock (pg_locks splits the 64-bit key)."""
    key = chat_lock_key(keyring, CHAT_ID, CHAT_ID) & 0xFFFF_FFFF_FFFF_FFFF
    async with database.sessionmaker() as session:
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND classid::bigint = :high AND objid::bigint = :low"
            ),
            {"high": key >> 32, "low": key & 0xFFFF_FFFF},
        )
    return int(waiting or 0)


@ON_POSTGRES
async def test_one_chat_at_two_replicas_at_once_is_handled_in_turn(
    database: Database, keyring: KeyRing
) -> None:
    hold = HoldFirst()
    async with (
        FakeTelegramServer() as server,
        replica(server, database, keyring, hold) as first,
        replica(server, database, keyring, hold) as second,
    ):
        start = _message_update(server, 41, "/start")
        hello = _message_update(server, 42, "салом")
        one = asyncio.create_task(first.post(start))
        await server.wait_for(lambda _s: hold.entered == [41], timeout=20)
        two = asyncio.create_task(second.post(hello))
        # The second replica waits on the chat's lock in PostgreSQL, not in memory.
        for _ in range(200):
            if await _waiting_for_the_chat(database, keyring) >= 1:
                break
            await asyncio.sleep(0.05)
        assert await _waiting_for_the_chat(database, keyring) == 1
        assert hold.entered == [41]
        hold.release.set()
        assert await asyncio.gather(one, two) == [200, 200]
    assert hold.entered == [41, 42]
    assert hold.most_inside == 1


@ON_POSTGRES
async def test_one_update_at_two_replicas_in_the_same_millisecond_is_handled_once(
    database: Database, keyring: KeyRing
) -> None:
    async with (
        FakeTelegramServer() as server,
        replica(server, database, keyring) as first,
        replica(server, database, keyring) as second,
    ):
        for update_id in range(51, 56):
            update = _message_update(server, update_id, "/start")
            statuses = await asyncio.gather(first.post(update), second.post(update))
            assert statuses == [200, 200]
        assert len(_sends(server)) == 5  # one language screen per update, none twice
    async with database.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(HandledUpdate)) == 5


async def test_handled_updates_expire_after_two_days(database: Database) -> None:
    now = utcnow()
    async with database.sessionmaker.begin() as session:
        session.add(HandledUpdate(update_id=1, handled_at=now - timedelta(days=3)))
        session.add(HandledUpdate(update_id=2, handled_at=now - timedelta(hours=25)))
    assert await forget_handled_updates(database.sessionmaker, now) == 1
    async with database.sessionmaker() as session:
        assert list(await session.scalars(select(HandledUpdate.update_id))) == [2]


@ON_POSTGRES
async def test_a_job_runs_in_one_replica_at_a_time(database: Database) -> None:
    other = create_engine(database.url, schema=database.schema)
    runs: list[str] = []

    async def job() -> None:
        runs.append("ran")

    try:
        async with advisory_lock(database.engine, "job:retention", wait=False) as mine:
            assert mine
            await alone(other, "retention", job)()  # another replica holds it: skipped
            assert runs == []
            await alone(other, "sweeper", job)()  # another job is not held back
            assert runs == ["ran"]
        await alone(other, "retention", job)()
        assert runs == ["ran", "ran"]
    finally:
        await other.dispose()


@ON_POSTGRES
async def test_replicas_starting_together_migrate_once(
    backend: str, tmp_path: Path, keyring: KeyRing
) -> None:
    empty = await open_database(backend, tmp_path)  # migrated; make it empty again
    await downgrade(empty.engine, "base")
    settings = Settings(database_url=empty.url)
    engines = [create_engine(empty.url, schema=empty.schema) for _ in range(3)]
    try:
        runtimes = [Runtime(settings, keyring, e, create_sessionmaker(e)) for e in engines]
        await asyncio.gather(*(prepare_database(runtime) for runtime in runtimes))
        assert await current_revision(empty.engine) == await head_revision()
    finally:
        for engine in engines:
            await engine.dispose()
        await close_database(empty)


@ON_POSTGRES
async def test_flood_control_counts_a_person_across_replicas(
    database: Database, keyring: KeyRing
) -> None:
    now = [datetime(2026, 12, 1, 12, 0, 1, tzinfo=UTC)]
    other = create_engine(database.url, schema=database.schema)
    try:
        replicas = [
            SharedFloodControl(
                engine, keyring, limit=3, window=10.0, clock=lambda: now[0].timestamp()
            )
            for engine in (database.engine, other)
        ]
        verdicts = [await replicas[n % 2].verdict(700_001) for n in range(5)]
        assert verdicts == [True, True, True, None, False]  # one warning, then silence
        # The flood count is an ordinary counter, the one counters.add keeps.
        async with database.sessionmaker.begin() as session:
            key = keyring.blind_index(FLOOD_KIND, 700_001)
            amount = await counters.add(session, FLOOD_KIND, timedelta(seconds=10), key, now=now[0])
        assert amount == 6
        assert await replicas[0].verdict(700_002) is True  # someone else is not held back
        now[0] += timedelta(seconds=10)
        assert await replicas[1].verdict(700_001) is True  # a new window
        await sweep_expired(database.sessionmaker, now=now[0] + timedelta(seconds=30))
        async with database.sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(AbuseCounter)) == 0
    finally:
        await other.dispose()


async def test_a_callback_answered_again_after_a_failure_is_not_an_error() -> None:
    """A redelivered press answers its callback a second time; Telegram refuses that."""
    from aiogram.exceptions import TelegramBadRequest

    async with FakeTelegramServer() as server:
        bot = create_bot(Settings(bot_token=SecretStr(server.token), telegram_api_url=server.url))
        try:
            assert await bot.answer_callback_query("no-such-query") is True
            with pytest.raises(TelegramBadRequest):
                await bot.edit_message_text("x", chat_id=CHAT_ID, message_id=999_999)
        finally:
            await bot.session.close()
        [call] = server.calls_for("answerCallbackQuery")
        assert call.params.get("callback_query_id") == "no-such-query"


def test_passing_database_failures_are_told_from_bugs() -> None:
    from sqlalchemy.exc import IntegrityError, StatementError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from storage.db import is_transient_failure

    refused = ConnectionRefusedError(111, "refused")
    assert is_transient_failure(refused)
    assert is_transient_failure(PoolTimeout("pool exhausted"))
    assert is_transient_failure(OperationalError("SELECT 1", {}, refused))
    assert is_transient_failure(StatementError("flush", "INSERT", {}, refused))
    assert not is_transient_failure(IntegrityError("INSERT", {}, ValueError("duplicate")))
    assert not is_transient_failure(StatementError("flush", "INSERT", {}, ValueError("bad")))
    assert not is_transient_failure(KeyError("a bug"))


@ON_POSTGRES
async def test_a_connection_dropped_inside_a_transaction_stays_a_passing_failure(
    database: Database,
) -> None:
    """After the server drops a connection in the middle of a transaction, the next
    statement on it raises ``PendingRollbackError`` (not a ``DBAPIError``). It is
    still a passing failure, answered 500 and delivered again, not lost (the
    faults section's PostgreSQL restart with replica processes lost 5 updates)."""
    from sqlalchemy.exc import DBAPIError, PendingRollbackError

    from storage.db import is_transient_failure

    async with database.engine.connect() as conn:
        pid = await conn.scalar(select(func.pg_backend_pid()))
        async with database.engine.connect() as other:
            await other.execute(select(func.pg_terminate_backend(pid)))
        with pytest.raises(DBAPIError) as dropped:
            await conn.execute(select(1))
        with pytest.raises(PendingRollbackError) as pending:
            await conn.execute(select(1))
    assert is_transient_failure(dropped.value)
    assert is_transient_failure(pending.value)
    # The session's own "rolled back by a previous error" is not one: its cause was.
    assert not is_transient_failure(PendingRollbackError("flush failed", code="7s2a"))


@ON_POSTGRES
async def test_a_connection_dropped_under_a_statement_sent_to_the_driver_is_a_passing_failure(
    database: Database,
) -> None:
    """The chat's lock and the flood count go straight to asyncpg (``autocommit``);
    its own errors must be judged as SQLAlchemy's are, or a dropped connection
    would be a lost update instead of a 500 and a redelivery."""
    import asyncpg

    from storage.db import is_transient_failure

    async with database.engine.connect() as conn:
        pid = await autocommit(conn, "SELECT pg_backend_pid()")
        async with database.engine.connect() as other:
            await autocommit(other, "SELECT pg_terminate_backend($1)", pid)
        with pytest.raises(Exception) as dropped:  # noqa: PT011 - the driver's own class
            await autocommit(conn, "SELECT 1")
        await conn.invalidate()
    assert type(dropped.value).__module__.startswith("asyncpg")
    assert is_transient_failure(dropped.value)
    assert not is_transient_failure(asyncpg.UniqueViolationError("duplicate key"))
