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

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.text import N_
from storage.crypto import FieldContext, KeyRing, Purpose
from storage.models import OutboxMessage, User

Translate = Callable[[str], str]


class Role(StrEnum):
    LAWYER = "lawyer"
    COORDINATOR = "coordinator"


class NoticeKind(StrEnum):
    NEW_CASE = "new_case"  # to coordinators
    ASSIGNED_TO_YOU = "assigned_to_you"  # to the lawyer
    REPORTER_REPLIED = "reporter_replied"  # to the lawyer, with the reply
    REPORTER_SENT_FILE = "reporter_file"  # to the lawyer: a file in reply, no content
    LAWYER_ASSIGNED = "lawyer_assigned"  # to the reporter
    STATUS_CHANGED = "status_changed"  # to the reporter
    LAWYER_QUESTION = "lawyer_question"  # to the reporter, with the question
    CASE_CLOSED = "case_closed"  # to the reporter
    JOINED_AS_LAWYER = "joined"  # to coordinators
    RETENTION_WARNING = "retention"  # to the lawyer
    REPLIED_WHILE_LOCKED = "replied_locked"  # to a locked lawyer: no content
    STAFF_LOCKED_OUT = "staff_locked_out"  # to coordinators, by staff name
    STAFF_SUSPENDED = "staff_suspended"  # to coordinators, by staff name
    STAFF_DURESS = "staff_duress"  # to coordinators, by staff name


@dataclass(frozen=True, slots=True)
class Notice:
    kind: NoticeKind
    reference: str = ""
    urgent: bool = False
    status: str | None = None
    text: str | None = None

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Notice:
        data = json.loads(raw)
        return cls(
            kind=NoticeKind(data["kind"]),
            reference=str(data.get("reference", "")),
            urgent=bool(data.get("urgent", False)),
            status=data.get("status"),
            text=data.get("text"),
        )


_TEMPLATES: dict[NoticeKind, str] = {
    NoticeKind.NEW_CASE: N_("New case {reference}. Open it with /case {reference}"),
    NoticeKind.ASSIGNED_TO_YOU: N_(
        "Case {reference} has been assigned to you. Open it with /case {reference}"
    ),
    NoticeKind.REPORTER_REPLIED: N_("The reporter of case {reference} replied:\n\n{text}"),
    NoticeKind.REPORTER_SENT_FILE: N_(
        "The reporter of case {reference} sent a file. Open the case to receive it: "
        "/case {reference}"
    ),
    NoticeKind.LAWYER_ASSIGNED: N_(
        "A lawyer has been assigned to your report {reference}. You will be told here "
        "when there is news."
    ),
    NoticeKind.STATUS_CHANGED: N_("Your report {reference}: {status}."),
    NoticeKind.LAWYER_QUESTION: N_(
        "The lawyer working on your report {reference} has a question:\n\n{text}\n\n"
        "Press Reply to answer."
    ),
    NoticeKind.CASE_CLOSED: N_(
        "The work on your report {reference} has been completed. Thank you for your trust. "
        "If you need help again, send /start."
    ),
    NoticeKind.JOINED_AS_LAWYER: N_("A new lawyer has joined. See /staff"),
    NoticeKind.RETENTION_WARNING: N_(
        "Case {reference} will be deleted for good in 7 days, as the retention period "
        "ends. To keep it longer, send: /extend {reference} and the reason."
    ),
    NoticeKind.REPLIED_WHILE_LOCKED: N_("A reporter replied on {reference}. Unlock to read it."),
    NoticeKind.STAFF_LOCKED_OUT: N_(
        "{text} entered a wrong PIN 5 times and is locked out for 15 minutes."
    ),
    NoticeKind.STAFF_SUSPENDED: N_(
        "{text} entered a wrong PIN 10 times; their access is suspended. "
        "Once you know it was them, restore it in /staff."
    ),
    NoticeKind.STAFF_DURESS: N_(
        "{text} entered their duress PIN: they may be forced to open the bot. Their "
        "access is suspended and their case views are wiped. Restore it in /staff "
        "once they are safe."
    ),
}

#: Notices that carry case content; a staff member whose lock is closed gets
#: the content-free variant instead, and a sent one is deleted like a case view.
CASE_CONTENT_NOTICES = {NoticeKind.REPORTER_REPLIED: NoticeKind.REPLIED_WHILE_LOCKED}

URGENT_NEW_CASE = N_("URGENT: new case {reference}. Open it with /case {reference}")


def render_notice(notice: Notice, translate: Translate) -> str:
    template = _TEMPLATES[notice.kind]
    if notice.kind is NoticeKind.NEW_CASE and notice.urgent:
        template = URGENT_NEW_CASE
    status = ""
    if notice.status in REPORTER_STATUS_LABELS:
        status = translate(REPORTER_STATUS_LABELS[notice.status])
    return translate(template).format(
        reference=notice.reference, text=notice.text or "", status=status
    )


#: Statuses in the reporter's words: neutral, no case details.
REPORTER_STATUS_LABELS = {
    "new": N_("received"),
    "assigned": N_("a lawyer has been assigned"),
    "in_progress": N_("a lawyer is working on it"),
    "awaiting_reporter": N_("a lawyer is waiting for your answer"),
    "closed": N_("closed"),
}


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


REPLY_CALLBACK_PREFIX = "reply"


def notice_keyboard(notice: Notice, translate: Translate) -> InlineKeyboardMarkup | None:
    """A lawyer's question carries a Reply button; nothing else has buttons."""
    if notice.kind is not NoticeKind.LAWYER_QUESTION:
        return None
    button = InlineKeyboardButton(
        text=translate(N_("Reply")),
        callback_data=f"{REPLY_CALLBACK_PREFIX}:{notice.reference}",
    )
    return InlineKeyboardMarkup(inline_keyboard=[[button]])
