"""A reporter that fills in the questionnaire by itself, through the emulator.

It reads the question on screen (by its translated prompt), answers it from a
plan and presses buttons by their visible labels, exactly as a person would.
Used by the end-to-end tests and the benchmarks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.i18n import create_i18n
from bot.intake.flow import CURRENT
from bot.questionnaire import (
    DONT_KNOW,
    DONT_KNOW_LABEL,
    SKIP_LABEL,
    SKIPPED,
    Question,
    Questionnaire,
    QuestionType,
)
from bot.text import N_
from devkit.emulator import SimulatedUser

_I18N = create_i18n()

#: A typical full report, as answer codes and texts.
FULL_PLAN: dict[str, Any] = {
    "reporter": "relative",
    "relation": "parent",
    "victim_agrees": "cannot_ask",
    "victim_name": "Фаррух",
    "sex": "male",
    "age_group": "18_30",
    "situation": "detained",
    "held_where": "СИЗО-1 Душанбе",
    "event_date": "14.03.2025",
    "region": "dushanbe",
    "place_town": "Душанбе",
    "place_type": "police",
    "agency": ["police"],
    "officers_count": "3",
    "officers_info": "Ду нафар дар либоси шаҳрвандӣ",
    "acts": ["beating", "threats"],
    "account": "Ӯро се рӯз латукӯб карданд ва таҳдид карданд.",
    "purpose": ["confession"],
    "signed_statement": "yes",
    "injuries": "urgent_help",
    "medical_exam": ["none"],
    "evidence": ["photos"],
    "lawyer": "none",
    "complaints": ["none"],
    "threats_now": "no",
    "contact_how": "chat",
    "contact_time": "evening",
    "write_first": "yes",
}


def t(msgid: str, language: str) -> str:
    return _I18N.gettext(msgid, locale=language)


class ScriptedReporter:
    def __init__(
        self, user: SimulatedUser, language: str, questionnaire: Questionnaire = CURRENT
    ) -> None:
        self.user = user
        self.language = language
        self.q = questionnaire
        self.asked: list[str] = []

    def _(self, msgid: str) -> str:
        return t(msgid, self.language)

    async def press(self, msgid: str) -> None:
        await self.user.press(self._(msgid))

    async def open(self, *, contact: bool = True, stats: bool = True) -> None:
        """/start, the language, the introduction and the three consents."""
        await self.user.send_command("/start")
        names = {"tg": "Тоҷикӣ", "ru": "Русский"}
        if any(names[self.language] in row for row in self.user.buttons()):
            await self.user.press(names[self.language])
        await self.press(N_("Continue"))
        await self.press(N_("Yes, I agree"))
        await self.press(N_("Yes, I agree") if contact else N_("No"))
        await self.press(N_("Yes, I agree") if stats else N_("No"))

    def question_on_screen(self) -> Question | None:
        """The question in the newest message with buttons.

        A short correction ("Please type a number...") may follow the question
        without buttons of its own; a person reads the question above it.
        """
        message = next((m for m in reversed(self.user.bot_messages()) if m.inline_keyboard), None)
        text = (message.body if message is not None else None) or ""
        found = [question for question in self.q.questions if self._(question.prompt) in text]
        # The longest matching prompt wins (one prompt may contain another).
        return max(found, key=lambda question: len(self._(question.prompt)), default=None)

    def on_review(self) -> bool:
        return any(self._(N_("Send the report")) in row for row in self.user.buttons())

    async def answer(self, question: Question, value: Any) -> None:
        self.asked.append(question.id)
        if value == SKIPPED:
            await self.press(SKIP_LABEL)
        elif value == DONT_KNOW:
            label = (
                N_("I don't remember exactly")
                if question.type is QuestionType.DATE
                else DONT_KNOW_LABEL
            )
            await self.press(label)
        elif question.type is QuestionType.MULTI:
            for code in value:
                await self._press_option(question, code)
            await self.press(N_("Done"))
        elif question.type in (QuestionType.SINGLE, QuestionType.YES_NO):
            await self._press_option(question, value)
        else:
            await self.user.send_text(str(value))

    async def _press_option(self, question: Question, code: str) -> None:
        option = question.option(code)
        if option is None:
            raise LookupError(f"{question.id} has no option {code!r}")
        await self.user.press(self._(option.label))

    async def fill(self, plan: Mapping[str, Any], *, limit: int = 200) -> None:
        """Answer every question shown, from ``plan`` (Skip for the rest), up to the review."""
        for _ in range(limit):
            if self.on_review():
                return
            question = self.question_on_screen()
            if question is None:
                raise AssertionError(f"no question on screen: {self.user.last_text()!r}")
            await self.answer(question, plan.get(question.id, SKIPPED))
        raise AssertionError("the questionnaire did not reach the review")

    async def submit(self) -> str:
        await self.press(N_("Send the report"))
        text = self.user.last_text() or ""
        for word in text.replace(".", " ").replace(",", " ").split():
            if len(word) == 9 and word[4] == "-":
                return word
        raise AssertionError(f"no reference in the receipt: {text!r}")
