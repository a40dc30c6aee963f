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

from bot.intake.news import NEWS_LABELS, NewsKind
from bot.text import N_
from storage.crypto import DecryptionError, FieldContext, KeyRing, Purpose
from storage.models import OutboxMessage, User

Translate = Callable[[str], str]

# Outbox states. Only a queued row (pending, or sending under a lease) holds
# content; every other state keeps the bookkeeping alone.
PENDING, SENDING, SENT, DEAD, CANCELLED = "pending", "sending", "sent", "dead", "cancelled"
QUEUED = (PENDING, SENDING)


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
    REPORTER_NEWS = "reporter_news"  # to the lawyer (or coordinators): the kind, no content
    NEWS_ON_CLOSED = "news_closed"  # to coordinators, with Reopen / Keep closed buttons
    CASE_REOPENED = "case_reopened"  # to the lawyer of a reopened case


#: Notices to staff: the outbox asks the policy before each one goes out.
TO_STAFF = frozenset(
    {
        NoticeKind.NEW_CASE,
        NoticeKind.ASSIGNED_TO_YOU,
        NoticeKind.REPORTER_REPLIED,
        NoticeKind.REPORTER_SENT_FILE,
        NoticeKind.JOINED_AS_LAWYER,
        NoticeKind.RETENTION_WARNING,
    }
)
#: What a lawyer is told about work on their case; when they lose their role
#: before it went out, the coordinators are told instead.
CASE_WORK = frozenset(
    {NoticeKind.REPORTER_REPLIED, NoticeKind.REPORTER_SENT_FILE, NoticeKind.RETENTION_WARNING}
)


@dataclass(frozen=True, slots=True)
class Notice:
    kind: NoticeKind
    reference: str = ""
    urgent: bool = False
    status: str | None = None
    text: str | None = None
    news: str | None = None  # bot/intake/news.py NewsKind: a code, never the reporter's words

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
            news=data.get("news"),
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
    NoticeKind.REPORTER_NEWS: N_(
        "News from the reporter of case {reference}: {news}. Open the case: /case {reference}"
    ),
    NoticeKind.NEWS_ON_CLOSED: N_(
        "News from the reporter of the closed case {reference}: {news}. Reopen the case? "
        "/case {reference}"
    ),
    NoticeKind.CASE_REOPENED: N_(
        "Case {reference} has been reopened after news from the reporter. /case {reference}"
    ),
}

URGENT_NEW_CASE = N_("URGENT: new case {reference}. Open it with /case {reference}")
URGENT_PREFIX = N_("URGENT: {notice}")


def render_notice(notice: Notice, translate: Translate) -> str:
    template = _TEMPLATES[notice.kind]
    if notice.kind is NoticeKind.NEW_CASE and notice.urgent:
        template = URGENT_NEW_CASE
    status = ""
    if notice.status in REPORTER_STATUS_LABELS:
        status = translate(REPORTER_STATUS_LABELS[notice.status])
    news = ""
    if notice.news is not None and notice.news in NewsKind._value2member_map_:
        news = translate(NEWS_LABELS[NewsKind(notice.news)])
    text = translate(template).format(
        reference=notice.reference, text=notice.text or "", status=status, news=news
    )
    if notice.urgent and notice.kind in (NoticeKind.REPORTER_NEWS, NoticeKind.NEWS_ON_CLOSED):
        text = translate(URGENT_PREFIX).format(notice=text)
    return text


#: Statuses in the reporter's words: neutral, no case details.
REPORTER_STATUS_LABELS = {
    "new": N_("received"),
    "assigned": N_("a lawyer has been assigned"),
    "in_progress": N_("a lawyer is working on it"),
    "awaiting_reporter": N_("a lawyer is waiting for your answer"),
    "closed": N_("closed"),
}


def outbox_context(message_id: object, recipient_id: object) -> FieldContext:
    """Bound to the recipient: a row pointed at someone else no longer opens."""
    return FieldContext("outbox", "payload_sealed", f"{message_id}:{recipient_id}")


def enqueue(session: AsyncSession, keyring: KeyRing, recipient: User, notice: Notice) -> None:
    """Queue a notice in the caller's transaction; the outbox worker sends it."""

    message_id = uuid.uuid4()
    session.add(
        OutboxMessage(
            id=message_id,
            recipient_id=recipient.id,
            payload_sealed=keyring.seal(
                Purpose.OUTBOX, notice.to_bytes(), outbox_context(message_id, recipient.id)
            ),
            kek_id=keyring.primary_id,
        )
    )


def drop_content(row: OutboxMessage) -> None:
    """A notice may quote a lawyer's question or a reporter's reply: once it is
    sent, dead or withdrawn, keep the bookkeeping and drop the content."""
    row.payload_sealed = b""
    row.kek_id = ""


async def withdraw_queued(
    session: AsyncSession,
    keyring: KeyRing,
    *,
    reference: str | None = None,
    recipient_id: uuid.UUID | None = None,
) -> list[Notice]:
    """Cancel the notices not sent yet about a case, or to one person; returns them.

    The reference is inside the sealed payload, so every queued row (few: the
    outbox drains within seconds) is opened. A row that does not open is left
    to the worker, which moves it to the dead letters without its content.
    """
    query = select(OutboxMessage).where(OutboxMessage.state.in_(QUEUED))
    if recipient_id is not None:
        query = query.where(OutboxMessage.recipient_id == recipient_id)
    withdrawn: list[Notice] = []
    for row in await session.scalars(query):
        try:
            notice = Notice.from_bytes(
                keyring.open(
                    Purpose.OUTBOX, row.payload_sealed, outbox_context(row.id, row.recipient_id)
                )
            )
        except (DecryptionError, ValueError, KeyError):
            continue
        if reference is not None and notice.reference != reference:
            continue
        row.state = CANCELLED
        drop_content(row)
        withdrawn.append(notice)
    await session.flush()
    return withdrawn


async def coordinators(session: AsyncSession) -> Sequence[User]:
    found = await session.scalars(select(User).where(User.role == Role.COORDINATOR.value))
    return found.all()


REPLY_CALLBACK_PREFIX = "reply"
REOPEN_CALLBACK_PREFIX = "ro"


def reopen_callback(reference: str, reopen: bool) -> str:
    """``ro:<reference>:<1|0>``, as handlers/staff/reopen.py ``ReopenChoice`` packs it."""
    return f"{REOPEN_CALLBACK_PREFIX}:{reference}:{int(reopen)}"


def notice_keyboard(notice: Notice, translate: Translate) -> InlineKeyboardMarkup | None:
    """A lawyer's question carries a Reply button, news on a closed case Reopen and
    Keep closed; nothing else has buttons."""
    if notice.kind is NoticeKind.NEWS_ON_CLOSED:
        rows = [
            [
                InlineKeyboardButton(
                    text=translate(label), callback_data=reopen_callback(notice.reference, choice)
                )
            ]
            for label, choice in ((N_("Reopen the case"), True), (N_("Keep it closed"), False))
        ]
        return InlineKeyboardMarkup(inline_keyboard=rows)
    if notice.kind is not NoticeKind.LAWYER_QUESTION:
        return None
    button = InlineKeyboardButton(
        text=translate(N_("Reply")),
        callback_data=f"{REPLY_CALLBACK_PREFIX}:{notice.reference}",
    )
    return InlineKeyboardMarkup(inline_keyboard=[[button]])
