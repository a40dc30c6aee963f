"""Retention: warnings, crypto-shredding, extensions and the anonymous archive,
on SQLite and PostgreSQL (``run_retention`` with an explicit ``now``)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text, update

from bot.cases.service import CaseService
from bot.cases.stats import Stats, compute, count_submission
from bot.notifications import Notice, NoticeKind, outbox_context
from bot.retention import EXTENSION, WARN_BEFORE, run_retention
from storage.crypto import KeyRing, Purpose
from storage.models import (
    AuditEntry,
    Case,
    CaseEvent,
    CaseMessage,
    KeyWrap,
    OutboxMessage,
    StatsArchive,
    User,
    utcnow,
)
from storage.repositories import CaseRepository, UserRepository
from storage.roles import set_role
from tests.canary import new_canary, raw_database_bytes, scan
from tests.conftest import Database, close_database, open_database

RETENTION = timedelta(days=180)
LAWYER_TG = 760_001
REPORTER_TG = 760_500


async def _lawyer(db: Database, keyring: KeyRing, telegram_id: int = LAWYER_TG) -> uuid.UUID:
    async with db.sessionmaker.begin() as session:
        user = await UserRepository(session, keyring).ensure(telegram_id, telegram_id)
        set_role(keyring, user, "lawyer")
        return user.id


async def _closed_case(
    db: Database,
    keyring: KeyRing,
    *,
    closed_at: datetime,
    assignee: uuid.UUID | None,
    answers: dict[str, Any] | None = None,
    stats_consent: bool = True,
) -> str:
    """A case sent, worked on (a note) and closed at ``closed_at``."""
    answers = answers or {"region": "sughd", "agency": ["police"], "account": "латукӯб"}
    async with db.sessionmaker.begin() as session:
        users = UserRepository(session, keyring)
        await users.ensure(REPORTER_TG, REPORTER_TG)
        cases = CaseRepository(session, keyring)
        case = await cases.create(
            answers=answers,
            urgent=True,
            questionnaire_version="test",
            stats_consent=stats_consent,
            contact_consent=True,
            reporter_index=users.telegram_index(REPORTER_TG),
            reporter_chat_id=REPORTER_TG,
        )
        if stats_consent:  # as submit_report does
            await count_submission(session, keyring, answers)
        case.created_at = closed_at - timedelta(days=30)
        case.assignee_id = assignee
        if assignee is not None:
            lawyer = await session.get(User, assignee)
            assert lawyer is not None
            service = CaseService(session, keyring, self_assign=True)
            await service.add_note(lawyer, case.reference, "Суд 12.05, ҳуҷҷатҳо дар дафтар")
        case.status = "closed"
        case.outcome = "consultation"
        case.closed_at = closed_at
        return case.reference


async def _case(db: Database, reference: str) -> Case:
    async with db.sessionmaker() as session:
        case = await session.scalar(select(Case).where(Case.reference == reference))
        assert case is not None
        return case


async def _count(db: Database, model: Any, *where: Any) -> int:
    async with db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def _notices(db: Database, keyring: KeyRing, recipient: uuid.UUID) -> list[Notice]:
    async with db.sessionmaker() as session:
        rows = await session.scalars(
            select(OutboxMessage).where(OutboxMessage.recipient_id == recipient)
        )
        return [
            Notice.from_bytes(
                keyring.open(
                    Purpose.OUTBOX, row.payload_sealed, outbox_context(row.id, row.recipient_id)
                )
            )
            for row in rows
        ]


async def _answers_readable(db: Database, keyring: KeyRing, reference: str) -> bool:
    async with db.sessionmaker() as session:
        cases = CaseRepository(session, keyring)
        case = await cases.by_reference(reference)
        assert case is not None
        try:
            await cases.answers(case)
        except LookupError:
            return False
        return True


async def _stats(db: Database, keyring: KeyRing) -> Stats:
    async with db.sessionmaker() as session:
        return await compute(session, keyring)


async def _archive(db: Database) -> dict[tuple[str, str], int]:
    async with db.sessionmaker() as session:
        rows = await session.execute(
            select(StatsArchive.dimension, StatsArchive.key, StatsArchive.count)
        )
        return {(dimension, key): count for dimension, key, count in rows}


async def test_a_closed_case_within_the_period_is_untouched(
    database: Database, keyring: KeyRing
) -> None:
    now = utcnow()
    lawyer = await _lawyer(database, keyring)
    # Deadline in 8 days: one day before the warning is due.
    reference = await _closed_case(
        database,
        keyring,
        closed_at=now - RETENTION + WARN_BEFORE + timedelta(days=1),
        assignee=lawyer,
    )
    report = await run_retention(database.sessionmaker, keyring, RETENTION, now=now)
    assert (report.warned, report.shredded) == (0, 0)
    case = await _case(database, reference)
    assert case.retention_warned_at is None and case.shredded_at is None
    assert case.reporter_index is not None
    assert await _notices(database, keyring, lawyer) == []
    assert await _answers_readable(database, keyring, reference)
    # An open case is never a candidate, however old.
    async with database.sessionmaker.begin() as session:
        await session.execute(
            update(Case).where(Case.id == case.id).values(status="in_progress", closed_at=None)
        )
    report = await run_retention(
        database.sessionmaker, keyring, RETENTION, now=now + timedelta(days=3650)
    )
    assert (report.warned, report.shredded) == (0, 0)


async def test_the_lawyer_is_warned_seven_days_before_the_deadline_once(
    database: Database, keyring: KeyRing
) -> None:
    now = utcnow()
    lawyer = await _lawyer(database, keyring)
    reference = await _closed_case(
        database, keyring, closed_at=now - RETENTION + WARN_BEFORE, assignee=lawyer
    )
    first = await run_retention(database.sessionmaker, keyring, RETENTION, now=now)
    second = await run_retention(
        database.sessionmaker, keyring, RETENTION, now=now + timedelta(days=1)
    )
    assert (first.warned, first.shredded, second.warned, second.shredded) == (1, 0, 0, 0)
    assert await _notices(database, keyring, lawyer) == [
        Notice(NoticeKind.RETENTION_WARNING, reference)
    ]
    case = await _case(database, reference)
    assert case.retention_warned_at == now
    assert await _count(database, AuditEntry, AuditEntry.action == "retention_warning") == 1
    assert await _answers_readable(database, keyring, reference)


async def test_after_the_deadline_the_case_is_shredded_and_a_second_run_changes_nothing(
    database: Database, keyring: KeyRing
) -> None:
    now = utcnow()
    lawyer = await _lawyer(database, keyring)
    reference = await _closed_case(
        database, keyring, closed_at=now - RETENTION - timedelta(seconds=1), assignee=lawyer
    )
    case = await _case(database, reference)
    assert await _count(database, CaseMessage, CaseMessage.case_id == case.id) == 1
    assert await _count(database, KeyWrap, KeyWrap.case_id == case.id) == 1

    report = await run_retention(database.sessionmaker, keyring, RETENTION, now=now)
    assert (report.warned, report.shredded) == (0, 1)
    case = await _case(database, reference)
    assert case.shredded_at is not None
    assert case.reporter_index is None and case.reporter_chat_sealed is None
    assert await _count(database, KeyWrap, KeyWrap.case_id == case.id) == 0
    assert await _count(database, CaseMessage, CaseMessage.case_id == case.id) == 0
    assert not await _answers_readable(database, keyring, reference)
    assert await _count(database, CaseEvent, CaseEvent.kind == "shredded") == 1
    audit_before = await _count(database, AuditEntry)
    assert await _count(database, AuditEntry, AuditEntry.action == "case_shred_retention") == 1
    # A case shredded without a warning (the run was late) is still shredded.
    assert await _notices(database, keyring, lawyer) == []

    again = await run_retention(
        database.sessionmaker, keyring, RETENTION, now=now + timedelta(days=30)
    )
    assert (again.warned, again.shredded) == (0, 0)
    later = await _case(database, reference)
    assert later.shredded_at == case.shredded_at
    assert await _count(database, AuditEntry) == audit_before
    assert await _count(database, CaseEvent, CaseEvent.kind == "shredded") == 1


@pytest.mark.parametrize("role", ["lawyer", "coordinator"])
async def test_extending_moves_the_deadline_and_resets_the_warning(
    database: Database, keyring: KeyRing, role: str
) -> None:
    now = utcnow()
    lawyer = await _lawyer(database, keyring)
    reference = await _closed_case(
        database, keyring, closed_at=now - RETENTION + timedelta(days=3), assignee=lawyer
    )
    assert (await run_retention(database.sessionmaker, keyring, RETENTION, now=now)).warned == 1

    async with database.sessionmaker.begin() as session:
        if role == "lawyer":
            actor = await session.get(User, lawyer)
        else:
            actor = await UserRepository(session, keyring).ensure(760_002, 760_002)
            set_role(keyring, actor, "coordinator")
        assert actor is not None
        service = CaseService(session, keyring, self_assign=True, retention_days=180)
        await service.extend_retention(actor, reference, "Шикоят ба прокурор ҳанӯз баррасӣ мешавад")
    case = await _case(database, reference)
    assert case.retention_warned_at is None
    assert case.retain_until is not None
    expected = now + timedelta(days=3) + EXTENSION
    assert abs(case.retain_until - expected) < timedelta(minutes=1)
    assert await _count(database, AuditEntry, AuditEntry.action == "retention_extend") == 1
    assert (
        await _count(
            database, CaseMessage, CaseMessage.case_id == case.id, CaseMessage.kind == "retention"
        )
        == 1
    )

    # The old deadline passes without effect; the new one warns again, then shreds.
    quiet = await run_retention(
        database.sessionmaker, keyring, RETENTION, now=now + timedelta(days=10)
    )
    assert (quiet.warned, quiet.shredded) == (0, 0)
    assert await _answers_readable(database, keyring, reference)
    warned = await run_retention(
        database.sessionmaker, keyring, RETENTION, now=case.retain_until - timedelta(days=6)
    )
    assert (warned.warned, warned.shredded) == (1, 0)
    assert len(await _notices(database, keyring, lawyer)) == 2
    shredded = await run_retention(
        database.sessionmaker, keyring, RETENTION, now=case.retain_until + timedelta(seconds=1)
    )
    assert (shredded.warned, shredded.shredded) == (0, 1)
    assert not await _answers_readable(database, keyring, reference)


async def test_another_lawyer_cannot_extend_and_a_shredded_case_cannot_be_extended(
    database: Database, keyring: KeyRing
) -> None:
    from bot.cases.service import AccessDenied
    from bot.cases.workflow import WorkflowError

    now = utcnow()
    owner = await _lawyer(database, keyring)
    other = await _lawyer(database, keyring, 760_003)
    reference = await _closed_case(
        database, keyring, closed_at=now - RETENTION - timedelta(days=1), assignee=owner
    )
    async with database.sessionmaker() as session:
        stranger = await session.get(User, other)
        assert stranger is not None
        with pytest.raises(AccessDenied):
            await CaseService(session, keyring, self_assign=True).extend_retention(
                stranger, reference, "причина"
            )
    await run_retention(database.sessionmaker, keyring, RETENTION, now=now)
    async with database.sessionmaker() as session:
        lawyer = await session.get(User, owner)
        assert lawyer is not None
        with pytest.raises(WorkflowError):
            await CaseService(session, keyring, self_assign=True).extend_retention(
                lawyer, reference, "поздно"
            )


async def test_shredding_keeps_the_anonymous_figures_of_consenting_cases_only(
    database: Database, keyring: KeyRing
) -> None:
    now = utcnow()
    lawyer = await _lawyer(database, keyring)
    due = now - RETENTION - timedelta(days=1)
    consenting = await _case(
        database,
        await _closed_case(
            database,
            keyring,
            closed_at=due,
            assignee=lawyer,
            answers={"region": "sughd", "agency": ["police", "gknb"]},
        ),
    )
    await _closed_case(
        database,
        keyring,
        closed_at=due,
        assignee=None,
        answers={"region": "gbao", "agency": ["prosecutor"]},
        stats_consent=False,
    )
    before = await _stats(database, keyring)
    assert before.total == 1 and before.urgent == 1
    # The lawyer's note was a first action.
    assert consenting.first_action_at is not None and before.median_first_action is not None
    waited = consenting.first_action_at - consenting.created_at
    assert abs(before.median_first_action - waited) < timedelta(seconds=1)
    assert "gbao" not in before.by_region and "prosecutor" not in before.by_agency

    report = await run_retention(database.sessionmaker, keyring, RETENTION, now=now)
    assert report.shredded == 2
    after = await _stats(database, keyring)
    for figures in (before, after):
        assert figures.total == 1 and figures.urgent == 1
        assert dict(figures.by_region) == {"sughd": 1}
        assert dict(figures.by_agency) == {"police": 1, "gknb": 1}
        assert dict(figures.by_status) == {"closed": 1}
        assert dict(figures.by_outcome) == {"consultation": 1}
    assert after.by_month == before.by_month == {f"{due - timedelta(days=30):%Y-%m}": 1}
    # Known limit: the time to a lawyer's first action is not archived, so the
    # median covers only cases that are not shredded yet.
    assert after.median_first_action is None
    # The archive holds the clear dimensions only: agency and region stay in the
    # sealed tally, where the case was counted when it was sent.
    expected_archive = {
        ("total", ""): 1,
        ("urgent", ""): 1,
        ("status", "closed"): 1,
        ("month", f"{consenting.created_at:%Y-%m}"): 1,
        ("outcome", "consultation"): 1,
    }
    assert await _archive(database) == expected_archive
    # Running again must not count the archived case twice.
    await run_retention(database.sessionmaker, keyring, RETENTION, now=now + timedelta(days=1))
    again = await _stats(database, keyring)
    assert (again.total, dict(again.by_region), dict(again.by_agency)) == (
        1,
        {"sughd": 1},
        {"police": 1, "gknb": 1},
    )
    assert await _archive(database) == expected_archive


async def test_sqlite_connections_use_secure_delete(tmp_path: Any) -> None:
    db = await open_database("sqlite", tmp_path)
    try:
        async with db.engine.connect() as first, db.engine.connect() as second:
            for conn in (first, second):
                assert (await conn.execute(text("PRAGMA secure_delete"))).scalar() == 1
                assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
    finally:
        await close_database(db)


async def test_after_shredding_no_answer_and_no_case_key_is_left_in_the_raw_database(
    database: Database, keyring: KeyRing
) -> None:
    now = utcnow()
    canary = new_canary()
    reference = await _closed_case(
        database,
        keyring,
        closed_at=now - RETENTION - timedelta(days=1),
        assignee=await _lawyer(database, keyring),
        answers={"region": "sughd", "account": f"Ӯро латукӯб карданд. {canary}"},
    )
    case = await _case(database, reference)
    async with database.sessionmaker() as session:
        wrap = await session.scalar(select(KeyWrap.wrapped).where(KeyWrap.case_id == case.id))
    assert wrap is not None
    # pg_dump writes bytea as hex; SQLite keeps the raw bytes.
    wrapped = bytes(wrap) if database.backend == "sqlite" else bytes(wrap).hex().encode()

    before = await raw_database_bytes(database)
    assert scan(before, [reference]), "the scan does not see this test's database"
    assert wrapped in before  # positive control: the case key is there while it is needed
    assert scan(before, [canary]) == []

    assert (await run_retention(database.sessionmaker, keyring, RETENTION, now=now)).shredded == 1
    after = await raw_database_bytes(database)
    assert scan(after, [canary]) == []
    assert scan(after, [reference]), "the clear metadata stays"
    if database.backend == "sqlite":
        # secure_delete overwrote the deleted key wrap in the database file; the
        # live -wal file may hold older page images until it is checkpointed.
        checkpointed = after.split(b"\n--- after dispose\n", 1)[1]
        assert wrapped not in checkpointed
    else:
        assert wrapped not in after
