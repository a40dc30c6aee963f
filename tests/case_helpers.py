"""Cases and staff made directly in the database, for tests of the staff core."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.cases.service import CaseService
from bot.cases.staff import set_staff_name
from bot.cases.stats import count_submission
from storage.crypto import KeyRing
from storage.models import User
from storage.repositories import CaseRepository, UserRepository
from storage.roles import set_role
from tests.conftest import Database

REPO = Path(__file__).resolve().parents[1]
_telegram_ids = itertools.count(880_001)


@dataclass(frozen=True, slots=True)
class People:
    coordinator: User
    lawyer: User
    other_lawyer: User
    reporter: User
    reporter_telegram_id: int


async def make_user(
    session: AsyncSession, keyring: KeyRing, role: str | None = None, name: str = "Staff"
) -> tuple[User, int]:
    telegram_id = next(_telegram_ids)
    user = await UserRepository(session, keyring).ensure(telegram_id, telegram_id)
    if role is not None:
        set_role(keyring, user, role)
        set_staff_name(keyring, user, name)
    return user, telegram_id


async def make_people(database: Database, keyring: KeyRing) -> People:
    async with database.sessionmaker.begin() as session:
        coordinator, _ = await make_user(session, keyring, "coordinator", "Coordinator")
        lawyer, _ = await make_user(session, keyring, "lawyer", "Lawyer One")
        other, _ = await make_user(session, keyring, "lawyer", "Lawyer Two")
        reporter, reporter_id = await make_user(session, keyring)
    return People(coordinator, lawyer, other, reporter, reporter_id)


async def make_case(
    database: Database,
    keyring: KeyRing,
    reporter: User | None = None,
    *,
    answers: dict[str, Any] | None = None,
    stats_consent: bool = True,
    contact_consent: bool = True,
    urgent: bool = False,
) -> str:
    async with database.sessionmaker.begin() as session:
        if reporter is None:
            reporter, _ = await make_user(session, keyring)
        if answers is None:
            answers = {"account": "Ӯро латукӯб карданд", "region": "sughd", "agency": ["police"]}
        case = await CaseRepository(session, keyring).create(
            answers=answers,
            urgent=urgent,
            questionnaire_version="test",
            stats_consent=stats_consent,
            contact_consent=contact_consent,
            reporter_index=reporter.tg_index,
            reporter_chat_id=1,
        )
        if stats_consent:  # as submit_report does
            await count_submission(session, keyring, answers)
        return case.reference


@asynccontextmanager
async def service(
    database: Database, keyring: KeyRing, *, self_assign: bool = True
) -> AsyncIterator[tuple[CaseService, AsyncSession]]:
    """A CaseService in one committed transaction; users are re-read into it."""
    async with database.sessionmaker.begin() as session:
        yield CaseService(session, keyring, self_assign=self_assign), session


async def attach(session: AsyncSession, user: User) -> User:
    found = await session.get(User, user.id)
    assert found is not None
    return found


async def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``intake-bot ARGS`` in a clean environment (plus ``env``), as a real process."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    clean["PYTHONPATH"] = str(REPO)
    clean.update(env)
    script = Path(sys.executable).with_name("intake-bot")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "bot"]
    process = await asyncio.create_subprocess_exec(
        *command,
        *args,
        cwd=cwd,
        env=clean,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return subprocess.CompletedProcess(
        [*command, *args], process.returncode, stdout.decode(), stderr.decode()
    )
