"""A reporter answering a lawyer's question (the Reply button under it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiogram import Bot, F, Router
from aiogram.filters import Filter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cases.service import AccessDenied, CaseService
from bot.cases.workflow import WorkflowError
from bot.config import Settings
from bot.evidence import Refusal
from bot.notifications import REPLY_CALLBACK_PREFIX
from handlers.reporter.conversation import wipe
from handlers.reporter.evidence import incoming_of, limits_of, receive, refusal_text
from storage.crypto import KeyRing
from storage.models import User

if TYPE_CHECKING:
    from bot.background import BackgroundTasks


class ReplyButton(CallbackData, prefix=REPLY_CALLBACK_PREFIX):
    reference: str


class ReplyPending(Filter):
    """True while the reporter has pressed Reply and not yet written the answer."""

    async def __call__(self, message: Message, state: FSMContext) -> bool | dict[str, Any]:
        reply = (await state.get_data()).get("reply")
        return {"reply": reply} if isinstance(reply, dict) else False


async def start_reply(
    query: CallbackQuery,
    callback_data: ReplyButton,
    state: FSMContext,
    user: User,
    case_service: CaseService,
) -> None:
    try:
        case = await case_service.reply_case(user, callback_data.reference)
    except AccessDenied:
        await query.answer(_("This button is no longer active."))
        return
    await query.answer()
    assert query.message is not None
    prompt = await query.message.answer(
        _("Please write your answer in one message. It will be passed to the lawyer.")
    )
    await state.update_data(
        reply={
            "reference": case.reference,
            "trail": [query.message.message_id, prompt.message_id],
        }
    )


async def write_reply(
    message: Message,
    reply: dict[str, Any],
    state: FSMContext,
    user: User,
    case_service: CaseService,
    session: AsyncSession,
    bot: Bot,
    settings: Settings,
    background: BackgroundTasks,
) -> None:
    await _end_reply(state)
    try:
        await case_service.record_reply(user, str(reply.get("reference", "")), message.text or "")
    except (AccessDenied, WorkflowError):
        await message.answer(_("This question is no longer open."))
        return
    await session.commit()
    background.wake_outbox()
    await message.answer(_("Thank you. Your answer has been passed to the lawyer."))
    trail = [i for i in reply.get("trail", []) if isinstance(i, int)]
    await wipe(bot, settings, message.chat.id, [*trail, message.message_id])


async def file_reply(
    message: Message,
    reply: dict[str, Any],
    state: FSMContext,
    user: User,
    case_service: CaseService,
    session: AsyncSession,
    keyring: KeyRing,
    bot: Bot,
    settings: Settings,
    background: BackgroundTasks,
) -> None:
    """A file sent as the answer: stored as evidence of the case, the lawyer told."""
    trail = [i for i in reply.get("trail", []) if isinstance(i, int)]
    incoming = incoming_of(message)
    try:
        case = await case_service.reply_case(user, str(reply.get("reference", "")))
        data_key = await case_service.cases.data_key(case)
    except (AccessDenied, LookupError):
        await _end_reply(state)
        await message.answer(_("This question is no longer open."))
        return
    if incoming is None:
        # Kept waiting: the reporter may still send a text or an accepted file.
        await message.answer(refusal_text(Refusal.TYPE, limits_of(settings)))
        return
    result = await receive(
        bot,
        session,
        settings,
        incoming,
        sender=user,
        keyring=keyring,
        case_id=case.id,
        data_key=data_key,
        submitted=True,
    )
    if isinstance(result, Refusal):
        await message.answer(refusal_text(result, limits_of(settings)))
        return
    await _end_reply(state)
    await case_service.record_file_reply(user, case, result, data_key)
    await session.commit()
    background.wake_outbox()
    await message.answer(_("Thank you. Your file has been passed to the lawyer."))
    await wipe(bot, settings, message.chat.id, [*trail, message.message_id])


async def _end_reply(state: FSMContext) -> None:
    data = await state.get_data()
    data.pop("reply", None)
    await state.set_data(data)


def build_router() -> Router:
    router = Router(name="reporter-replies")
    router.callback_query.register(start_reply, ReplyButton.filter())
    router.message.register(write_reply, F.text, ReplyPending())
    router.message.register(
        file_reply, F.photo | F.document | F.voice | F.audio | F.video_note, ReplyPending()
    )
    return router
