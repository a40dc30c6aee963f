"""The Reply button works only while a staff question waits, once per question.

A forged ``reply:REF`` press on the reporter's own open case with no question
pending, or a second press after the answer, gets the neutral "button no
longer active" answer and stores nothing. docs/threat-model.md cites these
tests by name.
"""

from __future__ import annotations

from sqlalchemy import func, select

from bot.text import N_
from devkit.sandbox import Sandbox
from devkit.scripted_reporter import t
from handlers.reporter.replies import ReplyButton
from storage.models import AuditEntry, CaseMessage
from tests.e2e.conftest import COORDINATOR_ID
from tests.e2e.helpers import STALE, callback_answer
from tests.e2e.staff_helpers import assigned_case, drain_outbox, lawyer_asks


async def _replies(sandbox: Sandbox) -> int:
    async with sandbox.sessionmaker() as session:
        found = await session.scalar(
            select(func.count()).select_from(CaseMessage).where(CaseMessage.kind == "reply")
        )
        audited = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "reply_received")
        )
    assert found == audited
    return int(found or 0)


async def test_a_forged_reply_press_without_a_pending_question_is_refused(
    sandbox: Sandbox,
) -> None:
    coordinator = sandbox.user(COORDINATOR_ID)
    lawyer = sandbox.user(752_100, first_name="Нигина")
    reference, _lawyer_row = await assigned_case(sandbox, coordinator, lawyer, 752_001)
    reporter = sandbox.user(752_001)
    await reporter.send_command("/status")
    shown = reporter.last_bot_message()
    assert shown is not None

    # No question was asked: a press with forged data is refused, nothing is stored.
    forged = await reporter.press_data(ReplyButton(reference=reference).pack(), shown.message_id)
    assert callback_answer(reporter, forged).text == t(STALE, "ru")
    await reporter.send_text("Unsolicited news, as long as I like")
    await drain_outbox(sandbox)
    assert await _replies(sandbox) == 0


async def test_one_reply_per_question_then_the_button_is_no_longer_active(
    sandbox: Sandbox,
) -> None:
    coordinator = sandbox.user(COORDINATOR_ID)
    lawyer = sandbox.user(752_200, first_name="Бахтиёр")
    reference, lawyer_row = await assigned_case(sandbox, coordinator, lawyer, 752_002)
    reporter = sandbox.user(752_002)
    await lawyer_asks(sandbox, lawyer_row, reporter, reference)

    await reporter.press(t(N_("Reply"), "ru"))
    await reporter.send_text("The answer to the question")
    await drain_outbox(sandbox)
    assert await _replies(sandbox) == 1

    # The same button again (or forged data for it): the question has its answer.
    shown = reporter.last_bot_message()
    assert shown is not None
    again = await reporter.press_data(ReplyButton(reference=reference).pack(), shown.message_id)
    assert callback_answer(reporter, again).text == t(STALE, "ru")
    await reporter.send_text("A second, unsolicited reply")
    await drain_outbox(sandbox)
    assert await _replies(sandbox) == 1

    # A new question opens the button again, once.
    await lawyer_asks(sandbox, lawyer_row, reporter, reference)
    await reporter.press(t(N_("Reply"), "ru"))
    await reporter.send_text("The second answer")
    await drain_outbox(sandbox)
    assert await _replies(sandbox) == 2
