"""Staff side at scale: /queue and /stats end to end, and ``keys rotate``.

For each database the case count grows in steps (1k, 10k, 100k): generated
rows are added, the bot is started against the database, a coordinator sends
``/queue`` and ``/stats`` through the emulator (timed from the push of the
command to the bot's answer arriving at the emulator), the bot is stopped and
the key rotation of ``intake-bot keys rotate`` (``add_primary_key`` +
``rewrap_all``) runs over everything.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.common import (
    BenchError,
    Database,
    Stopwatch,
    close_database,
    create_key_file,
    open_database,
    percentile,
)
from bench.harness import Answers, BotProcess, ProbedUser, Step
from bench.workload import CaseFactory, add_cases, check_equivalence, seed_staff
from bot.cases.stats import compute
from devkit.emulator import FakeTelegramServer
from storage.crypto import KeyRing
from storage.crypto.keyfile import load_key_file
from storage.keys import add_primary_key, rewrap_all
from storage.models import Case, KeyWrap, User

COORDINATOR_ID = 5_000_001
BENCH_PIN = "135792"
QUEUE_RUNS = 6  # the first is cold (fresh process), the median of the rest is "warm"
STATS_RUNS = 3
COMMAND_TIMEOUT = 180.0
PAGE_SIZE = 5


async def _command(
    server: FakeTelegramServer,
    user: ProbedUser,
    command: str,
    final_method: str,
) -> tuple[float, float, str]:
    """Seconds from the push to the first answer and to the last expected answer; text."""
    server.reset_calls()
    pushed = server.now()
    await user.send_command(command)
    answers = Answers.collect(server, frozenset({"sendmessage", final_method.lower()}))
    first = answers.first_after(user.user_id, pushed, "sendMessage")
    last = answers.first_after(user.user_id, pushed, final_method)
    if first is None or last is None:
        raise BenchError(f"{command}: the bot did not answer ({user.last_text()!r})")
    message = next(
        (m for m in reversed(user.bot_messages()) if m.kind == "text" and m.sent_at >= pushed),
        None,
    )
    return first - pushed, last - pushed, (message.body or "") if message else ""


async def _staff_commands(
    database: Database,
    key_file: Path,
    factory: CaseFactory,
    workdir: Path,
    name: str,
    profile_dir: Path | None,
) -> dict[str, Any]:
    async with FakeTelegramServer() as server:
        server.ensure_chat(COORDINATOR_ID, first_name="Coordinator")
        bot = BotProcess(
            "intake",
            server,
            database=database,
            key_file=key_file,
            coordinators=(COORDINATOR_ID,),
            log_path=workdir / f"{name}.log",
            profile_path=profile_dir / f"{name}.prof" if profile_dir else None,
        )
        steps: list[Step] = []
        try:
            startup = Stopwatch()
            await bot.start()
            started_in = startup.elapsed
            user = ProbedUser(server, bot, COORDINATOR_ID, steps=steps, timeout=COMMAND_TIMEOUT)
            # Staff choose a PIN before anything else (issue 13): chosen, then repeated.
            for _ in range(2):
                await user.send_text(BENCH_PIN)
            queue: list[float] = []
            queue_text = ""
            for _ in range(QUEUE_RUNS):
                first, _last, queue_text = await _command(server, user, "/queue", "sendMessage")
                queue.append(first)
            stats_text: list[float] = []
            stats_full: list[float] = []
            stats_body = ""
            for _ in range(STATS_RUNS):
                first, last, stats_body = await _command(server, user, "/stats", "sendPhoto")
                stats_text.append(first)
                stats_full.append(last)
            rss = bot.rss_kb()
        finally:
            code = await bot.stop()
        if code != 0:
            raise BenchError(f"the bot exited with {code}:\n{bot.log_tail()}")
    pages = max(1, -(-factory.open_cases // PAGE_SIZE))
    if f"/{pages})" not in queue_text:
        raise BenchError(f"/queue does not show {pages} pages: {queue_text[:200]!r}")
    if str(factory.consenting) not in stats_body:
        raise BenchError(f"/stats does not count {factory.consenting} cases: {stats_body[:200]!r}")
    return {
        "bot_start_s": round(started_in, 2),
        "queue_first_page": {
            "cold_ms": round(queue[0] * 1000, 1),
            "warm_median_ms": round(percentile(queue[1:], 0.5) * 1000, 1),
            "runs_ms": [round(value * 1000, 1) for value in queue],
        },
        "stats": {
            "cold_text_ms": round(stats_text[0] * 1000, 1),
            "cold_complete_ms": round(stats_full[0] * 1000, 1),
            "warm_text_ms": round(percentile(stats_text[1:], 0.5) * 1000, 1),
            "warm_complete_ms": round(percentile(stats_full[1:], 0.5) * 1000, 1),
            "runs_complete_ms": [round(value * 1000, 1) for value in stats_full],
            "note": "complete = the chart (sendPhoto), the last of the two answers",
        },
        "bot_rss_peak_mb": round(rss.get("VmHWM", 0) / 1024, 1),
    }


async def _rotate(database: Database, key_file: Path) -> dict[str, Any]:
    marks: dict[str, float] = {}
    watch = Stopwatch()

    def progress(stage: str, _count: int) -> None:
        marks[stage] = watch.elapsed

    add_primary_key(key_file)
    keyring = KeyRing(load_key_file(key_file))
    changed = await rewrap_all(database.sessionmaker, keyring, progress=progress)
    total = watch.elapsed
    async with database.sessionmaker() as session:
        stale = await session.scalar(
            select(func.count()).select_from(KeyWrap).where(KeyWrap.kek_id != keyring.primary_id)
        )
    if stale:
        raise BenchError(f"key rotation left {stale} key wraps on older keys")
    return {
        "seconds": round(total, 2),
        "key_wraps_s": round(marks.get("key_wraps", 0.0), 2),
        "values_changed": changed,
    }


async def _figures(database: Database, factory: CaseFactory) -> float:
    """Seconds ``stats.compute`` takes in process; checks the tally against the factory."""
    watch = Stopwatch()
    async with database.sessionmaker() as session:
        figures = await compute(session, factory.keyring)
    elapsed = watch.elapsed
    # Region is a single choice ("unknown" when skipped): one count per consenting case.
    counted = sum(figures.by_region.values())
    if figures.total != factory.consenting or counted != factory.consenting:
        raise BenchError(
            f"/stats figures: {figures.total} cases, {counted} by region; "
            f"{factory.consenting} consenting cases generated"
        )
    return elapsed


async def _counts(database: Database) -> tuple[int, int]:
    async with database.sessionmaker() as session:
        cases = int(await session.scalar(select(func.count()).select_from(Case)) or 0)
        users = int(await session.scalar(select(func.count()).select_from(User)) or 0)
    return cases, users


async def staff_runs(
    backend: str,
    sizes: list[int],
    workdir: Path,
    *,
    profile_dir: Path | None = None,
    progress: Any = None,
) -> list[dict[str, Any]]:
    """Grow one database through ``sizes``; measure the staff side at each size."""
    name = f"staff_{backend}"
    database = await open_database(backend, workdir, name)
    results: list[dict[str, Any]] = []
    try:
        key_file = workdir / f"{name}.keys.json"
        keyring = create_key_file(key_file)
        factory = CaseFactory(keyring)
        await seed_staff(database, factory)
        for size in sorted(sizes):
            watch = Stopwatch()
            first_batch = factory.made == 0
            await add_cases(database, factory, size - factory.made - (1 if first_batch else 0))
            if first_batch:
                await check_equivalence(database, factory)
            generated_in = watch.elapsed
            cases, users = await _counts(database)
            if cases != size:
                raise BenchError(f"{cases} cases in the database, {size} expected")
            if backend == "postgres":
                await database.analyze()
            compute_s = await _figures(database, factory)
            if progress:
                progress(
                    f"  {backend}: {size} cases generated in {generated_in:.1f}s; "
                    f"stats.compute {compute_s * 1000:.0f} ms"
                )
            commands = await _staff_commands(
                database, key_file, factory, workdir, f"{name}_{size}", profile_dir
            )
            size_bytes = await database.size()
            rotation_started = time.perf_counter()
            rotation = await _rotate(database, key_file)
            # As the bot would after its restart with the new key file: the next
            # size's cases (and the tally, resealed by the rotation) use it.
            factory.keyring = KeyRing(load_key_file(key_file))
            if progress:
                progress(
                    f"  {backend}: /queue {commands['queue_first_page']['warm_median_ms']} ms, "
                    f"/stats {commands['stats']['warm_complete_ms']} ms, rotate "
                    f"{time.perf_counter() - rotation_started:.1f}s"
                )
            results.append(
                {
                    "backend": backend,
                    "cases": cases,
                    "open_cases": factory.open_cases,
                    "stats_consenting": factory.consenting,
                    "users": users,
                    "generate_s": round(generated_in, 2),
                    "stats_compute_ms": round(compute_s * 1000, 1),
                    **commands,
                    "keys_rotate": rotation,
                    "database": {
                        **size_bytes,
                        **{
                            key.replace("_bytes", "_bytes_per_case"): round(value / cases)
                            for key, value in size_bytes.items()
                        },
                    },
                }
            )
    finally:
        await close_database(database)
    return results
