"""Helpers shared by the staff end-to-end tests (joining, waiting, reading the DB)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from sqlalchemy import select

from bot.cases.service import CaseService
from bot.emulator import SimulatedUser
from bot.emulator.server import RecordedCall
from bot.intake.flow import CURRENT
from bot.notifications import Notice, render_notice
from bot.sandbox import Sandbox
from bot.scripted_reporter import t
from storage.models import Case, User
from storage.repositories import CaseRepository, UserRepository
from tests.canary import new_canary


def tr(language: str) -> Callable[[str], str]:
    return lambda msgid: t(msgid, language)


def notice_text(notice: Notice, language: str) -> str:
    """A notification exactly as the outbox renders it for someone reading ``language``."""
    return render_notice(notice, tr(language))


async def invite_token(sandbox: Sandbox, coordinator: SimulatedUser) -> str:
    """Ask for an invitation with /invite and take the token out of the link shown."""
    await coordinator.send_command("/invite")
    text = coordinator.last_text() or ""
    pattern = rf"https://t\.me/{re.escape(sandbox.server.bot_username)}\?start=([A-Za-z0-9_-]+)"
    match = re.search(pattern, text)
    assert match is not None, text
    return match.group(1)


async def join_staff(sandbox: Sandbox, coordinator: SimulatedUser, user: SimulatedUser) -> User:
    token = await invite_token(sandbox, coordinator)
    await user.send_command("/start", token)
    found = await db_user(sandbox, user.user_id)
    assert found is not None and found.role == "lawyer", found
    return found


async def db_user(sandbox: Sandbox, telegram_id: int) -> User | None:
    async with sandbox.sessionmaker() as session:
        return await UserRepository(session, sandbox.keyring).by_telegram_id(telegram_id)


async def db_case(sandbox: Sandbox, reference: str) -> Case:
    async with sandbox.sessionmaker() as session:
        case = await CaseRepository(session, sandbox.keyring).by_reference(reference)
        assert case is not None, reference
        return case


async def wait_for_text(
    sandbox: Sandbox, user: SimulatedUser, expected: str, timeout: float = 10
) -> None:
    """Wait until a bot message in ``user``'s chat reads exactly ``expected``."""

    def arrived(_server: object) -> bool:
        return any(message.body == expected for message in user.bot_messages())

    try:
        await sandbox.server.wait_for(arrived, timeout=timeout)
    except TimeoutError:
        seen = [message.body for message in user.bot_messages()]
        raise AssertionError(f"{expected!r} never arrived; chat shows {seen!r}") from None


def calls_to(sandbox: Sandbox, chat_id: int, since: int = 0) -> list[RecordedCall]:
    """Every Bot API call about ``chat_id`` (sends, edits, callback answers...)."""
    return [call for call in sandbox.server.calls[since:] if call.chat_id == chat_id]


def call_dump(call: RecordedCall) -> str:
    return json.dumps(call.params, ensure_ascii=False, default=str)


async def seed_case(
    sandbox: Sandbox,
    reporter_telegram_id: int,
    answers: dict[str, object] | None = None,
    *,
    contact: bool = True,
    urgent: bool = False,
) -> str:
    """A case stored directly (no questionnaire), from the user with that Telegram id."""
    async with sandbox.sessionmaker.begin() as session:
        reporter = await UserRepository(session, sandbox.keyring).ensure(
            reporter_telegram_id, reporter_telegram_id
        )
        if reporter.language is None:
            reporter.language = "ru"
        case = await CaseRepository(session, sandbox.keyring).create(
            answers=dict(answers or {"account": "—"}),
            urgent=urgent,
            questionnaire_version=CURRENT.version,
            stats_consent=True,
            contact_consent=contact,
            reporter_index=reporter.tg_index,
            reporter_chat_id=reporter_telegram_id,
        )
        return case.reference


async def assigned_case(
    sandbox: Sandbox, coordinator: SimulatedUser, lawyer: SimulatedUser, reporter_id: int
) -> tuple[str, User]:
    """A case from ``reporter_id`` assigned by the coordinator to ``lawyer`` (who joins)."""
    lawyer_row = await join_staff(sandbox, coordinator, lawyer)
    reference = await seed_case(sandbox, reporter_id, {"account": new_canary("Account")})
    async with sandbox.sessionmaker.begin() as session:
        boss = await UserRepository(session, sandbox.keyring).by_telegram_id(coordinator.user_id)
        assert boss is not None
        await CaseService(session, sandbox.keyring, self_assign=True).assign(
            boss, reference, lawyer_row.id
        )
    return reference, lawyer_row
