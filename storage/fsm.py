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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StateType, StorageKey
from sqlalchemy import Table, delete, event, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from storage.crypto import DecryptionError, FieldContext, KeyRing, Purpose
from storage.evidence import delete_expired_drafts
from storage.models import FsmRecord, utcnow
from storage.unit_of_work import transaction

#: ``session.info`` key of the drafts read or changed in the session's transaction.
_DRAFTS = "fsm_drafts"


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

    async def _load(self, session: AsyncSession, index: bytes) -> tuple[_Draft, dict[str, Any]]:
        # aiogram reads the state and data several times per update (middleware,
        # filters, handler, save): within the update's session the row is read
        # and decrypted once, and parsed anew for each later call so that no
        # caller can change another's copy.
        drafts = _drafts(session)
        draft = drafts.get(index)
        if draft is None:
            draft, payload = await self._read(session, index)
            drafts[index] = draft
            return draft, payload
        return draft, json.loads(draft.raw) if draft.raw is not None else {}

    async def _read(self, session: AsyncSession, index: bytes) -> tuple[_Draft, dict[str, Any]]:
        """The draft as stored, opened and parsed; an expired or unreadable row is to be deleted."""
        row = (
            await session.execute(
                select(_TABLE.c.payload_sealed, _TABLE.c.expires_at).where(
                    _TABLE.c.key_index == index
                )
            )
        ).one_or_none()
        if row is None:
            return _Draft(stored=False), {}
        opened = self._open(row.payload_sealed, index) if row.expires_at > utcnow() else None
        if opened is None:
            # Expired, or unreadable (its key was dropped, or it was tampered
            # with): treated as absent rather than crashing the conversation.
            return _Draft(stored=True, changed=True), {}
        raw, payload = opened
        return _Draft(stored=True, raw=raw), payload

    def _open(self, sealed: bytes, index: bytes) -> tuple[bytes, dict[str, Any]] | None:
        """A sealed payload opened and parsed, or None if it does not open."""
        try:
            raw = self._keyring.open(Purpose.DRAFT, sealed, self._context(index))
            payload = json.loads(raw)
        except (DecryptionError, ValueError):
            return None
        return (raw, payload) if isinstance(payload, dict) else None

    def _store(self, draft: _Draft, index: bytes, payload: dict[str, Any], key: StorageKey) -> None:
        """Change the draft; it is written when the transaction commits (``_write_changed``)."""
        draft.changed = True
        if payload.get("state") is None and not payload.get("data"):
            draft.raw = None
            return
        payload["chat"] = key.chat_id
        draft.raw = _dump(payload)
        draft.values = {
            "payload_sealed": self._keyring.seal(Purpose.DRAFT, draft.raw, self._context(index)),
            "kek_id": self._keyring.primary_id,
            "expires_at": utcnow() + self._ttl,
        }

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        index = self._index(key)
        async with transaction(self._sessionmaker) as session:
            draft, payload = await self._load(session, index)
            if draft.raw is not None and payload.get("state") == value:
                return  # unchanged: no second seal and write within one update
            payload["state"] = value
            self._store(draft, index, payload, key)

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
            draft, payload = await self._load(session, index)
            payload["data"] = dict(data)
            self._store(draft, index, payload, key)

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
                opened = self._open(record.payload_sealed, record.key_index)
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


@dataclass(slots=True)
class _Draft:
    """One chat's draft within a transaction: as stored, and as changed since."""

    #: a row exists in the table (as of this transaction's last write)
    stored: bool
    #: the opened payload, or None for no draft
    raw: bytes | None = None
    #: to be written at commit
    changed: bool = False
    #: the row's new columns, when ``raw`` is not None
    values: dict[str, Any] = field(default_factory=dict)


_TABLE = cast(Table, FsmRecord.__table__)


def _drafts(session: AsyncSession) -> dict[bytes, _Draft]:
    drafts: dict[bytes, _Draft] = session.info.setdefault(_DRAFTS, {})
    return drafts


@event.listens_for(Session, "before_commit")
def _write_changed(session: Session) -> None:
    """Write the drafts changed in this transaction, just before it commits.

    As late as the ORM would flush them, so that on SQLite the write lock is not
    held while a handler waits for the Bot API. Core statements rather than ORM
    objects: the ORM's unit of work cost more than the statements themselves
    on the hot path (docs/performance.md).
    """
    drafts: dict[bytes, _Draft] | None = session.info.get(_DRAFTS)
    for index, draft in (drafts or {}).items():
        if not draft.changed:
            continue
        if draft.raw is None:
            if draft.stored:
                session.execute(delete(_TABLE).where(_TABLE.c.key_index == index))
        elif draft.stored:
            session.execute(
                update(_TABLE).where(_TABLE.c.key_index == index).values(**draft.values)
            )
        else:
            session.execute(insert(_TABLE).values(key_index=index, **draft.values))
        draft.stored, draft.changed = draft.raw is not None, False


def _dump(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
