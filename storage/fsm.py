"""An aiogram FSM storage that never keeps a draft in clear at rest.

Each chat's state and data are sealed together under a key derived from the
primary key-encryption key; the row key is an HMAC of aiogram's storage key,
so the table does not reveal which Telegram chat a draft belongs to. A row
whose state and data are both empty is deleted, and rows expire after the
draft lifetime.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StateType, StorageKey
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.crypto import DecryptionError, FieldContext, KeyRing, Purpose
from storage.evidence import delete_expired_drafts
from storage.models import FsmRecord, utcnow
from storage.unit_of_work import transaction


class EncryptedFSMStorage(BaseStorage):
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        keyring: KeyRing,
        *,
        ttl: timedelta,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._keyring = keyring
        self._ttl = ttl

    @property
    def ttl(self) -> timedelta:
        """How long a draft lives after it was last saved."""
        return self._ttl

    def _index(self, key: StorageKey) -> bytes:
        raw = "|".join(
            str(part)
            for part in (
                key.bot_id,
                key.chat_id,
                key.user_id,
                key.thread_id,
                key.business_connection_id,
                key.destiny,
            )
        )
        return self._keyring.blind_index("fsm", raw)

    def _context(self, index: bytes) -> FieldContext:
        return FieldContext("fsm_records", "payload_sealed", index)

    async def _load(
        self, session: AsyncSession, index: bytes
    ) -> tuple[FsmRecord | None, dict[str, Any]]:
        # aiogram reads the state and data several times per update (middleware,
        # filters, handler, save): within the update's session the row and its
        # opened payload are read and decrypted once, and parsed anew for each
        # later call so that no caller can change another's copy.
        cache: dict[bytes, tuple[FsmRecord | None, bytes]] = session.info.setdefault(
            "fsm_records", {}
        )
        if index in cache:
            record, raw = cache[index]
            return record, json.loads(raw) if record is not None else {}
        record, raw, payload = await self._read(session, index)
        cache[index] = (record, raw)
        return record, payload

    async def _read(
        self, session: AsyncSession, index: bytes
    ) -> tuple[FsmRecord | None, bytes, dict[str, Any]]:
        """The row, its opened payload and that payload parsed; an unreadable row is deleted."""
        record = await session.get(FsmRecord, index)
        if record is None:
            return None, b"", {}
        opened = self._open(record) if record.expires_at > utcnow() else None
        if opened is None:
            # Expired, or unreadable (its key was dropped, or it was tampered
            # with): treated as absent rather than crashing the conversation.
            await session.delete(record)
            await session.flush()
            return None, b"", {}
        return record, *opened

    def _open(self, record: FsmRecord) -> tuple[bytes, dict[str, Any]] | None:
        """The record's payload opened and parsed, or None if it does not open."""
        try:
            raw = self._keyring.open(
                Purpose.DRAFT, record.payload_sealed, self._context(record.key_index)
            )
            payload = json.loads(raw)
        except (DecryptionError, ValueError):
            return None
        return (raw, payload) if isinstance(payload, dict) else None

    async def _store(
        self,
        session: AsyncSession,
        index: bytes,
        record: FsmRecord | None,
        payload: dict[str, Any],
        key: StorageKey,
    ) -> None:
        cache = session.info["fsm_records"]
        if payload.get("state") is None and not payload.get("data"):
            if record is not None:
                await session.delete(record)
                await session.flush()
            cache[index] = (None, b"")
            return
        payload["chat"] = key.chat_id
        raw = _dump(payload)
        sealed = self._keyring.seal(Purpose.DRAFT, raw, self._context(index))
        expires = utcnow() + self._ttl
        if record is None:
            record = FsmRecord(
                key_index=index,
                payload_sealed=sealed,
                kek_id=self._keyring.primary_id,
                expires_at=expires,
            )
            session.add(record)
        else:
            record.payload_sealed = sealed
            record.kek_id = self._keyring.primary_id
            record.expires_at = expires
        cache[index] = (record, raw)

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        index = self._index(key)
        async with transaction(self._sessionmaker) as session:
            record, payload = await self._load(session, index)
            if record is not None and payload.get("state") == value:
                return  # unchanged: no second seal and write within one update
            payload["state"] = value
            await self._store(session, index, record, payload, key)

    async def get_state(self, key: StorageKey) -> str | None:
        index = self._index(key)
        async with transaction(self._sessionmaker) as session:
            _, payload = await self._load(session, index)
        state = payload.get("state")
        return state if isinstance(state, str) else None

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        if not isinstance(data, Mapping):
            raise TypeError("FSM data must be a mapping")
        index = self._index(key)
        async with transaction(self._sessionmaker) as session:
            record, payload = await self._load(session, index)
            payload["data"] = dict(data)
            await self._store(session, index, record, payload, key)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        index = self._index(key)
        async with transaction(self._sessionmaker) as session:
            _, payload = await self._load(session, index)
        data = payload.get("data")
        return cast(dict[str, Any], data) if isinstance(data, dict) else {}

    async def close(self) -> None:
        return None

    # Maintenance, used by the sweepers -------------------------------------
    async def delete_expired(self, now: datetime | None = None) -> int:
        async with self._sessionmaker.begin() as session:
            result = await session.execute(
                delete(FsmRecord).where(FsmRecord.expires_at <= (now or utcnow()))
            )
            # Evidence files of drafts that were never sent go with them.
            await delete_expired_drafts(session, now)
        return int(getattr(result, "rowcount", 0) or 0)

    async def idle_drafts(self, idle_for: timedelta) -> list[tuple[bytes, dict[str, Any]]]:
        """Drafts untouched for ``idle_for``: (row key, decrypted payload) pairs."""
        cutoff = utcnow() - idle_for
        found: list[tuple[bytes, dict[str, Any]]] = []
        async with self._sessionmaker() as session:
            rows = await session.scalars(select(FsmRecord).where(FsmRecord.updated_at <= cutoff))
            for record in rows:
                opened = self._open(record)
                if opened is not None:
                    found.append((record.key_index, opened[1]))
        return found

    async def replace_payload(self, index: bytes, payload: dict[str, Any]) -> None:
        """Rewrite a draft found by :meth:`idle_drafts`, keeping its expiry."""
        async with self._sessionmaker.begin() as session:
            record = await session.get(FsmRecord, index)
            if record is None:
                return
            record.payload_sealed = self._keyring.seal(
                Purpose.DRAFT, _dump(payload), self._context(index)
            )
            record.kek_id = self._keyring.primary_id


def _dump(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
