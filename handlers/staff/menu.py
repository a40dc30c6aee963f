"""Staff command menus, set per chat in the staff member's language."""

from __future__ import annotations

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BotCommand, BotCommandScopeChat
from aiogram.utils.i18n import I18n

from bot.notifications import Role
from bot.text import N_

LAWYER_COMMANDS = (
    ("queue", N_("Cases waiting for a lawyer")),
    ("mine", N_("My cases")),
    ("case", N_("Open a case: /case K7QD-M2PF")),
    ("dossier", N_("Case dossier in Word: /dossier K7QD-M2PF")),
    ("extend", N_("Keep a closed case longer: /extend REF reason")),
    ("lock", N_("Lock the bot now and delete the case messages")),
    ("pin", N_("Change your PIN; /pin duress sets a duress PIN")),
    ("language", N_("Change the language")),
    ("help", N_("How this bot works")),
)
COORDINATOR_COMMANDS = (
    *LAWYER_COMMANDS[:4],
    ("assign", N_("Assign a case: /assign K7QD-M2PF")),
    ("stats", N_("Statistics")),
    ("audit", N_("Who did what: /audit K7QD-M2PF")),
    ("invite", N_("Invite a lawyer")),
    ("staff", N_("Staff list")),
    ("revoke", N_("Remove a staff member")),
    ("ban", N_("Block the sender of a case: /ban K7QD-M2PF")),
    *LAWYER_COMMANDS[4:],
)


async def set_staff_commands(bot: Bot, i18n: I18n, chat_id: int, role: str, language: str) -> None:
    commands = COORDINATOR_COMMANDS if role == Role.COORDINATOR.value else LAWYER_COMMANDS
    await bot.set_my_commands(
        [
            BotCommand(command=name, description=i18n.gettext(text, locale=language))
            for name, text in commands
        ],
        scope=BotCommandScopeChat(chat_id=chat_id),
    )


async def remove_staff_commands(bot: Bot, chat_id: int) -> None:
    try:
        await bot.delete_my_commands(scope=BotCommandScopeChat(chat_id=chat_id))
    except TelegramAPIError:
        # The menu is a convenience; access is enforced on the server anyway.
        return
