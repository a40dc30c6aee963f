"""The staff PIN gate: the one place that enforces the lock.

An outer middleware on the staff router, so it runs before any staff handler
(and before the staff routers' own filters) for every message and button of a
lawyer or coordinator. ``/lock`` and answers to PIN prompts are handled here
and go no further; everything else goes on only while the lock is open.
The decisions are ``bot/staff_lock/lock.py``'s; this file only speaks Telegram.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import CallbackQuery, Message, TelegramObject
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cases.service import QueuePage
from bot.config import Settings
from bot.notifications import Role
from bot.staff_lock.lock import WIPES, Access, Result, StaffLock
from bot.staff_lock.pin import PinHasher, looks_like_pin
from bot.staff_lock.views import record_view, wipe_user
from bot.text import N_
from handlers.staff.render import queue_screen
from storage.crypto import KeyRing
from storage.models import User
from storage.roles import verified_role

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]
STAFF_ROLES = frozenset({Role.LAWYER.value, Role.COORDINATOR.value})

CHOOSE = N_(
    "First choose a PIN of 6 to 12 digits: it protects the cases if this phone is taken. "
    "Send it as a message; it is deleted at once."
)
ENTER = N_("The bot is locked. Enter your PIN.")
LOCKED_OUT = N_("Too many wrong PINs. Try again in 15 minutes.")
SUSPENDED = N_("Your access is suspended. A coordinator can restore it.")
UNLOCKED = N_("Unlocked. /queue shows the cases.")
LOCKED = N_("Locked. The case messages in this chat have been deleted.")

RESULT_TEXT = {
    Result.REPEAT_IT: N_("Repeat the PIN."),
    Result.INVALID: N_("A PIN is 6 to 12 digits. Choose a PIN."),
    Result.MISMATCH: N_("The two PINs differ. Choose a PIN again."),
    Result.CLASH: N_("The PIN and the duress PIN must differ. Choose another."),
    Result.PIN_SET: N_(
        "Your PIN is set. Case messages disappear from this chat after {minutes} minutes; "
        "/lock locks the bot at once."
    ),
    Result.DURESS_SET: N_(
        "Your duress PIN is set. Entered instead of your PIN, it looks like a normal "
        "unlock, but it suspends your access and warns the coordinators."
    ),
    Result.UNLOCKED: UNLOCKED,
    Result.DURESS: UNLOCKED,  # the same words: whoever watches must not tell them apart
    Result.CHOOSE_NEW: N_("Choose your new PIN (6 to 12 digits)."),
    Result.CHOOSE_DURESS: N_("Choose your duress PIN (6 to 12 digits, not your PIN)."),
    Result.WRONG: N_("Wrong PIN."),
    Result.LOCKED_OUT: LOCKED_OUT,
    Result.STILL_LOCKED_OUT: LOCKED_OUT,
    Result.SUSPENDED: SUSPENDED,
}
ACCESS_TEXT = {
    Access.CHOOSE_PIN: CHOOSE,
    Access.ENTER_PIN: ENTER,
    Access.LOCKED_OUT: LOCKED_OUT,
    Access.SUSPENDED: SUSPENDED,
}


@dataclass(frozen=True, slots=True)
class CaseViews:
    """Handed to staff handlers: records the messages with case content they send."""

    session: AsyncSession
    user: User
    due_at: datetime

    def record(self, *message_ids: int) -> None:
        record_view(self.session, self.user.id, message_ids, self.due_at)


def _command(text: str) -> tuple[str, str]:
    head, _sep, args = text.partition(" ")
    return head.split("@", 1)[0].lower(), args.strip().lower()


class StaffGate(BaseMiddleware):
    """Reads the PIN hasher and the clock from the dispatcher's data (bot/factory.py)."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("user")
        # A role counts only if its MAC holds: one written into the database by hand
        # meets the staff routers' filters (and is refused there), not a PIN prompt.
        if user is None or verified_role(data["keyring"], user) not in STAFF_ROLES:
            return await handler(event, data)
        hasher: PinHasher = data["pin_hasher"]
        clock: Callable[[], datetime] = data["staff_clock"]
        settings: Settings = data["settings"]
        session: AsyncSession = data["session"]
        keyring: KeyRing = data["keyring"]
        lock = StaffLock(
            session,
            keyring,
            hasher,
            clock,
            timedelta(minutes=settings.staff_unlock_minutes),
        )
        if isinstance(event, Message):
            done = await self._message(event, user, lock, data)
            if done:
                return None
        access = await lock.check(user)
        if access is Access.OPEN:
            data["case_views"] = CaseViews(
                session, user, clock() + timedelta(minutes=settings.staff_view_ttl_minutes)
            )
            return await handler(event, data)
        await session.commit()
        if isinstance(event, CallbackQuery):
            if access is Access.DURESS:
                await event.answer()
            else:
                await event.answer(_(ACCESS_TEXT[access]), show_alert=True)
        elif isinstance(event, Message):
            if access is Access.DURESS:
                # Whoever forced the duress PIN sees a desk with nothing on it.
                mine = _command((event.text or "").strip())[0] == "/mine"
                text, _markup = queue_screen(QueuePage([], 0, 0, 1), mine, _)
                await event.answer(text)
            else:
                await event.answer(_(ACCESS_TEXT[access]))
        return None

    async def _message(
        self, message: Message, user: User, lock: StaffLock, data: dict[str, Any]
    ) -> bool:
        """``/lock``, ``/pin`` and answers to PIN prompts; True when the message is dealt with."""
        text = (message.text or "").strip()
        session: AsyncSession = data["session"]
        bot: Bot = data["bot"]
        keyring: KeyRing = data["keyring"]
        command, args = _command(text)
        if command == "/lock":
            await lock.lock(user)
            await wipe_user(session, keyring, bot, user)
            await message.answer(_(LOCKED))
            return True
        pin = await lock.row(user)
        if looks_like_pin(text) and lock.awaits_digits(pin):
            # The PIN leaves the chat before anything else happens.
            with contextlib.suppress(TelegramAPIError):
                await message.delete()
            result = await lock.enter(user, text.strip())
            if result in WIPES:
                await wipe_user(session, keyring, bot, user)
            else:
                await session.commit()
            settings: Settings = data["settings"]
            await message.answer(
                _(RESULT_TEXT[result]).format(minutes=settings.staff_view_ttl_minutes)
            )
            return True
        if command == "/pin":
            if await lock.check(user) is not Access.OPEN:
                return False  # the gate answers as for any other command
            lock.begin_change(pin, duress=args == "duress")
            await session.commit()
            await message.answer(_("Enter your current PIN."))
            return True
        return False
