"""Write access to the database (without the key file) gives no read access.

An attacker who can change rows but does not hold the key file makes their
own account coordinator, or redirects a queued notice to themselves. Both
must get nothing. On SQLite and PostgreSQL; the threat model
(docs/threat-model.md) cites these tests by name.
"""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import update

from devkit.sandbox import Sandbox
from storage.models import User
from tests.canary import new_canary
from tests.e2e.staff_helpers import call_dump, calls_to, db_user, drain_outbox, seed_case

REPORTER_ID = 6_200_001
ATTACKER_ID = 6_200_002


async def test_a_role_written_into_the_database_opens_no_case(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    secret = new_canary("Account")
    reference = await seed_case(sandbox, REPORTER_ID, {"account": secret})
    attacker = sandbox.user(ATTACKER_ID, first_name="Mallory")
    await attacker.send_command("/start")  # an ordinary user row
    row = await db_user(sandbox, ATTACKER_ID)
    assert row is not None
    async with sandbox.sessionmaker.begin() as session:
        await session.execute(update(User).where(User.id == row.id).values(role="coordinator"))
    await drain_outbox(sandbox)

    caplog.set_level(logging.INFO)
    mark = len(sandbox.server.calls)
    await attacker.send_command("/case", reference)
    await attacker.send_command("/queue")
    sent = " ".join(call_dump(call) for call in calls_to(sandbox, ATTACKER_ID, since=mark))
    assert secret not in sent and reference not in sent, "a forged role read a case"
    # The refusal is logged, without saying who.
    logged = [r.getMessage() for r in caplog.records if "role" in r.getMessage()]
    assert logged, "a forged role went unnoticed"
    for line in logged:
        assert str(ATTACKER_ID) not in line and str(row.id) not in line and row.id.hex not in line
