"""A case's abuse handle: who sent it, sealed under the case's data key.

/forget empties ``cases.reporter_index``; the handle lets a coordinator still
block the sender of a hostile case with ``/ban REF`` for a few days after it
was sent. It holds the sender's ``tg-user`` blind index and their private chat
id, readable only with the case's key: shredding the case (or the handle's
expiry, whichever comes first) ends it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from storage.crypto import DataKey, FieldContext
from storage.models import AbuseHandle, utcnow


@dataclass(frozen=True, slots=True)
class Sender:
    tg_index: bytes
    chat_id: int


def _context(case_id: uuid.UUID) -> FieldContext:
    return FieldContext("abuse_handles", "handle_sealed", case_id)


def keep_handle(
    session: AsyncSession,
    case_id: uuid.UUID,
    data_key: DataKey,
    sender: Sender,
    *,
    expires_at: datetime,
) -> None:
    payload = json.dumps({"index": sender.tg_index.hex(), "chat": sender.chat_id}).encode()
    session.add(
        AbuseHandle(
            case_id=case_id,
            handle_sealed=data_key.seal(payload, _context(case_id)),
            expires_at=expires_at,
        )
    )


async def open_handle(
    session: AsyncSession, case_id: uuid.UUID, data_key: DataKey, *, now: datetime | None = None
) -> Sender | None:
    """The sender of a case, while its handle lasts; None once it expired or is gone."""
    row = await session.get(AbuseHandle, case_id)
    if row is None or row.expires_at <= (now or utcnow()):
        return None
    data = json.loads(data_key.open(row.handle_sealed, _context(case_id)))
    return Sender(bytes.fromhex(str(data["index"])), int(data["chat"]))


async def delete_handle(session: AsyncSession, case_id: uuid.UUID) -> None:
    await session.execute(delete(AbuseHandle).where(AbuseHandle.case_id == case_id))


async def delete_expired_handles(session: AsyncSession, *, now: datetime | None = None) -> int:
    result = await session.execute(
        delete(AbuseHandle).where(AbuseHandle.expires_at <= (now or utcnow()))
    )
    return int(getattr(result, "rowcount", 0) or 0)
