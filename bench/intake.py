"""Intake load: N reporters fill in the whole questionnaire at once; and the echo baseline.

Each reporter is a :class:`~devkit.scripted_reporter.ScriptedReporter` with
``FULL_PLAN`` over a :class:`~bench.harness.ProbedUser`: it reads the question on
screen and presses buttons by their labels, one step at a time (each step waits
until the bot finished the previous update); reporters run concurrently. The
bot polls the emulator over real HTTP from its own process.

The echo baseline replays exactly the updates one intake reporter sent (same
number, same kinds, same texts and callback data) against a minimal aiogram bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.common import (
    BenchError,
    Database,
    close_database,
    create_key_file,
    open_database,
    self_cpu_seconds,
    summary_ms,
)
from bench.harness import Answers, BotProcess, ProbedUser, Step
from bench.workload import plan_answers
from bot.speedups import EventLoopChoice, event_loop_name
from devkit.emulator import FakeTelegramServer
from devkit.scripted_reporter import _I18N as reporter_i18n
from devkit.scripted_reporter import FULL_PLAN, ScriptedReporter
from storage.crypto import KeyRing
from storage.models import Case
from storage.repositories import CaseRepository

COORDINATOR_ID = 5_000_001
WARMUP_USER = 1_000
FIRST_REPORTER = 2_000_000
LANGUAGES = ("ru", "tg")
ANSWER_METHODS = frozenset(
    {
        "sendmessage",
        "editmessagetext",
        "editmessagereplymarkup",
        "editmessagecaption",
        "answercallbackquery",
        "deletemessages",
        "deletemessage",
        "sendphoto",
        "senddocument",
    }
)

_run_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Speed:
    """The event loop a bot process runs with (bot/speedups.py)."""

    event_loop: EventLoopChoice = "auto"

    def argv(self) -> tuple[str, ...]:
        return ("--event-loop", self.event_loop)

    @property
    def label(self) -> str:
        """What it means on this machine: ``uvloop`` or ``asyncio``."""
        return event_loop_name(self.event_loop)


#: The anchor: aiogram as it comes, on the standard library's loop.
PLAIN = Speed("asyncio")


def step_timeout(reporters: int) -> float:
    """Seconds one step may take: generous, since all reporters queue at one bot."""
    return max(60.0, reporters * 0.25)


@dataclass(slots=True)
class LoadRun:
    """What one load run measured (intake or echo)."""

    bot: str
    backend: str | None
    reporters: int
    steps: list[Step]
    wall_s: float
    bot_cpu_s: float
    harness_cpu_s: float
    rss_kb: dict[str, int]
    idle_rss_kb: int
    warm_rss_kb: int
    latencies: list[float]
    unanswered: int
    script: list[Step]
    database: dict[str, Any] | None = None
    warnings: list[str] | None = None
    think: tuple[float, float] | None = None
    tasks_limit: int | None = None
    failures: list[str] | None = None
    bot_errors: list[str] | None = None
    api_calls: dict[str, int] | None = None
    speed: Speed = PLAIN

    @property
    def variant(self) -> str:
        """ "" for the bot as deployed (and the plain echo bot), else how this run differs.

        The second echo bot runs on the intake bot's loop: its variant
        names them, and the intake bot's ratio is taken against it.
        """
        if self.bot != "intake":
            return "" if self.speed.label == PLAIN.label else self.speed.label
        if self.think:
            return "paced"
        return "" if self.tasks_limit else "unlimited"

    def as_dict(self) -> dict[str, Any]:
        updates = len(self.steps)
        per_reporter = sorted({sum(1 for _ in group) for _, group in _by_chat(self.steps)})
        handled = [step.done_at - step.pushed_at for step in self.steps]
        peak = self.rss_kb.get("VmHWM", 0)
        calls = self.api_calls or {}
        messages = sum(count for method, count in calls.items() if _sends_a_message(method))
        return {
            "bot": self.bot,
            "variant": self.variant,
            "speed": self.speed.label,
            "backend": self.backend,
            "reporters": self.reporters,
            "think_s": list(self.think) if self.think else None,
            "tasks_concurrency_limit": self.tasks_limit,
            "failed_reporters": len(self.failures or []),
            "failures": (self.failures or [])[:5],
            "bot_errors": (self.bot_errors or [])[:10],
            "updates": updates,
            "updates_per_reporter": per_reporter,
            "wall_s": round(self.wall_s, 3),
            "updates_per_s": round(updates / self.wall_s, 1) if self.wall_s else None,
            "latency_to_answer": summary_ms(self.latencies),
            "unanswered_updates": self.unanswered,
            "latency_to_handled": summary_ms(handled),
            "bot_cpu_s": round(self.bot_cpu_s, 2),
            "bot_cpu_ms_per_update": round(1000 * self.bot_cpu_s / updates, 2) if updates else None,
            "bot_api_calls": dict(sorted(calls.items())),
            "bot_api_calls_per_update": round(sum(calls.values()) / updates, 2)
            if updates
            else None,
            # Sent or edited messages: what Telegram's ~30 messages/s per bot limits.
            "messages_per_s": round(messages / self.wall_s, 1) if self.wall_s else None,
            "bot_cpu_share": round(self.bot_cpu_s / self.wall_s, 2) if self.wall_s else None,
            "harness_cpu_s": round(self.harness_cpu_s, 2),
            "harness_cpu_share": round(self.harness_cpu_s / self.wall_s, 2)
            if self.wall_s
            else None,
            "max_concurrent_reporters": _max_concurrent(self.steps),
            "rss": {
                "measured": "bot process only (/proc/<pid>/status); emulator runs elsewhere",
                "idle_mb": round(self.idle_rss_kb / 1024, 1),
                "after_warmup_mb": round(self.warm_rss_kb / 1024, 1),
                "peak_mb": round(peak / 1024, 1),
                "end_mb": round(self.rss_kb.get("VmRSS", 0) / 1024, 1),
                "growth_mb": round((peak - self.warm_rss_kb) / 1024, 1),
                "growth_note": "peak (VmHWM) minus RSS after one warm-up reporter, 0 drafts",
            },
            "database": self.database,
            "warnings": self.warnings or [],
        }

    def headline(self) -> str:
        figures = self.as_dict()
        where = f" on {self.backend}" if self.backend else ""
        paced = f" thinking {self.think[0]:g}-{self.think[1]:g}s" if self.think else ""
        limited = " (no tasks_concurrency_limit)" if self.variant == "unlimited" else ""
        failed = f", {len(self.failures)} FAILED" if self.failures else ""
        return (
            f"  {self.bot}{where}{limited}, {self.reporters} users{paced}: "
            f"{figures['updates_per_s']} updates/s, "
            f"answer p50/p99 {figures['latency_to_answer']['p50_ms']}/"
            f"{figures['latency_to_answer']['p99_ms']} ms, bot CPU {figures['bot_cpu_share']}, "
            f"{figures['bot_cpu_ms_per_update']} ms CPU and "
            f"{figures['bot_api_calls_per_update']} API calls per update, "
            f"harness CPU {figures['harness_cpu_share']}, {figures['wall_s']} s{failed}"
        )


def _sends_a_message(method: str) -> bool:
    return method.startswith(("send", "edit", "copy", "forward"))


def _max_concurrent(steps: list[Step]) -> int:
    """Most reporters between their first update and their last at any moment."""
    spans: dict[int, tuple[float, float]] = {}
    for step in steps:
        first, last = spans.get(step.chat_id, (step.pushed_at, step.done_at))
        spans[step.chat_id] = (min(first, step.pushed_at), max(last, step.done_at))
    events = sorted(
        [(first, 1) for first, _ in spans.values()] + [(last, -1) for _, last in spans.values()]
    )
    best = current = 0
    for _, change in events:
        current += change
        best = max(best, current)
    return best


def _by_chat(steps: list[Step]) -> Any:
    ordered = sorted(steps, key=lambda step: (step.chat_id, step.pushed_at))
    return itertools.groupby(ordered, key=lambda step: step.chat_id)


async def _reporter(
    server: FakeTelegramServer,
    bot: BotProcess,
    user_id: int,
    language: str,
    steps: list[Step],
    step_limit: float,
    think: tuple[float, float] | None = None,
) -> str:
    user = ProbedUser(server, bot, user_id, steps=steps, timeout=step_limit, think=think)
    reporter = ScriptedReporter(user, language)
    try:
        await reporter.open()
        await reporter.fill(FULL_PLAN)
        return await reporter.submit()
    except (AssertionError, LookupError) as exc:
        raise BenchError(
            f"reporter {user_id} did not reach the receipt: {exc}; "
            f"last screen: {user.last_text()!r}"
        ) from exc


async def _replayer(
    server: FakeTelegramServer,
    bot: BotProcess,
    user_id: int,
    script: list[Step],
    steps: list[Step],
    step_limit: float,
) -> None:
    user = ProbedUser(server, bot, user_id, steps=steps, timeout=step_limit)
    for step in script:
        await user.replay(step)


async def _gather(coroutines: list[Any]) -> list[Any]:
    """Run concurrently; the first failure cancels the others."""
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(coroutine) for coroutine in coroutines]
    return [task.result() for task in tasks]


async def _gather_outcomes(coroutines: list[Any]) -> list[Any]:
    """Run concurrently; a reporter the bot failed (BenchError) is an outcome, not the end.

    Anything else (a bug of the harness) still stops the run.
    """
    outcomes = await asyncio.gather(*coroutines, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not isinstance(outcome, BenchError):
            raise outcome
    return list(outcomes)


@dataclass(frozen=True, slots=True)
class _Measured:
    wall_s: float
    bot_cpu_s: float
    harness_cpu_s: float
    api_calls: dict[str, int]
    results: list[Any]


async def _measure(server: FakeTelegramServer, bot: BotProcess, run: Any) -> _Measured:
    server.reset_calls()
    bot_cpu = bot.cpu_seconds()
    own_cpu = self_cpu_seconds()
    started = time.perf_counter()
    results = await run()
    wall = time.perf_counter() - started
    calls = Counter(call.method for call in server.calls if call.method != "getUpdates")
    return _Measured(
        wall, bot.cpu_seconds() - bot_cpu, self_cpu_seconds() - own_cpu, dict(calls), results
    )


@dataclass(slots=True)
class _Target:
    """One bot under test with its own emulator (and database, for the intake bot)."""

    name: str
    server: FakeTelegramServer
    bot: BotProcess
    database: Database | None = None
    keyring: KeyRing | None = None
    speed: Speed = PLAIN


async def load_group(
    backends: list[str],
    reporters: int,
    workdir: Path,
    *,
    script: list[Step] | None,
    profile_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
    think: tuple[float, float] | None = None,
    echo: bool = True,
    tasks_limit: int | None = None,
    speed: Speed | None = None,
) -> list[LoadRun]:
    """Intake runs on each backend, then the echo baseline, all with ``reporters`` users.

    ``speed``: the intake bot's event loop (default: as deployed). The plain
    echo bot (``PLAIN``) always runs; a second echo bot with ``speed`` too when it differs.

    The bot processes start together; then each is measured alone while the
    others sit idle in a long poll. With ``think`` every reporter waits that many
    seconds (uniformly drawn) before each update, as a person would.
    """
    results: list[LoadRun] = []
    async with contextlib.AsyncExitStack() as stack:
        speed = speed or Speed()
        runs: list[tuple[str | None, Speed]] = [(backend, speed) for backend in backends]
        if echo:
            runs.append((None, PLAIN))
            if speed.label != PLAIN.label:
                runs.append((None, speed))
        targets: list[_Target] = []
        for backend, run_speed in runs:
            name = f"{'echo' if backend is None else 'intake_' + backend}_{reporters}"
            name += f"_{next(_run_ids)}"
            limit = None if backend is None else tasks_limit
            server = await stack.enter_async_context(FakeTelegramServer())
            database = keyring = key_file = None
            if backend is not None:
                database = await open_database(backend, workdir, name)
                stack.push_async_callback(close_database, database)
                key_file = workdir / f"{name}.keys.json"
                keyring = create_key_file(key_file)
                server.ensure_chat(COORDINATOR_ID, first_name="Coordinator")
            bot = BotProcess(
                "echo" if backend is None else "intake",
                server,
                database=database,
                key_file=key_file,
                coordinators=() if backend is None else (COORDINATOR_ID,),
                log_path=workdir / f"{name}.log",
                profile_path=profile_dir / f"{name}.prof" if profile_dir else None,
                tasks_limit=limit,
                extra_argv=run_speed.argv(),
            )
            stack.push_async_callback(bot.stop)
            targets.append(_Target(name, server, bot, database, keyring, run_speed))
        # The bots compile the translations when they start; so does the reporters'
        # reading of the screen, so that both use the same catalogues even if they
        # were edited since this process started.
        reporter_i18n.reload()
        await _gather([target.bot.start() for target in targets])
        for target in targets:
            if target.database is None:
                if script is None:
                    raise BenchError("the echo baseline needs an intake run's script first")
                run = await _echo(target, reporters, script)
            else:
                run = await _intake(target, reporters, script, think)
                script = run.script
            results.append(run)
            if progress is not None:
                progress(run.headline())
    return results


async def _stop(target: _Target) -> None:
    code = await target.bot.stop()
    if code != 0:
        raise BenchError(f"the {target.name} bot exited with {code}:\n{target.bot.log_tail()}")


async def _intake(
    target: _Target,
    reporters: int,
    script: list[Step] | None,
    think: tuple[float, float] | None = None,
) -> LoadRun:
    server, bot = target.server, target.bot
    assert target.database is not None and target.keyring is not None
    limit = step_timeout(reporters)
    warmup: list[Step] = []
    await _reporter(server, bot, WARMUP_USER, "ru", warmup, limit)
    warm_rss = bot.rss_kb().get("VmRSS", 0)
    steps: list[Step] = []

    async def load() -> list[str | BaseException]:
        return await _gather_outcomes(
            [
                _reporter(
                    server,
                    bot,
                    FIRST_REPORTER + index,
                    LANGUAGES[index % 2],
                    steps,
                    limit + (think[1] if think else 0.0),
                    think,
                )
                for index in range(reporters)
            ]
        )

    measured = await _measure(server, bot, load)
    outcomes = measured.results
    rss = bot.rss_kb()
    latencies, missing = Answers.collect(server, ANSWER_METHODS).latencies(steps)
    await _stop(target)
    references = [outcome for outcome in outcomes if isinstance(outcome, str)]
    failures = [str(outcome) for outcome in outcomes if isinstance(outcome, BaseException)]
    figures, warnings = await _check_cases(
        target.database, target.keyring, references, len(failures)
    )
    return LoadRun(
        "intake",
        target.database.backend,
        reporters,
        steps,
        measured.wall_s,
        measured.bot_cpu_s,
        measured.harness_cpu_s,
        rss,
        bot.idle_rss_kb,
        warm_rss,
        latencies,
        missing,
        script if script is not None else warmup,
        figures,
        warnings,
        think,
        bot.tasks_limit,
        failures,
        bot.error_lines(),
        measured.api_calls,
        target.speed,
    )


async def _check_cases(
    database: Database, keyring: KeyRing, references: list[str], failed: int
) -> tuple[dict[str, Any], list[str]]:
    """Every receipt's case exists, nothing else was stored; bytes per case; answers' shape."""
    warnings: list[str] = []
    async with database.sessionmaker() as session:
        count = int(await session.scalar(select(func.count()).select_from(Case)) or 0)
        found: set[str] = set()
        for start in range(0, len(references), 500):
            chunk = references[start : start + 500]
            found |= set(
                await session.scalars(select(Case.reference).where(Case.reference.in_(chunk)))
            )
        stored = None
        if references:
            sample = await CaseRepository(session, keyring).by_reference(references[0])
            stored = await CaseRepository(session, keyring).answers(sample) if sample else None
    # One case per receipt, plus the warm-up reporter's; a reporter the bot failed
    # after storing the case (the receipt was lost) may add one more.
    if len(found) != len(set(references)) or not 0 <= count - 1 - len(references) <= failed:
        raise BenchError(
            f"case count mismatch: {count} cases stored for {len(references)} receipts "
            f"(+1 warm-up, {failed} failed reporters); {len(found)} receipts found"
        )
    if stored is not None and stored != plan_answers(FULL_PLAN):
        warnings.append(
            "the generated answers (bench.workload.plan_answers) differ from what the bot "
            "stored for FULL_PLAN: " + json.dumps(stored, ensure_ascii=False)[:300]
        )
    size = await database.size()
    await database.engine.dispose()
    figures: dict[str, Any] = {"cases": count, **size}
    for key, value in size.items():
        figures[key.replace("_bytes", "_bytes_per_case")] = round(value / count)
    return figures, warnings


async def _echo(target: _Target, reporters: int, script: list[Step]) -> LoadRun:
    """The same traffic shape against a minimal aiogram echo bot."""
    server, bot = target.server, target.bot
    limit = step_timeout(reporters)
    await _replayer(server, bot, WARMUP_USER, script, [], limit)
    warm_rss = bot.rss_kb().get("VmRSS", 0)
    steps: list[Step] = []

    async def load() -> list[None]:
        return await _gather(
            [
                _replayer(server, bot, FIRST_REPORTER + index, script, steps, limit)
                for index in range(reporters)
            ]
        )

    measured = await _measure(server, bot, load)
    rss = bot.rss_kb()
    latencies, missing = Answers.collect(server, ANSWER_METHODS).latencies(steps)
    await _stop(target)
    return LoadRun(
        "echo",
        None,
        reporters,
        steps,
        measured.wall_s,
        measured.bot_cpu_s,
        measured.harness_cpu_s,
        rss,
        bot.idle_rss_kb,
        warm_rss,
        latencies,
        missing,
        script,
        api_calls=measured.api_calls,
        speed=target.speed,
    )
