"""The outbox sends a staff notice only to someone who may still see its case.

Driven like tests/test_outbox.py: the worker's ``run_once`` with a real aiogram
Bot against the emulator, on SQLite and PostgreSQL. The threat model
(docs/threat-model.md) cites these tests by name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiogram import Bot
from sqlalchemy import update

from bot.cases import staff
from bot.cases.service import CaseService
from bot.notifications import Notice, NoticeKind, render_notice
from bot.outbox import OutboxPolicy, OutboxWorker
from devkit.emulator import FakeTelegramServer
from devkit.scripted_reporter import t
from storage.crypto import KeyRing
from storage.models import OutboxMessage, User
from storage.repositories import CaseRepository, UserRepository
from tests.canary import new_canary
from tests.conftest import Database
from tests.e2e.staff_helpers import STAFF_LANGUAGE

COORDINATOR, LAWYER, REPORTER = 7001, 7002, 7003
POLICY = OutboxPolicy(global_rate=1000.0, per_chat_interval=0.0, poll_interval=0.01)


@dataclass
class World:
    database: Database
    keyring: KeyRing
    server: FakeTelegramServer
    bot: Bot
    reference: str

    def worker(self) -> OutboxWorker:
        return OutboxWorker(
            self.database.sessionmaker,
            self.keyring,
            self.bot,
            lambda msgid, language: t(msgid, language or "tg"),
            POLICY,
        )

    async def user(self, session_telegram_id: int) -> User:
        async with self.database.sessionmaker() as session:
            found = await UserRepository(session, self.keyring).by_telegram_id(session_telegram_id)
            assert found is not None
            return found

    def received(self, chat_id: int) -> list[str]:
        return [message.body or "" for message in self.server.messages(chat_id)]

    async def reply(self, text: str) -> None:
        """The reporter answers: the notice is queued for the assigned lawyer."""
        async with self.database.sessionmaker.begin() as session:
            reporter = await UserRepository(session, self.keyring).by_telegram_id(REPORTER)
            assert reporter is not None
            service = CaseService(session, self.keyring, self_assign=True)
            await service.record_reply(reporter, self.reference, text)


@pytest.fixture
async def world(database: Database, keyring: KeyRing) -> AsyncIterator[World]:
    async with FakeTelegramServer() as server:
        for chat in (COORDINATOR, LAWYER, REPORTER):
            server.ensure_chat(chat)
        bot = server.make_bot()
        async with database.sessionmaker.begin() as session:
            users = UserRepository(session, keyring)
            (boss,) = await staff.ensure_coordinators(users, frozenset({COORDINATOR}))
            token = await staff.create_invite(session, keyring, boss)
            lawyer = await users.ensure(LAWYER, LAWYER)
            assert await staff.redeem_invite(session, keyring, lawyer, token, "Lawyer")
            reporter = await users.ensure(REPORTER, REPORTER)
            case = await CaseRepository(session, keyring).create(
                answers={},
                urgent=False,
                questionnaire_version="test",
                stats_consent=False,
                contact_consent=True,
                reporter_index=reporter.tg_index,
                reporter_chat_id=REPORTER,
            )
            service = CaseService(session, keyring, self_assign=True)
            await service.assign(boss, case.reference, lawyer.id)
            reference = case.reference
        found = World(database, keyring, server, bot, reference)
        while await found.worker().run_once():
            pass  # joining and assigning are out of the way
        try:
            yield found
        finally:
            await bot.session.close()


def _replied(reference: str, text: str) -> str:
    notice = Notice(NoticeKind.REPORTER_REPLIED, reference, text=text)
    return render_notice(notice, lambda msgid: t(msgid, STAFF_LANGUAGE))


async def test_a_reply_queued_before_revoke_never_reaches_the_revoked_lawyer(
    world: World,
) -> None:
    answer = new_canary("Answer")
    await world.reply(answer)  # queued for the lawyer, not sent yet
    boss, lawyer = await world.user(COORDINATOR), await world.user(LAWYER)
    async with world.database.sessionmaker.begin() as session:
        assert await staff.revoke(session, world.keyring, boss, lawyer.id) is not None
    while await world.worker().run_once():
        pass
    assert not [body for body in world.received(LAWYER) if answer in body]
    # The coordinators get it instead: someone on the staff must read the reply.
    assert _replied(world.reference, answer) in world.received(COORDINATOR)


async def test_the_outbox_asks_the_policy_before_each_send_to_staff(world: World) -> None:
    answer = new_canary("Answer")
    await world.reply(answer)
    lawyer = await world.user(LAWYER)
    # The role goes after the notice was queued, by a path that does not withdraw
    # it (a revoke racing the worker): the send-time check still refuses.
    async with world.database.sessionmaker.begin() as session:
        await session.execute(update(User).where(User.id == lawyer.id).values(role=None))
    while await world.worker().run_once():
        pass
    assert not [body for body in world.received(LAWYER) if answer in body]


async def test_a_notice_redirected_in_the_database_is_not_sent(world: World) -> None:
    """Whoever can write the outbox points a queued question at their own account."""
    question = new_canary("Question")
    lawyer = await world.user(LAWYER)
    async with world.database.sessionmaker.begin() as session:
        asking = await session.get(User, lawyer.id)
        assert asking is not None
        service = CaseService(session, world.keyring, self_assign=True)
        await service.ask_reporter(asking, world.reference, question)
    attacker = await world.user(COORDINATOR)  # any other account will do
    async with world.database.sessionmaker.begin() as session:
        await session.execute(update(OutboxMessage).values(recipient_id=attacker.id))
    while await world.worker().run_once():
        pass
    everyone = world.received(COORDINATOR) + world.received(LAWYER) + world.received(REPORTER)
    assert not [body for body in everyone if question in body], "the redirected notice went out"
