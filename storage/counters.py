"""Counters in fixed time windows, for limits that must hold across processes.

A counter is one ``abuse_counters`` row: (kind, key, window start) -> amount.
Windows are aligned to multiples of their length since the Unix epoch (a day
window starts at 00:00 UTC), so the row of "now" is found without a read and
only a coarse time is stored. :func:`take` adds to a counter only while the
limit holds, in one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` statement:
on PostgreSQL the row is locked for the update, so two processes can never
both take the last unit (no read-modify-write race). Every call runs in the
caller's transaction: a rolled-back step gives its units back by itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AbuseCounter, utcnow

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
#: The key of a counter shared by everyone (a global circuit breaker).
EVERYONE = bytes(32)


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``most`` units of ``kind`` per key in each ``window``."""

    kind: str
    window: timedelta
    most: int


def window_start(at: datetime, window: timedelta) -> datetime:
    """The start of the fixed window that contains ``at``."""
    span = window // MICROSECOND
    offset = (at - EPOCH) // MICROSECOND
    return EPOCH + (offset - offset % span) * MICROSECOND


def _insert(session: AsyncSession) -> Callable[..., Any]:
    dialect = session.get_bind().dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _count(
    session: AsyncSession,
    kind: str,
    window: timedelta,
    key: bytes,
    amount: int,
    now: datetime | None,
    most: int | None = None,
) -> Any:
    """The one upsert of a counter: add ``amount`` (only while it stays within
    ``most``, when given), returning the amount so far, or no row if refused."""
    start = window_start(now or utcnow(), window)
    return (
        _insert(session)(AbuseCounter)
        .values(
            kind=kind, key_index=key, window_start=start, expires_at=start + window, amount=amount
        )
        .on_conflict_do_update(
            index_elements=[AbuseCounter.kind, AbuseCounter.key_index, AbuseCounter.window_start],
            set_={"amount": AbuseCounter.amount + amount},
            where=None if most is None else AbuseCounter.amount + amount <= most,
        )
        .returning(AbuseCounter.amount)
    )


async def take(
    session: AsyncSession,
    limit: Limit,
    key: bytes,
    amount: int = 1,
    *,
    now: datetime | None = None,
) -> bool:
    """Add ``amount`` to the window's counter if it stays within the limit; False
    (and no change) otherwise."""
    if amount < 0:
        raise ValueError("amount must not be negative")
    if amount > limit.most:
        return False
    statement = _count(session, limit.kind, limit.window, key, amount, now, most=limit.most)
    return (await session.execute(statement)).first() is not None


async def add(
    session: AsyncSession,
    kind: str,
    window: timedelta,
    key: bytes,
    *,
    now: datetime | None = None,
) -> int:
    """Count one more in the window, whatever the limit; the amount so far.

    For limits that answer differently the first time they are passed (flood
    control warns once, then keeps silent) and so must see past them.
    """
    statement = _count(session, kind, window, key, 1, now)
    return int((await session.execute(statement)).scalar_one())


async def give_back(
    session: AsyncSession,
    limit: Limit,
    key: bytes,
    amount: int = 1,
    *,
    now: datetime | None = None,
) -> None:
    """Undo a :func:`take` of the same window (a later check refused the step)."""
    start = window_start(now or utcnow(), limit.window)
    await session.execute(
        update(AbuseCounter)
        .where(
            AbuseCounter.kind == limit.kind,
            AbuseCounter.key_index == key,
            AbuseCounter.window_start == start,
        )
        .values(amount=AbuseCounter.amount - amount)
        .execution_options(synchronize_session=False)
    )


async def used(
    session: AsyncSession, limit: Limit, key: bytes, *, now: datetime | None = None
) -> int:
    """How much of the window's limit is taken (a read; :func:`take` decides)."""
    start = window_start(now or utcnow(), limit.window)
    amount = await session.scalar(
        select(AbuseCounter.amount).where(
            AbuseCounter.kind == limit.kind,
            AbuseCounter.key_index == key,
            AbuseCounter.window_start == start,
        )
    )
    return int(amount or 0)


async def delete_expired(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Delete every counter whose window is over, of every kind."""
    result = await session.execute(
        delete(AbuseCounter).where(AbuseCounter.expires_at <= (now or utcnow()))
    )
    return int(getattr(result, "rowcount", 0) or 0)
