"""Input of the wrong kind and forged button presses, at each question type.

Each one gets a short correction (a message, or an answer to the button press),
never an exception; the question stays where it was and nothing answered
before is lost.
"""

from __future__ import annotations

import pytest

from bot.questionnaire import SKIPPED, RejectReason
from bot.questionnaire.dates import today_in_tajikistan
from devkit.sandbox import Sandbox
from devkit.scripted_reporter import ScriptedReporter, t
from handlers.reporter.callbacks import ConsentAnswer, EditAnswer, FlowAction
from handlers.reporter.render import rejection_text, wrong_kind_text
from storage.models import Case
from tests.e2e.helpers import (
    STALE,
    assert_no_errors,
    callback_answer,
    count_rows,
    question,
    stored_case,
    translator,
)

PHOTO = b"\xff\xd8\xff\xe0 not really a jpeg"
VOICE = b"OggS not really a voice message"


class Checker:
    """Sends one wrong input and checks the correction and the question on screen."""

    def __init__(self, reporter: ScriptedReporter) -> None:
        self.reporter = reporter
        self.user = reporter.user
        self._ = translator(reporter.language)

    def _expect(self, question_id: str, expected: str, what: str) -> None:
        assert self.user.last_text() == expected, what
        assert self.reporter.question_on_screen() == question(question_id), what

    async def text(self, question_id: str, text: str, reason: RejectReason) -> None:
        await self.user.send_text(text)
        expected = rejection_text(reason, question(question_id), self._)
        self._expect(question_id, expected, f"{text[:20]!r} at {question_id}")

    async def media(self, question_id: str) -> None:
        expected = wrong_kind_text(question(question_id), self._)
        await self.user.send_sticker()
        self._expect(question_id, expected, f"sticker at {question_id}")
        await self.user.send_photo(PHOTO)
        self._expect(question_id, expected, f"photo at {question_id}")
        if not question(question_id).accepts_voice:  # there a voice message is the answer
            await self.user.send_voice(VOICE)
            self._expect(question_id, expected, f"voice at {question_id}")
        await self.user.send_document(b"%PDF-1.4", caption="паспорт")
        self._expect(question_id, expected, f"document at {question_id}")


async def test_wrong_input_kinds_get_a_reprompt(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    lang = "ru"
    user = sandbox.user(720_001)
    reporter = ScriptedReporter(user, lang)
    check = Checker(reporter)
    await reporter.open()

    # Single choice: buttons only.
    await check.text("reporter", "я мать", RejectReason.NEEDS_BUTTON)
    await check.media("reporter")
    assert wrong_kind_text(question("reporter"), check._) != wrong_kind_text(
        question("victim_name"), check._
    )
    await reporter.answer(question("reporter"), "relative")
    await reporter.answer(question("relation"), "parent")
    await reporter.answer(question("victim_agrees"), "cannot_ask")

    # Text, at most 200 characters.
    await check.media("victim_name")
    await check.text("victim_name", "Я" * 201, RejectReason.TOO_LONG)
    assert "200" in (user.last_text() or "")
    await check.text("victim_name", "\u200b", RejectReason.EMPTY)
    await reporter.answer(question("victim_name"), "Азиз")

    await check.text("sex", "мужчина", RejectReason.NEEDS_BUTTON)
    await reporter.answer(question("sex"), "male")
    await reporter.answer(question("age_group"), SKIPPED)
    await reporter.answer(question("situation"), "released")

    # Dates: impossible, words, the future, too long ago.
    next_year = today_in_tajikistan().year + 1
    await check.media("event_date")
    await check.text("event_date", "31.02.2025", RejectReason.NOT_A_DATE)
    await check.text("event_date", "tomorrow", RejectReason.NOT_A_DATE)
    await check.text("event_date", "завтра", RejectReason.NOT_A_DATE)
    await check.text("event_date", f"14.03.{next_year}", RejectReason.FUTURE_DATE)
    await check.text("event_date", "1900", RejectReason.OUT_OF_RANGE)
    assert "None" not in (user.last_text() or "")
    await reporter.answer(question("event_date"), "03.2025")

    await check.text("region", "Душанбе", RejectReason.NEEDS_BUTTON)
    await reporter.answer(question("region"), "sughd")
    await reporter.answer(question("place_town"), SKIPPED)
    await reporter.answer(question("place_type"), SKIPPED)

    # Multiple choice: a half-made selection survives wrong input.
    await user.press(t(question("agency").options[0].label, lang))
    await check.text("agency", "милиция", RejectReason.NEEDS_BUTTON)
    await check.media("agency")
    await reporter.answer(question("agency"), ["gknb"])

    # Numbers from 1 to 50.
    await check.media("officers_count")
    for text in ("три", "-3", "2.5", "１２"):
        await check.text("officers_count", text, RejectReason.NOT_A_NUMBER)
    for text in ("0", "51", "99999999999999999999"):
        await check.text("officers_count", text, RejectReason.OUT_OF_RANGE)
    assert "50" in (user.last_text() or "")
    await reporter.answer(question("officers_count"), "7")

    await reporter.answer(question("officers_info"), SKIPPED)
    await reporter.answer(question("acts"), ["beating"])

    # The account: at most 3000 characters.
    await check.text("account", "ж" * 3001, RejectReason.TOO_LONG)
    assert "3000" in (user.last_text() or "")
    await check.media("account")
    await reporter.answer(question("account"), "Били три дня.")

    await reporter.fill({})
    reference = await reporter.submit()
    _, answers = await stored_case(sandbox, reference)
    expected = {
        "reporter": "relative",
        "relation": "parent",
        "victim_agrees": "cannot_ask",
        "victim_name": "Азиз",
        "sex": "male",
        "situation": "released",
        "event_date": {"precision": "month", "value": "2025-03"},
        "region": "sughd",
        "agency": ["gknb", "police"],
        "officers_count": 7,
        "acts": ["beating"],
        "account": "Били три дня.",
    }
    assert {key: answers.get(key) for key in expected} == expected
    assert {answers[key] for key in answers.keys() - expected.keys()} == {SKIPPED}
    # Nothing typed wrongly and nothing sent as media stays in the chat.
    assert [m.body for m in user.visible_messages()] == [user.last_text()]
    assert_no_errors(caplog)


async def test_forged_button_presses_are_refused(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    lang = "tg"
    stale = t(STALE, lang)
    user = sandbox.user(720_002)
    reporter = ScriptedReporter(user, lang)
    await reporter.open()
    old_message = user.last_bot_message()
    assert old_message is not None
    await reporter.answer(question("reporter"), "relative")
    current = user.last_bot_message()
    assert current is not None
    assert reporter.question_on_screen() == question("relation")

    forged = [
        "q:relation:male",  # a code of another question
        "q:sex:male",  # a button of another question
        "q:nosuch:x",  # an unknown question
        "q:relation:_dk",  # "I don't know" where it is not offered
        "q:relation:_done",  # "Done" on a single-choice question
        "q:relation:",
        "q:relation:parent:extra",
        "\x00\x07\xff\xfe\ufffd::q",  # garbage
        "q:relation:" + "ӣ" * 26,  # 63 bytes of valid UTF-8
        "q:" + "z" * 62,  # 64 bytes
        "",
        EditAnswer(question="relation").pack(),  # the review is not open
        FlowAction(action="submit").pack(),  # nothing to submit yet
        ConsentAnswer(step="consent_store", agreed=False).pack(),  # consent is over
    ]
    visible_before = [m.message_id for m in user.visible_messages()]
    answers_before = len(user.answered_callbacks())
    for data in forged:
        callback_id = await user.press_data(data, current.message_id)
        assert callback_answer(user, callback_id).text == stale, repr(data)
        assert reporter.question_on_screen() == question("relation"), repr(data)
    # The old message of the first question: a replay of a real button.
    callback_id = await user.press_data("q:reporter:victim", old_message.message_id)
    assert callback_answer(user, callback_id).text == stale
    callback_id = await user.press_data("lang:xx", current.message_id)
    assert callback_answer(user, callback_id).text is None
    # Nothing was sent or deleted, every press got exactly one answer.
    assert [m.message_id for m in user.visible_messages()] == visible_before
    assert len(user.answered_callbacks()) == answers_before + len(forged) + 2
    assert await count_rows(sandbox, Case) == 0

    await reporter.answer(question("relation"), "parent")
    await reporter.fill({"victim_agrees": "yes", "contact_how": "chat"})
    review = user.last_bot_message()
    assert review is not None
    for data in (
        EditAnswer(question="trusted_contact").pack(),  # hidden: contact_how is "chat"
        EditAnswer(question="nosuch").pack(),
        "q:contact_how:trusted",  # an answer button while on the review
    ):
        callback_id = await user.press_data(data, review.message_id)
        assert callback_answer(user, callback_id).text == stale, repr(data)
        assert reporter.on_review()

    reference = await reporter.submit()
    _, answers = await stored_case(sandbox, reference)
    assert answers["reporter"] == "relative"
    assert answers["relation"] == "parent"
    assert answers["victim_agrees"] == "yes"
    assert answers["contact_how"] == "chat"
    assert "trusted_contact" not in answers
    assert_no_errors(caplog)
