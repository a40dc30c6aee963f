"""/help, /status, /cancel and the reporters' command menu."""

from __future__ import annotations

from collections.abc import Sequence

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from aiogram.utils.i18n import gettext as _

from bot.cases.followups import cases_taking_news
from bot.config import Settings
from bot.i18n import Translate
from bot.intake.flow import IntakeState, resume_point
from bot.notifications import REPORTER_STATUS_LABELS
from bot.text import N_
from handlers.common.reader import for_reader, has_language
from handlers.reporter.callbacks import FlowAction
from handlers.reporter.conversation import Intake, goodbye, load, show_current, track_in_draft
from handlers.reporter.menu import REPORTER_COMMANDS
from handlers.reporter.news import remember_status_screen
from handlers.reporter.news_screens import status_keyboard
from handlers.reporter.render import Screen
from storage.models import Case, User, utcnow
from storage.repositories import CaseRepository

HELP_ABOUT = N_(
    "This bot passes reports of torture and ill-treatment to human-rights lawyers. After each "
    "answer the bot deletes it from this chat, and we keep your report secret."
)
FIRST_CONTACT_HELP = N_(
    "This bot passes reports of torture to human-rights lawyers. To begin, press /start "
    "and choose a language."
)
NO_REPORTS = N_("You have not sent any reports yet. To send one, press /start.")


def help_text(_: Translate) -> str:
    return "\n".join(
        [_(HELP_ABOUT), "", *(f"/{name} — {_(text)}" for name, text in REPORTER_COMMANDS)]
    )


async def help_command(message: Message, state: FSMContext, user: User) -> None:
    # Before a language is chosen: a short answer in both languages.
    text = (
        help_text(_)
        if has_language(user)
        else for_reader(user.language, lambda tr: tr(FIRST_CONTACT_HELP))
    )
    sent = await message.answer(text)
    await track_in_draft(state, message.message_id, sent.message_id)


def status_text(_: Translate, found: Sequence[Case]) -> str:
    if not found:
        return _(NO_REPORTS)
    lines = [_(N_("Your reports:"))]
    for case in found:
        status = _(REPORTER_STATUS_LABELS.get(case.status, REPORTER_STATUS_LABELS["new"]))
        lines.append(f"{case.reference} — {status} ({case.created_at:%d.%m.%Y})")
    return "\n".join(lines)


async def status_command(
    message: Message, state: FSMContext, user: User, cases: CaseRepository
) -> None:
    found = await cases.for_reporter(user.tg_index)
    # Under each open case (and one closed for under 30 days): "Add news".
    markup = status_keyboard(cases_taking_news(found, user, utcnow()), _)
    sent = await message.answer(
        for_reader(user.language, lambda tr: status_text(tr, found)), reply_markup=markup
    )
    await track_in_draft(state, message.message_id, sent.message_id)
    if markup is not None:
        await remember_status_screen(state, message.message_id, sent.message_id)


def _cancel_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("Yes, delete it"), callback_data=FlowAction(action="cancel_yes").pack()
                )
            ],
            [
                InlineKeyboardButton(
                    text=_("No, continue"), callback_data=FlowAction(action="cancel_no").pack()
                )
            ],
        ]
    )


async def cancel_command(message: Message, state: FSMContext, bot: Bot, settings: Settings) -> None:
    intake = await load(state)
    intake.track(message.message_id)
    await _ask_to_cancel(bot, settings, state, message.chat.id, intake)


async def cancel_button(
    query: CallbackQuery, state: FSMContext, bot: Bot, settings: Settings
) -> None:
    await query.answer()
    if query.message is not None:
        await _ask_to_cancel(bot, settings, state, query.message.chat.id, await load(state))


async def _ask_to_cancel(
    bot: Bot, settings: Settings, state: FSMContext, chat_id: int, intake: IntakeState
) -> None:
    question = _(
        "Delete this report? Everything you have entered will be erased and cannot be recovered."
    )
    await show_current(
        bot, settings, state, chat_id, intake, screens=[Screen(question, _cancel_keyboard())]
    )


async def cancel_without_draft(message: Message, user: User) -> None:
    await message.answer(
        for_reader(user.language, lambda tr: tr(N_("There is no report in progress.")))
    )


async def confirm_cancel(
    query: CallbackQuery, state: FSMContext, bot: Bot, settings: Settings
) -> None:
    await goodbye(
        query,
        state,
        bot,
        settings,
        N_("Your report has been deleted. If you want to start again, send /start."),
    )


async def keep_going(query: CallbackQuery, state: FSMContext, bot: Bot, settings: Settings) -> None:
    await query.answer()
    if query.message is not None:
        intake = resume_point(await load(state))
        await show_current(
            bot, settings, state, query.message.chat.id, intake, pressed=query.message
        )


def build_router() -> Router:
    router = Router(name="reporter-commands")
    router.message.register(help_command, Command("help"))
    router.message.register(status_command, Command("status"))
    router.message.register(cancel_command, Command("cancel"), Intake.active)
    router.callback_query.register(
        cancel_button, FlowAction.filter(F.action == "cancel"), Intake.active
    )
    router.message.register(cancel_without_draft, Command("cancel"))
    router.callback_query.register(
        confirm_cancel, FlowAction.filter(F.action == "cancel_yes"), Intake.active
    )
    router.callback_query.register(
        keep_going, FlowAction.filter(F.action.in_({"cancel_no", "resume"})), Intake.active
    )
    return router
