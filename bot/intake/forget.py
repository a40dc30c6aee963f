"""/forget: a reporter cuts every link between themselves and what they sent.

Their sent cases stay with the lawyers but lose the blind index and the
sealed chat id (the lawyer sees "reporter disconnected"); with the explicit
second choice, cases no lawyer has taken yet are withdrawn and
crypto-shredded. The reporter's own user row goes too, unless they are
staff. One audit entry records the request, without a case or a person; each
withdrawn case is audited as withdrawn. The abuse counters
(``bot/intake/limits.py``) and the cases' sealed abuse handles stay until they
expire, so that /forget resets no limit and /ban REF still works.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cases.workflow import Outcome, Status
from bot.retention import shred_case
from storage import audit
from storage.crypto import KeyRing
from storage.models import Case, CaseEvent, User, utcnow


@dataclass(frozen=True, slots=True)
class ForgetReport:
    disconnected: int
    withdrawn: int


async def withdrawable(session: AsyncSession, user: User) -> int:
    """How many of the user's cases no lawyer has taken yet."""
    found = await session.scalars(_own_cases(user).where(Case.status == Status.NEW.value))
    return len(found.all())


def _own_cases(user: User) -> Select[Case]:
    return select(Case).where(Case.reporter_index == user.tg_index, Case.shredded_at.is_(None))


async def forget_reporter(
    session: AsyncSession, keyring: KeyRing, user: User, *, withdraw: bool
) -> ForgetReport:
    disconnected = withdrawn = 0
    for case in (await session.scalars(_own_cases(user))).all():
        if withdraw and case.status == Status.NEW.value and case.assignee_id is None:
            from_status = case.status
            case.status = Status.CLOSED.value
            case.outcome = Outcome.WITHDRAWN.value
            case.closed_at = utcnow()
            session.add(
                CaseEvent(
                    case_id=case.id,
                    kind="withdrawn",
                    from_status=from_status,
                    to_status=case.status,
                    outcome=case.outcome,
                )
            )
            await shred_case(session, keyring, case, reason="case_withdraw")
            withdrawn += 1
            continue
        case.reporter_index = None
        case.reporter_chat_sealed = None
        disconnected += 1
    # One entry for the whole request, naming neither the person nor their cases:
    # entries per case, written within milliseconds, would tell which cases
    # came from the same person.
    await audit.record(session, keyring, "reporter_forget", actor_id=None)
    if user.role is None:
        await session.delete(user)
    await session.flush()
    return ForgetReport(disconnected, withdrawn)
