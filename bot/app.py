"""Running the bot: open the keys and database, migrate, then poll or serve a webhook."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiogram import Bot, Dispatcher
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.cases.stats import fill_tally
from bot.config import UPDATE_CONCURRENCY, RunMode, Settings
from bot.factory import create_bot, create_dispatcher
from bot.logs import loop_exception_handler
from bot.speedups import loop_factory
from storage.audit import ChainBroken, redact_reporters
from storage.crypto import KeyRing
from storage.crypto.keyfile import KeyFileError
from storage.db import (
    advisory_lock,
    create_engine,
    create_sessionmaker,
    migrate,
    one_process_per_sqlite_file,
)
from storage.keys import ensure_key_file
from storage.roles import seal_existing_roles

log = logging.getLogger("intake.app")

BACKUP_WARNING = """
============================================================================
  A NEW KEY FILE WAS CREATED: {path}
  Without this file every stored report is unreadable, for good.
  Back it up now, to somewhere safe and separate from the database backups.
============================================================================
"""


def open_keyring(settings: Settings, *, create: bool) -> KeyRing:
    from storage.crypto.keyfile import load_key_file

    if not create:
        return KeyRing(load_key_file(settings.key_file))
    material, created = ensure_key_file(settings.key_file)
    if created:
        print(BACKUP_WARNING.format(path=settings.key_file), file=sys.stderr)
    return KeyRing(material)


@dataclass(slots=True)
class Runtime:
    settings: Settings
    keyring: KeyRing
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]


@asynccontextmanager
async def open_runtime(settings: Settings, *, create_keys: bool = False) -> AsyncIterator[Runtime]:
    engine = create_engine(settings.database_dsn())
    try:
        if create_keys and not settings.key_file.exists() and await holds_data(engine):
            raise KeyFileError(
                f"key file {settings.key_file} is missing, but the database already holds "
                "data that only that key can read: restore the key file from its backup"
            )
        keyring = open_keyring(settings, create=create_keys)
        yield Runtime(settings, keyring, engine, create_sessionmaker(engine))
    finally:
        await engine.dispose()


async def holds_data(engine: AsyncEngine) -> bool:
    """Whether the database has users or cases (so its key file must already exist)."""
    from sqlalchemy import inspect, text

    async with engine.connect() as conn:
        tables = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
        for table in ("users", "cases"):
            if table in tables and await conn.scalar(text(f"SELECT 1 FROM {table} LIMIT 1")):  # noqa: S608
                return True
    return False


async def has_column(engine: AsyncEngine, table: str, column: str) -> bool:
    from sqlalchemy import inspect

    def look(sync: Any) -> bool:
        inspector = inspect(sync)
        if table not in inspector.get_table_names():
            return False
        return column in {found["name"] for found in inspector.get_columns(table)}

    async with engine.connect() as conn:
        return bool(await conn.run_sync(look))


async def serve(runtime: Runtime, bot: Bot, dispatcher: Dispatcher) -> None:
    if runtime.settings.mode is RunMode.WEBHOOK:
        from bot.webhook import serve_webhook

        await serve_webhook(runtime.settings, bot, dispatcher)
        return
    await bot.delete_webhook(drop_pending_updates=False)
    await dispatcher.start_polling(
        bot,
        allowed_updates=dispatcher.resolve_used_update_types(),
        handle_signals=True,
        tasks_concurrency_limit=UPDATE_CONCURRENCY,
    )


async def prepare_database(runtime: Runtime) -> None:
    """Apply the migrations, then what they cannot do without the key file.

    Replicas starting together take turns (an advisory lock on PostgreSQL):
    the first migrates, the others wait and then find nothing to do.
    """
    async with advisory_lock(runtime.engine, "migrations", wait=True):
        had_role_macs = await has_column(runtime.engine, "users", "role_mac")
        await migrate(runtime.engine)
        async with runtime.sessionmaker.begin() as session:
            # Once, when revision 0004 has just added role MACs: the roles held until
            # now get theirs. Only then: later it would bless a role written in by hand.
            if not had_role_macs and (
                sealed := await seal_existing_roles(session, runtime.keyring)
            ):
                log.info("staff roles sealed: %d", sealed)
            # After revision 0002, once: count the cases stored before the tally existed.
            # Silent on a new database (nothing to count), as migrate should be.
            if counted := await fill_tally(session, runtime.keyring):
                log.info("statistics tally filled from %d stored cases", counted)
        try:
            async with runtime.sessionmaker.begin() as session:
                # After revision 0003, once: reporters' ids leave the audit log.
                if redacted := await redact_reporters(session, runtime.keyring):
                    log.warning(
                        "audit log: %d entries naming a reporter redacted and re-chained; "
                        "write down a new anchor (intake-bot audit verify)",
                        redacted,
                    )
        except ChainBroken:
            log.error("audit log does not verify: reporters' ids were not redacted")


async def run(settings: Settings) -> None:
    asyncio.get_running_loop().set_exception_handler(loop_exception_handler)
    with one_process_per_sqlite_file(settings.database_dsn()):
        await _run(settings)


async def _run(settings: Settings) -> None:
    async with open_runtime(settings, create_keys=True) as runtime:
        await prepare_database(runtime)
        bot = create_bot(settings)
        dispatcher = create_dispatcher(settings, runtime.sessionmaker, runtime.keyring)
        log.info("starting in %s mode", settings.mode.value)
        try:
            await serve(runtime, bot, dispatcher)
        finally:
            await bot.session.close()


def run_blocking(settings: Settings) -> None:
    with asyncio.Runner(loop_factory=loop_factory(settings.event_loop)) as runner:
        runner.run(run(settings))
