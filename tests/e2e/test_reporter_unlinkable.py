"""After /forget and after destruction, no table holds an id that links a case to
its reporter: every column of every row of every table is scanned for the
person's internal id, blind index and Telegram id. docs/threat-model.md cites
these tests by name.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import MetaData, func, select
from sqlalchemy.engine import Connection

from bot.cases.service import CaseService
from bot.cases.workflow import Outcome
from bot.retention import run_retention
from bot.text import N_
from devkit.emulator import SimulatedUser
from devkit.sandbox import Sandbox
from devkit.scripted_reporter import ScriptedReporter, t
from storage.models import AbuseHandle, AuditEntry, Case, User, utcnow
from storage.repositories import UserRepository
from tests.e2e.conftest import COORDINATOR_ID
from tests.e2e.staff_helpers import db_user, drain_outbox, join_staff, lawyer_asks
from tests.e2e.test_security import audit_entries, send_report


@dataclass(frozen=True, slots=True)
class Person:
    """What identifies a reporter in the database: internal id, blind index, Telegram id."""

    user_id: uuid.UUID
    tg_index: bytes
    telegram_id: int

    def found_in(self, value: Any) -> bool:
        if isinstance(value, uuid.UUID):
            return value == self.user_id
        if isinstance(value, int) and not isinstance(value, bool):
            return value == self.telegram_id
        if isinstance(value, (bytes, memoryview)):
            raw = bytes(value)
            return any(
                needle in raw
                for needle in (
                    self.tg_index,
                    self.user_id.bytes,
                    self.user_id.hex.encode(),
                    str(self.telegram_id).encode(),
                )
            )
        if isinstance(value, str):
            return any(
                needle in value.lower()
                for needle in (
                    self.user_id.hex,
                    str(self.user_id),
                    self.tg_index.hex(),
                    str(self.telegram_id),
                )
            )
        return False


def _links(sync: Connection, person: Person, exempt: uuid.UUID | None) -> list[str]:
    """``table.column`` of every value that names the person (their own row exempt)."""
    tables = MetaData()
    tables.reflect(sync)
    found = []
    for table in tables.sorted_tables:
        for row in sync.execute(select(table)).mappings():
            if table.name == "users" and _same_id(row, exempt):
                continue
            found.extend(
                f"{table.name}.{column}" for column, value in row.items() if person.found_in(value)
            )
    return found


def _same_id(row: Mapping[str, Any], user_id: uuid.UUID | None) -> bool:
    if user_id is None:
        return False
    value = row["id"]
    return str(value).replace("-", "").lower() == user_id.hex


async def links_to(sandbox: Sandbox, person: Person, exempt: uuid.UUID | None = None) -> list[str]:
    async with sandbox.sessionmaker() as session:
        connection = await session.connection()
        return await connection.run_sync(lambda sync: _links(sync, person, exempt))


async def _handles(sandbox: Sandbox) -> int:
    async with sandbox.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(AbuseHandle)) or 0)


async def _person(sandbox: Sandbox, telegram_id: int) -> Person:
    row = await db_user(sandbox, telegram_id)
    assert row is not None
    return Person(row.id, row.tg_index, telegram_id)


async def _assigned_and_answered(sandbox: Sandbox, telegram_id: int) -> tuple[str, User]:
    """A report sent through the questionnaire, assigned, asked about and answered twice
    (a text, then a file)."""
    reporter, reference = await send_report(sandbox, telegram_id, "ru")
    lawyer = sandbox.user(telegram_id + 100, first_name="Адвокат")
    lawyer_row = await join_staff(sandbox, sandbox.user(COORDINATOR_ID), lawyer)
    async with sandbox.sessionmaker.begin() as session:
        boss = await UserRepository(session, sandbox.keyring).by_telegram_id(COORDINATOR_ID)
        assert boss is not None
        await CaseService(session, sandbox.keyring, self_assign=True).assign(
            boss, reference, lawyer_row.id
        )
    await drain_outbox(sandbox)
    await _answer(sandbox, lawyer_row, reporter.user, reference, text="Ответ на вопрос")
    await _answer(sandbox, lawyer_row, reporter.user, reference, text=None)
    return reference, lawyer_row


async def _answer(
    sandbox: Sandbox, lawyer_row: User, user: SimulatedUser, reference: str, *, text: str | None
) -> None:
    await lawyer_asks(sandbox, lawyer_row, user, reference)
    await user.press(t(N_("Reply"), "ru"))
    if text is None:
        await user.send_document(b"%PDF-1.4 spravka", "spravka.pdf", "application/pdf")
    else:
        await user.send_text(text)
    await drain_outbox(sandbox)


async def test_after_forget_no_table_links_the_case_to_the_reporter(sandbox: Sandbox) -> None:
    reference, _lawyer = await _assigned_and_answered(sandbox, 753_001)
    person = await _person(sandbox, 753_001)
    # The scan sees this person while they are linked.
    assert "cases.reporter_index" in await links_to(sandbox, person, exempt=person.user_id)

    reporter = ScriptedReporter(sandbox.user(753_001), "ru")
    await reporter.user.send_command("/forget")
    await reporter.press(N_("Yes, forget me"))

    assert await links_to(sandbox, person) == []
    # One audit entry for the whole /forget, naming no case and no person.
    [entry] = await audit_entries(sandbox, "reporter_forget")
    assert (entry.actor_id, entry.case_id, entry.subject_id) == (None, None, None)
    async with sandbox.sessionmaker() as session:
        case = await session.scalar(select(Case).where(Case.reference == reference))
        assert case is not None
        by_case = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.case_id == case.id, AuditEntry.actor_id.is_(None))
            .where(AuditEntry.action.in_(("reply_received", "evidence_received")))
        )
    # The replies are still audited, by the kind of actor only.
    assert by_case == 2


async def test_after_destruction_no_table_links_the_case_to_the_reporter(
    sandbox: Sandbox,
) -> None:
    reference, lawyer_row = await _assigned_and_answered(sandbox, 753_002)
    person = await _person(sandbox, 753_002)
    assert await _handles(sandbox) == 1
    async with sandbox.sessionmaker.begin() as session:
        lawyer = await session.get(User, lawyer_row.id)
        assert lawyer is not None
        await CaseService(session, sandbox.keyring, self_assign=True).close(
            lawyer, reference, Outcome.CONSULTATION
        )
    await drain_outbox(sandbox)

    report = await run_retention(
        sandbox.sessionmaker,
        sandbox.keyring,
        timedelta(days=180),
        now=utcnow() + timedelta(days=200),
    )
    assert report.shredded == 1
    # The sealed abuse handle went with the case's key.
    assert await _handles(sandbox) == 0
    # The person still uses the bot (their own row stays); nothing else names them.
    assert await links_to(sandbox, person, exempt=person.user_id) == []
