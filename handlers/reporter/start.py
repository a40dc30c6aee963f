"""/start, the language choice, the introduction and consent."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.config import Settings
from bot.i18n import LANGUAGES
from bot.intake.flow import CONSENT_ORDER, IntakeState, Phase, record_consent, resume_point
from bot.text import N_
from handlers.reporter.callbacks import ConsentAnswer, FlowAction, LanguageChoice
from handlers.reporter.conversation import Intake, goodbye, load, show_current, wipe
from handlers.reporter.menu import set_reporter_commands
from handlers.reporter.render import language_screen, resume_screen
from handlers.staff.menu import set_staff_commands
from storage.models import User
from storage.unit_of_work import commit_now


async def start(
    message: Message, state: FSMContext, user: User, bot: Bot, settings: Settings
) -> None:
    intake = await load(state)
    intake.track(message.message_id)
    if intake.phase is Phase.QUESTIONS and intake.has_answers:
        await show_current(
            bot, settings, state, message.chat.id, intake, screens=[resume_screen(_)]
        )
        return
    phase = Phase.LANGUAGE if user.language is None else Phase.INTRO
    await show_current(
        bot, settings, state, message.chat.id, IntakeState(phase=phase, trail=intake.trail)
    )


async def language_command(
    message: Message, state: FSMContext, bot: Bot, settings: Settings
) -> None:
    if await state.get_state() is None:
        await message.answer(language_screen().text, reply_markup=language_screen().markup)
        return
    intake = await load(state)
    intake.track(message.message_id)
    await show_current(bot, settings, state, message.chat.id, intake, screens=[language_screen()])


async def choose_language(
    query: CallbackQuery,
    callback_data: LanguageChoice,
    state: FSMContext,
    user: User,
    bot: Bot,
    settings: Settings,
    i18n: I18n,
) -> None:
    if callback_data.code not in LANGUAGES or query.message is None:
        await query.answer()
        return
    await query.answer()
    user.language = callback_data.code
    i18n.current_locale = callback_data.code
    chat_id = query.message.chat.id
    if user.role is None:
        await set_reporter_commands(bot, chat_id, user.language)
    else:
        await set_staff_commands(bot, i18n, chat_id, user.role, user.language)
    if await state.get_state() is None:
        await commit_now()
        await bot.send_message(chat_id, _("The language has been changed."))
        await wipe(bot, settings, chat_id, [query.message.message_id])
        return
    intake = await load(state)
    if intake.phase is Phase.LANGUAGE:
        intake.phase = Phase.INTRO
    await show_current(bot, settings, state, chat_id, resume_point(intake), pressed=query.message)


async def accept_intro(
    query: CallbackQuery, state: FSMContext, bot: Bot, settings: Settings
) -> None:
    await query.answer()
    intake = await load(state)
    if intake.phase is not Phase.INTRO or query.message is None:
        return
    intake.phase = CONSENT_ORDER[0]
    await show_current(bot, settings, state, query.message.chat.id, intake, pressed=query.message)


async def leave(query: CallbackQuery, state: FSMContext, bot: Bot, settings: Settings) -> None:
    await goodbye(
        query,
        state,
        bot,
        settings,
        N_(
            "All right. Nothing has been stored. If you want to report later, send /start. "
            "Please take care of yourself."
        ),
    )


async def consent(
    query: CallbackQuery,
    callback_data: ConsentAnswer,
    state: FSMContext,
    bot: Bot,
    settings: Settings,
) -> None:
    intake = await load(state)
    # Only a consent step takes a consent answer: "c:questions:1" is forged.
    if (
        query.message is None
        or intake.phase not in CONSENT_ORDER
        or callback_data.step != intake.phase.value
    ):
        await query.answer(_("This button is no longer active."))
        return
    if intake.phase is Phase.CONSENT_STORE and not callback_data.agreed:
        await goodbye(
            query,
            state,
            bot,
            settings,
            N_(
                "We understand. Without this consent we cannot accept a report, so nothing "
                "has been stored. If you change your mind, send /start. Please take care."
            ),
        )
        return
    await query.answer()
    record_consent(intake, intake.phase, callback_data.agreed)
    await show_current(bot, settings, state, query.message.chat.id, intake, pressed=query.message)


def build_router() -> Router:
    router = Router(name="reporter-start")
    router.message.register(start, CommandStart())
    router.message.register(language_command, Command("language"))
    router.callback_query.register(choose_language, LanguageChoice.filter())
    router.callback_query.register(
        accept_intro, FlowAction.filter(F.action == "intro_ok"), Intake.active
    )
    router.callback_query.register(leave, FlowAction.filter(F.action == "leave"), Intake.active)
    router.callback_query.register(consent, ConsentAnswer.filter(), Intake.active)
    return router
