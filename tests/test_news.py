"""News after the report, without Telegram: the flow, storing, limits, reopening, screens."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.cases import stats as case_stats
from bot.cases.followups import (
    CLOSED_WINDOW,
    NEWS_EVENT,
    LimitReason,
    NewsLimitReached,
    NewsLimits,
    decide_reopen,
    record_news,
    reopen_pending,
)
from bot.cases.service import AccessDenied
from bot.cases.workflow import Outcome, WorkflowError
from bot.intake.news import (
    MAX_WORDS,
    NewsDraft,
    NewsKind,
    NewsRecord,
    Step,
    WordsRefusal,
    add_file,
    choose_kind,
    finish_files,
    ready_to_send,
    skip_words,
    write_words,
)
from bot.notifications import Notice, NoticeKind, notice_keyboard, render_notice
from bot.retention import shred_case
from devkit.scripted_reporter import t
from handlers.reporter.news_screens import LIMIT_TEXTS, WORDS_REFUSALS, screen_for
from storage.crypto import KeyRing
from storage.models import Case, CaseEvent, CaseMessage, utcnow
from tests.case_helpers import attach, make_case, make_people, service
from tests.conftest import Database

# ---------------------------------------------------------------- the flow (pure)


def test_the_flow_moves_kind_words_files_review() -> None:
    draft = NewsDraft(reference="K7QD-M2PF")
    assert not choose_kind(draft, "tortured")  # not a kind: nothing changes
    assert draft.step is Step.KIND and not ready_to_send(draft)
    assert choose_kind(draft, "died") and draft.step is Step.WORDS and draft.urgent
    assert not choose_kind(draft, "released")  # an old screen's button, pressed later
    assert draft.kind is NewsKind.DIED
    assert write_words(draft, "x" * (MAX_WORDS + 1)) is WordsRefusal.TOO_LONG
    assert write_words(draft, " \u200f\n ") is WordsRefusal.EMPTY
    assert draft.words == "" and draft.step is Step.WORDS  # refused: nothing lost, no move
    assert write_words(draft, "  Ӯро ба СИЗО бурданд.  ") is None
    assert draft.words == "Ӯро ба СИЗО бурданд." and draft.step is Step.FILES
    assert not skip_words(draft)
    add_file(draft, "ab" * 16)
    add_file(draft, "ab" * 16)
    assert draft.files == ["ab" * 16]
    assert finish_files(draft) and ready_to_send(draft)
    assert not finish_files(draft)


def test_skipping_words_and_a_file_first() -> None:
    draft = NewsDraft(reference="K7QD-M2PF")
    assert not skip_words(draft) and not finish_files(draft)
    choose_kind(draft, "moved")
    add_file(draft, "cd" * 16)  # a photo sent instead of words
    assert draft.step is Step.FILES and not draft.urgent
    assert write_words(draft, "later words") is None and draft.step is Step.FILES


JUNK: list[Any] = [
    None,
    [],
    "news",
    {"reference": 5},
    {"reference": "R", "step": ["kind"], "kind": {"a": 1}, "words": 7, "files": "x"},
    {"reference": "R", "trail": [1, "2", True, 3.0, 4], "files": [1, "ok"], "step": "nope"},
]


@pytest.mark.parametrize("raw", JUNK)
def test_a_draft_from_anything_never_raises(raw: Any) -> None:
    draft = NewsDraft.from_dict(raw)
    if draft is not None:
        assert draft.step in Step
        assert all(type(i) is int for i in draft.trail)
        assert all(isinstance(f, str) for f in draft.files)
        assert NewsDraft.from_dict(draft.to_dict()) == draft


def test_the_sealed_record_reads_back_and_refuses_junk() -> None:
    record = NewsRecord(NewsKind.CHARGED, "Суд 12 март.", ("ab" * 16,))
    assert NewsRecord.from_json(record.to_json()) == record
    assert NewsRecord.from_json("not json") is None
    assert NewsRecord.from_json('{"kind": "unknown"}') is None


# ---------------------------------------------------------------- what people read


@pytest.mark.parametrize("language", ["tg", "ru"])
def test_every_reporter_screen_is_under_500_characters(language: str) -> None:
    def translate(msgid: str) -> str:
        return t(msgid, language)

    for kind in NewsKind:
        draft = NewsDraft(reference="K7QD-M2PF")
        screens = [screen_for(draft, translate).text]
        choose_kind(draft, kind.value)
        screens.append(screen_for(draft, translate).text)
        write_words(draft, "ӯ" * MAX_WORDS)
        for number in range(10):
            add_file(draft, f"{number:032x}")
        screens.append(screen_for(draft, translate).text)
        finish_files(draft)
        screens.append(screen_for(draft, translate).text)
        for text in screens:
            assert len(text) <= 500, text
    for text in [*LIMIT_TEXTS.values(), *WORDS_REFUSALS.values()]:
        assert len(translate(text)) <= 500


@pytest.mark.parametrize("language", ["tg", "ru"])
def test_notices_name_the_kind_and_urgency_only(language: str) -> None:
    def translate(msgid: str) -> str:
        return t(msgid, language)

    notice = Notice(NoticeKind.REPORTER_NEWS, "K7QD-M2PF", urgent=True, news="died")
    assert Notice.from_bytes(notice.to_bytes()) == notice
    text = render_notice(notice, translate)
    assert "K7QD-M2PF" in text and translate("Died") in text
    assert text.startswith(translate("URGENT: {notice}").split("{")[0])
    calm = render_notice(Notice(NoticeKind.REPORTER_NEWS, "K7QD-M2PF", news="moved"), translate)
    assert not calm.startswith(translate("URGENT: {notice}").split("{")[0])
    closed = Notice(NoticeKind.NEWS_ON_CLOSED, "K7QD-M2PF", news="other")
    markup = notice_keyboard(closed, translate)
    assert markup is not None
    assert [b.callback_data for row in markup.inline_keyboard for b in row] == [
        "ro:K7QD-M2PF:1",
        "ro:K7QD-M2PF:0",
    ]
    assert notice_keyboard(notice, translate) is None


# ---------------------------------------------------------------- storing


async def _news(
    database: Database,
    keyring: KeyRing,
    reporter: Any,
    reference: str,
    kind: NewsKind,
    *,
    now: Any = None,
    limits: NewsLimits | None = None,
) -> Case:
    async with service(database, keyring) as (cases, session):
        return await record_news(
            cases,
            await attach(session, reporter),
            reference,
            NewsRecord(kind, "слова", ()),
            limits or NewsLimits(),
            now or utcnow(),
        )


async def _count(database: Database, model: Any, *where: Any) -> int:
    async with database.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_limits_per_day_and_in_all(database: Database, keyring: KeyRing) -> None:
    people = await make_people(database, keyring)
    reference = await make_case(database, keyring, people.reporter)
    limits = NewsLimits(per_day=2, total=3)
    start = utcnow()
    for _ in range(2):
        await _news(database, keyring, people.reporter, reference, NewsKind.OTHER, now=start)
    with pytest.raises(NewsLimitReached) as refused:
        await _news(database, keyring, people.reporter, reference, NewsKind.OTHER, limits=limits)
    assert refused.value.reason is LimitReason.DAY
    # The events carry their own time; a day later the day's limit is free again.
    tomorrow = start + timedelta(days=1, minutes=1)
    await _news(database, keyring, people.reporter, reference, NewsKind.OTHER, now=tomorrow)
    later = tomorrow + timedelta(days=2)
    with pytest.raises(NewsLimitReached) as refused:
        await _news(
            database, keyring, people.reporter, reference, NewsKind.OTHER, now=later, limits=limits
        )
    assert refused.value.reason is LimitReason.TOTAL
    assert await _count(database, CaseEvent, CaseEvent.kind == NEWS_EVENT) == 3


async def test_only_the_reporters_own_case_open_or_closed_under_30_days(
    database: Database, keyring: KeyRing
) -> None:
    people = await make_people(database, keyring)
    reference = await make_case(database, keyring, people.reporter)
    with pytest.raises(AccessDenied):  # another person's case
        await _news(database, keyring, people.lawyer, reference, NewsKind.OTHER)
    with pytest.raises(AccessDenied):  # no such case
        await _news(database, keyring, people.reporter, "ZZZZ-ZZZZ", NewsKind.OTHER)
    async with service(database, keyring) as (cases, session):
        await cases.close(await attach(session, people.coordinator), reference, Outcome.REFERRED)
    await _news(database, keyring, people.reporter, reference, NewsKind.OTHER)
    too_late = utcnow() + CLOSED_WINDOW + timedelta(hours=1)
    with pytest.raises(AccessDenied):
        await _news(database, keyring, people.reporter, reference, NewsKind.OTHER, now=too_late)


async def test_reopening_is_for_coordinators_once_per_news(
    database: Database, keyring: KeyRing
) -> None:
    people = await make_people(database, keyring)
    reference = await make_case(database, keyring, people.reporter)
    async with service(database, keyring) as (cases, session):
        boss = await attach(session, people.coordinator)
        await cases.assign(boss, reference, people.lawyer.id)
        await cases.close(await attach(session, people.lawyer), reference, Outcome.REFERRED)
        case = await cases.cases.by_reference(reference)
        assert case is not None and not await reopen_pending(session, case)
        with pytest.raises(WorkflowError):  # no news: nothing to answer
            await decide_reopen(cases, boss, reference, reopen=True, now=utcnow())
    await _news(database, keyring, people.reporter, reference, NewsKind.THREATENED)
    async with service(database, keyring) as (cases, session):
        with pytest.raises(AccessDenied):  # the assigned lawyer may not: coordinators decide
            await decide_reopen(
                cases, await attach(session, people.lawyer), reference, reopen=True, now=utcnow()
            )
        with pytest.raises(AccessDenied):
            await decide_reopen(
                cases, await attach(session, people.reporter), reference, reopen=True, now=utcnow()
            )
    async with service(database, keyring) as (cases, session):
        boss = await attach(session, people.coordinator)
        case = await decide_reopen(cases, boss, reference, reopen=False, now=utcnow())
        assert case.status == "closed" and case.urgent
        with pytest.raises(WorkflowError):
            await decide_reopen(cases, boss, reference, reopen=True, now=utcnow())
    # New news asks again; this time the case is reopened, to its lawyer.
    await _news(database, keyring, people.reporter, reference, NewsKind.DIED)
    async with service(database, keyring) as (cases, session):
        boss = await attach(session, people.coordinator)
        case = await decide_reopen(cases, boss, reference, reopen=True, now=utcnow())
        assert case.status == "in_progress" and case.assignee_id == people.lawyer.id
        assert case.closed_at is None and case.outcome is None


async def test_destruction_takes_the_news_and_stats_count_each_kind_once(
    database: Database, keyring: KeyRing
) -> None:
    people = await make_people(database, keyring)
    reference = await make_case(database, keyring, people.reporter)
    silent = await make_case(database, keyring, people.reporter, stats_consent=False)
    for kind in (NewsKind.DIED, NewsKind.DIED, NewsKind.MOVED):
        await _news(database, keyring, people.reporter, reference, kind)
    await _news(database, keyring, people.reporter, silent, NewsKind.DIED)
    async with database.sessionmaker() as session:
        figures = await case_stats.compute(session, keyring)
    # A death reported twice is one death; a case without consent is not counted.
    assert dict(figures.by_news) == {"died": 1, "moved": 1}
    assert "news,died,1" in case_stats.to_csv(figures)
    assert await _count(database, CaseMessage, CaseMessage.kind == "followup") == 4
    async with database.sessionmaker.begin() as session:
        case = (await session.scalars(select(Case).where(Case.reference == reference))).one()
        assert await shred_case(session, keyring, case, reason="case_withdraw")
    assert await _count(database, CaseMessage, CaseMessage.kind == "followup") == 1
    async with database.sessionmaker() as session:
        after = await case_stats.compute(session, keyring)
    assert dict(after.by_news) == {"died": 1, "moved": 1}  # published figures survive


def test_a_tally_written_before_news_reads_as_none_counted() -> None:
    old = b'{"agency": {"police": 2}, "region": {"sughd": 2}}'
    counts = case_stats.AnswerCounts.from_json(old)
    assert counts.agency == {"police": 2} and not counts.news
