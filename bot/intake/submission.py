"""Turning a finished draft into a case: sealed answers, urgency, notifications."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.cases.stats import count_submission
from bot.custody import issue_receipts
from bot.intake.flow import IntakeState, questionnaire_for
from bot.intake.limits import DailyLimitReached, IntakePaused, admit_submission
from bot.notifications import Notice, NoticeKind, coordinators, enqueue
from bot.questionnaire import clear_hidden, drop_missing_evidence, evidence_ids, is_urgent
from storage.abuse_handles import Sender, keep_handle
from storage.crypto import DataKey, DecryptionError, KeyRing
from storage.evidence import EvidenceRepository
from storage.models import Case, User, utcnow
from storage.repositories import CaseRepository

log = logging.getLogger("intake.submission")

__all__ = ["DailyLimitReached", "IntakePaused", "submit_report"]


async def submit_report(
    session: AsyncSession,
    keyring: KeyRing,
    cases: CaseRepository,
    intake: IntakeState,
    *,
    reporter: User,
    reporter_chat_id: int,
    intake_per_minute: int = 0,
    abuse_handle_days: int = 7,
) -> Case:
    """Store the case, count it for statistics (with consent) and queue the
    coordinators' notices, all in the caller's transaction.

    Raises ``DailyLimitReached`` or ``IntakePaused`` (``bot/intake/limits.py``;
    ``intake_per_minute`` 0 turns the circuit breaker off) before anything is
    stored. The case keeps a sealed abuse handle for ``abuse_handle_days``.
    """
    q = questionnaire_for(intake.draft.version)
    await admit_submission(session, keyring, reporter, intake_per_minute=intake_per_minute)
    answers = clear_hidden(q, intake.draft.answers)
    evidence = EvidenceRepository(session)
    if intake.case_id is not None:
        # A draft file may have expired meanwhile: its reference goes, not the report.
        answers = drop_missing_evidence(q, answers, await evidence.existing_ids(intake.case_id))
    urgent = is_urgent(q, answers)
    # A draft's files are sealed under its future case id and key: keep them.
    if intake.case_id is not None and intake.data_key is not None:
        case_id, data_key = intake.case_id, intake.data_key
    else:
        case_id, data_key = uuid.uuid4(), DataKey.generate()
    case = await cases.create(
        answers=answers,
        urgent=urgent,
        questionnaire_version=q.version,
        stats_consent=intake.consent.stats,
        contact_consent=intake.consent.contact,
        reporter_index=reporter.tg_index,
        reporter_chat_id=reporter_chat_id,
        case_id=case_id,
        data_key=data_key,
    )
    keep_handle(
        session,
        case.id,
        data_key,
        Sender(reporter.tg_index, reporter_chat_id),
        expires_at=utcnow() + timedelta(days=abuse_handle_days),
    )
    if case.stats_consent:
        try:
            await count_submission(session, keyring, answers)
        except DecryptionError:
            # The report matters more than a figure. The tally stays unreadable,
            # so /stats refuses to show figures rather than show wrong ones.
            # No reference in the line: logs never name a case.
            log.error("statistics tally does not open: a report was stored, not counted")
    if intake.case_id is not None:
        # Files referred to by the answers become the case's; the rest are deleted.
        kept = await evidence.submit(case.id, evidence_ids(q, answers))
        if kept and intake.data_key is not None:
            await issue_receipts(session, keyring, case, intake.data_key, kept)
    notice = Notice(NoticeKind.NEW_CASE, case.reference, urgent=urgent)
    for coordinator in await coordinators(session):
        enqueue(session, keyring, coordinator, notice)
    return case
