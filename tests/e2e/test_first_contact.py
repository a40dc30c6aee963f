"""First contact: before a language is chosen every answer is short and in both languages
(Tajik first), and a message typed outside the questionnaire leaves the chat at once,
with nothing of it stored or logged."""

from __future__ import annotations

import logging

import pytest

from bot.i18n import LANGUAGES
from bot.text import N_
from devkit.emulator import SimulatedUser
from devkit.sandbox import Sandbox
from devkit.scripted_reporter import ScriptedReporter, t
from handlers.common.fallback import IDLE_DELETED
from handlers.reporter.commands import FIRST_CONTACT_HELP
from handlers.reporter.questions import DISCARDED
from handlers.reporter.render import language_screen
from tests.canary import new_canary, raw_database_bytes, scan
from tests.conftest import Database
from tests.e2e.helpers import question

SHORT = 500


def in_both(*msgids: str) -> str:
    """What the bot says before a language is chosen: each language whole, Tajik first."""
    return "\n\n".join(" ".join(t(m, language) for m in msgids) for language in LANGUAGES)


def assert_gone(user: SimulatedUser, message_id: int) -> None:
    assert message_id in user.deleted_message_ids()
    assert message_id not in [m.message_id for m in user.visible_messages()]


def logged(caplog: pytest.LogCaptureFixture) -> bytes:
    lines = [f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records]
    return "\n".join(lines).encode()


async def test_a_story_typed_before_start_is_deleted_and_answered_in_both_languages(
    sandbox: Sandbox, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # A Russian speaker writes first: Telegram in Russian is a hint, not a choice.
    user = sandbox.user(720_001, language_code="ru")
    canary = new_canary()
    story = f"Моего брата избили в милиции в Худжанде. {canary}"
    typed = await user.send_text(story)

    assert_gone(user, typed)
    answer = user.last_text() or ""
    assert answer == in_both(IDLE_DELETED)
    assert answer.startswith(t(IDLE_DELETED, "tg"))  # Tajik first
    assert t(IDLE_DELETED, "ru") in answer  # a Russian speaker can read it
    assert "/start" in answer and len(answer) <= SHORT
    assert [m.body for m in user.visible_messages()] == [answer]

    # /start still works as usual afterwards.
    await user.send_command("/start")
    assert user.last_text() == language_screen().text

    await sandbox.stop_bot()
    assert scan(logged(caplog), [canary]) == []
    assert scan(await raw_database_bytes(database), [canary]) == []


async def test_help_and_the_other_commands_before_a_language_are_in_both(
    sandbox: Sandbox,
) -> None:
    user = sandbox.user(720_002, language_code="en")
    await user.send_command("/help")
    text = user.last_text() or ""
    assert text == in_both(FIRST_CONTACT_HELP) and len(text) <= SHORT
    assert text.index(t(FIRST_CONTACT_HELP, "tg")) < text.index(t(FIRST_CONTACT_HELP, "ru"))

    await user.send_command("/status")
    assert user.last_text() == in_both(
        N_("You have not sent any reports yet. To send one, press /start.")
    )
    await user.send_command("/cancel")
    assert user.last_text() == in_both(N_("There is no report in progress."))

    # /forget before a language: nothing can be lost, so it is done at once.
    command = await user.send_command("/forget")
    assert user.last_text() == in_both(
        N_("Done. This bot no longer keeps anything that links you to your reports."),
        N_("You can now delete this chat."),
    )
    assert_gone(user, command)


async def test_typed_on_the_language_screen_is_deleted_at_once(sandbox: Sandbox) -> None:
    user = sandbox.user(720_003, language_code="ru")
    await user.send_command("/start")
    typed = await user.send_text("Брата забрали вчера")
    assert_gone(user, typed)
    assert user.last_text() == in_both(DISCARDED)
    # The language screen is still there to press.
    await user.press("Русский")
    assert t(N_("Continue"), "ru") in [label for row in user.buttons() for label in row]


async def test_after_the_receipt_a_message_is_deleted_in_the_chosen_language(
    sandbox: Sandbox,
) -> None:
    user = sandbox.user(720_004, language_code="ru")
    await user.send_command("/start")
    await user.press("Тоҷикӣ")
    # On the introduction (and the consents) nothing is asked in words either.
    typed_in_flow = await user.send_text("Ӯро задаанд")
    assert_gone(user, typed_in_flow)
    assert user.last_text() == t(DISCARDED, "tg")
    reporter = ScriptedReporter(user, "tg")
    await reporter.open()
    await reporter.fill({"reporter": "victim"})
    reference = await reporter.submit()
    receipt = user.last_text() or ""
    assert reference in receipt

    typed = await user.send_text("Боз як чиз: ӯро ба СИЗО бурданд")
    assert_gone(user, typed)
    assert user.last_text() == t(IDLE_DELETED, "tg")
    assert [m.body for m in user.visible_messages()] == [receipt, t(IDLE_DELETED, "tg")]


async def test_a_photo_outside_the_questionnaire_is_deleted_too(sandbox: Sandbox) -> None:
    user = sandbox.user(720_005)
    reporter = ScriptedReporter(user, "ru")
    await reporter.open()
    await reporter.fill({"reporter": "victim"})
    await reporter.submit()
    photo = await user.send_photo(b"\x89PNG injuries")
    assert_gone(user, photo)
    assert user.last_text() == t(IDLE_DELETED, "ru")


async def test_text_on_a_button_question_is_still_a_correction(sandbox: Sandbox) -> None:
    """Inside the questionnaire the usual correction stays (the trail wipes it later)."""
    user = sandbox.user(720_006)
    reporter = ScriptedReporter(user, "ru")
    await reporter.open()
    typed = await user.send_text("Брат")
    assert typed not in user.deleted_message_ids()
    assert reporter.question_on_screen() == question("reporter")
