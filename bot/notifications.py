"""Notifications: what the outbox carries, and how each kind reads in a language.

Notices say as little as possible: a reference, and for coordinators the
urgency. Case content never leaves the case through a notification.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.text import N_
from storage.crypto import FieldContext, KeyRing, Purpose
from storage.models import OutboxMessage, User
from storage.repositories import UserRepository

Translate = Callable[[str], str]


class Role(StrEnum):
    LAWYER = "lawyer"
    COORDINATOR = "coordinator"


class NoticeKind(StrEnum):
    NEW_CASE = "new_case"


@dataclass(frozen=True, slots=True)
class Notice:
    kind: NoticeKind
    reference: str
    urgent: bool = False

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Notice:
        data = json.loads(raw)
        return cls(
            kind=NoticeKind(data["kind"]), reference=data["reference"], urgent=data["urgent"]
        )


def render_notice(notice: Notice, translate: Translate) -> str:
    if notice.kind is NoticeKind.NEW_CASE:
        template = (
            translate(N_("URGENT: new case {reference}. Open it with /case {reference}"))
            if notice.urgent
            else translate(N_("New case {reference}. Open it with /case {reference}"))
        )
        return template.format(reference=notice.reference)
    raise ValueError(f"unknown notice kind {notice.kind}")


def outbox_context(message_id: object) -> FieldContext:
    return FieldContext("outbox", "payload_sealed", str(message_id))


def enqueue(session: AsyncSession, keyring: KeyRing, recipient: User, notice: Notice) -> None:
    """Queue a notice in the caller's transaction; the outbox worker sends it."""

    message_id = uuid.uuid4()
    session.add(
        OutboxMessage(
            id=message_id,
            recipient_id=recipient.id,
            payload_sealed=keyring.seal(
                Purpose.OUTBOX, notice.to_bytes(), outbox_context(message_id)
            ),
            kek_id=keyring.primary_id,
        )
    )


async def coordinators(session: AsyncSession) -> Sequence[User]:
    found = await session.scalars(select(User).where(User.role == Role.COORDINATOR.value))
    return found.all()


async def ensure_coordinators(users: UserRepository, telegram_ids: frozenset[int]) -> None:
    """Coordinators named in the settings exist from the start (private chat id = user id)."""
    for telegram_id in sorted(telegram_ids):
        user = await users.ensure(telegram_id, telegram_id)
        user.role = Role.COORDINATOR.value
