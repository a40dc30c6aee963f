"""Answering questions: buttons, typed answers, Back, and input of the wrong kind."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.config import Settings
from bot.intake.flow import IntakeState, Phase, answer, current_question, go_back, press_option
from bot.questionnaire import Accepted, QuestionType, Rejected, parse_text_answer
from bot.text import N_
from handlers.common.reader import for_reader
from handlers.reporter.callbacks import AnswerButton
from handlers.reporter.conversation import Intake, load, save, show_current, wipe
from handlers.reporter.render import question_screen, rejection_text, wrong_kind_text
from storage.models import User

DISCARDED = N_(
    "Your message has been deleted from this chat and was not saved. Please use the buttons above."
)


async def press_answer(
    query: CallbackQuery,
    callback_data: AnswerButton,
    state: FSMContext,
    bot: Bot,
    settings: Settings,
) -> None:
    intake = await load(state)
    question = current_question(intake)
    if (
        query.message is None
        or intake.phase is not Phase.QUESTIONS
        or question is None
        or callback_data.question != question.id
    ):
        await query.answer(_("This button is no longer active."))
        return
    chat_id = query.message.chat.id

    if callback_data.code == "_back":
        await query.answer()
        if go_back(intake):
            await show_current(bot, settings, state, chat_id, intake, pressed=query.message)
        return

    was_multi_toggle = question.type is QuestionType.MULTI and not callback_data.code.startswith(
        "_"
    )
    refused = press_option(intake, question, callback_data.code)
    if refused is not None:
        await query.answer(rejection_text(refused, question, _), show_alert=True)
        return
    await query.answer()
    if was_multi_toggle:
        # Ticking an option only redraws the buttons of the same message.
        await save(state, intake)
        screen = question_screen(intake, question, _)
        # A message that is too old or deleted arrives as an InaccessibleMessage,
        # which cannot be edited: the question is then shown anew.
        if isinstance(query.message, Message):
            try:
                await query.message.edit_reply_markup(reply_markup=screen.markup)
                return
            except TelegramBadRequest:
                pass
        await show_current(bot, settings, state, chat_id, intake)
        return
    await show_current(bot, settings, state, chat_id, intake, pressed=query.message)


async def typed_answer(
    message: Message, state: FSMContext, user: User, bot: Bot, settings: Settings
) -> None:
    intake = await load(state)
    question = current_question(intake)
    if intake.phase is not Phase.QUESTIONS or question is None:
        await _discard(message, state, intake, user, bot, settings)
        return
    intake.track(message.message_id)
    result = parse_text_answer(question, message.text or "")
    if isinstance(result, Rejected):
        await _reprompt(message, state, intake, rejection_text(result.reason, question, _))
        return
    assert isinstance(result, Accepted)
    answer(intake, question, result.value)
    await show_current(bot, settings, state, message.chat.id, intake)


async def wrong_kind(
    message: Message, state: FSMContext, user: User, bot: Bot, settings: Settings
) -> None:
    """A sticker, photo, voice message... where text or a button is expected."""
    intake = await load(state)
    question = current_question(intake) if intake.phase is Phase.QUESTIONS else None
    if question is None:
        await _discard(message, state, intake, user, bot, settings)
        return
    intake.track(message.message_id)
    await _reprompt(message, state, intake, wrong_kind_text(question, _))


async def _discard(
    message: Message,
    state: FSMContext,
    intake: IntakeState,
    user: User,
    bot: Bot,
    settings: Settings,
) -> None:
    """Something sent while no question is open (language, introduction, consents,
    review): it may hold the whole story, so it leaves the chat at once, unread."""
    await wipe(bot, settings, message.chat.id, [message.message_id])
    text = DISCARDED if settings.wipe_chat else N_("Please use the buttons above.")
    await _reprompt(message, state, intake, for_reader(user.language, lambda tr: tr(text)))


async def _reprompt(message: Message, state: FSMContext, intake: IntakeState, text: str) -> None:
    """A short correction; the draft and the question stay as they were."""
    sent = await message.answer(text)
    intake.track(sent.message_id)
    await save(state, intake)


def build_router() -> Router:
    router = Router(name="reporter-questions")
    router.callback_query.register(press_answer, AnswerButton.filter(), Intake.active)
    router.message.register(typed_answer, Intake.active, F.text)
    router.message.register(wrong_kind, Intake.active)
    return router
