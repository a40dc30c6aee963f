"""Fault tests: three webhook replicas on one PostgreSQL database, behind a
round-robin proxy that redelivers on a 5xx or a dropped connection
(devkit/replicas.py), with scripted reporters filling in whole reports.

Fault (d) of issue 14: every update of every chat reaches two replicas at the
same moment. Nothing may be lost and nothing handled or sent twice.
"""

from __future__ import annotations

import asyncio

import pytest

from devkit.emulator import FakeTelegramServer, SimulatedUser
from devkit.replicas import ReplicaCluster, count_faults
from devkit.sandbox import FAST_OUTBOX
from devkit.scripted_reporter import FULL_PLAN, ScriptedReporter
from storage.crypto import KeyRing
from tests.conftest import Database

COORDINATOR = 990_001
REPORTERS = 8


async def _report(server: FakeTelegramServer, user_id: int) -> str:
    reporter = ScriptedReporter(SimulatedUser(server, user_id=user_id, timeout=120), "ru")
    await reporter.open()
    await reporter.fill(FULL_PLAN)
    return await reporter.submit()


def _notified(server: FakeTelegramServer) -> set[str]:
    """References named in the coordinator's messages."""
    texts = [
        str(call.params.get("text"))
        for call in server.calls_for("sendMessage")
        if call.chat_id == COORDINATOR
    ]
    return {word.strip(".,") for text in texts for word in text.split() if word[4:5] == "-"}


@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_every_update_at_two_replicas_at_once_loses_and_repeats_nothing(
    database: Database, keyring: KeyRing
) -> None:
    async with FakeTelegramServer() as server:
        server.ensure_chat(COORDINATOR, first_name="Coordinator", language_code="ru")
        cluster = ReplicaCluster(
            server,
            keyring,
            database.url,
            database.schema,
            FAST_OUTBOX,
            {"coordinator_ids": frozenset({COORDINATOR}), "intake_per_minute": 0},
        )
        await cluster.start(3)
        try:
            cluster.proxy.duplicate = True
            first_update = server.last_update_id + 1
            references = await asyncio.gather(
                *(_report(server, 910_000 + n) for n in range(REPORTERS))
            )
            await server.wait_for(lambda s: _notified(s) >= set(references), timeout=60)
            figures = await count_faults(cluster, list(references), COORDINATOR, first_update)
        finally:
            await cluster.stop()
    assert figures.reports_completed == REPORTERS
    assert figures.updates_lost == 0
    assert figures.updates_handled_twice == 0
    assert figures.notices_lost == 0
    assert figures.notices_sent_twice == 0
    updates = server.last_update_id - first_update + 1
    assert len(cluster.counter.handled) == updates
    assert cluster.proxy.deliveries == 2 * updates  # each reached two replicas
