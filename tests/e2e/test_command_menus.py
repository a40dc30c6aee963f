"""The command menus the composition root hands to the background tasks are set at start."""

from __future__ import annotations

from devkit.sandbox import Sandbox
from handlers.reporter.menu import REPORTER_COMMANDS
from handlers.staff.menu import COORDINATOR_COMMANDS
from storage.crypto import KeyRing
from tests.conftest import Database
from tests.e2e.conftest import COORDINATOR_ID


async def test_start_sets_the_reporters_and_the_coordinators_menus(
    database: Database, keyring: KeyRing
) -> None:
    box = Sandbox(
        sessionmaker=database.sessionmaker,
        keyring=keyring,
        database_url=database.url,
        coordinator_ids=frozenset({COORDINATOR_ID}),
    )
    # The coordinator has opened the chat, so a menu can be set for it.
    box.server.ensure_chat(COORDINATOR_ID, first_name="Coordinator")
    await box.start()
    try:
        private = {"type": "all_private_chats"}
        tajik = box.server.get_commands(private)
        russian = box.server.get_commands(private, language_code="ru")
        staff = box.server.get_commands({"type": "chat", "chat_id": COORDINATOR_ID})
    finally:
        await box.stop()
    reporter_names = [name for name, _ in REPORTER_COMMANDS]
    assert [command["command"] for command in tajik] == reporter_names
    assert [command["command"] for command in russian] == reporter_names
    assert [command["description"] for command in tajik] != [
        command["description"] for command in russian
    ]
    assert [command["command"] for command in staff] == [name for name, _ in COORDINATOR_COMMANDS]
