"""Shared fixtures: a migrated database on SQLite and on PostgreSQL, and a key ring.

PostgreSQL runs use a fresh schema each, so concurrent runs cannot collide.
Without a server the PostgreSQL cases skip with one line, except in CI
(CI=true), where they fail.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.crypto import KeyRing
from storage.crypto.keyfile import KeyMaterial
from storage.db import create_engine, create_sessionmaker, migrate

POSTGRES_URL = os.environ.get(
    "INTAKE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

_postgres_state: dict[str, str | None] = {}


async def _probe_postgres() -> str | None:
    import asyncpg

    try:
        conn = await asyncpg.connect(_asyncpg_dsn(), timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


def _asyncpg_dsn() -> str:
    return POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://", 1)


def require_postgres() -> None:
    """Skip (or, in CI, fail) the calling test when PostgreSQL does not answer."""
    if "error" not in _postgres_state:
        _postgres_state["error"] = asyncio.run(_probe_postgres())
    _postgres_verdict()


async def require_postgres_async() -> None:
    if "error" not in _postgres_state:
        _postgres_state["error"] = await _probe_postgres()
    _postgres_verdict()


def _postgres_verdict() -> None:
    error = _postgres_state["error"]
    if error is None:
        return
    message = f"PostgreSQL at {POSTGRES_URL} does not answer ({error})"
    if IN_CI:
        pytest.fail(message + "; CI=true, so this is a failure")
    pytest.skip(message + "; set INTAKE_TEST_POSTGRES_URL or start PostgreSQL")


@dataclass(slots=True)
class Database:
    """A migrated, empty database for one test."""

    backend: str
    url: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    schema: str | None
    sqlite_path: Path | None

    def raw_files(self) -> list[Path]:
        """The SQLite file and its -wal/-journal companions (for canary scans)."""
        assert self.sqlite_path is not None
        base = str(self.sqlite_path)
        return [Path(base + suffix) for suffix in ("", "-wal", "-journal", "-shm")]


async def _create_schema(schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn())
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()


async def _drop_schema(schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn())
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        require_postgres()
    return str(request.param)


@pytest.fixture
async def database(backend: str, tmp_path: Path) -> AsyncIterator[Database]:
    db = await open_database(backend, tmp_path)
    try:
        yield db
    finally:
        await close_database(db)


async def open_database(backend: str, tmp_path: Path) -> Database:
    if backend == "sqlite":
        path = tmp_path / "intake.db"
        url = f"sqlite+aiosqlite:///{path}"
        engine = create_engine(url)
        schema = None
    else:
        path = None
        schema = f"t_{secrets.token_hex(6)}"
        await _create_schema(schema)
        url = POSTGRES_URL
        engine = create_engine(url, schema=schema)
    await migrate(engine)
    return Database(backend, url, engine, create_sessionmaker(engine), schema, path)


async def close_database(db: Database) -> None:
    await db.engine.dispose()
    if db.schema:
        await _drop_schema(db.schema)


@pytest.fixture
def key_material() -> KeyMaterial:
    return KeyMaterial.generate()


@pytest.fixture
def keyring(key_material: KeyMaterial) -> KeyRing:
    return KeyRing(key_material)


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never read a developer's .env or INTAKE_* environment by accident."""
    for name in list(os.environ):
        if name.startswith("INTAKE_") and name != "INTAKE_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(Path(__file__).resolve().parent)
