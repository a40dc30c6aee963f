"""The review screen: change an answer, go back, or send the report."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiogram import Bot, F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.intake.flow import Phase, edit_from_review, go_back
from bot.intake.limits import DailyLimitReached, IntakePaused
from bot.intake.submission import submit_report
from bot.questionnaire import Stage
from handlers.reporter.callbacks import EditAnswer, FlowAction
from handlers.reporter.conversation import Intake, load, show_current, wipe
from storage.crypto import KeyRing
from storage.models import User
from storage.repositories import CaseRepository

if TYPE_CHECKING:
    from bot.background import BackgroundTasks


def _in_review(query: CallbackQuery, phase: Phase, stage: Stage) -> bool:
    return query.message is not None and phase is Phase.QUESTIONS and stage is Stage.REVIEW


async def edit_answer(
    query: CallbackQuery,
    callback_data: EditAnswer,
    state: FSMContext,
    bot: Bot,
    settings: Settings,
) -> None:
    intake = await load(state)
    if not _in_review(query, intake.phase, intake.draft.stage) or not edit_from_review(
        intake, callback_data.question
    ):
        await query.answer(_("This button is no longer active."))
        return
    await query.answer()
    assert query.message is not None
    await show_current(bot, settings, state, query.message.chat.id, intake, pressed=query.message)


async def back_from_review(
    query: CallbackQuery, state: FSMContext, bot: Bot, settings: Settings
) -> None:
    intake = await load(state)
    if not _in_review(query, intake.phase, intake.draft.stage) or not go_back(intake):
        await query.answer(_("This button is no longer active."))
        return
    await query.answer()
    assert query.message is not None
    await show_current(bot, settings, state, query.message.chat.id, intake, pressed=query.message)


async def submit(
    query: CallbackQuery,
    state: FSMContext,
    bot: Bot,
    settings: Settings,
    session: AsyncSession,
    keyring: KeyRing,
    user: User,
    cases: CaseRepository,
    background: BackgroundTasks,
) -> None:
    intake = await load(state)
    if not _in_review(query, intake.phase, intake.draft.stage) or not intake.consent.store:
        await query.answer(_("This button is no longer active."))
        return
    assert query.message is not None
    chat_id = query.message.chat.id
    try:
        case = await submit_report(
            session,
            keyring,
            cases,
            intake,
            reporter=user,
            reporter_chat_id=chat_id,
            intake_per_minute=settings.intake_per_minute,
            abuse_handle_days=settings.abuse_handle_days,
        )
    except IntakePaused:
        await query.answer(
            _(
                "The service is very busy right now. Your answers are kept: please try "
                "to send the report again in a few minutes."
            ),
            show_alert=True,
        )
        return
    except DailyLimitReached:
        await query.answer(
            _(
                "You have sent several reports today. Please try again tomorrow; "
                "your answers are kept until then."
            ),
            show_alert=True,
        )
        return
    trail = intake.trail
    await state.clear()
    # The case, its notifications and the end of the draft are one commit,
    # made before anything is deleted from the chat.
    await session.commit()
    background.wake_outbox()
    await query.answer()
    await bot.send_message(
        chat_id,
        _(
            "Your report {reference} has been received. A lawyer will read it soon. "
            "Send /status to see how it is going. You can now delete this chat: /status "
            "will still show your reports."
        ).format(reference=case.reference),
    )
    await wipe(bot, settings, chat_id, trail)


def build_router() -> Router:
    router = Router(name="reporter-review")
    router.callback_query.register(edit_answer, EditAnswer.filter(), Intake.active)
    router.callback_query.register(
        back_from_review, FlowAction.filter(F.action == "review_back"), Intake.active
    )
    router.callback_query.register(submit, FlowAction.filter(F.action == "submit"), Intake.active)
    return router
