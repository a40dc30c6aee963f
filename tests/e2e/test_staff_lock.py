"""A staff phone under seizure (issue 13), end to end through the fake Bot API.

The PIN asked before the first case, PIN messages deleted, the idle lock, wrong
PINs counted to a lock-out and a suspension (coordinators told), the duress PIN,
case views deleted after their time, at /lock and on /revoke, notices without
content while locked, and a log that holds neither a PIN nor an id. The clock
of the lock and of the view sweeper is injected: nothing sleeps.
"""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.cases.staff import staff_name
from bot.logs import configure_logging
from bot.notifications import Notice, NoticeKind
from bot.staff_lock.lock import Result
from bot.staff_lock.pin import PRODUCTION_N
from devkit.emulator import SimulatedUser
from devkit.sandbox import SANDBOX_PIN, Sandbox
from devkit.scripted_reporter import t
from handlers.staff import gate
from handlers.staff.render import staff_label
from storage.crypto import KeyRing
from storage.models import StaffPin, StaffView, utcnow
from storage.repositories import CaseRepository
from tests.canary import new_canary, raw_database_bytes, scan
from tests.conftest import Database
from tests.e2e.conftest import COORDINATOR_ID, TEST_PIN_HASHER
from tests.e2e.staff_helpers import (
    STAFF_LANGUAGE,
    assigned_case,
    db_user,
    drain_outbox,
    join_staff,
    lawyer_asks,
    notice_text,
    seed_case,
    tr,
    wait_for_text,
)

LAWYER_ID = 6_300_001
REPORTER_ID = 7_300_001
PIN = "482913"
DURESS = "913482"
LANG = STAFF_LANGUAGE  # neither of them chose a language


class ManualClock:
    """The lock's and the sweeper's time, moved by the test."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += timedelta(minutes=minutes)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def box(database: Database, keyring: KeyRing, clock: ManualClock) -> AsyncIterator[Sandbox]:
    sandbox = Sandbox(
        sessionmaker=database.sessionmaker,
        keyring=keyring,
        database_url=database.url,
        coordinator_ids=frozenset({COORDINATOR_ID}),
        pin_hasher=TEST_PIN_HASHER,
        clock=clock,
    )
    await sandbox.start()
    sandbox.server.ensure_chat(COORDINATOR_ID, first_name="Coordinator")
    await sandbox.give_pin(COORDINATOR_ID)
    try:
        yield sandbox
    finally:
        await sandbox.stop()


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """The bot's own logging at DEBUG, as deployed, into a buffer."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    configure_logging("DEBUG")
    buffer = io.StringIO()
    [handler] = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    try:
        yield buffer
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def said(msgid: str, **values: object) -> str:
    return t(msgid, LANG).format(**values) if values else t(msgid, LANG)


def visible_text(user: SimulatedUser) -> str:
    return "\n".join(message.body or "" for message in user.visible_messages())


async def enter(user: SimulatedUser, digits: str) -> str | None:
    await user.send_text(digits)
    return user.last_text()


async def sweep(sandbox: Sandbox) -> int:
    assert sandbox.dispatcher is not None
    deleted: int = await sandbox.dispatcher["background"].wipe_staff_views()
    return deleted


async def views_of(sandbox: Sandbox, telegram_id: int) -> int:
    found = await db_user(sandbox, telegram_id)
    assert found is not None
    async with sandbox.sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(StaffView).where(StaffView.user_id == found.id)
        )
    return int(count or 0)


async def open_case(lawyer: SimulatedUser, reference: str, secret: str) -> list[int]:
    """/case, then the ids of the bot messages that show ``secret`` (at least one)."""
    await lawyer.send_command("/case", reference)
    shown = [m.message_id for m in lawyer.bot_messages() if secret in (m.body or "")]
    assert shown, visible_text(lawyer)
    return shown


def gone(user: SimulatedUser, message_ids: list[int]) -> bool:
    return set(message_ids) <= set(user.deleted_message_ids())


async def test_a_new_lawyer_chooses_a_pin_before_the_first_case_and_the_pin_leaves_the_chat(
    box: Sandbox, captured_logs: io.StringIO, database: Database
) -> None:
    coordinator = box.user(COORDINATOR_ID, first_name="Coordinator")
    lawyer = box.user(LAWYER_ID, first_name="Nodira", username="nodira_law")
    await join_staff(box, coordinator, lawyer, pin=False)
    secret = new_canary("Account")
    reference = await seed_case(box, REPORTER_ID, {"account": secret})

    await lawyer.send_command("/case", reference)
    assert lawyer.last_text() == said(gate.CHOOSE)
    assert secret not in visible_text(lawyer)
    await lawyer.send_command("/queue")  # every staff command asks, none runs
    assert lawyer.last_text() == said(gate.CHOOSE)
    assert not [m for m in lawyer.bot_messages() if reference in (m.body or "")]

    assert await enter(lawyer, "12345") == said(gate.RESULT_TEXT[Result.INVALID])
    assert await enter(lawyer, PIN) == said(gate.RESULT_TEXT[Result.REPEAT_IT])
    assert await enter(lawyer, "111111") == said(gate.RESULT_TEXT[Result.MISMATCH])
    assert await enter(lawyer, PIN) == said(gate.RESULT_TEXT[Result.REPEAT_IT])
    assert await enter(lawyer, PIN) == said(gate.RESULT_TEXT[Result.PIN_SET], minutes=30)

    # Every message that held a PIN (or an attempt at one) is gone from the chat.
    typed = [m for m in lawyer._chat.messages.values() if not m.from_bot and m.text]
    pin_messages = [m for m in typed if m.text in (PIN, "12345", "111111")]
    assert len(pin_messages) == 5 and all(m.deleted for m in pin_messages)
    assert PIN not in visible_text(lawyer)

    await open_case(lawyer, reference, secret)

    # Stored as scrypt with a salt of its own, at the configured cost; never in clear.
    async with box.sessionmaker() as session:
        row = await session.get(StaffPin, (await db_user(box, LAWYER_ID)).id)  # type: ignore[union-attr]
        assert row is not None and row.pin_hash is not None
        assert row.scrypt_n == TEST_PIN_HASHER.n and len(row.salt) == 16
        peppered = box.keyring.blind_index("staff-pin", PIN).hex()
        assert row.pin_hash == TEST_PIN_HASHER.derive_sync(peppered, row.salt, row.scrypt_n)
        # Without the key file's pepper the PIN alone does not give the hash.
        assert row.pin_hash != TEST_PIN_HASHER.derive_sync(PIN, row.salt, row.scrypt_n)
    await box.stop_bot()
    assert scan(await raw_database_bytes(database), [PIN, "111111"]) == []
    output = captured_logs.getvalue()
    assert "handled in" in output  # positive control: the bot's lines were captured
    for needle in (PIN, "111111", str(LAWYER_ID), str(COORDINATOR_ID), str(REPORTER_ID)):
        assert needle not in output, needle


async def test_the_lock_engages_after_the_idle_time_and_the_pin_opens_it(
    box: Sandbox, clock: ManualClock
) -> None:
    coordinator = box.user(COORDINATOR_ID, first_name="Coordinator")
    lawyer = box.user(LAWYER_ID, first_name="Nodira")
    reference, _row = await assigned_case(box, coordinator, lawyer, REPORTER_ID)
    await lawyer.send_command("/mine")
    assert reference in (lawyer.last_text() or "")

    clock.advance(14)  # each staff action keeps the lock open 15 minutes longer
    await lawyer.send_command("/mine")
    assert reference in (lawyer.last_text() or "")
    clock.advance(15.5)
    await lawyer.send_command("/mine")
    assert lawyer.last_text() == said(gate.ENTER)
    await lawyer.send_command("/case", reference)
    assert lawyer.last_text() == said(gate.ENTER)
    lawyer_messages = [m for m in lawyer.bot_messages() if m.button_labels]
    # A button pressed on an old screen does nothing either: an alert asks for the PIN.
    await lawyer.press(reference, message_id=lawyer_messages[0].message_id)
    assert lawyer.answered_callbacks()[-1].text == said(gate.ENTER)

    assert await enter(lawyer, "000000") == said(gate.RESULT_TEXT[Result.WRONG])
    assert await enter(lawyer, SANDBOX_PIN) == said(gate.UNLOCKED)
    await lawyer.send_command("/mine")
    assert reference in (lawyer.last_text() or "")


async def test_wrong_pins_lock_out_then_suspend_and_coordinators_are_told_by_name(
    box: Sandbox, clock: ManualClock, captured_logs: io.StringIO
) -> None:
    coordinator = box.user(COORDINATOR_ID, first_name="Coordinator")
    lawyer = box.user(LAWYER_ID, first_name="Nodira", username="nodira_law")
    reference, lawyer_row = await assigned_case(box, coordinator, lawyer, REPORTER_ID)
    secret = await _account_of(box, reference)
    shown = await open_case(lawyer, reference, secret)
    await lawyer.send_command("/lock")
    assert gone(lawyer, shown)
    name = staff_name(box.keyring, lawyer_row)

    for _attempt in range(4):
        assert await enter(lawyer, "999999") == said(gate.RESULT_TEXT[Result.WRONG])
    assert await enter(lawyer, "999999") == said(gate.LOCKED_OUT)
    told = notice_text(Notice(NoticeKind.STAFF_LOCKED_OUT, text=name), LANG)
    await wait_for_text(box, coordinator, told)
    assert str(LAWYER_ID) not in told and "nodira_law" in told
    # Locked out: even the right PIN does nothing for 15 minutes.
    assert await enter(lawyer, SANDBOX_PIN) == said(gate.LOCKED_OUT)
    await lawyer.send_command("/case", reference)
    assert lawyer.last_text() == said(gate.LOCKED_OUT)

    clock.advance(16)
    for _attempt in range(4):
        assert await enter(lawyer, "999999") == said(gate.RESULT_TEXT[Result.WRONG])
    assert await enter(lawyer, "999999") == said(gate.SUSPENDED)
    await wait_for_text(
        box, coordinator, notice_text(Notice(NoticeKind.STAFF_SUSPENDED, text=name), LANG)
    )
    assert await enter(lawyer, SANDBOX_PIN) == said(gate.SUSPENDED)
    await lawyer.send_command("/mine")
    assert lawyer.last_text() == said(gate.SUSPENDED)

    # A coordinator restores the role from /staff; the right PIN works again.
    await coordinator.send_command("/staff")
    assert coordinator.last_text() == said(gate.ENTER)  # their lock too is past its time
    assert await enter(coordinator, SANDBOX_PIN) == said(gate.UNLOCKED)
    await coordinator.send_command("/staff")
    await coordinator.press(said("Restore {name}", name=name))
    assert coordinator.last_text() == said("{name} has access again.", name=name)
    assert await enter(lawyer, SANDBOX_PIN) == said(gate.UNLOCKED)
    await lawyer.send_command("/mine")
    assert reference in (lawyer.last_text() or "")

    # And can reset a PIN the lawyer forgot: they choose a new one.
    await coordinator.send_command("/staff")
    await coordinator.press(said("Reset the PIN of {name}", name=name))
    await lawyer.send_command("/mine")
    assert lawyer.last_text() == said(gate.CHOOSE)
    output = captured_logs.getvalue()
    assert "handled in" in output  # positive control
    for needle in ("999999", SANDBOX_PIN, str(LAWYER_ID), str(COORDINATOR_ID), "nodira_law"):
        assert needle not in output, needle


async def test_the_duress_pin_looks_like_an_unlock_shows_nothing_and_suspends(
    box: Sandbox, clock: ManualClock
) -> None:
    coordinator = box.user(COORDINATOR_ID, first_name="Coordinator")
    lawyer = box.user(LAWYER_ID, first_name="Nodira", username="nodira_law")
    reference, lawyer_row = await assigned_case(box, coordinator, lawyer, REPORTER_ID)
    await lawyer.send_command("/pin", "duress")
    assert lawyer.last_text() == said("Enter your current PIN.")
    assert await enter(lawyer, SANDBOX_PIN) == said(gate.RESULT_TEXT[Result.CHOOSE_DURESS])
    assert await enter(lawyer, SANDBOX_PIN) == said(gate.RESULT_TEXT[Result.CLASH])
    assert await enter(lawyer, DURESS) == said(gate.RESULT_TEXT[Result.REPEAT_IT])
    assert await enter(lawyer, DURESS) == said(gate.RESULT_TEXT[Result.DURESS_SET])
    assert DURESS not in visible_text(lawyer)

    await lawyer.send_command("/mine")
    assert reference in (lawyer.last_text() or "")
    secret = await _account_of(box, reference)
    shown = await open_case(lawyer, reference, secret)
    clock.advance(16)  # the lock engages; the views are still in the chat (no sweep yet)

    # Forced to open the bot, the lawyer enters the duress PIN: it reads as an unlock ...
    assert await enter(lawyer, DURESS) == said(gate.UNLOCKED)
    # ... and the desk is empty, whatever is asked.
    for command in ("/mine", "/queue", f"/case {reference}"):
        await lawyer.send_text(command)
        empty = lawyer.last_text() or ""
        title = said("My cases") if command == "/mine" else said("Queue")
        assert empty == f"{title}\n\n{said('There are no open cases.')}"
    # The case views are gone from the chat, silently.
    assert gone(lawyer, shown) and secret not in visible_text(lawyer)
    name = staff_name(box.keyring, lawyer_row)
    await wait_for_text(
        box, coordinator, notice_text(Notice(NoticeKind.STAFF_DURESS, text=name), LANG)
    )
    async with box.sessionmaker() as session:
        row = await session.get(StaffPin, lawyer_row.id)
        assert row is not None and row.suspended == "duress"


async def test_case_views_disappear_after_their_time_and_at_lock(
    box: Sandbox, clock: ManualClock
) -> None:
    coordinator = box.user(COORDINATOR_ID, first_name="Coordinator")
    lawyer = box.user(LAWYER_ID, first_name="Nodira")
    reference, _row = await assigned_case(box, coordinator, lawyer, REPORTER_ID)
    secret = (await _account_of(box, reference)).strip()
    shown = await open_case(lawyer, reference, secret)
    assert await views_of(box, LAWYER_ID) >= len(shown)

    # Kept busy (the lock stays open), the view lives its 30 minutes, then goes.
    clock.advance(14)
    await lawyer.send_command("/mine")
    clock.advance(14)
    await lawyer.send_command("/mine")
    assert await sweep(box) == 0 and not gone(lawyer, shown)
    clock.advance(3)
    await lawyer.send_command("/mine")
    assert await sweep(box) == len(shown)
    assert gone(lawyer, shown) and secret not in visible_text(lawyer)
    # What stays is the three /mine pages (regions and agencies), not yet due.
    assert await views_of(box, LAWYER_ID) == 3

    # At /lock, at once; with them the note the lawyer typed, and the note shown.
    await open_case(lawyer, reference, secret)
    await lawyer.press(said("Add a note"))
    note = new_canary("Note")
    await lawyer.send_text(note)
    shown = await open_case(lawyer, reference, note)
    typed = [m.message_id for m in lawyer._chat.messages.values() if m.text == note]
    await lawyer.send_command("/lock")
    assert gone(lawyer, typed)
    assert lawyer.last_text() == said(gate.LOCKED)
    assert gone(lawyer, shown) and secret not in visible_text(lawyer)
    assert await views_of(box, LAWYER_ID) == 0

    # Left idle past the lock, the sweeper takes them without waiting for 30 minutes.
    await enter(lawyer, SANDBOX_PIN)
    shown = await open_case(lawyer, reference, secret)
    clock.advance(16)
    assert await sweep(box) >= len(shown)
    assert gone(lawyer, shown)


async def _account_of(sandbox: Sandbox, reference: str) -> str:
    async with sandbox.sessionmaker() as session:
        cases = CaseRepository(session, sandbox.keyring)
        case = await cases.by_reference(reference)
        assert case is not None
        answers = await cases.answers(case)
    return str(answers["account"])


async def test_revoke_wipes_the_revoked_persons_chat(box: Sandbox) -> None:
    coordinator = box.user(COORDINATOR_ID, first_name="Coordinator")
    lawyer = box.user(LAWYER_ID, first_name="Nodira", username="nodira_law")
    reference, lawyer_row = await assigned_case(box, coordinator, lawyer, REPORTER_ID)
    secret = await _account_of(box, reference)
    shown = await open_case(lawyer, reference, secret)

    await coordinator.send_command("/revoke")
    await coordinator.press(staff_label(lawyer_row, "Nodira @nodira_law", tr(LANG)))
    assert gone(lawyer, shown) and secret not in visible_text(lawyer)
    assert await views_of(box, LAWYER_ID) == 0
    async with box.sessionmaker() as session:
        assert await session.get(StaffPin, lawyer_row.id) is None


async def test_a_locked_lawyer_is_told_of_a_reply_without_its_content(
    box: Sandbox, clock: ManualClock
) -> None:
    coordinator = box.user(COORDINATOR_ID, first_name="Coordinator")
    lawyer = box.user(LAWYER_ID, first_name="Nodira")
    reporter = box.user(REPORTER_ID)
    reference, lawyer_row = await assigned_case(box, coordinator, lawyer, REPORTER_ID)
    await lawyer_asks(box, lawyer_row, reporter, reference)
    await lawyer.send_command("/lock")

    answer = new_canary("Answer")
    await reporter.press(t("Reply", "ru"))
    await reporter.send_text(answer)
    locked = notice_text(Notice(NoticeKind.REPLIED_WHILE_LOCKED, reference), LANG)
    await wait_for_text(box, lawyer, locked)
    assert answer not in visible_text(lawyer)
    assert answer not in "".join(str(call.params) for call in box.server.calls)

    # Unlocked, the next reply arrives with its text, and leaves like a case view.
    await enter(lawyer, SANDBOX_PIN)
    await lawyer_asks(box, lawyer_row, reporter, reference)
    second = new_canary("Answer")
    await reporter.press(t("Reply", "ru"))
    await reporter.send_text(second)
    relayed = notice_text(Notice(NoticeKind.REPORTER_REPLIED, reference, text=second), LANG)
    await wait_for_text(box, lawyer, relayed)
    await drain_outbox(box)
    assert await views_of(box, LAWYER_ID) == 1
    await lawyer.send_command("/lock")
    assert second not in visible_text(lawyer)


def test_production_pins_cost_at_least_2_15() -> None:
    from bot.staff_lock.pin import PinHasher

    assert PinHasher().n >= 2**15 == PRODUCTION_N
    with pytest.raises(ValueError, match="at least"):
        PinHasher(2**14)


async def test_a_deletion_telegram_did_not_take_is_tried_again(box: Sandbox) -> None:
    coordinator = box.user(COORDINATOR_ID, first_name="Coordinator")
    lawyer = box.user(LAWYER_ID, first_name="Nodira")
    reference, _row = await assigned_case(box, coordinator, lawyer, REPORTER_ID)
    secret = await _account_of(box, reference)
    shown = await open_case(lawyer, reference, secret)

    box.server.inject_fault("deleteMessages", "server_error")
    await lawyer.send_command("/lock")
    assert not gone(lawyer, shown)
    assert await views_of(box, LAWYER_ID) == len(shown)  # back on the table
    assert await sweep(box) == len(shown)
    assert gone(lawyer, shown) and secret not in visible_text(lawyer)
    assert await views_of(box, LAWYER_ID) == 0
