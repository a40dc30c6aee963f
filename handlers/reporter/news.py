"""News after the report: the button under /status, the short flow, Send.

Thin: the flow is ``bot/intake/news.py``, storing it ``bot/cases/followups.py``.
The draft lives in the sealed FSM data under ``"news"``, beside a questionnaire
draft if there is one; every screen, typed message and file sent is tracked in
it and deleted from the chat when the news is sent or cancelled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiogram import Bot, F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, Filter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InaccessibleMessage, Message
from aiogram.utils.i18n import gettext as _

from bot.cases.followups import NewsLimitReached, NewsLimits, check_limits, news_case, record_news
from bot.cases.service import AccessDenied, CaseService
from bot.config import Settings
from bot.evidence import Refusal
from bot.intake.news import (
    DRAFT_KEY,
    MAX_TRACKED,
    MAX_WORDS,
    STATUS_SCREEN_KEY,
    NewsDraft,
    add_file,
    choose_kind,
    finish_files,
    message_ids,
    ready_to_send,
    record_of,
    skip_words,
    takes_files,
    write_words,
)
from handlers.common.reader import STALE_BUTTON, stale_button
from handlers.reporter.conversation import wipe
from handlers.reporter.evidence import FILE_MESSAGE, incoming_of, limits_of, receive, refusal_text
from handlers.reporter.news_screens import (
    LIMIT_TEXTS,
    WORDS_REFUSALS,
    NewsAction,
    NewsKindButton,
    NewsStart,
    screen_for,
)
from handlers.reporter.render import Screen
from storage.evidence import EvidenceRepository
from storage.models import User, utcnow
from storage.unit_of_work import commit_now

if TYPE_CHECKING:
    from bot.background import BackgroundTasks


class NewsPending(Filter):
    """True while the reporter is writing news; hands the draft to the handler."""

    async def __call__(self, event: Any, state: FSMContext) -> bool | dict[str, Any]:
        draft = NewsDraft.from_dict((await state.get_data()).get(DRAFT_KEY))
        return {"draft": draft} if draft is not None else False


def limits_from(settings: Settings) -> NewsLimits:
    return NewsLimits(per_day=settings.followups_per_day, total=settings.followups_total)


async def _save(state: FSMContext, draft: NewsDraft | None) -> None:
    data = await state.get_data()
    if draft is None:
        data.pop(DRAFT_KEY, None)
    else:
        data[DRAFT_KEY] = draft.to_dict()
    await state.set_data(data)


async def _show(
    bot: Bot,
    settings: Settings,
    state: FSMContext,
    chat_id: int,
    draft: NewsDraft,
    *,
    pressed: Message | InaccessibleMessage | None = None,
) -> None:
    """The draft's screen, then everything shown before it goes (as in the questionnaire)."""
    screen: Screen = screen_for(draft, _)
    kept: int | None = None
    if isinstance(pressed, Message) and draft.trail and pressed.message_id == max(draft.trail):
        try:
            await pressed.edit_text(screen.text, reply_markup=screen.markup)
            kept = pressed.message_id
        except TelegramBadRequest:
            kept = None  # too old to edit, or unchanged: sent anew
    sent = (
        None
        if kept is not None
        else await bot.send_message(chat_id, screen.text, reply_markup=screen.markup)
    )
    doomed = draft.take_trail(keep=kept)
    draft.track(sent.message_id if sent else None)
    await _save(state, draft)
    await commit_now()
    await wipe(bot, settings, chat_id, doomed)


async def remember_status_screen(state: FSMContext, *ids: int) -> None:
    """/status and its answer become part of the news started from it (and go with it)."""
    data = await state.get_data()
    earlier = message_ids(data.get(STATUS_SCREEN_KEY))
    data[STATUS_SCREEN_KEY] = [*earlier, *ids][-MAX_TRACKED:]
    await state.set_data(data)


async def drop_news(state: FSMContext, case_service: CaseService, user: User) -> list[int]:
    """/forget: news being written goes, files included; the messages to wipe."""
    data = await state.get_data()
    draft = NewsDraft.from_dict(data.get(DRAFT_KEY))
    leftovers = message_ids(data.get(STATUS_SCREEN_KEY))
    if draft is not None:
        await _discard_files(case_service, user, draft)
        leftovers += draft.trail
    return leftovers


async def _reprompt(message: Message, state: FSMContext, draft: NewsDraft, text: str) -> None:
    """A short correction; the draft stays as it was, both messages go at the end."""
    draft.track(message.message_id)
    sent = await message.answer(text)
    draft.track(sent.message_id)
    await _save(state, draft)


async def start_news(
    query: CallbackQuery,
    callback_data: NewsStart,
    state: FSMContext,
    user: User,
    case_service: CaseService,
    bot: Bot,
    settings: Settings,
) -> None:
    now = utcnow()
    try:
        case = await news_case(
            case_service.session, case_service.keyring, user, callback_data.reference, now
        )
        await check_limits(case_service.session, case, limits_from(settings), now)
    except AccessDenied:
        # A forged press may come from someone who has not chosen a language yet.
        await stale_button(query, user)
        return
    except NewsLimitReached as refused:
        await query.answer(_(LIMIT_TEXTS[refused.reason]), show_alert=True)
        return
    await query.answer()
    if query.message is None:
        return
    data = await state.get_data()
    old = NewsDraft.from_dict(data.get(DRAFT_KEY))
    if old is not None and old.reference == case.reference:
        draft = old  # left half-written: go on where the reporter stopped
    else:
        draft = NewsDraft(reference=case.reference)
        if old is not None:
            # News about another report, left unsent: its screens and files go now.
            draft.track(*old.trail)
            await _discard_files(case_service, user, old)
    if STATUS_SCREEN_KEY in data:
        draft.track(*message_ids(data.pop(STATUS_SCREEN_KEY)))
        await state.set_data(data)
    # A /status too old for Telegram to show is inaccessible: nothing to delete then.
    draft.track(query.message.message_id if isinstance(query.message, Message) else None)
    await _show(bot, settings, state, query.message.chat.id, draft)


async def kind_pressed(
    query: CallbackQuery,
    callback_data: NewsKindButton,
    state: FSMContext,
    draft: NewsDraft,
    bot: Bot,
    settings: Settings,
) -> None:
    if not choose_kind(draft, callback_data.code) or query.message is None:
        await query.answer(_(STALE_BUTTON))
        return
    await query.answer()
    await _show(bot, settings, state, query.message.chat.id, draft, pressed=query.message)


async def action_pressed(
    query: CallbackQuery,
    callback_data: NewsAction,
    state: FSMContext,
    draft: NewsDraft,
    user: User,
    case_service: CaseService,
    bot: Bot,
    settings: Settings,
    background: BackgroundTasks,
) -> None:
    action = callback_data.action
    if query.message is None:
        await query.answer()
        return
    chat_id = query.message.chat.id
    if action == "cancel":
        await query.answer()
        await _end(bot, settings, state, chat_id, draft, case_service, user, query.message)
        await bot.send_message(chat_id, _("The news was not sent."))
        return
    if action == "send" and ready_to_send(draft):
        await _send(query, state, draft, user, case_service, bot, settings, background)
        return
    moved = (action == "skip" and skip_words(draft)) or (action == "done" and finish_files(draft))
    if not moved:
        await query.answer(_(STALE_BUTTON))
        return
    await query.answer()
    await _show(bot, settings, state, chat_id, draft, pressed=query.message)


async def _send(
    query: CallbackQuery,
    state: FSMContext,
    draft: NewsDraft,
    user: User,
    case_service: CaseService,
    bot: Bot,
    settings: Settings,
    background: BackgroundTasks,
) -> None:
    assert query.message is not None
    chat_id = query.message.chat.id
    try:
        case = await record_news(
            case_service, user, draft.reference, record_of(draft), limits_from(settings), utcnow()
        )
    except NewsLimitReached as refused:
        # The draft stays: nothing the reporter wrote is lost.
        await query.answer(_(LIMIT_TEXTS[refused.reason]), show_alert=True)
        return
    except AccessDenied:
        await query.answer(_(STALE_BUTTON), show_alert=True)
        await _end(bot, settings, state, chat_id, draft, case_service, user, query.message)
        return
    await query.answer()
    await _save(state, None)
    await commit_now()
    background.wake_outbox()
    await bot.send_message(
        chat_id,
        _("Thank you. Your news has been added to report {reference}.").format(
            reference=case.reference
        ),
    )
    await wipe(bot, settings, chat_id, [*draft.trail, query.message.message_id])


async def _discard_files(case_service: CaseService, user: User, draft: NewsDraft) -> None:
    """A draft's files that will never be sent (cancelled, or news started anew)."""
    try:
        case = await news_case(
            case_service.session, case_service.keyring, user, draft.reference, utcnow()
        )
    except AccessDenied:
        return  # no longer the reporter's: its draft files expire with the draft
    await EvidenceRepository(case_service.session).delete_draft(case.id)


async def _end(
    bot: Bot,
    settings: Settings,
    state: FSMContext,
    chat_id: int,
    draft: NewsDraft,
    case_service: CaseService,
    user: User,
    pressed: Message | InaccessibleMessage,
) -> None:
    await _discard_files(case_service, user, draft)
    await _save(state, None)
    await commit_now()
    await wipe(bot, settings, chat_id, [*draft.trail, pressed.message_id])


async def typed_words(
    message: Message, state: FSMContext, draft: NewsDraft, bot: Bot, settings: Settings
) -> None:
    if not takes_files(draft):
        await _reprompt(message, state, draft, _("Please use the buttons above."))
        return
    refused = write_words(draft, message.text or "")
    if refused is not None:
        await _reprompt(message, state, draft, _(WORDS_REFUSALS[refused]).format(limit=MAX_WORDS))
        return
    draft.track(message.message_id)
    await _show(bot, settings, state, message.chat.id, draft)


async def sent_file(
    message: Message,
    state: FSMContext,
    draft: NewsDraft,
    user: User,
    case_service: CaseService,
    bot: Bot,
    settings: Settings,
) -> None:
    incoming = incoming_of(message)
    if not takes_files(draft) or incoming is None:
        await _reprompt(message, state, draft, _("Please use the buttons above."))
        return
    try:
        case = await news_case(
            case_service.session, case_service.keyring, user, draft.reference, utcnow()
        )
        data_key = await case_service.cases.data_key(case)
    except (AccessDenied, LookupError):
        await _reprompt(message, state, draft, _(STALE_BUTTON))
        return
    result = await receive(
        bot,
        case_service.session,
        settings,
        incoming,
        sender=user,
        keyring=case_service.keyring,
        case_id=case.id,
        data_key=data_key,
        submitted=False,
    )
    if isinstance(result, Refusal):
        await _reprompt(message, state, draft, refusal_text(result, limits_of(settings)))
        return
    add_file(draft, result.id.hex)
    draft.track(message.message_id)
    await _show(bot, settings, state, message.chat.id, draft)


async def other_message(message: Message, state: FSMContext, draft: NewsDraft) -> None:
    """A sticker, a location...: a short correction, and both go with the news."""
    if message.text and message.text.startswith("/"):
        raise SkipHandler  # any other command runs as a command
    await _reprompt(message, state, draft, _("Please use the buttons above."))


def build_router() -> Router:
    """Before the reporter's commands: /cancel ends the news being written; other
    commands fall through and run as commands."""
    router = Router(name="reporter-news")
    router.callback_query.register(start_news, NewsStart.filter())
    router.callback_query.register(kind_pressed, NewsKindButton.filter(), NewsPending())
    router.callback_query.register(action_pressed, NewsAction.filter(), NewsPending())
    router.message.register(cancel_typed, Command("cancel"), NewsPending())
    router.message.register(typed_words, F.text, ~F.text.startswith("/"), NewsPending())
    router.message.register(sent_file, FILE_MESSAGE, NewsPending())
    router.message.register(other_message, NewsPending())
    return router


async def cancel_typed(
    message: Message,
    state: FSMContext,
    draft: NewsDraft,
    user: User,
    case_service: CaseService,
    bot: Bot,
    settings: Settings,
) -> None:
    await _end(bot, settings, state, message.chat.id, draft, case_service, user, message)
    await bot.send_message(message.chat.id, _("The news was not sent."))
