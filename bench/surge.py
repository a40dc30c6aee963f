"""The ``surge`` section: the day the bot is announced after a wave of arrests.

A thousand families write at once, on the cheapest 2-CPU server. Each reporter
fills in a whole report (``ScriptedReporter`` with ``FULL_PLAN``, languages
alternating ru/tg) at a person's pace: before every step, ``/start`` included,
it waits a uniformly drawn 1-3 s (one seeded ``random.Random`` per reporter,
so both runs draw the same waits). All reporters start together; the first
wait is the only spread of their ``/start``: 1000 of them arrive within 2 s
(about 500 per second), the burst the announcement causes, not smoothed away.

The bot runs as it would be deployed for it: webhook replicas as OS processes
(``bench/replica_procs.py``) behind the round-robin proxy
(``devkit/replicas.py``), on a fresh schema of the shared PostgreSQL server,
once with 1 and once with 2 replicas, the same seed each time. The replicas
use the production outbox timings, not the tests' ``FAST_OUTBOX``: its 50 ms
poll costs each replica CPU that production does not spend, and its
1000 messages/s with no per-chat interval would send the coordinator notices
faster than Telegram allows. With production timings the coordinator's 1000
notices go out at about one per second, so most are still queued when the
last reporter gets the receipt; the run does not wait for them: it counts
those sent, those still in the outbox, and those in neither (should be 0).

Answer latency is the push of an update by the emulator (``deliver_webhook``,
the moment it numbers the update and posts it to the proxy) to the arrival of
the bot's first answering call in that chat (``bench.harness.Answers``, as the
intake section computes it). The emulator lets up to 100 deliveries be in
flight (aiohttp's connection limit), more than Telegram's default of 40, so
the queue forms inside the replicas (10 updates at a time each,
``UPDATE_CONCURRENCY``) rather than at Telegram: push to answer includes the
wait either way.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select

from bench.common import (
    close_database,
    create_key_file,
    load_average,
    open_database,
    postgres_cpu_seconds,
    self_cpu_seconds,
    summary_ms,
)
from bench.harness import Answers, Step
from bench.intake import ANSWER_METHODS
from bench.replica_procs import ProcessReplicaCluster
from bot.notifications import PENDING, SENDING
from devkit.emulator import FakeTelegramServer, JsonDict, SimulatedUser
from devkit.replicas import count_faults
from devkit.scripted_reporter import FULL_PLAN, ScriptedReporter
from storage.models import OutboxMessage

SURGE_REPORTERS = 1000
SURGE_REPLICAS = (1, 2)
THINK = (1.0, 3.0)
SEED = 20261207
COORDINATOR = 990_001
FIRST_REPORTER = 940_000
LANGUAGES = ("ru", "tg")


def step_timeout(reporters: int) -> float:
    """Seconds one step may take: generous, since a surge saturates the bot by design."""
    return max(60.0, reporters * 0.6)


class PacedUser(SimulatedUser):
    """A person writing to the webhook bot: thinks, then sends; notes when each update left."""

    def __init__(
        self,
        server: FakeTelegramServer,
        user_id: int,
        *,
        steps: list[Step],
        think: tuple[float, float],
        rng: random.Random,
        timeout: float,
        arrives_after: float = 0.0,
    ) -> None:
        super().__init__(server, user_id=user_id, timeout=timeout)
        self.steps = steps
        self.think = think
        self.rng = rng
        #: seconds after the start before this person's first step
        self.arrives_after = arrives_after

    async def _deliver(self, update: JsonDict) -> int:
        if self.arrives_after:
            await asyncio.sleep(self.arrives_after)
            self.arrives_after = 0.0
        if self.think[1] > 0:
            await asyncio.sleep(self.rng.uniform(*self.think))
        server = self.server
        # deliver_webhook numbers the update before its first await: nothing else
        # can push one in between (``last_update_id`` read after it could be another's).
        update_id = server.last_update_id + 1
        pushed_at = server.now()
        status = await server.deliver_webhook(update, timeout=self.timeout)
        if status != 200:
            raise RuntimeError(f"webhook answered HTTP {status} to update {update_id}")
        kind = "callback" if "callback_query" in update else "message"
        self.steps.append(Step(update_id, self.user_id, kind, pushed_at))
        self.last_update_id = update_id
        return update_id


async def _report(
    server: FakeTelegramServer,
    index: int,
    steps: list[Step],
    think: tuple[float, float],
    seed: int,
    step_limit: float,
    spread: float = 0.0,
) -> str | BaseException:
    rng = random.Random(f"{seed}:{index}")
    user = PacedUser(
        server,
        FIRST_REPORTER + index,
        steps=steps,
        think=think,
        rng=rng,
        timeout=step_limit,
        arrives_after=rng.uniform(0.0, spread) if spread else 0.0,
    )
    reporter = ScriptedReporter(user, LANGUAGES[index % 2])
    try:
        await reporter.open()
        await reporter.fill(FULL_PLAN)
        return await reporter.submit()
    except (AssertionError, RuntimeError, LookupError, TimeoutError, aiohttp.ClientError) as exc:
        return exc


def _cpu(cluster: ProcessReplicaCluster) -> tuple[list[float], float, float | None]:
    return cluster.cpu_by_replica(), self_cpu_seconds(), postgres_cpu_seconds()


def _most_within(times: list[float], window: float) -> int:
    """The most of ``times`` within any ``window`` seconds."""
    ordered = sorted(times)
    best = start = 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def _outbox_backlog(cluster: ProcessReplicaCluster) -> int:
    async with cluster.database_engine.connect() as conn:
        found = await conn.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.state.in_((PENDING, SENDING)))
        )
    return int(found or 0)


async def surge_run(
    replicas: int,
    reporters: int,
    workdir: Path,
    *,
    think: tuple[float, float] = THINK,
    seed: int = SEED,
    spread: float = 0.0,
) -> dict[str, Any]:
    """One surge against ``replicas`` webhook replica processes; its figures.

    ``spread``: the reporters arrive at uniformly drawn moments over this many
    seconds instead of all at once.
    """
    name = f"surge_{replicas}x{reporters}"
    key_file = workdir / f"keys-{name}.json"
    create_key_file(key_file)
    started = time.perf_counter()
    load_before = load_average()
    database = await open_database("postgres", workdir, name)
    try:
        async with FakeTelegramServer() as server:
            server.ensure_chat(COORDINATOR, first_name="Coordinator", language_code="ru")
            cluster = ProcessReplicaCluster(
                server,
                key_file,
                database.url,
                database.schema,
                (COORDINATOR,),
                workdir / f"replica-{name}",
                fast_outbox=False,
            )
            try:
                await cluster.start(replicas)
                first_update = server.last_update_id + 1
                server.reset_calls()
                steps: list[Step] = []
                limit = step_timeout(reporters) + think[1]
                cpu_before = _cpu(cluster)
                load_started = time.perf_counter()
                results = await asyncio.gather(
                    *(
                        _report(server, n, steps, think, seed, limit, spread)
                        for n in range(reporters)
                    )
                )
                load_seconds = time.perf_counter() - load_started
                cpu_after = _cpu(cluster)
                load_after = load_average()
                pushed = server.last_update_id - first_update + 1
                errors = cluster.error_lines()
            finally:
                # Stopped before counting: no notice goes out between the two counts.
                await cluster.stop()
            references = [ref for ref in results if isinstance(ref, str)]
            failures = [
                f"{type(exc).__name__}: {str(exc)[:160]}"
                for exc in results
                if isinstance(exc, BaseException)
            ]
            try:
                figures = await count_faults(cluster, references, COORDINATOR, first_update)
                backlog = await _outbox_backlog(cluster)
            finally:
                await cluster.database_engine.dispose()
            latencies, unanswered = Answers.collect(server, ANSWER_METHODS).latencies(steps)
            notices = [
                call.at for call in server.calls_for("sendMessage") if call.chat_id == COORDINATOR
            ]
    finally:
        await close_database(database)
    handled = len(cluster.counter.handled)
    replica_cpu = [
        after - before for before, after in zip(cpu_before[0], cpu_after[0], strict=True)
    ]
    postgres_cpu = (
        None
        if cpu_before[2] is None or cpu_after[2] is None
        else round(cpu_after[2] - cpu_before[2], 1)
    )
    mean_think = sum(think) / 2
    return {
        "replicas": replicas,
        "reporters": reporters,
        "think_s": list(think),
        "arrivals_spread_s": spread,
        "seed": seed,
        "outbox": "production OutboxPolicy",
        "reports_completed": figures.reports_completed,
        "failures": failures[:5],
        "replica_error_lines": errors[:5],
        "updates_pushed": pushed,
        "updates_handled": handled,
        "load_seconds": round(load_seconds, 1),
        # What the reporters would send if every answer came at once: one update
        # per mean think time each, while all are writing (arriving together).
        "offered_updates_per_s": round(reporters / mean_think, 1)
        if mean_think and not spread
        else None,
        "updates_per_s": round(handled / load_seconds, 1),
        "latency_to_answer": summary_ms(latencies),
        "unanswered_updates": unanswered,
        "replica_cpu_seconds": [round(cpu, 1) for cpu in replica_cpu],
        "replica_cpu_share": [round(cpu / load_seconds, 2) for cpu in replica_cpu],
        "replica_cpu_ms_per_update": round(1000 * sum(replica_cpu) / handled, 2)
        if handled
        else None,
        "harness_cpu_seconds": round(cpu_after[1] - cpu_before[1], 1),
        "harness_cpu_share": round((cpu_after[1] - cpu_before[1]) / load_seconds, 2),
        "postgres_cpu_seconds": postgres_cpu,
        "postgres_cpu_note": "every process of the server, other users' work included",
        "load_average_before": load_before,
        "load_average_after": load_after,
        "updates_lost": figures.updates_lost,
        "updates_handled_twice": figures.updates_handled_twice,
        "redeliveries": figures.redeliveries,
        "notices_sent": figures.reports_completed - figures.notices_lost,
        "notices_sent_twice": figures.notices_sent_twice,
        "notices_queued": min(backlog, figures.notices_lost),
        # Rows still claimed for a notice that did arrive: the replica stopped
        # between the send and recording it; the outbox would send it again
        # once the claim's lease ran out (at least once, never lost).
        "notices_arrived_still_claimed": max(0, backlog - figures.notices_lost),
        # Neither sent nor waiting in the outbox.
        "notices_missing": max(0, figures.notices_lost - backlog),
        # Telegram allows about one message per second to a chat; each replica's
        # outbox keeps to that on its own. Over 10 s, so the jitter of arrival
        # times does not count a one-second spacing twice.
        "coordinator_notices_most_in_10_s": _most_within(notices, 10.0),
        "seconds": round(time.perf_counter() - started, 1),
    }


async def surge_runs(
    reporters: int,
    workdir: Path,
    progress: Callable[[str], None],
    *,
    think: tuple[float, float] = THINK,
    seed: int = SEED,
    spread: float = 0.0,
    replica_counts: tuple[int, ...] = SURGE_REPLICAS,
) -> list[dict[str, Any]]:
    """The same surge against 1, then 2, replica processes."""
    runs = []
    for replicas in replica_counts:
        arriving = f" arriving over {spread:g} s" if spread else " arriving together"
        progress(
            f"surge: {reporters} reporters{arriving} thinking {think[0]:g}-{think[1]:g} s, "
            f"{replicas} webhook replica process(es) on PostgreSQL"
        )
        run = await surge_run(replicas, reporters, workdir, think=think, seed=seed, spread=spread)
        latency = run["latency_to_answer"]
        progress(
            f"  {run['reports_completed']}/{reporters} reports, {run['updates_handled']} updates, "
            f"{run['updates_per_s']} updates/s, answer p50/p99 {latency['p50_ms']}/"
            f"{latency['p99_ms']} ms, replica CPU {run['replica_cpu_seconds']} s, "
            f"harness CPU {run['harness_cpu_seconds']} s, {run['load_seconds']} s"
        )
        for failure in run["failures"]:
            progress(f"  failed: {failure}")
        runs.append(run)
    return runs


def surge_rows(runs: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    header = [
        "replicas",
        "reporters",
        "arriving over s",
        "reports completed",
        "updates",
        "offered upd/s",
        "upd/s",
        "answer p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "replica CPU s",
        "CPU % of wall per replica",
        "CPU ms/upd",
        "harness CPU s",
        "PostgreSQL CPU s",
        "lost / twice",
        "load s",
    ]
    rows = []
    for run in runs:
        latency = run["latency_to_answer"]
        postgres = run["postgres_cpu_seconds"]
        rows.append(
            [
                str(run["replicas"]),
                f"{run['reporters']:,}",
                f"{run.get('arrivals_spread_s', 0):g}",
                f"{run['reports_completed']}/{run['reporters']}",
                f"{run['updates_handled']:,}",
                str(run["offered_updates_per_s"] or "—"),
                str(run["updates_per_s"]),
                f"{latency['p50_ms']:,.1f}",
                f"{latency['p95_ms']:,.1f}",
                f"{latency['p99_ms']:,.1f}",
                f"{latency['max_ms']:,.1f}",
                str(round(sum(run["replica_cpu_seconds"]), 1)),
                " + ".join(f"{share:.0%}" for share in run["replica_cpu_share"]),
                str(run["replica_cpu_ms_per_update"]),
                str(run["harness_cpu_seconds"]),
                "—" if postgres is None else str(postgres),
                f"{run['updates_lost']} / {run['updates_handled_twice']}",
                str(run["load_seconds"]),
            ]
        )
    return header, rows
