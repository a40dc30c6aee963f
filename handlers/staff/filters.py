"""Role filters for staff routers; the case-level decision is the policy's."""

from __future__ import annotations

from aiogram.filters import Filter
from aiogram.types import TelegramObject

from bot.notifications import Role
from storage.crypto import KeyRing
from storage.models import User
from storage.roles import verified_role


class HasRole(Filter):
    def __init__(self, *roles: Role) -> None:
        self.roles = frozenset(role.value for role in roles)

    async def __call__(
        self, event: TelegramObject, keyring: KeyRing, user: User | None = None
    ) -> bool:
        return user is not None and verified_role(keyring, user) in self.roles


STAFF = HasRole(Role.LAWYER, Role.COORDINATOR)
COORDINATOR = HasRole(Role.COORDINATOR)
