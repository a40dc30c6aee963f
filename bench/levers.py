"""The ``levers`` section: each speed-up measured on its own, interleaved with its baseline.

A configuration is one intake run (``python -m bench --only intake``: N reporters
on each database, then the plain echo bot and the echo bot on the same loop)
in a process of its own, started in a source tree:

* this tree with ``--event-loop asyncio`` (*plain*): the baseline;
* this tree with uvloop (*deployed*);
* ``--lever-tree NAME=PATH``: a checkout of this tree with one change in the
  code taken out again (for example the JSON request bodies), run plain: the
  change's effect is *plain* against it;
* ``--before PATH``: the code as it was before all of them, for the total.

Rounds run every configuration once, in an order rotated each round, so that a
drift of the shared machine spreads over all of them rather than one.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import BenchError
from bench.intake import PLAIN, Speed
from bench.report import echo_ratio

ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT_S = 1800


@dataclass(frozen=True, slots=True)
class Lever:
    name: str
    tree: Path
    speed: Speed | None
    #: the configuration this one is compared with ("" for none)
    baseline: str
    what: str
    #: this configuration lacks the lever (a tree with it taken out): its effect
    #: is the baseline measured against this one, not this against the baseline
    inverted: bool = False

    def command(self, reporters: int, backends: str, output: Path) -> list[str]:
        python = self.tree / ".venv" / "bin" / "python"
        command = [str(python if python.exists() else Path(sys.executable))]
        command += ["-m", "bench", "--only", "intake", "--reporters", str(reporters)]
        command += ["--backends", backends, "--paced", "0", "--unlimited", "0"]
        command += ["--output", str(output)]
        if self.speed is not None:
            command += self.speed.argv()
        return command


def _knows_speed(tree: Path) -> bool:
    """Older checkouts have no --event-loop; they run the standard loop anyway."""
    main = tree / "bench" / "__main__.py"
    return main.is_file() and "--event-loop" in main.read_text(encoding="utf-8")


def levers(lever_trees: list[tuple[str, Path]], before: Path | None) -> list[Lever]:
    found = [
        Lever("plain", ROOT, PLAIN, "", "this tree on asyncio's loop"),
        Lever("deployed", ROOT, Speed("uvloop"), "plain", "uvloop's event loop"),
    ]
    for name, tree in lever_trees:
        speed = PLAIN if _knows_speed(tree) else None
        found.append(Lever(f"without {name}", tree, speed, "plain", name, inverted=True))
    if before is not None:
        speed = PLAIN if _knows_speed(before) else None
        found.append(Lever("before", before, speed, "plain", "all code levers", inverted=True))
    return found


def _run(lever: Lever, reporters: int, backends: str, log: Callable[[str], None]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="intake-lever-") as folder:
        output = Path(folder) / "results.json"
        started = time.perf_counter()
        finished = subprocess.run(  # noqa: S603 - our own interpreter and module
            lever.command(reporters, backends, output),
            cwd=lever.tree,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
        if finished.returncode != 0 or not output.exists():
            tail = "\n".join((finished.stderr or "").splitlines()[-15:])
            raise BenchError(f"lever {lever.name!r} failed ({finished.returncode}):\n{tail}")
        results: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
    log(f"  {lever.name}: {time.perf_counter() - started:.0f} s")
    return results


def _figures(lever: Lever, round_: int, results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for run in results["intake"]:
        if run["bot"] != "intake":
            continue
        ratio = echo_ratio(results, run)
        plain_echo = next(
            (
                echo
                for echo in results["intake"]
                if echo["bot"] == "echo" and echo.get("speed", PLAIN.label) == PLAIN.label
            ),
            None,
        )
        rows.append(
            {
                "lever": lever.name,
                "what": lever.what,
                "baseline": lever.baseline,
                "inverted": lever.inverted,
                "tree": str(lever.tree),
                "commit": results.get("machine", {}).get("git_commit"),
                "round": round_,
                "backend": run["backend"],
                "speed": run.get("speed", PLAIN.label),
                "updates_per_s": run["updates_per_s"],
                "cpu_ms_per_update": run["bot_cpu_ms_per_update"],
                "api_calls_per_update": run["bot_api_calls_per_update"],
                "answer_p99_ms": run["latency_to_answer"]["p99_ms"],
                "ratio": None if ratio is None else round(ratio, 3),
                "plain_echo_per_s": plain_echo["updates_per_s"] if plain_echo else None,
            }
        )
    return rows


def lever_runs(
    lever_trees: list[tuple[str, Path]],
    before: Path | None,
    reporters: int,
    backends: list[str],
    rounds: int,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    configurations = levers(lever_trees, before)
    rows: list[dict[str, Any]] = []
    for round_ in range(rounds):
        shift = round_ % len(configurations)
        order = configurations[shift:] + configurations[:shift]
        log(f"levers, round {round_ + 1} of {rounds}: {', '.join(lever.name for lever in order)}")
        for lever in order:
            results = _run(lever, reporters, ",".join(backends), log)
            rows += _figures(lever, round_, results)
    return rows


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 2) if values else None


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per lever and database: the means over the rounds, and the change against the baseline."""
    keys = list(dict.fromkeys((row["lever"], row["backend"]) for row in rows))
    means: dict[tuple[str, str], dict[str, Any]] = {}
    for lever, backend in keys:
        mine = [row for row in rows if row["lever"] == lever and row["backend"] == backend]
        cpu = [row["cpu_ms_per_update"] for row in mine]
        means[(lever, backend)] = {
            "lever": lever,
            "what": mine[0]["what"],
            "baseline": mine[0]["baseline"],
            "inverted": mine[0]["inverted"],
            "backend": backend,
            "speed": mine[0]["speed"],
            "runs": len(mine),
            "cpu_ms_per_update": _mean(cpu),
            "cpu_ms_range": [min(cpu), max(cpu)],
            "updates_per_s": _mean([row["updates_per_s"] for row in mine]),
            "ratio": _mean([row["ratio"] for row in mine if row["ratio"] is not None]),
            "api_calls_per_update": _mean([row["api_calls_per_update"] for row in mine]),
        }
    for (lever, backend), entry in means.items():
        base_name = entry["baseline"]
        base = means.get((base_name, backend)) if base_name else None
        entry["cpu_change"] = entry["versus"] = None
        if base and base["cpu_ms_per_update"] and entry["cpu_ms_per_update"]:
            new, old = entry["cpu_ms_per_update"], base["cpu_ms_per_update"]
            entry["versus"] = f"vs {base_name}"
            if entry["inverted"]:
                new, old = old, new
                entry["versus"] = f"{base_name} vs {lever}"
            entry["cpu_change"] = round(new / old - 1, 3)
    return list(means.values())


def lever_rows(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    header = [
        "lever",
        "db",
        "loop",
        "runs",
        "CPU ms/upd",
        "range",
        "upd/s",
        "vs echo",
        "API calls/upd",
        "CPU vs baseline",
    ]
    table = []
    for entry in summary(rows):
        change = entry["cpu_change"]
        versus = "—" if change is None else f"{change:+.0%} ({entry['versus']})"
        table.append(
            [
                entry["lever"],
                entry["backend"],
                entry["speed"],
                str(entry["runs"]),
                f"{entry['cpu_ms_per_update']:.2f}",
                f"{entry['cpu_ms_range'][0]:.2f}-{entry['cpu_ms_range'][1]:.2f}",
                f"{entry['updates_per_s']:.1f}",
                "—" if entry["ratio"] is None else f"{entry['ratio']:.0%}",
                f"{entry['api_calls_per_update']:.2f}",
                versus,
            ]
        )
    return header, table
