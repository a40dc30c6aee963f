"""The questionnaire as data: questions, options, conditions and answer results.

Everything here is language-independent: prompts and labels are English gettext
msgids (marked with `N_`) that the handler translates at render time, and answers
are stored as short ASCII codes so a case reads the same in Tajik, Russian or English.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, TypeAlias

from bot.text import N_

SKIPPED: Final = "_skip"
DONT_KNOW: Final = "_dk"
MARKERS: Final = frozenset({SKIPPED, DONT_KNOW})

SKIP_LABEL: Final = N_("Skip")
DONT_KNOW_LABEL: Final = N_("I don't know")

YES: Final = "yes"
NO: Final = "no"

# Telegram allows 64 bytes of callback data; the rest is headroom for a future
# prefix (e.g. a draft nonce) without re-validating every question.
CALLBACK_BUDGET: Final = 48

# Codes may start with a digit ("18_30") but never with "_", which is reserved
# for the SKIPPED / DONT_KNOW markers so they can never collide with an option.
_ID_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,15}", re.ASCII)
_CODE_RE: Final = re.compile(r"[a-z0-9][a-z0-9_]{0,15}", re.ASCII)

# single/yes_no -> code; multi -> sorted codes; text -> str; number -> int;
# date -> {"precision": ..., "value": ...}; files -> evidence ids (32 hex characters);
# a text question with accepts_voice -> also {"evidence": id}; any type -> SKIPPED or DONT_KNOW.
AnswerValue: TypeAlias = str | int | list[str] | dict[str, str]


class QuestionType(StrEnum):
    SINGLE = "single"
    MULTI = "multi"
    TEXT = "text"
    DATE = "date"
    YES_NO = "yes_no"
    NUMBER = "number"
    # Evidence files (photos, documents, voice...): the answer is a list of evidence ids.
    FILES = "files"


CHOICE_TYPES: Final = frozenset({QuestionType.SINGLE, QuestionType.MULTI, QuestionType.YES_NO})


class Section(StrEnum):
    REPORTER = "reporter"
    VICTIM = "victim"
    EVENT = "event"
    PERPETRATORS = "perpetrators"
    ACTS = "acts"
    CONSEQUENCES = "consequences"
    LEGAL = "legal"
    CONTACT = "contact"


SECTION_TITLES: Final[Mapping[Section, str]] = {
    Section.REPORTER: N_("About you"),
    Section.VICTIM: N_("The person who was detained"),
    Section.EVENT: N_("When and where"),
    Section.PERPETRATORS: N_("Who did it"),
    Section.ACTS: N_("What happened"),
    Section.CONSEQUENCES: N_("Injuries and evidence"),
    Section.LEGAL: N_("Lawyer and complaints"),
    Section.CONTACT: N_("How to contact you"),
}


class RejectReason(StrEnum):
    TOO_LONG = "too_long"
    EMPTY = "empty"
    NOT_A_NUMBER = "not_a_number"
    OUT_OF_RANGE = "out_of_range"
    NOT_A_DATE = "not_a_date"
    FUTURE_DATE = "future_date"
    NEEDS_BUTTON = "needs_button"
    # A code that is not an option of this question: forged or stale callback data.
    INVALID_CHOICE = "invalid_choice"
    # Typed text where files (or the Done button) are expected.
    NEEDS_FILE = "needs_file"
    # Skip pressed on a question that must be answered.
    REQUIRED = "required"


@dataclass(frozen=True, slots=True)
class Accepted:
    value: AnswerValue


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: RejectReason


ParseResult: TypeAlias = Accepted | Rejected


def callback_data(question_id: str, code: str) -> str:
    """Callback data for an answer button; its length is what CALLBACK_BUDGET limits."""
    return f"q:{question_id}:{code}"


@dataclass(frozen=True, slots=True)
class Option:
    code: str
    label: str
    # Picking an exclusive option ("none") in a multi question clears the others.
    exclusive: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.code, str) or not _CODE_RE.fullmatch(self.code):
            raise ValueError(f"invalid option code {self.code!r}")
        if not isinstance(self.label, str) or not self.label.strip():
            raise ValueError(f"option {self.code!r} has an empty label")


@dataclass(frozen=True, slots=True)
class Condition:
    """Holds when the earlier answer (or any code of a multi answer) is in `any_of`."""

    question_id: str
    any_of: frozenset[str]

    def __post_init__(self) -> None:
        if not isinstance(self.any_of, frozenset):
            object.__setattr__(self, "any_of", frozenset(self.any_of))
        if not self.any_of:
            raise ValueError(f"condition on {self.question_id!r} has no codes")
        if not all(isinstance(code, str) for code in self.any_of):
            raise ValueError(f"condition on {self.question_id!r} has non-string codes")


_YES_NO_OPTIONS: Final = (Option(YES, N_("Yes")), Option(NO, N_("No")))


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    type: QuestionType
    prompt: str
    options: tuple[Option, ...] = ()
    required: bool = False
    conditions: tuple[Condition, ...] = ()
    max_length: int | None = None
    min_value: int | None = None
    max_value: int | None = None
    urgent_if: frozenset[str] = frozenset()
    hint: str | None = None
    allow_dont_know: bool = True
    section: Section = Section.EVENT
    # A text question that also takes a voice message (stored as evidence).
    accepts_voice: bool = False
    _codes: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _ID_RE.fullmatch(self.id):
            raise ValueError(f"invalid question id {self.id!r}")
        object.__setattr__(self, "type", QuestionType(self.type))
        object.__setattr__(self, "section", Section(self.section))
        object.__setattr__(self, "options", tuple(self.options))
        object.__setattr__(self, "conditions", tuple(self.conditions))
        object.__setattr__(self, "urgent_if", frozenset(self.urgent_if))
        if not isinstance(self.prompt, str) or not self.prompt.strip():
            raise ValueError(f"{self.id}: empty prompt")
        if self.hint is not None and (not isinstance(self.hint, str) or not self.hint.strip()):
            raise ValueError(f"{self.id}: hint must be None or non-empty")

        if self.type is QuestionType.YES_NO:
            if self.options:
                raise ValueError(f"{self.id}: yes_no questions get their options automatically")
            object.__setattr__(self, "options", _YES_NO_OPTIONS)
        elif self.type in CHOICE_TYPES:
            if len(self.options) < 2:
                raise ValueError(f"{self.id}: a choice question needs at least two options")
        elif self.options:
            raise ValueError(f"{self.id}: only choice questions have options")

        codes = [option.code for option in self.options]
        if len(set(codes)) != len(codes):
            raise ValueError(f"{self.id}: duplicate option codes")
        if self.type is not QuestionType.MULTI and any(o.exclusive for o in self.options):
            raise ValueError(f"{self.id}: exclusive options only make sense in multi questions")
        object.__setattr__(self, "_codes", frozenset(codes))

        if self.type is QuestionType.TEXT:
            if self.max_length is None or self.max_length < 1:
                raise ValueError(f"{self.id}: text questions need a positive max_length")
        elif self.max_length is not None:
            raise ValueError(f"{self.id}: max_length is only for text questions")
        if self.accepts_voice and self.type is not QuestionType.TEXT:
            raise ValueError(f"{self.id}: only text questions accept a voice message")
        if self.type is QuestionType.FILES and self.allow_dont_know:
            raise ValueError(f"{self.id}: a files question has no 'I don't know' button")

        if self.type is QuestionType.NUMBER:
            # Explicit bounds keep every stored number meaningful and small.
            if self.min_value is None or self.max_value is None:
                raise ValueError(f"{self.id}: number questions need min_value and max_value")
            if self.min_value > self.max_value:
                raise ValueError(f"{self.id}: min_value > max_value")
        elif self.min_value is not None or self.max_value is not None:
            raise ValueError(f"{self.id}: min_value/max_value are only for number questions")

        if not self.urgent_if <= self._codes:
            raise ValueError(f"{self.id}: urgent_if refers to unknown codes")

    @property
    def codes(self) -> frozenset[str]:
        return self._codes

    def option(self, code: str) -> Option | None:
        for option in self.options:
            if option.code == code:
                return option
        return None


@dataclass(frozen=True, slots=True)
class Questionnaire:
    version: str
    questions: tuple[Question, ...]
    _index: dict[str, Question] = field(init=False, repr=False, compare=False)
    _positions: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.version, str) or not self.version.strip():
            raise ValueError("questionnaire version must be a non-empty string")
        object.__setattr__(self, "questions", tuple(self.questions))
        if not self.questions:
            raise ValueError("questionnaire has no questions")

        index: dict[str, Question] = {}
        positions: dict[str, int] = {}
        for position, question in enumerate(self.questions):
            if question.id in index:
                raise ValueError(f"duplicate question id {question.id!r}")
            for condition in question.conditions:
                source = index.get(condition.question_id)
                if source is None:
                    raise ValueError(
                        f"{question.id}: condition refers to {condition.question_id!r}, "
                        "which is not an earlier question"
                    )
                if source.type not in CHOICE_TYPES:
                    raise ValueError(f"{question.id}: condition on non-choice question")
                unknown = condition.any_of - source.codes
                if unknown:
                    raise ValueError(
                        f"{question.id}: condition uses unknown codes {sorted(unknown)} "
                        f"of {source.id!r}"
                    )
            for code in question.codes | MARKERS:
                if len(callback_data(question.id, code).encode()) > CALLBACK_BUDGET:
                    raise ValueError(f"{question.id}: callback data for {code!r} is too long")
            index[question.id] = question
            positions[question.id] = position
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_positions", positions)

    def get(self, question_id: str) -> Question | None:
        """The question with this id, or None (ids may come from forged callback data)."""
        if not isinstance(question_id, str):
            return None
        return self._index.get(question_id)

    def position(self, question_id: str) -> int | None:
        """0-based position in the full questionnaire, or None for an unknown id."""
        if not isinstance(question_id, str):
            return None
        return self._positions.get(question_id)

    def __contains__(self, question_id: object) -> bool:
        return isinstance(question_id, str) and question_id in self._index

    def __len__(self) -> int:
        return len(self.questions)
