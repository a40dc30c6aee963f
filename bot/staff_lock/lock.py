"""The staff PIN lock: what a staff member's next message may do, and what a PIN does.

One :class:`StaffLock` per update (it works in the update's transaction). The
gate (``handlers/staff/gate.py``) asks :meth:`StaffLock.check` before any staff
command or button, and hands every plain message of digits that answers a PIN
prompt to :meth:`StaffLock.enter`. Time comes from an injected clock.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from bot.cases.staff import staff_name
from bot.notifications import Notice, NoticeKind, coordinators, enqueue
from bot.staff_lock.pin import SALT_BYTES, PinHasher, is_valid_pin, same
from storage import audit
from storage.crypto import KeyRing
from storage.models import StaffPin, User

Clock = Callable[[], datetime]

LOCK_OUT_AFTER = 5  # wrong PINs in a row: locked for LOCK_OUT_FOR, coordinators told
SUSPEND_AFTER = 10  # wrong PINs in a row: the role is suspended until a coordinator restores it
LOCK_OUT_FOR = timedelta(minutes=15)


class Stage(StrEnum):
    """What the next plain message of digits answers."""

    CHOOSE = "choose"
    REPEAT = "repeat"
    OLD = "old"  # /pin: the current PIN, before a new one
    DURESS_OLD = "duress_old"  # /pin duress: the current PIN first
    DURESS_CHOOSE = "duress_new"
    DURESS_REPEAT = "duress_again"


class Access(StrEnum):
    """The answer to "may this staff member act now?"."""

    OPEN = "open"
    CHOOSE_PIN = "choose_pin"  # no PIN yet: the next digits are a new PIN
    ENTER_PIN = "enter_pin"
    LOCKED_OUT = "locked_out"
    SUSPENDED = "suspended"
    DURESS = "duress"  # suspended by the duress PIN: show an empty desk, reveal nothing


class Result(StrEnum):
    """What one message of digits did."""

    REPEAT_IT = "repeat_it"
    INVALID = "invalid"  # not 6 to 12 digits
    MISMATCH = "mismatch"  # the repetition differs: choose again
    CLASH = "clash"  # the PIN and the duress PIN would be the same
    PIN_SET = "pin_set"
    DURESS_SET = "duress_set"
    UNLOCKED = "unlocked"
    DURESS = "duress"  # must look exactly like UNLOCKED
    CHOOSE_NEW = "choose_new"  # /pin: the old PIN was right
    CHOOSE_DURESS = "choose_duress"  # /pin duress: the PIN was right
    WRONG = "wrong"
    LOCKED_OUT = "locked_out"  # this wrong PIN locked them out
    STILL_LOCKED_OUT = "still_locked_out"
    SUSPENDED = "suspended"


#: Results after which the chat is wiped of case views at once.
WIPES = frozenset({Result.LOCKED_OUT, Result.SUSPENDED, Result.DURESS})

#: Audit actions of the events coordinators are told about.
AUDITED = {
    NoticeKind.STAFF_LOCKED_OUT: "pin_locked_out",
    NoticeKind.STAFF_SUSPENDED: "pin_suspended",
    NoticeKind.STAFF_DURESS: "pin_duress",
}

SUSPENDED_BY_FAILURES = "failures"
SUSPENDED_BY_DURESS = "duress"


class StaffLock:
    def __init__(
        self,
        session: AsyncSession,
        keyring: KeyRing,
        hasher: PinHasher,
        clock: Clock,
        unlock_for: timedelta,
    ) -> None:
        self.session = session
        self.keyring = keyring
        self.hasher = hasher
        self.clock = clock
        self.unlock_for = unlock_for

    async def row(self, user: User) -> StaffPin:
        found = await self.session.get(StaffPin, user.id)
        if found is None:
            found = StaffPin(
                user_id=user.id,
                salt=os.urandom(SALT_BYTES),
                scrypt_n=self.hasher.n,
                failures=0,
            )
            self.session.add(found)
        return found

    def _unlocked(self, pin: StaffPin) -> bool:
        return pin.unlocked_until is not None and pin.unlocked_until > self.clock()

    def awaits_digits(self, pin: StaffPin) -> bool:
        """Whether a plain message of digits is an answer to a PIN prompt."""
        return pin.stage is not None or not self._unlocked(pin)

    async def check(self, user: User) -> Access:
        """May ``user`` run a staff command now? An open lock is kept open a while longer."""
        pin = await self.row(user)
        if pin.suspended == SUSPENDED_BY_DURESS:
            return Access.DURESS
        if pin.suspended is not None:
            return Access.SUSPENDED
        if pin.pin_hash is None:
            pin.stage, pin.pending_hash = Stage.CHOOSE.value, None
            return Access.CHOOSE_PIN
        now = self.clock()
        if pin.locked_until is not None and pin.locked_until > now:
            return Access.LOCKED_OUT
        if self._unlocked(pin):
            pin.unlocked_until = now + self.unlock_for
            return Access.OPEN
        pin.stage, pin.pending_hash = None, None
        return Access.ENTER_PIN

    async def enter(self, user: User, digits: str) -> Result:
        """One message of digits: a new PIN, its repetition, or a PIN to check."""
        pin = await self.row(user)
        if pin.suspended is not None:
            return Result.DURESS if pin.suspended == SUSPENDED_BY_DURESS else Result.SUSPENDED
        stage = Stage(pin.stage) if pin.stage else None
        if pin.pin_hash is not None and not self._unlocked(pin):
            # A change begun before the lock engaged gives no way around the PIN.
            stage = None
        if pin.pin_hash is None and stage not in (Stage.CHOOSE, Stage.REPEAT):
            stage = Stage.CHOOSE
        if stage is Stage.CHOOSE or stage is Stage.DURESS_CHOOSE:
            return await self._choose(pin, digits, stage)
        if stage is Stage.REPEAT or stage is Stage.DURESS_REPEAT:
            return await self._repeat(pin, digits, stage)
        result = await self._verify(user, pin, digits)
        if result is Result.UNLOCKED and stage is Stage.OLD:
            pin.stage = Stage.CHOOSE.value
            return Result.CHOOSE_NEW
        if result is Result.UNLOCKED and stage is Stage.DURESS_OLD:
            pin.stage = Stage.DURESS_CHOOSE.value
            return Result.CHOOSE_DURESS
        return result

    def begin_change(self, pin: StaffPin, *, duress: bool) -> None:
        """``/pin`` or ``/pin duress``: the current PIN is asked first."""
        pin.stage = (Stage.DURESS_OLD if duress else Stage.OLD).value
        pin.pending_hash = None

    async def lock(self, user: User) -> None:
        pin = await self.row(user)
        pin.unlocked_until = None
        if pin.pin_hash is not None:
            pin.stage, pin.pending_hash = None, None

    async def _choose(self, pin: StaffPin, digits: str, stage: Stage) -> Result:
        if not is_valid_pin(digits):
            return Result.INVALID
        hashed = await self._hash(pin, digits)
        other = pin.pin_hash if stage is Stage.DURESS_CHOOSE else pin.duress_hash
        if same(hashed, other):
            return Result.CLASH
        pin.pending_hash = hashed
        pin.stage = (Stage.DURESS_REPEAT if stage is Stage.DURESS_CHOOSE else Stage.REPEAT).value
        return Result.REPEAT_IT

    async def _repeat(self, pin: StaffPin, digits: str, stage: Stage) -> Result:
        hashed = await self._hash(pin, digits)
        duress = stage is Stage.DURESS_REPEAT
        if not same(hashed, pin.pending_hash):
            pin.stage = (Stage.DURESS_CHOOSE if duress else Stage.CHOOSE).value
            pin.pending_hash = None
            return Result.MISMATCH
        pin.stage, pin.pending_hash = None, None
        if duress:
            pin.duress_hash = hashed
            return Result.DURESS_SET
        pin.pin_hash = hashed
        pin.failures = 0
        pin.unlocked_until = self.clock() + self.unlock_for
        return Result.PIN_SET

    async def _verify(self, user: User, pin: StaffPin, digits: str) -> Result:
        now = self.clock()
        if pin.locked_until is not None and pin.locked_until > now:
            return Result.STILL_LOCKED_OUT
        hashed = await self._hash(pin, digits)
        pin.stage, pin.pending_hash = None, None
        if same(hashed, pin.duress_hash):
            pin.suspended = SUSPENDED_BY_DURESS
            pin.unlocked_until = None
            await self._tell_coordinators(user, NoticeKind.STAFF_DURESS)
            return Result.DURESS
        if same(hashed, pin.pin_hash):
            pin.failures = 0
            pin.locked_until = None
            pin.unlocked_until = now + self.unlock_for
            return Result.UNLOCKED
        pin.failures += 1
        pin.unlocked_until = None
        if pin.failures >= SUSPEND_AFTER:
            pin.suspended = SUSPENDED_BY_FAILURES
            await self._tell_coordinators(user, NoticeKind.STAFF_SUSPENDED)
            return Result.SUSPENDED
        if pin.failures == LOCK_OUT_AFTER:
            pin.locked_until = now + LOCK_OUT_FOR
            await self._tell_coordinators(user, NoticeKind.STAFF_LOCKED_OUT)
            return Result.LOCKED_OUT
        return Result.WRONG

    async def _hash(self, pin: StaffPin, digits: str) -> bytes:
        return await self.hash_pin(pin, digits)

    async def hash_pin(self, pin: StaffPin, digits: str) -> bytes:
        """scrypt of the PIN, peppered with the key file's blind-index key.

        Without the pepper a copy of the database alone would give up every PIN
        to an offline search (a million candidates), and people reuse PINs as
        phone passcodes; with it, the search needs the key file as well.
        """
        peppered = self.keyring.blind_index("staff-pin", digits).hex()
        return await self.hasher.derive(peppered, pin.salt, pin.scrypt_n)

    async def _tell_coordinators(self, user: User, kind: NoticeKind) -> None:
        # By staff name only: a notice never carries a Telegram id.
        await audit.record(
            self.session, self.keyring, AUDITED[kind], actor_id=user.id, subject_id=user.id
        )
        name = staff_name(self.keyring, user)
        for coordinator in await coordinators(self.session):
            if coordinator.id != user.id:
                enqueue(self.session, self.keyring, coordinator, Notice(kind, text=name))


async def restore(session: AsyncSession, user: User) -> bool:
    """A coordinator lifts a suspension (wrong PINs or duress); False if there was none."""
    pin = await session.get(StaffPin, user.id)
    if pin is None or pin.suspended is None:
        return False
    pin.suspended = None
    pin.failures = 0
    pin.locked_until = None
    pin.unlocked_until = None
    pin.stage, pin.pending_hash = None, None
    return True


async def reset_pin(session: AsyncSession, user: User) -> None:
    """A coordinator clears a lawyer's PIN (and duress PIN): they choose a new one next time."""
    pin = await session.get(StaffPin, user.id)
    if pin is None:
        return
    pin.salt = os.urandom(SALT_BYTES)
    pin.pin_hash = pin.duress_hash = pin.pending_hash = None
    pin.stage = None
    pin.failures = 0
    pin.locked_until = None
    pin.unlocked_until = None


async def is_unlocked(session: AsyncSession, user_id: object, now: datetime) -> bool:
    """For work outside an update (the outbox): is this staff member's lock open?"""
    pin = await session.get(StaffPin, user_id)
    return (
        pin is not None
        and pin.suspended is None
        and pin.unlocked_until is not None
        and pin.unlocked_until > now
    )


async def suspended_reason(session: AsyncSession, user_id: object) -> str | None:
    pin = await session.get(StaffPin, user_id)
    return None if pin is None else pin.suspended
