"""SQLite: writing transactions of one process take turns in an asyncio queue.

SQLite lets one connection write at a time. Another writer is put to sleep by
SQLite's busy handler (1, 2, 5, 10 ... 100 ms) and tries again, while the
holder of the lock waits for the event loop between its UPDATE and its
COMMIT. Under load those sleeps, not the work, set the pace: an UPDATE of a
draft waited 9 ms at the median and almost a second at p99 with 60 reporters
(docs/performance.md). So a session waits here, without sleeping, before its
first write, and lets the next one in when its transaction ends. SQLite's own
busy timeout stays for writers in other processes (the command line).
PostgreSQL locks rows, not the database, and needs none of this.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction
from sqlalchemy.util import await_

GATE = "write_gate"
_HOLDS = "write_gate_held"


class WriteGate:
    def __init__(self, timeout: float = 30.0) -> None:
        self._lock = asyncio.Lock()
        # As SQLite's busy timeout: a writer stuck behind another fails rather
        # than hanging for ever (say, a second session opened while the first
        # holds the gate, in the same task).
        self.timeout = timeout

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    def enter(self, session: Session) -> None:
        # Called from SQLAlchemy's synchronous code running inside its greenlet,
        # where await_ hands the wait back to the event loop.
        if session.info.get(_HOLDS):
            return
        # The connection first: a session holding the gate while it waits for
        # a pooled connection, held by sessions waiting for the gate, would
        # wait for ever.
        session.connection()
        await_(asyncio.wait_for(self._lock.acquire(), self.timeout))
        session.info[_HOLDS] = True

    def leave(self, session: Session) -> None:
        if session.info.pop(_HOLDS, False):
            self._lock.release()


class GatedSession(Session):
    """A Session whose writes pass the :class:`WriteGate` in ``info[GATE]``."""


def _gate(session: Session) -> WriteGate | None:
    gate = session.info.get(GATE)
    return gate if isinstance(gate, WriteGate) else None


@event.listens_for(GatedSession, "before_flush")
def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    gate = _gate(session)
    if gate is not None and (session.new or session.dirty or session.deleted):
        gate.enter(session)


@event.listens_for(GatedSession, "do_orm_execute")
def _before_statement(state: ORMExecuteState) -> None:
    gate = _gate(state.session)
    if gate is not None and (state.is_insert or state.is_update or state.is_delete):
        gate.enter(state.session)


@event.listens_for(GatedSession, "after_transaction_end")
def _after_transaction(session: Session, transaction: SessionTransaction) -> None:
    gate = _gate(session)
    if gate is not None and transaction.parent is None:
        gate.leave(session)
