"""Tables (terminal and Markdown), the targets, and the JSON file."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

Row = Sequence[str]

#: The intake bot's CPU per update at N=100 that the targets hold it to.
CPU_MS_PER_UPDATE = {"sqlite": 4.0, "postgres": 3.0}
#: The loop of a run recorded before runs named theirs: the standard one.
UNNAMED_LOOP = "asyncio"


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def intake_rows(results: dict[str, Any]) -> tuple[Row, list[Row]]:
    header = (
        "bot",
        "loop",
        "db",
        "N",
        "updates",
        "upd/s",
        "vs echo",
        "answer p50 ms",
        "p95 ms",
        "p99 ms",
        "handled p99 ms",
        "failed",
        "bot CPU",
        "CPU ms/upd",
        "API calls/upd",
        "msgs/s",
        "RSS warm→peak MB",
        "growth MB",
        "DB bytes/case",
    )
    rows: list[Row] = []
    for run in results.get("intake", []):
        latency = run["latency_to_answer"]
        variant = f" {run['variant']}" if run.get("variant") else ""
        ratio = echo_ratio(results, run) if run["bot"] == "intake" and not variant else None
        database = run.get("database") or {}
        per_case = database.get("used_bytes_per_case") or database.get("relation_bytes_per_case")
        rss = run["rss"]
        rows.append(
            (
                run["bot"] + variant,
                run.get("speed", UNNAMED_LOOP),
                run["backend"] or "—",
                _fmt(run["reporters"]),
                _fmt(run["updates"]),
                _fmt(run["updates_per_s"], 1),
                f"{ratio:.0%}" if ratio is not None else "—",
                _fmt(latency["p50_ms"], 1),
                _fmt(latency["p95_ms"], 1),
                _fmt(latency["p99_ms"], 1),
                _fmt(run["latency_to_handled"]["p99_ms"], 1),
                _fmt(run.get("failed_reporters", 0)),
                f"{run['bot_cpu_share']:.0%}" if run.get("bot_cpu_share") is not None else "—",
                _fmt(run.get("bot_cpu_ms_per_update"), 1),
                _fmt(run.get("bot_api_calls_per_update"), 2),
                _fmt(run.get("messages_per_s"), 1),
                f"{rss['after_warmup_mb']:.0f}→{rss['peak_mb']:.0f}",
                _fmt(rss["growth_mb"], 1),
                _fmt(per_case),
            )
        )
    return header, rows


def echo_ratio(results: dict[str, Any], run: dict[str, Any]) -> float | None:
    """An intake run's updates/s over the echo bot's with the same users and loop."""
    speed = run.get("speed", UNNAMED_LOOP)
    for echo in results.get("intake", []):
        if (
            echo["bot"] == "echo"
            and echo["reporters"] == run["reporters"]
            and echo.get("speed", UNNAMED_LOOP) == speed
            and echo["updates_per_s"]
        ):
            return float(run["updates_per_s"]) / float(echo["updates_per_s"])
    return None


def ratios(results: dict[str, Any]) -> dict[str, float]:
    """Per database: the intake bot as deployed over the echo bot on its loop,
    at the fewest users measured (``ratio`` in the JSON)."""
    found: dict[str, float] = {}
    deployed = [
        run for run in results.get("intake", []) if run["bot"] == "intake" and not run["variant"]
    ]
    for run in sorted(deployed, key=lambda run: run["reporters"], reverse=True):
        ratio = echo_ratio(results, run)
        if ratio is not None:
            found[run["backend"]] = round(ratio, 3)
    return found


def staff_rows(results: dict[str, Any]) -> tuple[Row, list[Row]]:
    header = (
        "db",
        "cases",
        "/queue cold ms",
        "/queue warm ms",
        "/stats cold ms",
        "/stats warm ms",
        "keys rotate s",
        "DB bytes/case",
    )
    rows: list[Row] = []
    for run in results.get("staff", []):
        database = run["database"]
        per_case = database.get("used_bytes_per_case") or database.get("relation_bytes_per_case")
        rows.append(
            (
                run["backend"],
                _fmt(run["cases"]),
                _fmt(run["queue_first_page"]["cold_ms"], 1),
                _fmt(run["queue_first_page"]["warm_median_ms"], 1),
                _fmt(run["stats"]["cold_complete_ms"], 0),
                _fmt(run["stats"]["warm_complete_ms"], 0),
                _fmt(run["keys_rotate"]["seconds"], 2),
                _fmt(per_case),
            )
        )
    return header, rows


def text_table(header: Row, rows: list[Row]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * width for width in widths))
    lines += [
        "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    return "\n".join(lines)


def markdown_table(header: Row, rows: list[Row]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------- targets


def _intake(
    results: dict[str, Any], bot: str, reporters: int, backend: str | None, variant: str = ""
) -> Any:
    for run in results.get("intake", []):
        if (
            run["bot"] == bot
            and run["reporters"] == reporters
            and run["backend"] == backend
            and run.get("variant", "") == variant
        ):
            return run
    return None


def _staff(results: dict[str, Any], backend: str, cases: int) -> Any:
    for run in results.get("staff", []):
        if run["backend"] == backend and run["cases"] == cases:
            return run
    return None


def _verdict(measured: float | None, limit: float, *, below: bool = True) -> str:
    if measured is None or (isinstance(measured, float) and math.isnan(measured)):
        return "not measured"
    holds = measured <= limit if below else measured >= limit
    return "holds" if holds else "MISSED"


def targets(results: dict[str, Any], backends: Sequence[str]) -> list[dict[str, Any]]:
    """The targets of docs/performance.md, checked (never asserted)."""
    found: list[dict[str, Any]] = []
    for backend in backends:
        intake = _intake(results, "intake", 100, backend)
        ratio = echo_ratio(results, intake) if intake else None
        found.append(
            {
                "target": f"intake throughput at N=100 >= 30% of echo on the same loop ({backend})",
                "measured": None if ratio is None else f"{ratio:.0%}",
                "verdict": _verdict(ratio, 0.3, below=False),
            }
        )
        cpu = intake.get("bot_cpu_ms_per_update") if intake else None
        cpu_limit = CPU_MS_PER_UPDATE.get(backend, 3.0)
        found.append(
            {
                "target": f"bot CPU per update at N=100 <= {cpu_limit:g} ms ({backend})",
                "measured": None if cpu is None else f"{cpu:.2f} ms",
                "verdict": _verdict(cpu, cpu_limit),
            }
        )
        p99 = intake["latency_to_answer"]["p99_ms"] if intake else None
        found.append(
            {
                "target": f"p99 latency at N=100 <= 50 ms ({backend})",
                "measured": None if p99 is None else f"{p99:.1f} ms",
                "verdict": _verdict(p99, 50.0),
            }
        )
        # The same target for reporters at a person's pace, the load the bot will
        # meet: closed-loop latency is N / throughput by Little's law.
        paced = _intake(results, "intake", 100, backend, "paced")
        paced_p99 = paced["latency_to_answer"]["p99_ms"] if paced else None
        found.append(
            {
                "target": f"p99 latency at N=100 thinking 1-3 s <= 50 ms ({backend})",
                "measured": None if paced_p99 is None else f"{paced_p99:.1f} ms",
                "verdict": _verdict(paced_p99, 50.0),
            }
        )
        big = _intake(results, "intake", 1000, backend)
        growth = big["rss"]["growth_mb"] if big else None
        unlimited = _intake(results, "intake", 1000, backend, "unlimited")
        note = ""
        if big and big.get("failed_reporters"):
            note += f", {big['failed_reporters']} reporters failed"
        if unlimited:
            note += (
                f"; without tasks_concurrency_limit: {unlimited['rss']['growth_mb']:.1f} MB"
                f", {unlimited.get('failed_reporters', 0)} reporters failed"
            )
        found.append(
            {
                "target": f"bot RSS growth <= 50 MB, 0 -> 1000 concurrent drafts ({backend})",
                "measured": None if growth is None else f"{growth:.1f} MB{note}",
                "verdict": _verdict(growth, 50.0),
            }
        )
        staff = _staff(results, backend, 100_000)
        queue = staff["queue_first_page"]["warm_median_ms"] if staff else None
        found.append(
            {
                "target": f"/queue first page <= 100 ms with 100k cases ({backend})",
                "measured": None
                if queue is None
                else f"{queue:.1f} ms (cold {staff['queue_first_page']['cold_ms']:.1f} ms)",
                "verdict": _verdict(queue, 100.0),
            }
        )
        stats = staff["stats"]["warm_complete_ms"] if staff else None
        cold = staff["stats"]["cold_complete_ms"] / 1000 if staff else None
        found.append(
            {
                "target": f"/stats <= 2 s with 100k cases ({backend})",
                "measured": None if stats is None else f"{stats / 1000:.2f} s (cold {cold:.2f} s)",
                "verdict": _verdict(stats, 2000.0),
            }
        )
        rotate = staff["keys_rotate"]["seconds"] if staff else None
        found.append(
            {
                "target": f"keys rotate over 100k cases < 60 s ({backend})",
                "measured": None if rotate is None else f"{rotate:.1f} s",
                "verdict": _verdict(rotate, 60.0),
            }
        )
    found.append(_surge_target(results))
    return found


def _surge_target(results: dict[str, Any]) -> dict[str, Any]:
    target = "surge: every report completed and answer p99 <= 100 ms with 2 replicas"
    run = next((run for run in results.get("surge", []) if run["replicas"] == 2), None)
    if run is None:
        return {"target": target, "measured": None, "verdict": "not measured"}
    p99 = run["latency_to_answer"]["p99_ms"]
    completed = run["reports_completed"] == run["reporters"]
    verdict = _verdict(p99, 100.0)
    return {
        "target": target,
        "measured": f"{run['reports_completed']}/{run['reporters']} reports, p99 {p99:,.1f} ms",
        "verdict": verdict if completed or verdict != "holds" else "MISSED",
    }


def targets_table(found: list[dict[str, Any]]) -> tuple[Row, list[Row]]:
    return ("target", "measured", "verdict"), [
        (item["target"], item["measured"] or "—", item["verdict"]) for item in found
    ]


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
