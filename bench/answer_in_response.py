"""CPU per update of one webhook replica, answering presses in the response or by calls.

``python -m bench.answer_in_response [--reporters 100] [--rounds 2]``: runs
``bench.faults.fault_run("none", reporters, replicas=1)`` with the replica's
``--answers-as-calls`` and without it, interleaved (calls, response, calls,
response, ...) so that a change in the machine's load hits both alike, and
prints each run's replica CPU per handled update (docs/performance.md).
Needs the shared PostgreSQL server, as the faults section does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import shutil
import tempfile
from pathlib import Path

from bench import BOT_PRELOAD
from bench.faults import fault_run


async def _runs(reporters: int, rounds: int, workdir: Path) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for round_ in range(rounds):
        for in_response in (False, True):
            rundir = workdir / f"{round_}-{int(in_response)}"  # each run its key file and logs
            rundir.mkdir()
            run = await fault_run("none", reporters, rundir, 1, answer_in_response=in_response)
            updates = int(run["updates_handled"])
            cpu = float(run["replica_cpu_seconds"])
            row = {
                "answers": "in the response" if in_response else "by calls",
                "updates": updates,
                "webhook_replies": run["webhook_replies"],
                "replica_cpu_s": cpu,
                "cpu_ms_per_update": round(1000 * cpu / updates, 2),
                "updates_per_s": run["updates_per_second"],
                "completed": f"{run['reports_completed']}/{reporters}",
                "lost": run["updates_lost"],
            }
            print(json.dumps(row, ensure_ascii=False), flush=True)
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.answer_in_response")
    parser.add_argument("--reporters", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    multiprocessing.get_context("forkserver").set_forkserver_preload(list(BOT_PRELOAD))
    workdir = Path(tempfile.mkdtemp(prefix="intake-answer-"))
    try:
        asyncio.run(_runs(args.reporters, args.rounds, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
