"""Anything no other router took: a gentle pointer, never an error.

A message typed outside the questionnaire (before /start, after the receipt)
often holds the whole story. It is deleted from the chat at once; nothing of it
is stored or logged, and the answer says so and shows how to report.
"""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.types import Message

from bot.config import Settings
from bot.text import N_
from handlers.common.reader import for_reader, stale_button
from handlers.reporter.conversation import wipe
from storage.models import User

IDLE_DELETED = N_(
    "Your message has been deleted from this chat and was not saved. "
    "To send a report, press /start."
)
IDLE_NOT_SAVED = N_("Your message was not saved. To send a report, press /start.")


async def idle_message(
    message: Message, bot: Bot, settings: Settings, user: User | None = None
) -> None:
    await wipe(bot, settings, message.chat.id, [message.message_id])
    text = IDLE_DELETED if settings.wipe_chat else IDLE_NOT_SAVED
    await message.answer(for_reader(user.language if user else None, lambda tr: tr(text)))


def build_router() -> Router:
    router = Router(name="fallback")
    router.message.register(idle_message)
    router.callback_query.register(stale_button)
    return router
