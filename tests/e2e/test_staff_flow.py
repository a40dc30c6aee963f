"""The staff round trip through the real bot: invite, join, assign, read, ask, reply, close."""

from __future__ import annotations

from sqlalchemy import select, text

from bot.cases.workflow import OUTCOME_LABELS, Outcome
from bot.notifications import Notice, NoticeKind
from bot.sandbox import Sandbox
from bot.scripted_reporter import FULL_PLAN, ScriptedReporter, t
from handlers.staff.menu import LAWYER_COMMANDS
from storage.crypto import FieldContext
from storage.models import AuditEntry, CaseEvent, CaseMessage, Invite, utcnow
from storage.repositories import CaseRepository
from tests.canary import new_canary
from tests.e2e.conftest import COORDINATOR_ID
from tests.e2e.staff_helpers import (
    assigned_case,
    call_dump,
    calls_to,
    db_case,
    db_user,
    invite_token,
    notice_text,
    wait_for_text,
)

LAWYER_ID = 6_100_001
STRANGER_ID = 6_100_002
REPORTER_ID = 7_100_001

LAWYER_NAME = "Zarina Karimova @zarina_law"


async def test_invite_assign_ask_reply_close(sandbox: Sandbox) -> None:
    server = sandbox.server
    coordinator = sandbox.user(COORDINATOR_ID, first_name="Coordinator")
    lawyer = sandbox.user(
        LAWYER_ID, first_name="Zarina", last_name="Karimova", username="zarina_law"
    )
    stranger = sandbox.user(STRANGER_ID, first_name="Stranger")
    reporter_user = sandbox.user(REPORTER_ID, language_code="en")

    # The lawyer reads Russian; the coordinator never chose, so Tajik.
    await lawyer.send_command("/language")
    await lawyer.press("Русский")

    # 1. The invitation link, and joining with it.
    token = await invite_token(sandbox, coordinator)
    await lawyer.send_command("/start", token)
    lawyer_row = await db_user(sandbox, LAWYER_ID)
    assert lawyer_row is not None and lawyer_row.role == "lawyer"
    menus = [
        call
        for call in server.calls_for("setMyCommands")
        if call.ok and call.params.get("scope") == {"type": "chat", "chat_id": LAWYER_ID}
    ]
    assert menus, "no chat-scoped command menu for the new lawyer"
    assert menus[-1].params["commands"] == [
        {"command": name, "description": t(description, "ru")}
        for name, description in LAWYER_COMMANDS
    ]
    await wait_for_text(
        sandbox, coordinator, notice_text(Notice(NoticeKind.JOINED_AS_LAWYER), "tg")
    )

    # The same link once more does nothing: an ordinary reporter's /start.
    await stranger.send_command("/start", token)
    stranger_row = await db_user(sandbox, STRANGER_ID)
    assert stranger_row is not None and stranger_row.role is None
    assert [label for row in stranger.buttons() for label in row] == ["Тоҷикӣ", "Русский"]
    assert not any(
        call.params.get("scope") == {"type": "chat", "chat_id": STRANGER_ID}
        for call in server.calls_for("setMyCommands")
    )
    async with sandbox.sessionmaker() as session:
        invite = (await session.scalars(select(Invite))).one()
    assert invite.used_by == lawyer_row.id and invite.used_at is not None

    # 2. A report in Russian, with consent to be contacted.
    account = new_canary("Рассказ")
    reporter = ScriptedReporter(reporter_user, "ru")
    await reporter.open(contact=True)
    await reporter.fill({**FULL_PLAN, "account": account})
    reference = await reporter.submit()
    case = await db_case(sandbox, reference)
    assert case.contact_consent and case.status == "new"
    await wait_for_text(
        sandbox,
        coordinator,
        notice_text(Notice(NoticeKind.NEW_CASE, reference, urgent=case.urgent), "tg"),
    )

    # 3. The coordinator assigns it to the lawyer by name.
    await coordinator.send_command("/assign", reference)
    await coordinator.press(LAWYER_NAME)
    assert coordinator.last_text() == t("The case {reference} has been assigned.", "tg").format(
        reference=reference
    )
    await wait_for_text(
        sandbox, lawyer, notice_text(Notice(NoticeKind.ASSIGNED_TO_YOU, reference), "ru")
    )
    await wait_for_text(
        sandbox, reporter_user, notice_text(Notice(NoticeKind.LAWYER_ASSIGNED, reference), "ru")
    )

    # 4. The lawyer reads the whole case, decrypted, with forwarding blocked.
    mark = len(server.calls)
    await lawyer.send_command("/case", reference)
    shown = [
        call
        for call in calls_to(sandbox, LAWYER_ID, since=mark)
        if call.method == "sendMessage" and call.ok
    ]
    assert shown
    with_account = [call for call in shown if account in str(call.params.get("text"))]
    assert len(with_account) == 1
    assert FULL_PLAN["victim_name"] in "".join(str(call.params.get("text")) for call in shown)
    assert all(call.params.get("protect_content") is True for call in shown)
    async with sandbox.sessionmaker() as session:
        views = (
            await session.scalars(
                select(AuditEntry).where(
                    AuditEntry.action == "case_view", AuditEntry.case_id == case.id
                )
            )
        ).all()
    assert [entry.actor_id for entry in views] == [lawyer_row.id]

    # 5. A question to the reporter, and the reporter's answer through the Reply button.
    question = new_canary("Вопрос")
    await lawyer.press(t("Ask the reporter", "ru"))
    await lawyer.send_text(question)
    assert lawyer.last_text() == t("The question has been sent to the reporter.", "ru")
    asked = notice_text(Notice(NoticeKind.LAWYER_QUESTION, reference, text=question), "ru")
    await wait_for_text(sandbox, reporter_user, asked)
    question_message = next(m for m in reporter_user.bot_messages() if m.body == asked)
    assert question_message.button_labels == [[t("Reply", "ru")]]
    assert (await db_case(sandbox, reference)).status == "awaiting_reporter"

    answer = new_canary("Ответ")
    await reporter_user.press(t("Reply", "ru"), message_id=question_message.message_id)
    await reporter_user.send_text(answer)
    assert reporter_user.last_text() == t(
        "Thank you. Your answer has been passed to the lawyer.", "ru"
    )
    await wait_for_text(
        sandbox,
        lawyer,
        notice_text(Notice(NoticeKind.REPORTER_REPLIED, reference, text=answer), "ru"),
    )
    assert (await db_case(sandbox, reference)).status == "in_progress"

    async with sandbox.sessionmaker() as session:
        raw = (
            await session.execute(
                text("SELECT id, body_sealed FROM case_messages WHERE kind = 'reply'")
            )
        ).all()
        assert len(raw) == 1
        assert answer.encode() not in bytes(raw[0][1])
        stored = await db_case(sandbox, reference)
        data_key = await CaseRepository(session, sandbox.keyring).data_key(stored)
        replies = (
            await session.scalars(
                select(CaseMessage).where(
                    CaseMessage.case_id == stored.id, CaseMessage.kind == "reply"
                )
            )
        ).all()
        assert len(replies) == 1
        context = FieldContext("case_messages", "body_sealed", replies[0].id)
        assert data_key.open(replies[0].body_sealed, context).decode() == answer

    # 6. The lawyer closes the case with an outcome; the reporter is told.
    await lawyer.press(t("Close the case", "ru"))
    await lawyer.press(t(OUTCOME_LABELS[Outcome.REPRESENTATION], "ru"))
    assert lawyer.last_text() == t("The case {reference} is closed.", "ru").format(
        reference=reference
    )
    await wait_for_text(
        sandbox, reporter_user, notice_text(Notice(NoticeKind.CASE_CLOSED, reference), "ru")
    )
    closed = await db_case(sandbox, reference)
    assert closed.status == "closed"
    assert closed.outcome == Outcome.REPRESENTATION.value
    assert closed.closed_at is not None and closed.first_action_at is not None

    await reporter_user.send_command("/status")
    status_text = reporter_user.last_text() or ""
    assert reference in status_text
    assert t("closed", "ru") in status_text

    # Every step of the workflow is an event with its actor and time.
    reporter_row = await db_user(sandbox, REPORTER_ID)
    coordinator_row = await db_user(sandbox, COORDINATOR_ID)
    assert reporter_row is not None and coordinator_row is not None
    async with sandbox.sessionmaker() as session:
        events = (
            await session.scalars(
                select(CaseEvent).where(CaseEvent.case_id == closed.id).order_by(CaseEvent.at)
            )
        ).all()
    assert [
        (event.kind, event.actor_id, event.from_status, event.to_status, event.outcome)
        for event in events
    ] == [
        ("assign", coordinator_row.id, "new", "assigned", None),
        ("status", lawyer_row.id, "assigned", "awaiting_reporter", None),
        ("status", reporter_row.id, "awaiting_reporter", "in_progress", None),
        ("status", lawyer_row.id, "in_progress", "closed", "representation"),
    ]
    times = [event.at for event in events]
    assert times == sorted(times)
    assert case.created_at <= times[0] and times[-1] <= utcnow()


async def _messages_on(sandbox: Sandbox, reference: str) -> list[str]:
    case = await db_case(sandbox, reference)
    async with sandbox.sessionmaker() as session:
        rows = await session.scalars(select(CaseMessage.kind).where(CaseMessage.case_id == case.id))
        return list(rows)


async def test_a_command_while_writing_is_a_command_not_a_message(sandbox: Sandbox) -> None:
    coordinator = sandbox.user(COORDINATOR_ID)
    lawyer = sandbox.user(LAWYER_ID, first_name="Nodira")
    reporter = sandbox.user(REPORTER_ID)
    reference, _ = await assigned_case(sandbox, coordinator, lawyer, REPORTER_ID)
    mark = len(sandbox.server.calls)

    await lawyer.send_command("/case", reference)
    await lawyer.press(t("Ask the reporter", "tg"))
    await lawyer.send_command("/mine")
    assert t("My cases", "tg") in (lawyer.last_text() or "")
    await lawyer.press(t("Add a note", "tg"))
    await lawyer.send_command("/queue")
    assert t("Queue", "tg") in (lawyer.last_text() or "")
    # The input ended with the command: a later message is not taken as the question.
    await lawyer.send_text("ordinary text")

    assert await _messages_on(sandbox, reference) == []
    assert (await db_case(sandbox, reference)).status == "assigned"
    sent = [call_dump(call) for call in calls_to(sandbox, reporter.user_id, since=mark)]
    assert not any("/mine" in dump or "ordinary text" in dump for dump in sent)
