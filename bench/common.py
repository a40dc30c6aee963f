"""Shared pieces: databases (fresh per run), key files, process figures, statistics."""

from __future__ import annotations

import math
import os
import platform
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.crypto import KeyRing
from storage.crypto.keyfile import KeyMaterial, load_key_file, write_key_file
from storage.db import create_engine, create_sessionmaker, migrate

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "bench" / "results"

POSTGRES_URL = os.environ.get(
    "INTAKE_BENCH_POSTGRES_URL",
    os.environ.get("INTAKE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"),
)
SCHEMA_PREFIX = "bench_"


class BenchError(Exception):
    """The benchmark itself broke (not a slow figure): the run exits non-zero."""


# --------------------------------------------------------------------------- databases


def asyncpg_dsn(url: str = POSTGRES_URL) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def postgres_problem() -> str | None:
    """None when PostgreSQL answers, otherwise why not (one line)."""
    import asyncpg

    try:
        conn = await asyncpg.connect(asyncpg_dsn(), timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


async def _pg_execute(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(asyncpg_dsn(), timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@dataclass(slots=True)
class Database:
    """A migrated, empty database for one benchmark run (as in tests/conftest.py)."""

    backend: str
    url: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    schema: str | None = None
    sqlite_path: Path | None = None

    async def size(self) -> dict[str, int]:
        """Bytes on disk: SQLite file (and used pages), or every relation of the schema."""
        if self.sqlite_path is not None:
            async with self.engine.connect() as conn:
                page_size = int((await conn.execute(text("PRAGMA page_size"))).scalar_one())
                pages = int((await conn.execute(text("PRAGMA page_count"))).scalar_one())
                free = int((await conn.execute(text("PRAGMA freelist_count"))).scalar_one())
            files = _file_bytes(self.sqlite_path)
            return {"file_bytes": files, "used_bytes": (pages - free) * page_size}
        async with self.engine.connect() as conn:
            total = (
                await conn.execute(
                    text(
                        "SELECT coalesce(sum(pg_total_relation_size("
                        "format('%I.%I', schemaname, tablename)::regclass)), 0) "
                        "FROM pg_tables WHERE schemaname = :schema"
                    ),
                    {"schema": self.schema},
                )
            ).scalar_one()
        return {"relation_bytes": int(total)}

    async def analyze(self) -> None:
        """Fresh planner statistics, as autovacuum would have them on a live server."""
        async with self.engine.begin() as conn:
            await conn.execute(text("ANALYZE"))


def _file_bytes(path: Path) -> int:
    """The SQLite file and its write-ahead log, if one is left."""
    return sum(
        candidate.stat().st_size
        for suffix in ("", "-wal")
        if (candidate := Path(f"{path}{suffix}")).exists()
    )


async def open_database(backend: str, workdir: Path, name: str) -> Database:
    if backend == "sqlite":
        path = workdir / f"{name}.db"
        url = f"sqlite+aiosqlite:///{path}"
        engine = create_engine(url)
        database = Database(backend, url, engine, create_sessionmaker(engine), sqlite_path=path)
    else:
        schema = f"{SCHEMA_PREFIX}{name}_{secrets.token_hex(4)}"
        await _pg_execute(f'CREATE SCHEMA "{schema}"')
        engine = create_engine(POSTGRES_URL, schema=schema)
        database = Database(
            backend, POSTGRES_URL, engine, create_sessionmaker(engine), schema=schema
        )
    try:
        await migrate(engine)
        # No idle connection of ours stays open: the bot process is the only user,
        # and SQLite checkpoints its WAL when the bot's last connection closes.
        await engine.dispose()
    except BaseException:
        await close_database(database)
        raise
    return database


async def close_database(database: Database) -> None:
    """Dispose the engine; drop the PostgreSQL schema (never left behind)."""
    try:
        await database.engine.dispose()
    finally:
        if database.schema:
            await _pg_execute(f'DROP SCHEMA IF EXISTS "{database.schema}" CASCADE')


# --------------------------------------------------------------------------- keys


def create_key_file(path: Path) -> KeyRing:
    write_key_file(path, KeyMaterial.generate(), exclusive=True)
    return KeyRing(load_key_file(path))


# --------------------------------------------------------------------------- processes


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (kB) of a live process, from /proc/<pid>/status."""
    found: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(value.split()[0])
    except OSError:
        return {}
    return found


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process, from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def postgres_cpu_seconds() -> float | None:
    """CPU seconds of every PostgreSQL process on this machine, from /proc.

    utime + stime + cutime + cstime of each process named ``postgres``: the
    postmaster's cutime/cstime carry the backends it has already reaped, so a
    connection that closed between two readings still counts. Every database
    of the server counts, other users' too. None when no such process is
    visible (a server on another machine or in another container).
    """
    total = 0
    found = False
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as handle:
                text = handle.read()
        except OSError:
            continue  # exited meanwhile
        name, _, rest = text.partition(" (")[2].rpartition(")")
        if name != "postgres":
            continue
        found = True
        total += sum(int(value) for value in rest.split()[11:15])
    return total / os.sysconf("SC_CLK_TCK") if found else None


def self_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


# --------------------------------------------------------------------------- statistics


def percentile(values: list[float], fraction: float) -> float:
    """Linear interpolation between closest ranks; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary_ms(seconds: list[float]) -> dict[str, float]:
    """p50/p95/p99/max of durations given in seconds, in milliseconds."""
    return {
        "p50_ms": round(percentile(seconds, 0.50) * 1000, 2),
        "p95_ms": round(percentile(seconds, 0.95) * 1000, 2),
        "p99_ms": round(percentile(seconds, 0.99) * 1000, 2),
        "max_ms": round(max(seconds) * 1000, 2) if seconds else math.nan,
        "count": len(seconds),
    }


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


# --------------------------------------------------------------------------- machine


def git_commit() -> str | None:
    try:
        found = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = found.stdout.strip()
    return commit or None


def load_average() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def machine_info() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "load_average_at_start": load_average(),
        "git_commit": git_commit(),
    }
