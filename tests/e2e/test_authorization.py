"""Forged commands and button presses by people who must not touch a case.

Three kinds of outsider try every staff command and every staff button (with
callback data built by the real CallbackData classes, sent on a message in
their own chat): a reporter, a lawyer whose role was revoked, and a lawyer
the case is not assigned to. Nothing may change in the database, nothing may
be audited as a case view for them, and nothing of the case may reach their chat.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.cases.service import CaseService
from bot.cases.workflow import Outcome, Status
from bot.notifications import Notice, NoticeKind
from devkit.emulator import SimulatedUser
from devkit.sandbox import Sandbox
from devkit.scripted_reporter import ScriptedReporter, t
from handlers.staff.callbacks import AssignTo, CaseAct, CaseOutcome, QueueNav, RevokeStaff
from handlers.staff.render import staff_label
from storage.models import AuditEntry, Case, CaseEvent, CaseMessage, Invite, OutboxMessage, User
from tests.canary import new_canary
from tests.e2e.conftest import COORDINATOR_ID
from tests.e2e.helpers import callback_answer
from tests.e2e.staff_helpers import (
    STAFF_LANGUAGE,
    assigned_case,
    call_dump,
    calls_to,
    db_user,
    drain_outbox,
    internal_id,
    join_staff,
    lawyer_asks,
    notice_text,
    tr,
    wait_for_text,
    wake_outbox,
)

OWNER_ID = 7_200_001  # the reporter of the case
LAWYER_A_ID = 6_200_001  # the case is assigned to A
LAWYER_B_ID = 6_200_002  # an active lawyer, not assigned
LAWYER_C_ID = 6_200_003  # revoked
OUTSIDER_ID = 7_200_002  # another reporter

STAFF_COMMANDS = ("/queue", "/mine", "/case", "/dossier", "/assign", "/stats", "/audit")
COORDINATOR_COMMANDS = ("/invite", "/staff", "/revoke")
#: Audit actions that only a successful staff operation writes.
SUCCESS_ACTIONS = frozenset(
    {
        "case_view",
        "dossier_export",
        "case_assign",
        "status_change",
        "note_add",
        "question_ask",
        "reply_received",
        "invite_create",
        "role_grant",
        "role_revoke",
        "stats_view",
        "audit_view",
    }
)


async def _snapshot(sandbox: Sandbox) -> dict[str, list[tuple[Any, ...]]]:
    """Every row that a refused action could have changed, in a comparable form."""
    tables: dict[str, Any] = {
        "cases": Case,
        "case_events": CaseEvent,
        "case_messages": CaseMessage,
        "invites": Invite,
    }
    found: dict[str, list[tuple[Any, ...]]] = {}
    async with sandbox.sessionmaker() as session:
        for name, model in tables.items():
            columns = list(model.__table__.columns)
            rows = await session.execute(select(*columns).order_by(model.id))
            found[name] = [tuple(row) for row in rows]
        users = await session.execute(
            select(User.id, User.role, User.staff_name_sealed).order_by(User.id)
        )
        found["users"] = [tuple(row) for row in users]
        outbox = await session.execute(
            select(OutboxMessage.id, OutboxMessage.recipient_id).order_by(OutboxMessage.id)
        )
        found["outbox"] = [tuple(row) for row in outbox]
    return found


def _forged_presses(reference: str, lawyer_ids: list[str], members: list[str]) -> list[str]:
    acts = ["open", "take", *(f"st_{status.value}" for status in Status)]
    acts += ["note", "ask", "close", "assign"]
    data = [CaseAct(reference=reference, act=act).pack() for act in acts]
    data += [CaseOutcome(reference=reference, outcome=o.value).pack() for o in Outcome]
    data += [AssignTo(reference=reference, lawyer=lawyer).pack() for lawyer in lawyer_ids]
    data += [QueueNav(mine=mine, page=page).pack() for mine in (False, True) for page in (0, 1)]
    data += [RevokeStaff(member=member).pack() for member in members]
    data.append(f"reply:{reference}")
    return data


async def test_outsiders_are_refused_every_staff_command_and_button(sandbox: Sandbox) -> None:
    server = sandbox.server
    coordinator = sandbox.user(COORDINATOR_ID, first_name="Coordinator")
    lawyer_a = sandbox.user(LAWYER_A_ID, first_name="Aziz", username="aziz_law")
    lawyer_b = sandbox.user(LAWYER_B_ID, first_name="Bahor", username="bahor_law")
    lawyer_c = sandbox.user(LAWYER_C_ID, first_name="Comil", username="comil_law")
    owner = sandbox.user(OWNER_ID)
    outsider = sandbox.user(OUTSIDER_ID)

    row_a = await join_staff(sandbox, coordinator, lawyer_a)
    row_b = await join_staff(sandbox, coordinator, lawyer_b)
    row_c = await join_staff(sandbox, coordinator, lawyer_c)

    # The case: an account and a victim's name that only staff on it may read.
    account, victim = new_canary("Account"), new_canary("Victim")
    reporter = ScriptedReporter(owner, "ru")
    await reporter.open(contact=True)
    await reporter.fill({"account": account, "victim_name": victim, "reporter": "relative"})
    reference = await reporter.submit()

    # Assigned to A, with a note, a question and the reporter's reply on it.
    note, question, reply = new_canary("Note"), new_canary("Question"), new_canary("Reply")
    async with sandbox.sessionmaker.begin() as session:
        service = CaseService(session, sandbox.keyring, self_assign=True)
        boss = await session.get(User, await internal_id(sandbox, COORDINATOR_ID))
        a = await session.get(User, row_a.id)
        owner_row = await session.get(User, await internal_id(sandbox, OWNER_ID))
        assert boss is not None and a is not None and owner_row is not None
        await service.assign(boss, reference, a.id)
        await service.add_note(a, reference, note)
        await service.ask_reporter(a, reference, question)
        await service.record_reply(owner_row, reference, reply)
    wake_outbox(sandbox)

    # C is removed from the staff with the coordinator's /revoke button.
    await coordinator.send_command("/revoke")
    c_name = staff_label(row_c, "Comil @comil_law", tr(STAFF_LANGUAGE))
    await coordinator.press(c_name)
    revoked = await db_user(sandbox, LAWYER_C_ID)
    assert revoked is not None and revoked.role is None
    assert any(
        call.ok and call.params.get("scope") == {"type": "chat", "chat_id": LAWYER_C_ID}
        for call in server.calls_for("deleteMyCommands")
    ), "the revoked lawyer's command menu was not removed"

    attackers: dict[str, SimulatedUser] = {
        "reporter": outsider,
        "revoked lawyer": lawyer_c,
        "lawyer of another case": lawyer_b,
    }
    for user in attackers.values():
        await user.send_command("/help")  # a bot message to press forged buttons on

    await drain_outbox(sandbox)
    before = await _snapshot(sandbox)
    async with sandbox.sessionmaker() as session:
        last_seq = await session.scalar(select(AuditEntry.seq).order_by(AuditEntry.seq.desc()))
    mark = len(server.calls)

    staff_ids = [row_a.id.hex, row_b.id.hex, row_c.id.hex]
    members = [row_a.id.hex, (await internal_id(sandbox, COORDINATOR_ID)).hex]
    unanswered: list[str] = []
    for name, user in attackers.items():
        for command in STAFF_COMMANDS + COORDINATOR_COMMANDS:
            args = reference if command in ("/case", "/dossier", "/assign", "/audit") else None
            await user.send_command(command, args)
        own = (await internal_id(sandbox, user.user_id)).hex
        message_id = user.bot_messages()[-1].message_id
        for data in _forged_presses(reference, [*staff_ids, own], members):
            callback_id = await user.press_data(data, message_id)
            try:
                callback_answer(user, callback_id)
            except AssertionError:
                unanswered.append(f"{name}: {data}")

    await drain_outbox(sandbox)
    after = await _snapshot(sandbox)
    for table in before:
        assert after[table] == before[table], f"{table} changed"
    attacker_rows = {await internal_id(sandbox, user.user_id) for user in attackers.values()}
    async with sandbox.sessionmaker() as session:
        audited = (
            await session.scalars(select(AuditEntry).where(AuditEntry.seq > (last_seq or 0)))
        ).all()
    assert not [
        (entry.actor_id, entry.action)
        for entry in audited
        if entry.actor_id in attacker_rows and entry.action in SUCCESS_ACTIONS
    ]
    assert not [entry for entry in audited if entry.action in ("case_view", "dossier_export")]

    secrets = (account, victim, note, question, reply, reference)
    for name, user in attackers.items():
        for call in calls_to(sandbox, user.user_id, since=mark):
            dump = call_dump(call)
            leaked = [secret for secret in secrets if secret in dump]
            assert not leaked, f"{name} was sent {leaked} by {call.method}"
    assert not unanswered, unanswered

    # The same checks would have seen a leak: A, on the case, reads it all.
    mark = len(server.calls)
    await lawyer_a.send_command("/case", reference)
    seen = "".join(call_dump(call) for call in calls_to(sandbox, LAWYER_A_ID, since=mark))
    for secret in (account, victim, note, question, reply):
        assert secret in seen


async def test_a_revoked_lawyer_gets_no_more_replies_on_their_cases(sandbox: Sandbox) -> None:
    """Revoking is what a coordinator does when a lawyer's account is compromised."""
    coordinator = sandbox.user(COORDINATOR_ID, first_name="Coordinator")
    lawyer = sandbox.user(LAWYER_C_ID, first_name="Comil", username="comil_law")
    reporter = sandbox.user(OWNER_ID)
    reference, lawyer_row = await assigned_case(sandbox, coordinator, lawyer, OWNER_ID)
    await lawyer_asks(sandbox, lawyer_row, reporter, reference)

    await coordinator.send_command("/revoke")
    await coordinator.press(staff_label(lawyer_row, "Comil @comil_law", tr(STAFF_LANGUAGE)))
    mark = len(sandbox.server.calls)

    answer = new_canary("Answer")
    await reporter.press(t("Reply", "ru"))
    await reporter.send_text(answer)
    # The reply is kept on the case and reaches a coordinator, who can reassign it ...
    await wait_for_text(
        sandbox,
        coordinator,
        notice_text(Notice(NoticeKind.REPORTER_REPLIED, reference, text=answer), STAFF_LANGUAGE),
    )
    await drain_outbox(sandbox)
    # ... but nothing of it reaches the revoked lawyer.
    leaked = [call.method for call in calls_to(sandbox, LAWYER_C_ID, since=mark)]
    assert not [m for m in leaked if m.startswith("send")], leaked
