"""Small helpers shared by the reporter end-to-end tests."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.emulator import SimulatedUser
from bot.emulator.server import CallbackAnswer
from bot.intake.flow import CURRENT
from bot.questionnaire import Question
from bot.sandbox import Sandbox
from bot.scripted_reporter import ScriptedReporter, t
from bot.text import N_
from storage.models import Case, FsmRecord
from storage.repositories import CaseRepository

REVIEW_HEADER = N_(
    "Please check your answers. Nothing is sent until you press Send. To change an "
    "answer, press its number."
)
STALE = N_("This button is no longer active.")
BACK = N_("Back")

_NUMBERED = re.compile(r"(\d+)\. (.+)")


def question(question_id: str) -> Question:
    found = CURRENT.get(question_id)
    assert found is not None, question_id
    return found


def translator(language: str) -> Callable[[str], str]:
    return lambda msgid: t(msgid, language)


def back_label(language: str) -> str:
    return "← " + t(BACK, language)


@dataclass(frozen=True, slots=True)
class ReviewEntry:
    number: str
    value: str


def review_entries(reporter: ScriptedReporter) -> dict[str, ReviewEntry]:
    """The review on screen, parsed: question id -> (number to press, value shown)."""
    assert reporter.on_review(), reporter.user.last_text()
    header = t(REVIEW_HEADER, reporter.language)
    bodies = [m.body or "" for m in reporter.user.bot_messages()]
    starts = [i for i, body in enumerate(bodies) if body.startswith(header)]
    assert starts, "no review header on screen"
    lines = "\n".join(bodies[starts[-1] :]).splitlines()
    by_prompt = {t(q.prompt, reporter.language): q.id for q in CURRENT.questions}
    entries: dict[str, ReviewEntry] = {}
    for index, line in enumerate(lines):
        match = _NUMBERED.fullmatch(line)
        if match is None or match.group(2) not in by_prompt:
            continue
        value = lines[index + 1].strip() if index + 1 < len(lines) else ""
        entries[by_prompt[match.group(2)]] = ReviewEntry(match.group(1), value)
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
