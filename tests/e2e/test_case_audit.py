"""Reading a case always leaves an audit entry, even when sending it fails half-way.

The threat model (docs/threat-model.md) cites this test by name.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.cases.service import CaseService
from devkit.sandbox import Sandbox
from storage.models import AuditEntry, User
from tests.canary import new_canary
from tests.e2e.conftest import COORDINATOR_ID
from tests.e2e.staff_helpers import db_case, drain_outbox, internal_id, seed_case

REPORTER_ID = 6_100_001


async def test_a_case_read_is_audited_even_when_a_later_part_fails_to_send(
    sandbox: Sandbox,
) -> None:
    coordinator = sandbox.user(COORDINATOR_ID, first_name="Coordinator")
    reference = await seed_case(sandbox, REPORTER_ID)
    # Two long notes: /case sends the case in more than one message.
    secret = new_canary("Note")
    reader = await internal_id(sandbox, COORDINATOR_ID)
    async with sandbox.sessionmaker.begin() as session:
        coordinator_row = await session.get(User, reader)
        assert coordinator_row is not None
        service = CaseService(session, sandbox.keyring, self_assign=True)
        for text in (secret + " " + "слово " * 480, "слово " * 490):
            await service.add_note(coordinator_row, reference, text)
    await drain_outbox(sandbox)
    sandbox.server.reset_calls()

    # The first part goes out; Telegram answers the second with a 429.
    sandbox.server.inject_fault("sendMessage", "slow", delay=0.0)
    sandbox.server.inject_fault("sendMessage", "retry_after", retry_after=1)
    await coordinator.send_command("/case", reference)

    sends = sandbox.server.calls_for("sendMessage")
    assert [call.ok for call in sends[:2]] == [True, False], sends
    assert secret in str(sends[0].params.get("text")), "the first part was delivered"
    case = await db_case(sandbox, reference)
    async with sandbox.sessionmaker() as session:
        views = (
            await session.scalars(
                select(AuditEntry).where(
                    AuditEntry.action == "case_view",
                    AuditEntry.case_id == case.id,
                    AuditEntry.actor_id == reader,
                )
            )
        ).all()
    assert len(views) == 1, "content left the server with no audit entry"
