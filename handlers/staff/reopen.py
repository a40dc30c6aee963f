"""A coordinator's answer to news on a closed case: the two buttons under the notice.

The press is client input: ``decide_reopen`` asks the policy (coordinators
only) and refuses a case with no unanswered news, so a forged or repeated
press changes nothing.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from aiogram import Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cases.followups import decide_reopen
from bot.cases.service import AccessDenied, CaseService
from bot.cases.workflow import WorkflowError
from bot.notifications import REOPEN_CALLBACK_PREFIX
from handlers.staff.cases import NOT_AVAILABLE
from handlers.staff.filters import STAFF
from storage.models import User, utcnow

if TYPE_CHECKING:
    from bot.background import BackgroundTasks


class ReopenChoice(CallbackData, prefix=REOPEN_CALLBACK_PREFIX):
    """``bot/notifications.py`` ``reopen_callback`` writes the same layout."""

    reference: str
    reopen: bool


async def reopen_pressed(
    query: CallbackQuery,
    callback_data: ReopenChoice,
    user: User,
    case_service: CaseService,
    session: AsyncSession,
    background: BackgroundTasks,
) -> None:
    try:
        case = await decide_reopen(
            case_service, user, callback_data.reference, reopen=callback_data.reopen, now=utcnow()
        )
    except AccessDenied:
        await query.answer(_(NOT_AVAILABLE), show_alert=True)
        return
    except WorkflowError as exc:
        await query.answer(_(exc.message), show_alert=True)
        return
    await session.commit()
    background.wake_outbox()
    await query.answer()
    if isinstance(query.message, Message):
        # Answered: the buttons go, so nobody presses the other one by mistake.
        with contextlib.suppress(TelegramBadRequest):
            await query.message.edit_reply_markup(reply_markup=None)
    done = (
        _("The case {reference} has been reopened.")
        if callback_data.reopen
        else _("The case {reference} stays closed.")
    )
    await query.bot.send_message(query.from_user.id, done.format(reference=case.reference))  # type: ignore[union-attr]


def build_router() -> Router:
    router = Router(name="staff-reopen")
    router.callback_query.filter(STAFF)
    router.callback_query.register(reopen_pressed, ReopenChoice.filter())
    return router
