"""Abuse limits on what one sender may send: reports a day, a share of the circuit
breaker, evidence bytes a day.

Each is counted in ``abuse_counters`` (``storage/counters.py``) under a blind
index of the sender made for that limit alone: a keyed hash of their
``tg-user`` index, which /forget does not touch and which cannot be joined
with ``users`` or ``cases`` without the key file. Windows are fixed (a UTC
day, a minute); rows go once their window is over (:func:`sweep_expired`).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage import counters
from storage.abuse_handles import delete_expired_handles
from storage.counters import EVERYONE, Limit
from storage.crypto import KeyRing
from storage.models import User, utcnow

DAILY_SUBMISSION_LIMIT = 3
DAILY_SUBMISSIONS = Limit("submissions", timedelta(days=1), DAILY_SUBMISSION_LIMIT)
#: The most of the global circuit breaker (INTAKE_INTAKE_PER_MINUTE) one sender may take.
BREAKER_SHARE = 0.1
MINUTE = timedelta(minutes=1)


class DailyLimitReached(Exception):
    """The reporter already sent the maximum number of reports today."""


class IntakePaused(Exception):
    """The circuit breaker is full this minute, or this sender took their share of it."""


def sender_key(keyring: KeyRing, limit: Limit, sender: User) -> bytes:
    return keyring.blind_index(f"limit-{limit.kind}", sender.tg_index.hex())


def breaker(intake_per_minute: int) -> Limit:
    return Limit("intake", MINUTE, intake_per_minute)


def breaker_share(intake_per_minute: int) -> Limit:
    return Limit("intake-share", MINUTE, max(1, math.floor(intake_per_minute * BREAKER_SHARE)))


def evidence_allowance(bytes_per_day: int) -> Limit:
    return Limit("evidence-bytes", timedelta(days=1), bytes_per_day)


async def admit_submission(
    session: AsyncSession,
    keyring: KeyRing,
    sender: User,
    *,
    intake_per_minute: int,
    now: datetime | None = None,
) -> None:
    """Count a report against every limit, or raise and count nothing.

    ``intake_per_minute`` 0 turns the circuit breaker off.
    """
    now = now or utcnow()
    daily = sender_key(keyring, DAILY_SUBMISSIONS, sender)
    if not await counters.take(session, DAILY_SUBMISSIONS, daily, now=now):
        raise DailyLimitReached
    if not intake_per_minute:
        return
    share = breaker_share(intake_per_minute)
    mine = sender_key(keyring, share, sender)
    if not await counters.take(session, share, mine, now=now):
        await counters.give_back(session, DAILY_SUBMISSIONS, daily, now=now)
        raise IntakePaused
    if not await counters.take(session, breaker(intake_per_minute), EVERYONE, now=now):
        await counters.give_back(session, share, mine, now=now)
        await counters.give_back(session, DAILY_SUBMISSIONS, daily, now=now)
        raise IntakePaused


async def evidence_used_today(
    session: AsyncSession,
    keyring: KeyRing,
    sender: User,
    bytes_per_day: int,
    *,
    now: datetime | None = None,
) -> int:
    allowance = evidence_allowance(bytes_per_day)
    return await counters.used(session, allowance, sender_key(keyring, allowance, sender), now=now)


async def take_evidence_bytes(
    session: AsyncSession,
    keyring: KeyRing,
    sender: User,
    size: int,
    bytes_per_day: int,
    *,
    now: datetime | None = None,
) -> bool:
    """Count a received file's bytes; False (nothing counted) past the day's allowance."""
    allowance = evidence_allowance(bytes_per_day)
    key = sender_key(keyring, allowance, sender)
    return await counters.take(session, allowance, key, size, now=now)


async def sweep_expired(
    sessionmaker: async_sessionmaker[AsyncSession], *, now: datetime | None = None
) -> int:
    """Delete counters whose window is over and abuse handles past their days."""
    async with sessionmaker.begin() as session:
        counted = await counters.delete_expired(session, now=now)
        handles = await delete_expired_handles(session, now=now)
    return counted + handles
