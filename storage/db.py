"""Engine creation and migrations for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, func, select
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def create_engine(url: str, *, schema: str | None = None, echo: bool = False) -> AsyncEngine:
    """An engine with the settings this project relies on.

    ``schema`` puts every table of a PostgreSQL run into its own schema (tests
    use it so that runs cannot collide). SQL parameters are never logged.
    """
    parsed = make_url(url)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url, echo=echo, hide_parameters=True, connect_args={"timeout": 30}
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    if schema:
        connect_args["server_settings"] = {"search_path": schema}
    return create_async_engine(
        url,
        echo=echo,
        hide_parameters=True,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        connect_args=connect_args,
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # secure_delete overwrites freed pages, so deleted (shredded) rows do not
    # linger in the file; WAL lets the outbox worker read while a handler writes.
    for pragma in (
        "PRAGMA foreign_keys=ON",
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA secure_delete=ON",
        "PRAGMA busy_timeout=30000",
    ):
        cursor.execute(pragma)
    cursor.close()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (idempotent)."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), revision))


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


def is_transient_failure(exc: BaseException) -> bool:
    """A failure of the database connection rather than of the work: worth trying again.

    A dropped or refused connection (also the statement after one dropped inside
    a transaction), a server restarting, an exhausted pool, SQLite's "database is
    locked", a deadlock.
    """
    from sqlalchemy.exc import (
        DBAPIError,
        InterfaceError,
        OperationalError,
        PendingRollbackError,
        StatementError,
    )
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if isinstance(exc, PoolTimeout | OSError | TimeoutError):
        return True
    if type(exc).__module__.startswith("asyncpg"):
        # A statement sent straight to the driver (bot/replicas.py ``autocommit``):
        # an error the server reported is judged by its SQLSTATE; any other is the
        # client's connection failing (closed, or left in a broken state).
        from asyncpg import PostgresError

        if isinstance(exc, PostgresError):
            return _passing_state(str(getattr(exc, "sqlstate", None) or ""))
        return True
    if isinstance(exc, PendingRollbackError):
        # 8s2b: the next statement on a connection the server dropped inside a
        # transaction. (7s2a, the session's "rolled back by an earlier error", is
        # judged by that earlier error, not here.)
        return exc.code == "8s2b"
    if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
        # e.g. a flush that could not connect: the cause is what counts.
        return isinstance(exc.orig, BaseException) and is_transient_failure(exc.orig)
    if isinstance(exc, DBAPIError):
        state = str(getattr(exc.orig, "sqlstate", None) or "")
        return (
            exc.connection_invalidated
            or isinstance(exc, OperationalError | InterfaceError)
            or _passing_state(state)
        )
    return False


def _passing_state(sqlstate: str) -> bool:
    """SQLSTATE 08: connection exceptions; 53: out of resources (too many
    connections); 57P: the server is shutting down or starting up; 40001 and
    40P01: serialization failure and deadlock."""
    return sqlstate.startswith(("08", "53", "57P")) or sqlstate in {"40001", "40P01"}


def lock_key(name: str) -> int:
    """A signed 64-bit advisory lock key for a named task (migrations, a job)."""
    digest = hashlib.sha256(b"intake-bot:" + name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@asynccontextmanager
async def advisory_lock(engine: AsyncEngine, name: str, *, wait: bool) -> AsyncIterator[bool]:
    """Hold PostgreSQL's session-level lock ``name`` on a connection of its own.

    Yields whether it is held: with ``wait`` always (after waiting for whoever
    holds it), without it only if nobody did. Other processes on the same
    database see it; a process that dies loses it with its connection. On
    SQLite (one process) it yields True at once.
    """
    if engine.dialect.name != "postgresql":
        yield True
        return
    key = lock_key(name)
    async with engine.connect() as conn:
        take = func.pg_advisory_lock(key) if wait else func.pg_try_advisory_lock(key)
        held = bool(await conn.scalar(select(take)) is not False)
        await conn.commit()
        try:
            yield held
        finally:
            if held:
                try:
                    await conn.execute(select(func.pg_advisory_unlock(key)))
                    await conn.commit()
                except Exception:
                    await conn.invalidate()  # never back to the pool holding the lock
                    raise


class DatabaseInUse(Exception):
    """Another bot process already serves this SQLite file."""


@contextmanager
def one_process_per_sqlite_file(url: str) -> Iterator[None]:
    """Refuse to serve a SQLite file that another running bot serves.

    SQLite is the one-process default: per-chat order, deduplication and flood
    control live in that process's memory, so a second process would break
    them silently. An exclusive ``flock`` on ``<file>.lock``, which the kernel
    releases when the process ends however it ends. PostgreSQL is not limited.
    """
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        yield
        return
    lock_path = Path(database + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DatabaseInUse(
                f"{database} is in use by another intake-bot process; SQLite serves one "
                "process only: stop the other, or use PostgreSQL to run several "
                "(docs/deployment.md)"
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock
