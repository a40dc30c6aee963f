"""The staff round trip through the real bot: invite, join, assign, read, ask, reply, close."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from bot.cases import stats as case_stats
from bot.cases.staff import staff_name
from bot.cases.workflow import OUTCOME_LABELS, Outcome
from bot.notifications import Notice, NoticeKind
from devkit.sandbox import Sandbox
from devkit.scripted_reporter import FULL_PLAN, ScriptedReporter, t
from handlers.staff.callbacks import CaseAct, QueueNav
from handlers.staff.menu import LAWYER_COMMANDS
from handlers.staff.render import AUDIT_ACTION_LABELS
from storage.audit import verify_chain
from storage.crypto import FieldContext
from storage.models import AuditEntry, CaseEvent, CaseMessage, Invite, OutboxMessage, utcnow
from storage.repositories import CaseRepository
from tests.canary import new_canary
from tests.e2e.conftest import COORDINATOR_ID
from tests.e2e.helpers import assert_no_errors
from tests.e2e.staff_helpers import (
    STAFF_LANGUAGE,
    assigned_case,
    call_dump,
    calls_to,
    db_case,
    db_user,
    invite_token,
    join_staff,
    notice_text,
    seed_case,
    tr,
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
        sandbox, coordinator, notice_text(Notice(NoticeKind.JOINED_AS_LAWYER), STAFF_LANGUAGE)
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
        notice_text(Notice(NoticeKind.NEW_CASE, reference, urgent=case.urgent), STAFF_LANGUAGE),
    )

    # 3. The coordinator assigns it to the lawyer by name.
    await coordinator.send_command("/assign", reference)
    await coordinator.press(LAWYER_NAME)
    assert coordinator.last_text() == t(
        "The case {reference} has been assigned.", STAFF_LANGUAGE
    ).format(reference=reference)
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

    # The coordinator's view of it: who did what, and the anonymous figures.
    await coordinator.send_command("/audit", reference)
    lines = (coordinator.last_text() or "").splitlines()
    assert lines[0] == t("Audit trail of {reference}:", STAFF_LANGUAGE).format(reference=reference)
    boss, someone = staff_name(sandbox.keyring, coordinator_row), t("reporter", STAFF_LANGUAGE)
    trail = [
        (boss, "case_assign"),
        (LAWYER_NAME, "case_view"),
        (LAWYER_NAME, "status_change"),
        (LAWYER_NAME, "question_ask"),
        (someone, "status_change"),
        (someone, "reply_received"),
        (LAWYER_NAME, "status_change"),
    ]
    assert [line.split(" · ", 1)[1] for line in lines[1:]] == [
        f"{who} · {t(AUDIT_ACTION_LABELS[action], STAFF_LANGUAGE)}" for who, action in trail
    ]
    await coordinator.send_command("/stats")
    async with sandbox.sessionmaker() as session:
        figures = await case_stats.compute(session, sandbox.keyring)
    assert figures.total == 1 and dict(figures.by_outcome) == {"representation": 1}
    text_message, chart = coordinator.bot_messages()[-2:]
    assert text_message.body == case_stats.render_text(figures, tr(STAFF_LANGUAGE))
    assert chart.kind == "photo" and chart.file_id is not None
    assert server.file_bytes(chart.file_id).startswith(b"\x89PNG")
    report = await verify_chain(sandbox.sessionmaker, sandbox.keyring)
    assert report.intact and report.entries > len(lines)


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
    await lawyer.press(t("Ask the reporter", STAFF_LANGUAGE))
    await lawyer.send_command("/mine")
    assert t("My cases", STAFF_LANGUAGE) in (lawyer.last_text() or "")
    await lawyer.press(t("Add a note", STAFF_LANGUAGE))
    await lawyer.send_command("/queue")
    assert t("Queue", STAFF_LANGUAGE) in (lawyer.last_text() or "")
    # The input ended with the command: a later message is not taken as the question.
    await lawyer.send_text("ordinary text")

    assert await _messages_on(sandbox, reference) == []
    assert (await db_case(sandbox, reference)).status == "assigned"
    sent = [call_dump(call) for call in calls_to(sandbox, reporter.user_id, since=mark)]
    assert not any("/mine" in dump or "ordinary text" in dump for dump in sent)


async def test_a_new_case_cannot_be_marked_assigned_without_a_lawyer(sandbox: Sandbox) -> None:
    coordinator = sandbox.user(COORDINATOR_ID)
    reporter = sandbox.user(REPORTER_ID)
    reference = await seed_case(sandbox, REPORTER_ID, {"account": new_canary("Account")})
    await coordinator.send_command("/case", reference)
    labels = [label for row in coordinator.buttons() for label in row]
    assert t("Assign to a lawyer", STAFF_LANGUAGE) in labels
    assert t("assigned", STAFF_LANGUAGE) not in labels

    mark = len(sandbox.server.calls)
    message_id = coordinator.bot_messages()[-1].message_id
    await coordinator.press_data(CaseAct(reference=reference, act="st_assigned").pack(), message_id)
    case = await db_case(sandbox, reference)
    assert (case.status, case.assignee_id) == ("new", None)
    assert t("This change of status is not possible now.", STAFF_LANGUAGE) in [
        answer.text for answer in coordinator.answered_callbacks()
    ]
    # Nothing was queued for the reporter (who would have read "a lawyer has been assigned").
    reporter_row = await db_user(sandbox, reporter.user_id)
    assert reporter_row is not None
    async with sandbox.sessionmaker() as session:
        told = await session.scalars(
            select(OutboxMessage.id).where(OutboxMessage.recipient_id == reporter_row.id)
        )
        assert told.all() == []
    assert not [
        call
        for call in calls_to(sandbox, reporter.user_id, since=mark)
        if call.method == "sendMessage"
    ]


async def test_queue_pages_urgent_first(sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    coordinator = sandbox.user(COORDINATOR_ID)
    references = [
        await seed_case(sandbox, REPORTER_ID + index, {"account": "—"}, urgent=index == 6)
        for index in range(7)
    ]
    await coordinator.send_command("/queue")
    first = coordinator.last_bot_message()
    assert first is not None and first.body is not None
    assert f"{t('Queue', STAFF_LANGUAGE)} (1/2)" in first.body
    page_one = first.body
    assert page_one.index(references[6]) < page_one.index(references[0])  # urgent on top
    await coordinator.press("▶")
    second = coordinator.last_bot_message()
    assert second is not None and second.message_id == first.message_id  # edited in place
    assert "(2/2)" in (second.body or "")
    shown = page_one + (second.body or "")
    assert all(reference in shown for reference in references)
    # The same page twice (a double tap): nothing breaks.
    for _ in range(2):
        await coordinator.press_data(QueueNav(mine=False, page=1).pack(), second.message_id)
    assert "(2/2)" in (coordinator.last_text() or "")
    assert_no_errors(caplog)


async def test_a_lawyer_keeps_the_staff_menu_after_changing_the_language(
    sandbox: Sandbox,
) -> None:
    coordinator = sandbox.user(COORDINATOR_ID)
    lawyer = sandbox.user(LAWYER_ID, first_name="Nodira")
    await join_staff(sandbox, coordinator, lawyer)
    await lawyer.send_command("/language")
    await lawyer.press("Русский")
    menus = [
        call
        for call in sandbox.server.calls_for("setMyCommands")
        if call.params.get("scope") == {"type": "chat", "chat_id": LAWYER_ID}
    ]
    assert [command["command"] for command in menus[-1].params["commands"]] == [
        name for name, _ in LAWYER_COMMANDS
    ]
