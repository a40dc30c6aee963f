"""The screens of the reporter's news flow, in their language (each under 500 characters)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.cases.followups import LimitReason
from bot.intake.news import MAX_WORDS, NEWS_LABELS, NewsDraft, NewsKind, Step, WordsRefusal
from bot.text import N_
from handlers.reporter.render import Screen
from storage.models import Case

Translate = Callable[[str], str]

#: How much of the words the review shows back (the rest is sent all the same).
PREVIEW = 200

LIMIT_TEXTS = {
    LimitReason.DAY: N_(
        "Thank you. This report has received as much news as it can take today. "
        "Please write again tomorrow."
    ),
    LimitReason.TOTAL: N_(
        "Thank you. This report cannot take more news. If something new and serious "
        "happens, please send a new report with /start."
    ),
}

WORDS_REFUSALS = {
    WordsRefusal.TOO_LONG: N_(
        "This is too long. Please shorten it to {limit} characters or fewer."
    ),
    WordsRefusal.EMPTY: N_("Please write in words, or press a button above."),
}


class NewsStart(CallbackData, prefix="ns"):
    """Under /status: add news to this case (checked against the reporter on press)."""

    reference: str


class NewsKindButton(CallbackData, prefix="nk"):
    code: str


class NewsAction(CallbackData, prefix="na"):
    action: str  # "skip", "done", "send" or "cancel"


def _button(text: str, data: CallbackData) -> list[InlineKeyboardButton]:
    return [InlineKeyboardButton(text=text, callback_data=data.pack())]


def status_keyboard(cases: Sequence[Case], _: Translate) -> InlineKeyboardMarkup | None:
    rows = [
        _button(
            _(N_("Add news: {reference}")).format(reference=case.reference),
            NewsStart(reference=case.reference),
        )
        for case in cases
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def _news_label(draft: NewsDraft, _: Translate) -> str:
    return _(NEWS_LABELS[draft.kind]) if draft.kind else "—"


def screen_for(draft: NewsDraft, _: Translate) -> Screen:
    cancel = _button(_(N_("Cancel")), NewsAction(action="cancel"))
    if draft.step is Step.KIND:
        rows = [_button(_(NEWS_LABELS[kind]), NewsKindButton(code=kind.value)) for kind in NewsKind]
        text = _(N_("News about report {reference}. What has happened since you sent it?"))
        return Screen(
            text.format(reference=draft.reference),
            InlineKeyboardMarkup(inline_keyboard=[*rows, cancel]),
        )
    if draft.step is Step.WORDS:
        text = _(
            N_(
                "{news}. If you wish, write what you know in one message (up to {limit} "
                "characters). You can also send photos or documents. Or press Skip."
            )
        )
        skip = _button(_(N_("Skip")), NewsAction(action="skip"))
        return Screen(
            text.format(news=_news_label(draft, _), limit=MAX_WORDS),
            InlineKeyboardMarkup(inline_keyboard=[skip, cancel]),
        )
    if draft.step is Step.FILES:
        text = _(
            N_(
                "You can send photos, documents or voice messages now. Files received: "
                "{count}. When you have finished, press Done."
            )
        )
        done = _button(_(N_("Done")), NewsAction(action="done"))
        return Screen(
            text.format(count=len(draft.files)),
            InlineKeyboardMarkup(inline_keyboard=[done, cancel]),
        )
    words = draft.words if len(draft.words) <= PREVIEW else draft.words[:PREVIEW] + "…"
    text = _(
        N_(
            "Please check before sending.\n\nReport: {reference}\nNews: {news}\n"
            "Your words: {words}\nFiles: {count}"
        )
    )
    send = _button(_(N_("Send")), NewsAction(action="send"))
    return Screen(
        text.format(
            reference=draft.reference,
            news=_news_label(draft, _),
            words=words or "—",
            count=len(draft.files),
        ),
        InlineKeyboardMarkup(inline_keyboard=[send, cancel]),
    )
