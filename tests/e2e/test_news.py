"""News after the report, end to end: /status → kind → words → files → review → Send.

The news reaches the case sealed, the lawyer is told the reference and the kind
only, /case shows it, urgency and status change, the chat keeps nothing typed,
a closed case asks a coordinator to reopen it, and the limits hold across /forget.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy import update as sa_update

from bot.cases.followups import NEWS_EVENT, LimitReason
from bot.cases.service import CaseService
from bot.cases.stats import compute
from bot.cases.workflow import Outcome
from bot.i18n import create_i18n, in_both_languages
from bot.intake.news import NEWS_LABELS, NewsKind, WordsRefusal
from bot.notifications import Notice, NoticeKind
from bot.sweeper import DraftSweeper
from bot.text import N_
from devkit.emulator import SimulatedUser
from devkit.sandbox import Sandbox
from devkit.scripted_reporter import t
from handlers.reporter.news_screens import LIMIT_TEXTS, WORDS_REFUSALS, NewsStart
from handlers.staff.reopen import ReopenChoice
from storage.crypto import KeyRing
from storage.fsm import EncryptedFSMStorage
from storage.models import (
    AuditEntry,
    CaseEvent,
    CaseMessage,
    EvidenceFile,
    FsmRecord,
    User,
    utcnow,
)
from tests.canary import new_canary, raw_database_bytes, scan
from tests.conftest import Database
from tests.e2e.conftest import COORDINATOR_ID
from tests.e2e.helpers import assert_no_errors, callback_answer
from tests.e2e.staff_helpers import (
    STAFF_LANGUAGE,
    assigned_case,
    db_case,
    drain_outbox,
    lawyer_asks,
    notice_text,
    seed_case,
    wait_for_text,
    wake_outbox,
)

JPEG = b"\xff\xd8\xff\xe0" + secrets.token_bytes(1500) + b"\xff\xd9"
RU = "ru"  # the reporters' language here
TG = STAFF_LANGUAGE  # what the staff read
STALE = N_("This button is no longer active.")


def in_both(msgid: str) -> str:
    return in_both_languages(create_i18n(), lambda tr: tr(msgid))


def ru(msgid: str) -> str:
    return t(msgid, RU)


def add_news_label(reference: str) -> str:
    return ru(N_("Add news: {reference}")).format(reference=reference)


async def send_news(
    user: SimulatedUser,
    reference: str,
    kind: NewsKind,
    *,
    words: str | None = None,
    photos: list[tuple[bytes, str | None]] | None = None,
) -> None:
    """What a reporter does: /status, the button, the kind, words, files, Done, Send."""
    await user.send_command("/status")
    await user.press(add_news_label(reference))
    await user.press(ru(NEWS_LABELS[kind]))
    if words is not None:
        await user.send_text(words)
    else:
        await user.press(ru(N_("Skip")))
    for data, caption in photos or []:
        await user.send_photo(data, caption=caption)
    await user.press(ru(N_("Done")))
    await user.press(ru(N_("Send")))


def receipt(reference: str) -> str:
    return ru(N_("Thank you. Your news has been added to report {reference}.")).format(
        reference=reference
    )


async def callback_answer_text(user: SimulatedUser, callback_id: str) -> str:
    answer = callback_answer(user, callback_id)
    assert answer.text, "a refused press must say so"
    return answer.text


async def _events(sandbox: Sandbox, reference: str, kind: str) -> list[CaseEvent]:
    case = await db_case(sandbox, reference)
    async with sandbox.sessionmaker() as session:
        found = await session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.kind == kind)
        )
        return list(found.all())


async def test_news_with_words_and_a_file_reaches_the_case_and_nothing_stays(
    sandbox: Sandbox, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    coordinator, lawyer = sandbox.user(COORDINATOR_ID), sandbox.user(881_001)
    reporter = sandbox.user(881_002)
    reference, lawyer_row = await assigned_case(sandbox, coordinator, lawyer, reporter.user_id)
    await lawyer_asks(sandbox, lawyer_row, reporter, reference)
    assert (await db_case(sandbox, reference)).status == "awaiting_reporter"
    words, caption = new_canary("News"), new_canary("Caption")
    lawyer_seen = len(lawyer.bot_messages())
    start = max(m.message_id for m in reporter.chat.messages.values())

    await reporter.send_command("/status")
    await reporter.press(add_news_label(reference))
    await reporter.send_sticker()  # a wrong kind of message: corrected, and wiped too
    await reporter.press(ru(NEWS_LABELS[NewsKind.HOSPITAL]))
    await reporter.send_text("x" * 3001)  # too long: refused, nothing lost
    assert reporter.last_text() == ru(WORDS_REFUSALS[WordsRefusal.TOO_LONG]).format(limit=3000)
    await reporter.send_text(words)
    await reporter.send_photo(JPEG, caption=caption)
    await reporter.press(ru(N_("Done")))
    await reporter.press(ru(N_("Send")))

    # The chat: the receipt is all that is left of the flow; nothing typed or sent stays.
    await wait_for_text(sandbox, reporter, receipt(reference))
    after = [m for m in reporter.visible_messages() if m.message_id > start]
    assert [m.body for m in after] == [receipt(reference)]
    typed = [m for m in reporter.chat.messages.values() if not m.from_bot and m.message_id > start]
    assert len(typed) == 5  # /status, the sticker, the long text, the words, the photo
    assert all(m.deleted for m in typed)
    assert not any(words in (m.body or "") for m in reporter.visible_messages())

    # The case: urgent again, back in progress, the news sealed with its file.
    case = await db_case(sandbox, reference)
    assert case.urgent and case.status == "in_progress"
    [event] = await _events(sandbox, reference, NEWS_EVENT)
    assert event.actor_id is None and event.from_status == "awaiting_reporter"
    async with sandbox.sessionmaker() as session:
        audit = (
            await session.scalars(select(AuditEntry).where(AuditEntry.case_id == case.id))
        ).all()
        files = (
            await session.scalars(select(EvidenceFile).where(EvidenceFile.case_id == case.id))
        ).all()
        news_rows = (
            await session.scalars(select(CaseMessage).where(CaseMessage.kind == "followup"))
        ).all()
        stats = await compute(session, sandbox.keyring)
    assert [e.actor_id for e in audit if e.action == "news_received"] == [None]
    assert len(files) == 1 and files[0].submitted and files[0].expires_at is None
    # The file joined the case: its custody receipt is signed and audited.
    assert files[0].receipt_sealed is not None
    assert [e.subject_id for e in audit if e.action == "evidence_receipt"] == [files[0].id]
    assert len(news_rows) == 1 and news_rows[0].author_id is None
    assert stats.by_news == {"hospital": 1}

    # The lawyer is told the reference, the kind and the urgency, never the content.
    told = notice_text(
        Notice(NoticeKind.REPORTER_NEWS, reference, urgent=True, news="hospital"), TG
    )
    await wait_for_text(sandbox, lawyer, told)
    notices = [m.body or "" for m in lawyer.bot_messages()[lawyer_seen:]]
    assert notices == [told]
    assert scan("\n".join(notices).encode(), [words, caption]) == []

    # /case shows the news in the case's history, with its file.
    await lawyer.send_command("/case", reference)
    shown = "\n".join(m.body or "" for m in lawyer.bot_messages()[lawyer_seen + 1 :])
    assert words in shown and caption in shown
    assert t(N_("News from the reporter"), TG) in shown
    assert "🔴 " + t(NEWS_LABELS[NewsKind.HOSPITAL], TG) in shown
    assert t(N_("Files: {numbers}"), TG).format(numbers="1") in shown

    # A seized server: the database and the log hold none of it in clear.
    await sandbox.stop_bot()
    blob = await raw_database_bytes(database)
    assert scan(blob, [words, caption]) == []
    assert scan(blob, [reference]), "the scan does not see this test's database"
    assert scan(caplog.text.encode(), [words, caption, str(reporter.user_id)]) == []
    assert_no_errors(caplog)


async def test_news_on_a_closed_case_asks_a_coordinator_to_reopen_it(sandbox: Sandbox) -> None:
    coordinator, lawyer = sandbox.user(COORDINATOR_ID), sandbox.user(882_001)
    reporter = sandbox.user(882_002)
    reference, lawyer_row = await assigned_case(sandbox, coordinator, lawyer, reporter.user_id)
    async with sandbox.sessionmaker.begin() as session:
        closing = await session.get(User, lawyer_row.id)
        assert closing is not None
        await CaseService(session, sandbox.keyring, self_assign=True).close(
            closing, reference, Outcome.CONSULTATION
        )
    wake_outbox(sandbox)
    await drain_outbox(sandbox)
    lawyer_seen = len(lawyer.bot_messages())

    await send_news(reporter, reference, NewsKind.DIED)
    await wait_for_text(sandbox, reporter, receipt(reference))

    asked = notice_text(Notice(NoticeKind.NEWS_ON_CLOSED, reference, urgent=True, news="died"), TG)
    await wait_for_text(sandbox, coordinator, asked)
    case = await db_case(sandbox, reference)
    assert case.status == "closed" and case.urgent
    assert lawyer.bot_messages()[lawyer_seen:] == []  # a closed case: coordinators decide

    # A lawyer forging the press is refused, and so is a reporter: nothing changes.
    forged = ReopenChoice(reference=reference, reopen=True).pack()
    last = lawyer.bot_messages()[-1].message_id
    await callback_answer_text(lawyer, await lawyer.press_data(forged, last))
    await reporter.press_data(forged, reporter.bot_messages()[-1].message_id)
    assert (await db_case(sandbox, reference)).status == "closed"

    await coordinator.press(t(N_("Reopen the case"), TG))
    case = await db_case(sandbox, reference)
    assert case.status == "in_progress" and case.closed_at is None and case.outcome is None
    reopened = notice_text(Notice(NoticeKind.CASE_REOPENED, reference), TG)
    await wait_for_text(sandbox, lawyer, reopened)

    # Answered once: the other choice, pressed later, changes nothing.
    await coordinator.press_data(
        ReopenChoice(reference=reference, reopen=False).pack(),
        coordinator.bot_messages()[-1].message_id,
    )
    assert (await db_case(sandbox, reference)).status == "in_progress"
    assert len(await _events(sandbox, reference, "reopened")) == 1
    assert await _events(sandbox, reference, "reopen_declined") == []

    # /stats counts the death reported after intake (a consenting case).
    await coordinator.send_command("/stats")
    figures = [m.body or "" for m in coordinator.bot_messages() if m.body][-1]
    assert t(N_("News after the report"), TG) in figures
    assert f"{1:>5}  {t(NEWS_LABELS[NewsKind.DIED], TG)}" in figures


@pytest.fixture
async def small_limits(database: Database, keyring: KeyRing) -> AsyncIterator[Sandbox]:
    box = Sandbox(
        sessionmaker=database.sessionmaker,
        keyring=keyring,
        database_url=database.url,
        coordinator_ids=frozenset({COORDINATOR_ID}),
        followups_per_day=2,
        followups_total=3,
    )
    await box.start()
    box.server.ensure_chat(COORDINATOR_ID, first_name="Coordinator")
    try:
        yield box
    finally:
        await box.stop()


async def _a_day_later(sandbox: Sandbox, reference: str) -> None:
    """The injected clock: the case's news events are moved a day back."""
    case = await db_case(sandbox, reference)
    async with sandbox.sessionmaker.begin() as session:
        for event in await session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)):
            event.at -= timedelta(hours=25)


async def test_limits_per_day_and_in_all_hold_across_forget(small_limits: Sandbox) -> None:
    sandbox = small_limits
    coordinator, reporter = sandbox.user(COORDINATOR_ID), sandbox.user(883_001)
    reference = await seed_case(sandbox, reporter.user_id)
    await drain_outbox(sandbox)

    # Unassigned: the coordinators are told.
    await send_news(reporter, reference, NewsKind.MOVED)
    moved = notice_text(Notice(NoticeKind.REPORTER_NEWS, reference, news="moved"), TG)
    await wait_for_text(sandbox, coordinator, moved)
    assert not (await db_case(sandbox, reference)).urgent  # "moved" is news, not an alarm
    await send_news(reporter, reference, NewsKind.RELEASED)

    # Past the day's limit: a polite answer, no flow.
    await reporter.send_command("/status")
    pressed = await reporter.press(add_news_label(reference))
    assert callback_answer(reporter, pressed).text == ru(LIMIT_TEXTS[LimitReason.DAY])
    assert ru(NEWS_LABELS[NewsKind.DIED]) not in "\n".join(
        label for row in reporter.buttons() for label in row
    )

    await _a_day_later(sandbox, reference)
    await send_news(reporter, reference, NewsKind.CHARGED)
    await _a_day_later(sandbox, reference)
    await reporter.send_command("/status")
    pressed = await reporter.press(add_news_label(reference))
    assert callback_answer(reporter, pressed).text == ru(LIMIT_TEXTS[LimitReason.TOTAL])
    assert len(await _events(sandbox, reference, NEWS_EVENT)) == 3

    # /forget deletes the reporter, not the case's count; the case is no longer theirs.
    await reporter.send_command("/forget")
    await reporter.press(ru(N_("Yes, forget me")))
    assert all(add_news_label(reference) not in row for row in reporter.buttons())
    await reporter.send_command("/status")
    nothing = reporter.last_bot_message()
    assert nothing is not None and not nothing.inline_keyboard
    assert nothing.body == in_both(
        N_("You have not sent any reports yet. To send one, press /start.")
    )
    forged = await reporter.press_data(
        NewsStart(reference=reference).pack(), reporter.bot_messages()[-1].message_id
    )
    assert callback_answer(reporter, forged).text == in_both(STALE)  # a new user
    assert len(await _events(sandbox, reference, NEWS_EVENT)) == 3

    # Someone else pressing a forged button for the case is refused the same way.
    stranger = sandbox.user(883_002)
    await stranger.send_command("/start")
    forged = await stranger.press_data(
        NewsStart(reference=reference).pack(), stranger.bot_messages()[-1].message_id
    )
    assert callback_answer(stranger, forged).text == in_both(STALE)


async def test_news_left_half_written_is_wiped_from_the_chat_by_the_sweeper(
    sandbox: Sandbox,
) -> None:
    reporter, onlooker = sandbox.user(884_001), sandbox.user(884_002)
    reference = await seed_case(sandbox, reporter.user_id)
    await seed_case(sandbox, onlooker.user_id)
    await onlooker.send_command("/status")  # and nothing more: the list of reports stays
    assert len(onlooker.visible_messages()) == 2
    start = max((m.message_id for m in reporter.chat.messages.values()), default=0)
    words = new_canary("Left")
    await reporter.send_command("/status")
    await reporter.press(add_news_label(reference))
    await reporter.press(ru(NEWS_LABELS[NewsKind.THREATENED]))
    await reporter.send_text(words)
    shown = [m for m in reporter.visible_messages() if m.message_id > start]
    assert len(shown) == 1  # the files step; /status, its answer and the words are gone
    sweeper = DraftSweeper(
        EncryptedFSMStorage(sandbox.sessionmaker, sandbox.keyring, ttl=timedelta(hours=24)),
        timedelta(minutes=30),
    )
    assert sandbox.bot is not None
    assert await sweeper.sweep_once(sandbox.bot) == 0  # not idle yet
    async with sandbox.sessionmaker.begin() as session:
        await session.execute(
            sa_update(FsmRecord).values(updated_at=utcnow() - timedelta(minutes=31))
        )
    assert await sweeper.sweep_once(sandbox.bot) == 1 + 2
    assert [m for m in reporter.visible_messages() if m.message_id > start] == []
    assert onlooker.visible_messages() == []  # /status and the list of references
    # The words are kept in the sealed draft: back in the chat, it goes on from there.
    await reporter.send_command("/status")
    await reporter.press(add_news_label(reference))
    await reporter.press(ru(N_("Done")))
    assert words[:100] in (reporter.last_text() or "")  # the review shows them back
    assert not (await db_case(sandbox, reference)).urgent  # nothing sent yet
    await reporter.press(ru(N_("Send")))
    await wait_for_text(sandbox, reporter, receipt(reference))
    assert (await db_case(sandbox, reference)).urgent
