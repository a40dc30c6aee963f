"""Loading, saving and showing the reporter's conversation.

The state lives in the sealed FSM data; message ids that must later be
deleted from the phone are tracked there too, and nowhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InaccessibleMessage, Message
from aiogram.utils.i18n import gettext as _

from bot.config import Settings
from bot.intake.flow import IntakeState, Phase, current_question
from bot.intake.news import DRAFT_KEY as NEWS_DRAFT
from bot.intake.news import STATUS_SCREEN_KEY as NEWS_STATUS_SCREEN
from bot.questionnaire import Stage
from handlers.reporter.render import (
    Screen,
    consent_screen,
    intro_screens,
    language_screen,
    question_screen,
    review_screens,
)
from storage.evidence import EvidenceRepository
from storage.fsm import EncryptedFSMStorage
from storage.models import utcnow
from storage.unit_of_work import commit_now, current_session

log = logging.getLogger("intake.reporter")

DELETE_BATCH = 100


class Intake(StatesGroup):
    active = State()


async def load(state: FSMContext) -> IntakeState:
    return IntakeState.from_dict((await state.get_data()).get("intake"))


async def save(state: FSMContext, intake: IntakeState) -> None:
    await state.set_state(Intake.active)
    data: dict[str, object] = {"intake": intake.to_dict()}
    kept = await state.get_data()
    for key in (NEWS_DRAFT, NEWS_STATUS_SCREEN):
        # News about a sent report, written beside this draft (handlers/reporter/news.py).
        if key in kept:
            data[key] = kept[key]
    await state.set_data(data)
    session, storage = current_session.get(), state.storage
    if intake.case_id and session is not None and isinstance(storage, EncryptedFSMStorage):
        # The draft's files live as long as the draft, not a day from the last file.
        await EvidenceRepository(session).extend_draft(intake.case_id, utcnow() + storage.ttl)


async def track_in_draft(state: FSMContext, *message_ids: int) -> None:
    """Remember messages sent beside an open draft, so the wipe takes them too."""
    if await state.get_state() != Intake.active.state:
        return
    intake = await load(state)
    intake.track(*message_ids)
    await save(state, intake)


async def wipe(bot: Bot, settings: Settings, chat_id: int, message_ids: Iterable[int]) -> None:
    """Delete messages from the chat (best effort: Telegram refuses after 48 hours)."""
    ids = sorted(set(message_ids))
    if not settings.wipe_chat or not ids:
        return
    for start in range(0, len(ids), DELETE_BATCH):
        try:
            await bot.delete_messages(chat_id, ids[start : start + DELETE_BATCH])
        except TelegramAPIError as exc:
            log.warning("could not delete %d messages: %s", len(ids), type(exc).__name__)


async def send(bot: Bot, chat_id: int, screen: Screen) -> Message:
    return await bot.send_message(chat_id, screen.text, reply_markup=screen.markup)


def screens_for(intake: IntakeState) -> list[Screen]:
    """What to show for where the reporter is now."""
    if intake.phase is Phase.LANGUAGE:
        return [language_screen()]
    if intake.phase is Phase.INTRO:
        return intro_screens(_)
    if intake.phase is not Phase.QUESTIONS:
        return [consent_screen(intake.phase, _)]
    if intake.draft.stage is Stage.REVIEW:
        return review_screens(intake, _)
    question = current_question(intake)
    if question is None:
        return review_screens(intake, _)
    return [question_screen(intake, question, _)]


async def show_current(
    bot: Bot,
    settings: Settings,
    state: FSMContext,
    chat_id: int,
    intake: IntakeState,
    *,
    notice: str | None = None,
    screens: list[Screen] | None = None,
    pressed: Message | InaccessibleMessage | None = None,
) -> None:
    """Show the current screen, then delete everything shown before it.

    A button ``pressed`` on the newest message turns that message into the
    next screen: one Bot API call instead of a send and a delete, and one
    message fewer on the phone. Otherwise the order matters: the new screen is
    sent and recorded before the old messages go, so a failure never leaves
    the reporter with an empty chat.
    """
    shown = screens if screens is not None else screens_for(intake)
    kept: int | None = None
    sent: list[int] = []
    if pressed is not None and notice is None and len(shown) == 1:
        kept = await _replace(pressed, intake, shown[0])
    if kept is None:
        if notice:
            sent.append((await bot.send_message(chat_id, notice)).message_id)
        for screen in shown:
            sent.append((await send(bot, chat_id, screen)).message_id)
    doomed = intake.take_trail(keep=kept)
    intake.track(*sent)
    await save(state, intake)
    await commit_now()
    await wipe(bot, settings, chat_id, doomed)


async def _replace(
    pressed: Message | InaccessibleMessage, intake: IntakeState, screen: Screen
) -> int | None:
    """Edit the pressed message into ``screen``; its id, or None if it cannot be.

    Only the newest message of the conversation is edited: one further up
    would show the new question above what came after it.
    """
    if not isinstance(pressed, Message) or not intake.trail:
        return None
    if pressed.message_id != max(intake.trail):
        return None
    try:
        await pressed.edit_text(screen.text, reply_markup=screen.markup)
    except TelegramBadRequest:
        # Too old to edit, or the same text and buttons ("not modified").
        return None
    return pressed.message_id


async def discard_draft_evidence(intake: IntakeState) -> None:
    """Delete the files of a draft that will never be sent (/cancel, /forget)."""
    session = current_session.get()
    if session is not None and intake.case_id is not None:
        await EvidenceRepository(session).delete_draft(intake.case_id)


async def goodbye(
    query: CallbackQuery, state: FSMContext, bot: Bot, settings: Settings, text: str
) -> None:
    """End the conversation: forget the draft, clear the chat, leave one kind line."""
    await query.answer()
    intake = await load(state)
    await discard_draft_evidence(intake)
    await state.clear()
    await commit_now()
    if query.message is not None:
        await bot.send_message(query.message.chat.id, _(text))
        await wipe(bot, settings, query.message.chat.id, intake.trail)
