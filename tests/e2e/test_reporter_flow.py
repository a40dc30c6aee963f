"""A reporter's whole journey through the real bot and the Bot API emulator."""

from __future__ import annotations

import pytest

from bot.sandbox import Sandbox
from bot.scripted_reporter import FULL_PLAN, ScriptedReporter, t
from storage.repositories import CaseRepository
from tests.e2e.conftest import COORDINATOR_ID


@pytest.mark.parametrize("language", ["ru", "tg"])
async def test_full_submission(sandbox: Sandbox, language: str) -> None:
    coordinator = sandbox.user(COORDINATOR_ID)
    user = sandbox.user(700_001, language_code="en")
    reporter = ScriptedReporter(user, language)
    await reporter.open()
    await reporter.fill(FULL_PLAN)
    reference = await reporter.submit()

    # Only the receipt stays in the chat.
    visible = user.visible_messages()
    assert [m.body for m in visible] == [user.last_text()]
    assert reference in (user.last_text() or "")

    async with sandbox.sessionmaker() as session:
        cases = CaseRepository(session, sandbox.keyring)
        case = await cases.by_reference(reference)
        assert case is not None
        assert case.urgent
        answers = await cases.answers(case)
    assert answers["account"] == FULL_PLAN["account"]
    assert answers["acts"] == sorted(FULL_PLAN["acts"])
    assert answers["event_date"] == {"precision": "day", "value": "2025-03-14"}
    assert answers["officers_count"] == 3

    await sandbox.server.wait_for(
        lambda _server: any(reference in (m.body or "") for m in coordinator.visible_messages()),
        timeout=5,
    )
    notice = [m.body for m in coordinator.visible_messages() if reference in (m.body or "")]
    assert len(notice) == 1
    assert FULL_PLAN["account"] not in notice[0]
    assert "Фаррух" not in notice[0]


async def test_status_lists_the_case_in_the_reporters_language(sandbox: Sandbox) -> None:
    user = sandbox.user(700_002)
    reporter = ScriptedReporter(user, "tg")
    await reporter.open()
    await reporter.fill({})
    reference = await reporter.submit()
    await user.send_command("/status")
    text = user.last_text() or ""
    assert reference in text
    assert t("received", "tg") in text
