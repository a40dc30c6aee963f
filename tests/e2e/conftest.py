"""End-to-end fixtures: the real bot polling the in-process Bot API emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.staff_lock.pin import PinHasher
from devkit.sandbox import Sandbox
from storage.crypto import KeyRing
from tests.conftest import Database

COORDINATOR_ID = 5_000_001
#: scrypt at a test cost, asked for by name; production refuses n < 2**15.
TEST_PIN_HASHER = PinHasher(2**8, weak_for_tests=True)


@pytest.fixture
async def sandbox(database: Database, keyring: KeyRing) -> AsyncIterator[Sandbox]:
    box = Sandbox(
        sessionmaker=database.sessionmaker,
        keyring=keyring,
        database_url=database.url,
        coordinator_ids=frozenset({COORDINATOR_ID}),
        pin_hasher=TEST_PIN_HASHER,
    )
    await box.start()
    # Tests about something else than the PIN lock find the coordinator unlocked.
    await box.give_pin(COORDINATOR_ID)
    # The configured coordinator is a real person who has opened the chat, so
    # notices to them are delivered at once rather than retried later (where a
    # late retry would land between a test's command and its answer).
    box.server.ensure_chat(COORDINATOR_ID, first_name="Coordinator")
    try:
        yield box
    finally:
        await box.stop()
