"""Every screen a reporter sees, rendered in Tajik and in Russian: short, and no line twice.

The people who report are often frightened relatives reading on a cheap phone. No message
the bot writes to them may be longer than 500 characters, and no screen may say the same
line twice (the multi-choice hint once appeared twice on the evidence question).

The review is the one message that lists the reporter's own words: its header and each
answer are measured here; the whole review is split into messages by
``handlers/reporter/render.py`` ``review_screens``.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from types import SimpleNamespace

import pytest

from bot.evidence import REFUSAL_TEXTS, Limits
from bot.i18n import LANGUAGES, create_i18n, in_both_languages
from bot.intake.flow import CONSENT_ORDER, CURRENT, IntakeState, Phase
from bot.notifications import Notice, NoticeKind, render_notice
from bot.questionnaire import Draft, QuestionType, RejectReason, Stage
from bot.text import N_
from devkit.scripted_reporter import FULL_PLAN
from handlers.common.fallback import IDLE_DELETED, IDLE_NOT_SAVED
from handlers.common.reader import STALE_BUTTON
from handlers.reporter.commands import FIRST_CONTACT_HELP, help_text, status_text
from handlers.reporter.forget import forget_screen_text
from handlers.reporter.questions import DISCARDED
from handlers.reporter.render import (
    consent_screen,
    intro_screens,
    language_screen,
    question_screen,
    rejection_text,
    render_value,
    resume_screen,
    review_screens,
    wrong_kind_text,
)
from tests.test_i18n import catalogue, entries, ids, strings

LIMIT = 500
REPORTER_NOTICES = (
    NoticeKind.LAWYER_ASSIGNED,
    NoticeKind.STATUS_CHANGED,
    NoticeKind.LAWYER_QUESTION,
    NoticeKind.CASE_CLOSED,
)
# Realistic values for placeholders: a reference, a limit, a count, a date.
SAMPLE: dict[str, object] = {
    "reference": "K7QD-M2PF",
    "limit": 3000,
    "count": 20,
    "low": 1,
    "high": 50,
    "status": "",
    "text": "",
    "date": "07.12.2026",
    "name": "Comil @comil_law",
    "link": "https://t.me/intake_bot?start=" + "x" * 43,
    "number": 20,
    "days": 90,
    "hours": 72.5,
    "total": 100000,
    "share": 0.5,
}

_I18N = create_i18n()


def translator(language: str) -> Callable[[str], str]:
    return partial(_I18N.gettext, locale=language)


def screens(language: str) -> Iterator[tuple[str, str]]:
    """(what, text) for every reporter-facing screen in ``language``."""
    _ = translator(language)
    yield "language", language_screen().text
    for number, screen in enumerate(intro_screens(_), start=1):
        yield f"intro {number}", screen.text
    for phase in CONSENT_ORDER:
        yield f"consent {phase.value}", consent_screen(phase, _).text
    yield "resume", resume_screen(_).text

    state = IntakeState(phase=Phase.QUESTIONS)
    state.draft.answers.update(FULL_PLAN)
    for question in CURRENT.questions:
        if question.type is QuestionType.MULTI:
            state.selection = [option.code for option in question.options]
        if question.type is QuestionType.FILES:
            state.draft.answers[question.id] = [{"file": n} for n in range(20)]
        yield f"question {question.id}", question_screen(state, question, _).text
        for reason in RejectReason:
            yield f"error {reason.value} on {question.id}", rejection_text(reason, question, _)
        yield f"wrong kind on {question.id}", wrong_kind_text(question, _)
    yield "wrong kind, no question", wrong_kind_text(None, _)
    limits = Limits()
    for refusal, msgid in REFUSAL_TEXTS.items():
        yield f"file refused {refusal.value}", _(msgid).format(limit=limits.limit_for(refusal))

    review = IntakeState(phase=Phase.QUESTIONS, draft=Draft(dict(FULL_PLAN), stage=Stage.REVIEW))
    first = review_screens(review, _)[0].text
    yield "review header", first.split("\n\n")[0]
    for question in CURRENT.questions:
        value = render_value(question, FULL_PLAN.get(question.id, "_skipped"), _)
        yield f"review item {question.id}", f"{_(question.prompt)}\n{value}"

    yield "/help", help_text(_)
    cases = [
        SimpleNamespace(reference="K7QD-M2PF", status=status, created_at=datetime.now(UTC))
        for status in ("new", "assigned", "in_progress", "awaiting_reporter", "closed")
    ]
    yield "/status, none", status_text(_, [])
    yield "/status, five reports", status_text(_, cases)  # type: ignore[arg-type]
    yield "/forget", forget_screen_text(_, can_withdraw=False)
    yield "/forget with withdrawal", forget_screen_text(_, can_withdraw=True)
    for kind in REPORTER_NOTICES:
        notice = Notice(kind, "K7QD-M2PF", status="in_progress", text="?")
        yield f"notice {kind.value}", render_notice(notice, _)


def first_contact_screens() -> Iterator[tuple[str, str]]:
    """Before a language is chosen: every answer in both languages."""
    for name, msgid in (
        ("typed before /start", IDLE_DELETED),
        ("typed, chat not wiped", IDLE_NOT_SAVED),
        ("typed on the language screen", DISCARDED),
        ("/help", FIRST_CONTACT_HELP),
        ("/status", N_("You have not sent any reports yet. To send one, press /start.")),
        ("/cancel", N_("There is no report in progress.")),
        ("stale button", STALE_BUTTON),
    ):
        yield name, in_both_languages(_I18N, lambda tr, m=msgid: tr(m))
    done = (
        N_("Done. This bot no longer keeps anything that links you to your reports."),
        N_("You can now delete this chat."),
    )
    yield "/forget", in_both_languages(_I18N, lambda tr: " ".join(tr(m) for m in done))


def all_screens() -> list[tuple[str, str, str]]:
    found = [(language, what, text) for language in LANGUAGES for what, text in screens(language)]
    found += [("both", what, text) for what, text in first_contact_screens()]
    return found


def fill(text: str) -> str:
    fields = {parsed[1] for parsed in string.Formatter().parse(text) if parsed[1]}
    return text.format(**{name: SAMPLE.get(name, "") for name in fields})


def test_every_reporter_screen_is_short_in_both_languages() -> None:
    found = all_screens()
    assert len(found) > 2 * 400  # positive control: every question, error and notice
    too_long = [
        f"{language} {what}: {len(text)} characters"
        for language, what, text in found
        if len(text) > LIMIT
    ]
    assert not too_long, "\n".join(too_long)


def test_no_screen_repeats_a_line() -> None:
    repeated = []
    for language, what, text in all_screens():
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        twice = sorted({line for line in lines if lines.count(line) > 1})
        if twice:
            repeated.append(f"{language} {what}: {twice}")
    assert not repeated, "\n".join(repeated)


def test_the_evidence_question_says_choose_all_once() -> None:
    question = CURRENT.get("evidence")
    assert question is not None and question.type is QuestionType.MULTI
    for language in LANGUAGES:
        _ = translator(language)
        text = question_screen(IntakeState(phase=Phase.QUESTIONS), question, _).text
        hint = _(N_("Choose all that apply, then press Done."))
        assert text.count(hint) == 1, text


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_catalogue_entry_is_longer_than_a_screen(language: str) -> None:
    """Covers the texts sent straight from handlers (receipts, goodbyes, refusals)."""
    too_long = []
    for message in entries(catalogue(language)):
        for form in strings(message):
            text = fill(form)
            if len(text) > LIMIT:
                too_long.append(f"{ids(message)[0][:60]!r}: {len(text)}")
    assert not too_long, "\n".join(too_long)
