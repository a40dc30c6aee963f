"""Small helpers shared by the reporter end-to-end tests."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.intake.flow import CURRENT
from bot.questionnaire import Question
from bot.text import N_
from devkit.emulator import CallbackAnswer, SimulatedUser
from devkit.sandbox import Sandbox
from devkit.scripted_reporter import ScriptedReporter, t
from storage.models import Case, FsmRecord
from storage.repositories import CaseRepository

STALE = N_("This button is no longer active.")
BACK = N_("Back")

_NUMBERED = re.compile(r"(\d+)\. (.+)")


def question(question_id: str) -> Question:
    found = CURRENT.get(question_id)
    assert found is not None, question_id
    return found


def option_label(question_id: str, code: str, language: str) -> str:
    option = question(question_id).option(code)
    assert option is not None, (question_id, code)
    return t(option.label, language)


def translator(language: str) -> Callable[[str], str]:
    return lambda msgid: t(msgid, language)


def back_label(language: str) -> str:
    return "← " + t(BACK, language)


def labels_of(user: SimulatedUser) -> list[str]:
    """Button labels of the newest message with buttons, in one list."""
    return [label for row in user.buttons() for label in row]


@dataclass(frozen=True, slots=True)
class ReviewEntry:
    number: str
    value: str


def review_entries(reporter: ScriptedReporter) -> dict[str, ReviewEntry]:
    """The review on screen, parsed: question id -> (number to press, value shown).

    A long review is split over several messages; the buttons are on the last.
    """
    assert reporter.on_review(), reporter.user.last_text()
    messages = reporter.user.bot_messages()
    last = max(i for i, m in enumerate(messages) if m.inline_keyboard)
    first = last
    while first > 0 and not messages[first - 1].inline_keyboard:
        first -= 1
    lines = "\n".join(m.body or "" for m in messages[first : last + 1]).splitlines()
    by_prompt = {t(q.prompt, reporter.language): q.id for q in CURRENT.questions}
    entries: dict[str, ReviewEntry] = {}
    for index, line in enumerate(lines):
        match = _NUMBERED.fullmatch(line)
        if match is None or match.group(2) not in by_prompt:
            continue
        value = lines[index + 1].strip() if index + 1 < len(lines) else ""
        entries[by_prompt[match.group(2)]] = ReviewEntry(match.group(1), value)
    assert entries, "no answers on the review"
    return entries


async def stored_case(sandbox: Sandbox, reference: str) -> tuple[Case, dict[str, Any]]:
    async with sandbox.sessionmaker() as session:
        cases = CaseRepository(session, sandbox.keyring)
        case = await cases.by_reference(reference)
        assert case is not None, reference
        return case, await cases.answers(case)


async def count_rows(sandbox: Sandbox, model: type[Case] | type[FsmRecord]) -> int:
    async with sandbox.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def callback_answer(user: SimulatedUser, callback_id: str) -> CallbackAnswer:
    """The bot's answer to one callback query (every press must get one)."""
    for answer in user.answered_callbacks():
        if answer.callback_query_id == callback_id:
            return answer
    raise AssertionError(f"callback {callback_id} was never answered")


def assert_no_errors(caplog: pytest.LogCaptureFixture) -> None:
    errors = [
        f"{record.name}: {record.getMessage()}"
        for record in caplog.records
        if record.levelno >= logging.ERROR
    ]
    assert not errors, errors
