"""Joining the staff through a one-time invitation link (``/start <token>``)."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.filters import CommandObject, CommandStart
from aiogram.types import Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cases.staff import redeem_invite
from bot.i18n import staff_language
from handlers.staff.menu import set_staff_commands
from storage.crypto import KeyRing
from storage.models import User


async def join(
    message: Message,
    command: CommandObject,
    user: User,
    session: AsyncSession,
    keyring: KeyRing,
    bot: Bot,
    i18n: I18n,
) -> None:
    sender = message.from_user
    name = sender.full_name if sender else ""
    if sender and sender.username:
        name = f"{name} @{sender.username}"
    if not await redeem_invite(session, keyring, user, command.args or "", name):
        # Not a live invitation: behave exactly like a plain /start.
        raise SkipHandler
    if user.language is None:
        # A new staff member reads their Telegram app's language; /language changes it.
        user.language = staff_language(sender.language_code if sender else None)
    i18n.current_locale = user.language
    await session.commit()
    assert user.role is not None
    await set_staff_commands(bot, i18n, message.chat.id, user.role, user.language)
    await message.answer(
        _(
            "Welcome to the coalition's case desk. You are now a lawyer here. /queue shows "
            "the cases waiting for a lawyer. Please turn on two-step verification in "
            "Telegram: this account now gives access to reports."
        )
    )


def build_router() -> Router:
    router = Router(name="staff-join")
    router.message.register(join, CommandStart(deep_link=True))
    return router
