"""What the intake throughput and latency figures rest on (docs/performance.md).

One update, one transaction: the draft read once, chats serialised; and the
start-up objects kept out of the collector's full passes.
Each test here fails if its mechanism is taken out.
"""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from aiogram.dispatcher.middlewares.user_context import EVENT_CONTEXT_KEY, EventContext
from aiogram.fsm.storage.base import StorageKey
from aiogram.types import Chat, User
from sqlalchemy import event

from bot.middlewares import ChatSerializer
from devkit.sandbox import Sandbox
from storage.crypto import KeyRing
from storage.fsm import EncryptedFSMStorage
from storage.unit_of_work import commit_now, update_scope
from tests.conftest import Database


def _key(chat: int) -> StorageKey:
    return StorageKey(bot_id=1, chat_id=chat, user_id=chat)


def _count_statements(database: Database) -> Counter[str]:
    seen: Counter[str] = Counter()

    @event.listens_for(database.engine.sync_engine, "before_cursor_execute")
    def _count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen[statement.split()[0].upper()] += 1

    return seen


async def test_an_update_reads_and_decrypts_its_draft_once(
    database: Database, keyring: KeyRing, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = EncryptedFSMStorage(database.sessionmaker, keyring, ttl=timedelta(hours=1))
    key = _key(7)
    await storage.set_state(key, "Intake:active")
    await storage.set_data(key, {"intake": {"answers": {"a": 1}}})
    statements = _count_statements(database)
    opened = Counter[str]()
    real_open = KeyRing.open

    def counting_open(self: KeyRing, *args: Any, **kwargs: Any) -> bytes:
        opened["open"] += 1
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(KeyRing, "open", counting_open)

    async with update_scope(database.sessionmaker):
        # What aiogram and a handler do in one update: middleware, filter,
        # handler load, save.
        assert await storage.get_state(key) == "Intake:active"
        data = await storage.get_data(key)
        data["intake"]["answers"]["a"] = 2  # the caller's copy, not the cache
        assert (await storage.get_data(key))["intake"]["answers"] == {"a": 1}
        await storage.set_state(key, "Intake:active")
        await storage.set_data(key, {"intake": {"answers": {"a": 3}}})
        assert (await storage.get_data(key))["intake"]["answers"] == {"a": 3}

    assert statements["SELECT"] == 1
    assert statements["UPDATE"] == 1
    assert opened["open"] == 1
    assert (await storage.get_data(key))["intake"]["answers"] == {"a": 3}


async def test_a_missing_draft_is_looked_up_once_per_update(
    database: Database, keyring: KeyRing
) -> None:
    storage = EncryptedFSMStorage(database.sessionmaker, keyring, ttl=timedelta(hours=1))
    statements = _count_statements(database)
    async with update_scope(database.sessionmaker):
        for _ in range(3):
            assert await storage.get_state(_key(8)) is None
            assert await storage.get_data(_key(8)) == {}
        await storage.set_data(_key(8), {"x": 1})
        assert await storage.get_data(_key(8)) == {"x": 1}
    assert statements["SELECT"] == 1
    assert statements["INSERT"] == 1


async def test_a_changed_draft_is_written_once_when_the_update_commits(
    database: Database, keyring: KeyRing
) -> None:
    """Not when it is set: on SQLite a write takes the database's one write lock,
    which would then be held while the handler waits for the Bot API."""
    storage = EncryptedFSMStorage(database.sessionmaker, keyring, ttl=timedelta(hours=1))
    key = _key(9)
    await storage.set_data(key, {"step": 1})
    statements = _count_statements(database)
    async with update_scope(database.sessionmaker):
        await storage.set_data(key, {"step": 2})
        await storage.set_state(key, "Intake:active")
        await storage.set_data(key, {"step": 3})
        assert statements["UPDATE"] == statements["INSERT"] == 0
        await commit_now()  # before an irreversible step: written now
        assert statements["UPDATE"] == 1
        await storage.set_state(key, None)
        await storage.set_data(key, {})
    assert statements["UPDATE"] == 1
    assert statements["DELETE"] == 1  # emptied: the row goes
    assert await storage.get_data(key) == {}
    assert statements["INSERT"] == 0


def _event_data(chat_id: int) -> dict[str, Any]:
    chat = Chat(id=chat_id, type="private")
    user = User(id=chat_id, is_bot=False, first_name="x")
    return {EVENT_CONTEXT_KEY: EventContext(chat=chat, user=user)}


async def test_updates_of_one_chat_take_turns_and_other_chats_do_not_wait() -> None:
    serializer = ChatSerializer()
    log: list[str] = []

    async def handler(_event: Any, data: dict[str, Any]) -> None:
        name = data["name"]
        log.append(f"{name} in")
        await asyncio.sleep(0.02)
        log.append(f"{name} out")

    async def feed(chat_id: int, name: str) -> None:
        await serializer(handler, None, {**_event_data(chat_id), "name": name})  # type: ignore[arg-type]

    await asyncio.gather(feed(1, "a1"), feed(1, "a2"), feed(2, "b1"))
    assert log.index("a1 out") < log.index("a2 in")
    assert log.index("b1 in") < log.index("a1 out")
    assert serializer.held == 0


async def test_a_started_bot_freezes_its_startup_objects(
    database: Database, keyring: KeyRing
) -> None:
    sandbox = Sandbox(
        sessionmaker=database.sessionmaker, keyring=keyring, database_url=database.url
    )
    assert gc.get_freeze_count() == 0
    await sandbox.start()
    try:
        # aiogram's models, the mappers, the catalogues: hundreds of thousands.
        assert gc.get_freeze_count() > 100_000
    finally:
        await sandbox.stop()
    assert gc.get_freeze_count() == 0
