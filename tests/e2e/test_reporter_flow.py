"""A reporter's whole journey through the real bot and the Bot API emulator."""

from __future__ import annotations

import pytest

from devkit.sandbox import Sandbox
from devkit.scripted_reporter import FULL_PLAN, ScriptedReporter, t
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


def _methods_since(sandbox: Sandbox, mark: int) -> list[str]:
    return [call.method for call in sandbox.server.calls[mark:] if call.method != "getUpdates"]


async def test_a_pressed_button_turns_the_newest_question_into_the_next(
    sandbox: Sandbox,
) -> None:
    user = sandbox.user(700_050)
    reporter = ScriptedReporter(user, "ru")
    await reporter.open()
    first = reporter.question_on_screen()
    assert first is not None
    screen = next(m for m in reversed(user.bot_messages()) if m.inline_keyboard)

    mark = len(sandbox.server.calls)
    await reporter.answer(first, FULL_PLAN[first.id])
    # One edit instead of a new message and a deletion; nothing else in the chat.
    assert _methods_since(sandbox, mark) == ["answerCallbackQuery", "editMessageText"]
    second = reporter.question_on_screen()
    assert second is not None and second.id != first.id
    assert [m.message_id for m in user.visible_messages()] == [screen.message_id]

    # With something below the question (a sticker and the bot's correction),
    # editing it would show the next question above them: a new screen is
    # sent instead, and everything before it is deleted.
    await user.send_sticker()
    assert len(user.visible_messages()) == 3
    mark = len(sandbox.server.calls)
    await reporter.answer(second, FULL_PLAN[second.id])
    methods = _methods_since(sandbox, mark)
    assert "editMessageText" not in methods
    assert methods.count("sendMessage") == 1 and methods.count("deleteMessages") == 1
    assert screen.deleted
    assert len(user.visible_messages()) == 1
    assert reporter.question_on_screen() not in (first, second)
