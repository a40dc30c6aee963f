"""End-to-end fixtures: the real bot polling the in-process Bot API emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from devkit.sandbox import Sandbox
from storage.crypto import KeyRing
from tests.conftest import Database

COORDINATOR_ID = 5_000_001


@pytest.fixture
async def sandbox(database: Database, keyring: KeyRing) -> AsyncIterator[Sandbox]:
    box = Sandbox(
        sessionmaker=database.sessionmaker,
        keyring=keyring,
        database_url=database.url,
        coordinator_ids=frozenset({COORDINATOR_ID}),
    )
    await box.start()
    # The configured coordinator is a real person who has opened the chat, so
    # notices to them are delivered at once rather than retried later (where a
    # late retry would land between a test's command and its answer).
    box.server.ensure_chat(COORDINATOR_ID, first_name="Coordinator")
    try:
        yield box
    finally:
        await box.stop()
