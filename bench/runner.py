"""The whole benchmark run: the parts in order, the tables, the JSON file."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import POSTGRES_URL, RESULTS_DIR, BenchError, machine_info, postgres_problem
from bench.faults import (
    FAULTS,
    QUICK_FAULTS,
    fault_rows,
    fault_runs,
    throughput_rows,
    throughput_runs,
)
from bench.harness import Step
from bench.intake import Speed, load_group
from bench.levers import lever_rows, lever_runs
from bench.report import (
    Row,
    intake_rows,
    markdown_table,
    ratios,
    staff_rows,
    targets,
    targets_table,
    text_table,
    write_json,
)
from bench.staff import staff_runs
from bench.surge import SURGE_REPLICAS, SURGE_REPORTERS, surge_rows, surge_runs
from bot.config import UPDATE_CONCURRENCY

PACED_THINK = (1.0, 3.0)
#: Reporters in each run of the levers section, where the targets are set.
LEVER_REPORTERS = 100
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _record(results: dict[str, Any], figures: dict[str, Any]) -> None:
    results["intake"].append(figures)
    for warning in figures["warnings"]:
        _log(f"  warning: {warning}")
    if figures["failed_reporters"] and figures["variant"] == "unlimited":
        # What the production limit prevents (docs/performance.md): a finding
        # to report, not a fault of the benchmark.
        _log(f"  lost: {figures['failed_reporters']} reporters never got their receipt")
    elif figures["failed_reporters"]:
        results["broken"].append(
            f"{figures['failed_reporters']} of {figures['reporters']} reporters did not reach "
            f"the receipt ({figures['bot']} on {figures['backend']}, "
            f"tasks_concurrency_limit={figures['tasks_concurrency_limit']}): "
            f"{(figures['bot_errors'] or figures['failures'] or ['?'])[0]}"
        )
        _log(f"  BROKEN: {results['broken'][-1]}")


async def _run(args: argparse.Namespace, workdir: Path, results: dict[str, Any]) -> None:
    backends: list[str] = results["backends"]
    reporters: list[int] = results["reporters"]
    sizes: list[int] = results["sizes"]
    profile: Path | None = args.profile
    speed = Speed(args.event_loop)
    if args.only in (None, "intake"):
        script: list[Step] | None = None
        for count in reporters:
            _log(f"intake on {', '.join(backends)} and the echo baseline: {count} users")
            for run in await load_group(
                backends,
                count,
                workdir,
                script=script,
                profile_dir=profile,
                progress=_log,
                tasks_limit=UPDATE_CONCURRENCY,
                speed=speed,
            ):
                script = run.script
                _record(results, run.as_dict())
        if args.unlimited:
            _log(
                f"intake on {', '.join(backends)}: {args.unlimited} users, "
                "without tasks_concurrency_limit (aiogram's default)"
            )
            for run in await load_group(
                backends,
                args.unlimited,
                workdir,
                script=script,
                profile_dir=profile,
                progress=_log,
                echo=False,
                tasks_limit=None,
                speed=speed,
            ):
                _record(results, run.as_dict())
        if args.paced:
            _log(f"intake on {', '.join(backends)}: {args.paced} users thinking {PACED_THINK} s")
            for run in await load_group(
                backends,
                args.paced,
                workdir,
                script=script,
                profile_dir=profile,
                progress=_log,
                think=PACED_THINK,
                echo=False,
                tasks_limit=UPDATE_CONCURRENCY,
                speed=speed,
            ):
                _record(results, run.as_dict())
    if args.only == "levers":
        reporters_per_run = max(reporters) if args.reporters_given else LEVER_REPORTERS
        results["levers"] = await asyncio.to_thread(
            lever_runs,
            args.lever_tree,
            args.before,
            reporters_per_run,
            backends,
            args.lever_rounds,
            _log,
        )
        return
    if args.only in (None, "faults") and "postgres" in backends:
        faults = QUICK_FAULTS if args.quick else FAULTS
        if args.faults:
            faults = tuple(name.strip() for name in args.faults.split(",") if name.strip())
            unknown = set(faults) - set(FAULTS)
            if unknown:
                raise BenchError(f"--faults: unknown {sorted(unknown)}; known: {FAULTS}")
        results["faults"] = await fault_runs(faults, args.fault_reporters, workdir, _log)
        for run in results["faults"]:
            if run["reports_completed"] != run["reporters"] or any(
                run[name]
                for name in (
                    "updates_lost",
                    "updates_handled_twice",
                    "notices_lost",
                    "notices_sent_twice",
                )
            ):
                _log(f"  fault {run['fault']}: something was lost or repeated (see the table)")
    if args.only in (None, "faults", "replicas") and "postgres" in backends and not args.quick:
        results["replicas"] = await throughput_runs(workdir, _log)
    if args.only == "surge" or (args.only is None and not args.quick):
        if "postgres" in backends:
            results["surge"] = await surge_runs(
                args.surge_reporters,
                workdir,
                _log,
                spread=args.surge_spread,
                replica_counts=tuple(args.surge_replicas or SURGE_REPLICAS),
            )
            for run in results["surge"]:
                if run["reports_completed"] != run["reporters"] or any(
                    run[name]
                    for name in ("updates_lost", "updates_handled_twice", "notices_missing")
                ):
                    _log(f"  surge with {run['replicas']} replicas: something was lost or repeated")
        else:
            _log("surge: needs PostgreSQL; skipped")
    if args.only in (None, "staff"):
        for backend in backends:
            _log(f"staff side on {backend}: {', '.join(map(str, sizes))} cases")
            results["staff"] += await staff_runs(
                backend, sizes, workdir, profile_dir=profile, progress=_log
            )


async def _main(args: argparse.Namespace, results: dict[str, Any], workdir: Path) -> None:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    if "postgres" in results["backends"]:
        problem = await postgres_problem()
        if problem is not None:
            message = f"PostgreSQL at {POSTGRES_URL} does not answer ({problem})"
            if IN_CI:
                raise BenchError(message + "; CI=true, so this is a failure")
            _log(message + "; running SQLite only")
            results["backends"].remove("postgres")
            results["skipped"].append(message)
    await _run(args, workdir, results)


def _print_tables(results: dict[str, Any]) -> str:
    """Print the terminal tables; return the Markdown version."""
    sections: list[tuple[str, tuple[Row, list[Row]] | None]] = [
        (
            "Intake load (latency: push of an update -> the bot's first answer in that chat)",
            intake_rows(results) if results["intake"] else None,
        ),
        (
            "Staff side (coordinator command -> the bot's answer; warm = median of reruns)",
            staff_rows(results) if results["staff"] else None,
        ),
        (
            "Faults (3 webhook replica processes on PostgreSQL, a redelivering proxy)",
            fault_rows(results["faults"]) if results.get("faults") else None,
        ),
        (
            "Replicas side by side (webhook replica processes on PostgreSQL, no fault)",
            throughput_rows(results["replicas"]) if results.get("replicas") else None,
        ),
        (
            "Levers (each configuration in its own run, interleaved; means over the rounds)",
            lever_rows(results["levers"]) if results.get("levers") else None,
        ),
        (
            "Surge (reporters thinking 1-3 s, webhook replica processes on PostgreSQL)",
            surge_rows(results["surge"]) if results.get("surge") else None,
        ),
        ("Targets (checked, not asserted)", targets_table(results["targets"])),
    ]
    parts: list[str] = []
    for title, table in sections:
        if table is not None:
            header, rows = table
            print(f"\n{title}")
            print(text_table(header, rows))
            parts.append(markdown_table(header, rows))
    return "\n\n".join(parts) + "\n"


def render(path: Path) -> int:
    """Print an earlier run's tables again, its targets checked anew; rewrite its files."""
    results = json.loads(path.read_text(encoding="utf-8"))
    results["targets"] = targets(results, results["backends"])
    results["ratio"] = ratios(results)
    markdown = _print_tables(results)
    write_json(path, results)
    path.with_suffix(".md").write_text(markdown, encoding="utf-8")
    return 0


def main(args: argparse.Namespace) -> int:
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    if not backends or any(name not in ("sqlite", "postgres") for name in backends):
        print("--backends: expected sqlite, postgres or both", file=sys.stderr)
        return 2
    args.surge_reporters = args.surge_reporters or SURGE_REPORTERS
    started = datetime.now(UTC)
    results: dict[str, Any] = {
        "kind": "quick" if args.quick else "full",
        "started": started.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "backends": backends,
        "reporters": args.reporters,
        "paced_reporters": args.paced,
        "unlimited_reporters": args.unlimited,
        "production_tasks_concurrency_limit": UPDATE_CONCURRENCY,
        "sizes": args.sizes,
        "postgres_url": POSTGRES_URL if "postgres" in backends else None,
        "speed": Speed(args.event_loop).label,
        "intake": [],
        "staff": [],
        "faults": [],
        "replicas": [],
        "levers": [],
        "surge_reporters": args.surge_reporters,
        "surge": [],
        "skipped": [],
        "broken": [],
        "targets": [],
    }
    workdir = Path(tempfile.mkdtemp(prefix="intake-bench-"))
    failed = False
    clock = time.perf_counter()
    try:
        asyncio.run(_main(args, results, workdir))
    except BenchError as exc:
        failed = True
        _log(f"BENCHMARK BROKEN: {exc}")
    except (KeyboardInterrupt, asyncio.CancelledError):
        failed = True
        _log("interrupted")
    except Exception:
        failed = True
        _log("BENCHMARK BROKEN by an unexpected error:")
        traceback.print_exc()
    finally:
        results["duration_s"] = round(time.perf_counter() - clock, 1)
        if failed:
            # Keep the bot logs for the post-mortem, nothing else.
            for path in workdir.iterdir():
                if path.suffix != ".log":
                    path.unlink(missing_ok=True)
            _log(f"bot logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    failed = failed or bool(results["broken"])
    results["failed"] = failed
    results["targets"] = targets(results, results["backends"])
    results["ratio"] = ratios(results)
    markdown = _print_tables(results)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    output = args.output or RESULTS_DIR / f"{stamp}-{results['kind']}.json"
    write_json(output, results)
    output.with_suffix(".md").write_text(markdown, encoding="utf-8")
    print(f"\nresults: {output} ({results['duration_s']} s)")
    return 1 if failed else 0
