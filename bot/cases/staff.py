"""Staff membership: one-time invitations, the staff list, revoking a role."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.notifications import (
    CASE_WORK,
    Notice,
    NoticeKind,
    Role,
    coordinators,
    enqueue,
    withdraw_queued,
)
from storage import audit
from storage.crypto import FieldContext, KeyRing, Purpose
from storage.models import Case, Invite, User, utcnow
from storage.repositories import UserRepository
from storage.roles import set_role, verified_role

INVITE_LIFETIME = timedelta(hours=72)
NAME_LIMIT = 64


def _token_hash(keyring: KeyRing, token: str) -> bytes:
    return keyring.blind_index("invite", token)


def _name_context(user: User) -> FieldContext:
    return FieldContext("users", "staff_name_sealed", user.id)


async def create_invite(session: AsyncSession, keyring: KeyRing, coordinator: User) -> str:
    """A fresh random token; only its keyed hash is stored."""
    token = secrets.token_urlsafe(24)
    session.add(
        Invite(
            token_hash=_token_hash(keyring, token),
            created_by=coordinator.id,
            expires_at=utcnow() + INVITE_LIFETIME,
        )
    )
    await audit.record(session, keyring, "invite_create", actor_id=coordinator.id)
    return token


async def redeem_invite(
    session: AsyncSession, keyring: KeyRing, user: User, token: str, display_name: str
) -> bool:
    """Make ``user`` a lawyer if ``token`` is a live invitation; False otherwise."""
    if not 16 <= len(token) <= 64:
        return False
    now = utcnow()
    claimed = await session.execute(
        update(Invite)
        .where(
            Invite.token_hash == _token_hash(keyring, token),
            Invite.used_at.is_(None),
            Invite.expires_at > now,
        )
        .values(used_at=now, used_by=user.id)
    )
    if not getattr(claimed, "rowcount", 0):
        return False
    if verified_role(keyring, user) != Role.COORDINATOR.value:
        set_role(keyring, user, Role.LAWYER.value)
    set_staff_name(keyring, user, display_name)
    await audit.record(session, keyring, "role_grant", actor_id=user.id, subject_id=user.id)
    for coordinator in await coordinators(session):
        if coordinator.id != user.id:
            enqueue(session, keyring, coordinator, Notice(NoticeKind.JOINED_AS_LAWYER))
    return True


def set_staff_name(keyring: KeyRing, user: User, name: str) -> None:
    cleaned = " ".join(name.split())[:NAME_LIMIT] or "—"
    user.staff_name_sealed = keyring.seal(Purpose.USER, cleaned.encode(), _name_context(user))


def staff_name(keyring: KeyRing, user: User) -> str:
    if user.staff_name_sealed is None:
        return "—"
    return keyring.open(Purpose.USER, user.staff_name_sealed, _name_context(user)).decode()


@dataclass(frozen=True, slots=True)
class StaffMember:
    user: User
    name: str


async def staff_members(session: AsyncSession, keyring: KeyRing) -> list[StaffMember]:
    found = await session.scalars(
        select(User).where(User.role.is_not(None)).order_by(User.role, User.created_at)
    )
    return [StaffMember(user, staff_name(keyring, user)) for user in found]


async def revoke(
    session: AsyncSession, keyring: KeyRing, coordinator: User, user_id: uuid.UUID
) -> User | None:
    """Remove a role at once; a coordinator cannot revoke themselves.

    What was queued for them and not sent yet is withdrawn; news about their
    cases (a reply, a file, a retention warning) goes to the coordinators.
    """
    target = await session.get(User, user_id)
    if target is None or target.role is None or target.id == coordinator.id:
        return None
    set_role(keyring, target, None)
    for notice in await withdraw_queued(session, keyring, recipient_id=target.id):
        if notice.kind in CASE_WORK:
            for other in await coordinators(session):
                if other.id != target.id:
                    enqueue(session, keyring, other, notice)
    await audit.record(
        session, keyring, "role_revoke", actor_id=coordinator.id, subject_id=target.id
    )
    return target


async def ensure_coordinators(users: UserRepository, telegram_ids: frozenset[int]) -> list[User]:
    """Coordinators named in the settings exist from the start (private chat id = user id).

    Returned in the order of their sorted Telegram ids.
    """
    found: list[User] = []
    for telegram_id in sorted(telegram_ids):
        user = await users.ensure(telegram_id, telegram_id)
        # The settings are the authority: this also restores a coordinator
        # whose role or its MAC was damaged.
        if verified_role(users.keyring, user) != Role.COORDINATOR.value:
            set_role(users.keyring, user, Role.COORDINATOR.value)
            set_staff_name(users.keyring, user, f"coordinator {len(found) + 1}")
        found.append(user)
    return found


async def ban_reporter(
    session: AsyncSession, keyring: KeyRing, coordinator: User, case: Case
) -> bool:
    """Block the person behind a case (found through the blind index); staff cannot be."""
    if case.reporter_index is None:
        return False
    found = await session.scalars(select(User).where(User.tg_index == case.reporter_index))
    reporter = found.one_or_none()
    if reporter is None or verified_role(keyring, reporter) is not None:
        return False
    reporter.banned = True
    await audit.record(session, keyring, "reporter_ban", actor_id=coordinator.id, case_id=case.id)
    return True
