"""Rendering the reporter's screens in their language.

Pure functions from core data and a translate function to text and buttons;
nothing here sends anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.evidence import REFUSAL_TEXTS, Refusal
from bot.i18n import LANGUAGE_NAMES, LANGUAGES
from bot.intake.flow import IntakeState, Phase, questionnaire_for
from bot.questionnaire import (
    DONT_KNOW,
    DONT_KNOW_LABEL,
    SECTION_TITLES,
    SKIP_LABEL,
    SKIPPED,
    Question,
    QuestionType,
    RejectReason,
    ReviewItem,
    format_date_value,
    is_evidence_list,
    is_evidence_reference,
    option_labels,
    previous_question,
    progress,
    summarise_for_review,
)
from bot.text import N_
from handlers.reporter.callbacks import (
    AnswerButton,
    ConsentAnswer,
    EditAnswer,
    FlowAction,
    LanguageChoice,
)

Translate = Callable[[str], str]

TICK = "✅"
MESSAGE_LIMIT = 3800
REVIEW_TEXT_LIMIT = 300


@dataclass(frozen=True, slots=True)
class Screen:
    text: str
    markup: InlineKeyboardMarkup | None = None


def _button(text: str, data: str) -> InlineKeyboardButton:
    # Built without validation: the text and data are ours, and a question's
    # keyboard is dozens of buttons per update (docs/performance.md).
    return InlineKeyboardButton.model_construct(text=text, callback_data=data)


def _markup(rows: list[list[InlineKeyboardButton]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[row for row in rows if row])


LANGUAGE_PROMPT = "Забонро интихоб кунед.\nВыберите язык."


def language_screen() -> Screen:
    """Shown before a language is known, so in both languages at once."""
    return Screen(
        LANGUAGE_PROMPT,
        _markup(
            [
                [
                    _button(LANGUAGE_NAMES[code], LanguageChoice(code=code).pack())
                    for code in LANGUAGES
                ]
            ]
        ),
    )


INTRO_ABOUT = N_(
    "This bot passes reports of torture and ill-treatment in detention to the lawyers of a "
    "human-rights coalition in Tajikistan. Help is free."
)
INTRO_STEPS = N_(
    "What happens next: you answer short questions (about 10 minutes; any question can be "
    "skipped), check your answers and send them. You get a reference number. A lawyer reads "
    "the report and, if you allow it, contacts you here."
)
INTRO_RISKS = N_(
    "Be careful: anyone who picks up this phone can read this chat until it is deleted. The "
    "Telegram company can see it too. After each answer the bot deletes it from this chat, "
    "and we keep your report secret. When you finish, delete this chat and set a passcode in "
    "Telegram (Settings → Privacy and Security → Passcode)."
)


def intro_screens(_: Translate) -> list[Screen]:
    """Two short messages: what this is, then the risks with the buttons under them."""
    return [
        Screen(f"{_(INTRO_ABOUT)}\n\n{_(INTRO_STEPS)}"),
        Screen(
            _(INTRO_RISKS),
            _markup(
                [
                    [_button(_(N_("Continue")), FlowAction(action="intro_ok").pack())],
                    [_button(_(N_("Not now")), FlowAction(action="leave").pack())],
                ]
            ),
        ),
    ]


_CONSENT_TEXT = {
    Phase.CONSENT_STORE: N_(
        "Do you agree that we store your report securely and pass it to the coalition's "
        "lawyers? Without this we cannot accept the report."
    ),
    Phase.CONSENT_CONTACT: N_(
        "May a lawyer contact you through this chat, for example to ask a question?"
    ),
    Phase.CONSENT_STATS: N_(
        "May we count your report, without any names or details, in anonymous statistics "
        "about torture in Tajikistan?"
    ),
}


def consent_screen(phase: Phase, _: Translate) -> Screen:
    return Screen(
        _(_CONSENT_TEXT[phase]),
        _markup(
            [
                [
                    _button(
                        _(N_("Yes, I agree")), ConsentAnswer(step=phase.value, agreed=True).pack()
                    ),
                    _button(_(N_("No")), ConsentAnswer(step=phase.value, agreed=False).pack()),
                ]
            ]
        ),
    )


def resume_screen(_: Translate) -> Screen:
    return Screen(
        _(N_("You have a report you have not finished. Do you want to continue it?")),
        _markup(
            [
                [_button(_(N_("Continue")), FlowAction(action="resume").pack())],
                [_button(_(N_("Start again")), FlowAction(action="cancel").pack())],
            ]
        ),
    )


_TYPE_HINTS = {
    QuestionType.TEXT: N_("Type your answer and send it."),
    QuestionType.NUMBER: N_("Type a number and send it."),
    QuestionType.MULTI: N_("Choose all that apply, then press Done."),
    # FILES: the prompt itself says "send them here ... then press Done".
}


def question_screen(state: IntakeState, question: Question, _: Translate) -> Screen:
    q = questionnaire_for(state.draft.version)
    position, total = progress(q, state.draft.answers, question.id)
    lines = [f"{position}/{total} · {_(SECTION_TITLES[question.section])}", "", _(question.prompt)]
    if question.hint:
        lines += ["", _(question.hint)]
    type_hint = _TYPE_HINTS.get(question.type)
    # A hint may already start with the type hint ("Choose all that apply, then press Done.
    # Keep any proof..."): compare the msgids, so no line is said twice.
    if type_hint and type_hint not in (question.hint or ""):
        lines += ["", _(type_hint)]
    if question.accepts_voice:
        lines += ["", _(N_("You can also answer with a voice message."))]
    if question.type is QuestionType.FILES:
        received = state.draft.answers.get(question.id)
        count = len(received) if is_evidence_list(received) else 0
        if count:
            lines += ["", _(N_("Files received: {count}")).format(count=count)]

    rows: list[list[InlineKeyboardButton]] = []
    for option in question.options:
        label = _(option.label)
        if question.type is QuestionType.MULTI and option.code in state.selection:
            label = f"{TICK} {label}"
        rows.append([_button(label, AnswerButton(question=question.id, code=option.code).pack())])
    if question.type in (QuestionType.MULTI, QuestionType.FILES):
        rows.append(
            [_button(_(N_("Done")), AnswerButton(question=question.id, code="_done").pack())]
        )
    extra = []
    if question.allow_dont_know:
        label = (
            _(N_("I don't remember exactly"))
            if question.type is QuestionType.DATE
            else _(DONT_KNOW_LABEL)
        )
        extra.append(_button(label, AnswerButton(question=question.id, code=DONT_KNOW).pack()))
    if not question.required:
        extra.append(
            _button(_(SKIP_LABEL), AnswerButton(question=question.id, code=SKIPPED).pack())
        )
    rows.append(extra)
    if previous_question(q, state.draft.answers, question.id) is not None:
        rows.append(
            [_button("← " + _(N_("Back")), AnswerButton(question=question.id, code="_back").pack())]
        )
    return Screen("\n".join(lines), _markup(rows))


def render_value(
    question: Question, value: object, _: Translate, *, limit: int | None = REVIEW_TEXT_LIMIT
) -> str:
    if value == SKIPPED:
        return _(N_("(skipped)"))
    if value == DONT_KNOW:
        return _(N_("(don't know)"))
    if question.type in (QuestionType.SINGLE, QuestionType.MULTI, QuestionType.YES_NO):
        return ", ".join(_(label) for label in option_labels(question, value))
    if question.type is QuestionType.DATE:
        return format_date_value(value) or ""
    if question.type is QuestionType.FILES:
        count = len(value) if is_evidence_list(value) else 0
        return _(N_("Files: {count}")).format(count=count)
    if is_evidence_reference(value):
        return _(N_("(voice message)"))
    text = str(value)
    if limit is not None and len(text) > limit:
        text = text[:limit].rstrip() + "…"
    return text


def review_screens(state: IntakeState, _: Translate) -> list[Screen]:
    """The review, split into several messages if long; buttons on the last one."""
    q = questionnaire_for(state.draft.version)
    items: list[ReviewItem] = summarise_for_review(q, state.draft.answers)
    header = _(
        N_(
            'Please check your answers. Nothing is sent until you press "Send the report". '
            "To change an answer, press its number."
        )
    )
    chunks: list[str] = []
    current = header
    section = None
    for number, item in enumerate(items, start=1):
        block = ""
        if item.section != section:
            section = item.section
            block += f"\n\n— {_(SECTION_TITLES[item.section])} —"
        value = render_value(item.question, item.value, _)
        block += f"\n{number}. {_(item.question.prompt)}\n   {value}"
        if len(current) + len(block) > MESSAGE_LIMIT:
            chunks.append(current)
            current = block.lstrip("\n")
        else:
            current += block
    chunks.append(current)

    numbers = [
        _button(str(number), EditAnswer(question=item.question.id).pack())
        for number, item in enumerate(items, start=1)
    ]
    rows = [numbers[i : i + 6] for i in range(0, len(numbers), 6)]
    rows.append([_button(_(N_("Send the report")), FlowAction(action="submit").pack())])
    rows.append([_button("← " + _(N_("Back")), FlowAction(action="review_back").pack())])
    rows.append([_button(_(N_("Delete this report")), FlowAction(action="cancel").pack())])
    screens = [Screen(chunk) for chunk in chunks[:-1]]
    screens.append(Screen(chunks[-1], _markup(rows)))
    return screens


_REJECTIONS = {
    RejectReason.TOO_LONG: N_(
        "This answer is too long. Please shorten it to {limit} characters or fewer. "
        "Your earlier answers are saved."
    ),
    RejectReason.EMPTY: N_("Please type your answer, or press Skip."),
    RejectReason.NOT_A_NUMBER: N_("Please type a number using digits, for example 3."),
    RejectReason.OUT_OF_RANGE: N_("Please type a number from {low} to {high}."),
    RejectReason.NOT_A_DATE: N_(
        "We could not read this date. Please type it like 14.03.2025, 03.2025 or 2025, or "
        'press "I don\'t remember exactly".'
    ),
    RejectReason.FUTURE_DATE: N_("This date is in the future. Please check it."),
    RejectReason.NEEDS_BUTTON: N_(
        "Please answer with the buttons under the question. You can describe everything "
        "in your own words later."
    ),
    RejectReason.INVALID_CHOICE: N_("This button is no longer active."),
    RejectReason.REQUIRED: N_("This question needs an answer."),
    RejectReason.NEEDS_FILE: N_(
        "Please send photos, documents or voice messages here, then press Done. "
        "If you have none, press Skip."
    ),
}


def rejection_text(reason: RejectReason, question: Question | None, _: Translate) -> str:
    if reason is RejectReason.OUT_OF_RANGE and (
        question is None or question.type is not QuestionType.NUMBER
    ):
        # A year before 1950 is "out of range" too, but a date question has no
        # number bounds: "from None to None" helps nobody.
        reason = RejectReason.NOT_A_DATE
    return _(_REJECTIONS[reason]).format(
        limit=question.max_length if question else "",
        low=question.min_value if question else "",
        high=question.max_value if question else "",
    )


def wrong_kind_text(question: Question | None, _: Translate) -> str:
    if question is not None and question.type is QuestionType.FILES:
        return _(REFUSAL_TEXTS[Refusal.TYPE])
    if question is not None and question.accepts_voice:
        return _(
            N_(
                "Please answer this question with text or a voice message. Photos and "
                "stickers cannot be accepted here."
            )
        )
    if question is None or question.type in (
        QuestionType.SINGLE,
        QuestionType.MULTI,
        QuestionType.YES_NO,
    ):
        return _(N_("Please use the buttons above."))
    return _(
        N_(
            "Please answer this question with text. Photos, voice messages and stickers "
            "cannot be accepted here."
        )
    )
