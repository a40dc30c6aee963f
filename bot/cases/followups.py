"""News a reporter adds to a case after sending it, and the reopening it may ask for.

Stored in the caller's transaction: the news sealed under the case's data key
(a ``case_messages`` row of kind ``followup``), a ``case_events`` row of kind
``followup`` without an actor (a reporter is never stored as an actor: the
kind says who), its files made the case's, urgency and status changed, the
audit entry, the statistics tally (consenting cases) and the notices. The
limits count the case's own ``followup`` events: they live and die with the
case, so ``/forget`` (which deletes the reporter, not the case) resets nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cases.policy import Action, is_allowed
from bot.cases.service import AccessDenied, CaseService, message_context
from bot.cases.stats import count_news
from bot.cases.workflow import Status, WorkflowError
from bot.custody import issue_receipts
from bot.intake.news import URGENT_NEWS, NewsKind, NewsRecord
from bot.notifications import Notice, NoticeKind, coordinators, enqueue
from bot.text import N_
from storage import audit
from storage.crypto import DataKey, DecryptionError, KeyRing
from storage.evidence import EvidenceRepository
from storage.models import Case, CaseEvent, CaseMessage, User
from storage.repositories import CaseRepository

#: A closed case still takes news this long after closing (then a new report).
CLOSED_WINDOW: Final = timedelta(days=30)
NEWS_EVENT: Final = "followup"
NEWS_MESSAGE: Final = "followup"
REOPENED: Final = "reopened"
KEPT_CLOSED: Final = "reopen_declined"


@dataclass(frozen=True, slots=True)
class NewsLimits:
    """How much news one case takes (``INTAKE_FOLLOWUPS_PER_DAY``, ``INTAKE_FOLLOWUPS_TOTAL``)."""

    per_day: int = 3
    total: int = 20


class LimitReason(StrEnum):
    DAY = "day"
    TOTAL = "total"


class NewsLimitReached(Exception):
    def __init__(self, reason: LimitReason) -> None:
        super().__init__(reason.value)
        self.reason = reason


def takes_news(case: Case, reporter: User, now: datetime) -> bool:
    """The reporter's own case, still readable, open or closed for under 30 days."""
    if case.reporter_index is None or case.reporter_index != reporter.tg_index:
        return False
    if case.shredded_at is not None:
        return False
    if case.status == Status.CLOSED.value:
        return case.closed_at is not None and case.closed_at >= now - CLOSED_WINDOW
    return True


def cases_taking_news(cases: Sequence[Case], reporter: User, now: datetime) -> list[Case]:
    return [case for case in cases if takes_news(case, reporter, now)]


async def news_case(
    session: AsyncSession, keyring: KeyRing, reporter: User, reference: str, now: datetime
) -> Case:
    """The case news may be added to; AccessDenied for anything else (same answer)."""
    case = await CaseRepository(session, keyring).by_reference(reference)
    if case is None or not takes_news(case, reporter, now):
        raise AccessDenied
    return case


async def check_limits(
    session: AsyncSession, case: Case, limits: NewsLimits, now: datetime
) -> None:
    counted = select(func.count()).select_from(CaseEvent)
    mine = (CaseEvent.case_id == case.id) & (CaseEvent.kind == NEWS_EVENT)
    total = int(await session.scalar(counted.where(mine)) or 0)
    if total >= limits.total:
        raise NewsLimitReached(LimitReason.TOTAL)
    today = int(
        await session.scalar(counted.where(mine, CaseEvent.at > now - timedelta(days=1))) or 0
    )
    if today >= limits.per_day:
        raise NewsLimitReached(LimitReason.DAY)


async def _kinds_reported(session: AsyncSession, case: Case, data_key: DataKey) -> set[NewsKind]:
    rows = await session.scalars(
        select(CaseMessage).where(CaseMessage.case_id == case.id, CaseMessage.kind == NEWS_MESSAGE)
    )
    kinds: set[NewsKind] = set()
    for row in rows:
        try:
            opened = data_key.open(row.body_sealed, message_context(row.id)).decode()
        except DecryptionError:
            continue
        record = NewsRecord.from_json(opened)
        if record is not None:
            kinds.add(record.kind)
    return kinds


async def record_news(
    service: CaseService,
    reporter: User,
    reference: str,
    record: NewsRecord,
    limits: NewsLimits,
    now: datetime,
) -> Case:
    """Add the news to the case and tell whoever works on it; raises AccessDenied
    or NewsLimitReached (then nothing is stored and the draft stays)."""
    session, keyring = service.session, service.keyring
    case = await news_case(session, keyring, reporter, reference, now)
    await check_limits(session, case, limits, now)
    try:
        data_key = await service.cases.data_key(case)
    except LookupError:
        raise AccessDenied from None
    evidence = EvidenceRepository(session)
    present = await evidence.existing_ids(case.id)
    # A file of the draft may have expired meanwhile: the news goes without it.
    files = tuple(f for f in record.files if f in present)
    kept = await evidence.submit(case.id, files)
    # Files sent with news join the case now: their custody receipts are signed.
    await issue_receipts(session, keyring, case, data_key, kept)
    first_of_kind = record.kind not in await _kinds_reported(session, case, data_key)
    message_id = uuid.uuid4()
    sealed = NewsRecord(record.kind, record.words, files).to_json().encode()
    session.add(
        CaseMessage(
            id=message_id,
            case_id=case.id,
            kind=NEWS_MESSAGE,
            author_id=None,
            created_at=now,
            body_sealed=data_key.seal(sealed, message_context(message_id)),
        )
    )
    was = case.status
    if record.kind in URGENT_NEWS:
        case.urgent = True
    if was == Status.AWAITING_REPORTER.value:
        case.status = Status.IN_PROGRESS.value
    session.add(
        CaseEvent(case_id=case.id, at=now, kind=NEWS_EVENT, from_status=was, to_status=case.status)
    )
    await audit.record(session, keyring, "news_received", actor_id=None, case_id=case.id)
    await session.flush()
    if case.stats_consent and first_of_kind:
        # Counted once per case and kind: a death reported twice is one death.
        await count_news(session, keyring, record.kind.value)
    await _tell_staff(service, case, record.kind)
    return case


async def _tell_staff(service: CaseService, case: Case, kind: NewsKind) -> None:
    """The reference, the kind and the urgency; never the words or the files."""
    urgent = kind in URGENT_NEWS
    session, keyring = service.session, service.keyring
    if case.status == Status.CLOSED.value:
        notice = Notice(NoticeKind.NEWS_ON_CLOSED, case.reference, urgent=urgent, news=kind.value)
        for coordinator in await coordinators(session):
            enqueue(session, keyring, coordinator, notice)
        return
    notice = Notice(NoticeKind.REPORTER_NEWS, case.reference, urgent=urgent, news=kind.value)
    lawyer = await session.get(User, case.assignee_id) if case.assignee_id else None
    if lawyer is not None and is_allowed(lawyer, Action.VIEW_CASE, case, keyring=keyring):
        enqueue(session, keyring, lawyer, notice)
        return
    for coordinator in await coordinators(session):
        enqueue(session, keyring, coordinator, notice)


async def reopen_pending(session: AsyncSession, case: Case) -> bool:
    """A closed case with news that no coordinator has answered yet."""
    if case.status != Status.CLOSED.value or case.shredded_at is not None:
        return False
    events = (
        await session.scalars(
            select(CaseEvent)
            .where(
                CaseEvent.case_id == case.id,
                CaseEvent.kind.in_((NEWS_EVENT, REOPENED, KEPT_CLOSED)),
            )
            .order_by(CaseEvent.at.desc())
            .limit(1)
        )
    ).first()
    return (
        events is not None
        and events.kind == NEWS_EVENT
        and events.from_status == Status.CLOSED.value
    )


async def decide_reopen(
    service: CaseService, actor: User, reference: str, *, reopen: bool, now: datetime
) -> Case:
    """A coordinator's answer to news on a closed case: reopen it or keep it closed.

    Asked of the policy (``Action.REOPEN``, coordinators only) on every press;
    once answered, the other button is refused.
    """
    case = await service.find(actor, reference, Action.REOPEN)
    if not await reopen_pending(service.session, case):
        raise WorkflowError(N_("This request has already been answered."))
    session, keyring = service.session, service.keyring
    if not reopen:
        session.add(CaseEvent(case_id=case.id, at=now, actor_id=actor.id, kind=KEPT_CLOSED))
        await audit.record(session, keyring, "reopen_declined", actor_id=actor.id, case_id=case.id)
        return case
    lawyer = await session.get(User, case.assignee_id) if case.assignee_id else None
    working = lawyer is not None and is_allowed(lawyer, Action.VIEW_CASE, case, keyring=keyring)
    if not working:
        case.assignee_id = None
    target = Status.IN_PROGRESS if working else Status.NEW
    case.status = target.value
    case.outcome = None
    case.closed_at = None
    case.retain_until = None
    case.retention_warned_at = None
    session.add(
        CaseEvent(
            case_id=case.id,
            at=now,
            actor_id=actor.id,
            kind=REOPENED,
            from_status=Status.CLOSED.value,
            to_status=target.value,
        )
    )
    await audit.record(session, keyring, "case_reopen", actor_id=actor.id, case_id=case.id)
    if working and lawyer is not None and lawyer.id != actor.id:
        enqueue(session, keyring, lawyer, Notice(NoticeKind.CASE_REOPENED, case.reference))
    return case
