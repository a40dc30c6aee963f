from __future__ import annotations

import json
import unicodedata
from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.questionnaire import (
    CALLBACK_BUDGET,
    CHOICE_TYPES,
    DONT_KNOW,
    QUESTIONNAIRE_V1,
    SECTION_TITLES,
    SKIPPED,
    Accepted,
    Condition,
    Draft,
    Option,
    Question,
    Questionnaire,
    QuestionType,
    Rejected,
    RejectReason,
    Section,
    Stage,
    callback_data,
    choose_option,
    clean_text,
    clear_hidden,
    finish_multi,
    first_question,
    first_unanswered,
    format_date_value,
    is_complete,
    is_relevant,
    is_urgent,
    is_valid_answer,
    next_question,
    option_labels,
    parse_text_answer,
    previous_question,
    progress,
    set_answer,
    summarise_for_review,
    toggle_multi,
    urgent_reasons,
    visible_questions,
)

Q = QUESTIONNAIRE_V1
TODAY = date(2026, 11, 20)


def question(qid: str) -> Question:
    found = Q.get(qid)
    assert found is not None, qid
    return found


def visible_ids(answers: dict[str, Any]) -> list[str]:
    return [item.id for item in visible_questions(Q, answers)]


def is_clean(text: str) -> bool:
    return all(ch == "\n" or unicodedata.category(ch) not in ("Cc", "Cs") for ch in text)


# --- the definition ---------------------------------------------------------------


def test_definition_is_valid_and_phone_sized() -> None:
    assert Q.version == "2026-11.2"
    assert 18 <= len(Q) <= 30
    ids = [item.id for item in Q.questions]
    assert len(ids) == len(set(ids))
    typed = [item for item in Q.questions if item.type is QuestionType.TEXT]
    # Mostly buttons; few free-text questions.
    assert len(typed) <= len(Q) // 3


def test_every_prompt_label_and_hint_is_non_empty() -> None:
    for item in Q.questions:
        assert item.prompt.strip()
        assert item.hint is None or item.hint.strip()
        for option in item.options:
            assert option.code and option.label.strip()
        if item.type in CHOICE_TYPES:
            assert len(item.options) >= 2
        else:
            assert not item.options
        if item.type is QuestionType.TEXT:
            assert item.max_length is not None and item.max_length > 0


def test_every_callback_fits_the_budget() -> None:
    for item in Q.questions:
        for code in item.codes | {SKIPPED, DONT_KNOW}:
            assert len(callback_data(item.id, code).encode()) <= CALLBACK_BUDGET


def test_sections_follow_the_review_order() -> None:
    order = list(Section)
    positions = [order.index(item.section) for item in Q.questions]
    assert positions == sorted(positions)
    assert {item.section for item in Q.questions} == set(Section)
    assert set(SECTION_TITLES) == set(Section)


def test_required_fields_from_the_brief() -> None:
    assert question("reporter").codes == {"victim", "relative", "witness", "other"}
    assert question("relation").codes == {"parent", "spouse", "sibling", "child", "other"}
    assert question("victim_name").max_length == 200
    assert question("held_where").max_length == 200
    assert question("place_town").max_length == 100
    assert question("officers_info").max_length == 500
    assert question("account").max_length == 3000
    assert question("trusted_contact").max_length == 200
    assert question("event_date").type is QuestionType.DATE
    assert question("event_date").allow_dont_know
    assert question("region").codes == {"dushanbe", "sughd", "khatlon", "gbao", "rrp", "abroad"}
    count = question("officers_count")
    assert (count.type, count.min_value, count.max_value) == (QuestionType.NUMBER, 1, 50)
    assert question("signed_statement").codes == {"yes", "no"}
    assert question("threats_now").urgent_if == {"yes"}
    assert question("acts").type is QuestionType.MULTI
    assert len(question("acts").options) == 12


def test_yes_no_gets_standard_options() -> None:
    item = Question("agreed", QuestionType.YES_NO, "Agree?")
    assert [option.code for option in item.options] == ["yes", "no"]


def _base_questions() -> list[Question]:
    return [
        Question("a", QuestionType.SINGLE, "A?", options=(Option("x", "X"), Option("y", "Y"))),
        Question("b", QuestionType.TEXT, "B?", max_length=10),
    ]


def test_condition_pointing_forward_is_rejected() -> None:
    first = Question(
        "first",
        QuestionType.TEXT,
        "First?",
        max_length=10,
        conditions=(Condition("a", frozenset({"x"})),),
    )
    with pytest.raises(ValueError, match="earlier"):
        Questionnaire("t", (first, *_base_questions()))


def test_condition_to_unknown_question_or_code_is_rejected() -> None:
    ghost = Question(
        "c",
        QuestionType.TEXT,
        "C?",
        max_length=10,
        conditions=(Condition("zzz", frozenset({"x"})),),
    )
    with pytest.raises(ValueError, match="earlier"):
        Questionnaire("t", (*_base_questions(), ghost))
    bad_code = Question(
        "c",
        QuestionType.TEXT,
        "C?",
        max_length=10,
        conditions=(Condition("a", frozenset({"nope"})),),
    )
    with pytest.raises(ValueError, match="unknown codes"):
        Questionnaire("t", (*_base_questions(), bad_code))


def test_condition_on_text_question_is_rejected() -> None:
    on_text = Question(
        "c", QuestionType.TEXT, "C?", max_length=10, conditions=(Condition("b", frozenset({"x"})),)
    )
    with pytest.raises(ValueError, match="non-choice"):
        Questionnaire("t", (*_base_questions(), on_text))


def test_self_condition_is_rejected() -> None:
    selfish = Question(
        "s",
        QuestionType.SINGLE,
        "S?",
        options=(Option("x", "X"), Option("y", "Y")),
        conditions=(Condition("s", frozenset({"x"})),),
    )
    with pytest.raises(ValueError, match="earlier"):
        Questionnaire("t", (selfish,))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Questionnaire("t", (*_base_questions(), *_base_questions())), "duplicate"),
        (lambda: Questionnaire("", tuple(_base_questions())), "version"),
        (lambda: Questionnaire("t", ()), "no questions"),
        (lambda: Question("b", QuestionType.TEXT, "B?"), "max_length"),
        (
            lambda: Question("b", QuestionType.SINGLE, "B?", options=(Option("x", "X"),)),
            "two options",
        ),
        (
            lambda: Question(
                "b", QuestionType.SINGLE, "B?", options=(Option("x", "X"), Option("x", "Y"))
            ),
            "duplicate option",
        ),
        (lambda: Question("b", QuestionType.TEXT, "", max_length=5), "empty prompt"),
        (lambda: Question("B-1", QuestionType.TEXT, "B?", max_length=5), "invalid question id"),
        (lambda: Question("a" * 17, QuestionType.TEXT, "B?", max_length=5), "invalid question"),
        (lambda: Question("b", QuestionType.NUMBER, "B?"), "min_value and max_value"),
        (
            lambda: Question("b", QuestionType.NUMBER, "B?", min_value=5, max_value=1),
            "min_value > max_value",
        ),
        (
            lambda: Question("b", QuestionType.YES_NO, "B?", options=(Option("x", "X"),)),
            "automatically",
        ),
        (
            lambda: Question(
                "b", QuestionType.TEXT, "B?", max_length=5, urgent_if=frozenset({"x"})
            ),
            "urgent_if",
        ),
        (
            lambda: Question(
                "b",
                QuestionType.SINGLE,
                "B?",
                options=(Option("x", "X", exclusive=True), Option("y", "Y")),
            ),
            "exclusive",
        ),
        (lambda: Option("_skip", "Skip"), "invalid option code"),
        (lambda: Option("Bad", "Label"), "invalid option code"),
        (lambda: Option("x" * 17, "Label"), "invalid option code"),
        (lambda: Option("x", " "), "empty label"),
        (lambda: Condition("a", frozenset()), "no codes"),
    ],
)
def test_invalid_definitions_raise(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_get_tolerates_unknown_and_garbage_ids() -> None:
    assert Q.get("reporter") is question("reporter")
    assert Q.get("nope") is None
    assert Q.get([]) is None  # type: ignore[arg-type]
    assert "reporter" in Q and "nope" not in Q and 5 not in Q


# --- visibility, navigation, progress ----------------------------------------------


def test_relation_only_if_relative() -> None:
    assert "relation" not in visible_ids({})
    assert "relation" not in visible_ids({"reporter": "witness"})
    assert "relation" in visible_ids({"reporter": "relative"})
    assert is_relevant(Q, question("relation"), {"reporter": "relative"})
    assert not is_relevant(Q, question("relation"), {"reporter": "victim"})


def test_victim_is_not_asked_whether_they_agree() -> None:
    assert "victim_agrees" not in visible_ids({"reporter": "victim"})
    assert "victim_agrees" in visible_ids({"reporter": "relative"})


def test_detention_place_only_if_detained() -> None:
    assert "held_where" not in visible_ids({})
    assert "held_where" not in visible_ids({"situation": "released"})
    assert "held_where" not in visible_ids({"situation": DONT_KNOW})
    assert "held_where" in visible_ids({"situation": "detained"})


def test_contact_questions_follow_the_contact_choice() -> None:
    by_chat = visible_ids({"contact_how": "chat"})
    assert "contact_time" in by_chat and "write_first" in by_chat
    assert "trusted_contact" not in by_chat
    trusted = visible_ids({"contact_how": "trusted"})
    assert "contact_time" in trusted and "trusted_contact" in trusted
    assert "write_first" not in trusted
    none = visible_ids({"contact_how": "none"})
    assert not {"contact_time", "write_first", "trusted_contact"} & set(none)


def test_malformed_answer_counts_as_absent_for_conditions() -> None:
    assert "relation" not in visible_ids({"reporter": ["relative"]})
    assert "relation" not in visible_ids({"reporter": "RELATIVE"})
    assert "relation" not in visible_ids({"reporter": {"x": 1}})


def test_progress_changes_with_visibility() -> None:
    base = len(visible_ids({}))
    assert progress(Q, {}, "reporter") == (1, base)
    as_victim = {"reporter": "victim"}
    assert progress(Q, as_victim, "victim_name") == (2, base)
    as_relative = {"reporter": "relative"}
    assert progress(Q, as_relative, "relation") == (2, base + 2)
    assert progress(Q, as_relative, "victim_agrees") == (3, base + 2)
    assert progress(Q, as_relative, "victim_name") == (4, base + 2)
    detained = {"reporter": "relative", "situation": "detained"}
    pos, total = progress(Q, detained, "held_where")
    assert total == base + 3
    assert pos == visible_ids(detained).index("held_where") + 1
    assert progress(Q, {}, "nope") == (0, base)
    last = visible_ids({})[-1]
    assert progress(Q, {}, last) == (base, base)


def test_next_and_previous_follow_visible_order() -> None:
    assert first_question(Q, {}) == question("reporter")
    assert next_question(Q, {"reporter": "victim"}, "reporter") == question("victim_name")
    assert next_question(Q, {"reporter": "relative"}, "reporter") == question("relation")
    assert next_question(Q, {"reporter": "witness"}, "reporter") == question("victim_agrees")
    assert previous_question(Q, {"reporter": "victim"}, "victim_name") == question("reporter")
    assert previous_question(Q, {"reporter": "relative"}, "victim_agrees") == question("relation")
    assert previous_question(Q, {}, "reporter") is None
    assert next_question(Q, {"situation": "released"}, "situation") == question("event_date")
    assert next_question(Q, {"situation": "detained"}, "situation") == question("held_where")
    assert next_question(Q, {"contact_how": "none"}, "contact_how") is None
    assert next_question(Q, {}, "nope") is None
    assert previous_question(Q, {}, "nope") is None


def test_walking_forward_and_back_visits_each_visible_question_once() -> None:
    answers = {"reporter": "relative", "situation": "detained", "contact_how": "trusted"}
    forward = []
    current = first_question(Q, answers)
    while current is not None:
        forward.append(current.id)
        current = next_question(Q, answers, current.id)
    assert forward == visible_ids(answers)
    backward = []
    current = question(forward[-1])
    while current is not None:
        backward.append(current.id)
        current = previous_question(Q, answers, current.id)
    assert backward == list(reversed(forward))


def test_first_unanswered_resumes_after_answers_and_skips() -> None:
    assert first_unanswered(Q, {}) == question("reporter")
    answers = {"reporter": "victim", "victim_name": SKIPPED}
    assert first_unanswered(Q, answers) == question("sex")
    # Changing an answer from review reveals a new question to ask.
    everything = {item.id: SKIPPED for item in visible_questions(Q, {})}
    everything.update({"reporter": "victim", "contact_how": "none"})
    assert first_unanswered(Q, everything) is None
    assert first_unanswered(Q, {**everything, "reporter": "relative"}) == question("relation")


# --- urgency ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "reason"),
    [
        ({"situation": "detained"}, "situation"),
        ({"age_group": "under_18"}, "age_group"),
        ({"injuries": "urgent_help"}, "injuries"),
        ({"threats_now": "yes"}, "threats_now"),
    ],
)
def test_each_urgent_trigger(answers: dict[str, Any], reason: str) -> None:
    assert is_urgent(Q, answers)
    assert urgent_reasons(Q, answers) == [reason]


@pytest.mark.parametrize(
    "answers",
    [
        {},
        {"situation": "released", "age_group": "18_30"},
        {"injuries": "injured", "threats_now": "no"},
        {"situation": DONT_KNOW, "age_group": SKIPPED, "threats_now": DONT_KNOW},
        {"situation": ["detained"]},
        {"threats_now": "YES"},
        {"victim_agrees": "cannot_ask", "reporter": "relative"},
    ],
)
def test_not_urgent_otherwise(answers: dict[str, Any]) -> None:
    assert not is_urgent(Q, answers)
    assert urgent_reasons(Q, answers) == []


def test_all_urgent_reasons_in_order() -> None:
    answers = {
        "age_group": "under_18",
        "situation": "detained",
        "injuries": "urgent_help",
        "threats_now": "yes",
    }
    assert urgent_reasons(Q, answers) == ["age_group", "situation", "injuries", "threats_now"]


# --- parsing ------------------------------------------------------------------------


def test_text_is_cleaned_and_bounded() -> None:
    name = question("victim_name")
    assert parse_text_answer(name, "  Ҷамшед\x00 Раҳимов\u202e \n") == Accepted("Ҷамшед Раҳимов")
    assert parse_text_answer(name, "line one\r\nline two\tend") == Accepted(
        "line one\nline two end"
    )
    assert parse_text_answer(name, "   \n\t ") == Rejected(RejectReason.EMPTY)
    assert parse_text_answer(name, "\x00\x01") == Rejected(RejectReason.EMPTY)
    assert parse_text_answer(name, "\u200b \u200d") == Rejected(RejectReason.EMPTY)
    assert is_valid_answer(name, "Ҷамшед")
    assert not is_valid_answer(name, " Ҷамшед")
    assert not is_valid_answer(name, "")
    assert not is_valid_answer(name, "x" * 201)
    assert parse_text_answer(name, "x" * 200) == Accepted("x" * 200)
    assert parse_text_answer(name, "x" * 201) == Rejected(RejectReason.TOO_LONG)
    assert parse_text_answer(name, "ok\ud800") == Accepted("ok")
    # Internal whitespace is kept as typed.
    assert parse_text_answer(name, "a  b\n\nc") == Accepted("a  b\n\nc")


def test_choice_questions_need_buttons() -> None:
    for qid in ("reporter", "acts", "threats_now"):
        assert parse_text_answer(question(qid), "да") == Rejected(RejectReason.NEEDS_BUTTON)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3", Accepted(3)),
        (" 12 ", Accepted(12)),
        ("1 0", Accepted(10)),
        ("50", Accepted(50)),
        ("0", Rejected(RejectReason.OUT_OF_RANGE)),
        ("51", Rejected(RejectReason.OUT_OF_RANGE)),
        ("99999999999999999999999", Rejected(RejectReason.OUT_OF_RANGE)),
        ("9" * 5000, Rejected(RejectReason.NOT_A_NUMBER)),
        ("five", Rejected(RejectReason.NOT_A_NUMBER)),
        ("-3", Rejected(RejectReason.NOT_A_NUMBER)),
        ("3.5", Rejected(RejectReason.NOT_A_NUMBER)),
        ("٣", Rejected(RejectReason.NOT_A_NUMBER)),
        ("²", Rejected(RejectReason.NOT_A_NUMBER)),
        ("", Rejected(RejectReason.EMPTY)),
    ],
)
def test_number_parsing(text: str, expected: Any) -> None:
    assert parse_text_answer(question("officers_count"), text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("14.03.2025", {"precision": "day", "value": "2025-03-14"}),
        ("14/03/2025", {"precision": "day", "value": "2025-03-14"}),
        ("2025-03-14", {"precision": "day", "value": "2025-03-14"}),
        ("4.3.2025", {"precision": "day", "value": "2025-03-04"}),
        ("03.2025", {"precision": "month", "value": "2025-03"}),
        ("3.2025", {"precision": "month", "value": "2025-03"}),
        ("2025", {"precision": "year", "value": "2025"}),
        ("2025 г.", {"precision": "year", "value": "2025"}),
        ("20.11.2026", {"precision": "day", "value": "2026-11-20"}),
        ("11.2026", {"precision": "month", "value": "2026-11"}),
        ("1950", {"precision": "year", "value": "1950"}),
    ],
)
def test_dates_accepted(text: str, expected: dict[str, str]) -> None:
    result = parse_text_answer(question("event_date"), text, today=TODAY)
    assert result == Accepted(expected)
    assert is_valid_answer(question("event_date"), expected)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("31.02.2025", RejectReason.NOT_A_DATE),
        ("32.01.2025", RejectReason.NOT_A_DATE),
        ("13.2025", RejectReason.NOT_A_DATE),
        ("14.13.2025", RejectReason.NOT_A_DATE),
        ("yesterday", RejectReason.NOT_A_DATE),
        ("14.03.25", RejectReason.NOT_A_DATE),
        ("1" * 1000, RejectReason.NOT_A_DATE),
        ("21.11.2026", RejectReason.FUTURE_DATE),
        ("12.2026", RejectReason.FUTURE_DATE),
        ("2027", RejectReason.FUTURE_DATE),
        ("1949", RejectReason.OUT_OF_RANGE),
        ("01.01.1900", RejectReason.OUT_OF_RANGE),
        ("  ", RejectReason.EMPTY),
    ],
)
def test_dates_rejected(text: str, reason: RejectReason) -> None:
    assert parse_text_answer(question("event_date"), text, today=TODAY) == Rejected(reason)


def test_date_display() -> None:
    assert format_date_value({"precision": "day", "value": "2025-03-14"}) == "14.03.2025"
    assert format_date_value({"precision": "month", "value": "2025-03"}) == "03.2025"
    assert format_date_value({"precision": "year", "value": "2025"}) == "2025"
    assert format_date_value({"precision": "day", "value": "2025-02-30"}) is None
    assert format_date_value("2025") is None


# --- buttons ------------------------------------------------------------------------


def test_choose_option_validates_codes() -> None:
    reporter = question("reporter")
    assert choose_option(reporter, "relative") == Accepted("relative")
    assert choose_option(reporter, "admin") == Rejected(RejectReason.INVALID_CHOICE)
    assert choose_option(reporter, "") == Rejected(RejectReason.INVALID_CHOICE)
    assert choose_option(reporter, SKIPPED) == Accepted(SKIPPED)
    assert choose_option(replace(reporter, required=True), SKIPPED) == Rejected(
        RejectReason.REQUIRED
    )
    assert choose_option(reporter, DONT_KNOW) == Rejected(RejectReason.INVALID_CHOICE)
    assert choose_option(reporter, None) == Rejected(  # type: ignore[arg-type]
        RejectReason.INVALID_CHOICE
    )
    age = question("age_group")
    assert choose_option(age, SKIPPED) == Accepted(SKIPPED)
    assert choose_option(age, DONT_KNOW) == Accepted(DONT_KNOW)
    # A code of another question is forged for this one.
    assert choose_option(age, "detained") == Rejected(RejectReason.INVALID_CHOICE)
    # Text questions have only Skip / I don't know buttons.
    assert choose_option(question("held_where"), DONT_KNOW) == Accepted(DONT_KNOW)
    assert choose_option(question("held_where"), "yes") == Rejected(RejectReason.INVALID_CHOICE)
    assert choose_option(question("threats_now"), "yes") == Accepted("yes")


def test_toggle_multi_is_sorted_validated_and_exclusive() -> None:
    acts = question("acts")
    selected = toggle_multi(acts, None, "threats")
    selected = toggle_multi(acts, selected, "beating")
    assert selected == ["beating", "threats"]
    assert toggle_multi(acts, selected, "beating") == ["threats"]
    assert toggle_multi(acts, selected, "forged") == selected
    assert toggle_multi(acts, ["bogus", "beating", "beating"], "electric") == [
        "beating",
        "electric",
    ]
    assert toggle_multi(acts, SKIPPED, "beating") == ["beating"]  # type: ignore[arg-type]
    evidence = question("evidence")
    assert toggle_multi(evidence, ["photos", "court"], "none") == ["none"]
    assert toggle_multi(evidence, ["none"], "photos") == ["photos"]
    assert toggle_multi(question("reporter"), [], "victim") == []


def test_finish_multi() -> None:
    acts = question("acts")
    assert finish_multi(acts, ["threats", "beating"]) == Accepted(["beating", "threats"])
    assert finish_multi(acts, []) == Rejected(RejectReason.EMPTY)
    assert finish_multi(acts, ["forged"]) == Rejected(RejectReason.EMPTY)
    assert finish_multi(question("reporter"), ["victim"]) == Rejected(RejectReason.INVALID_CHOICE)


def test_option_labels_in_display_order() -> None:
    acts = question("acts")
    labels = option_labels(acts, ["beating", "threats"])
    assert labels == [acts.options[0].label, acts.options[6].label]
    assert option_labels(acts, SKIPPED) == []


# --- answers as a whole -------------------------------------------------------------


def test_set_answer_returns_a_new_dict() -> None:
    answers: dict[str, Any] = {"reporter": "victim"}
    updated = set_answer(answers, "sex", "female")
    assert answers == {"reporter": "victim"}
    assert updated == {"reporter": "victim", "sex": "female"}
    codes = ["beating"]
    stored = set_answer(updated, "acts", codes)
    codes.append("electric")
    assert stored["acts"] == ["beating"]


def test_clear_hidden_drops_hidden_unknown_and_malformed() -> None:
    answers = {
        "reporter": "witness",
        "relation": "parent",
        "situation": "released",
        "held_where": "SIZO 1",
        "contact_how": "none",
        "write_first": "yes",
        "ghost": "x",
        "sex": "robot",
        "age_group": SKIPPED,
    }
    assert clear_hidden(Q, answers) == {
        "reporter": "witness",
        "situation": "released",
        "contact_how": "none",
        "age_group": SKIPPED,
    }


def test_every_question_of_the_intake_can_be_skipped() -> None:
    assert not [item.id for item in Q.questions if item.required]
    assert is_complete(Q, {})


def test_is_complete_needs_required_answers() -> None:
    strict = Questionnaire(
        version="t",
        questions=(
            Question(
                id="who",
                type=QuestionType.SINGLE,
                prompt="Who?",
                options=(Option("a", "A"), Option("b", "B")),
                required=True,
            ),
            Question(id="note", type=QuestionType.TEXT, prompt="Note?", max_length=10),
        ),
    )
    assert not is_complete(strict, {})
    assert not is_complete(strict, {"who": SKIPPED})
    assert is_complete(strict, {"who": "a"})


def test_summary_in_order_with_skips() -> None:
    answers = {
        "contact_how": "chat",
        "reporter": "relative",
        "relation": "parent",
        "sex": SKIPPED,
        "acts": ["beating"],
        "held_where": "hidden, not detained",
        "officers_count": 3,
        "event_date": {"precision": "year", "value": "2025"},
    }
    items = summarise_for_review(Q, answers)
    assert [item.question.id for item in items] == [
        "reporter",
        "relation",
        "sex",
        "event_date",
        "officers_count",
        "acts",
        "contact_how",
    ]
    assert items[2].value == SKIPPED
    assert items[0].section is Section.REPORTER
    assert items[-1].section is Section.CONTACT


# --- Draft --------------------------------------------------------------------------


def test_draft_round_trip_through_json() -> None:
    draft = Draft(
        answers={
            "reporter": "relative",
            "acts": ["beating", "electric"],
            "officers_count": 4,
            "event_date": {"precision": "month", "value": "2025-03"},
            "sex": SKIPPED,
        },
        current_id="situation",
        stage=Stage.REVIEW,
        editing_from_review=True,
        version=Q.version,
    )
    restored = Draft.from_dict(json.loads(json.dumps(draft.to_dict())))
    assert restored == draft
    assert Draft.from_dict(draft.to_dict(), Q) == draft


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        42,
        "draft",
        [],
        {"answers": "nope", "stage": 7, "current_id": ["x"]},
        {"stage": None, "editing_from_review": "yes"},
        {"answers": {1: "x", "reporter": object(), "acts": [1, 2]}},
        {"answers": {"reporter": True, "officers_count": 10**100}},
        {"current_id": "../../etc", "version": 5},
    ],
)
def test_draft_from_garbage_is_fresh(garbage: Any) -> None:
    draft = Draft.from_dict(garbage)
    assert draft.answers == {}
    assert draft.current_id is None
    assert draft.stage is Stage.QUESTION
    assert draft.editing_from_review is False
    json.dumps(draft.to_dict())


def test_draft_keeps_what_is_valid_and_drops_the_rest() -> None:
    data = {
        "answers": {"reporter": "relative", "sex": "robot", "gone": "x", "acts": ["zzz"]},
        "current_id": "gone",
        "stage": "review",
        "extra": {"unknown": "key"},
    }
    draft = Draft.from_dict(data, Q)
    assert draft.answers == {"reporter": "relative"}
    assert draft.current_id is None
    assert draft.stage is Stage.REVIEW
    assert draft.version == Q.version


# --- properties ---------------------------------------------------------------------

_QUESTIONS = st.sampled_from(Q.questions)

_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from([SKIPPED, DONT_KNOW, "yes", "no", "detained", "under_18", "relative"]),
)
_json_value = st.recursive(
    _json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=10), inner, max_size=4),
    ),
    max_leaves=10,
)


def _plausible_value(item: Question) -> st.SearchStrategy[Any]:
    codes = sorted(item.codes) or ["x"]
    return st.one_of(
        st.sampled_from([*codes, SKIPPED, DONT_KNOW]),
        st.lists(st.sampled_from(codes), max_size=4),
        _json_value,
    )


_answers = st.one_of(
    st.dictionaries(
        st.one_of(st.sampled_from([item.id for item in Q.questions]), st.text(max_size=16)),
        _json_value,
        max_size=12,
    ),
    st.fixed_dictionaries(
        {},
        optional={item.id: _plausible_value(item) for item in Q.questions},
    ),
)


# Surrogates and control characters included: Telegram should not send them, but
# nothing guarantees what arrives.
_any_text = st.text(alphabet=st.characters(exclude_categories=()), max_size=4000)


@given(item=_QUESTIONS, text=_any_text)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_parse_never_raises_and_accepted_text_is_clean(item: Question, text: str) -> None:
    result = parse_text_answer(item, text, today=TODAY)
    assert isinstance(result, Accepted | Rejected)
    if isinstance(result, Accepted):
        assert is_valid_answer(item, result.value)
        if item.type is QuestionType.TEXT:
            assert isinstance(result.value, str)
            assert item.max_length is not None and len(result.value) <= item.max_length
            assert result.value and is_clean(result.value)
            assert result.value == result.value.strip()
            assert parse_text_answer(item, result.value) == result


@given(text=st.text(alphabet=st.characters(exclude_categories=()), max_size=300))
def test_clean_text_is_idempotent(text: str) -> None:
    once = clean_text(text)
    assert clean_text(once) == once
    assert is_clean(once)


def _clean_text_by_category(text: str) -> str:
    """The definition clean_text's regex must agree with, character by character."""
    import unicodedata

    text = text.replace("\r\n", "\n").translate(
        str.maketrans({"\r": "\n", "\x85": "\n", "\u2028": "\n", "\u2029": "\n"})
    )
    text = text.replace("\t", " ")
    bidi = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    kept = "".join(
        ch
        for ch in text
        if ch == "\n" or (ch not in bidi and unicodedata.category(ch) not in ("Cc", "Cs"))
    )
    return unicodedata.normalize("NFC", kept).strip()


@given(text=st.text(alphabet=st.characters(exclude_categories=()), max_size=300))
def test_clean_text_drops_exactly_the_control_surrogate_and_bidi_characters(text: str) -> None:
    assert clean_text(text) == _clean_text_by_category(text)


def test_clean_text_agrees_with_the_categories_over_every_code_point() -> None:
    every = "".join(map(chr, range(0x110000)))  # lone surrogates included
    assert clean_text("a" + every + "z") == _clean_text_by_category("a" + every + "z")


@given(text=st.text(alphabet=st.sampled_from("0123456789./- гс\u00a0"), max_size=16))
def test_date_like_input_never_raises(text: str) -> None:
    result = parse_text_answer(question("event_date"), text, today=TODAY)
    if isinstance(result, Accepted):
        assert isinstance(result.value, dict)
        assert result.value["value"] <= TODAY.isoformat()[: len(result.value["value"])]


@given(item=_QUESTIONS, code=st.one_of(st.text(max_size=20), st.none(), st.integers()))
def test_forged_codes_never_raise(item: Question, code: Any) -> None:
    result = choose_option(item, code)
    if isinstance(result, Accepted):
        assert result.value in item.codes | {SKIPPED, DONT_KNOW}
    toggled = toggle_multi(item, [code] if isinstance(code, str) else None, code)
    assert toggled == sorted(set(toggled))
    assert set(toggled) <= item.codes


@given(answers=_answers, qid=st.one_of(st.sampled_from([i.id for i in Q.questions]), st.text()))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_engine_never_raises_on_random_answers(answers: dict[str, Any], qid: str) -> None:
    shown = visible_questions(Q, answers)
    assert [item.id for item in shown] == [
        item.id for item in Q.questions if is_relevant(Q, item, answers)
    ]
    position, total = progress(Q, answers, qid)
    assert total == len(shown)
    assert 0 <= position <= max(total, 1)
    following = next_question(Q, answers, qid)
    preceding = previous_question(Q, answers, qid)
    for neighbour in (following, preceding):
        assert neighbour is None or neighbour in shown
    first_question(Q, answers)
    first_unanswered(Q, answers)
    cleaned = clear_hidden(Q, answers)
    assert set(cleaned) <= {item.id for item in shown}
    assert clear_hidden(Q, cleaned) == cleaned
    json.dumps(cleaned)
    reasons = urgent_reasons(Q, answers)
    assert is_urgent(Q, answers) == bool(reasons)
    assert urgent_reasons(Q, cleaned) == reasons
    assert is_complete(Q, answers) == is_complete(Q, cleaned)
    summary = summarise_for_review(Q, answers)
    assert [item.question.id for item in summary] == list(cleaned)
    draft = Draft.from_dict({"answers": answers, "current_id": qid, "stage": "review"}, Q)
    assert all(draft.answers.get(key) == value for key, value in cleaned.items())
    assert all(is_valid_answer(question(key), value) for key, value in draft.answers.items())
    assert draft.current_id is None or draft.current_id in Q
    json.dumps(draft.to_dict())


@given(data=_json_value)
def test_draft_from_any_json_never_raises(data: Any) -> None:
    draft = Draft.from_dict(data)
    json.dumps(draft.to_dict())
    assert Draft.from_dict(draft.to_dict()) == draft
