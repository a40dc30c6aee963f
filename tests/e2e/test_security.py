"""Security features end to end, on SQLite and PostgreSQL: the risk notice, flood
control, bans, /forget, the intake circuit breaker, the daily limit and
protect_content; plus a known limit of the audit chain.

The threat model (docs/threat-model.md) cites these tests by name.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import delete, func, select

from bot.flood import SLOW_DOWN, FloodControl, UpdateDeduplicator
from bot.i18n import create_i18n, in_both_languages
from bot.middlewares import NEUTRAL_REPLY
from bot.text import N_
from devkit.emulator import SimulatedUser
from devkit.sandbox import Sandbox
from devkit.scripted_reporter import FULL_PLAN, ScriptedReporter, t
from handlers.common.fallback import IDLE_DELETED
from handlers.reporter.callbacks import LanguageChoice
from handlers.reporter.replies import ReplyButton
from storage import audit
from storage.audit import verify_chain
from storage.crypto import KeyRing
from storage.models import AbuseCounter, AuditEntry, Case, FsmRecord, KeyWrap, User
from storage.repositories import CaseRepository, UserRepository
from tests.conftest import Database
from tests.e2e.conftest import COORDINATOR_ID
from tests.e2e.helpers import callback_answer, count_rows, stored_case
from tests.e2e.staff_helpers import STAFF_LANGUAGE

BANNED = N_(
    "The person who sent {reference} is blocked: they get neutral replies and "
    "nothing of theirs is stored."
)
DISCONNECTED = N_("The reporter is no longer connected to this case.")
BUSY = N_(
    "The service is very busy right now. Your answers are kept: please try "
    "to send the report again in a few minutes."
)
DAILY_LIMIT = N_(
    "You have sent several reports today. Please try again tomorrow; "
    "your answers are kept until then."
)
SEND = N_("Send the report")


# --- helpers ------------------------------------------------------------------------


@asynccontextmanager
async def running(database: Database, keyring: KeyRing, **settings: Any) -> AsyncIterator[Sandbox]:
    box = Sandbox(
        sessionmaker=database.sessionmaker,
        keyring=keyring,
        database_url=database.url,
        coordinator_ids=frozenset({COORDINATOR_ID}),
        **settings,
    )
    await box.start()
    try:
        yield box
    finally:
        await box.stop()


async def send_report(
    sandbox: Sandbox, user_id: int, language: str = "ru", plan: dict[str, Any] | None = None
) -> tuple[ScriptedReporter, str]:
    reporter = ScriptedReporter(sandbox.user(user_id), language)
    await reporter.open()
    await reporter.fill(plan or {})
    return reporter, await reporter.submit()


async def join_as_lawyer(sandbox: Sandbox, user_id: int, name: str) -> SimulatedUser:
    """The coordinator invites; the lawyer opens the one-time link."""
    coordinator = sandbox.user(COORDINATOR_ID)
    await coordinator.send_command("/invite")
    found = re.search(r"\?start=([\w-]+)", coordinator.last_text() or "")
    assert found is not None, coordinator.last_text()
    lawyer = sandbox.user(user_id, first_name=name)
    await lawyer.send_command("/start", found.group(1))
    async with sandbox.sessionmaker() as session:
        row = await UserRepository(session, sandbox.keyring).by_telegram_id(user_id)
        assert row is not None and row.role == "lawyer"
    await sandbox.give_pin(user_id)  # the PIN lock itself: tests/e2e/test_staff_lock.py
    return lawyer


async def assign(sandbox: Sandbox, reference: str, lawyer_name: str) -> None:
    coordinator = sandbox.user(COORDINATOR_ID)
    await coordinator.send_command("/assign", reference)
    await coordinator.press(lawyer_name)
    case, _ = await stored_case(sandbox, reference)
    assert case.status == "assigned"


def new_bot_messages(user: SimulatedUser, after: int) -> list[str]:
    """Bodies of the bot's messages (deleted or not) with an id above ``after``."""
    return [
        m.body or "" for m in user.chat.messages.values() if m.from_bot and m.message_id > after
    ]


def newest_id(user: SimulatedUser) -> int:
    return max(user.chat.messages, default=0)


def deleted_ids(sandbox: Sandbox, chat_id: int) -> set[int]:
    deleted: set[int] = set()
    for call in sandbox.server.calls_for("deleteMessages"):
        if call.chat_id == chat_id and call.ok:
            deleted.update(call.params["message_ids"])
    return deleted


async def audit_entries(sandbox: Sandbox, action: str) -> list[AuditEntry]:
    async with sandbox.sessionmaker() as session:
        found = await session.scalars(select(AuditEntry).where(AuditEntry.action == action))
        return list(found)


async def user_row(sandbox: Sandbox, telegram_id: int) -> User | None:
    async with sandbox.sessionmaker() as session:
        return await UserRepository(session, sandbox.keyring).by_telegram_id(telegram_id)


def flood_control(sandbox: Sandbox) -> FloodControl:
    assert sandbox.dispatcher is not None
    found = [m for m in sandbox.dispatcher.update.outer_middleware if isinstance(m, FloodControl)]
    assert len(found) == 1
    return found[0]


class FakeClock:
    """Wall-clock seconds that move only when a test moves them.

    They start on a whole hour a day ahead of the real clock: on PostgreSQL the
    flood counts are rows that the abuse-counters job deletes once their window
    is over by the real clock, and a window in the past could be deleted in the
    middle of a burst, letting an update too many through. On a whole hour,
    every window a test uses starts exactly there.
    """

    def __init__(self) -> None:
        self.now = float((int(time.time()) // 3600 + 24) * 3600)

    def __call__(self) -> float:
        return self.now


# --- honesty about Telegram ----------------------------------------------------------

RISKS = N_(
    "Be careful: anyone who picks up this phone can read this chat until it is deleted. The "
    "Telegram company can see it too. After each answer the bot deletes it from this chat, "
    "and we keep your report secret. When you finish, delete this chat and set a passcode in "
    "Telegram (Settings → Privacy and Security → Passcode)."
)


async def test_reporters_are_told_that_telegram_sees_the_chat(sandbox: Sandbox) -> None:
    user = sandbox.user(739_001)
    await user.send_command("/start")
    await user.press("Русский")
    intro = user.last_text() or ""
    assert t(RISKS, "ru") in intro
    assert t(RISKS, "ru") != RISKS  # the Russian text, not the English fallback
    # Before any question is asked.
    assert t(N_("Continue"), "ru") in [label for row in user.buttons() for label in row]


# --- flood control --------------------------------------------------------------------


async def test_a_flood_gets_one_warning_then_silence_until_the_window_passes(
    database: Database, keyring: KeyRing
) -> None:
    async with running(database, keyring, rate_limit=5, rate_window_seconds=1) as sandbox:
        flood = flood_control(sandbox)
        assert (flood.limit, flood.window) == (5, 1.0)
        # The burst happens at one instant of a controlled clock, so the test
        # does not depend on how fast this machine handles updates.
        clock = FakeClock()
        flood.clock = clock

        user = sandbox.user(740_001)
        bystander = sandbox.user(740_002)
        for number in range(9):
            await user.send_text(f"привет {number}")
        # Another person is not affected by this user's flood.
        await bystander.send_text("салом")

        # Nobody here chose a language: the pointer comes in both, Tajik first.
        idle = in_both_languages(create_i18n(), lambda tr: tr(IDLE_DELETED))
        replies = [call.params["text"] for call in sandbox.server.calls_for("sendMessage")]
        to_user = [
            call.params["text"]
            for call in sandbox.server.calls_for("sendMessage")
            if call.chat_id == user.chat_id
        ]
        assert to_user == [idle] * 5 + [SLOW_DOWN]
        assert replies.count(SLOW_DOWN) == 1
        assert bystander.last_text() == idle
        # Nothing else reached the user's chat: each answered message was deleted, the
        # flooding ones were not even read.
        assert [c.method for c in sandbox.server.calls if c.chat_id == user.chat_id] == [
            "deleteMessages",
            "sendMessage",
        ] * 5 + ["sendMessage"]

        # Still inside the window: silence, no second warning.
        clock.now += 0.5
        await user.send_text("ещё")
        assert len(new_bot_messages(user, 0)) == 6

        # After the window the bot answers again.
        clock.now += 1.01
        await user.send_text("снова")
        assert new_bot_messages(user, 0)[6:] == [idle]


def test_flood_control_allows_limit_per_window_with_one_warning() -> None:
    clock = FakeClock()
    flood = FloodControl(limit=3, window=10, clock=clock)
    assert [flood.allow(1) for _ in range(3)] == [True, True, True]
    assert flood.allow(1) is None  # the one warning
    assert flood.allow(1) is False
    assert flood.allow(1) is False
    assert flood.allow(2) is True  # per user
    clock.now += 5
    assert flood.allow(1) is False  # the first hits are still inside the window
    clock.now += 5.01
    assert flood.allow(1) is True  # all three hits have left the window
    assert flood.allow(1) is True
    assert flood.allow(1) is True
    assert flood.allow(1) is None  # a new flood is warned about again
    assert flood.allow(1) is False


def test_flood_control_window_slides() -> None:
    clock = FakeClock()
    flood = FloodControl(limit=2, window=10, clock=clock)
    assert flood.allow(1) is True
    clock.now += 6
    assert flood.allow(1) is True
    clock.now += 5  # the first hit is 11 s old, the second 5 s
    assert flood.allow(1) is True
    assert flood.allow(1) is None


async def test_update_deduplicator_drops_a_redelivered_update() -> None:
    from aiogram.types import Update

    dedup = UpdateDeduplicator(capacity=2)
    handled: list[int] = []

    async def handler(event: Any, _data: dict[str, Any]) -> None:
        handled.append(event.update_id)

    for update_id in (1, 2, 1, 3, 1):
        await dedup(handler, Update(update_id=update_id), {})
    # 1 was forgotten once 3 pushed it out of the capacity of 2.
    assert handled == [1, 2, 3, 1]


# --- bans -----------------------------------------------------------------------------


async def test_a_banned_reporter_gets_only_neutral_replies_and_nothing_is_stored(
    sandbox: Sandbox,
) -> None:
    reporter, reference = await send_report(sandbox, 741_001, "ru")
    user = reporter.user
    case, _ = await stored_case(sandbox, reference)
    receipt = user.last_bot_message()
    assert receipt is not None

    # A lawyer cannot ban: the command is not even recognised for them.
    lawyer = await join_as_lawyer(sandbox, 741_100, "Нигора")
    await lawyer.send_command("/ban", reference)
    assert lawyer.last_text() == t(IDLE_DELETED, STAFF_LANGUAGE)
    row = await user_row(sandbox, user.user_id)
    assert row is not None and not row.banned
    assert await audit_entries(sandbox, "reporter_ban") == []

    coordinator = sandbox.user(COORDINATOR_ID)
    await coordinator.send_command("/ban", reference)
    assert coordinator.last_text() == t(BANNED, STAFF_LANGUAGE).format(reference=reference)
    row = await user_row(sandbox, user.user_id)
    assert row is not None and row.banned and row.language == "ru"
    async with sandbox.sessionmaker() as session:
        coordinator_row = await UserRepository(session, sandbox.keyring).by_telegram_id(
            COORDINATOR_ID
        )
    assert coordinator_row is not None
    [entry] = await audit_entries(sandbox, "reporter_ban")
    assert (entry.actor_id, entry.case_id, entry.subject_id) == (coordinator_row.id, case.id, None)

    fsm_before = await count_rows(sandbox, FsmRecord)
    assert fsm_before == 0
    before = newest_id(user)
    await user.send_command("/start")
    await user.send_text("Я хочу сообщить ещё")
    await user.send_command("/status")
    # Forged buttons: without the ban these would store a language and a reply draft.
    language_press = await user.press_data(LanguageChoice(code="tg").pack(), receipt.message_id)
    reply_press = await user.press_data(ReplyButton(reference=reference).pack(), receipt.message_id)

    assert new_bot_messages(user, before) == [NEUTRAL_REPLY] * 3
    for press in (language_press, reply_press):
        answer = callback_answer(user, press)
        assert (answer.text, answer.show_alert) == (None, False)
    assert await count_rows(sandbox, FsmRecord) == 0
    assert await count_rows(sandbox, Case) == 1
    row = await user_row(sandbox, user.user_id)
    assert row is not None and row.language == "ru"
    # The bot's side of the chat: the receipt and the neutral replies, nothing else.
    assert [m.body for m in user.bot_messages()] == [receipt.body] + [NEUTRAL_REPLY] * 3


# --- /forget --------------------------------------------------------------------------


async def test_forget_disconnects_the_reporter_but_the_case_stays_readable(
    sandbox: Sandbox,
) -> None:
    plan = {"account": "Ӯро дар шӯъбаи милитсия латукӯб карданд."}
    reporter, reference = await send_report(sandbox, 742_001, "tg", plan)
    user = reporter.user
    receipt = user.last_bot_message()
    assert receipt is not None
    lawyer = await join_as_lawyer(sandbox, 742_100, "Фирӯза")

    # A second report in progress: its draft and its messages must go too.
    await reporter.open()
    await reporter.answer(reporter.q.questions[0], "relative")
    assert await count_rows(sandbox, FsmRecord) == 1
    draft_messages = {m.message_id for m in user.visible_messages()} - {receipt.message_id}
    assert draft_messages

    await user.send_command("/forget")
    labels = [label for row in user.buttons() for label in row]
    # No lawyer has taken the case yet, so withdrawing is offered; this reporter
    # only forgets.
    assert labels == [
        t(N_(label), "tg")
        for label in ("Yes, forget me", "Forget me and withdraw them", "No, keep everything")
    ]
    prompt = user.last_bot_message()
    assert prompt is not None
    await reporter.press(N_("Yes, forget me"))

    done = user.last_bot_message()
    assert done is not None
    assert t(
        N_("Done. This bot no longer keeps anything that links you to your reports."), "tg"
    ) in (done.body or "")
    # Everything but the receipt and this last line was deleted, with deleteMessages.
    assert user.visible_messages() == [receipt, done]
    wiped = {m.message_id for m in user.chat.messages.values()} - {
        receipt.message_id,
        done.message_id,
    }
    assert draft_messages | {prompt.message_id} <= wiped <= deleted_ids(sandbox, user.chat_id)

    case, answers = await stored_case(sandbox, reference)
    assert case.reporter_index is None and case.reporter_chat_sealed is None
    assert answers["account"] == plan["account"]
    assert await user_row(sandbox, user.user_id) is None
    assert await count_rows(sandbox, FsmRecord) == 0
    [entry] = await audit_entries(sandbox, "reporter_forget")
    assert (entry.actor_id, entry.case_id, entry.subject_id) == (None, None, None)

    await lawyer.send_command("/case", reference)
    view = "\n".join(m.body or "" for m in lawyer.bot_messages())
    assert t(DISCONNECTED, STAFF_LANGUAGE) in view
    assert plan["account"] in view


async def test_forget_and_withdraw_shreds_only_the_cases_no_lawyer_has_taken(
    sandbox: Sandbox,
) -> None:
    from bot.cases.stats import compute

    reporter, taken = await send_report(sandbox, 743_001, "ru", {"region": "sughd"})
    _, withdrawn = await send_report(sandbox, 743_001, "ru", {"region": "gbao"})
    user = reporter.user
    former = await user_row(sandbox, user.user_id)
    assert former is not None
    await join_as_lawyer(sandbox, 743_100, "Сомон")
    await assign(sandbox, taken, "Сомон")
    # The reporter is told a lawyer was assigned (contact consent): let it arrive.
    await sandbox.server.wait_for(
        lambda _s: len([m for m in user.bot_messages() if taken in (m.body or "")]) == 2,
        timeout=10,
    )
    async with sandbox.sessionmaker() as session:
        stats_before = await compute(session, sandbox.keyring)
    assert stats_before.total == 2

    await user.send_command("/forget")
    assert t(N_("Forget me and withdraw them"), "ru") in [
        label for row in user.buttons() for label in row
    ]
    await reporter.press(N_("Forget me and withdraw them"))
    assert t(N_("Reports withdrawn: {count}."), "ru").format(count=1) in (user.last_text() or "")

    # The unassigned case: closed as withdrawn and crypto-shredded.
    case, _ = await stored_case(sandbox, taken)
    async with sandbox.sessionmaker() as session:
        cases = CaseRepository(session, sandbox.keyring)
        gone = await cases.by_reference(withdrawn)
        assert gone is not None
        assert (gone.status, gone.outcome) == ("closed", "withdrawn")
        assert gone.shredded_at is not None and gone.closed_at is not None
        assert gone.reporter_index is None and gone.reporter_chat_sealed is None
        wraps = await session.scalar(
            select(func.count()).select_from(KeyWrap).where(KeyWrap.case_id == gone.id)
        )
        assert wraps == 0
        try:
            await cases.answers(gone)
        except LookupError:
            pass
        else:
            raise AssertionError("a withdrawn case is still readable")
        stats_after = await compute(session, sandbox.keyring)

    # The assigned case stays with its lawyer, disconnected from the reporter.
    assert case.status == "assigned" and case.reporter_index is None
    assert await user_row(sandbox, user.user_id) is None
    assert await count_rows(sandbox, FsmRecord) == 0

    # Audited without content, and without naming the person who asked.
    [forget] = await audit_entries(sandbox, "reporter_forget")
    [withdraw] = await audit_entries(sandbox, "case_withdraw")
    assert (forget.case_id, withdraw.case_id) == (None, gone.id)
    assert forget.actor_id is None and withdraw.actor_id is None
    async with sandbox.sessionmaker() as session:
        mentions = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where((AuditEntry.actor_id == former.id) | (AuditEntry.subject_id == former.id))
        )
    assert mentions == 0
    assert set(AuditEntry.__table__.columns.keys()) == {
        "seq",
        "at",
        "actor_id",
        "action",
        "case_id",
        "subject_id",
        "mac",
    }
    # The reporter had agreed to statistics: the withdrawn case still counts,
    # anonymously, in the archive.
    assert stats_after.total == 2
    assert stats_after.by_region["gbao"] == 1
    assert stats_after.by_outcome["withdrawn"] == 1


# --- the audit log: a known limit -----------------------------------------------------


async def test_known_limit_the_audit_chain_does_not_notice_its_newest_entries_cut_off(
    database: Database, keyring: KeyRing
) -> None:
    async with database.sessionmaker.begin() as session:
        for action in ("case_view", "case_assign", "case_view", "stats_view"):
            await audit.record(session, keyring, action, actor_id=None)
    async with database.sessionmaker.begin() as session:
        await session.execute(delete(AuditEntry).where(AuditEntry.seq >= 3))
    # Cutting the tail leaves a shorter chain that still verifies ...
    report = await verify_chain(database.sessionmaker, keyring)
    assert (report.intact, report.entries) == (True, 2)
    # ... while a gap anywhere before the end is caught.
    async with database.sessionmaker.begin() as session:
        await session.execute(delete(AuditEntry).where(AuditEntry.seq == 1))
    assert not (await verify_chain(database.sessionmaker, keyring)).intact


# --- the intake circuit breaker and the daily limit ----------------------------------


async def _counters_expired(sandbox: Sandbox) -> None:
    """As if the limits' windows were over and swept: no counter is left.

    (Moving every row to one past window would collide where a limit already
    has rows in two windows, as the minute breaker does across a minute's turn.)
    """
    async with sandbox.sessionmaker.begin() as session:
        await session.execute(delete(AbuseCounter))


async def _press_send(reporter: ScriptedReporter) -> tuple[str | None, bool]:
    press = await reporter.user.press(t(SEND, reporter.language))
    answer = callback_answer(reporter.user, press)
    return answer.text, answer.show_alert


async def test_the_circuit_breaker_refuses_a_second_report_within_the_minute_and_keeps_it(
    database: Database, keyring: KeyRing
) -> None:
    async with running(database, keyring, intake_per_minute=1) as sandbox:
        await send_report(sandbox, 744_001, "tg")
        second = ScriptedReporter(sandbox.user(744_002), "ru")
        await second.open()
        await second.fill({"victim_name": "Далер"})

        assert await _press_send(second) == (t(BUSY, "ru"), True)
        assert second.on_review()
        assert await count_rows(sandbox, Case) == 1
        assert await count_rows(sandbox, FsmRecord) == 1

        # A minute later the breaker has cleared: the same draft goes through.
        await _counters_expired(sandbox)
        reference = await second.submit()
        _, answers = await stored_case(sandbox, reference)
        assert answers["victim_name"] == "Далер"
        assert await count_rows(sandbox, FsmRecord) == 0


async def test_a_fourth_report_within_a_day_is_refused_and_the_draft_kept(
    sandbox: Sandbox,
) -> None:
    user_id = 745_001
    references = [(await send_report(sandbox, user_id, "tg"))[1] for _ in range(3)]
    assert len(set(references)) == 3

    reporter = ScriptedReporter(sandbox.user(user_id), "tg")
    await reporter.open()
    await reporter.fill({"victim_name": "Азиз"})
    assert await _press_send(reporter) == (t(DAILY_LIMIT, "tg"), True)
    assert reporter.on_review()
    assert await count_rows(sandbox, Case) == 3
    assert await count_rows(sandbox, FsmRecord) == 1

    # A day later the same draft can be sent.
    await _counters_expired(sandbox)
    reference = await reporter.submit()
    _, answers = await stored_case(sandbox, reference)
    assert answers["victim_name"] == "Азиз"


# --- protect_content ------------------------------------------------------------------


async def test_everything_the_bot_sends_is_protected(sandbox: Sandbox) -> None:
    reporter, reference = await send_report(sandbox, 746_001, "ru", FULL_PLAN)
    lawyer = await join_as_lawyer(sandbox, 746_100, "Мунира")
    coordinator = sandbox.user(COORDINATOR_ID)
    await assign(sandbox, reference, "Мунира")
    # Notices through the outbox: to the coordinator, the lawyer and the reporter.
    await sandbox.server.wait_for(
        lambda _s: (
            all(
                any(reference in (m.body or "") for m in person.bot_messages())
                for person in (coordinator, lawyer)
            )
            and len([m for m in reporter.user.bot_messages() if reference in (m.body or "")]) >= 2
        ),
        timeout=10,
    )
    await lawyer.send_command("/case", reference)
    assert FULL_PLAN["account"] in "\n".join(m.body or "" for m in lawyer.bot_messages())
    await coordinator.send_command("/stats")

    sends = [
        call
        for method in ("sendMessage", "sendPhoto", "sendDocument")
        for call in sandbox.server.calls_for(method)
    ]
    assert sandbox.server.calls_for("sendPhoto"), "the /stats chart was not sent"
    assert {c.chat_id for c in sends} >= {reporter.user.chat_id, lawyer.chat_id, COORDINATOR_ID}
    unprotected = [
        (c.method, c.chat_id, c.params.get("text", "")[:40])
        for c in sends
        if c.params.get("protect_content") is not True
    ]
    assert unprotected == []
    assert len(sends) > 10
