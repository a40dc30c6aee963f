"""Helpers shared by the staff end-to-end tests (joining, waiting, reading the DB)."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable

from sqlalchemy import select

from bot.cases.service import CaseService
from bot.cases.stats import count_submission
from bot.intake.flow import CURRENT
from bot.notifications import Notice, NoticeKind, render_notice
from devkit.emulator import RecordedCall, SimulatedUser
from devkit.sandbox import Sandbox
from devkit.scripted_reporter import t
from storage.models import Case, OutboxMessage, User
from storage.repositories import CaseRepository, UserRepository
from tests.canary import new_canary

# The simulated Telegram apps run in Russian, so staff read Russian without choosing
# (bot/i18n.py staff_language); staff named in the settings who never wrote read it too.
STAFF_LANGUAGE = "ru"


def tr(language: str) -> Callable[[str], str]:
    return lambda msgid: t(msgid, language)


def notice_text(notice: Notice, language: str) -> str:
    """A notification exactly as the outbox renders it for someone reading ``language``."""
    return render_notice(notice, tr(language))


async def invite_token(sandbox: Sandbox, coordinator: SimulatedUser) -> str:
    """Ask for an invitation with /invite and take the token out of the link shown.

    Outbox notices may arrive after the answer, so the link is looked for in every
    message that came after the command, not only in the last one.
    """
    seen = {message.message_id for message in coordinator.bot_messages()}
    await coordinator.send_command("/invite")
    pattern = rf"https://t\.me/{re.escape(sandbox.server.bot_username)}\?start=([A-Za-z0-9_-]+)"
    new = [m.body or "" for m in coordinator.bot_messages() if m.message_id not in seen]
    tokens = [match.group(1) for body in new for match in re.finditer(pattern, body)]
    assert len(tokens) == 1, new
    return tokens[0]


async def join_staff(sandbox: Sandbox, coordinator: SimulatedUser, user: SimulatedUser) -> User:
    token = await invite_token(sandbox, coordinator)
    await user.send_command("/start", token)
    found = await db_user(sandbox, user.user_id)
    assert found is not None and found.role == "lawyer", found
    return found


async def db_user(sandbox: Sandbox, telegram_id: int) -> User | None:
    async with sandbox.sessionmaker() as session:
        return await UserRepository(session, sandbox.keyring).by_telegram_id(telegram_id)


async def internal_id(sandbox: Sandbox, telegram_id: int) -> uuid.UUID:
    found = await db_user(sandbox, telegram_id)
    assert found is not None, telegram_id
    return found.id


async def db_case(sandbox: Sandbox, reference: str) -> Case:
    async with sandbox.sessionmaker() as session:
        case = await CaseRepository(session, sandbox.keyring).by_reference(reference)
        assert case is not None, reference
        return case


async def wait_for_text(
    sandbox: Sandbox, user: SimulatedUser, expected: str, seconds: float = 10
) -> None:
    """Wait until a bot message in ``user``'s chat reads exactly ``expected``."""

    def arrived(_server: object) -> bool:
        return any(message.body == expected for message in user.bot_messages())

    try:
        await sandbox.server.wait_for(arrived, timeout=seconds)
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
        stored = dict(answers or {"account": "—"})
        case = await CaseRepository(session, sandbox.keyring).create(
            answers=stored,
            urgent=urgent,
            questionnaire_version=CURRENT.version,
            stats_consent=True,
            contact_consent=contact,
            reporter_index=reporter.tg_index,
            reporter_chat_id=reporter_telegram_id,
        )
        await count_submission(session, sandbox.keyring, stored)  # as submit_report does
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
    await drain_outbox(sandbox)  # the notices of joining and assigning are out of the way
    return reference, lawyer_row


async def lawyer_asks(
    sandbox: Sandbox, lawyer_row: User, reporter: SimulatedUser, reference: str
) -> str:
    """The lawyer asks the reporter a canary question; returns the notice once it arrived."""
    question = new_canary("Question")
    async with sandbox.sessionmaker.begin() as session:
        asking = await session.get(User, lawyer_row.id)
        assert asking is not None
        await CaseService(session, sandbox.keyring, self_assign=True).ask_reporter(
            asking, reference, question
        )
    wake_outbox(sandbox)
    asked = notice_text(Notice(NoticeKind.LAWYER_QUESTION, reference, text=question), "ru")
    await wait_for_text(sandbox, reporter, asked)
    return asked


def wake_outbox(sandbox: Sandbox) -> None:
    """After writing notices outside an update, as handlers do after committing."""
    assert sandbox.dispatcher is not None
    sandbox.dispatcher["background"].wake_outbox()


async def drain_outbox(sandbox: Sandbox) -> None:
    """Wait until the outbox has sent everything queued so far."""

    async def waiting() -> int:
        async with sandbox.sessionmaker() as session:
            rows = await session.scalars(
                select(OutboxMessage.id).where(OutboxMessage.state.in_(("pending", "sending")))
            )
            return len(rows.all())

    for _ in range(200):
        if not await waiting():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the outbox never drained")
