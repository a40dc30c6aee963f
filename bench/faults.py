"""The ``faults`` section: three webhook replicas, each its own OS process
(bench/replica_procs.py), on one PostgreSQL database behind a round-robin proxy
that redelivers on a 5xx or a dropped connection (devkit/replicas.py), reporters
filling in whole reports, one fault at a time; and the throughput of 1 and 2
replicas side by side (``throughput_runs``).

Faults (issue 14):

* ``none``: the baseline;
* ``replica-crash`` (a): ``kill -9`` (SIGKILL) of one replica process in the
  middle, then a new process starts in its place;
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
from bench.replica_procs import ProcessReplicaCluster
from devkit.emulator import FakeTelegramServer, SimulatedUser
from devkit.replicas import count_faults
from devkit.scripted_reporter import FULL_PLAN, ScriptedReporter
from devkit.throwaway_postgres import ThrowawayPostgres
from storage.db import create_engine, migrate

FAULTS = ("none", "replica-crash", "postgres-restart", "bot-api-errors", "same-moment")
QUICK_FAULTS = ("replica-crash", "same-moment")
COORDINATOR = 990_001
REPLICAS = 3
#: The throughput part: these replica counts side by side, this many reporters.
THROUGHPUT_REPLICAS = (1, 2)
THROUGHPUT_REPORTERS = 100


async def _report(server: FakeTelegramServer, user_id: int) -> str | BaseException:
    reporter = ScriptedReporter(SimulatedUser(server, user_id=user_id, timeout=300), "ru")
    try:
        await reporter.open()
        await reporter.fill(FULL_PLAN)
        return await reporter.submit()
    except (AssertionError, RuntimeError, LookupError, TimeoutError) as exc:
        return exc


async def _halfway(cluster: ProcessReplicaCluster, reporters: int) -> None:
    """Until about a third of the run's updates were handled (a report is ~40)."""
    await cluster.server.wait_for(
        lambda _s: len(cluster.counter.handled) >= reporters * 12, timeout=600
    )


async def _kill_one_replica(cluster: ProcessReplicaCluster, reporters: int) -> str:
    await _halfway(cluster, reporters)
    pid = await cluster.kill_and_restart(1)
    return f"kill -9 of replica 2 of 3 (pid {pid}), then a new process"


async def _restart_postgres(
    cluster: ProcessReplicaCluster, reporters: int, postgres: ThrowawayPostgres
) -> str:
    await _halfway(cluster, reporters)
    await postgres.restart()
    return "PostgreSQL restarted (pg_ctl restart -m fast)"


async def _bot_api_errors(cluster: ProcessReplicaCluster, reporters: int, calls: int = 200) -> str:
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


async def fault_run(
    fault: str,
    reporters: int,
    workdir: Path,
    replicas: int = REPLICAS,
    *,
    answer_in_response: bool = True,
) -> dict[str, Any]:
    """``answer_in_response=False``: presses answered by calls (``--answers-as-calls``)."""
    name = f"{fault}-{replicas}x{reporters}" + ("" if answer_in_response else "-calls")
    key_file = workdir / f"keys-{name}.json"
    create_key_file(key_file)
    started = time.perf_counter()
    async with _database(fault, workdir) as (url, schema, postgres), FakeTelegramServer() as server:
        server.ensure_chat(COORDINATOR, first_name="Coordinator", language_code="ru")
        logs = workdir / f"replica-{name}"
        cluster = ProcessReplicaCluster(
            server, key_file, url, schema, (COORDINATOR,), logs, answer_in_response
        )
        try:
            await cluster.start(replicas)
            cluster.proxy.duplicate = fault == "same-moment"
            first_update = server.last_update_id + 1
            injectors: dict[str, Callable[[], Awaitable[str]]] = {
                "replica-crash": lambda: _kill_one_replica(cluster, reporters),
                "postgres-restart": lambda: _restart_postgres(cluster, reporters, postgres),
                "bot-api-errors": lambda: _bot_api_errors(cluster, reporters),
            }
            injector = asyncio.create_task(injectors[fault]()) if fault in injectors else None
            load_started = time.perf_counter()
            cpu_before = cluster.cpu_seconds()
            harness_before = time.process_time()
            results = await asyncio.gather(
                *(_report(server, 920_000 + n) for n in range(reporters))
            )
            load_seconds = time.perf_counter() - load_started
            replica_cpu = cluster.cpu_seconds() - cpu_before
            # The emulator, the reporters and the proxy: the other side of the two cores.
            harness_cpu = time.process_time() - harness_before
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
            handled = len(cluster.counter.handled)
            # Methods Telegram (the emulator) executed from a webhook response.
            replies = sum(1 for call in server.calls if call.webhook_reply)
            errors = cluster.error_lines()
        finally:
            await cluster.stop()
    return {
        "fault": fault,
        "replicas": replicas,
        "reporters": reporters,
        "answer_in_response": answer_in_response,
        "webhook_replies": replies,
        "injected": injected,
        **figures.as_dict(),
        "failures": failures[:5],
        "replica_error_lines": errors[:5],
        "load_seconds": round(load_seconds, 1),
        "updates_handled": handled,
        "updates_per_second": round(handled / load_seconds, 1),
        "reports_per_minute": round(60 * len(references) / load_seconds, 1),
        "replica_cpu_seconds": round(replica_cpu, 1),
        "harness_cpu_seconds": round(harness_cpu, 1),
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


async def throughput_runs(
    workdir: Path, progress: Callable[[str], None], reporters: int = THROUGHPUT_REPORTERS
) -> list[dict[str, Any]]:
    """No fault; 1 and 2 replica processes side by side, the same reporters."""
    runs = []
    for replicas in THROUGHPUT_REPLICAS:
        progress(f"replicas: {replicas} webhook replica process(es), {reporters} reporters")
        run = await fault_run("none", reporters, workdir, replicas)
        progress(f"  {run}")
        runs.append(run)
    return runs


def throughput_rows(runs: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    header = [
        "replicas",
        "reporters",
        "reports completed",
        "updates",
        "load s",
        "updates/s",
        "reports/min",
        "replica CPU s",
        "harness CPU s",
        "lost / twice",
    ]
    rows = [
        [
            str(run["replicas"]),
            str(run["reporters"]),
            f"{run['reports_completed']}/{run['reporters']}",
            str(run["updates_handled"]),
            str(run["load_seconds"]),
            str(run["updates_per_second"]),
            str(run["reports_per_minute"]),
            str(run["replica_cpu_seconds"]),
            str(run["harness_cpu_seconds"]),
            f"{run['updates_lost']} / {run['updates_handled_twice']}",
        ]
        for run in runs
    ]
    return header, rows


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
