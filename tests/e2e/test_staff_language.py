"""Staff language: a new staff member reads their Telegram app's language (ru -> Russian,
tg -> Tajik, anything else -> Russian) without being asked, and /language changes it."""

from __future__ import annotations

import pytest
from aiogram.types import BotCommandScopeChat

from bot.i18n import staff_language
from bot.text import N_
from devkit.emulator import SimulatedUser
from devkit.sandbox import Sandbox
from devkit.scripted_reporter import t
from handlers.staff import gate
from tests.e2e.conftest import COORDINATOR_ID
from tests.e2e.staff_helpers import db_user, invite_token

WELCOME = N_(
    "Welcome to the coalition's case desk. You are now a lawyer here. /queue shows "
    "the cases waiting for a lawyer. Please turn on two-step verification in "
    "Telegram: this account now gives access to reports."
)
QUEUE = N_("Cases waiting for a lawyer")


async def menu_descriptions(sandbox: Sandbox, user: SimulatedUser) -> dict[str, str]:
    """The command menu set for ``user``'s chat, read back through the Bot API."""
    assert sandbox.bot is not None
    commands = await sandbox.bot.get_my_commands(scope=BotCommandScopeChat(chat_id=user.chat_id))
    return {command.command: command.description for command in commands}


@pytest.mark.parametrize(
    ("code", "expected"), [("ru", "ru"), ("tg", "tg"), ("en", "ru"), (None, "ru"), ("ru-RU", "ru")]
)
def test_staff_language_from_telegram(code: str | None, expected: str) -> None:
    assert staff_language(code) == expected


@pytest.mark.parametrize(("code", "language"), [("ru", "ru"), ("tg", "tg"), ("uz", "ru")])
async def test_a_new_lawyer_reads_their_apps_language_without_asking(
    sandbox: Sandbox, code: str, language: str
) -> None:
    coordinator = sandbox.user(COORDINATOR_ID, language_code="ru")
    token = await invite_token(sandbox, coordinator)
    lawyer = sandbox.user(730_001, first_name="Comil", language_code=code)
    await lawyer.send_command("/start", token)

    assert lawyer.last_text() == t(WELCOME, language)
    row = await db_user(sandbox, lawyer.user_id)
    assert row is not None and row.role == "lawyer" and row.language == language
    assert (await menu_descriptions(sandbox, lawyer))["queue"] == t(QUEUE, language)
    # What the lawyer does next is answered in that language too: the PIN prompt,
    # then, once a PIN is set, the commands.
    await lawyer.send_command("/case")
    assert lawyer.last_text() == t(gate.CHOOSE, language)
    await sandbox.give_pin(lawyer.user_id)
    await lawyer.send_command("/case")
    assert lawyer.last_text() == t(
        N_("Please add the case reference, for example: /case K7QD-M2PF"), language
    )


async def test_staff_change_their_language_with_the_language_command(sandbox: Sandbox) -> None:
    coordinator = sandbox.user(COORDINATOR_ID, language_code="ru")
    token = await invite_token(sandbox, coordinator)
    lawyer = sandbox.user(730_002, first_name="Nigora", language_code="ru")
    await lawyer.send_command("/start", token)
    assert lawyer.last_text() == t(WELCOME, "ru")
    await sandbox.give_pin(lawyer.user_id)

    await lawyer.send_command("/language")
    await lawyer.press("Тоҷикӣ")
    assert lawyer.last_text() == t(N_("The language has been changed."), "tg")
    row = await db_user(sandbox, lawyer.user_id)
    assert row is not None and row.language == "tg"
    assert (await menu_descriptions(sandbox, lawyer))["queue"] == t(QUEUE, "tg")


async def test_a_configured_coordinator_gets_their_apps_language(sandbox: Sandbox) -> None:
    """Coordinators named in the settings are staff from the start: same rule."""
    coordinator = sandbox.user(COORDINATOR_ID, language_code="tg")
    await coordinator.send_command("/staff")
    assert (coordinator.last_text() or "").startswith(t(N_("Staff:"), "tg"))
    row = await db_user(sandbox, COORDINATOR_ID)
    assert row is not None and row.language == "tg"

    # Once set, the app's language no longer matters; the choice is kept.
    later = sandbox.user(COORDINATOR_ID, language_code="ru")
    await later.send_command("/staff")
    assert (later.last_text() or "").startswith(t(N_("Staff:"), "tg"))
