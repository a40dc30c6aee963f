"""Where the reporter is in the conversation, and how each action moves them on.

Pure functions over :class:`IntakeState`; the handlers load it from the
(encrypted) FSM data, call one of these, store it and render the result.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from bot.questionnaire import (
    DONT_KNOW,
    QUESTIONNAIRE_V1,
    SKIPPED,
    Accepted,
    AnswerValue,
    Draft,
    Question,
    Questionnaire,
    QuestionType,
    Rejected,
    RejectReason,
    Stage,
    choose_option,
    finish_multi,
    first_question,
    first_unanswered,
    is_evidence_id,
    is_evidence_list,
    is_relevant,
    next_question,
    previous_question,
    set_answer,
    toggle_multi,
)
from storage.crypto import DataKey

CURRENT = QUESTIONNAIRE_V1
MAX_TRACKED_MESSAGES = 400

QUESTIONNAIRES: dict[str, Questionnaire] = {QUESTIONNAIRE_V1.version: QUESTIONNAIRE_V1}


class Phase(StrEnum):
    LANGUAGE = "language"
    INTRO = "intro"
    CONSENT_STORE = "consent_store"
    CONSENT_CONTACT = "consent_contact"
    CONSENT_STATS = "consent_stats"
    QUESTIONS = "questions"


CONSENT_ORDER = (Phase.CONSENT_STORE, Phase.CONSENT_CONTACT, Phase.CONSENT_STATS)


@dataclass(slots=True)
class Consent:
    store: bool = False
    contact: bool = False
    stats: bool = False


@dataclass(slots=True)
class IntakeState:
    """Everything about an unfinished report; lives only in the sealed FSM data."""

    phase: Phase = Phase.INTRO
    consent: Consent = field(default_factory=Consent)
    draft: Draft = field(default_factory=Draft)
    selection: list[str] = field(default_factory=list)
    # Message ids to delete from the chat once what they carried is stored.
    trail: list[int] = field(default_factory=list)
    # Created when the first evidence file arrives: the future case's id and data
    # key. The files are sealed under this key in `evidence_files`; the key exists
    # only here (sealed FSM data) until the case is created with it.
    case_id: uuid.UUID | None = None
    data_key: DataKey | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "phase": self.phase.value,
            "consent": [self.consent.store, self.consent.contact, self.consent.stats],
            "draft": self.draft.to_dict(),
            "selection": list(self.selection),
            "trail": list(self.trail),
        }
        if self.case_id is not None and self.data_key is not None:
            data["case"] = {
                "id": self.case_id.hex,
                "key_id": self.data_key.key_id,
                "key": base64.b64encode(self.data_key.key).decode("ascii"),
            }
        return data

    def case_key(self) -> tuple[uuid.UUID, DataKey]:
        """The future case's id and data key, created on first use."""
        if self.case_id is None or self.data_key is None:
            self.case_id = uuid.uuid4()
            self.data_key = DataKey.generate()
        return self.case_id, self.data_key

    @classmethod
    def from_dict(cls, data: object) -> IntakeState:
        """Rebuild from stored data; anything malformed falls back to a safe default."""
        if not isinstance(data, dict):
            return cls()
        phase_value = data.get("phase")
        phase = (
            Phase(phase_value)
            if isinstance(phase_value, str) and phase_value in Phase._value2member_map_
            else Phase.INTRO
        )
        raw_consent = data.get("consent")
        flags = raw_consent if isinstance(raw_consent, list) and len(raw_consent) == 3 else []
        consent = Consent(*(flag is True for flag in flags)) if flags else Consent()
        selection = data.get("selection")
        trail = data.get("trail")
        case_id, data_key = _case_key_from(data.get("case"))
        return cls(
            case_id=case_id,
            data_key=data_key,
            phase=phase,
            consent=consent,
            draft=Draft.from_dict(data.get("draft"), CURRENT),
            selection=[c for c in selection if isinstance(c, str)][:32]
            if isinstance(selection, list)
            else [],
            trail=[i for i in trail if isinstance(i, int) and not isinstance(i, bool)][
                -MAX_TRACKED_MESSAGES:
            ]
            if isinstance(trail, list)
            else [],
        )

    @property
    def has_answers(self) -> bool:
        return bool(self.draft.answers)

    def track(self, *message_ids: int | None) -> None:
        for message_id in message_ids:
            if message_id is not None and message_id not in self.trail:
                self.trail.append(message_id)
        del self.trail[:-MAX_TRACKED_MESSAGES]

    def take_trail(self, keep: int | None = None) -> list[int]:
        """The tracked ids to delete now; ``keep`` (the live prompt) stays tracked."""
        doomed = [i for i in self.trail if i != keep]
        self.trail = [keep] if keep is not None and keep in self.trail else []
        return doomed


def _case_key_from(raw: object) -> tuple[uuid.UUID | None, DataKey | None]:
    if not isinstance(raw, dict):
        return None, None
    try:
        case_id = uuid.UUID(hex=str(raw["id"]))
        key_id = raw["key_id"]
        key = base64.b64decode(str(raw["key"]), validate=True)
    except (KeyError, ValueError, binascii.Error):
        return None, None
    if not isinstance(key_id, str) or not 0 < len(key_id) < 64 or len(key) != 32:
        return None, None
    return case_id, DataKey(key_id=key_id, key=key)


def questionnaire_for(version: str | None) -> Questionnaire:
    return QUESTIONNAIRES.get(version or "", CURRENT)


# Consent -------------------------------------------------------------------------


def record_consent(state: IntakeState, phase: Phase, agreed: bool) -> IntakeState:
    """Store one consent answer and move to the next step.

    Refusing the first (store and pass on) ends the conversation: the caller
    then clears everything, so nothing is stored.
    """
    if phase is Phase.CONSENT_STORE:
        state.consent.store = agreed
    elif phase is Phase.CONSENT_CONTACT:
        state.consent.contact = agreed
    elif phase is Phase.CONSENT_STATS:
        state.consent.stats = agreed
    position = CONSENT_ORDER.index(phase)
    if position + 1 < len(CONSENT_ORDER):
        state.phase = CONSENT_ORDER[position + 1]
    else:
        state.phase = Phase.QUESTIONS
        state.draft = start_draft(CURRENT)
    return state


# Questions -------------------------------------------------------------------------


def start_draft(q: Questionnaire) -> Draft:
    first = first_question(q, {})
    return Draft(current_id=first.id if first else None, stage=Stage.QUESTION, version=q.version)


def current_question(state: IntakeState) -> Question | None:
    q = questionnaire_for(state.draft.version)
    if state.draft.stage is not Stage.QUESTION or state.draft.current_id is None:
        return None
    question = q.get(state.draft.current_id)
    if question is None or not is_relevant(q, question, state.draft.answers):
        return None
    return question


def _advance(q: Questionnaire, draft: Draft, answered_id: str) -> Draft:
    if draft.editing_from_review:
        # A changed answer may reveal a question not yet asked: ask it, then return.
        pending = first_unanswered(q, draft.answers)
        if pending is None:
            return replace(draft, stage=Stage.REVIEW, current_id=None, editing_from_review=False)
        return replace(draft, current_id=pending.id)
    following = next_question(q, draft.answers, answered_id)
    if following is None:
        return replace(draft, stage=Stage.REVIEW, current_id=None)
    return replace(draft, current_id=following.id)


def answer(state: IntakeState, question: Question, value: AnswerValue) -> IntakeState:
    q = questionnaire_for(state.draft.version)
    answers = set_answer(state.draft.answers, question.id, value)
    state.draft = _advance(q, replace(state.draft, answers=answers), question.id)
    state.selection = []
    return state


def press_option(state: IntakeState, question: Question, code: str) -> RejectReason | None:
    """A button on the current question; multi choices toggle until Done.

    Returns why the press was refused (forged, stale, or Skip on a required
    question), or None when the state changed.
    """
    if code == "_done" and question.type is QuestionType.FILES:
        # Done without any file is the same as Skip.
        received = state.draft.answers.get(question.id)
        if is_evidence_list(received):
            answer(state, question, list(received))
            return None
        code = SKIPPED
    if code == "_done":
        if question.type is not QuestionType.MULTI:
            return RejectReason.INVALID_CHOICE
        done = finish_multi(question, state.selection)
        if isinstance(done, Rejected):
            return done.reason
        answer(state, question, done.value)
        return None
    result = choose_option(question, code)
    if isinstance(result, Rejected):
        return result.reason
    assert isinstance(result, Accepted)
    if question.type is QuestionType.MULTI and result.value not in (SKIPPED, DONT_KNOW):
        state.selection = toggle_multi(question, state.selection, code)
        return None
    answer(state, question, result.value)
    return None


def add_evidence(state: IntakeState, question: Question, evidence_id: str) -> bool:
    """A file received on the current question: a files question collects it and
    stays (Done moves on); a text question that accepts voice takes it as the answer."""
    if not is_evidence_id(evidence_id):
        return False
    if question.type is QuestionType.FILES:
        received = state.draft.answers.get(question.id)
        files = list(received) if is_evidence_list(received) else []
        if evidence_id not in files:
            files.append(evidence_id)
        if not is_evidence_list(files):
            return False
        answers = set_answer(state.draft.answers, question.id, files)
        state.draft = replace(state.draft, answers=answers)
        return True
    if question.accepts_voice:
        answer(state, question, {"evidence": evidence_id})
        return True
    return False


def received_files(state: IntakeState, question: Question) -> list[str]:
    received = state.draft.answers.get(question.id)
    return (
        list(received) if question.type is QuestionType.FILES and is_evidence_list(received) else []
    )


def go_back(state: IntakeState) -> bool:
    """One question back; False when already at the first question."""
    q = questionnaire_for(state.draft.version)
    draft = state.draft
    if draft.stage is Stage.REVIEW:
        last = None
        for question in q.questions:
            if is_relevant(q, question, draft.answers):
                last = question
        if last is None:
            return False
        state.draft = replace(draft, stage=Stage.QUESTION, current_id=last.id)
        return True
    if draft.current_id is None:
        return False
    previous = previous_question(q, draft.answers, draft.current_id)
    if previous is None:
        return False
    state.draft = replace(draft, current_id=previous.id, editing_from_review=False)
    state.selection = _existing_selection(previous, draft.answers.get(previous.id))
    return True


def edit_from_review(state: IntakeState, question_id: str) -> bool:
    q = questionnaire_for(state.draft.version)
    question = q.get(question_id)
    if state.draft.stage is not Stage.REVIEW or question is None:
        return False
    if not is_relevant(q, question, state.draft.answers):
        return False
    state.draft = replace(
        state.draft, stage=Stage.QUESTION, current_id=question.id, editing_from_review=True
    )
    state.selection = _existing_selection(question, state.draft.answers.get(question.id))
    return True


def _existing_selection(question: Question, value: object) -> list[str]:
    if question.type is QuestionType.MULTI and isinstance(value, list):
        return [code for code in value if code in question.codes]
    return []


def resume_point(state: IntakeState) -> IntakeState:
    """After a restart or /start: make sure the draft points at something askable."""
    q = questionnaire_for(state.draft.version)
    if state.phase is not Phase.QUESTIONS:
        return state
    if state.draft.stage is Stage.REVIEW:
        return state
    if current_question(state) is None:
        pending = first_unanswered(q, state.draft.answers)
        state.draft = (
            replace(state.draft, current_id=pending.id)
            if pending
            else replace(state.draft, stage=Stage.REVIEW, current_id=None)
        )
    return state
