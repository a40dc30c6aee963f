"""Paths through the questionnaire: Back, Skip, changes from the review, hidden
questions, urgency, a restart in the middle, /cancel, /language and /help."""

from __future__ import annotations

from bot.questionnaire import SKIPPED
from bot.text import N_
from devkit.sandbox import Sandbox
from devkit.scripted_reporter import ScriptedReporter, t
from handlers.reporter.render import TICK, language_screen
from storage.models import Case, FsmRecord
from tests.e2e.conftest import COORDINATOR_ID
from tests.e2e.helpers import (
    back_label,
    count_rows,
    labels_of,
    option_label,
    question,
    review_entries,
    stored_case,
)
from tests.e2e.staff_helpers import STAFF_LANGUAGE

# --- Skip, Back and changes from the review ---------------------------------------


async def test_back_skip_and_change_from_review(sandbox: Sandbox) -> None:
    lang = "ru"
    user = sandbox.user(710_001)
    reporter = ScriptedReporter(user, lang)
    await reporter.open()

    # The first question has nowhere to go back to.
    assert reporter.question_on_screen() == question("reporter")
    assert not any(back_label(lang) in row for row in user.buttons())
    await reporter.answer(question("reporter"), "relative")
    await reporter.answer(question("relation"), "parent")
    assert reporter.question_on_screen() == question("victim_agrees")

    # Back one question, re-answer it, and carry on from there.
    await user.press(back_label(lang))
    assert reporter.question_on_screen() == question("relation")
    await reporter.answer(question("relation"), "sibling")
    assert reporter.question_on_screen() == question("victim_agrees")
    await reporter.fill({"victim_name": "Азиз", "situation": "released", "agency": ["police"]})

    entries = review_entries(reporter)
    assert entries["relation"].value == t(N_("Sister or brother"), lang)
    assert entries["victim_agrees"].value == t(N_("(skipped)"), lang)
    assert entries["victim_name"].value == "Азиз"

    # "← Back" on the review goes to the last question; answering it returns.
    await user.press(back_label(lang))
    assert reporter.question_on_screen() == question("contact_how")
    await reporter.answer(question("contact_how"), "none")
    assert review_entries(reporter)["contact_how"].value == t(N_("Do not contact me"), lang)

    # Change an answer by its number: the review comes back with the new value.
    await user.press(review_entries(reporter)["relation"].number)
    assert reporter.question_on_screen() == question("relation")
    await reporter.answer(question("relation"), "spouse")
    entries = review_entries(reporter)
    assert entries["relation"].value == t(N_("Wife or husband"), lang)
    assert t(N_("Sister or brother"), lang) not in (user.last_text() or "")

    # A typed answer too.
    await user.press(entries["victim_name"].number)
    assert reporter.question_on_screen() == question("victim_name")
    await user.send_text("Азиз Каримов")
    entries = review_entries(reporter)
    assert entries["victim_name"].value == "Азиз Каримов"

    # A multiple choice shows what was chosen; untick it, tick another.
    police, gknb = (option_label("agency", code, lang) for code in ("police", "gknb"))
    assert entries["agency"].value == police
    await user.press(entries["agency"].number)
    assert f"{TICK} {police}" in labels_of(user)
    await user.press(f"{TICK} {police}")
    await user.press(gknb)
    assert f"{TICK} {gknb}" in labels_of(user)
    assert police in labels_of(user)
    await reporter.press(N_("Done"))
    assert review_entries(reporter)["agency"].value == gknb

    reference = await reporter.submit()
    _, answers = await stored_case(sandbox, reference)
    assert answers["reporter"] == "relative"
    assert answers["relation"] == "spouse"
    assert answers["victim_agrees"] == SKIPPED
    assert answers["victim_name"] == "Азиз Каримов"
    assert answers["situation"] == "released"
    assert answers["contact_how"] == "none"
    assert answers["agency"] == ["gknb"]


# --- questions hidden by their conditions ----------------------------------------

_CONTACT_QUESTIONS = {"contact_time", "write_first", "trusted_contact"}

# (plan, questions that must be asked, questions that must not be)
HIDING_PLANS: list[tuple[dict[str, str], set[str], set[str]]] = [
    (
        {"reporter": "witness", "situation": "released", "contact_how": "none"},
        {"victim_agrees"},
        {"relation", "held_where", *_CONTACT_QUESTIONS},
    ),
    (
        {
            "reporter": "relative",
            "relation": "parent",
            "situation": "detained",
            "held_where": "ИВС Хуҷанд",
            "contact_how": "trusted",
            "contact_time": "morning",
            "trusted_contact": "Гулнора, +992 900 00 00 00",
        },
        {"relation", "victim_agrees", "held_where", "contact_time", "trusted_contact"},
        {"write_first"},
    ),
    (
        {"reporter": "victim", "contact_how": "chat", "write_first": "no"},
        {"contact_time", "write_first"},
        {"relation", "victim_agrees", "held_where", "trusted_contact"},
    ),
]


async def test_hidden_questions_are_not_asked_or_stored(sandbox: Sandbox) -> None:
    for number, (plan, shown, hidden) in enumerate(HIDING_PLANS):
        reporter = ScriptedReporter(sandbox.user(710_010 + number), "tg")
        await reporter.open()
        await reporter.fill(plan)
        asked = set(reporter.asked)
        assert shown <= asked, (plan, asked)
        assert not hidden & asked, (plan, asked)
        assert not hidden & set(review_entries(reporter)), plan
        reference = await reporter.submit()
        _, answers = await stored_case(sandbox, reference)
        # What was asked is exactly what is stored (Skip included), nothing hidden.
        assert set(answers) == asked, plan
        assert {key: answers[key] for key in plan if key not in hidden} == {
            key: value for key, value in plan.items() if key not in hidden
        }


async def test_changes_at_the_review_show_and_hide_questions(sandbox: Sandbox) -> None:
    lang = "tg"
    user = sandbox.user(710_020)
    reporter = ScriptedReporter(user, lang)
    await reporter.open()
    await reporter.fill({"reporter": "victim", "situation": "detained", "held_where": "СИЗО-1"})
    assert "relation" not in reporter.asked
    assert "relation" not in review_entries(reporter)
    assert review_entries(reporter)["held_where"].value == "СИЗО-1"

    # victim -> relative shows two questions not asked yet: they come first,
    # then the review again.
    await user.press(review_entries(reporter)["reporter"].number)
    await reporter.answer(question("reporter"), "relative")
    assert reporter.question_on_screen() == question("relation")
    await reporter.answer(question("relation"), "child")
    assert reporter.question_on_screen() == question("victim_agrees")
    await reporter.answer(question("victim_agrees"), "no")
    entries = review_entries(reporter)
    assert entries["relation"].value == t(N_("Daughter or son"), lang)
    assert entries["victim_agrees"].value == t(N_("No"), lang)

    # relative -> witness hides "relation"; nothing new to ask, so straight back.
    await user.press(entries["reporter"].number)
    await reporter.answer(question("reporter"), "witness")
    entries = review_entries(reporter)
    assert "relation" not in entries
    assert entries["victim_agrees"].value == t(N_("No"), lang)

    # detained -> released hides "held_where".
    await user.press(entries["situation"].number)
    await reporter.answer(question("situation"), "released")
    assert "held_where" not in review_entries(reporter)

    reference = await reporter.submit()
    _, answers = await stored_case(sandbox, reference)
    assert answers["reporter"] == "witness"
    assert answers["victim_agrees"] == "no"
    assert answers["situation"] == "released"
    assert "relation" not in answers
    assert "held_where" not in answers


# --- the urgent flag ---------------------------------------------------------------

URGENT_NOTICE = N_("URGENT: new case {reference}. Open it with /case {reference}")
NEW_NOTICE = N_("New case {reference}. Open it with /case {reference}")


# (plan, expected urgent flag): each trigger alone, and near misses of all of them.
URGENT_PLANS: list[tuple[dict[str, str], bool]] = [
    ({"situation": "detained"}, True),
    ({"age_group": "under_18"}, True),
    ({"injuries": "urgent_help"}, True),
    ({"threats_now": "yes"}, True),
    (
        {"age_group": "18_30", "situation": "released", "injuries": "injured", "threats_now": "no"},
        False,
    ),
]


async def test_urgent_flag_and_coordinator_notice(sandbox: Sandbox) -> None:
    coordinator = sandbox.user(COORDINATOR_ID)
    expected_notices: list[str] = []
    for number, (plan, urgent) in enumerate(URGENT_PLANS):
        reporter = ScriptedReporter(sandbox.user(710_030 + number), "ru")
        await reporter.open()
        await reporter.fill(plan)
        reference = await reporter.submit()

        case, answers = await stored_case(sandbox, reference)
        assert case.urgent is urgent, plan
        assert {key: answers[key] for key in plan} == plan

        # The coordinator never wrote: notices are in the staff default, Russian.
        template = URGENT_NOTICE if urgent else NEW_NOTICE
        other = NEW_NOTICE if urgent else URGENT_NOTICE
        expected = t(template, STAFF_LANGUAGE).format(reference=reference)
        assert expected != t(other, STAFF_LANGUAGE).format(reference=reference)
        expected_notices.append(expected)

    await sandbox.server.wait_for(
        lambda _server: len(coordinator.visible_messages()) >= len(expected_notices), timeout=10
    )
    assert sorted(m.body or "" for m in coordinator.visible_messages()) == sorted(expected_notices)


# --- a restart in the middle ------------------------------------------------------


async def test_restart_in_the_middle_resumes_at_the_same_question(sandbox: Sandbox) -> None:
    lang = "tg"
    user = sandbox.user(710_040)
    reporter = ScriptedReporter(user, lang)
    await reporter.open()
    await reporter.answer(question("reporter"), "relative")
    await reporter.answer(question("relation"), "spouse")
    await reporter.answer(question("victim_agrees"), "cannot_ask")
    await reporter.answer(question("victim_name"), "Шерзод")
    await reporter.answer(question("sex"), "male")
    assert reporter.question_on_screen() == question("age_group")

    await sandbox.restart()

    await user.send_command("/start")
    assert t(N_("Continue"), lang) in labels_of(user)
    assert t(N_("Start again"), lang) in labels_of(user)
    await reporter.press(N_("Continue"))
    assert reporter.question_on_screen() == question("age_group")
    await reporter.fill({"age_group": "31_50", "situation": "released"})

    entries = review_entries(reporter)
    assert entries["relation"].value == t(N_("Wife or husband"), lang)
    assert entries["victim_agrees"].value == t(N_("Cannot ask: they are detained"), lang)
    assert entries["victim_name"].value == "Шерзод"
    assert entries["age_group"].value == t(N_("31 to 50"), lang)

    reference = await reporter.submit()
    _, answers = await stored_case(sandbox, reference)
    assert answers["reporter"] == "relative"
    assert answers["relation"] == "spouse"
    assert answers["victim_agrees"] == "cannot_ask"
    assert answers["victim_name"] == "Шерзод"
    assert answers["sex"] == "male"
    assert answers["age_group"] == "31_50"


# --- /cancel ---------------------------------------------------------------------------

CANCEL_DONE = N_("Your report has been deleted. If you want to start again, send /start.")


async def test_cancel_no_continues_and_yes_deletes_the_draft(sandbox: Sandbox) -> None:
    lang = "ru"
    user = sandbox.user(710_050)
    reporter = ScriptedReporter(user, lang)
    await reporter.open()
    await reporter.answer(question("reporter"), "victim")
    await reporter.answer(question("victim_name"), "Фирӯз")
    assert reporter.question_on_screen() == question("sex")

    await user.send_command("/cancel")
    assert labels_of(user) == [t(N_("Yes, delete it"), lang), t(N_("No, continue"), lang)]
    await reporter.press(N_("No, continue"))
    assert reporter.question_on_screen() == question("sex")
    assert await count_rows(sandbox, FsmRecord) == 1

    await user.send_command("/cancel")
    await reporter.press(N_("Yes, delete it"))
    assert [m.body for m in user.visible_messages()] == [t(CANCEL_DONE, lang)]
    assert await count_rows(sandbox, FsmRecord) == 0
    assert await count_rows(sandbox, Case) == 0

    # The draft is gone: /start begins anew (the language is remembered).
    await user.send_command("/start")
    labels = labels_of(user)
    assert t(N_("Continue"), lang) in labels
    assert t(N_("Not now"), lang) in labels
    assert t(N_("Start again"), lang) not in labels

    # "Delete this report" on the review asks the same question.
    await reporter.open()
    assert reporter.question_on_screen() == question("reporter")
    await reporter.fill({"reporter": "victim", "victim_name": "Нигина"})
    await reporter.press(N_("Delete this report"))
    await reporter.press(N_("Yes, delete it"))
    # Only the goodbye lines are left (the first one from before).
    assert [m.body for m in user.visible_messages()] == [t(CANCEL_DONE, lang)] * 2
    assert await count_rows(sandbox, FsmRecord) == 0
    assert await count_rows(sandbox, Case) == 0


# --- /language and /help ------------------------------------------------------------


async def test_language_mid_flow_reshows_the_question(sandbox: Sandbox) -> None:
    user = sandbox.user(710_060)
    reporter = ScriptedReporter(user, "tg")
    await reporter.open()
    await reporter.answer(question("reporter"), "victim")
    await reporter.answer(question("victim_name"), "Рустам")
    await reporter.answer(question("sex"), "male")
    shown = question("age_group")
    assert t(shown.prompt, "tg") in (user.last_text() or "")

    await user.send_command("/language")
    assert user.last_text() == language_screen().text
    await user.press("Русский")
    text = user.last_text() or ""
    assert t(shown.prompt, "ru") in text
    labels = labels_of(user)
    assert [t(option.label, "ru") for option in shown.options] == labels[: len(shown.options)]
    assert t(N_("Skip"), "ru") in labels
    # Only the question stays: the language screen and the command are gone.
    assert [m.body for m in user.visible_messages()] == [text]

    reporter.language = "ru"
    assert reporter.question_on_screen() == shown
    await reporter.fill({"age_group": "over_50"})
    entries = review_entries(reporter)
    assert entries["victim_name"].value == "Рустам"
    assert entries["sex"].value == t(N_("Man or boy"), "ru")
    reference = await reporter.submit()
    assert reference in (user.last_text() or "")
    _, answers = await stored_case(sandbox, reference)
    assert answers["sex"] == "male"
    assert answers["age_group"] == "over_50"


HELP_INTRO = N_(
    "This bot passes reports of torture and ill-treatment to human-rights lawyers. After each "
    "answer the bot deletes it from this chat, and we keep your report secret."
)


async def test_help_mid_flow_in_the_users_language(sandbox: Sandbox) -> None:
    for number, lang in enumerate(("tg", "ru")):
        user = sandbox.user(710_070 + number)
        reporter = ScriptedReporter(user, lang)
        await reporter.open()
        await reporter.answer(question("reporter"), "witness")
        await user.send_command("/help")
        text = user.last_text() or ""
        assert text.startswith(t(HELP_INTRO, lang))
        for command, description in (
            ("status", N_("The status of my reports")),
            ("language", N_("Change the language")),
            ("cancel", N_("Delete the report I am writing")),
        ):
            assert f"/{command} — {t(description, lang)}" in text
        # The questionnaire goes on where it was.
        assert reporter.question_on_screen() == question("victim_agrees")
        await reporter.answer(question("victim_agrees"), "no")
        assert reporter.question_on_screen() == question("victim_name")


async def test_help_mid_flow_is_wiped_with_the_rest(sandbox: Sandbox) -> None:
    user = sandbox.user(710_080)
    reporter = ScriptedReporter(user, "tg")
    await reporter.open()
    await user.send_command("/help")
    await reporter.fill({"reporter": "victim"})
    await reporter.submit()
    assert user.visible_messages() == [user.last_bot_message()]
