"""Canary scans: is any plaintext left in the raw bytes of the database?

A test stores unique strings (canaries) through the bot, then looks for them
in what an adversary who seized the server would get: the SQLite file and its
journal companions, or a ``pg_dump`` of the PostgreSQL schema. A canary is
searched in every encoding a careless code path could have written it in.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
from collections.abc import Iterable

from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_URL, Database

PG_DUMP = "/usr/bin/pg_dump"


def new_canary(label: str = "Канарейка") -> str:
    """A unique canary with Cyrillic, all six Tajik letters, an emoji and random hex."""
    return f"{label}-ӣӯҳқғҷ-🐦-{secrets.token_hex(8)}"


def _base64_variants(data: bytes) -> dict[str, bytes]:
    """The stable part of the base64 text of ``data`` at each alignment in a longer blob.

    Inside a longer encoded value ``data`` may start at any byte offset modulo 3;
    characters that mix in bits of neighbouring bytes (or padding) are cut off.
    """
    variants: dict[str, bytes] = {}
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + data)
        start = -(-8 * shift // 6)  # ceil: the first character made of data bits only
        end = 8 * (shift + len(data)) // 6  # floor: characters not touching what follows
        stable = encoded[start:end]
        suffix = "" if shift == 0 else f"+{shift}"
        variants[f"base64{suffix}"] = stable
        urlsafe = stable.translate(bytes.maketrans(b"+/", b"-_"))
        if urlsafe != stable:
            variants[f"base64url{suffix}"] = urlsafe
    return variants


def encodings(canary: str) -> dict[str, bytes]:
    """``canary`` as raw bytes in every encoding the scan looks for, by name."""
    utf8 = canary.encode("utf-8")
    found: dict[str, bytes] = {
        "utf-8": utf8,
        "utf-16-le": canary.encode("utf-16-le"),
        "utf-16-be": canary.encode("utf-16-be"),
        "hex": utf8.hex().encode(),
        "HEX": utf8.hex().upper().encode(),
        **_base64_variants(utf8),
    }
    # json.dumps(ensure_ascii=True) writes non-ASCII as \\uXXXX escapes.
    escaped = json.dumps(canary)[1:-1].encode("ascii")
    if escaped != utf8:
        found["json-escaped"] = escaped
    if canary.isascii() and canary.isdigit():
        found["decimal"] = utf8
    return found


def scan(blob: bytes, canaries: Iterable[str]) -> list[str]:
    """Every (canary, encoding) found in ``blob``, as readable lines; empty means clean."""
    hits: list[str] = []
    for canary in canaries:
        for name, needle in encodings(canary).items():
            if needle and needle in blob:
                hits.append(f"{canary!r} found as {name} at byte {blob.index(needle)}")
    return hits


def _read_sqlite_files(database: Database) -> bytes:
    parts: list[bytes] = []
    for path in database.raw_files():
        if path.exists():
            parts.append(f"\n--- {path.name}\n".encode())
            parts.append(path.read_bytes())
    return b"".join(parts)


async def _pg_dump(database: Database) -> bytes:
    assert database.schema is not None
    url = make_url(POSTGRES_URL)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    process = await asyncio.create_subprocess_exec(
        PG_DUMP,
        "-h",
        url.host or "127.0.0.1",
        "-p",
        str(url.port or 5432),
        "-U",
        url.username or "postgres",
        "-d",
        url.database or "postgres",
        "-n",
        database.schema,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    stdout, stderr = await process.communicate()
    if process.returncode != 0:
        raise AssertionError(f"pg_dump failed ({process.returncode}): {stderr.decode()}")
    # A dump without the tables would make every scan pass: make sure they are there.
    if b"CREATE TABLE" not in stdout or b"COPY " not in stdout:
        raise AssertionError("pg_dump output has no tables")
    return stdout


async def raw_database_bytes(database: Database) -> bytes:
    """What a seized server reveals: the raw database bytes.

    SQLite: the database file and its -wal/-journal/-shm companions, read as they
    are, then once more after the engine is disposed (which checkpoints the WAL
    into the main file). PostgreSQL: a ``pg_dump`` of the test's schema.
    Call it with the bot stopped; the engine reconnects on its next use.
    """
    if database.backend == "sqlite":
        live = _read_sqlite_files(database)
        await database.engine.dispose()
        return live + b"\n--- after dispose\n" + _read_sqlite_files(database)
    return await _pg_dump(database)
