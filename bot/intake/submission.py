"""Turning a finished draft into a case: sealed answers, urgency, notifications."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.cases.stats import count_submission
from bot.custody import issue_receipts
from bot.intake.flow import IntakeState, questionnaire_for
from bot.notifications import Notice, NoticeKind, coordinators, enqueue
from bot.questionnaire import clear_hidden, drop_missing_evidence, evidence_ids, is_urgent
from storage.crypto import DecryptionError, KeyRing
from storage.evidence import EvidenceRepository
from storage.models import Case, User, utcnow
from storage.repositories import CaseRepository

log = logging.getLogger("intake.submission")

DAILY_SUBMISSION_LIMIT = 3


class DailyLimitReached(Exception):
    """The reporter already sent the maximum number of reports in the last 24 hours."""


class IntakePaused(Exception):
    """More reports than ``intake_per_minute`` arrived in the last minute (a flood)."""


async def submit_report(
    session: AsyncSession,
    keyring: KeyRing,
    cases: CaseRepository,
    intake: IntakeState,
    *,
    reporter: User,
    reporter_chat_id: int,
    intake_per_minute: int = 0,
) -> Case:
    """Store the case, count it for statistics (with consent) and queue the
    coordinators' notices, all in the caller's transaction.

    ``intake_per_minute`` is the global circuit breaker (0 turns it off).
    """
    q = questionnaire_for(intake.draft.version)
    recent = await cases.submissions_since(reporter.tg_index, utcnow() - timedelta(days=1))
    if recent >= DAILY_SUBMISSION_LIMIT:
        raise DailyLimitReached
    if intake_per_minute and (
        await cases.created_since(utcnow() - timedelta(minutes=1)) >= intake_per_minute
    ):
        raise IntakePaused
    answers = clear_hidden(q, intake.draft.answers)
    evidence = EvidenceRepository(session)
    if intake.case_id is not None:
        # A draft file may have expired meanwhile: its reference goes, not the report.
        answers = drop_missing_evidence(q, answers, await evidence.existing_ids(intake.case_id))
    urgent = is_urgent(q, answers)
    case = await cases.create(
        answers=answers,
        urgent=urgent,
        questionnaire_version=q.version,
        stats_consent=intake.consent.stats,
        contact_consent=intake.consent.contact,
        reporter_index=reporter.tg_index,
        reporter_chat_id=reporter_chat_id,
        case_id=intake.case_id if intake.data_key is not None else None,
        data_key=intake.data_key if intake.case_id is not None else None,
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
