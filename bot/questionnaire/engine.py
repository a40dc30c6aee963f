"""Pure functions over (questionnaire, answers): flow, parsing, urgency, review.

Nothing here touches Telegram, the database or the clock (except the default for
`today`). Answers may come from a stored draft or from forged callback data, so
every function tolerates malformed answers: a malformed answer counts as absent.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any, Final, TypeGuard

from bot.questionnaire.dates import is_valid_date_value, parse_date, today_in_tajikistan
from bot.questionnaire.model import (
    CHOICE_TYPES,
    DONT_KNOW,
    MARKERS,
    SKIPPED,
    Accepted,
    AnswerValue,
    Condition,
    ParseResult,
    Question,
    Questionnaire,
    QuestionType,
    Rejected,
    RejectReason,
    Section,
)

# Bidi embedding/override/isolate controls are format characters, not control
# characters, but they can make a lawyer read text in a different order than it
# was typed; nobody needs them in a plain-text account.
# Dropped from free text: control characters (category Cc) but the newline,
# lone surrogates (Cs: unencodable, they break storage) and the bidirectional
# embedding and isolate controls. One regex: every stored answer is checked
# again on each update, and a loop over characters was a visible cost.
_DROPPED_CHARS: Final = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]"
)
_LINE_BREAKS: Final = str.maketrans({"\r": "\n", "\x85": "\n", "\u2028": "\n", "\u2029": "\n"})
_DIGITS_RE: Final = re.compile(r"[0-9]+", re.ASCII)
_MAX_NUMBER_DIGITS: Final = 9
_MAX_NUMBER_INPUT: Final = 40
# Evidence ids are UUIDs as 32 lowercase hex characters (evidence_files.id).
EVIDENCE_ID_RE: Final = re.compile(r"[0-9a-f]{32}", re.ASCII)
MAX_EVIDENCE_FILES: Final = 20


# --- visibility and navigation -------------------------------------------------


def _visibility(q: Questionnaire, answers: Mapping[str, Any]) -> dict[str, bool]:
    # One pass suffices because conditions only refer to earlier questions; an
    # answer to a hidden question never makes a later one visible.
    visible: dict[str, bool] = {}
    for question in q.questions:
        visible[question.id] = all(
            _condition_holds(q, condition, answers, visible) for condition in question.conditions
        )
    return visible


def _condition_holds(
    q: Questionnaire, condition: Condition, answers: Mapping[str, Any], visible: Mapping[str, bool]
) -> bool:
    source = q.get(condition.question_id)
    if source is None or not visible.get(source.id, False):
        return False
    return bool(answer_codes(source, answers.get(source.id)) & condition.any_of)


def is_relevant(q: Questionnaire, question: Question, answers: Mapping[str, Any]) -> bool:
    """Whether `question` should be asked, given the answers so far."""
    return _visibility(q, answers).get(question.id, False)


def visible_questions(q: Questionnaire, answers: Mapping[str, Any]) -> list[Question]:
    visible = _visibility(q, answers)
    return [question for question in q.questions if visible[question.id]]


def first_question(q: Questionnaire, answers: Mapping[str, Any]) -> Question | None:
    shown = visible_questions(q, answers)
    return shown[0] if shown else None


def next_question(q: Questionnaire, answers: Mapping[str, Any], after_id: str) -> Question | None:
    """The next visible question after `after_id`; None at the end or for an unknown id."""
    start = q.position(after_id)
    if start is None:
        return None
    visible = _visibility(q, answers)
    for question in q.questions[start + 1 :]:
        if visible[question.id]:
            return question
    return None


def previous_question(
    q: Questionnaire, answers: Mapping[str, Any], before_id: str
) -> Question | None:
    """The visible question before `before_id`; None at the start or for an unknown id."""
    end = q.position(before_id)
    if end is None:
        return None
    visible = _visibility(q, answers)
    for question in reversed(q.questions[:end]):
        if visible[question.id]:
            return question
    return None


def first_unanswered(q: Questionnaire, answers: Mapping[str, Any]) -> Question | None:
    """Where to resume: the first visible question without a valid answer (skips count)."""
    for question in visible_questions(q, answers):
        if not is_valid_answer(question, answers.get(question.id)):
            return question
    return None


def progress(q: Questionnaire, answers: Mapping[str, Any], question_id: str) -> tuple[int, int]:
    """(1-based position among visible questions, number of visible questions).

    A hidden question gets the position it would take if it were shown; an
    unknown id gets position 0.
    """
    visible = _visibility(q, answers)
    total = sum(visible.values())
    target = q.position(question_id)
    if target is None:
        return 0, total
    before = sum(1 for question in q.questions[:target] if visible[question.id])
    return min(before + 1, max(total, 1)), total


# --- answer values ---------------------------------------------------------------


def clean_text(text: str) -> str:
    """Free text as stored: control characters removed except newlines, NFC, stripped."""
    text = text.replace("\r\n", "\n").translate(_LINE_BREAKS).replace("\t", " ")
    return unicodedata.normalize("NFC", _DROPPED_CHARS.sub("", text)).strip()


def _has_visible_char(text: str) -> bool:
    # A zero-width space alone survives strip() but shows the lawyer a blank answer.
    return any(not ch.isspace() and unicodedata.category(ch) != "Cf" for ch in text)


def is_valid_answer(question: Question, value: object) -> bool:
    """Whether `value` is a well-formed, submittable answer to `question`."""
    if isinstance(value, str) and value in MARKERS:
        if value == SKIPPED:
            return not question.required
        return question.allow_dont_know
    match question.type:
        case QuestionType.SINGLE | QuestionType.YES_NO:
            return isinstance(value, str) and value in question.codes
        case QuestionType.MULTI:
            return _is_valid_multi(question, value)
        case QuestionType.TEXT:
            if question.accepts_voice and is_evidence_reference(value):
                return True
            return (
                isinstance(value, str)
                and question.max_length is not None
                and len(value) <= question.max_length
                and clean_text(value) == value
                and _has_visible_char(value)
            )
        case QuestionType.NUMBER:
            return (
                type(value) is int
                and question.min_value is not None
                and question.max_value is not None
                and question.min_value <= value <= question.max_value
            )
        case QuestionType.DATE:
            return is_valid_date_value(value)
        case QuestionType.FILES:
            return is_evidence_list(value)
    return False


def is_evidence_id(value: object) -> bool:
    return isinstance(value, str) and EVIDENCE_ID_RE.fullmatch(value) is not None


def is_evidence_list(value: object) -> TypeGuard[list[str]]:
    """A files answer: 1 to MAX_EVIDENCE_FILES distinct evidence ids, in the order received."""
    return (
        isinstance(value, list)
        and 0 < len(value) <= MAX_EVIDENCE_FILES
        and all(is_evidence_id(item) for item in value)
        and len(set(value)) == len(value)
    )


def is_evidence_reference(value: object) -> TypeGuard[dict[str, str]]:
    """A text answer given as a voice message: ``{"evidence": <id>}``."""
    return (
        isinstance(value, dict) and set(value) == {"evidence"} and is_evidence_id(value["evidence"])
    )


def evidence_ids(q: Questionnaire, answers: Mapping[str, Any]) -> list[str]:
    """Every evidence id the answers refer to (files answers and voice answers), in order."""
    found: list[str] = []
    for question in q.questions:
        value = answers.get(question.id)
        if question.type is QuestionType.FILES and is_evidence_list(value):
            found.extend(value)
        elif question.accepts_voice and is_evidence_reference(value):
            found.append(value["evidence"])
    return list(dict.fromkeys(found))


def drop_missing_evidence(
    q: Questionnaire, answers: Mapping[str, Any], existing: frozenset[str]
) -> dict[str, Any]:
    """Answers without references to evidence that is gone (an expired draft file).

    A files answer keeps the files that still exist, or becomes SKIPPED; a voice
    answer whose file is gone becomes SKIPPED.
    """
    result = dict(answers)
    for question in q.questions:
        value = result.get(question.id)
        if question.type is QuestionType.FILES and isinstance(value, list):
            kept = [item for item in value if item in existing]
            result[question.id] = kept if kept else SKIPPED
        elif (
            question.accepts_voice
            and is_evidence_reference(value)
            and value["evidence"] not in existing
        ):
            result[question.id] = SKIPPED
    return result


def _is_valid_multi(question: Question, value: object) -> bool:
    if not isinstance(value, list) or not value:
        return False
    if not all(isinstance(code, str) and code in question.codes for code in value):
        return False
    if value != sorted(set(value)):
        return False
    exclusive = [code for code in value if _is_exclusive(question, code)]
    return not exclusive or len(value) == 1


def _is_exclusive(question: Question, code: str) -> bool:
    option = question.option(code)
    return option is not None and option.exclusive


def answer_codes(question: Question, value: object) -> frozenset[str]:
    """Option codes in a valid choice answer; empty for markers and anything else."""
    if question.type not in CHOICE_TYPES or not is_valid_answer(question, value):
        return frozenset()
    if isinstance(value, str):
        return frozenset() if value in MARKERS else frozenset({value})
    if isinstance(value, list):
        return frozenset(value)
    return frozenset()


def option_labels(question: Question, value: object) -> list[str]:
    """Label msgids of the chosen options, in the order the options are shown."""
    codes = answer_codes(question, value)
    return [option.label for option in question.options if option.code in codes]


# --- parsing user input ---------------------------------------------------------


def parse_text_answer(question: Question, text: str, *, today: date | None = None) -> ParseResult:
    """Validate typed input for `question`; never raises on user input.

    `today` bounds date answers (no dates in the future); it defaults to the
    current date in Tajikistan.
    """
    if question.type in CHOICE_TYPES:
        return Rejected(RejectReason.NEEDS_BUTTON)
    if question.type is QuestionType.FILES:
        return Rejected(RejectReason.NEEDS_FILE)
    if not isinstance(text, str):
        return Rejected(RejectReason.EMPTY)
    cleaned = clean_text(text)
    if not _has_visible_char(cleaned):
        return Rejected(RejectReason.EMPTY)
    match question.type:
        case QuestionType.TEXT:
            if question.max_length is not None and len(cleaned) > question.max_length:
                return Rejected(RejectReason.TOO_LONG)
            return Accepted(cleaned)
        case QuestionType.NUMBER:
            return _parse_number(question, cleaned)
        case QuestionType.DATE:
            parsed = parse_date(cleaned, today if today is not None else today_in_tajikistan())
            if isinstance(parsed, RejectReason):
                return Rejected(parsed)
            return Accepted(parsed)
    return Rejected(RejectReason.NEEDS_BUTTON)


def _parse_number(question: Question, cleaned: str) -> ParseResult:
    if len(cleaned) > _MAX_NUMBER_INPUT:
        return Rejected(RejectReason.NOT_A_NUMBER)
    # "1 000" and "1\u00a0000" are how many people write numbers.
    digits = "".join(ch for ch in cleaned if not ch.isspace())
    if not _DIGITS_RE.fullmatch(digits):
        return Rejected(RejectReason.NOT_A_NUMBER)
    if len(digits.lstrip("0")) > _MAX_NUMBER_DIGITS:
        return Rejected(RejectReason.OUT_OF_RANGE)
    number = int(digits)
    low = question.min_value if question.min_value is not None else 0
    high = question.max_value if question.max_value is not None else 10**_MAX_NUMBER_DIGITS
    if not low <= number <= high:
        return Rejected(RejectReason.OUT_OF_RANGE)
    return Accepted(number)


def choose_option(question: Question, code: str) -> ParseResult:
    """Validate a pressed button's code (which may be forged).

    Accepts SKIPPED (unless required) and DONT_KNOW (if allowed) on any question
    type. For a multi question an accepted option code is one to toggle with
    `toggle_multi`, not the whole answer; see `finish_multi`.
    """
    if not isinstance(code, str):
        return Rejected(RejectReason.INVALID_CHOICE)
    if code == SKIPPED:
        return Rejected(RejectReason.REQUIRED) if question.required else Accepted(SKIPPED)
    if code == DONT_KNOW:
        if question.allow_dont_know:
            return Accepted(DONT_KNOW)
        return Rejected(RejectReason.INVALID_CHOICE)
    if question.type not in CHOICE_TYPES or code not in question.codes:
        return Rejected(RejectReason.INVALID_CHOICE)
    return Accepted(code)


def _selected_codes(question: Question, current: object) -> set[str]:
    if not isinstance(current, list):
        return set()
    return {code for code in current if isinstance(code, str) and code in question.codes}


def toggle_multi(question: Question, current: list[str] | None, code: str) -> list[str]:
    """Selection after pressing `code`: sorted, only valid codes; bad codes change nothing."""
    selected = _selected_codes(question, current)
    if (
        question.type is not QuestionType.MULTI
        or not isinstance(code, str)
        or code not in question.codes
    ):
        return sorted(selected)
    if code in selected:
        selected.discard(code)
    elif _is_exclusive(question, code):
        selected = {code}
    else:
        selected = {c for c in selected if not _is_exclusive(question, c)} | {code}
    return sorted(selected)


def finish_multi(question: Question, current: list[str] | None) -> ParseResult:
    """The answer when "Done" is pressed on a multi question; nothing chosen is EMPTY."""
    if question.type is not QuestionType.MULTI:
        return Rejected(RejectReason.INVALID_CHOICE)
    selected = sorted(_selected_codes(question, current))
    exclusive = [code for code in selected if _is_exclusive(question, code)]
    if exclusive:
        selected = exclusive[:1]
    if not selected:
        return Rejected(RejectReason.EMPTY)
    return Accepted(selected)


# --- answers as a whole ---------------------------------------------------------


def set_answer(answers: Mapping[str, Any], question_id: str, value: AnswerValue) -> dict[str, Any]:
    """A new answers dict with `question_id` set (copies list/dict values)."""
    stored: Any = list(value) if isinstance(value, list) else value
    if isinstance(value, dict):
        stored = dict(value)
    return {**answers, question_id: stored}


def clear_hidden(q: Questionnaire, answers: Mapping[str, Any]) -> dict[str, Any]:
    """Only what may be submitted: valid answers to currently visible questions.

    Drops answers to questions hidden by a later change (e.g. "relation" after the
    reporter changed from relative to witness), unknown ids and malformed values.
    """
    return {
        question.id: answers[question.id]
        for question in visible_questions(q, answers)
        if question.id in answers and is_valid_answer(question, answers[question.id])
    }


def urgent_reasons(q: Questionnaire, answers: Mapping[str, Any]) -> list[str]:
    """Ids of visible questions whose answer marks the case urgent, in order."""
    return [
        question.id
        for question in visible_questions(q, answers)
        if answer_codes(question, answers.get(question.id)) & question.urgent_if
    ]


def is_urgent(q: Questionnaire, answers: Mapping[str, Any]) -> bool:
    return bool(urgent_reasons(q, answers))


def is_complete(q: Questionnaire, answers: Mapping[str, Any]) -> bool:
    """Every visible required question has a valid answer (skipping is not answering)."""
    # is_valid_answer already refuses SKIPPED for a required question.
    return all(
        is_valid_answer(question, answers.get(question.id))
        for question in visible_questions(q, answers)
        if question.required
    )


@dataclass(frozen=True, slots=True)
class ReviewItem:
    section: Section
    question: Question
    value: AnswerValue


def summarise_for_review(q: Questionnaire, answers: Mapping[str, Any]) -> list[ReviewItem]:
    """Visible, answered questions in order; skipped ones appear with value SKIPPED."""
    return [
        ReviewItem(question.section, question, answers[question.id])
        for question in visible_questions(q, answers)
        if question.id in answers and is_valid_answer(question, answers[question.id])
    ]


# --- flow state -----------------------------------------------------------------


class Stage(StrEnum):
    QUESTION = "question"
    REVIEW = "review"


_ID_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,15}", re.ASCII)
_MAX_STORED_TEXT: Final = 10_000


@dataclass(frozen=True, slots=True)
class Draft:
    """A report in progress, stored between messages (e.g. in FSM storage)."""

    answers: dict[str, Any] = field(default_factory=dict)
    current_id: str | None = None
    stage: Stage = Stage.QUESTION
    editing_from_review: bool = False
    version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "answers": {key: _copy_value(value) for key, value in self.answers.items()},
            "current_id": self.current_id,
            "stage": self.stage.value,
            "editing_from_review": self.editing_from_review,
        }

    @classmethod
    def from_dict(cls, data: object, questionnaire: Questionnaire | None = None) -> Draft:
        """Rebuild a draft from stored data; garbage gives a fresh draft, never an error.

        With `questionnaire`, answers to unknown questions and answers that are no
        longer valid are dropped (a draft may outlive a questionnaire version).
        """
        fresh = cls(version=questionnaire.version if questionnaire is not None else None)
        if not isinstance(data, Mapping):
            return fresh
        try:
            return cls._from_mapping(data, questionnaire)
        except Exception:  # stored state must never lock a reporter out of the bot
            return fresh

    @classmethod
    def _from_mapping(cls, data: Mapping[Any, Any], questionnaire: Questionnaire | None) -> Draft:
        raw_answers = data.get("answers")
        answers: dict[str, Any] = {}
        if isinstance(raw_answers, Mapping):
            for key, value in raw_answers.items():
                if not isinstance(key, str) or not _ID_RE.fullmatch(key):
                    continue
                if not _is_json_answer(value):
                    continue
                if questionnaire is not None:
                    question = questionnaire.get(key)
                    if question is None or not is_valid_answer(question, value):
                        continue
                answers[key] = _copy_value(value)

        current = data.get("current_id")
        if not isinstance(current, str) or not _ID_RE.fullmatch(current):
            current = None
        if questionnaire is not None and current not in questionnaire:
            current = None

        raw_stage = data.get("stage")
        stage = Stage.QUESTION
        if isinstance(raw_stage, str) and raw_stage in Stage.__members__.values():
            stage = Stage(raw_stage)
        editing = data.get("editing_from_review")
        version = data.get("version")
        if questionnaire is not None:
            version = questionnaire.version
        elif not isinstance(version, str) or len(version) > 64:
            version = None
        return cls(
            answers=answers,
            current_id=current,
            stage=stage,
            editing_from_review=editing if isinstance(editing, bool) else False,
            version=version,
        )


def _is_json_answer(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        return len(value) <= _MAX_STORED_TEXT
    if isinstance(value, int):
        return abs(value) < 2**53
    if isinstance(value, list):
        # Option codes are at most 16 characters, evidence ids 32.
        return len(value) <= 64 and all(isinstance(item, str) and len(item) <= 32 for item in value)
    if isinstance(value, dict):
        if set(value) == {"evidence"}:
            return is_evidence_reference(value)
        return set(value) == {"precision", "value"} and all(
            isinstance(item, str) and len(item) <= 16 for item in value.values()
        )
    return False


def _copy_value(value: Any) -> Any:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


__all__ = [
    "Draft",
    "ReviewItem",
    "Stage",
    "answer_codes",
    "choose_option",
    "clean_text",
    "clear_hidden",
    "drop_missing_evidence",
    "evidence_ids",
    "finish_multi",
    "first_question",
    "first_unanswered",
    "is_complete",
    "is_evidence_id",
    "is_evidence_list",
    "is_evidence_reference",
    "is_relevant",
    "is_urgent",
    "is_valid_answer",
    "next_question",
    "option_labels",
    "parse_text_answer",
    "previous_question",
    "progress",
    "set_answer",
    "summarise_for_review",
    "toggle_multi",
    "urgent_reasons",
    "visible_questions",
]
