"""The benchmark's surge section (bench/surge.py) on a small scale.

A few reporters with no think time (injected) against one webhook replica
process behind the proxy, on PostgreSQL: the replica process, the push times,
the latencies, the counts, the table and the target are all exercised. The
real surge (1000 reporters thinking 1-3 s) runs only in the benchmark.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.report import targets
from bench.surge import surge_rows, surge_run
from tests.conftest import require_postgres_async

REPORTERS = 3
SURGE_TARGET = "surge: every report completed and answer p99 <= 100 ms with 2 replicas"


@pytest.mark.postgres
async def test_a_small_surge_completes_and_accounts_for_every_update(tmp_path: Path) -> None:
    await require_postgres_async()
    run = await surge_run(1, REPORTERS, tmp_path, think=(0.0, 0.0))
    assert run["failures"] == []
    assert run["reports_completed"] == REPORTERS
    # A whole report is some forty updates; each was handled once and answered.
    assert run["updates_pushed"] == run["updates_handled"] > 30 * REPORTERS
    assert run["latency_to_answer"]["count"] == run["updates_pushed"]
    assert run["unanswered_updates"] == 0
    assert (run["updates_lost"], run["updates_handled_twice"]) == (0, 0)
    assert run["notices_sent"] + run["notices_queued"] == REPORTERS
    assert (run["notices_missing"], run["notices_sent_twice"]) == (0, 0)
    assert len(run["replica_cpu_seconds"]) == len(run["replica_cpu_share"]) == 1
    header, rows = surge_rows([run])
    assert len(rows) == 1 and len(rows[0]) == len(header)
    by_column = dict(zip(header, rows[0], strict=True))
    assert by_column["reports completed"] == f"{REPORTERS}/{REPORTERS}"
    assert by_column["lost / twice"] == "0 / 0"


def _surge_verdict(runs: list[dict[str, Any]]) -> str:
    (found,) = [item for item in targets({"surge": runs}, []) if item["target"] == SURGE_TARGET]
    return str(found["verdict"])


def _run(replicas: int, completed: int, p99_ms: float) -> dict[str, Any]:
    return {
        "replicas": replicas,
        "reporters": 10,
        "reports_completed": completed,
        "latency_to_answer": {"p99_ms": p99_ms},
    }


def test_the_surge_target_needs_two_replicas_every_report_and_a_short_p99() -> None:
    assert _surge_verdict([]) == "not measured"
    assert _surge_verdict([_run(1, 10, 20.0)]) == "not measured"
    assert _surge_verdict([_run(1, 10, 500.0), _run(2, 10, 99.0)]) == "holds"
    assert _surge_verdict([_run(2, 10, 101.0)]) == "MISSED"
    assert _surge_verdict([_run(2, 9, 20.0)]) == "MISSED"
