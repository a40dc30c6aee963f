"""The pure parts of evidence handling: limits, types, metadata, answers, draft key."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from bot.evidence import (
    MB,
    EvidenceKind,
    EvidenceMeta,
    Incoming,
    Limits,
    Refusal,
    check_length,
    refusal,
)
from bot.intake.flow import IntakeState, Phase, add_evidence, press_option, start_draft
from bot.questionnaire import (
    QUESTIONNAIRE_V1,
    SKIPPED,
    Draft,
    Question,
    QuestionType,
    Rejected,
    RejectReason,
    drop_missing_evidence,
    evidence_ids,
    is_valid_answer,
    parse_text_answer,
)
from bot.questionnaire.engine import MAX_EVIDENCE_FILES
from storage.crypto import DataKey, FieldContext

LIMITS = Limits(max_file_bytes=20 * MB)
FILES = QUESTIONNAIRE_V1.get("evidence_files")
ACCOUNT = QUESTIONNAIRE_V1.get("account")


def _id() -> str:
    return uuid.uuid4().hex


def _incoming(kind: EvidenceKind, mime: str | None, size: int | None = 1000) -> Incoming:
    return Incoming(kind, "file-id", mime, size)


def test_files_question_follows_the_evidence_question() -> None:
    ids = [question.id for question in QUESTIONNAIRE_V1.questions]
    assert ids[ids.index("evidence") + 1] == "evidence_files"
    assert FILES is not None and FILES.type is QuestionType.FILES
    assert FILES.hint is not None and '"as a file"' in FILES.hint
    assert ACCOUNT is not None and ACCOUNT.accepts_voice


@pytest.mark.parametrize(
    ("kind", "mime"),
    [
        (EvidenceKind.PHOTO, None),
        (EvidenceKind.DOCUMENT, "application/pdf"),
        (EvidenceKind.DOCUMENT, "image/heic"),
        (
            EvidenceKind.DOCUMENT,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        (EvidenceKind.DOCUMENT, "text/plain"),
        (EvidenceKind.VOICE, None),
        (EvidenceKind.VOICE, "audio/ogg"),
        (EvidenceKind.AUDIO, "audio/mpeg"),
        (EvidenceKind.AUDIO, "audio/x-m4a"),
        (EvidenceKind.VIDEO_NOTE, None),
    ],
)
def test_allowed_types(kind: EvidenceKind, mime: str | None) -> None:
    assert refusal(_incoming(kind, mime), LIMITS, files_so_far=0, bytes_so_far=0) is None


@pytest.mark.parametrize(
    ("kind", "mime"),
    [
        (EvidenceKind.DOCUMENT, "application/x-msdownload"),
        (EvidenceKind.DOCUMENT, "application/zip"),
        (EvidenceKind.DOCUMENT, "video/mp4"),
        (EvidenceKind.DOCUMENT, None),
        (EvidenceKind.AUDIO, "audio/wav"),
        (EvidenceKind.VOICE, "audio/mpeg"),
    ],
)
def test_forbidden_types(kind: EvidenceKind, mime: str | None) -> None:
    assert refusal(_incoming(kind, mime), LIMITS, files_so_far=0, bytes_so_far=0) is Refusal.TYPE


def test_size_and_count_limits() -> None:
    small = Limits(max_file_bytes=1 * MB)
    pdf = EvidenceKind.DOCUMENT, "application/pdf"
    assert refusal(_incoming(*pdf, 1_500_000), small, files_so_far=0, bytes_so_far=0) is (
        Refusal.TOO_BIG
    )
    assert refusal(_incoming(*pdf, 1000), LIMITS, files_so_far=20, bytes_so_far=0) is (
        Refusal.TOO_MANY
    )
    assert refusal(_incoming(*pdf, 2 * MB), LIMITS, files_so_far=5, bytes_so_far=99 * MB) is (
        Refusal.CASE_FULL
    )
    # file_size is optional: the real length is checked after the download.
    assert refusal(_incoming(*pdf, None), small, files_so_far=0, bytes_so_far=0) is None
    assert check_length(1_500_000, small, bytes_so_far=0) is Refusal.TOO_BIG
    assert check_length(MB, LIMITS, bytes_so_far=100 * MB - 10) is Refusal.CASE_FULL
    assert check_length(MB, LIMITS, bytes_so_far=0) is None
    assert small.limit_for(Refusal.TOO_BIG) == 1
    assert LIMITS.limit_for(Refusal.CASE_FULL) == 100
    assert LIMITS.limit_for(Refusal.TOO_MANY) == 20


def test_metadata_round_trips() -> None:
    meta = EvidenceMeta.of(
        Incoming(EvidenceKind.DOCUMENT, "x", "application/pdf", 10, "справка.pdf", "подпись"),
        10,
        {"author": "Врач"},
    )
    assert EvidenceMeta.from_bytes(meta.to_bytes()) == meta
    photo = EvidenceMeta.of(Incoming(EvidenceKind.PHOTO, "x", None, None), 5)
    assert photo.mime_type == "image/jpeg" and photo.delivery_name("abcd") == "photo-abcd.jpg"
    assert meta.delivery_name("abcd") == "справка.pdf"
    assert meta.capture == {"author": "Врач"} and photo.capture is None


def test_files_answers_are_validated() -> None:
    assert FILES is not None and ACCOUNT is not None
    one, two = _id(), _id()
    assert is_valid_answer(FILES, [one, two])
    assert is_valid_answer(FILES, SKIPPED)
    assert not is_valid_answer(FILES, [])
    assert not is_valid_answer(FILES, [one, one])
    assert not is_valid_answer(FILES, ["photos"])
    assert not is_valid_answer(FILES, [one.upper()])
    assert not is_valid_answer(FILES, [_id() for _ in range(MAX_EVIDENCE_FILES + 1)])
    assert not is_valid_answer(FILES, "_dk")
    assert is_valid_answer(ACCOUNT, {"evidence": one})
    assert not is_valid_answer(ACCOUNT, {"evidence": "nope"})
    other_text = QUESTIONNAIRE_V1.get("held_where")
    assert other_text is not None and not is_valid_answer(other_text, {"evidence": one})
    assert parse_text_answer(FILES, "hello") == Rejected(RejectReason.NEEDS_FILE)


def test_drafts_keep_files_answers_through_storage() -> None:
    one = _id()
    draft = Draft(answers={"evidence_files": [one], "account": {"evidence": one}})
    again = Draft.from_dict(draft.to_dict(), QUESTIONNAIRE_V1)
    assert again.answers == draft.answers


def test_evidence_ids_and_missing_files() -> None:
    one, two, three = _id(), _id(), _id()
    answers = {"account": {"evidence": one}, "evidence_files": [two, three]}
    assert evidence_ids(QUESTIONNAIRE_V1, answers) == [one, two, three]
    kept = drop_missing_evidence(QUESTIONNAIRE_V1, answers, frozenset({two}))
    assert kept == {"account": SKIPPED, "evidence_files": [two]}
    none = drop_missing_evidence(QUESTIONNAIRE_V1, answers, frozenset())
    assert none["evidence_files"] == SKIPPED


def _state_at(question: Question) -> IntakeState:
    state = IntakeState(phase=Phase.QUESTIONS, draft=start_draft(QUESTIONNAIRE_V1))
    state.draft = replace(state.draft, current_id=question.id)
    return state


def test_files_collect_until_done_and_done_without_files_skips() -> None:
    assert FILES is not None
    state = _state_at(FILES)
    one, two = _id(), _id()
    assert add_evidence(state, FILES, one) and add_evidence(state, FILES, two)
    assert state.draft.current_id == "evidence_files"
    assert state.draft.answers["evidence_files"] == [one, two]
    assert press_option(state, FILES, "_done") is None
    assert state.draft.current_id != "evidence_files"
    assert state.draft.answers["evidence_files"] == [one, two]

    empty = _state_at(FILES)
    assert press_option(empty, FILES, "_done") is None
    assert empty.draft.answers["evidence_files"] == SKIPPED
    assert not add_evidence(empty, FILES, "not-an-id")


def test_voice_answers_the_account_question() -> None:
    assert ACCOUNT is not None
    state = _state_at(ACCOUNT)
    one = _id()
    assert add_evidence(state, ACCOUNT, one)
    assert state.draft.answers["account"] == {"evidence": one}
    assert state.draft.current_id != "account"


def test_draft_case_key_round_trips_and_garbage_is_dropped() -> None:
    state = IntakeState()
    case_id, key = state.case_key()
    assert state.case_key() == (case_id, key)
    again = IntakeState.from_dict(state.to_dict())
    assert again.case_id == case_id and again.data_key == key
    sealed = key.seal(b"x", FieldContext("evidence_files", "blob_sealed", "a:b"))
    assert again.data_key is not None
    assert again.data_key.open(sealed, FieldContext("evidence_files", "blob_sealed", "a:b")) == b"x"
    broken = state.to_dict()
    broken["case"] = {"id": "zz", "key_id": "k", "key": "!!"}
    assert IntakeState.from_dict(broken).case_id is None
    assert IntakeState().to_dict().get("case") is None
    assert isinstance(DataKey.generate(), DataKey)
