"""The ``faults`` section: three webhook replicas on one PostgreSQL database behind
a round-robin proxy that redelivers on a 5xx or a dropped connection
(devkit/replicas.py), reporters filling in whole reports, one fault at a time.

Faults (issue 14):

* ``none``: the baseline;
* ``replica-crash`` (a): one replica stops abruptly in the middle (its server
  closes, the updates it was handling are cancelled mid-transaction) and a new
  one starts in its place. In this process, so not a kill -9 of a process;
* ``postgres-restart`` (b): a PostgreSQL server of the run's own
  (devkit/throwaway_postgres.py, never the shared one) restarts in the middle;
  the pools recover without restarting the bot;
* ``bot-api-errors`` (c): for a while the Bot API answers 429 (retry_after 1)
  or 500 to one call in five;
* ``same-moment`` (d): every update reaches two replicas at the same moment.

For each: reports completed (should equal the reporters), updates lost,
updates handled twice, notices lost, notices sent twice (all should be 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.common import close_database, create_key_file, open_database
from devkit.emulator import FakeTelegramServer, SimulatedUser
from devkit.replicas import ReplicaCluster, count_faults
from devkit.sandbox import FAST_OUTBOX
from devkit.scripted_reporter import FULL_PLAN, ScriptedReporter
from devkit.throwaway_postgres import ThrowawayPostgres
from storage.db import create_engine, migrate

FAULTS = ("none", "replica-crash", "postgres-restart", "bot-api-errors", "same-moment")
QUICK_FAULTS = ("same-moment",)
COORDINATOR = 990_001
REPLICAS = 3


async def _report(server: FakeTelegramServer, user_id: int) -> str | BaseException:
    reporter = ScriptedReporter(SimulatedUser(server, user_id=user_id, timeout=300), "ru")
    try:
        await reporter.open()
        await reporter.fill(FULL_PLAN)
        return await reporter.submit()
    except (AssertionError, RuntimeError, LookupError, TimeoutError) as exc:
        return exc


async def _halfway(cluster: ReplicaCluster, reporters: int) -> None:
    """Until about a third of the run's updates were handled (a report is ~40)."""
    await cluster.server.wait_for(
        lambda _s: len(cluster.counter.handled) >= reporters * 12, timeout=600
    )


async def _crash_one_replica(cluster: ReplicaCluster, reporters: int) -> str:
    await _halfway(cluster, reporters)
    await cluster.crash_and_replace(1)
    return "replica 2 of 3 stopped abruptly and replaced"


async def _restart_postgres(
    cluster: ReplicaCluster, reporters: int, postgres: ThrowawayPostgres
) -> str:
    await _halfway(cluster, reporters)
    await postgres.restart()
    return "PostgreSQL restarted (pg_ctl restart -m fast)"


async def _bot_api_errors(cluster: ReplicaCluster, reporters: int, calls: int = 200) -> str:
    """One call in five fails (429 and 500 by turns) over the next ``calls`` calls."""
    await _halfway(cluster, reporters)
    server = cluster.server
    start = len(server.calls)
    for n in range(calls // 5):
        target = start + 5 * n
        await server.wait_for(lambda s, t=target: len(s.calls) >= t, timeout=300)
        server.inject_fault("*", "retry_after" if n % 2 else "server_error", retry_after=1)
    return f"{calls // 5} of {calls} Bot API calls failed (429 or 500)"


@contextlib.asynccontextmanager
async def _database(fault: str, workdir: Path) -> AsyncIterator[tuple[str, str | None, Any]]:
    """(url, schema, the throwaway server or None): a schema of the shared server,
    or for the restart fault a server of the run's own."""
    if fault != "postgres-restart":
        database = await open_database("postgres", workdir, f"faults_{fault.replace('-', '_')}")
        try:
            yield database.url, database.schema, None
        finally:
            await close_database(database)
        return
    postgres = ThrowawayPostgres()
    await postgres.start()
    try:
        engine = create_engine(postgres.url)
        await migrate(engine)
        await engine.dispose()
        yield postgres.url, None, postgres
    finally:
        await postgres.stop()


async def fault_run(fault: str, reporters: int, workdir: Path) -> dict[str, Any]:
    keyring = create_key_file(workdir / f"keys-{fault}.json")
    started = time.perf_counter()
    async with _database(fault, workdir) as (url, schema, postgres), FakeTelegramServer() as server:
        server.ensure_chat(COORDINATOR, first_name="Coordinator", language_code="ru")
        cluster = ReplicaCluster(
            server,
            keyring,
            url,
            schema,
            FAST_OUTBOX,
            {"coordinator_ids": frozenset({COORDINATOR}), "intake_per_minute": 0},
        )
        await cluster.start(REPLICAS)
        try:
            cluster.proxy.duplicate = fault == "same-moment"
            first_update = server.last_update_id + 1
            injectors: dict[str, Callable[[], Awaitable[str]]] = {
                "replica-crash": lambda: _crash_one_replica(cluster, reporters),
                "postgres-restart": lambda: _restart_postgres(cluster, reporters, postgres),
                "bot-api-errors": lambda: _bot_api_errors(cluster, reporters),
            }
            injector = asyncio.create_task(injectors[fault]()) if fault in injectors else None
            results = await asyncio.gather(
                *(_report(server, 920_000 + n) for n in range(reporters))
            )
            injected = "every update sent to two replicas" if cluster.proxy.duplicate else "-"
            if injector is not None:
                if injector.done() and injector.exception() is None:
                    injected = injector.result()
                else:
                    injected = "NOT INJECTED: the run ended first"
                    injector.cancel()
                    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                        await injector
            server.clear_faults()
            references = [ref for ref in results if isinstance(ref, str)]
            failures = [
                f"{type(exc).__name__}: {str(exc)[:160]}"
                for exc in results
                if isinstance(exc, BaseException)
            ]
            with contextlib.suppress(TimeoutError):
                await server.wait_for(lambda s: _notified(s) >= set(references), timeout=120)
            figures = await count_faults(cluster, references, COORDINATOR, first_update)
        finally:
            await cluster.stop()
    return {
        "fault": fault,
        "replicas": REPLICAS,
        "reporters": reporters,
        "injected": injected,
        **figures.as_dict(),
        "failures": failures[:5],
        "seconds": round(time.perf_counter() - started, 1),
    }


def _notified(server: FakeTelegramServer) -> set[str]:
    texts = [
        str(call.params.get("text"))
        for call in server.calls_for("sendMessage")
        if call.chat_id == COORDINATOR
    ]
    return {word.strip(".,") for text in texts for word in text.split() if word[4:5] == "-"}


async def fault_runs(
    faults: tuple[str, ...], reporters: int, workdir: Path, progress: Callable[[str], None]
) -> list[dict[str, Any]]:
    runs = []
    for fault in faults:
        progress(f"faults: {fault}, {REPLICAS} replicas, {reporters} reporters")
        run = await fault_run(fault, reporters, workdir)
        progress(f"  {run}")
        runs.append(run)
    return runs


def fault_rows(runs: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    header = [
        "fault",
        "reports completed",
        "updates lost",
        "handled twice",
        "notices lost",
        "notices twice",
        "redeliveries",
        "s",
    ]
    rows = [
        [
            str(run["fault"]),
            f"{run['reports_completed']}/{run['reporters']}",
            str(run["updates_lost"]),
            str(run["updates_handled_twice"]),
            str(run["notices_lost"]),
            str(run["notices_sent_twice"]),
            str(run["redeliveries"]),
            str(run["seconds"]),
        ]
        for run in runs
    ]
    return header, rows
