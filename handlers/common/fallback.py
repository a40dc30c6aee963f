"""Anything no other router took: a gentle pointer, never an error."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _


async def idle_message(message: Message) -> None:
    await message.answer(_("To send a report, press /start. /help explains how this bot works."))


async def stale_button(query: CallbackQuery) -> None:
    await query.answer(_("This button is no longer active."))


def build_router() -> Router:
    router = Router(name="fallback")
    router.message.register(idle_message)
    router.callback_query.register(stale_button)
    return router
