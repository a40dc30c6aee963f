"""The reporters' command menu, in their language."""

from __future__ import annotations

from aiogram import Bot
from aiogram.types import BotCommand, BotCommandScopeAllPrivateChats, BotCommandScopeChat
from aiogram.utils.i18n import I18n, get_i18n

from bot.text import N_

REPORTER_COMMANDS = (
    ("start", N_("Send a report")),
    ("status", N_("The status of my reports")),
    ("language", N_("Change the language")),
    ("cancel", N_("Delete the report I am writing")),
    ("forget", N_("Delete everything that links me to my reports")),
    ("help", N_("How this bot works")),
)


def reporter_commands(translate: I18n, language: str) -> list[BotCommand]:
    return [
        BotCommand(command=name, description=translate.gettext(text, locale=language))
        for name, text in REPORTER_COMMANDS
    ]


async def set_default_commands(bot: Bot, i18n: I18n) -> None:
    """Menus for private chats: Tajik by default, Russian for Russian-language apps."""
    scope = BotCommandScopeAllPrivateChats()
    await bot.set_my_commands(reporter_commands(i18n, "tg"), scope=scope)
    await bot.set_my_commands(reporter_commands(i18n, "ru"), scope=scope, language_code="ru")


async def set_reporter_commands(bot: Bot, chat_id: int, language: str) -> None:
    await bot.set_my_commands(
        reporter_commands(get_i18n(), language), scope=BotCommandScopeChat(chat_id=chat_id)
    )
