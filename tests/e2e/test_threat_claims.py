"""Claims of docs/threat-model.md, end to end on SQLite and PostgreSQL: the idle-draft
sweeper, deleting an answered lawyer's question, the two-step-verification advice to
new lawyers, and configured coordinators getting their role back at every start.

The threat model cites these tests by name.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from bot.intake.flow import IntakeState
from bot.sweeper import DraftSweeper
from bot.text import N_
from devkit.emulator import SimulatedUser
from devkit.sandbox import Sandbox
from devkit.scripted_reporter import FULL_PLAN, SKIPPED, ScriptedReporter, t
from handlers.staff.render import staff_label
from storage.fsm import EncryptedFSMStorage
from storage.models import FsmRecord, User, utcnow
from tests.canary import new_canary
from tests.e2e.conftest import COORDINATOR_ID
from tests.e2e.helpers import count_rows
from tests.e2e.staff_helpers import (
    STAFF_LANGUAGE,
    assigned_case,
    db_user,
    join_staff,
    lawyer_asks,
    tr,
)

REPORTER_ID = 7_300_001
LAWYER_ID = 6_300_001
WIPE_AFTER = timedelta(minutes=30)
WELCOME = N_(
    "Welcome to the coalition's case desk. You are now a lawyer here. /queue shows "
    "the cases waiting for a lawyer. Please turn on two-step verification in "
    "Telegram: this account now gives access to reports."
)


# --- helpers ------------------------------------------------------------------------


def deleted_ids(sandbox: Sandbox, chat_id: int, since: int = 0) -> set[int]:
    deleted: set[int] = set()
    for call in sandbox.server.calls[since:]:
        if call.method == "deleteMessages" and call.chat_id == chat_id and call.ok:
            deleted.update(call.params["message_ids"])
    return deleted


def fsm_storage(sandbox: Sandbox) -> EncryptedFSMStorage:
    return EncryptedFSMStorage(sandbox.sessionmaker, sandbox.keyring, ttl=timedelta(hours=24))


async def stored_drafts(sandbox: Sandbox) -> list[IntakeState]:
    """The sealed drafts, opened (every FSM row holding an intake)."""
    rows = await fsm_storage(sandbox).idle_drafts(timedelta(0))
    return [
        IntakeState.from_dict(payload["data"]["intake"])
        for _, payload in rows
        if isinstance(payload.get("data"), dict) and "intake" in payload["data"]
    ]


async def age_drafts(sandbox: Sandbox, **values: object) -> None:
    """Move every FSM row's timestamps, as time passing would."""
    async with sandbox.sessionmaker.begin() as session:
        await session.execute(update(FsmRecord).values(**values))


async def half_filled_draft(sandbox: Sandbox) -> ScriptedReporter:
    """A reporter who consented, answered one question and walked away."""
    reporter = ScriptedReporter(sandbox.user(REPORTER_ID), "ru")
    await reporter.open()
    first = reporter.question_on_screen()
    assert first is not None, reporter.user.last_text()
    await reporter.answer(first, FULL_PLAN.get(first.id, SKIPPED))
    assert reporter.question_on_screen() not in (None, first), reporter.user.last_text()
    return reporter


# --- 1. the idle-draft sweeper ------------------------------------------------------


async def test_sweeper_clears_an_idle_drafts_chat_but_keeps_its_answers(
    sandbox: Sandbox,
) -> None:
    reporter = await half_filled_draft(sandbox)
    user = reporter.user
    waiting = reporter.question_on_screen()
    assert waiting is not None
    shown = {m.message_id for m in user.visible_messages()}
    assert shown
    [before] = await stored_drafts(sandbox)
    assert before.trail and before.draft.answers
    sweeper = DraftSweeper(fsm_storage(sandbox), WIPE_AFTER)
    assert sandbox.bot is not None
    mark = len(sandbox.server.calls)

    # Not idle long enough yet: nothing happens.
    assert await sweeper.sweep_once(sandbox.bot) == 0
    assert not deleted_ids(sandbox, user.chat_id, mark)

    await age_drafts(sandbox, updated_at=utcnow() - WIPE_AFTER - timedelta(minutes=1))
    swept = await sweeper.sweep_once(sandbox.bot)
    deleted = deleted_ids(sandbox, user.chat_id, mark)
    assert swept == len(deleted) > 0
    assert deleted <= shown
    remaining = {m.message_id for m in user.visible_messages()}
    assert remaining == shown - deleted
    assert len(remaining) < len(shown)

    # The trail is emptied, the answers are kept; a second sweep deletes nothing more.
    [after] = await stored_drafts(sandbox)
    assert after.trail == []
    assert after.draft.answers == before.draft.answers
    await age_drafts(sandbox, updated_at=utcnow() - WIPE_AFTER - timedelta(minutes=1))
    mark = len(sandbox.server.calls)
    assert await sweeper.sweep_once(sandbox.bot) == 0
    assert not deleted_ids(sandbox, user.chat_id, mark)

    # The answers are kept: the reporter comes back to the same question.
    await user.send_command("/start")
    await reporter.press(N_("Continue"))
    assert reporter.question_on_screen() == waiting, user.last_text()


async def test_sweeper_deletes_nothing_with_wipe_chat_off(sandbox: Sandbox) -> None:
    reporter = await half_filled_draft(sandbox)
    user = reporter.user
    shown = [m.message_id for m in user.visible_messages()]
    await age_drafts(sandbox, updated_at=utcnow() - WIPE_AFTER - timedelta(minutes=1))
    assert sandbox.bot is not None
    mark = len(sandbox.server.calls)

    sweeper = DraftSweeper(fsm_storage(sandbox), WIPE_AFTER, wipe_chat=False)
    assert await sweeper.sweep_once(sandbox.bot) == 0
    assert not deleted_ids(sandbox, user.chat_id, mark)
    assert [m.message_id for m in user.visible_messages()] == shown
    assert await count_rows(sandbox, FsmRecord) > 0


async def test_sweeper_removes_expired_drafts(sandbox: Sandbox) -> None:
    await half_filled_draft(sandbox)
    assert await count_rows(sandbox, FsmRecord) > 0
    await age_drafts(sandbox, expires_at=utcnow() - timedelta(minutes=1))
    assert sandbox.bot is not None

    await DraftSweeper(fsm_storage(sandbox), WIPE_AFTER).sweep_once(sandbox.bot)
    assert await count_rows(sandbox, FsmRecord) == 0


# --- 2. an answered question is deleted ---------------------------------------------


async def test_the_question_and_the_reply_are_deleted_once_the_reply_is_stored(
    sandbox: Sandbox,
) -> None:
    coordinator = sandbox.user(COORDINATOR_ID)
    lawyer = sandbox.user(LAWYER_ID, first_name="Dilnoza")
    reporter = sandbox.user(REPORTER_ID)
    reference, lawyer_row = await assigned_case(sandbox, coordinator, lawyer, REPORTER_ID)
    asked = await lawyer_asks(sandbox, lawyer_row, reporter, reference)
    question_message = next(m for m in reporter.bot_messages() if m.body == asked)

    await reporter.press(t("Reply", "ru"), message_id=question_message.message_id)
    prompt = reporter.last_bot_message()
    assert prompt is not None and prompt.message_id != question_message.message_id
    mark = len(sandbox.server.calls)
    answer = new_canary("Answer")
    await reporter.send_text(answer)
    assert reporter.last_text() == t("Thank you. Your answer has been passed to the lawyer.", "ru")

    answer_message = next(
        m for m in reporter.chat.messages.values() if not m.from_bot and m.body == answer
    )
    expected = {question_message.message_id, prompt.message_id, answer_message.message_id}
    assert deleted_ids(sandbox, reporter.chat_id, mark) == expected
    visible = [m.body for m in reporter.visible_messages()]
    assert asked not in visible and answer not in visible


# --- 3. two-step verification advice ------------------------------------------------


async def test_a_joining_lawyer_is_told_to_turn_on_two_step_verification(
    sandbox: Sandbox,
) -> None:
    assert "two-step verification" in WELCOME
    coordinator = sandbox.user(COORDINATOR_ID)
    lawyer: SimulatedUser = sandbox.user(LAWYER_ID, first_name="Dilnoza")
    await join_staff(sandbox, coordinator, lawyer)
    welcome = t(WELCOME, STAFF_LANGUAGE)
    assert welcome != WELCOME  # translated, not the English fallback
    assert welcome in [m.body for m in lawyer.bot_messages()]


# --- 4. configured coordinators come back at every start ----------------------------


async def test_a_configured_coordinator_is_made_coordinator_again_at_restart(
    sandbox: Sandbox,
) -> None:
    found = await db_user(sandbox, COORDINATOR_ID)
    assert found is not None and found.role == "coordinator"
    async with sandbox.sessionmaker.begin() as session:
        await session.execute(update(User).where(User.id == found.id).values(role=None))
    revoked = await db_user(sandbox, COORDINATOR_ID)
    assert revoked is not None and revoked.role is None

    await sandbox.restart()
    restored = await db_user(sandbox, COORDINATOR_ID)
    assert restored is not None and restored.role == "coordinator"
    assert restored.id == found.id


async def test_a_lost_coordinator_phone_is_removed_from_the_config_then_revoked(
    sandbox: Sandbox,
) -> None:
    second = COORDINATOR_ID + 1
    sandbox.settings_overrides["coordinator_ids"] = frozenset({COORDINATOR_ID, second})
    await sandbox.restart()
    lost = await db_user(sandbox, COORDINATOR_ID)
    assert lost is not None and lost.role == "coordinator"

    # Step 1: the lost id leaves INTAKE_COORDINATOR_IDS and the bot restarts.
    sandbox.settings_overrides["coordinator_ids"] = frozenset({second})
    await sandbox.restart()
    # Step 2: the other coordinator revokes it; no restart gives the role back.
    other = sandbox.user(second)
    await other.send_command("/revoke")
    await other.press(staff_label(lost, "coordinator 1", tr(STAFF_LANGUAGE)))
    await sandbox.restart()
    revoked = await db_user(sandbox, COORDINATOR_ID)
    assert revoked is not None and revoked.role is None
    before = len(sandbox.server.calls)
    await sandbox.user(COORDINATOR_ID).send_command("/staff")
    replies = [c for c in sandbox.server.calls[before:] if c.method == "sendMessage"]
    assert all("coordinator 2" not in str(c.params) for c in replies), replies
