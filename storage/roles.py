"""Staff roles carry a MAC, so that write access to the database makes no one staff.

``users.role`` stays in clear (queries select coordinators by it); beside it,
``role_mac`` binds the role to the user's id under a key derived from the key
file. A role whose MAC does not verify counts as no role at all.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.crypto import FieldContext, KeyRing, Purpose, peek_key_id
from storage.models import User

log = logging.getLogger("intake.roles")


def _context(user_id: uuid.UUID, role: str) -> FieldContext:
    return FieldContext("users", "role_mac", f"{user_id}:{role}")


def set_role(keyring: KeyRing, user: User, role: str | None) -> None:
    user.role = role
    user.role_mac = None if role is None else keyring.attest(Purpose.ROLE, _context(user.id, role))


def verified_role(keyring: KeyRing, user: User) -> str | None:
    """The user's role if its MAC holds; otherwise None, logged without any id."""
    if user.role is None:
        return None
    if user.role_mac is not None and keyring.verify(
        Purpose.ROLE, user.role_mac, _context(user.id, user.role)
    ):
        return user.role
    log.warning("a staff role failed its integrity check and counts as no role")
    return None


def remac(keyring: KeyRing, user: User) -> bool:
    """Key rotation: move a valid role MAC onto the primary key; True if changed.

    A MAC that does not verify is dropped (the role already counts as none), so
    that no value keeps an old key in use.
    """
    if user.role_mac is None or peek_key_id(user.role_mac) == keyring.primary_id:
        return False
    if verified_role(keyring, user) is None:
        user.role_mac = None
    else:
        set_role(keyring, user, user.role)
    return True


async def seal_existing_roles(session: AsyncSession, keyring: KeyRing) -> int:
    """Once, right after revision 0004 added ``role_mac``: MAC the roles already held.

    Never run otherwise: it would bless a role written into the database.
    """
    found = await session.scalars(
        select(User).where(User.role.is_not(None), User.role_mac.is_(None))
    )
    count = 0
    for user in found:
        set_role(keyring, user, user.role)
        count += 1
    await session.flush()
    return count
