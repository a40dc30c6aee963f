"""Abuse limits that /forget cannot reset, end to end on SQLite and PostgreSQL.

The daily limit, the evidence allowance and the circuit breaker's per-sender
share are counted in ``abuse_counters`` under a blind index of the sender,
which /forget does not touch; ``/ban REF`` finds the sender through the
case's sealed abuse handle after /forget. docs/threat-model.md cites these
tests by name.
"""

from __future__ import annotations

import secrets

from bot.middlewares import NEUTRAL_REPLY
from bot.text import N_
from devkit.sandbox import Sandbox
from devkit.scripted_reporter import ScriptedReporter, t
from storage.crypto import KeyRing
from storage.models import Case, EvidenceFile, FsmRecord
from tests.conftest import Database
from tests.e2e.conftest import COORDINATOR_ID
from tests.e2e.helpers import count_rows
from tests.e2e.test_security import (
    BANNED,
    BUSY,
    DAILY_LIMIT,
    STAFF_LANGUAGE,
    _counters_expired,
    _press_send,
    audit_entries,
    new_bot_messages,
    newest_id,
    running,
    send_report,
    user_row,
)

PLAN = {"reporter": "relative", "account": "Ӯро латукӯб карданд."}
SENDER_FULL = N_(
    "You have sent {limit} MB of files today, the most we can take in a day. "
    "This file was not saved. Please press Done, or send it tomorrow."
)


async def _forget(reporter: ScriptedReporter) -> None:
    await reporter.user.send_command("/forget")
    await reporter.press(N_("Yes, forget me"))


async def test_three_reports_then_forget_then_a_fourth_the_same_day_is_refused(
    sandbox: Sandbox,
) -> None:
    user_id = 751_001
    for _ in range(3):
        reporter, _reference = await send_report(sandbox, user_id, "tg")
    await _forget(reporter)
    assert await user_row(sandbox, user_id) is None

    again = ScriptedReporter(sandbox.user(user_id), "tg")
    await again.open()
    await again.fill({"victim_name": "Азиз"})
    assert await _press_send(again) == (t(DAILY_LIMIT, "tg"), True)
    assert again.on_review()
    assert await count_rows(sandbox, Case) == 3

    # A day later the counters have expired: the kept draft goes through.
    await _counters_expired(sandbox)
    await again.submit()
    assert await count_rows(sandbox, Case) == 4


async def test_ban_works_on_a_case_whose_reporter_used_forget(sandbox: Sandbox) -> None:
    reporter, reference = await send_report(sandbox, 751_101, "ru")
    await _forget(reporter)
    assert await user_row(sandbox, reporter.user.user_id) is None

    coordinator = sandbox.user(COORDINATOR_ID)
    await coordinator.send_command("/ban", reference)
    assert coordinator.last_text() == t(BANNED, STAFF_LANGUAGE).format(reference=reference)
    [entry] = await audit_entries(sandbox, "reporter_ban")
    assert entry.subject_id is None

    # The person comes back: neutral replies, nothing stored.
    user = reporter.user
    before = newest_id(user)
    await user.send_command("/start")
    await user.send_text("Я снова здесь")
    assert new_bot_messages(user, before) == [NEUTRAL_REPLY] * 2
    row = await user_row(sandbox, user.user_id)
    assert row is not None and row.banned
    assert await count_rows(sandbox, FsmRecord) == 0


async def test_one_sender_cannot_take_more_than_a_share_of_the_circuit_breaker(
    database: Database, keyring: KeyRing
) -> None:
    # 10 reports a minute for everyone: one sender may take 1 of them.
    async with running(database, keyring, intake_per_minute=10) as sandbox:
        hog, _first = await send_report(sandbox, 751_201, "ru")
        await _forget(hog)
        again = ScriptedReporter(sandbox.user(751_201), "ru")
        await again.open()
        await again.fill({"victim_name": "Далер"})
        assert await _press_send(again) == (t(BUSY, "ru"), True)
        assert again.on_review()
        # Everyone else still gets through.
        await send_report(sandbox, 751_202, "tg")
        assert await count_rows(sandbox, Case) == 2


async def test_evidence_bytes_per_sender_per_day_survive_forget(
    database: Database, keyring: KeyRing
) -> None:
    async with running(database, keyring, evidence_mb_per_day=1) as sandbox:
        first = await _at_files(sandbox, 751_301)
        await first.user.send_document(secrets.token_bytes(600_000), "a.pdf", "application/pdf")
        assert await count_rows(sandbox, EvidenceFile) == 1
        await _forget(first)
        assert await count_rows(sandbox, EvidenceFile) == 0

        again = await _at_files(sandbox, 751_301)
        await again.user.send_document(secrets.token_bytes(600_000), "b.pdf", "application/pdf")
        assert again.user.last_text() == t(SENDER_FULL, "ru").format(limit=1)
        assert await count_rows(sandbox, EvidenceFile) == 0
        # Another sender is not affected.
        other = await _at_files(sandbox, 751_302)
        await other.user.send_document(secrets.token_bytes(600_000), "c.pdf", "application/pdf")
        assert await count_rows(sandbox, EvidenceFile) == 1


async def _at_files(sandbox: Sandbox, telegram_id: int) -> ScriptedReporter:
    reporter = ScriptedReporter(sandbox.user(telegram_id), "ru")
    await reporter.open()
    for _ in range(100):
        question = reporter.question_on_screen()
        assert question is not None, reporter.user.last_text()
        if question.id == "evidence_files":
            return reporter
        await reporter.answer(question, PLAN.get(question.id, "_skip"))
    raise AssertionError("evidence_files was never asked")
