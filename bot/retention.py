"""Retention: closed cases are crypto-shredded after the retention period.

Seven days before, the assigned lawyer is warned and may extend with a
reason (``/extend REF reason``; audited). Shredding deletes the case's key
wraps, so every sealed column becomes unreadable for good; the clear
dimensions of consenting cases move to ``stats_archive`` first (their agency
and region were counted in the sealed tally when they were sent), so
published figures survive. Safe to run twice, or in two processes at once:
each case is claimed with a conditional UPDATE.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cases.stats import archive_case
from bot.notifications import CANCELLED, DEAD, SENT, Notice, NoticeKind, enqueue, withdraw_queued
from storage import audit
from storage.crypto import KeyRing
from storage.models import (
    Case,
    CaseEvent,
    CaseMessage,
    EvidenceFile,
    KeyWrap,
    OutboxMessage,
    User,
    utcnow,
)

log = logging.getLogger("intake.retention")

WARN_BEFORE = timedelta(days=7)
EXTENSION = timedelta(days=90)
SENT_KEPT = timedelta(days=7)
DEAD_KEPT = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class RetentionReport:
    warned: int
    shredded: int


def deadline(case: Case, retention: timedelta) -> datetime | None:
    if case.closed_at is None:
        return None
    return case.retain_until or case.closed_at + retention


async def shred_case(session: AsyncSession, keyring: KeyRing, case: Case, *, reason: str) -> bool:
    """Archive anonymous counters, then destroy the case's keys; False if already done."""
    now = utcnow()
    claimed = await session.execute(
        update(Case)
        .where(Case.id == case.id, Case.shredded_at.is_(None))
        .values(shredded_at=now)
        .execution_options(synchronize_session=False)
    )
    if not getattr(claimed, "rowcount", 0):
        return False
    if case.stats_consent:
        await archive_case(session, case)
    await session.execute(delete(KeyWrap).where(KeyWrap.case_id == case.id))
    await session.execute(delete(CaseMessage).where(CaseMessage.case_id == case.id))
    await session.execute(delete(EvidenceFile).where(EvidenceFile.case_id == case.id))
    # Questions and replies still queued about the case go with it.
    await withdraw_queued(session, keyring, reference=case.reference)
    case.shredded_at = now
    case.reporter_index = None
    case.reporter_chat_sealed = None
    session.add(CaseEvent(case_id=case.id, kind="shredded"))
    await audit.record(session, keyring, reason, actor_id=None, case_id=case.id)
    return True


async def run_retention(
    sessionmaker: async_sessionmaker[AsyncSession],
    keyring: KeyRing,
    retention: timedelta,
    *,
    now: datetime | None = None,
) -> RetentionReport:
    now = now or utcnow()
    warned = shredded = 0
    async with sessionmaker.begin() as session:
        candidates = await session.scalars(
            select(Case).where(
                Case.status == "closed",
                Case.shredded_at.is_(None),
                Case.closed_at.is_not(None),
                or_(
                    Case.retain_until.is_(None) & (Case.closed_at <= now - retention + WARN_BEFORE),
                    Case.retain_until <= now + WARN_BEFORE,
                ),
            )
        )
        for case in candidates.all():
            due = deadline(case, retention)
            assert due is not None
            if due <= now:
                shredded += await shred_case(session, keyring, case, reason="case_shred_retention")
            elif case.retention_warned_at is None and case.assignee_id is not None:
                lawyer = await session.get(User, case.assignee_id)
                if lawyer is not None and lawyer.role is not None:
                    enqueue(
                        session,
                        keyring,
                        lawyer,
                        Notice(NoticeKind.RETENTION_WARNING, case.reference),
                    )
                case.retention_warned_at = now
                await audit.record(
                    session, keyring, "retention_warning", actor_id=None, case_id=case.id
                )
                warned += 1
        # Sent, withdrawn and dead notices keep only their bookkeeping (dead ones
        # are counted in /staff for a while), then go too.
        await session.execute(
            delete(OutboxMessage).where(
                or_(
                    (OutboxMessage.state == SENT) & (OutboxMessage.sent_at <= now - SENT_KEPT),
                    (OutboxMessage.state == CANCELLED)
                    & (OutboxMessage.created_at <= now - SENT_KEPT),
                    (OutboxMessage.state == DEAD) & (OutboxMessage.created_at <= now - DEAD_KEPT),
                )
            )
        )
    if warned or shredded:
        log.info("retention: %d warned, %d shredded", warned, shredded)
    return RetentionReport(warned, shredded)
