"""One database transaction per update.

The update's session is kept in a context variable so that code aiogram calls
on our behalf (the FSM storage) writes in the same transaction as the
handler: a stored answer and the draft that records it commit together, and
SQLite never sees two writers inside one update.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

current_session: ContextVar[AsyncSession | None] = ContextVar("current_session", default=None)


@asynccontextmanager
async def transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """The update's session if there is one, otherwise a short transaction of our own."""
    session = current_session.get()
    if session is not None:
        yield session
        return
    async with sessionmaker.begin() as own:
        yield own


@asynccontextmanager
async def update_scope(
    sessionmaker: async_sessionmaker[AsyncSession], bind: AsyncConnection | None = None
) -> AsyncIterator[AsyncSession]:
    """Open the update's session; commit on success, roll back on error.

    ``bind``: a connection the update already holds (its chat's lock, on
    PostgreSQL), so that every transaction of the update runs on it.
    """
    async with sessionmaker() if bind is None else sessionmaker(bind=bind) as session:
        token = current_session.set(session)
        try:
            yield session
            await session.commit()
        finally:
            current_session.reset(token)


async def commit_now() -> None:
    """Commit the update's work so far, before an irreversible step (deleting messages)."""
    session = current_session.get()
    if session is not None:
        await session.commit()
