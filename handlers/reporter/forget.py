"""/forget: wipe the chat, the draft and the reporter's link to their reports."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from bot.cases.service import CaseService
from bot.config import Settings
from bot.i18n import Translate
from bot.intake.flow import IntakeState
from bot.intake.forget import forget_reporter, withdrawable
from bot.text import N_
from handlers.common.reader import for_reader, has_language
from handlers.reporter.conversation import discard_draft_evidence, wipe
from handlers.reporter.news import drop_news
from storage.models import User


class ForgetChoice(CallbackData, prefix="fg"):
    action: str  # "forget", "withdraw" or "keep"


def forget_screen_text(_: Translate, can_withdraw: bool) -> str:
    text = _(
        N_(
            "This deletes our conversation from this chat, discards any report you are "
            "writing, and disconnects you from the reports you sent: lawyers will no longer "
            "be able to contact you. The reports themselves stay with the lawyers."
        )
    )
    if can_withdraw:
        text += "\n\n" + _(
            N_(
                "Some of your reports have not been taken by a lawyer yet. You can also "
                "withdraw them: they will be deleted for good."
            )
        )
    return text


async def forget_command(
    message: Message,
    state: FSMContext,
    user: User,
    case_service: CaseService,
    bot: Bot,
    settings: Settings,
) -> None:
    data = await state.get_data()
    intake = IntakeState.from_dict(data.get("intake"))
    intake.track(message.message_id)
    if not has_language(user):
        # No report can have been written before a language was chosen, so there is
        # nothing to weigh up, and a confirmation in two languages would be long.
        await _forget(message.chat.id, intake, state, user, case_service, bot, settings)
        return
    rows = [
        [
            InlineKeyboardButton(
                text=_("Yes, forget me"), callback_data=ForgetChoice(action="forget").pack()
            )
        ]
    ]
    can_withdraw = await withdrawable(case_service.session, user) > 0
    if can_withdraw:
        rows.append(
            [
                InlineKeyboardButton(
                    text=_("Forget me and withdraw them"),
                    callback_data=ForgetChoice(action="withdraw").pack(),
                )
            ]
        )
    rows.append(
        [
            InlineKeyboardButton(
                text=_("No, keep everything"), callback_data=ForgetChoice(action="keep").pack()
            )
        ]
    )
    sent = await message.answer(
        forget_screen_text(_, can_withdraw), reply_markup=InlineKeyboardMarkup(inline_keyboard=rows)
    )
    intake.track(sent.message_id)
    data["intake"] = intake.to_dict()
    await state.set_data(data)


async def forget_choice(
    query: CallbackQuery,
    callback_data: ForgetChoice,
    state: FSMContext,
    user: User,
    case_service: CaseService,
    bot: Bot,
    settings: Settings,
) -> None:
    await query.answer()
    if query.message is None:
        return
    chat_id = query.message.chat.id
    if callback_data.action not in ("forget", "withdraw"):
        await wipe(bot, settings, chat_id, [query.message.message_id])
        return
    intake = IntakeState.from_dict((await state.get_data()).get("intake"))
    intake.track(query.message.message_id)
    await _forget(
        chat_id,
        intake,
        state,
        user,
        case_service,
        bot,
        settings,
        withdraw=callback_data.action == "withdraw",
    )


async def _forget(
    chat_id: int,
    intake: IntakeState,
    state: FSMContext,
    user: User,
    case_service: CaseService,
    bot: Bot,
    settings: Settings,
    *,
    withdraw: bool = False,
) -> None:
    language = user.language  # the row may be deleted below
    news_messages = await drop_news(state, case_service, user)
    session = case_service.session
    report = await forget_reporter(session, case_service.keyring, user, withdraw=withdraw)
    await discard_draft_evidence(intake)
    await state.clear()
    await session.commit()
    await wipe(bot, settings, chat_id, [*intake.trail, *news_messages])

    def done(tr: Translate) -> str:
        text = tr(N_("Done. This bot no longer keeps anything that links you to your reports."))
        if report.withdrawn:
            text += " " + tr(N_("Reports withdrawn: {count}.")).format(count=report.withdrawn)
        return text + " " + tr(N_("You can now delete this chat."))

    await bot.send_message(chat_id, for_reader(language, done))


def build_router() -> Router:
    router = Router(name="reporter-forget")
    router.message.register(forget_command, Command("forget"))
    router.callback_query.register(
        forget_choice, ForgetChoice.filter(F.action.in_({"forget", "withdraw", "keep"}))
    )
    return router
